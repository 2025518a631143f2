"""The automation pages as a manager and an agent use them: the trigger form builds a condition
from rows and refuses bad input with field errors (nothing saved); the firings page retries;
schedules and revisits are listed in a constant number of queries; a revisit's outcome is
recorded, and an unhappy one opens a follow-up ticket."""

import datetime

import pytest
from django.urls import reverse

from automation.models import Firing, FiringStatus, Revisit, RevisitStatus, Schedule, Trigger
from automation.services import schedule_create, trigger_create
from tests.automation.conftest import WON
from tests.factories import CustomerFactory
from tickets.models import Ticket
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db

SH = datetime.timezone(datetime.timedelta(hours=8))


def _post(**extra):
    data = {"name": "签约生成安装工单", "event": "opportunity.stage_entered", "is_active": "on",
            "action": "create_ticket", "template": "anzhuang", "title": "安装：{opportunity.title}",
            "mapping": "contract_title = opportunity.title\ncontact_phone = customer.phone",
            "c0_field": "opportunity.stage", "c0_op": "=", "c0_value": "won",
            "c1_field": "opportunity.amount", "c1_op": ">", "c1_value": "10000"}
    data.update(extra)
    return data


def test_manager_creates_a_trigger_from_the_form(client_for, manager_a, install_template):
    response = client_for(manager_a).post(reverse("automation-trigger-create"), _post())
    assert response.status_code == 302
    trigger = Trigger.objects.get()
    assert trigger.condition == {"all": [{"field": "opportunity.stage", "op": "=", "value": "won"},
                                         {"field": "opportunity.amount", "op": ">", "value": 10000}]}
    assert trigger.params["mapping"] == {"contract_title": "opportunity.title", "contact_phone": "customer.phone"}
    page = client_for(manager_a).get(reverse("automation-trigger", args=[trigger.pk]))
    assert page.status_code == 200 and "opportunity.title" in page.content.decode()


@pytest.mark.parametrize("extra, field", [
    ({"name": ""}, "name"),
    ({"name": "长" * 81}, "name"),
    ({"event": "ticket.exploded"}, "event"),
    ({"c0_field": "opportunity.colour"}, "c0_field"),
    ({"c0_field": "ticket.number"}, "c0_field"),  # a ticket field on an opportunity event
    ({"mapping": "serial_no = opportunity.title"}, "mapping"),
    ({"mapping": "contract_title <- opportunity.title"}, "mapping"),
    ({"mapping": "x = y\n" * 600}, "mapping"),
    ({"template": "no-such-template"}, "template"),
    ({"title": "安装：{opportunity.colour}"}, "title"),
    ({"action": "set_tier", "event": "customer.tier_changed", "tier": "vip"}, "action"),
])
def test_bad_trigger_input_is_refused_and_nothing_saved(client_for, manager_a, install_template, extra, field):
    response = client_for(manager_a).post(reverse("automation-trigger-create"), _post(**extra))
    assert response.status_code == 400
    assert f'data-field-error="{field}"' in response.content.decode() or (field == "c0_field" and \
        'data-field-error="condition"' in response.content.decode())
    assert not Trigger.objects.exists()


def test_another_tenants_template_is_not_a_choice(client_for, manager_a, install_template, tenant_b):
    from scrm.tenancy import tenant_scope
    from tests.factories import published_template

    with tenant_scope(tenant_b):
        published_template(tenant_b, name="乙安装", slug="yi-anzhuang", prefix="YA")
    response = client_for(manager_a).post(reverse("automation-trigger-create"), _post(template="yi-anzhuang"))
    assert response.status_code == 400 and not Trigger.objects.exists()


def test_an_agent_may_not_configure_triggers(client_for, agent_a):
    assert client_for(agent_a).get(reverse("automation-trigger-list")).status_code == 403
    assert client_for(agent_a).post(reverse("automation-trigger-create"), _post()).status_code == 403
    assert not Trigger.objects.exists()


def test_firings_page_and_retry(client_for, manager_a, scope_a, install_template, django_assert_max_num_queries,
                                django_capture_on_commit_callbacks):
    trigger = trigger_create(tenant=scope_a, name="签约", event="opportunity.stage_entered", condition=WON,
                             action="create_ticket", params={"template": "anzhuang"})
    customers = [CustomerFactory(tenant=scope_a) for _ in range(12)]
    firings = [Firing.objects.create(tenant=scope_a, trigger=trigger, event=trigger.event, subject_type="customer",
                                     subject_id=c.pk, subject_label=c.name, status=FiringStatus.DEAD,
                                     outcome="模板缺字段") for c in customers]
    client = client_for(manager_a)
    client.get(reverse("automation-firing-list"))
    with django_assert_max_num_queries(12):
        response = client.get(reverse("automation-firing-list"))
    assert response.status_code == 200 and "模板缺字段" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("automation-firing-retry", args=[firings[0].pk])).status_code == 302
    firings[0].refresh_from_db()
    assert firings[0].status == FiringStatus.DONE and firings[0].ticket.customer_id == customers[0].pk
    # A done firing is not retried.
    client.post(reverse("automation-firing-retry", args=[firings[0].pk]))
    assert Ticket.objects.count() == 1


def test_schedule_form_and_list(client_for, manager_a, scope_a, time_machine, django_assert_max_num_queries):
    from tests.factories import published_template

    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH), tick=False)
    template = published_template(scope_a, name="设备巡检", slug="xunjian", prefix="XJ")
    client = client_for(manager_a)
    data = {"name": "月度巡检", "template": template.pk, "recurrence": "monthly", "every": 1, "month_day": 31,
            "at_time": "09:00", "starts_on": "2026-12-08", "is_active": "on"}
    assert client.post(reverse("automation-schedule-create"), data).status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.next_run_at == datetime.datetime(2026, 12, 31, 9, 0, tzinfo=SH)
    for bad in ({"recurrence": "yearly", "month": 2, "month_day": 31}, {"starts_on": "2026-12-01"},
                {"month_day": 32}, {"at_time": "25:00"}, {"template": 99999}, {"name": ""}):
        response = client.post(reverse("automation-schedule-create"), {**data, "name": "坏计划", **bad})
        assert response.status_code == 400, bad
    assert Schedule.objects.count() == 1
    for i in range(5):
        schedule_create(tenant=scope_a, name=f"周检{i}", template=template, recurrence="weekly", weekday=i,
                        at_time=datetime.time(8), starts_on=datetime.date(2026, 12, 8))
    client.get(reverse("automation-schedule-list"))
    with django_assert_max_num_queries(12):
        response = client.get(reverse("automation-schedule-list"))
    assert "2026-12-31" in response.content.decode()
    page = client.get(reverse("automation-schedule", args=[schedule.pk]))
    assert "2027-01-31" in page.content.decode()
    response = client.post(reverse("automation-schedule", args=[schedule.pk]), {**data, "month_day": 15})
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime.datetime(2026, 12, 15, 9, 0, tzinfo=SH)


def test_revisit_outcomes(client_for, agent_a, scope_a, install_template, django_assert_max_num_queries):
    customer = CustomerFactory(tenant=scope_a)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=install_template, partial=True,
                           data={"contract_title": "空调"}, customer=customer)
    revisits = [Revisit.objects.create(tenant=scope_a, customer=customer, ticket=ticket, reason="安装回访",
                                       due_on=datetime.date(2026, 12, 14)) for _ in range(6)]
    client = client_for(agent_a)
    client.get(reverse("automation-revisit-list"))
    with django_assert_max_num_queries(12):
        assert client.get(reverse("automation-revisit-list")).status_code == 200
    url = reverse("automation-revisit-record", args=[revisits[0].pk])
    for bad in ({}, {"outcome": "furious"}, {"outcome": "unhappy"}, {"outcome": "unhappy", "note": "差" * 1001}):
        client.post(url, bad)
        revisits[0].refresh_from_db()
        assert revisits[0].status == RevisitStatus.PLANNED, bad
    assert Ticket.objects.count() == 1
    client.post(url, {"outcome": "unhappy", "note": "空调噪音大，师傅没清理现场"})
    revisits[0].refresh_from_db()
    assert revisits[0].status == RevisitStatus.DONE and revisits[0].followup is not None
    assert revisits[0].followup.customer_id == customer.pk and revisits[0].followup.priority == "high"
    client.post(reverse("automation-revisit-record", args=[revisits[1].pk]), {"outcome": "satisfied"})
    revisits[1].refresh_from_db()
    assert revisits[1].status == RevisitStatus.DONE and revisits[1].followup is None
    assert Ticket.objects.count() == 2
    # Done twice: refused, nothing changes.
    client.post(url, {"outcome": "satisfied"})
    revisits[0].refresh_from_db()
    assert revisits[0].outcome == "unhappy"


def test_customer_page_shows_lead_grade_and_next_step(client_for, agent_a, scope_a, django_capture_on_commit_callbacks):
    from scrm.services import customer_create, opportunity_create

    trigger_create(tenant=scope_a, name="B 级线索 7 天回访", event="opportunity.amount_changed",
                   condition={"all": [{"field": "opportunity.amount", "op": ">=", "value": 100000}]},
                   action="set_lead_grade", params={"grade": "B", "days": 7, "reason": "B 级线索 7 天回访"})
    customer = customer_create(tenant=scope_a, name="杭州西湖物业", phone="13712345678")
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_create(tenant=scope_a, customer=customer, title="物业空调维保", amount="180000")
    page = client_for(agent_a).get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert 'data-testid="lead-grade-panel"' in page and ">B<" in page and "B 级线索 7 天回访" in page


def test_opportunity_page_refuses_won_while_the_approval_waits(
        client_for, manager_a, scope_a, approval_trigger, django_capture_on_commit_callbacks):
    from scrm.models import Opportunity
    from scrm.services import customer_create, opportunity_create

    customer = customer_create(tenant=scope_a, name="长沙鼎盛酒店管理有限公司", phone="13612345678")
    opp = opportunity_create(tenant=scope_a, customer=customer, title="酒店客房空调 200 套", amount="612000",
                             stage="proposal")
    client = client_for(manager_a)
    data = {"customer": customer.pk, "title": opp.title, "amount": "612000", "stage": "negotiation"}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("opportunity-update", args=[opp.pk]), data).status_code == 302
    approval = Firing.objects.get().ticket
    response = client.post(reverse("opportunity-update", args=[opp.pk]),
                           {**data, "stage": "won", "signed_date": "2026-12-07"})
    assert response.status_code == 400 and approval.number in response.content.decode()
    assert Opportunity.objects.get(pk=opp.pk).stage == "negotiation"


def test_schedule_form_cron_preview_and_targets(client_for, manager_a, scope_a, time_machine):
    from automation.models import ScheduleAsset
    from tests.factories import RegionFactory, StoreFactory, published_template

    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH), tick=False)
    template = published_template(scope_a, name="设备巡检", slug="xunjian", prefix="XJ", fields=[
        {"key": "equipment", "type": "text", "label": {"zh-hans": "设备"}, "required": False}])
    store = StoreFactory(tenant=scope_a, region=RegionFactory(tenant=scope_a), code="xjh")
    client = client_for(manager_a)
    data = {"name": "冷库巡检", "template": template.pk, "recurrence": "cron", "every": 1, "cron": "0 9 1 * *",
            "starts_on": "2026-12-08", "is_active": "on", "target_kind": "assets",
            "assets": "BX-01, 冷库, xjh\nYY-01，油烟机", "mapping": "equipment = asset.name"}
    preview = client.post(reverse("automation-schedule-create"), {**data, "preview": "1"})
    assert preview.status_code == 200 and "2027-01-01" in preview.content.decode()
    assert not Schedule.objects.exists()  # a preview writes nothing
    bad = client.post(reverse("automation-schedule-create"), {**data, "cron": "0 9 31 2 *", "preview": "1"})
    assert "31" in bad.content.decode() and 'data-testid="preview-problem"' in bad.content.decode()
    for wrong in ({"cron": "0 9 31 2 *"}, {"cron": "61 9 * * *"}, {"cron": "0 9 1 * * *"},
                  {"mapping": "nope = asset.name"}, {"mapping": "equipment asset.name"},
                  {"assets": "BX-01, 冷库, nowhere"}, {"assets": "BX-01"}):
        response = client.post(reverse("automation-schedule-create"), {**data, **wrong})
        assert response.status_code == 400, wrong
    assert not Schedule.objects.exists() and not ScheduleAsset.objects.exists()
    assert client.post(reverse("automation-schedule-create"), data).status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.next_run_at == datetime.datetime(2027, 1, 1, 9, 0, tzinfo=SH)
    assert sorted(ScheduleAsset.objects.values_list("code", "store_id")) == [("BX-01", store.pk), ("YY-01", None)]
    page = client.get(reverse("automation-schedule", args=[schedule.pk])).content.decode()
    assert "BX-01, 冷库, xjh" in page and "equipment = asset.name" in page
