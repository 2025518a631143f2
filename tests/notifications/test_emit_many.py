"""event_emit_many: the outbox rows of many events in one go are exactly those of the same
event_emit calls one by one (recipients, preferences, minimum priority, quiet hours and the
urgent bypass, customers' fallback and opt-out, keys), in a fixed number of statements
whatever the number of events; bad input writes nothing."""

import datetime
import zoneinfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import CustomerOptOut, Notification, Preference
from notifications.services import emits_held, event_emit, event_emit_many
from scrm.models import StaffProfile
from tests.factories import CustomerFactory
from tests.notifications.test_outbox import intake

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
LATE = datetime.datetime(2026, 11, 23, 23, 15, tzinfo=SHANGHAI)
COLUMNS = ("event", "channel", "idempotency_key", "user_id", "customer_id", "ticket_id", "address", "subject",
           "body", "url", "params", "note", "status", "sent_at", "next_attempt_at")


def snapshot():
    return sorted(tuple(str(v) for v in row) for row in Notification.objects.values_list(*COLUMNS))


@pytest.fixture
def world(scope_a, ticket_template_a, agent_a, reachable_engineer, manager_a):
    """Three tickets; an engineer who prefers SMS + email with quiet hours all night, a manager
    with WeCom only from urgent up, an agent with no address at all; a customer who opted out
    and one reachable by SMS only."""
    StaffProfile.objects.filter(user=manager_a).update(wecom_userid="li.jingli")
    Preference.objects.create(tenant=scope_a, user=reachable_engineer, event="ticket_escalated",
                              channels=["sms", "email"], quiet_start=datetime.time(22, 0),
                              quiet_end=datetime.time(7, 0))
    Preference.objects.create(tenant=scope_a, user=reachable_engineer, event="node_due_soon", channels=["wecom"],
                              quiet_start=datetime.time(22, 0), quiet_end=datetime.time(7, 0))
    Preference.objects.create(tenant=scope_a, user=manager_a, event="node_due_soon", channels=["wecom"],
                              min_priority="urgent")
    opted, reachable = CustomerFactory(tenant=scope_a, phone="13800138000"), CustomerFactory(
        tenant=scope_a, phone="13800138001", email="", wechat_openid="")
    CustomerOptOut.objects.create(tenant=scope_a, customer=opted)
    with time_machine.travel(LATE, tick=False):
        tickets = [intake(scope_a, ticket_template_a, customer=c) for c in (opted, reachable, None)]
    Notification.objects.all().delete()  # the intake's own rows: not what is compared here
    people = {"engineer": reachable_engineer, "manager": manager_a, "agent": agent_a}
    return {"tenant": scope_a, "tickets": tickets, "people": people, "customers": (opted, reachable)}


def emits_of(world, count=None):
    people, tickets = world["people"], world["tickets"]
    everyone = [people["engineer"], people["manager"], people["agent"]]
    emits = []
    for n, ticket in enumerate(tickets * ((count or 3) // 3 or 1)):
        emits += [
            # An escalation: named channels, through quiet hours.
            {"event": "ticket_escalated", "ticket": ticket, "users": everyone, "channels": ["wecom", "sms"],
             "urgent": True, "occurrence": f"sla{n}", "context": {"level": "1"}},
            # A reminder: preferences, minimum priority, quiet hours hold it.
            {"event": "node_due_soon", "ticket": ticket, "users": everyone, "occurrence": f"soon{n}",
             "context": {"node_name": "受理", "due_at": "11-24 09:00"}},
            # Customers by default (satisfaction is optional: the opted-out one is skipped).
            {"event": "satisfaction_request", "ticket": ticket, "occurrence": f"csat{n}"},
        ]
    return emits[:count] if count else emits


def test_the_rows_are_those_of_the_same_calls_one_by_one(world):
    emits = emits_of(world)
    with time_machine.travel(LATE, tick=False):
        for emit in emits:
            event_emit(tenant=world["tenant"], **emit)
    one_by_one = snapshot()
    Notification.objects.all().delete()
    with time_machine.travel(LATE, tick=False):
        written = event_emit_many(tenant=world["tenant"], emits=emits)
    assert snapshot() == one_by_one
    assert len(written) == len(one_by_one) == Notification.objects.count()
    # What the comparison covers, spelled out once:
    engineer = world["people"]["engineer"]
    escalated = Notification.objects.filter(event="ticket_escalated", user=engineer, ticket=world["tickets"][0])
    assert sorted(escalated.values_list("channel", "note")) == [("inapp", ""), ("sms", ""), ("wecom", "")]
    assert all(n.next_attempt_at == LATE for n in escalated.exclude(channel="inapp"))  # no quiet hours: urgent
    held = Notification.objects.get(event="node_due_soon", user=engineer, channel="wecom",
                                    ticket=world["tickets"][0])
    assert held.next_attempt_at == datetime.datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI) and "07:00" in held.note
    # The manager wants WeCom only for urgent tickets: the bell only.
    assert set(Notification.objects.filter(event="node_due_soon", user=world["people"]["manager"])
               .values_list("channel", flat=True)) == {"inapp"}
    # The agent has no address: in-app only, and the row says why.
    agent_rows = Notification.objects.filter(event="ticket_escalated", user=world["people"]["agent"])
    assert set(agent_rows.values_list("channel", flat=True)) == {"inapp"}
    opted, reachable = world["customers"]
    assert set(Notification.objects.filter(customer=opted).values_list("channel", "status")) == {
        ("none", "skipped")}
    assert set(Notification.objects.filter(customer=reachable).values_list("channel", "status")) == {
        ("sms", "pending")}


def test_a_second_write_of_the_same_events_writes_nothing_and_duplicates_go_in_once(world):
    emits = emits_of(world)
    first = event_emit_many(tenant=world["tenant"], emits=emits + emits)
    assert len(first) == Notification.objects.count()
    assert event_emit_many(tenant=world["tenant"], emits=emits) == []
    assert len(first) == Notification.objects.count()


def test_the_statements_do_not_grow_with_the_number_of_events(world):
    counts = []
    for size in (3, 3, 9):  # the first loads each event's saved templates into the process's cache
        Notification.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            event_emit_many(tenant=world["tenant"], emits=emits_of(world, size))
        counts.append(len(queries))
    assert counts[1] == counts[2] == 5  # profiles, preferences, opt-outs, the templates' stamp, one INSERT


@pytest.mark.parametrize("emits, error", [
    ([{"event": "ticket_exploded", "users": []}], ValueError),
    ([{"event": "ticket_escalated", "tenant": None, "users": []}], TypeError),
    ([{"event": "ticket_escalated", "recipients": []}], TypeError),
])
def test_bad_input_is_refused_and_nothing_is_written(world, emits, error):
    good = emits_of(world, 3)
    with pytest.raises(error):
        event_emit_many(tenant=world["tenant"], emits=good + emits)
    assert not Notification.objects.exists()


def test_no_events_or_no_recipients_write_nothing(world):
    with CaptureQueriesContext(connection) as queries:
        assert event_emit_many(tenant=world["tenant"], emits=[]) == []
        assert event_emit_many(tenant=world["tenant"], emits=[{"event": "ticket_escalated", "users": []}]) == []
    assert len(queries) == 0


def test_held_emits_write_the_rows_of_the_same_calls_in_one_insert_and_nothing_on_error(world):
    emits = emits_of(world)
    with time_machine.travel(LATE, tick=False):
        for emit in emits:
            event_emit(tenant=world["tenant"], **emit)
    one_by_one = snapshot()
    order = list(Notification.objects.order_by("id").values_list("idempotency_key", flat=True))
    Notification.objects.all().delete()
    with (time_machine.travel(LATE, tick=False), CaptureQueriesContext(connection) as ctx,
          emits_held(tenant=world["tenant"])):
        for emit in emits:
            event_emit(tenant=world["tenant"], **emit)
        held = len(ctx.captured_queries)
    assert not any(q["sql"].startswith("INSERT") for q in ctx.captured_queries[:held])  # held until the end
    assert snapshot() == one_by_one
    assert list(Notification.objects.order_by("id").values_list("idempotency_key", flat=True)) == order
    assert sum(q["sql"].startswith("INSERT") for q in ctx.captured_queries) == 1
    Notification.objects.all().delete()
    with pytest.raises(RuntimeError), emits_held(tenant=world["tenant"]):
        event_emit(tenant=world["tenant"], **emits[0])
        raise RuntimeError("the caller failed")
    assert not Notification.objects.exists()
