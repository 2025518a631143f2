"""The outbox: rows written in the transaction that caused them, one per event × occurrence ×
recipient × channel; who gets what (preferences, minimum priority, quiet hours, customers'
fallback and opt-out); delivery against the loopback stubs (sent, backoff, dead letter, waiting
for credentials, a customer's fallback); claims that make a second delivery a no-op; the sweep;
the retry; the sandboxed templates; the ticket timeline."""

import datetime
import json
import zoneinfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django_scopes import scopes_disabled

from notifications import services
from notifications.models import (
    CustomerOptOut,
    Notification,
    NotificationTemplate,
    Preference,
)
from notifications.rendering import template_check, template_render, template_variables
from notifications.services import (
    emit,
    event_emit,
    notification_deliver,
    notification_retry,
    notifications_due,
    sweep,
    tenant_channels_waiting_release,
)
from notifications.tasks import notifications_sweep_task
from scrm.tenancy import tenant_scope
from tests.commit_hooks import app_callbacks
from tests.factories import CustomerFactory, TenantFactory, published_template
from tests.notifications.conftest import CHANNEL_SETTINGS
from tests.notifications.stubs import WeComStub
from tickets.services import ticket_comment_add, ticket_intake
from workflow.lifecycle import ticket_assign, ticket_status_change

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
WECOM_SEND = WeComStub.SEND_PATH


def intake(tenant, template, *, customer=None, priority=None, actor=None):
    return ticket_intake(tenant=tenant, source="phone", template=template, data={"order_no": "WD-1024"},
                         customer=customer, priority=priority, actor=actor, title="冷柜不制冷")


def rows(**filters):
    return list(Notification.objects.filter(**filters).order_by("id"))


def only(**filters):
    found = rows(**filters)
    assert len(found) == 1, found
    return found[0]


def sms_template(tenant, event, code="SMS_154950909", body="工单{{ ticket_number }}：{{ ticket_title }}"):
    return NotificationTemplate.objects.create(tenant=tenant, event=event, channel="sms", language="zh-hans",
                                               subject="", body=body, sms_template_code=code)


# --- writing rows -----------------------------------------------------------------------


@pytest.mark.django_db
def test_rows_are_written_in_the_callers_transaction_and_roll_back_with_it(scope_a, ticket_template_a,
                                                                            django_capture_on_commit_callbacks):
    customer = CustomerFactory(tenant=scope_a, phone="13800138000")
    with pytest.raises(RuntimeError), transaction.atomic():
        intake(scope_a, ticket_template_a, customer=customer)
        assert [(n.event, n.channel, n.status) for n in rows()] == [("ticket_created", "sms", "pending")]
        raise RuntimeError("the intake's transaction fails after the rows were written")
    assert rows() == []

    with django_capture_on_commit_callbacks() as callbacks:
        ticket = intake(scope_a, ticket_template_a, customer=customer)
    row = only(ticket=ticket)
    assert (row.channel, row.address, row.status, row.attempts) == ("sms", "13800138000", "pending", 0)
    assert len(app_callbacks(callbacks)) == 1  # the enqueue waits for the commit; it did not run inside the transaction


@pytest.mark.django_db
def test_one_row_per_event_recipient_and_channel_even_if_emitted_twice(scope_a, ticket_template_a, agent_a,
                                                                        reachable_engineer):
    customer = CustomerFactory(tenant=scope_a, phone="13800138000")
    ticket = intake(scope_a, ticket_template_a, customer=customer, actor=agent_a)
    ticket = ticket_assign(ticket=ticket, assignee=reachable_engineer, actor=agent_a)
    assigned = rows(event="ticket_assigned")
    assert sorted(n.channel for n in assigned) == ["inapp", "wecom"]

    assert event_emit(tenant=scope_a, event="ticket_assigned", ticket=ticket, actor=agent_a) == []
    assert event_emit(tenant=scope_a, event="ticket_assigned", ticket=ticket, actor=agent_a) == []
    assert rows(event="ticket_assigned") == assigned
    keys = [n.idempotency_key for n in rows()]
    assert len(keys) == len(set(keys))

    # A new occurrence (another comment) is a new message; the same one emitted again is not.
    ticket_comment_add(ticket=ticket, body="客户说下午在家", actor=agent_a)
    ticket_comment_add(ticket=ticket, body="已约好 15:00 上门", actor=agent_a)
    assert [n.channel for n in rows(event="ticket_commented", user=reachable_engineer)] == [
        "inapp", "wecom", "inapp", "wecom"]
    assert event_emit(tenant=scope_a, event="ticket_commented", ticket=ticket, actor=agent_a,
                      context={"comment": "已约好 15:00 上门"}) == []


@pytest.mark.django_db
def test_event_emit_returns_the_rows_it_wrote_then_none(scope_a, ticket_template_a, agent_a, reachable_engineer):
    ticket = intake(scope_a, ticket_template_a, customer=CustomerFactory(tenant=scope_a), actor=agent_a)
    written = event_emit(tenant=scope_a, event="ticket_assigned", ticket=ticket, actor=agent_a,
                         users=[reachable_engineer], occurrence="manual-1")
    assert sorted(n.channel for n in written) == ["inapp", "wecom"]
    assert all(n.pk for n in written)
    assert event_emit(tenant=scope_a, event="ticket_assigned", ticket=ticket, actor=agent_a,
                      users=[reachable_engineer], occurrence="manual-1") == []


@pytest.mark.django_db
def test_staff_get_the_bell_always_plus_the_channels_they_prefer(scope_a, ticket_template_a, agent_a,
                                                                 reachable_engineer, manager_a):
    first = intake(scope_a, ticket_template_a, actor=agent_a)
    ticket_assign(ticket=first, assignee=reachable_engineer, actor=agent_a)
    # No preference: the bell and WeCom.
    assert [(n.channel, n.status, n.address) for n in rows(ticket=first, user=reachable_engineer)] == [
        ("inapp", "sent", ""), ("wecom", "pending", "zhang.gong")]

    Preference.objects.create(tenant=scope_a, user=reachable_engineer, event="ticket_assigned",
                              channels=["email", "sms"], min_priority="low")
    second = intake(scope_a, ticket_template_a, actor=agent_a)
    ticket_assign(ticket=second, assignee=reachable_engineer, actor=agent_a)
    assert [(n.channel, n.address) for n in rows(ticket=second, user=reachable_engineer)] == [
        ("inapp", ""), ("email", "zhang.gong@example.com"), ("sms", "13911112222")]

    # Someone with no WeCom id gets the bell, which records why it is the only one.
    third = intake(scope_a, ticket_template_a, actor=agent_a)
    ticket_assign(ticket=third, assignee=manager_a, actor=agent_a)
    bell = only(ticket=third, user=manager_a)
    assert bell.channel == "inapp"
    assert "in-app only" in bell.note or "仅站内" in bell.note


@pytest.mark.django_db
def test_sms_only_for_urgent_sends_none_for_a_normal_ticket_and_one_for_an_urgent_one(
        scope_a, channels_a, ticket_template_a, agent_a, reachable_engineer, aliyun_stub):
    Preference.objects.create(tenant=scope_a, user=reachable_engineer, event="ticket_assigned",
                              channels=["sms"], min_priority="urgent")
    sms_template(scope_a, "ticket_assigned")

    normal = intake(scope_a, ticket_template_a, priority="normal", actor=agent_a)
    ticket_assign(ticket=normal, assignee=reachable_engineer, actor=agent_a)
    assert [n.channel for n in rows(ticket=normal, user=reachable_engineer)] == ["inapp"]

    urgent = intake(scope_a, ticket_template_a, priority="urgent", actor=agent_a)
    ticket_assign(ticket=urgent, assignee=reachable_engineer, actor=agent_a)
    assert [n.channel for n in rows(ticket=urgent, user=reachable_engineer)] == ["inapp", "sms"]
    sms = only(ticket=urgent, channel="sms")
    assert sms.address == "13911112222"

    with aliyun_stub.installed():
        assert notification_deliver(notification_id=sms.pk) == "sent"
    assert [(p["PhoneNumbers"], p["TemplateCode"]) for p in aliyun_stub.sent] == [("13911112222", "SMS_154950909")]
    # The provider's template is filled from the variables the body uses, not with our bookkeeping.
    assert json.loads(aliyun_stub.sent[0]["TemplateParam"]) == {"ticket_number": urgent.number,
                                                               "ticket_title": "冷柜不制冷"}


@pytest.mark.django_db
def test_quiet_hours_hold_non_urgent_messages_until_they_end(scope_a, ticket_template_a, agent_a,
                                                              reachable_engineer, wecom_stub, channels_a):
    Preference.objects.create(tenant=scope_a, user=reachable_engineer, event="ticket_assigned", channels=["wecom"],
                              quiet_start=datetime.time(22, 0), quiet_end=datetime.time(7, 0))
    late = datetime.datetime(2026, 11, 23, 23, 15, tzinfo=SHANGHAI)
    morning = datetime.datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI)
    with time_machine.travel(late, tick=False):
        normal = intake(scope_a, ticket_template_a, actor=agent_a)
        ticket_assign(ticket=normal, assignee=reachable_engineer, actor=agent_a)
        urgent = intake(scope_a, ticket_template_a, priority="urgent", actor=agent_a)
        ticket_assign(ticket=urgent, assignee=reachable_engineer, actor=agent_a)
        held = only(ticket=normal, channel="wecom")
        assert held.next_attempt_at == morning
        assert "07:00" in held.note
        assert only(ticket=normal, channel="inapp").status == "sent"  # the bell rings at once
        assert only(ticket=urgent, channel="wecom").next_attempt_at == late  # urgent goes out in quiet hours
        with scopes_disabled():
            due = notifications_due()
        assert (held.pk, scope_a.pk) not in due
        assert notification_deliver(notification_id=held.pk) is None  # not yet
    with time_machine.travel(morning, tick=False):
        with scopes_disabled():
            assert (held.pk, scope_a.pk) in notifications_due()
        assert notification_deliver(notification_id=held.pk, session=wecom_stub.session()) == "sent"


@pytest.mark.django_db
def test_quiet_hours_inside_one_day_and_equal_ends(scope_a, reachable_engineer):
    preference = Preference(quiet_start=datetime.time(12, 0), quiet_end=datetime.time(14, 0))
    noon = datetime.datetime(2026, 11, 23, 13, 0, tzinfo=SHANGHAI)
    assert emit._quiet(preference, noon) == datetime.datetime(2026, 11, 23, 14, 0, tzinfo=SHANGHAI)
    assert emit._quiet(preference, noon.replace(hour=14)) is None
    assert emit._quiet(Preference(quiet_start=datetime.time(9, 0), quiet_end=datetime.time(9, 0)), noon) is None


# --- customers --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("contact", "channel", "note"),
    [
        ({"wechat_openid": "o-abc", "phone": "13800138000", "email": "w@example.com"}, "wechat", ""),
        ({"phone": "13800138000", "email": "w@example.com"}, "sms", "WeChat official account"),
        ({"phone": "", "email": "w@example.com"}, "email", "WeChat official account、SMS"),
    ],
)
def test_customers_get_the_first_channel_they_can_be_reached_on(scope_a, ticket_template_a, contact, channel, note,
                                                               settings):
    settings.LANGUAGE_CODE = "en"
    customer = CustomerFactory(tenant=scope_a, **contact)
    ticket = intake(scope_a, ticket_template_a, customer=customer)
    row = only(ticket=ticket)
    assert (row.channel, row.customer, row.status) == (channel, customer, "pending")
    if note:
        assert note in row.note and "so" in row.note
    else:
        assert row.note == ""
    assert row.url.endswith(reverse("ticket-track", args=[ticket.tracking_token]))


@pytest.mark.django_db
def test_a_customer_who_cannot_be_reached_gets_a_skipped_row_saying_why(scope_a, ticket_template_a,
                                                                        django_capture_on_commit_callbacks):
    customer = CustomerFactory(tenant=scope_a, phone="", email="", wechat_openid="")
    with django_capture_on_commit_callbacks() as callbacks:
        ticket = intake(scope_a, ticket_template_a, customer=customer)
    row = only(ticket=ticket)
    assert (row.channel, row.status, row.next_attempt_at) == ("none", "skipped", None)
    assert "openid" in row.note
    assert app_callbacks(callbacks) == []  # nothing to send
    assert notification_retry(notification=row) is False
    assert notification_deliver(notification_id=row.pk) is None


@pytest.mark.django_db
def test_opted_out_customers_get_service_messages_but_not_optional_ones(scope_a, ticket_template_a, agent_a):
    customer = CustomerFactory(tenant=scope_a, phone="13800138000")
    CustomerOptOut.objects.create(tenant=scope_a, customer=customer)
    ticket = intake(scope_a, ticket_template_a, customer=customer, actor=agent_a)
    ticket_status_change(ticket=ticket, action="start", actor=agent_a)
    ticket_status_change(ticket=ticket, action="resolve", actor=agent_a)
    event_emit(tenant=scope_a, event="satisfaction_request", ticket=ticket)
    assert [(n.event, n.channel, n.status) for n in rows(ticket=ticket)] == [
        ("ticket_created", "sms", "pending"), ("ticket_resolved", "sms", "pending"),
        ("satisfaction_request", "none", "skipped")]
    assert "opted out" in rows(event="satisfaction_request")[0].note or "退订" in rows(
        event="satisfaction_request")[0].note

    other = CustomerFactory(tenant=scope_a, phone="13800138001")
    event_emit(tenant=scope_a, event="satisfaction_request", ticket=intake(scope_a, ticket_template_a, customer=other))
    assert only(event="satisfaction_request", customer=other).channel == "sms"


# --- delivery ---------------------------------------------------------------------------


@pytest.fixture
def assigned(scope_a, channels_a, ticket_template_a, agent_a, reachable_engineer):
    """A ticket assigned to the engineer: its WeCom row is waiting to be delivered."""
    ticket = intake(scope_a, ticket_template_a, actor=agent_a)
    ticket_assign(ticket=ticket, assignee=reachable_engineer, actor=agent_a)
    return only(ticket=ticket, channel="wecom")


@pytest.mark.django_db
def test_delivery_records_sent_with_the_providers_id(assigned, wecom_stub):
    assert notification_deliver(notification_id=assigned.pk, session=wecom_stub.session()) == "sent"
    assigned.refresh_from_db()
    assert (assigned.status, assigned.attempts, assigned.provider_message_id, assigned.last_error) == (
        "sent", 1, "wecom-msg-1", "")
    assert assigned.sent_at is not None
    send = wecom_stub.calls(WECOM_SEND)[0]
    assert send.json["touser"] == "zhang.gong"
    assert assigned.ticket.number in send.json["textcard"]["title"]


@pytest.mark.django_db
def test_email_is_sent_through_djangos_backend(scope_a, ticket_template_a, mailoutbox):
    customer = CustomerFactory(tenant=scope_a, phone="", email="wang@example.com")
    ticket = intake(scope_a, ticket_template_a, customer=customer)
    row = only(ticket=ticket)
    assert notification_deliver(notification_id=row.pk) == "sent"
    assert [m.to for m in mailoutbox] == [["wang@example.com"]]
    assert ticket.number in mailoutbox[0].subject


@pytest.mark.django_db
def test_http_5xx_backs_off_then_dead_letters_after_the_last_attempt(assigned, wecom_stub, settings):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    settings.NOTIFICATION_BACKOFF_SECONDS = 30
    wecom_stub.fail(path=WECOM_SEND, times=3, status=503, body="busy")
    start = datetime.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    Notification.objects.filter(pk=assigned.pk).update(next_attempt_at=start)
    expected = [(start, 1, 30), (start + datetime.timedelta(seconds=30), 2, 60)]
    for at, attempts, backoff in expected:
        with time_machine.travel(at, tick=False):
            assert notification_deliver(notification_id=assigned.pk, session=wecom_stub.session()) == "pending"
            assigned.refresh_from_db()
            assert (assigned.status, assigned.attempts) == ("pending", attempts)
            assert assigned.next_attempt_at == at + datetime.timedelta(seconds=backoff)
            assert "http_503" in assigned.last_error
            # Not due again before the backoff ends: a second call does nothing.
            assert notification_deliver(notification_id=assigned.pk, session=wecom_stub.session()) is None
    with time_machine.travel(start + datetime.timedelta(seconds=90), tick=False):
        assert notification_deliver(notification_id=assigned.pk, session=wecom_stub.session()) == "dead"
    assigned.refresh_from_db()
    assert (assigned.status, assigned.attempts, assigned.next_attempt_at) == ("dead", 3, None)
    assert len(wecom_stub.calls(WECOM_SEND)) == 3


@pytest.mark.django_db
def test_missing_credentials_wait_without_losing_anything_and_are_released(
        scope_a, ticket_template_a, agent_a, reachable_engineer, wecom_stub, django_capture_on_commit_callbacks):
    ticket = intake(scope_a, ticket_template_a, actor=agent_a)
    ticket_assign(ticket=ticket, assignee=reachable_engineer, actor=agent_a)  # the tenant has no WeCom set up
    row = only(ticket=ticket, channel="wecom")
    assert notification_deliver(notification_id=row.pk) == "waiting"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("waiting", 0, None)  # no attempt used up
    assert "missing:corp_id" in row.last_error
    assert row.body and row.address == "zhang.gong"
    with scopes_disabled():
        assert (row.pk, scope_a.pk) not in notifications_due()

    other = TenantFactory()  # releasing another tenant's rows leaves these alone
    with tenant_scope(other):
        assert tenant_channels_waiting_release(tenant=other) == 0
    row.refresh_from_db()
    assert row.status == "waiting"

    scope_a.settings = dict(CHANNEL_SETTINGS)
    scope_a.save()
    with wecom_stub.installed(), django_capture_on_commit_callbacks(execute=True):
        assert tenant_channels_waiting_release(tenant=scope_a, channel="wecom") == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    assert len(wecom_stub.calls(WECOM_SEND)) == 1


@pytest.mark.django_db
def test_the_same_row_delivered_twice_sends_once(assigned, wecom_stub):
    assert notification_deliver(notification_id=assigned.pk, session=wecom_stub.session()) == "sent"
    assert notification_deliver(notification_id=assigned.pk, session=wecom_stub.session()) is None
    assert len(wecom_stub.calls(WECOM_SEND)) == 1


@pytest.mark.django_db
def test_a_customer_refused_by_one_provider_falls_back_to_the_next_channel(
        scope_a, channels_a, ticket_template_a, wechat_stub, aliyun_stub, django_capture_on_commit_callbacks):
    NotificationTemplate.objects.create(tenant=scope_a, event="ticket_created", channel="wechat", language="zh-hans",
                                        subject="工单已受理", body="{{ ticket_number }} {{ ticket_status }}",
                                        sms_template_code="TM00015")
    sms_template(scope_a, "ticket_created")
    customer = CustomerFactory(tenant=scope_a, wechat_openid="o-unfollowed", phone="13800138000")
    ticket = intake(scope_a, ticket_template_a, customer=customer)
    wechat = only(ticket=ticket)
    with wechat_stub.installed(), aliyun_stub.installed(), django_capture_on_commit_callbacks(execute=True):
        assert notification_deliver(notification_id=wechat.pk) == "skipped"
    wechat.refresh_from_db()
    assert "43004" in wechat.last_error
    sms = only(ticket=ticket, channel="sms")
    assert sms.status == "sent"  # written with a note, enqueued on commit and delivered
    assert "43004" in sms.note
    assert [p["PhoneNumbers"] for p in aliyun_stub.sent] == ["13800138000"]


@pytest.mark.django_db
def test_the_sweep_returns_due_rows_and_resets_expired_leases(scope_a, ticket_template_a, agent_a,
                                                              reachable_engineer):
    now = datetime.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    with time_machine.travel(now, tick=False):
        made = []
        for _ in range(5):
            ticket = intake(scope_a, ticket_template_a, actor=agent_a)
            ticket_assign(ticket=ticket, assignee=reachable_engineer, actor=agent_a)
            made.append(only(ticket=ticket, channel="wecom"))
    due, future, expired, leased, sent = made
    minute = datetime.timedelta(minutes=1)
    Notification.objects.filter(pk=future.pk).update(next_attempt_at=now + minute)
    Notification.objects.filter(pk=expired.pk).update(status="sending", next_attempt_at=now - minute)
    Notification.objects.filter(pk=leased.pk).update(status="sending", next_attempt_at=now + minute)
    Notification.objects.filter(pk=sent.pk).update(status="sent", next_attempt_at=None)
    with time_machine.travel(now, tick=False), scopes_disabled():
        found = notifications_due()
        assert found == [(expired.pk, scope_a.pk), (due.pk, scope_a.pk)]  # oldest first
        assert dict(Notification.objects.filter(pk__in=[p.pk for p in made]).values_list("pk", "status")) == {
            due.pk: "pending", future.pk: "pending", expired.pk: "pending", leased.pk: "sending", sent.pk: "sent"}
        assert notifications_due() == found  # running it twice is harmless


@pytest.mark.django_db
def test_the_sweep_task_delivers_what_is_owed(scope_a, assigned, wecom_stub):
    with wecom_stub.installed():
        assert notifications_sweep_task.apply().get() == 1  # eager: each row is delivered in its own scope
    assigned.refresh_from_db()
    assert assigned.status == "sent"


@pytest.mark.django_db
def test_retry_puts_a_dead_row_back_in_the_queue(assigned, wecom_stub, django_capture_on_commit_callbacks):
    Notification.objects.filter(pk=assigned.pk).update(status="dead", attempts=5, last_error="http_503",
                                                       next_attempt_at=None)
    with wecom_stub.installed(), django_capture_on_commit_callbacks(execute=True):
        assert notification_retry(notification=assigned) is True
    assigned.refresh_from_db()
    assert (assigned.status, assigned.attempts, assigned.last_error) == ("sent", 1, "")
    assert notification_retry(notification=assigned) is False  # a sent row is not sent again


@pytest.mark.django_db
def test_a_broken_saved_template_never_fails_the_event(scope_a, ticket_template_a):
    # Saved around the checks (e.g. before a rule existed): the built-in wording goes out instead.
    NotificationTemplate.objects.create(tenant=scope_a, event="ticket_created", channel="sms", language="zh-hans",
                                        body="{{ ticket.customer.phone }}", sms_template_code="SMS_1")
    customer = CustomerFactory(tenant=scope_a, phone="13800138000")
    ticket = intake(scope_a, ticket_template_a, customer=customer)
    row = only(ticket=ticket)
    assert ticket.number in row.body and "13800138000" not in row.body
    assert row.note


@pytest.mark.django_db
def test_a_broker_that_is_down_leaves_rows_for_the_sweep(scope_a, assigned, monkeypatch, caplog):
    from kombu.exceptions import OperationalError

    from notifications.tasks import notification_deliver_task, notifications_deliver_task

    calls = []

    def down(*args, **kwargs):
        calls.append(kwargs["kwargs"].get("notification_id") or kwargs["kwargs"]["notification_ids"][0])
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(sweep, "_broker_down_until", 0.0)
    monkeypatch.setattr(notification_deliver_task, "apply_async", down)
    monkeypatch.setattr(notifications_deliver_task, "apply_async", down)
    # Two tenants: two messages, of which the first fails.
    sweep._enqueue([(assigned.pk, scope_a.pk), (assigned.pk + 1, scope_a.pk + 1)])
    assigned.refresh_from_db()
    assert assigned.status == "pending"
    assert "left for the sweep" in caplog.text
    assert calls == [assigned.pk]  # one failed publish is enough to know
    # For a pause, commits leave their rows to the sweep instead of waiting on the broker again …
    sweep._enqueue([(assigned.pk, scope_a.pk)])
    assert calls == [assigned.pk]
    # … but the sweep always tries, and a publish that works ends the pause.
    with scopes_disabled():
        assert services.notifications_sweep() == 1
    assert calls == [assigned.pk, assigned.pk]
    monkeypatch.setattr(notification_deliver_task, "apply_async", lambda **kwargs: calls.append("up"))
    with scopes_disabled():
        services.notifications_sweep()
    assert calls[-1] == "up" and sweep._broker_down_until == 0.0
    sweep._enqueue([(assigned.pk, scope_a.pk)])
    assert calls[-2:] == ["up", "up"]


# --- sandboxed templates ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("您好\n{% if ticket_title %}未闭合", "Line 2"),
        ("{{ ticket_number }}\n\n{{ secret_key }}", "Line 3: unknown variable “secret_key”"),
        ("{{ ticket_number }}\n{% if ticket_title %}{{ ticket_title }}{% else %}{{ who }}{% endif %}",
         "Line 2: unknown variable “who”"),
        ("{{ customer_name.__class__ }}", "Line 1: Variables and attributes may not begin with underscores"),
        ("\n{{ ticket_title.upper }}", "Line 2: “ticket_title.upper”: attribute access"),
        ("{{ ticket_title|default:tenant.settings }}", "“tenant.settings”: attribute access"),
        ("{% if ticket_number.pk == 1 %}x{% endif %}", "“ticket_number.pk”: attribute access"),
        ("a\n{% load humanize %}", "Line 2: tag libraries cannot be loaded"),
        ("a\nb\n{% include 'base.html' %}", "Line 3: the tag “include” is not allowed"),
        ("{% for x in ticket_title %}{{ x }}{% endfor %}", "the tag “for” is not allowed"),
        ("{% now 'Y' %}", "the tag “now” is not allowed"),
        ("{{ ticket_title|safe }}", "Line 1: filter “safe” is not allowed"),
        ("{{ ticket_title|pprint }}", "filter “pprint” is not allowed"),
        ("{{ ticket_title|no_such_filter }}", "Line 1"),
        ("x" * 4001, "at most 4000"),
    ],
)
def test_the_sandbox_refuses_what_templates_may_not_do(source, expected, settings):
    settings.LANGUAGE_CODE = "en"
    with pytest.raises(ValidationError) as info:
        template_check(source)
    assert expected in info.value.messages[0]


def test_the_sandbox_renders_plain_variables_filters_and_if():
    source = "{{ ticket_number|upper }} {% if eta %}预计 {{ eta }}{% else %}{{ eta|default:'尽快' }}{% endif %}"
    assert template_render(source, {"ticket_number": "ts-1", "eta": ""}) == "TS-1 尽快"
    assert template_render(source, {"ticket_number": "ts-1", "eta": "14:30"}) == "TS-1 预计 14:30"
    # Whatever is passed in, the template sees text only.
    assert template_render("{{ ticket_title }}", {"ticket_title": object}) == "<class 'object'>"
    assert template_variables("{{ eta }}{{ ticket_number }}{% if eta %}{{ comment|default:stock }}{% endif %}") == [
        "eta", "ticket_number", "comment", "stock"]


# --- the ticket timeline ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_ticket_timeline_shows_each_notification_with_its_state(tenant_a, agent_a, reachable_engineer,
                                                                   client_for, wecom_stub, settings):
    settings.NOTIFICATION_MAX_ATTEMPTS = 1
    tenant_a.settings = dict(CHANNEL_SETTINGS)
    tenant_a.save()
    with tenant_scope(tenant_a):
        template = published_template(tenant_a)
        customer = CustomerFactory(tenant=tenant_a, phone="", email="", wechat_openid="")
        ticket = intake(tenant_a, template, customer=customer, actor=agent_a)
        ticket_assign(ticket=ticket, assignee=reachable_engineer, actor=agent_a)
        wecom = only(ticket=ticket, channel="wecom")
        wecom_stub.fail(path=WECOM_SEND, status=500)
        assert notification_deliver(notification_id=wecom.pk, session=wecom_stub.session()) == "dead"
    response = client_for(agent_a).get(reverse("ticket-detail", args=[ticket.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="timeline-notification"') == 2  # the bell is not on the timeline
    assert "notif-dead" in html and "http_500" in html
    assert "notif-skipped" in html


@pytest.mark.django_db
def test_an_sms_without_a_provider_template_waits_until_one_is_saved(
        scope_a, channels_a, ticket_template_a, aliyun_stub, django_capture_on_commit_callbacks):
    customer = CustomerFactory(tenant=scope_a, phone="13800138000")
    ticket = intake(scope_a, ticket_template_a, customer=customer)
    row = only(ticket=ticket)
    with aliyun_stub.installed():
        assert notification_deliver(notification_id=row.pk) == "waiting"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("waiting", 0)
    assert "no_template_code" in row.last_error
    assert aliyun_stub.requests == []

    # Saving the provider's template releases what waited for it.
    with aliyun_stub.installed(), django_capture_on_commit_callbacks(execute=True):
        services.notification_template_save(tenant=scope_a, event="ticket_created", channel="sms",
                                            language="zh-hans", body="您的工单{{ ticket_number }}已受理",
                                            sms_template_code="SMS_154950909")
    row.refresh_from_db()
    assert row.status == "sent"
    assert row.body == f"您的工单{ticket.number}已受理"
    assert [(p["TemplateCode"], json.loads(p["TemplateParam"])) for p in aliyun_stub.sent] == [
        ("SMS_154950909", {"ticket_number": ticket.number})]
