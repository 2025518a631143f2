"""Attachment.content_type is what the file's bytes are (issue 13), not what the browser declared:
anyone can upload notes.txt declared as text/html."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, published_template
from tickets.models import Attachment
from tickets.services import ticket_comment_add, ticket_intake

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.mark.parametrize(("name", "content", "declared", "stored"), [
    ("notes.txt", b"<script>alert(1)</script>", "text/html", "text/plain"),
    ("notes.txt", "请保持电话畅通".encode(), "text/html", "text/plain"),
    ("notes.txt", "请保持电话畅通".encode("gb18030"), "application/javascript", "text/plain"),
    ("table.csv", b"a,b\n1,2\n", "text/html", "text/csv"),
    ("quote.pdf", b"%PDF-1.4 quote", "text/html", "application/pdf"),
    ("fake.pdf", b"<html><script>alert(1)</script>", "application/pdf", "application/octet-stream"),
    ("sheet.xlsx", b"PK\x03\x04rest", "text/html",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "text/html", "application/msword"),
    ("binary.txt", b"ab\x00cd", "text/plain", "application/octet-stream"),
    ("photo.png", PNG, "text/html", "image/png"),
    ("photo.jpg", PNG, "image/jpeg", "image/png"),
])
def test_stored_content_type_comes_from_the_bytes(tenant_a, name, content, declared, stored):
    with tenant_scope(tenant_a):
        template = published_template(tenant_a)
        ticket = ticket_intake(tenant=tenant_a, source="phone", template=template, data={"order_no": "A1"},
                               customer=CustomerFactory(tenant=tenant_a))
        ticket_comment_add(ticket=ticket, body="附件", files=[SimpleUploadedFile(name, content, content_type=declared)])
        assert Attachment.objects.get().content_type == stored
