"""Demo data for field service: engineer 邓卫国 (mj_eng1, 美嘉家电) has five installs booked today
in 上海浦东 — one done (checked in on site, photos, the customer's signature, checked out), one on
site with a flagged check-in (far from the address, with a reason), three still to visit.
Written through the ticket and visit services; run once per tenant (skipped when visits exist)."""

import datetime
import math
import struct
import zlib
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from scrm.models import Customer, Membership, Store
from tickets import fields as schema
from tickets.geo import Point, wgs84_to_gcj02
from tickets.models import SiteVisit
from tickets.selectors import template_list
from tickets.services import (
    site_checkin,
    site_checkout,
    site_photo_add,
    site_signature_add,
    ticket_intake,
)
from workflow.lifecycle import ticket_assign

ENGINEER = "mj_eng1"
# (hour, minute, product, model, address, GCJ-02 lat, lng) — real streets of 浦东新区.
VISITS = [
    (9, 0, "aircon", "格力 KFR-35GW 云佳", "上海市浦东新区张杨路1500号 3号楼1202室", "31.231700", "121.527700"),
    (10, 30, "water_heater", "美的 F6032-V3S", "上海市浦东新区杨高中路2108号 12号楼501室", "31.243600", "121.561200"),
    (13, 30, "aircon", "海尔 KFR-72LW 柜机", "上海市浦东新区锦绣路1001弄 8号902室", "31.205200", "121.555600"),
    (15, 30, "water_heater", "万和 JSQ24-12ET", "上海市浦东新区金桥路1399号 6号楼301室", "31.258800", "121.585100"),
    (17, 0, "aircon", "美的 KFR-26GW 酷省电", "上海市浦东新区川沙路5398号", None, None),
]


def _png(width=96, height=64, colour=(70, 130, 180)):
    """A small solid-colour picture standing in for a camera photo."""
    row = b"\x00" + bytes(colour) * width
    raw = row * height

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _signature_png(width=240, height=80):
    """A transparent pad with a wavy stroke, as the signature canvas exports it."""
    rows = []
    for y in range(height):
        row = bytearray(width * 4)
        for x in range(10, width - 10):
            if abs(y - (height / 2 + 18 * math.sin(x / 14))) < 2:
                row[x * 4:x * 4 + 4] = b"\x11\x11\x11\xff"
        rows.append(b"\x00" + bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def _gps_near(lat, lng, north_m=0):
    """The WGS-84 position a phone reports standing `north_m` metres north of a GCJ-02 site."""
    site = Point(Decimal(lat) + Decimal(north_m) / Decimal(111_000), Decimal(lng))
    shifted = wgs84_to_gcj02(site)
    return site.lat - (shifted.lat - site.lat), site.lng - (shifted.lng - site.lng)


def fieldservice_demo_seed(*, tenant):
    """Seed 邓卫国's day (美嘉家电 only). Returns the number of visits written."""
    membership = Membership.objects.filter(user__username=ENGINEER, is_active=True).select_related("user").first()
    template = next((t for t in template_list() if t.slug == "jiadian_anzhuang"), None)
    if membership is None or template is None or SiteVisit.objects.exists():
        return 0
    engineer = membership.user
    customers = list(Customer.objects.filter(phone__gt="").order_by("id")[:len(VISITS)])
    # Their home 网点, so a site without coordinates falls back to a store in the same district.
    store = Store.objects.filter(code="sh-pudong").first()
    now = timezone.now()
    today = timezone.localtime(now)
    tickets = []
    for i, (hour, minute, product, model, address, lat, lng) in enumerate(VISITS):
        customer = customers[i % len(customers)]
        place = {"text": address}
        if lat:
            place.update(lat=float(lat), lng=float(lng))
        data = {"product_category": product, "model": model,
                "purchase_date": (today.date() - datetime.timedelta(days=2 + i)).isoformat(),
                "install_address": place, "province_city": ["上海市", "浦东新区"],
                "appointment_at": today.replace(hour=hour, minute=minute).strftime("%Y-%m-%dT%H:%M"),
                "contact_phone": customer.phone}
        # Booked yesterday, when today's times were still ahead ("min: now"): validate as then.
        booked = today.replace(hour=hour, minute=minute) + datetime.timedelta(days=1)
        cleaned, files = schema.data_clean(template.current_version.fields,
                                           {**data, "appointment_at": booked.strftime("%Y-%m-%dT%H:%M")},
                                           audience="staff", partial=True)
        moment = datetime.datetime.fromisoformat(cleaned["appointment_at"]) - datetime.timedelta(days=1)
        cleaned["appointment_at"] = moment.isoformat()
        ticket = ticket_intake(tenant=tenant, source="phone", template=template, data=data, audience="staff",
                               title=f"{customer.name} {model} 上门安装", customer=customer, store=store, partial=True,
                               cleaned=(cleaned, files))
        tickets.append(ticket_assign(ticket=ticket, assignee=engineer, actor=None))
    done, on_site = tickets[0], tickets[1]
    gps = _gps_near(VISITS[0][5], VISITS[0][6], north_m=40)
    site_checkin(ticket=done, actor=engineer, lat=gps[0], lng=gps[1], accuracy=18,
                 now=now - datetime.timedelta(minutes=95))
    site_photo_add(ticket=done, actor=engineer, phase="before", node="上门安装",
                   upload=SimpleUploadedFile("安装前.png", _png(colour=(150, 150, 140)), content_type="image/png"))
    site_photo_add(ticket=done, actor=engineer, phase="after", node="上门安装",
                   upload=SimpleUploadedFile("安装后.png", _png(), content_type="image/png"))
    site_signature_add(ticket=done, actor=engineer, signer_name=done.customer.name, rating=5, lat=gps[0], lng=gps[1],
                       upload=SimpleUploadedFile("signature.png", _signature_png(), content_type="image/png"),
                       now=now - datetime.timedelta(minutes=22))
    site_checkout(ticket=done, actor=engineer, lat=gps[0], lng=gps[1], now=now - datetime.timedelta(minutes=20))
    far = _gps_near(VISITS[1][5], VISITS[1][6], north_m=1200)
    site_checkin(ticket=on_site, actor=engineer, lat=far[0], lng=far[1], accuracy=25,
                 reason="客户临时改到小区地下车库储藏室安装，地址在原地址北侧",
                 now=now - datetime.timedelta(minutes=12))
    return 2
