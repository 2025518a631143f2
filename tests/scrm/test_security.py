"""Security regressions of issue 13 at the edge: help text shown as text (stored XSS), the
Content-Security-Policy header, NUL bytes and over-deep JSON answered with 400 (never a 500,
never stored), and the idle session timeout."""

import json

import pytest
import time_machine
from django.core.cache import cache

from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tickets.models import Ticket
from tickets.services import api_key_create

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
FIELDS = [
    {"key": "order_no", "type": "text", "label": {"zh-hans": "订单号", "en": "Order number"}, "required": False,
     "public": "edit", "help": {"zh-hans": XSS, "en": XSS}},
]


@pytest.fixture(autouse=True)
def _clean(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()


@pytest.fixture
def form_url(tenant_a):
    with tenant_scope(tenant_a):
        template = published_template(tenant_a, fields=FIELDS)
    return f"/s/{tenant_a.slug}/{template.slug}/"


@pytest.fixture
def api_secret(tenant_a):
    with tenant_scope(tenant_a):
        published_template(tenant_a, fields=FIELDS)
        _key, secret = api_key_create(tenant=tenant_a, name="ERP")
    return secret


def ticket_count(tenant):
    with tenant_scope(tenant):
        return Ticket.objects.count()


# --- stored XSS and CSP ---------------------------------------------------------------------------

def test_public_form_shows_help_text_as_text(client, form_url):
    body = client.get(form_url).content.decode()
    assert '<img src=x onerror="alert(1)">' not in body
    assert "<script>alert(2)</script>" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in body


def test_staff_new_ticket_form_shows_help_text_as_text(tenant_a, form_url, agent_a, client_for):
    with tenant_scope(tenant_a):
        from tickets.models import TicketTemplate

        template = TicketTemplate.objects.get(slug="complaint")
    body = client_for(agent_a).get(f"/tickets/new/{template.pk}/").content.decode()
    assert "<script>alert(2)</script>" not in body
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body


def test_every_page_forbids_inline_script(client, form_url, admin_a, client_for):
    for response in (client.get(form_url), client.get("/login/"), client_for(admin_a).get("/tickets/"),
                     client_for(admin_a).get("/admin/")):
        policy = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["object-src"] == "'none'"


def test_no_template_carries_an_inline_script():
    from pathlib import Path

    from django.conf import settings

    offenders = []
    for path in Path(settings.BASE_DIR).glob("**/templates/**/*.html"):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        for chunk in text.split("<script")[1:]:
            tag = chunk.split(">", 1)[0]
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(str(path))
        if " onclick=" in text or " onload=" in text or " onchange=" in text or " onsubmit=" in text:
            offenders.append(str(path))
    assert offenders == []


# --- NUL bytes and deep JSON ----------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/track/1-%00/", "/tickets/?q=%00", "/api/v1/tickets/a%00b/", "/s/a%00/b/",
                                 "/login/?next=%00"])
def test_nul_in_path_or_query_is_400(client, admin_a, client_for, url):
    for c in (client, client_for(admin_a)):
        response = c.get(url)
        assert response.status_code == 400
        assert "NUL" in response.json()["detail"]


def test_nul_in_a_public_form_field_is_400_and_writes_nothing(client, tenant_a, form_url):
    data = {"contact_name": "张三", "contact_phone": "13800001234", "order_no": "A1"}
    # An unknown field lands in raw_payload, where PostgreSQL refuses a NUL mid-transaction.
    response = client.post(form_url, {**data, "utm_source": "x\x00"})
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert ticket_count(tenant_a) == 0
    assert client.post(form_url, data).status_code == 302  # the same form without the NUL goes in
    assert ticket_count(tenant_a) == 1


def test_nul_in_api_json_is_400_and_writes_nothing(client, tenant_a, api_secret):
    body = {"template": "complaint", "title": "t", "customer": {"name": "张三", "phone": "13800001234"},
            "data": {"order_no": "1", "extra": "a\u0000b"}}
    response = client.post("/api/v1/tickets/", json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Api-Key {api_secret}"})
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert ticket_count(tenant_a) == 0


def test_nul_in_a_header_is_400_and_writes_nothing(client, tenant_a, api_secret):
    body = {"template": "complaint", "title": "t", "customer": {"name": "张三", "phone": "13800001234"},
            "data": {"order_no": "1"}}
    response = client.post("/api/v1/tickets/", json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Api-Key {api_secret}", "Idempotency-Key": "k\x00"})
    assert response.status_code == 400
    assert ticket_count(tenant_a) == 0


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_json_to_the_api_is_400(client, tenant_a, api_secret, depth):
    client.cookies["django_language"] = "en"
    body = '{"template": "complaint", "data": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/api/v1/tickets/", body, content_type="application/json",
                           headers={"Authorization": f"Api-Key {api_secret}"})
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]
    assert ticket_count(tenant_a) == 0


def test_ordinary_json_passes_the_edge(client, tenant_a, api_secret):
    body = {"template": "complaint", "title": "漏水", "customer": {"name": "张三", "phone": "13800001234"},
            "data": {"order_no": "A1"}}
    response = client.post("/api/v1/tickets/", json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Api-Key {api_secret}"})
    assert response.status_code == 201, response.content
    assert ticket_count(tenant_a) == 1


# --- idle session timeout --------------------------------------------------------------------------

def test_idle_session_ends_after_the_timeout(settings, admin_a, client_for):
    settings.SESSION_IDLE_TIMEOUT = 1800
    with time_machine.travel("2026-03-02 09:00 +0800", tick=False) as clock:
        client = client_for(admin_a)
        assert client.get("/tickets/").status_code == 200
        clock.shift(1700)
        assert client.get("/tickets/").status_code == 200  # activity keeps it alive
        clock.shift(1700)
        assert client.get("/tickets/").status_code == 200
        clock.shift(1801)
        response = client.get("/tickets/")
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


# --- /media/ ---------------------------------------------------------------------------------------

def test_media_is_not_served_directly_even_under_debug(settings, tmp_path, client, admin_a, client_for):
    import importlib

    from django.urls import clear_url_caches

    import scrm.urls

    settings.DEBUG = True
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "secret.txt").write_text("tenant A's contract")
    try:
        importlib.reload(scrm.urls)
        clear_url_caches()
        for c in (client, client_for(admin_a)):
            response = c.get("/media/secret.txt")
            assert response.status_code == 404
            assert b"contract" not in response.content
    finally:
        settings.DEBUG = False
        importlib.reload(scrm.urls)
        clear_url_caches()
