"""The REST API: API-key authentication, ticket creation (idempotent with a key), lists, detail,
templates and the OpenAPI schema. Bad input is a 4xx JSON answer that writes nothing."""

import datetime
import json

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path

from notifications.models import Notification
from scrm.models import Customer
from scrm.tenancy import tenant_scope
from scrm.urls import urlpatterns as root_urlpatterns
from tests.factories import CustomerFactory, OpportunityFactory, RegionFactory, StoreFactory
from tickets.models import ApiKey, IdempotencyRecord, Source, Status, Ticket, TimelineEvent
from tickets.services import (
    api_key_create,
    api_key_revoke,
    category_get_or_create,
    template_create,
    template_draft_set,
    template_publish,
)
from workflow.lifecycle import ticket_status_change

urlpatterns = [path("", include("tickets.api_urls")), *root_urlpatterns]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

URL = "/api/v1/tickets/"
FIELDS = [
    {"key": "desc", "type": "textarea", "label": {"zh-hans": "描述"}, "required": False, "public": "edit"},
    {"key": "order_no", "type": "text", "label": {"zh-hans": "订单号"}, "required": True, "public": "edit"},
]


def make_template(tenant, *, slug="repair", prefix="WX", fields=FIELDS, publish=True):
    category = category_get_or_create(tenant=tenant, code="repair", name="维修")
    template = template_create(tenant=tenant, name=f"报修{slug}", slug=slug, category=category, number_prefix=prefix)
    template_draft_set(template=template, fields=fields)
    if publish:
        template_publish(template=template)
    template.refresh_from_db()
    return template


@pytest.fixture
def api_a(tenant_a):
    with tenant_scope(tenant_a):
        make_template(tenant_a)
        _key, secret = api_key_create(tenant=tenant_a, name="ERP")
    return secret


@pytest.fixture
def api_b(tenant_b):
    with tenant_scope(tenant_b):
        make_template(tenant_b, prefix="MJ")
        _key, secret = api_key_create(tenant=tenant_b, name="CRM")
    return secret


def post(client, secret, body, *, key=None, raw=None, content_type="application/json"):
    headers = {"Authorization": f"Api-Key {secret}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(URL, data=raw if raw is not None else json.dumps(body), content_type=content_type,
                       headers=headers)


def get(client, secret, url):
    return client.get(url, headers={"Authorization": f"Api-Key {secret}"})


def counts(tenant):
    with tenant_scope(tenant):
        return {
            "tickets": Ticket.objects.count(), "events": TimelineEvent.objects.count(),
            "customers": Customer.objects.count(), "idempotency": IdempotencyRecord.objects.count(),
            "notifications": Notification.objects.count(),
        }


def body(**overrides):
    payload = {
        "template": "repair", "title": "冰箱不制冷", "description": "买了三个月", "priority": "high",
        "data": {"order_no": "JD-1001", "desc": "冷藏室不冷"},
        "customer": {"name": "王女士", "phone": "138 1234 5678", "email": "wang@example.com"},
    }
    payload.update(overrides)
    return payload


# --- create -----------------------------------------------------------------------------

def test_create_ticket(client, tenant_a, api_a):
    response = post(client, api_a, body())
    assert response.status_code == 201, response.content
    answer = response.json()
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.select_related("customer").get()
        assert answer["number"] == ticket.number
        assert ticket.number.startswith("WX-")
        assert answer["id"] == ticket.pk
        assert answer["status"] == "new"
        assert answer["customer_id"] == ticket.customer_id
        assert answer["data"] == {"order_no": "JD-1001", "desc": "冷藏室不冷"}
        assert answer["tracking_url"] == f"http://127.0.0.1:8000/track/{ticket.tracking_token}/"
        assert ticket.source == Source.API
        assert ticket.title == "冰箱不制冷"
        assert ticket.priority == "high"
        assert ticket.created_by is None
        assert ticket.customer.phone == "13812345678"
        assert ticket.customer.name == "王女士"
        assert ticket.raw_payload["data"]["order_no"] == "JD-1001"
        assert [e.kind for e in ticket.events.all()] == ["created"]


def test_create_with_existing_customer_store_and_opportunity(client, tenant_a, api_a):
    with tenant_scope(tenant_a):
        store = StoreFactory(region=RegionFactory(tenant=tenant_a))
        customer = CustomerFactory(tenant=tenant_a, name="老客户")
        opportunity = OpportunityFactory(customer=customer)
    response = post(client, api_a, body(customer=None, customer_id=customer.pk, store_id=store.pk,
                                        opportunity_id=opportunity.pk))
    assert response.status_code == 201, response.content
    with tenant_scope(tenant_a):
        ticket = Ticket.objects.get()
        assert (ticket.customer_id, ticket.store_id, ticket.opportunity_id) == (customer.pk, store.pk, opportunity.pk)
        assert ticket.region_id == store.region_id
        assert Customer.objects.count() == 1


@pytest.mark.parametrize("overrides, field", [
    ({"template": None}, "template"),
    ({"template": "no-such-template"}, "template"),
    ({"template": "not a slug!"}, "template"),
    ({"priority": "whenever"}, "priority"),
    ({"title": "长" * 201}, "title"),
    ({"data": ["order_no"]}, "data"),
    ({"data": {"desc": "没有订单号"}}, "data.order_no"),
    ({"data": {"order_no": "X" * 1001}}, "data.order_no"),
    ({"customer": {"name": "李四", "phone": "12345"}}, "customer.phone"),
    ({"customer": {"name": "李四", "email": "not-an-email"}}, "customer.email"),
    ({"customer_id": "abc"}, "customer_id"),
    ({"customer_id": 999999}, "customer_id"),
    ({"store_id": 0}, "store_id"),
    ({"custmer": {"name": "typo"}}, "custmer"),
])
def test_bad_input_is_400_with_a_field_error_and_writes_nothing(client, tenant_a, api_a, overrides, field):
    payload = body(**overrides)
    if overrides.get("template", "") is None:
        del payload["template"]
    before = counts(tenant_a)
    response = post(client, api_a, payload)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["detail"]
    assert field in answer["errors"], answer
    assert all(isinstance(m, str) and m for m in answer["errors"][field])
    assert counts(tenant_a) == before


def test_unpublished_template_is_a_field_error(client, tenant_a, api_a):
    with tenant_scope(tenant_a):
        make_template(tenant_a, slug="draft-only", prefix="DR", publish=False)
    before = counts(tenant_a)
    response = post(client, api_a, body(template="draft-only"))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["template"]
    assert counts(tenant_a) == before


def test_other_tenants_objects_are_field_errors_not_404(client, tenant_a, tenant_b, api_a):
    with tenant_scope(tenant_b):
        make_template(tenant_b, slug="b-only", prefix="MJ")
        store = StoreFactory(region=RegionFactory(tenant=tenant_b))
        customer = CustomerFactory(tenant=tenant_b)
        opportunity = OpportunityFactory(customer=customer)
    before_a, before_b = counts(tenant_a), counts(tenant_b)
    cases = [
        ({"template": "b-only"}, "template"),
        ({"customer_id": customer.pk}, "customer_id"),
        ({"store_id": store.pk}, "store_id"),
        ({"opportunity_id": opportunity.pk}, "opportunity_id"),
    ]
    for overrides, field in cases:
        response = post(client, api_a, body(**overrides))
        assert response.status_code == 400, overrides
        assert list(response.json()["errors"]) == [field]
    assert (counts(tenant_a), counts(tenant_b)) == (before_a, before_b)


def test_opportunity_of_another_customer_is_refused(client, tenant_a, api_a):
    with tenant_scope(tenant_a):
        customer = CustomerFactory(tenant=tenant_a)
        opportunity = OpportunityFactory(customer=CustomerFactory(tenant=tenant_a))
    before = counts(tenant_a)
    response = post(client, api_a, body(customer=None, customer_id=customer.pk, opportunity_id=opportunity.pk))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["opportunity_id"]
    assert counts(tenant_a) == before


@pytest.mark.parametrize("raw, content_type, code", [
    ("[1, 2]", "application/json", 400),
    ('{"template": "repair",', "application/json", 400),
    ("template=repair", "application/x-www-form-urlencoded", 415),
    ("<xml/>", "text/xml", 415),
])
def test_malformed_bodies(client, tenant_a, api_a, raw, content_type, code):
    before = counts(tenant_a)
    response = post(client, api_a, None, raw=raw, content_type=content_type)
    assert response.status_code == code
    assert response.json()["detail"]
    assert counts(tenant_a) == before


def test_oversized_body_is_413(client, tenant_a, api_a):
    before = counts(tenant_a)
    response = post(client, api_a, body(description="长" * 100_000))  # 300 KB of UTF-8
    assert response.status_code == 413
    assert "256" in response.json()["detail"]
    assert counts(tenant_a) == before


# --- authentication ---------------------------------------------------------------------

def test_bad_keys_are_401(client, tenant_a, api_a):
    prefix = api_a.split(".")[0]
    before = counts(tenant_a)
    for headers in (
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Api-Key"},
        {"Authorization": "Api-Key a b"},
        {"Authorization": "Api-Key no-dot"},
        {"Authorization": f"Api-Key {prefix}.wrong-secret"},
        {"Authorization": f"Api-Key zzzzzzzz.{api_a.split('.', 1)[1]}"},
    ):
        response = client.post(URL, data=json.dumps(body()), content_type="application/json", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["detail"]
        assert response["WWW-Authenticate"] == "Api-Key"
        assert client.get(URL, headers=headers).status_code == 401
    assert counts(tenant_a) == before


def test_revoked_key_and_inactive_tenant_are_401(client, tenant_a, api_a):
    with tenant_scope(tenant_a):
        key, secret = api_key_create(tenant=tenant_a, name="old")
        api_key_revoke(key=key)
    response = get(client, secret, URL)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"] or "吊销" in response.json()["detail"]
    assert get(client, api_a, URL).status_code == 200
    tenant_a.is_active = False
    tenant_a.save()
    assert get(client, api_a, URL).status_code == 401


def test_a_used_key_shows_when_it_was_last_used_without_a_write_per_call(client, tenant_a, api_a):
    def last_used():
        with tenant_scope(tenant_a):
            return ApiKey.objects.get(prefix=api_a.split(".")[0]).last_used_at

    assert last_used() is None
    with time_machine.travel("2026-11-23 10:00 +0800", tick=False):
        assert get(client, api_a, URL).status_code == 200
        first = last_used()
        assert first is not None
        with CaptureQueriesContext(connection) as calls:
            get(client, api_a, URL)
        assert not any(q["sql"].startswith("UPDATE") for q in calls.captured_queries)
    with time_machine.travel("2026-11-23 10:06 +0800", tick=False):
        get(client, api_a, URL)
    assert last_used() - first == datetime.timedelta(minutes=6)


@pytest.mark.django_db(transaction=True)  # no test transaction around it: what production sends
def test_a_ticket_with_an_idempotency_key_is_one_transaction_without_savepoints(client, tenant_a, api_a):
    post(client, api_a, body(), key="warm-up")  # fills the process's configuration cache
    with CaptureQueriesContext(connection) as calls:
        response = post(client, api_a, body(title="第二单"), key="second")
    assert response.status_code == 201, response.content
    sql = [q["sql"] for q in calls.captured_queries]
    assert not [q for q in sql if "SAVEPOINT" in q]
    assert not [q for q in sql if q.startswith("SELECT config_stamp")]  # pinned from the key's tenant row
    assert not [q for q in sql if 'FROM "tickets_tickettemplate"' in q]  # from the cache


def test_checking_a_key_reads_the_key_and_its_tenant_in_one_query(tenant_a, api_a):
    from rest_framework.test import APIRequestFactory

    from tickets.api import ApiKeyAuthentication

    request = APIRequestFactory().get(URL, HTTP_AUTHORIZATION=f"Api-Key {api_a}")
    ApiKeyAuthentication().authenticate(request)  # the first use writes last_used_at
    with CaptureQueriesContext(connection) as calls:
        client_, _none = ApiKeyAuthentication().authenticate(request)
    assert client_.tenant == tenant_a and client_.tenant.name == tenant_a.name
    assert len(calls.captured_queries) == 1
    assert '"scrm_tenant"' in calls.captured_queries[0]["sql"]


def test_a_refused_key_is_not_marked_used(client, tenant_a):
    with tenant_scope(tenant_a):
        key, secret = api_key_create(tenant=tenant_a, name="old")
        api_key_revoke(key=key)
    assert get(client, secret, URL).status_code == 401
    assert get(client, secret[:-2] + "xx", URL).status_code == 401
    with tenant_scope(tenant_a):
        assert ApiKey.objects.get(pk=key.pk).last_used_at is None


@time_machine.travel("2026-11-23 10:00:05 +0800", tick=False)  # every call in one window
def test_more_calls_than_the_keys_rate_are_429_with_retry_after_and_write_nothing(client, tenant_a, api_a,
                                                                               settings):
    cache.clear()
    settings.API_RATE_PER_MINUTE = 2
    assert post(client, api_a, body()).status_code == 201
    assert get(client, api_a, URL).status_code == 200
    before = counts(tenant_a)
    refused = post(client, api_a, body(title="第三次"), key="third")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "55"
    assert refused.json()["detail"]
    assert counts(tenant_a) == before  # no ticket, no idempotency row
    # A bad key is still 401, and not counted; another key of the tenant has its own count.
    assert get(client, api_a[:-2] + "xx", URL).status_code == 401
    with tenant_scope(tenant_a):
        _key, other = api_key_create(tenant=tenant_a, name="second")
    assert post(client, other, body(title="另一把钥匙")).status_code == 201


def test_signed_in_staff_without_key_is_401(client_for, agent_a):
    assert client_for(agent_a).get(URL).status_code == 401


# --- idempotency ------------------------------------------------------------------------

def test_retry_with_same_key_returns_the_first_ticket(client, tenant_a, api_a):
    first = post(client, api_a, body(), key="order-JD-1001")
    assert first.status_code == 201
    # Same content, other key order and spacing: the same request.
    same = json.dumps(dict(reversed(list(body().items()))), indent=2)
    again = post(client, api_a, None, raw=same, key="order-JD-1001")
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == first.json()["number"]
    assert again.json()["id"] == first.json()["id"]
    assert "Idempotent-Replayed" not in first
    with tenant_scope(tenant_a):
        assert Ticket.objects.count() == 1
        assert IdempotencyRecord.objects.get().ticket_id == first.json()["id"]


def test_same_key_different_body_is_422(client, tenant_a, api_a):
    first = post(client, api_a, body(), key="k-1")
    assert first.status_code == 201
    before = counts(tenant_a)
    response = post(client, api_a, body(title="另一件事"), key="k-1")
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert counts(tenant_a) == before


def test_failed_request_does_not_burn_its_key(client, tenant_a, api_a):
    bad = post(client, api_a, body(data={"desc": "忘了订单号"}), key="k-2")
    assert bad.status_code == 400
    assert counts(tenant_a)["idempotency"] == 0
    good = post(client, api_a, body(), key="k-2")
    assert good.status_code == 201
    assert counts(tenant_a)["tickets"] == 1


def test_keys_are_per_tenant(client, tenant_a, tenant_b, api_a, api_b):
    a = post(client, api_a, body(), key="shared")
    b = post(client, api_b, body(), key="shared")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["number"].startswith("WX-")
    assert b.json()["number"].startswith("MJ-")
    assert counts(tenant_a)["tickets"] == counts(tenant_b)["tickets"] == 1


def test_overlong_idempotency_key_is_400(client, tenant_a, api_a):
    response = post(client, api_a, body(), key="k" * 101)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["Idempotency-Key"]
    assert counts(tenant_a)["tickets"] == 0


# --- reads ------------------------------------------------------------------------------

def test_list_detail_and_status_filter(client, tenant_a, tenant_b, api_a, api_b):
    numbers = [post(client, api_a, body(title=f"第{i}单")).json()["number"] for i in range(3)]
    post(client, api_b, body(title="乙的工单"))
    with tenant_scope(tenant_a):
        ticket_status_change(ticket=Ticket.objects.get(number=numbers[0]), action="start", actor=None)

    listing = get(client, api_a, URL).json()
    assert listing["count"] == 3
    assert [t["number"] for t in listing["results"]] == list(reversed(numbers))
    assert listing["next"] is None

    started = get(client, api_a, f"{URL}?status=in_progress").json()
    assert [t["number"] for t in started["results"]] == [numbers[0]]
    assert started["results"][0]["status"] == Status.IN_PROGRESS

    paged = get(client, api_a, f"{URL}?page_size=2").json()
    assert len(paged["results"]) == 2
    assert paged["next"].endswith("page=2&page_size=2")

    bad = get(client, api_a, f"{URL}?status=bogus")
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["status"]

    detail = get(client, api_a, f"{URL}{numbers[1]}/")
    assert detail.status_code == 200
    assert detail.json()["title"] == "第1单"
    assert detail.json()["template"] == "repair"


def test_list_queries_do_not_grow_with_rows(client, tenant_a, api_a):
    for i in range(2):
        post(client, api_a, body(title=f"少{i}"))
    with CaptureQueriesContext(connection) as few:
        assert get(client, api_a, URL).json()["count"] == 2
    for i in range(8):
        post(client, api_a, body(title=f"多{i}", customer={"phone": f"1390000000{i}"}))
    with CaptureQueriesContext(connection) as many:
        assert get(client, api_a, URL).json()["count"] == 10
    assert len(many.captured_queries) == len(few.captured_queries) <= 5


def test_other_tenants_ticket_is_404(client, tenant_a, tenant_b, api_a, api_b):
    number_a = post(client, api_a, body()).json()["number"]
    assert get(client, api_b, f"{URL}{number_a}/").status_code == 404
    assert get(client, api_b, f"{URL}NOPE-20260101-0001/").status_code == 404
    assert get(client, api_b, URL).json()["count"] == 0
    assert client.get(f"{URL}{number_a}/").status_code == 401


def test_templates_lists_published_ones_with_fields(client, tenant_a, tenant_b, api_a, api_b):
    with tenant_scope(tenant_a):
        make_template(tenant_a, slug="draft-only", prefix="DR", publish=False)
    answer = get(client, api_a, "/api/v1/templates/").json()
    assert [t["slug"] for t in answer] == ["repair"]
    assert answer[0]["version"] == 1
    assert answer[0]["category"] == {"code": "repair", "name": "维修"}
    assert [f["key"] for f in answer[0]["fields"]] == ["desc", "order_no"]
    assert answer[0]["fields"][1]["required"] is True


def test_openapi_schema_documents_the_api(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert {"/api/v1/tickets/", "/api/v1/tickets/{number}/", "/api/v1/templates/"} <= set(schema["paths"])
    create = schema["paths"]["/api/v1/tickets/"]["post"]
    headers = [p["name"] for p in create["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    assert {"201", "200", "400", "401", "413", "415", "422"} <= set(create["responses"])
    assert create["security"] == [{"ApiKey": []}]
    assert schema["components"]["securitySchemes"]["ApiKey"]["in"] == "header"
    assert "TicketCreate" in schema["components"]["schemas"]



@pytest.mark.parametrize(("query", "param"), [
    ("page=", "page"), ("page=0", "page"), ("page=-1", "page"), ("page=abc", "page"),
    ("page_size=false", "page_size"), ("page_size=0", "page_size"), ("page_size=201", "page_size"),
    ("status=", "status"), ("status=bogus", "status"),
])
def test_list_query_parameters_are_checked_against_the_schema(client, api_a, query, param):
    response = get(client, api_a, f"{URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [param]


def test_list_page_past_the_end_is_the_documented_404(client, api_a):
    assert get(client, api_a, f"{URL}?page=1&page_size=200").status_code == 200
    assert get(client, api_a, f"{URL}?page=2").status_code == 404
    schema = client.get("/api/schema/?format=json").json()
    assert "404" in schema["paths"]["/api/v1/tickets/"]["get"]["responses"]
