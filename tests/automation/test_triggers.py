"""Triggers: a won opportunity creates its installation ticket once; a big deal in negotiation
needs the manager's approval before it can be won; bad configurations are refused at save;
failing actions are recorded, retried with backoff and not lost."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from automation.models import Decision, Firing, FiringStatus, Revisit, Trigger
from automation.services import firing_run, firings_due, trigger_create, trigger_update
from scrm.services import customer_create, customer_update, opportunity_create, opportunity_update
from tests.automation.conftest import BIG_NEGOTIATION, WON
from tests.factories import CustomerFactory
from tickets.models import Ticket
from workflow.engine import task_act
from workflow.models import Task, TaskStatus

pytestmark = pytest.mark.django_db


def _customer(scope):
    return customer_create(tenant=scope, name="上海锦江物业管理有限公司", phone="13912345678",
                           address="上海市徐汇区漕溪北路88号")


def test_won_opportunity_creates_one_filled_installation_ticket(
        scope_a, won_trigger, django_capture_on_commit_callbacks):
    customer = _customer(scope_a)
    with django_capture_on_commit_callbacks(execute=True):
        opp = opportunity_create(tenant=scope_a, customer=customer, title="写字楼中央空调 12 套", amount="368000")
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_update(opportunity=opp, stage="won", signed_date=datetime.date(2026, 12, 1))
    ticket = Ticket.objects.get(template__slug="anzhuang")
    assert ticket.opportunity_id == opp.pk and ticket.customer_id == customer.pk
    assert ticket.title == "安装：写字楼中央空调 12 套"
    assert ticket.data["contract_title"] == "写字楼中央空调 12 套"
    assert Decimal(ticket.data["contract_amount"]) == Decimal("368000.00")
    assert ticket.data["signed_on"] == "2026-12-01"
    assert ticket.data["contact_phone"] == "13912345678"
    assert ticket.data["address"]["text"] == "上海市徐汇区漕溪北路88号"
    firing = Firing.objects.get()
    assert (firing.status, firing.ticket_id, firing.subject_id) == (FiringStatus.DONE, ticket.pk, opp.pk)

    # Won twice (back to negotiation, then won again): still one ticket, one firing.
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_update(opportunity=opp, stage="negotiation")
        opportunity_update(opportunity=opp, stage="won")
    assert Ticket.objects.filter(template__slug="anzhuang").count() == 1
    assert Firing.objects.count() == 1


def test_a_condition_that_does_not_hold_fires_nothing(scope_a, won_trigger, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_create(tenant=scope_a, customer=_customer(scope_a), title="小单", amount="800",
                           stage="proposal")
    assert not Firing.objects.exists() and not Ticket.objects.exists()


def test_big_deal_needs_approval_before_it_is_won(
        scope_a, approval_trigger, manager_a, django_capture_on_commit_callbacks):
    customer = _customer(scope_a)
    with django_capture_on_commit_callbacks(execute=True):
        opp = opportunity_create(tenant=scope_a, customer=customer, title="酒店客房空调 200 套", amount="600000",
                                 stage="proposal")
        opportunity_update(opportunity=opp, stage="negotiation")
    firing = Firing.objects.get()
    assert firing.decision == Decision.PENDING and firing.ticket.template.slug == "shangji-shenpi"
    task = Task.objects.get(ticket=firing.ticket, status=TaskStatus.OPEN)
    assert task.assignee_id == manager_a.pk

    with pytest.raises(ValidationError) as exc:
        opportunity_update(opportunity=opp, stage="won", signed_date=datetime.date(2026, 12, 2))
    assert firing.ticket.number in str(exc.value)
    opp.refresh_from_db()
    assert opp.stage == "negotiation"

    task_act(task=task, action="approve", user=manager_a)
    firing.refresh_from_db()
    assert firing.decision == Decision.APPROVED
    opportunity_update(opportunity=opp, stage="won", signed_date=datetime.date(2026, 12, 2))
    opp.refresh_from_db()
    assert opp.stage == "won"


def test_rejected_approval_keeps_the_deal_from_being_won(
        scope_a, approval_trigger, manager_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        opp = opportunity_create(tenant=scope_a, customer=_customer(scope_a), title="商场空调改造",
                                 amount="520000.50", stage="negotiation")
    firing = Firing.objects.get()
    task_act(task=Task.objects.get(ticket=firing.ticket, status=TaskStatus.OPEN), action="reject", user=manager_a,
             comment="金额超出本季度预算")
    with pytest.raises(ValidationError, match=r"rejected|驳回"):
        opportunity_update(opportunity=opp, stage="won", signed_date=datetime.date(2026, 12, 2))


def test_small_deal_in_negotiation_needs_no_approval(scope_a, approval_trigger, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        opp = opportunity_create(tenant=scope_a, customer=_customer(scope_a), title="家用空调 3 台",
                                 amount="500000", stage="negotiation")
    assert not Firing.objects.exists()
    opportunity_update(opportunity=opp, stage="won", signed_date=datetime.date(2026, 12, 2))


@pytest.mark.parametrize("condition, message", [
    ({"all": [{"field": "opportunity.colour", "op": "=", "value": "red"}]}, "opportunity.colour"),
    ({"all": [{"field": "opportunity.amount", "op": "~", "value": 1}]}, "~"),
    ({"all": []}, "all"),
])
def test_a_bad_condition_is_refused_at_save(scope_a, install_template, condition, message):
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="坏条件", event="opportunity.stage_entered", condition=condition,
                       action="create_ticket", params={"template": "anzhuang"})
    assert message in str(exc.value.message_dict["condition"])
    assert not Trigger.objects.exists()


def test_a_mapping_to_a_field_the_template_lacks_is_refused(scope_a, install_template):
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="坏映射", event="opportunity.stage_entered", condition=WON,
                       action="create_ticket", params={"template": "anzhuang",
                                                       "mapping": {"serial_no": "opportunity.title"}})
    assert "serial_no" in str(exc.value.message_dict["mapping"])
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="坏来源", event="opportunity.stage_entered", condition=WON,
                       action="create_ticket", params={"template": "anzhuang",
                                                       "mapping": {"contract_title": "ticket.number"}})
    assert "ticket.number" in str(exc.value.message_dict["mapping"])
    assert not Trigger.objects.exists()


def test_another_tenants_template_is_not_a_choice(scope_a, tenant_b):
    from scrm.tenancy import tenant_scope
    from tests.factories import published_template

    with tenant_scope(tenant_b):
        published_template(tenant_b, name="安装工单", slug="anzhuang-b", prefix="AZ")
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="跨租户", event="opportunity.stage_entered", condition=WON,
                       action="create_ticket", params={"template": "anzhuang-b"})
    assert "template" in exc.value.message_dict
    assert not Trigger.objects.exists()


def test_a_trigger_that_would_fire_itself_is_refused(scope_a):
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="自循环", event="customer.tier_changed", action="set_tier",
                       params={"tier": "vip"})
    assert "loop" in str(exc.value.message_dict["action"]) or "循环" in str(exc.value.message_dict["action"])


def test_a_chain_through_another_trigger_stops_at_the_first_repeat(scope_a, django_capture_on_commit_callbacks):
    # customer.created → set tier vip (fires tier_changed) → a tier trigger adds a tag: each once.
    trigger_create(tenant=scope_a, name="新客户升级", event="customer.created", action="set_tier",
                   params={"tier": "vip"})
    trigger_create(tenant=scope_a, name="VIP 打标签", event="customer.tier_changed", action="add_tag",
                   condition={"all": [{"field": "customer.tier", "op": "=", "value": "vip"}]},
                   params={"tag": "重点客户"})
    with django_capture_on_commit_callbacks(execute=True):
        customer = _customer(scope_a)
    customer.refresh_from_db()
    assert customer.tier == "vip"
    assert [t.name for t in customer.tags.all()] == ["重点客户"]
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=customer, tier="normal")
        customer_update(customer=customer, tier="vip")
    assert Firing.objects.count() == 2


def test_a_failing_action_is_recorded_and_retried_with_backoff(scope_a, won_trigger, monkeypatch, time_machine):
    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC), tick=False)
    from automation.services import triggers

    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise ConnectionError("numbering service down")

    monkeypatch.setattr(triggers, "ticket_intake", broken)
    opp = opportunity_create(tenant=scope_a, customer=_customer(scope_a), title="空调 5 台", amount="50000")
    opportunity_update(opportunity=opp, stage="won", signed_date=datetime.date(2026, 12, 1))
    firing = Firing.objects.get()
    firing_run(firing_id=firing.pk)
    firing.refresh_from_db()
    assert firing.status == FiringStatus.FAILED and firing.attempts == 1
    assert "numbering service down" in firing.outcome
    assert firing.next_attempt_at == datetime.datetime(2026, 12, 7, 10, 1, tzinfo=datetime.UTC)
    assert firings_due() == []
    time_machine.move_to(datetime.datetime(2026, 12, 7, 10, 1, 30, tzinfo=datetime.UTC), tick=False)
    assert firings_due() == [(scope_a.pk, firing.pk)]
    monkeypatch.undo()
    firing_run(firing_id=firing.pk)
    firing.refresh_from_db()
    assert firing.status == FiringStatus.DONE and firing.attempts == 2 and firing.ticket is not None
    assert len(calls) == 1


def test_ticket_closed_plans_a_revisit(scope_a, install_template, agent_a, django_capture_on_commit_callbacks,
                                       time_machine):
    from tickets.services import ticket_intake
    from workflow.lifecycle import ticket_status_change

    time_machine.move_to(datetime.datetime(2026, 12, 7, 2, 0, tzinfo=datetime.UTC), tick=False)
    trigger_create(tenant=scope_a, name="安装后回访", event="ticket.closed", action="plan_revisit",
                   condition={"all": [{"field": "template", "op": "=", "value": "anzhuang"}]},
                   params={"days": 7, "reason": "安装完成 7 天回访"})
    customer = CustomerFactory(tenant=scope_a)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=install_template, partial=True,
                           data={"contract_title": "空调"}, customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_status_change(ticket=ticket, action="close", actor=agent_a)
    revisit = Revisit.objects.get()
    assert revisit.ticket_id == ticket.pk and revisit.customer_id == customer.pk
    assert revisit.due_on == datetime.date(2026, 12, 14)


def test_trigger_update_validates_too(scope_a, won_trigger):
    with pytest.raises(ValidationError):
        trigger_update(trigger=won_trigger, condition=BIG_NEGOTIATION | {"x": 1})
    won_trigger.refresh_from_db()
    assert won_trigger.condition == WON


def test_a_customer_keeps_the_best_grade_whatever_the_order(scope_a, django_capture_on_commit_callbacks):
    from automation.models import CustomerGrade

    for grade, low, high in (("A", 500000, None), ("B", 100000, 500000)):
        rows = [{"field": "opportunity.amount", "op": ">=", "value": low}]
        if high:
            rows.append({"field": "opportunity.amount", "op": "<", "value": high})
        trigger_create(tenant=scope_a, name=f"{grade} 级", event="opportunity.amount_changed",
                       condition={"all": rows}, action="set_lead_grade", params={"grade": grade, "days": 3})
    customer = _customer(scope_a)
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_create(tenant=scope_a, customer=customer, title="大单", amount="680000")
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_create(tenant=scope_a, customer=customer, title="二期", amount="238000")
    assert CustomerGrade.objects.get(customer=customer).grade == "A"
    assert Revisit.objects.filter(customer=customer).count() == 2


def test_notify_a_role_when_a_big_deal_enters_negotiation(scope_a, manager_a, agent_a,
                                                          django_capture_on_commit_callbacks):
    from notifications.models import Notification

    trigger_create(tenant=scope_a, name="大单提醒", event="opportunity.stage_entered", condition=BIG_NEGOTIATION,
                   action="notify", params={"role": "manager", "message": "商机“{opportunity.title}”金额 "
                                                                          "{opportunity.amount} 元进入谈判"})
    with django_capture_on_commit_callbacks(execute=True):
        opportunity_create(tenant=scope_a, customer=_customer(scope_a), title="酒店空调 200 套", amount="612000",
                           stage="negotiation")
    firing = Firing.objects.get()
    assert firing.status == FiringStatus.DONE, firing.outcome
    rows = Notification.objects.filter(event="automation_notice")
    assert {r.user_id for r in rows} == {manager_a.pk}
    assert all("酒店空调 200 套" in r.body and "612000.00" in r.body for r in rows)


@pytest.mark.parametrize("params, key", [
    ({"message": "你好"}, "notify_role"),
    ({"role": "boss", "message": "你好"}, "notify_role"),
    ({"role": "manager", "message": ""}, "message"),
    ({"role": "manager", "message": "长" * 501}, "message"),
    ({"role": "manager", "message": "{opportunity.colour}"}, "message"),
    ({"user_id": 999999, "message": "你好"}, "notify_user"),
])
def test_bad_notify_settings_are_refused(scope_a, params, key):
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="提醒", event="opportunity.stage_entered", action="notify", params=params)
    assert key in exc.value.message_dict
    assert not Trigger.objects.exists()


def test_notify_someone_of_another_tenant_is_refused(scope_a, admin_b):
    with pytest.raises(ValidationError) as exc:
        trigger_create(tenant=scope_a, name="提醒", event="opportunity.stage_entered", action="notify",
                       params={"user_id": admin_b.pk, "message": "你好"})
    assert "notify_user" in exc.value.message_dict
