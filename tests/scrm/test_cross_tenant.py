"""Walk every URL and admin route as a user of another tenant and as anonymous: another
tenant's objects answer 404 (as missing ones do), and anonymous users are sent to login.

Every route comes from the resolver, so a route is walked the day it is added: `route_kwargs`
must know how to fill each of its URL arguments with tenant A's objects, or
test_every_route_can_be_built fails. Nobody — another tenant's admin, A's low roles,
anonymous — gets a 500 from any route, and nothing outside the public capability links
(form, tracking token) shows A's data to B or to anonymous."""

import re
from datetime import date

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from dashboards.models import ExportJob, QualityFlag
from dashboards.services import quality_rule_save
from scrm.models import (
    Customer,
    Membership,
    Opportunity,
    Region,
    RegionUserObjectPermission,
    StaffProfile,
    Store,
    Tenant,
)
from scrm.services import region_grant
from scrm.tenancy import tenant_scope
from settlement.models import SettlementRule, SettlementRun
from settlement.services import rule_save
from spareparts import services as parts_services
from spareparts.models import Part, PurchaseRequest, Transfer, Warehouse
from tests.factories import (
    BusinessCalendarFactory,
    CustomerFactory,
    OpportunityFactory,
    RegionFactory,
    SlaPolicyFactory,
    StaffProfileFactory,
    StoreFactory,
    TagFactory,
    TeamFactory,
    published_template,
)
from tickets.models import ApiKey, Attachment, ClassificationRule, SiteVisit, Ticket, TicketTemplate
from tickets.services import api_key_create, classification_rule_save, ticket_comment_add, ticket_intake
from workflow.models import BusinessCalendar, PoolEntry, SlaPolicy, Task, Workflow
from workflow.pool import pool_enter
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

# Routes that are public by design (login, language switch, the public form and tracking link,
# health, callbacks with their own signatures, the API with its own keys) — each has its own tests.
PUBLIC = {
    "login", "set_language", "logout", "ticket-public-form", "ticket-public-thanks", "ticket-track",
    "ticket-public-attachment", "healthz", "password_reset", "password_reset_done", "password_reset_confirm",
    "password_reset_complete", "ticket-track-rate",
}
# Public routes whose URL is a capability (knowing it is the permission): they show A's ticket.
CAPABILITY = {"ticket-public-form", "ticket-public-thanks", "ticket-track", "ticket-public-attachment",
              "ticket-track-rate"}
MARKERS = ("甲客户", "甲门店", "甲区域", "甲商机", "甲工单", "甲订单", "甲备注")
PUBLIC_PREFIXES = ("api/", "hooks/")
# Which model each route with an object id shows, and any other URL kwargs it needs; a new route
# with an id must be added here or the walk fails.
PK_ROUTES = {
    "customer-detail": (Customer, {}),
    "customer-update": (Customer, {}),
    "opportunity-update": (Opportunity, {}),
    "store-detail": (Store, {}),
    "store-update": (Store, {}),
    "ticket-detail": (Ticket, {}),
    "quality-review": (QualityFlag, {}),
    **{name: (ExportJob, {}) for name in ("export-detail", "export-progress", "export-download")},
    "dashboards-ticket-panel": (Ticket, {}),
    "ticket-action": (Ticket, {"action": "comment"}),
    "ticket-attachment": (Attachment, {}),
    "ticket-create": (TicketTemplate, {}),
    **{name: (TicketTemplate, {}) for name in (
        "template-builder", "template-settings", "template-field-form", "template-field-delete",
        "template-fields-reorder", "template-preview", "template-publish", "template-export", "template-import-into",
    )},
    "rule-update": (ClassificationRule, {}),
    "apikey-revoke": (ApiKey, {}),
    **{name: (Workflow, {}) for name in (
        "workflow-designer", "workflow-node", "workflow-node-delete", "workflow-transition",
        "workflow-transition-delete", "workflow-diagram", "workflow-validate", "workflow-publish", "workflow-export",
        "workflow-import",
    )},
    "workflow-calendar": (BusinessCalendar, {}),
    "workflow-calendar-import": (BusinessCalendar, {}),
    "workflow-calendar-day-delete": (BusinessCalendar, {}),
    "workflow-sla": (SlaPolicy, {}),
    "workflow-sla-delete": (SlaPolicy, {}),
    "workflow-ticket-panel": (Ticket, {}),
    **{name: (Ticket, {}) for name in ("workflow-ticket-redispatch", "workflow-ticket-handler",
                                       "workflow-ticket-flag")},
    "workflow-staff-edit": (StaffProfile, {}),
    "workflow-task-act": (Task, {}),
    **{name: (StaffProfile, {}) for name in ("staff-update", "staff-password", "staff-active")},
    "field-visit": (Ticket, {}),
    "field-visit-action": (Ticket, {"action": "checkin"}),
    "field-checkin-review": (SiteVisit, {}),
    "workflow-pool-assign": (PoolEntry, {}),
    "workflow-pool-redispatch": (PoolEntry, {}),
    "parts-transfer-receive": (Transfer, {}),
    "parts-purchase-order": (PurchaseRequest, {}),
    "parts-purchase-cancel": (PurchaseRequest, {}),
    "parts-part-edit": (Part, {}),
    "parts-warehouse-edit": (Warehouse, {}),
    "parts-bom-edit": (TicketTemplate, {}),
    "parts-ticket-panel": (Ticket, {}),
    "parts-ticket-scan": (Ticket, {}),
    **{name: (SettlementRun, {}) for name in ("settlement-run", "settlement-run-progress")},
    "settlement-statement": (SettlementRun, {"party_pk": 1}),
    "settlement-export": (SettlementRun, {"fmt": "csv"}),
    "settlement-rule": (SettlementRule, {}),
    **{name: (model_name, {}) for name, model_name in (
        ("automation-trigger", "auto_trigger"), ("automation-firing-retry", "auto_firing"),
        ("automation-schedule", "auto_schedule"), ("automation-revisit-record", "auto_revisit"))},
}


def route_url(name, world):
    model, extra = PK_ROUTES[name]
    pattern = dict(staff_routes())[name]
    key = "template_id" if "<int:template_id>" in pattern else "pk"
    return reverse(name, kwargs={key: world[model].pk, **extra})


def all_routes():
    """(name, pattern) for every named route outside the admin, the public and API ones included."""
    found = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if getattr(p, "app_name", None) == "admin" or str(p.pattern).startswith("admin/"):
                    continue
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                found.append((p.name, prefix + str(p.pattern)))

    walk(get_resolver().url_patterns)
    return found


def route_kwargs(name, pattern, world):
    """Tenant A's values for every argument of a route; KeyError for one nobody taught it."""
    ticket = world[Ticket]
    values = {
        "action": "comment", "number": ticket.number, "token": ticket.tracking_token,
        "tenant_slug": ticket.tenant.slug, "template_slug": world[TicketTemplate].slug,
        "uidb64": "MQ", "pk": None, "template_id": None, "party_pk": 1, "fmt": "csv",
    }
    if name == "password_reset_confirm":
        values["token"] = "set-password"
    kwargs = {}
    for arg in re.findall(r"<(?:\w+:)?(\w+)>", pattern):
        if arg in ("pk", "template_id"):
            model = Attachment if name == "ticket-public-attachment" else PK_ROUTES[name][0]
            kwargs[arg] = world[model].pk
        else:
            kwargs[arg] = values[arg]
    return kwargs


def staff_routes():
    """(name, pattern) for every named non-admin route."""
    found = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if getattr(p, "app_name", None) == "admin" or str(p.pattern).startswith("admin/"):
                    continue
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name and not (prefix + str(p.pattern)).startswith(PUBLIC_PREFIXES):
                found.append((p.name, prefix + str(p.pattern)))

    walk(get_resolver().url_patterns)
    return found


@pytest.fixture
def world(tenant_a, tenant_b, admin_a, admin_b):
    """One of everything in tenant A, and a marker customer name to look for in B's pages."""
    with tenant_scope(tenant_a):
        region = RegionFactory(tenant=tenant_a, name="甲区域")
        store = StoreFactory(tenant=tenant_a, region=region, name="甲门店")
        customer = CustomerFactory(tenant=tenant_a, name="甲客户", region=region, store=store)
        objects = {
            Region: region, Store: store, Customer: customer,
            Opportunity: OpportunityFactory(customer=customer, title="甲商机"),
            "team": TeamFactory(tenant=tenant_a, name="甲小组"),
            "tag": TagFactory(tenant=tenant_a, name="甲标签"),
            "staff": StaffProfileFactory(tenant=tenant_a, display_name="甲员工"),
            Membership: Membership.objects.get(user=admin_a),
        }
        objects[StaffProfile] = objects["staff"]
        region_grant(user=admin_a, region=region)
        objects[RegionUserObjectPermission] = RegionUserObjectPermission.objects.get(user=admin_a)
        template = published_template(tenant_a)
        workflow = workflow_create(template=template, name="甲流程")
        workflow_draft_set(workflow=workflow, graph={
            "nodes": [{"key": "start", "kind": "start", "name": "开始"},
                      {"key": "work", "kind": "task", "name": "甲节点",
                       "handler": {"rule": "role", "role": "admin", "scope": "tenant"}},
                      {"key": "end", "kind": "end", "name": "结束"}],
            "transitions": [{"from": "start", "to": "work"}, {"from": "work", "to": "end"}]})
        workflow_publish(workflow=workflow)
        ticket = ticket_intake(tenant=tenant_a, source="phone", template=template, data={"order_no": "甲订单"},
                               customer=customer, title="甲工单")
        ticket_comment_add(ticket=ticket, body="甲备注", actor=admin_a,
                           files=[SimpleUploadedFile("甲.txt", b"hello", content_type="text/plain")])
        objects[ClassificationRule] = classification_rule_save(tenant=tenant_a, name="甲规则", keywords="甲",
                                                               set_priority="high")
        objects[ApiKey] = api_key_create(tenant=tenant_a, name="甲密钥")[0]
        objects.update({Workflow: workflow, Task: Task.objects.get(ticket=ticket),
                        BusinessCalendar: BusinessCalendarFactory(tenant=tenant_a, name="甲日历"),
                        SlaPolicy: SlaPolicyFactory(tenant=tenant_a, name="甲SLA")})
        objects[PoolEntry] = pool_enter(ticket=ticket, reason="flagged", detail="甲异常", actor=admin_a)
        objects.update({TicketTemplate: template, Ticket: ticket, Attachment: Attachment.objects.get(),
                        "event": ticket.events.first(), "category": template.category})
        objects[SiteVisit] = SiteVisit.objects.create(
            tenant=tenant_a, ticket=ticket, engineer=admin_a, radius_m=300, checked_in_at=ticket.created_at,
            verdict="outside", flagged=True, reason="甲理由")
        part = parts_services.part_create(tenant=tenant_a, sku="JIA-1", name="甲备件")
        w1, w2 = (parts_services.warehouse_create(tenant=tenant_a, code=c, name=f"甲仓{c}", kind="central")
                  for c in ("w1", "w2"))
        parts_services.stock_receive(warehouse=w1, part=part, quantity=2, actor=None)
        objects.update({Part: part, Warehouse: w1})
        objects[Transfer] = parts_services.transfer_create(part=part, source=w1, destination=w2, quantity=1,
                                                           actor=None)
        objects[PurchaseRequest] = PurchaseRequest.objects.create(tenant=tenant_a, part=part, warehouse=w2,
                                                                  quantity=3)
        objects.update({SettlementRun: SettlementRun.objects.create(
            tenant=tenant_a, period_kind="month", period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)),
            SettlementRule: rule_save(tenant=tenant_a, name="甲结算规则", kind="fixed", params={"amount": 1})})
        objects.update(automation_world(tenant_a, template=template, customer=customer, ticket=ticket))
        objects[QualityFlag] = QualityFlag.objects.create(
            tenant=tenant_a, ticket=ticket, excerpt="甲备注",
            rule=quality_rule_save(tenant=tenant_a, name="甲质检", kind="flag", phrases="甲"))
        objects[ExportJob] = ExportJob.objects.create(tenant=tenant_a, requested_by=admin_a, format="csv")
    return objects


def automation_world(tenant, *, template, customer, ticket):
    import datetime

    from automation.models import Firing, FiringStatus, Revisit
    from automation.services import schedule_create, trigger_create

    trigger = trigger_create(tenant=tenant, name="甲触发器", event="customer.created", action="add_tag",
                             params={"tag": "甲"})
    return {
        "auto_trigger": trigger,
        "auto_firing": Firing.objects.create(tenant=tenant, trigger=trigger, event="customer.created",
                                             subject_type="customer", subject_id=customer.pk, subject_label="甲客户",
                                             status=FiringStatus.DEAD, outcome="甲失败"),
        "auto_schedule": schedule_create(tenant=tenant, name="甲巡检", template=template, recurrence="daily",
                                         at_time=datetime.time(9), starts_on=datetime.date(2099, 1, 1)),
        "auto_revisit": Revisit.objects.create(tenant=tenant, customer=customer, ticket=ticket, reason="甲回访",
                                               due_on=datetime.date(2099, 1, 1)),
    }


def test_every_pk_route_is_covered():
    with_pk = {name for name, pattern in staff_routes() if "<int:" in pattern and name not in PUBLIC}
    assert with_pk == set(PK_ROUTES)


@pytest.mark.django_db
def test_other_tenant_gets_404_on_every_object_route(world, admin_b, client_for):
    client = client_for(admin_b)
    for name in PK_ROUTES:
        url = route_url(name, world)
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"name": "篡改", "body": "篡改"}).status_code in (404, 405), url
    with tenant_scope(world[Customer].tenant):
        assert Customer.objects.get(pk=world[Customer].pk).name == "甲客户"


@pytest.mark.django_db
def test_other_tenant_lists_show_nothing_of_tenant_a(world, admin_b, client_for):
    client = client_for(admin_b)
    for name, pattern in staff_routes():
        if name in PUBLIC or "<" in pattern:
            continue
        response = client.get(reverse(name))
        assert response.status_code in (200, 405), name
        body = response.content.decode()
        for marker in ("甲客户", "甲门店", "甲区域", "甲商机", "甲工单"):
            assert marker not in body, (name, marker)


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_everywhere(world, client):
    for name, _pattern in staff_routes():
        if name in PUBLIC:
            continue
        url = route_url(name, world) if name in PK_ROUTES else reverse(name)
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def admin_object(world, model):
    if model in world:
        return world[model]
    by_label = {"scrm.Team": "team", "scrm.Tag": "tag", "scrm.StaffProfile": "staff", "scrm.Skill": None,
                "tickets.TimelineEvent": "event", "tickets.Category": "category"}
    key = by_label.get(model._meta.label)
    return world.get(key) if key else None


@pytest.mark.django_db
def test_admin_of_other_tenant_gets_404_on_every_admin_object(world, admin_b, client_for):
    client = client_for(admin_b)
    # Give B's admin every permission, so only the tenant scope can stand in the way.
    admin_b.user_permissions.set(Permission.objects.filter(
        content_type__app_label__in=["scrm", "tickets", "dashboards"]))
    checked = []
    for model in admin.site._registry:
        obj = admin_object(world, model)
        if model is Tenant:
            obj = world[Customer].tenant
        if obj is None:
            continue
        info = (model._meta.app_label, model._meta.model_name)
        for view in ("change", "delete", "history"):
            url = reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj.pk])
            status = client.get(url).status_code
            expected = (403, 404) if model is Tenant else (404,)
            assert status in expected, (url, status)
        changelist = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"))
        if model is not Tenant:
            assert changelist.status_code == 200
            assert str(obj) not in changelist.content.decode(), model
        checked.append(model._meta.label)
    assert {"scrm.Customer", "scrm.Store", "scrm.Region", "scrm.Opportunity", "scrm.Tenant", "tickets.Ticket",
            "tickets.TicketTemplate", "tickets.TimelineEvent", "tickets.Attachment"} <= set(checked)


@pytest.mark.django_db
def test_every_route_can_be_built(world):
    """A new route with an argument nobody fills fails here (KeyError), not silently unwalked."""
    urls = [reverse(name, kwargs=route_kwargs(name, pattern, world)) for name, pattern in all_routes()]
    assert len(urls) == len(all_routes()) > 50


@pytest.mark.django_db
def test_no_route_answers_500_or_shows_tenant_a_to_outsiders(world, admin_b, engineer_a, agent_a, finance_a,
                                                              client_for, client):
    """Every route, GET and an empty POST, as B's admin, anonymous and A's low roles."""
    visitors = {"admin_b": client_for(admin_b), "anonymous": client, "engineer_a": client_for(engineer_a),
                "agent_a": client_for(agent_a), "finance_a": client_for(finance_a)}
    walked = 0
    for name, pattern in all_routes():
        if name == "logout":
            continue
        url = reverse(name, kwargs=route_kwargs(name, pattern, world))
        for who, visitor in visitors.items():
            for method in ("get", "post"):
                response = getattr(visitor, method)(url)
                walked += 1
                assert response.status_code < 500, (who, method, url, response.status_code)
                if who in ("admin_b", "anonymous") and name not in CAPABILITY and 200 <= response.status_code < 300:
                    body = b"".join(response) if response.streaming else response.content
                    text = body.decode(errors="replace")
                    assert not [m for m in MARKERS if m in text], (who, method, url)
    assert walked >= len(all_routes()) * 9


# --- bad input to every form and endpoint -------------------------------------------------------------

FIELD_NAME = re.compile(r'<(?:input|textarea|select)\b(?![^>]*type="(?:file|submit|hidden)")[^>]*\bname="([^"]+)"')
LONG = "长" * 100_000
DEEP = "[" * 50_000 + "]" * 50_000


def form_fields(response):
    """The names of the fields a page's forms send (file inputs and the CSRF token left out)."""
    if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
        return []
    return sorted(set(FIELD_NAME.findall(response.content.decode(errors="replace"))) - {"csrfmiddlewaretoken"})


@pytest.mark.django_db
def test_bad_input_to_every_form_and_endpoint_is_a_4xx(world, admin_a, client_for):
    """As A's admin (who may use every page): NUL bytes are a 400, 100,000-character values and
    JSON nested 50,000 deep never a 500 — in the path's query, every form field, and JSON bodies."""
    _key, secret = api_key_create_in(world)
    api = {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
    posted_fields = 0
    for name, pattern in all_routes():
        if name in ("logout", "set_language"):
            continue
        url = reverse(name, kwargs=route_kwargs(name, pattern, world))
        client = client_for(admin_a)
        assert client.get(url, {"q": "a\x00b"}, **api).status_code == 400, url
        assert client.get(url, {"q": LONG, "page": LONG}, **api).status_code < 500, url
        fields = form_fields(client.get(url)) or ["name", "body", "title"]
        posted_fields += len(fields)
        nul = client.post(url, dict.fromkeys(fields, "a\x00b"), **api)
        assert nul.status_code == 400, (url, nul.status_code)
        long = client.post(url, dict.fromkeys(fields, LONG), **api)
        assert long.status_code < 500, (url, long.status_code)
        for body in (DEEP, '{"template": "' + LONG + '", "data": {"x": "' + LONG + '"}}', '{"a": "\\u0000"}'):
            response = client.post(url, body, content_type="application/json", **api)
            assert response.status_code < 500, (url, response.status_code)
            if body == DEEP or "u0000" in body:
                assert response.status_code == 400, (url, response.status_code)
    assert posted_fields > 100  # the pages' real forms were found and filled
    with tenant_scope(world[Ticket].tenant):
        stored = [*Ticket.objects.values_list("title", "description"), *Customer.objects.values_list("name", "note")]
        assert not [row for row in stored if any("\x00" in (value or "") for value in row)]


def api_key_create_in(world):
    with tenant_scope(world[Ticket].tenant):
        return api_key_create(tenant=world[Ticket].tenant, name="坏输入")
