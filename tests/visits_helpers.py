"""Shared by the site-visit tests: a ticket at a known site, held by an engineer, and PNG/JPEG bytes."""

import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import CustomerFactory, RegionFactory, StoreFactory, published_template
from tickets.services import ticket_intake
from workflow.lifecycle import ticket_assign

SITE = (31.230400, 121.473700)  # 上海 人民广场
VISIT_FIELDS = [
    {"key": "install_address", "type": "address", "label": {"zh-hans": "安装地址", "en": "Address"},
     "required": False, "public": "edit"},
    {"key": "appointment_at", "type": "datetime", "label": {"zh-hans": "预约时间", "en": "Appointment"},
     "required": False, "public": "edit"},
    {"key": "contact_phone", "type": "phone", "label": {"zh-hans": "联系电话", "en": "Phone"},
     "required": False, "public": "edit"},
]


def visit_template(tenant):
    return published_template(tenant, name="家电安装", slug="install", fields=VISIT_FIELDS, prefix="AZ",
                              category_code="install", category_name="安装")


def visit_ticket(tenant, *, engineer=None, template=None, site=SITE, appointment=None, store=None, title="空调安装"):
    """A ticket whose address field has the site's coordinates (none when site is None)."""
    address = {"text": "上海市黄浦区人民大道120号"}
    if site is not None:
        address.update(lat=site[0], lng=site[1])
    data = {"install_address": address, "contact_phone": "13912345678"}
    if appointment is not None:
        data["appointment_at"] = appointment.isoformat()
    ticket = ticket_intake(tenant=tenant, source="phone", template=template or visit_template(tenant), data=data,
                           customer=CustomerFactory(tenant=tenant, name="王女士"), title=title, store=store)
    if engineer is not None:
        ticket = ticket_assign(ticket=ticket, assignee=engineer, actor=None)
    return ticket


def store_at(tenant, lat, lng):
    return StoreFactory(tenant=tenant, region=RegionFactory(tenant=tenant), latitude=lat, longitude=lng)


def png(width=20, height=10, ink=True):
    """An RGBA PNG as a canvas exports it: transparent, with one dark stroke when `ink`."""
    rows = b""
    for y in range(height):
        row = bytearray(width * 4)
        if ink and y == height // 2:
            for x in range(2, width - 2):
                row[x * 4:x * 4 + 4] = b"\x11\x11\x11\xff"
        rows += b"\x00" + bytes(row)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def signature_upload(**kwargs):
    return SimpleUploadedFile("signature.png", png(**kwargs), content_type="image/png")


def jpeg_upload(name="site.jpg", size=2048):
    return SimpleUploadedFile(name, b"\xff\xd8\xff\xe0" + b"\x00" * (size - 4), content_type="image/jpeg")
