"""SLA policies and per-ticket deadlines on a controlled clock (time-machine): policies refused
when they cannot work, deadlines counted in working time, the first response, the pause while
waiting on the customer, escalation levels firing exactly once over the channels they name,
a node's timeout handing the task to the backup, and what must not fire (resolved, paused,
reassigned)."""

import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from notifications.models import Notification
from scrm.models import Role, StaffProfile
from scrm.services import region_grant
from tests.conftest import make_member
from tests.factories import RegionFactory, StoreFactory
from tests.workflow.conftest import edge, node, role
from tickets.models import Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.engine import task_act
from workflow.lifecycle import ticket_assign, ticket_status_change, workload_recount
from workflow.models import SlaPolicy, SlaState, SlaTimer, Task, TaskStatus, TicketSla, TimerOutcome
from workflow.services import calendar_create, workflow_create, workflow_draft_set, workflow_publish
from workflow.sla_policy import sla_policy_create, sla_policy_export, sla_policy_import, sla_policy_update
from workflow.sla_sweep import sla_sweep
from workflow.sla_ticket import sla_status

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=SH)
WEEKDAYS = {day: [["09:00", "12:00"], ["13:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def at(hours=0, minutes=0, start=MONDAY_10):
    return start + datetime.timedelta(hours=hours, minutes=minutes)


def sweep(moment):
    with time_machine.travel(moment, tick=False), scopes_disabled():
        return sla_sweep()


@pytest.fixture
def office(scope_a):
    return calendar_create(tenant=scope_a, name="办公时间", weekly_hours=WEEKDAYS)


@pytest.fixture
def chain(scope_a, tenant_a, office):
    """投诉: respond in 2 working hours, resolve in 8; at 2 h the region's manager over WeCom, at 4 h
    the director by SMS (named), raising the priority."""
    region = RegionFactory(tenant=scope_a, name="华东区", code="east")
    store = StoreFactory(tenant=scope_a, region=region, name="南京西路店")
    supervisor = make_member(tenant_a, Role.REGIONAL_MANAGER, "zhou_rm")
    region_grant(user=supervisor, region=region)
    director = make_member(tenant_a, Role.MANAGER, "li_director")
    StaffProfile.objects.filter(user=supervisor).update(wecom_userid="ZhouQiang")
    StaffProfile.objects.filter(user=director).update(phone="13800138000")
    policy = sla_policy_create(
        tenant=tenant_a, name="投诉", condition={"all": [{"field": "category", "op": "=", "value": "complaint"}]},
        calendar=office, response_minutes=120, resolution_minutes=480, due_soon_percent=25,
        escalations=[
            {"after": 120, "to": "regional_manager", "channels": ["wecom"], "until": "response"},
            {"after": 240, "to": "user", "user": director.pk, "channels": ["sms"], "actions": ["raise_priority"]},
        ])
    return {"policy": policy, "store": store, "region": region, "supervisor": supervisor, "director": director}


def complaint(scope, template, store, **kwargs):
    return ticket_intake(tenant=scope, source="phone", template=template, data={"order_no": "A1"}, store=store,
                         region=store.region, title="菜里有异物", priority="high", **kwargs)


def escalation_rows(ticket):
    return list(Notification.objects.filter(ticket=ticket, event="ticket_escalated")
                .exclude(channel="inapp").order_by("id").values_list("user__username", "channel"))


# --- policies: refused input ---------------------------------------------------------------

@pytest.mark.parametrize("fields, key", [
    ({}, "response_minutes"),
    ({"response_minutes": 0}, "response_minutes"),
    ({"response_minutes": "120"}, "response_minutes"),
    ({"response_minutes": 10 ** 9}, "response_minutes"),
    ({"response_minutes": 600, "resolution_minutes": 60}, "resolution_minutes"),
    ({"response_minutes": 60, "due_soon_percent": 0}, "due_soon_percent"),
    ({"response_minutes": 60, "condition": {"field": "nope", "op": "=", "value": 1}}, "condition"),
    ({"response_minutes": 60, "node_limits": {"accept": -5}}, "node_limits"),
    ({"response_minutes": 60, "escalations": [{"after": 240, "to": "supervisor", "channels": ["wecom"]},
                                              {"after": 120, "to": "supervisor", "channels": ["sms"]}]},
     "escalations"),
    ({"response_minutes": 60, "escalations": [{"after": 60, "to": "supervisor", "channels": ["fax"]}]},
     "escalations"),
    ({"response_minutes": 60, "escalations": [{"after": 60, "to": "supervisor", "channels": ["wecom"],
                                               "actions": ["launch_rocket"]}]}, "escalations"),
    ({"response_minutes": 60, "escalations": [{"after": 60, "to": "role", "role": "king", "channels": ["wecom"]}]},
     "escalations"),
    ({"response_minutes": 60, "escalations": "soon"}, "escalations"),
])
def test_a_policy_that_cannot_work_is_refused_and_nothing_is_written(scope_a, tenant_a, fields, key):
    with pytest.raises(ValidationError) as exc:
        sla_policy_create(tenant=tenant_a, name="坏的", **fields)
    assert key in exc.value.message_dict
    assert not SlaPolicy.objects.exists()


def test_a_level_after_a_longer_one_is_refused_with_a_clear_message(scope_a, tenant_a):
    with pytest.raises(ValidationError) as exc:
        sla_policy_create(tenant=tenant_a, name="投诉", response_minutes=60, escalations=[
            {"after": 240, "to": "supervisor", "channels": ["wecom"]},
            {"after": 240, "to": "supervisor", "channels": ["sms"]}])
    assert exc.value.message_dict["escalations"][0].startswith("第 2 级在 240 分钟后触发，不晚于第 1 级")


def test_a_recipient_of_another_tenant_is_refused(scope_a, tenant_a, tenant_b):
    stranger = make_member(tenant_b, Role.MANAGER, "stranger")
    with pytest.raises(ValidationError) as exc:
        sla_policy_create(tenant=tenant_a, name="投诉", response_minutes=60, escalations=[
            {"after": 60, "to": "user", "user": stranger.pk, "channels": ["sms"]}])
    assert exc.value.message_dict["escalations"][0] == "第 1 级：请选择本租户的员工。"
    assert not SlaPolicy.objects.exists()


def test_a_calendar_of_another_tenant_is_refused(scope_a, tenant_a, tenant_b):
    from django_scopes import scope

    with scope(tenant=tenant_b):
        calendar_b = calendar_create(tenant=tenant_b, name="B历", weekly_hours=WEEKDAYS)
    with pytest.raises(ValidationError) as exc:
        sla_policy_create(tenant=tenant_a, name="投诉", response_minutes=60, calendar=calendar_b)
    assert "calendar" in exc.value.message_dict
    assert not SlaPolicy.objects.exists()


def test_export_and_import_move_policies_with_calendars_and_people_by_name(scope_a, tenant_a, chain):
    payload = sla_policy_export()
    assert payload["policies"][0]["calendar"] == "办公时间"
    assert payload["policies"][0]["escalations"][1]["user"] == "li_director"
    sla_policy_update(policy=chain["policy"], response_minutes=30)
    [policy] = sla_policy_import(tenant=tenant_a, payload=payload)
    assert policy.pk == chain["policy"].pk and policy.response_minutes == 120
    assert policy.escalations[1]["user"] == chain["director"].pk
    bad = {"format": "scrm.sla-policies/1", "policies": [dict(payload["policies"][0], name="新"),
                                                         {"name": "坏", "response_minutes": -1}]}
    with pytest.raises(ValidationError, match="第 2 条策略"):
        sla_policy_import(tenant=tenant_a, payload=bad)
    assert list(SlaPolicy.objects.values_list("name", flat=True)) == ["投诉"]  # all or nothing


# --- per-ticket deadlines ----------------------------------------------------------------------

def test_a_complaint_gets_working_time_deadlines_and_others_none(scope_a, wf_template, chain):
    with time_machine.travel(datetime.datetime(2026, 12, 7, 17, 0, tzinfo=SH), tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    tsla = TicketSla.objects.get(ticket=ticket)
    # 17:00 Monday + 2 working hours = Tuesday 10:00 (18:00 closes); + 8 h = Tuesday 17:00.
    assert tsla.response_due_at == datetime.datetime(2026, 12, 8, 10, 0, tzinfo=SH)
    assert tsla.resolution_due_at == datetime.datetime(2026, 12, 8, 17, 0, tzinfo=SH)
    assert TimelineEvent.objects.filter(ticket=ticket, code="sla.started").count() == 1
    sla_policy_update(policy=chain["policy"], condition={"all": [{"field": "priority", "op": "=",
                                                                  "value": "urgent"}]})
    other = complaint(scope_a, wf_template, chain["store"])
    assert not TicketSla.objects.filter(ticket=other).exists()


def test_unanswered_complaint_escalates_to_the_region_over_wecom_then_sms_to_the_director(
        scope_a, wf_template, chain):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    assert sweep(at(1, 59))["fired"] == 1  # the response due-soon reminder (75 % gone) only
    assert escalation_rows(ticket) == []
    sweep(at(2, 0))
    assert escalation_rows(ticket) == [("zhou_rm", "wecom")]
    assert TicketSla.objects.get(ticket=ticket).response_breached
    assert sweep(at(2, 0)) == {}  # a second sweep finds nothing left to fire
    # Lunch 12:00-13:00 does not count: 4 working hours from 10:00 is 15:00.
    sweep(at(4, 59))
    assert escalation_rows(ticket) == [("zhou_rm", "wecom")]
    sweep(at(5, 0))
    assert escalation_rows(ticket) == [("zhou_rm", "wecom"), ("li_director", "sms")]
    assert Ticket.objects.get(pk=ticket.pk).priority == "urgent"  # raised one step from the intake's high
    events = list(TimelineEvent.objects.filter(ticket=ticket, code="sla.escalated").order_by("id"))
    assert [e.params["level"] for e in events] == [1, 2]
    assert events[0].text == "第 1 级升级：已通过企业微信通知 zhou_rm。"  # stored as codes, read in Chinese
    breach = TimelineEvent.objects.get(ticket=ticket, code="sla.breached")
    assert breach.params["target"] == "response" and breach.text.startswith("SLA 超时：首次响应 截止于")
    assert TicketSla.objects.get(ticket=ticket).escalation_level == 2
    assert SlaTimer.objects.filter(ticket=ticket, fired_at__isnull=True).count() == 2  # resolution ones


def test_escalations_bypass_quiet_hours_and_preferences(scope_a, wf_template, chain):
    from notifications.models import Preference

    Preference.objects.create(tenant_id=scope_a.pk, user=chain["supervisor"], event="ticket_escalated",
                              channels=["email"], min_priority="urgent", quiet_start=datetime.time(0, 0),
                              quiet_end=datetime.time(23, 59))
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    sweep(at(2, 0))
    row = Notification.objects.get(ticket=ticket, event="ticket_escalated", channel="wecom")
    assert row.note == "" and row.next_attempt_at <= at(2, 0)


def test_a_first_response_stops_the_response_levels(scope_a, wf_template, chain, people):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    with time_machine.travel(at(1), tick=False):
        ticket_status_change(ticket=ticket, action="start", actor=people["agent"])
    tsla = TicketSla.objects.get(ticket=ticket)
    assert tsla.responded_at == at(1) and not tsla.response_breached
    sweep(at(3))
    assert escalation_rows(ticket) == []
    assert sla_status(TicketSla.objects.get(ticket=ticket), at(3)).target == "resolution"


def test_waiting_on_the_customer_stops_the_clock(scope_a, wf_template, chain, people):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    with time_machine.travel(at(0, 30), tick=False):
        ticket_status_change(ticket=ticket, action="start", actor=people["agent"])
        ticket_status_change(ticket=ticket, action="wait", actor=people["agent"])
    tsla = TicketSla.objects.get(ticket=ticket)
    assert sla_status(tsla, at(30)).state == SlaState.PAUSED
    assert sweep(at(48)) == {}  # two days waiting: nothing due, nothing breached
    with time_machine.travel(at(48), tick=False):  # Wednesday 10:00
        ticket_status_change(ticket=ticket, action="start", actor=people["agent"])
    tsla.refresh_from_db()
    # 7.5 working hours were left at Monday 10:30; from Wednesday 10:00 that is Thursday 9:30.
    assert tsla.resolution_due_at == datetime.datetime(2026, 12, 10, 9, 30, tzinfo=SH)
    assert tsla.paused_minutes == 390 + 480 + 60  # Mon 10:30→18:00 less lunch, Tue all day, Wed 9→10
    assert sla_status(tsla, at(48)).state == SlaState.ON_TRACK
    assert not TicketSla.objects.get(ticket=ticket).resolution_breached


def test_resolved_tickets_fire_nothing(scope_a, wf_template, chain, people):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
        ticket_status_change(ticket=ticket, action="resolve", actor=people["agent"])
    assert sweep(at(100)) == {}
    assert not SlaTimer.objects.filter(ticket=ticket, fired_at__isnull=True).exists()
    assert set(SlaTimer.objects.filter(ticket=ticket).values_list("outcome", flat=True)) == {
        TimerOutcome.CANCELLED}
    assert sla_status(TicketSla.objects.get(ticket=ticket), at(100)).state == SlaState.MET


# --- node timeouts ------------------------------------------------------------------------------

GRAPH = {
    "nodes": [
        node("start", "start"),
        node("accept", "task", "受理", handler=role("agent"), backup=role("manager"), time_limit=60),
        node("fix", "task", "处理", handler=role("engineer")),
        node("end", "end"),
    ],
    "transitions": [edge("start", "accept"), edge("accept", "fix"), edge("fix", "end")],
}


@pytest.fixture
def flow(wf_template):
    workflow = workflow_create(template=wf_template, name="维修流程")
    workflow_draft_set(workflow=workflow, graph=GRAPH)
    workflow_publish(workflow=workflow)
    return workflow


def test_a_node_timeout_hands_the_task_to_the_backup(scope_a, wf_template, flow, people):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={})
    task = Task.objects.get(ticket=ticket, status=TaskStatus.OPEN)
    assert task.assignee == people["agent"] and task.backup in (people["manager"], people["manager2"])
    assert sweep(at(0, 50))["fired"] == 1  # due soon: the handler is reminded
    assert Notification.objects.filter(ticket=ticket, event="node_due_soon", user=people["agent"]).exists()
    assert sweep(at(1, 0))["fired"] == 1
    task.refresh_from_db()
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert task.assignee_id != people["agent"].pk and ticket.assignee_id == task.assignee_id
    assert TimelineEvent.objects.filter(ticket=ticket, code="sla.node_backup").count() == 1
    assert workload_recount() == {}  # the hand-over's held writes moved the open-task counts too
    assert sweep(at(5)) == {}


def test_a_policy_node_limit_counts_working_time(scope_a, tenant_a, wf_template, flow, office, people):
    sla_policy_create(tenant=tenant_a, name="维修", calendar=office, resolution_minutes=600,
                      node_limits={"accept": 120})
    with time_machine.travel(datetime.datetime(2026, 12, 7, 17, 0, tzinfo=SH), tick=False):
        ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={})
    task = Task.objects.get(ticket=ticket, status=TaskStatus.OPEN)
    assert task.due_at == datetime.datetime(2026, 12, 8, 10, 0, tzinfo=SH)


def test_a_reassigned_or_finished_task_does_not_time_out(scope_a, wf_template, flow, people):
    with time_machine.travel(MONDAY_10, tick=False):
        first = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={})
        second = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={})
    with time_machine.travel(at(0, 10), tick=False):
        ticket_assign(ticket=first, assignee=people["gm"], actor=people["manager"])
        task_act(task=Task.objects.get(ticket=second, status=TaskStatus.OPEN), action="submit",
                 user=people["agent"])
    counts = sweep(at(2))
    assert counts == {"skipped": 2}  # the reassigned task's two timers; the finished one's were cancelled
    assert Task.objects.get(ticket=first, node="accept").assignee == people["gm"]
    assert not TimelineEvent.objects.filter(ticket__in=[first, second], code__startswith="sla.node").exists()


def test_sla_status_reads_on_track_due_soon_breached():
    tsla = TicketSla(started_at=at(0), resolution_due_at=at(4), due_soon_percent=25, is_open=True)
    assert sla_status(tsla, at(1)).state == SlaState.ON_TRACK
    assert sla_status(tsla, at(3, 30)).state == SlaState.DUE_SOON
    assert sla_status(tsla, at(3, 30)).minutes_left == 30
    assert sla_status(tsla, at(5)).state == SlaState.BREACHED
    assert sla_status(tsla, at(5)).left_text == "超时 1小时00分"
    assert sla_status(None, at(0)).state == SlaState.NONE


# --- the batch sweep --------------------------------------------------------------------------

def test_a_batch_of_due_tickets_costs_a_few_queries_not_a_few_per_ticket(
        scope_a, wf_template, chain, people, django_assert_max_num_queries):
    """30 tickets breach their first response in one sweep: the breaches (flags, timeline) are
    written in bulk; what grows with the count is only the escalation's outbox rows."""
    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        tickets = [complaint(scope_a, wf_template, chain["store"]) for _ in range(30)]
    sweep(at(1, 59))  # the due-soon reminders (one outbox write each) out of the way
    with django_assert_max_num_queries(12):
        assert sweep(at(2, 0)) == {"fired": 30}
    assert TicketSla.objects.filter(ticket__in=tickets, response_breached=True).count() == 30
    assert TimelineEvent.objects.filter(ticket__in=tickets, code="sla.breached").count() == 30
    assert sweep(at(2, 0)) == {}


def test_escalations_cost_the_same_statements_per_batch_whatever_their_count(scope_a, wf_template, chain):
    """Breaches plus a level that notifies over WeCom and SMS and raises the priority, for 3
    tickets and for 12 in one batch: the same statements — the outbox rows through
    event_emit_many, the priorities in one UPDATE, the timeline in one INSERT."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sla_policy_update(policy=chain["policy"], escalations=[
        {"after": 120, "to": "regional_manager", "channels": ["wecom", "sms"], "until": "response",
         "actions": ["raise_priority"]}])
    counts = []
    # One group a day (Monday, Wednesday, Friday), each swept out before the next is filed; the
    # first also loads the message templates into the process's cache.
    for size, start in ((1, MONDAY_10), (3, at(48)), (12, at(96))):
        with time_machine.travel(start, tick=False):
            tickets = [complaint(scope_a, wf_template, chain["store"]) for _ in range(size)]
        sweep(at(1, 59, start))  # the due-soon reminders out of the way
        with CaptureQueriesContext(connection) as queries:
            assert sweep(at(2, 0, start)) == {"fired": 2 * size}  # each: the breach and the level
        counts.append(len(queries))
        assert set(Ticket.objects.filter(pk__in=[t.pk for t in tickets]).values_list("priority", flat=True)) == {
            "urgent"}
        assert TimelineEvent.objects.filter(ticket__in=tickets, code="sla.escalated").count() == size
        assert Notification.objects.filter(ticket__in=tickets, event="ticket_escalated", channel="wecom",
                                           user=chain["supervisor"]).count() == size
        sweep(at(48, 0, start))  # everything else of this group
    assert counts[1] == counts[2]


def test_a_failing_timer_is_retried_alone_and_the_rest_of_its_batch_fires(scope_a, wf_template, chain, monkeypatch):
    from workflow import sla_sweep as sweep_module

    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        good, bad = complaint(scope_a, wf_template, chain["store"]), complaint(scope_a, wf_template, chain["store"])
    real = sweep_module.FIRE["response_soon"]

    def fire(batch, *, timer, ticket, **kwargs):
        if timer.ticket_id == bad.pk:
            raise RuntimeError("broken row")
        return real(batch, timer=timer, ticket=ticket, **kwargs)

    monkeypatch.setitem(sweep_module.FIRE, "response_soon", fire)
    counts = sweep(at(1, 59))
    assert counts == {"fired": 1, "failed": 1}
    assert SlaTimer.objects.get(ticket=good, kind="response_soon").outcome == TimerOutcome.FIRED
    assert SlaTimer.objects.filter(ticket=bad, kind="response_soon", fired_at__isnull=True).exists()  # still due


def test_a_resolved_paused_or_reassigned_ticket_in_the_same_batch_does_not_fire(
        scope_a, wf_template, chain, people):
    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        live, resolved, waiting = (complaint(scope_a, wf_template, chain["store"]) for _ in range(3))
    with time_machine.travel(at(0, 30), tick=False):
        ticket_status_change(ticket=resolved, action="resolve", actor=people["agent"])
        # Waiting on the customer with a timer that came due just before the pause's write:
        ticket_status_change(ticket=waiting, action="start", actor=people["agent"])
        ticket_status_change(ticket=waiting, action="wait", actor=people["agent"])
    SlaTimer.objects.filter(ticket=waiting, kind="resolution_due").update(due_at=at(1), left_minutes=None)
    counts = sweep(at(2, 0))
    assert counts["fired"] == 2  # the live ticket's due-soon reminder and breach
    assert counts["skipped"] == 1  # the paused ticket's stray timer
    assert TimelineEvent.objects.filter(ticket=live, code="sla.breached").count() == 1
    assert not TimelineEvent.objects.filter(ticket__in=[resolved, waiting], code="sla.breached").exists()


# --- due soon on the business calendar --------------------------------------------------------

FRIDAY_10 = datetime.datetime(2026, 12, 11, 10, 0, tzinfo=SH)


@pytest.mark.parametrize("moment, state", [
    (datetime.datetime(2026, 12, 11, 15, 0, tzinfo=SH), SlaState.ON_TRACK),   # 4 working hours left of 8
    (datetime.datetime(2026, 12, 11, 17, 50, tzinfo=SH), SlaState.DUE_SOON),  # 70 working minutes left
    (datetime.datetime(2026, 12, 12, 12, 0, tzinfo=SH), SlaState.DUE_SOON),   # Saturday: 60 left, 46 h wall clock
    (datetime.datetime(2026, 12, 14, 10, 1, tzinfo=SH), SlaState.BREACHED),
])
def test_due_soon_counts_working_minutes_left_not_wall_clock(scope_a, office, moment, state):
    """Resolution in 8 working hours from Friday 10:00 is due Monday 10:00; 25 % is 2 working
    hours. On the wall clock Friday 17:50 still has 64 of 72 hours left (on track)."""
    from workflow.sla_ticket import calendar_for

    calendar = calendar_for(office.pk)
    tsla = TicketSla(started_at=FRIDAY_10, resolution_due_at=datetime.datetime(2026, 12, 14, 10, 0, tzinfo=SH),
                     due_soon_percent=25, is_open=True, calendar_id=office.pk)
    assert sla_status(tsla, moment, calendar).state == state
    assert sla_status(tsla, moment).state == state  # the row's own calendar, from the tenant cache


def test_due_soon_leaves_out_the_working_time_paused(scope_a, office):
    from workflow.sla_ticket import calendar_for

    # 8 working hours of target + 2 paused: due Tuesday 12:00 from Monday 10:00.
    tsla = TicketSla(started_at=MONDAY_10, resolution_due_at=datetime.datetime(2026, 12, 8, 12, 0, tzinfo=SH),
                     due_soon_percent=25, paused_minutes=120, is_open=True, calendar_id=office.pk)
    calendar = calendar_for(office.pk)
    # 130 working minutes left: above 25 % of the 480 of target (below 25 % of the 600 counted raw).
    assert sla_status(tsla, datetime.datetime(2026, 12, 8, 9, 50, tzinfo=SH), calendar).state == SlaState.ON_TRACK
    assert sla_status(tsla, datetime.datetime(2026, 12, 8, 10, 5, tzinfo=SH), calendar).state == SlaState.DUE_SOON


# --- reopening re-arms the clock --------------------------------------------------------------

def test_a_reopened_ticket_gets_a_new_resolution_target_counted_from_the_reopening(
        scope_a, wf_template, chain, people):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    with time_machine.travel(at(0, 30), tick=False):
        ticket_status_change(ticket=ticket, action="start", actor=people["agent"])
        ticket_status_change(ticket=ticket, action="resolve", actor=people["agent"])
    assert not SlaTimer.objects.filter(ticket=ticket, fired_at__isnull=True).exists()
    thursday_17 = datetime.datetime(2026, 12, 10, 17, 0, tzinfo=SH)
    with time_machine.travel(thursday_17, tick=False):
        ticket_status_change(ticket=ticket, action="reopen", actor=people["agent"])
    tsla = TicketSla.objects.get(ticket=ticket)
    # 8 working hours from Thursday 17:00 (1 h Thursday, 3 + 4 Friday): Friday 17:00.
    friday_17 = datetime.datetime(2026, 12, 11, 17, 0, tzinfo=SH)
    assert (tsla.resolved_at, tsla.resolution_due_at, tsla.started_at) == (None, friday_17, thursday_17)
    pending = set(SlaTimer.objects.filter(ticket=ticket, fired_at__isnull=True).values_list("kind", "level"))
    # the level waiting only for the first response stays done: it was given
    assert pending == {("resolution_soon", 0), ("resolution_due", 0), ("escalation", 2)}
    assert TimelineEvent.objects.filter(ticket=ticket, code="sla.rearmed").count() == 1
    assert sla_status(tsla, thursday_17).state == SlaState.ON_TRACK
    assert sweep(friday_17)["fired"] == 3  # due soon, level 2 (4 working hours), the breach
    assert TicketSla.objects.get(ticket=ticket).resolution_breached
    assert sweep(friday_17) == {}


def test_reopening_without_a_resolution_target_only_clears_the_resolved_mark(scope_a, tenant_a, wf_template,
                                                                              chain, people):
    sla_policy_update(policy=chain["policy"], resolution_minutes=None, escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
        ticket_status_change(ticket=ticket, action="resolve", actor=people["agent"])
        ticket_status_change(ticket=ticket, action="reopen", actor=people["agent"])
    tsla = TicketSla.objects.get(ticket=ticket)
    assert tsla.resolved_at is None and tsla.resolution_due_at is None
    assert not SlaTimer.objects.filter(ticket=ticket, fired_at__isnull=True).exists()
    assert not TimelineEvent.objects.filter(ticket=ticket, code="sla.rearmed").exists()


# --- the daily digest of breaches ----------------------------------------------------------------

def digest_rows(user):
    return list(Notification.objects.filter(user=user, event="sla_breach_digest").order_by("channel")
                .values_list("channel", "subject", "body"))


def test_each_regional_manager_gets_one_digest_of_their_regions_breaches_a_day(
        scope_a, tenant_a, wf_template, chain, people):
    from workflow.sla_digest import sla_breach_digest_send

    other_region = RegionFactory(tenant=scope_a, name="华北区", code="north")
    other_store = StoreFactory(tenant=scope_a, region=other_region, name="王府井店")
    north = make_member(tenant_a, Role.REGIONAL_MANAGER, "wang_rm")
    region_grant(user=north, region=other_region)
    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        east = [complaint(scope_a, wf_template, chain["store"]) for _ in range(2)]
        answered = complaint(scope_a, wf_template, chain["store"])
        ticket_status_change(ticket=answered, action="start", actor=people["agent"])
    sweep(at(2, 0))
    with time_machine.travel(at(8), tick=False):
        assert sla_breach_digest_send(tenant=tenant_a) == 1
        assert sla_breach_digest_send(tenant=tenant_a) == 0  # idempotent: the same day writes nothing again
    rows = digest_rows(chain["supervisor"])
    assert [c for c, _s, _b in rows] == ["inapp", "wecom"]
    _channel, subject, body = rows[0]
    assert subject == "12-07 您所辖区域的 SLA 超时：2 单"
    assert all(t.number in body for t in east) and answered.number not in body
    assert "首次响应 截止 12:00" in body
    assert digest_rows(north) == [] and other_store  # nothing breached in the north
    # The next day is a new digest (nothing new breached on it: nothing sent).
    with time_machine.travel(at(24), tick=False):
        assert sla_breach_digest_send(tenant=tenant_a) == 0


def test_the_digest_is_its_own_event_with_its_own_preferences_and_wording(scope_a, tenant_a, wf_template, chain):
    from notifications.models import Preference
    from notifications.offered import event_offered
    from workflow.sla_digest import sla_breach_digest_send

    assert event_offered("sla_breach_digest")  # a row on the preferences and template pages
    chain["supervisor"].email = "zhou@example.com"
    chain["supervisor"].save()
    Preference.objects.create(tenant_id=scope_a.pk, user=chain["supervisor"], event="sla_breach_digest",
                              channels=["email"])
    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = complaint(scope_a, wf_template, chain["store"])
    sweep(at(2, 0))
    with time_machine.travel(at(8), tick=False):
        assert sla_breach_digest_send(tenant=tenant_a) == 1
    rows = digest_rows(chain["supervisor"])
    assert [c for c, _s, _b in rows] == ["email", "inapp"]  # its own preference, not the other events'
    _channel, subject, body = rows[0]
    assert subject == "12-07 您所辖区域的 SLA 超时：1 单" and ticket.number in body
    assert body.endswith("请跟进以上超时工单，处理情况可在工单列表中查看。")


def test_the_digest_task_runs_every_tenant_in_its_own_scope(tenant_a, tenant_b, wf_template, chain):
    from workflow.tasks import sla_breach_digest_task

    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        complaint(tenant_a, wf_template, chain["store"])
    sweep(at(2, 0))
    with time_machine.travel(at(8), tick=False):
        assert sla_breach_digest_task() == {tenant_a.pk: 1, tenant_b.pk: 0}
    with scopes_disabled():
        assert not Notification.objects.filter(tenant=tenant_b).exists()


@pytest.mark.parametrize("day", ["2026-12-07", 20261207, None.__class__])
def test_the_digest_refuses_a_day_that_is_not_a_date_and_writes_nothing(scope_a, tenant_a, day):
    from workflow.sla_digest import sla_breach_digest_send

    with pytest.raises(TypeError):
        sla_breach_digest_send(tenant=tenant_a, day=day)
    assert not Notification.objects.exists()


def test_a_batch_that_makes_no_progress_ends_the_sweep_instead_of_spinning(scope_a, wf_template, chain, monkeypatch):
    from workflow import sla_sweep as sweep_module

    sla_policy_update(policy=chain["policy"], escalations=[])
    with time_machine.travel(MONDAY_10, tick=False):
        complaint(scope_a, wf_template, chain["store"])

    def fire(batch, **kwargs):
        raise RuntimeError("broken row")

    monkeypatch.setitem(sweep_module.FIRE, "response_soon", fire)
    with time_machine.travel(at(1, 59), tick=False), scopes_disabled():
        assert sla_sweep(batch=1) == {"failed": 1}  # tried once, left for the next sweep
