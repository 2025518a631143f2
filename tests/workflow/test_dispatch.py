"""Smart dispatch through the engine: the `dispatch` rule picks the nearest eligible engineer
with the skill, stores why on the task, borrows a neighbouring store's engineer when the local
ones are full, sends the ticket to the exception pool when nobody qualifies, and is refused at
publish when its parameters are wrong (nothing published)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from scrm.models import Role, Skill
from tests.conftest import make_member
from tests.factories import CustomerFactory, RegionFactory, StoreFactory
from tests.workflow.conftest import edge, node
from tickets.models import Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.dispatch_loader import dispatch_evaluate
from workflow.models import PoolEntry, Task, WorkflowVersion
from workflow.pool import pool_assign, pool_enter, pool_redispatch
from workflow.routing import HandlerContext, handlers_choose
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def graph(handler):
    return {"nodes": [node("start", "start"), node("fix", "task", "上门维修", handler=handler), node("end", "end")],
            "transitions": [edge("start", "fix"), edge("fix", "end")]}


@pytest.fixture
def city(scope_a):
    """Two Shanghai stores in one region, one in Suzhou (another region), and engineers."""
    east = RegionFactory(tenant=scope_a, name="华东", code="east")
    jiangsu = RegionFactory(tenant=scope_a, name="江苏", code="js")
    xuhui = StoreFactory(tenant=scope_a, region=east, name="徐汇店", code="xh", latitude=Decimal("31.188"),
                         longitude=Decimal("121.4365"))
    pudong = StoreFactory(tenant=scope_a, region=east, name="浦东店", code="pd", latitude=Decimal("31.2215"),
                          longitude=Decimal("121.544"))
    suzhou = StoreFactory(tenant=scope_a, region=jiangsu, name="苏州店", code="sz", latitude=Decimal("31.299"),
                          longitude=Decimal("120.5853"))
    ac = Skill.objects.create(tenant=scope_a, name="空调维修")
    senior = Skill.objects.create(tenant=scope_a, name="资深")
    people = {}
    for username, store, skills, extra in (
        ("zhang", xuhui, [ac], {}),
        ("li", xuhui, [ac], {"max_open_tickets": 1}),
        ("wang", pudong, [ac, senior], {}),
        ("zhao", suzhou, [ac], {}),
        ("qian", xuhui, [], {}),
    ):
        user = make_member(scope_a, Role.ENGINEER, username)
        profile = user.staff_profiles.get()
        profile.home_store = store
        for key, value in extra.items():
            setattr(profile, key, value)
        profile.save()
        profile.skills.set(skills)
        people[username] = user
    return {"xuhui": xuhui, "pudong": pudong, "suzhou": suzhou, "ac": ac, "senior": senior, **people}


def rule(city, **extra):
    return {"rule": "dispatch", "role": "engineer", "overflow": ["store", "region", "nearby", "tenant"],
            "radius_km": 30, "skills": [city["ac"].pk], "on_duty_only": True, "under_capacity": True,
            "w_distance": 40, "w_load": 40, "w_speed": 20, "round_robin": True, **extra}


def publish(template, handler):
    workflow = workflow_create(template=template, name="维修派单")
    workflow_draft_set(workflow=workflow, graph=graph(handler))
    return workflow_publish(workflow=workflow)


def intake(scope, template, store, **extra):
    return ticket_intake(tenant=scope, source="phone", template=template, data={}, store=store,
                         region=store.region, **extra)


def test_ticket_goes_to_an_engineer_with_the_skill_in_its_store_and_the_task_says_why(scope_a, wf_template, city):
    publish(wf_template, rule(city))
    ticket = intake(scope_a, wf_template, city["xuhui"])
    task = Task.objects.get(ticket=ticket)
    assert task.assignee in (city["zhang"], city["li"])
    reasons = {r["name"]: r for r in task.handler_reasons}
    picked = reasons[task.assignee.first_name]
    assert picked["picked"] is True and picked["code"] == "picked"
    assert picked["why"].startswith(f"Picked: works in the ticket's store {city['xuhui'].name}, 0 km away, "
                                    "0 open now (limit ")
    assert "skills 空调维修" in picked["why"] and "no responses in 3 days" in picked["why"]
    assert reasons["qian"]["code"] == "no_skill" and reasons["qian"]["why"].startswith(
        "Lacks the skill 空调维修 (works in")
    assert "wang" not in reasons  # the store had someone: the region was never looked at
    assert Ticket.objects.get(pk=ticket.pk).assignee == task.assignee
    assert not PoolEntry.objects.exists()


def test_every_local_engineer_full_borrows_from_the_neighbouring_store_and_says_so(scope_a, wf_template, city):
    for who in ("zhang", "li"):
        profile = city[who].staff_profiles.get()
        profile.on_duty = who == "li"
        profile.save()
    publish(wf_template, rule(city))
    first = intake(scope_a, wf_template, city["xuhui"])
    assert Task.objects.get(ticket=first).assignee == city["li"]  # the only one on duty, now full (limit 1)
    second = intake(scope_a, wf_template, city["xuhui"])
    task = Task.objects.get(ticket=second)
    assert task.assignee == city["wang"]
    why = {r["name"]: r["why"] for r in task.handler_reasons}
    assert why["wang"].startswith(f"Picked: covers the ticket's region {city['xuhui'].region.name}, cross-store "
                                  "support: nobody eligible in the ticket's store, 10.9 km away")
    assert why["zhang"].startswith("Off duty (works in the ticket's store")
    assert why["li"].startswith("Full: 1 open, limit 1 (")


def test_vip_goes_to_senior_staff_only(scope_a, wf_template, city):
    publish(wf_template, rule(city, senior_skill=city["senior"].pk, senior_for="vip", overflow=["store", "region"]))
    vip = CustomerFactory(tenant=scope_a, tier="vip")
    ticket = intake(scope_a, wf_template, city["xuhui"], customer=vip)
    task = Task.objects.get(ticket=ticket)
    assert task.assignee == city["wang"]
    codes = {r["name"]: r["code"] for r in task.handler_reasons}
    assert codes["zhang"] == "not_senior" and codes["wang"] == "picked"


def test_nobody_eligible_lands_in_the_pool_with_the_reason(scope_a, wf_template, city, manager_a):
    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    ticket = intake(scope_a, wf_template, city["xuhui"])
    task = Task.objects.get(ticket=ticket)
    assert task.assignee is None
    entry = PoolEntry.objects.get(ticket=ticket)
    assert entry.reason == "no_handler" and entry.left_at is None and entry.region == city["xuhui"].region
    assert entry.detail == "Nobody eligible (looked in the ticket's store; 3 considered, mostly: lacking the skill)"
    assert TimelineEvent.objects.filter(ticket=ticket, code="pool.entered").count() == 1
    # A manager assigns from the pool: through the lifecycle, the task moves, the entry closes.
    pool_assign(entry=entry, assignee=city["zhang"], actor=manager_a)
    task.refresh_from_db()
    entry.refresh_from_db()
    assert task.assignee == city["zhang"] and Ticket.objects.get(pk=ticket.pk).assignee == city["zhang"]
    assert entry.outcome == "assigned" and entry.left_by == manager_a
    assert TimelineEvent.objects.filter(ticket=ticket, code="pool.left").count() == 1
    with pytest.raises(ValidationError):
        pool_assign(entry=entry, assignee=city["li"], actor=manager_a)  # already left


def test_redispatch_from_the_pool_runs_the_rule_again(scope_a, wf_template, city, manager_a):
    for who in ("zhang", "li", "qian"):
        profile = city[who].staff_profiles.get()
        profile.on_duty = False
        profile.save()
    publish(wf_template, rule(city, overflow=["store"]))
    ticket = intake(scope_a, wf_template, city["xuhui"])
    entry = PoolEntry.objects.get(ticket=ticket)
    with pytest.raises(ValidationError) as exc:
        pool_redispatch(entry=entry, actor=manager_a)
    assert "Still nobody" in str(exc.value)
    entry.refresh_from_db()
    assert entry.left_at is None and Task.objects.get(ticket=ticket).assignee is None
    profile = city["zhang"].staff_profiles.get()
    profile.on_duty = True
    profile.save()
    pool_redispatch(entry=entry, actor=manager_a)
    task = Task.objects.get(ticket=ticket)
    assert task.assignee == city["zhang"]
    assert any(r["picked"] and r["name"] == "zhang" for r in task.handler_reasons)
    entry.refresh_from_db()
    assert entry.outcome == "redispatched"


def test_pool_assign_refuses_someone_without_a_ticket_role_or_of_another_tenant(scope_a, wf_template, city,
                                                                                 manager_a, tenant_b):
    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    ticket = intake(scope_a, wf_template, city["xuhui"])
    entry = PoolEntry.objects.get(ticket=ticket)
    finance = make_member(scope_a, Role.FINANCE, "cashier")
    stranger = make_member(tenant_b, Role.ENGINEER, "stranger")
    for person in (finance, stranger):
        with pytest.raises(ValidationError):
            pool_assign(entry=entry, assignee=person, actor=manager_a)
    entry.refresh_from_db()
    assert entry.left_at is None and Task.objects.get(ticket=ticket).assignee is None


def test_pool_enter_is_a_service_others_call_once_per_ticket(scope_a, wf_template, city, manager_a):
    ticket = intake(scope_a, wf_template, city["xuhui"])
    entry = pool_enter(ticket=ticket, reason="escalated", detail="超时 2 小时", actor=manager_a)
    assert pool_enter(ticket=ticket, reason="escalated", actor=manager_a) == entry
    assert PoolEntry.objects.filter(ticket=ticket).count() == 1
    with pytest.raises(ValidationError):
        pool_enter(ticket=ticket, reason="bored", actor=manager_a)


def test_the_decision_costs_a_fixed_number_of_queries_whatever_the_staff(scope_a, wf_template, city):
    ticket = intake(scope_a, wf_template, city["xuhui"])
    the_rule = rule(city, overflow=["store", "region", "nearby", "tenant"], skills=[city["senior"].pk])

    def count():
        with CaptureQueriesContext(connection) as ctx:
            handlers_choose(the_rule, HandlerContext(ticket=ticket))
        return len(ctx.captured_queries)

    count()  # the first decision fills the tenant's skill-name cache (one query, once per config stamp)
    before = count()
    for i in range(12):
        user = make_member(scope_a, Role.ENGINEER, f"extra{i}")
        profile = user.staff_profiles.get()
        profile.home_store = city["xuhui"] if i % 2 else city["suzhou"]
        profile.save()
        profile.skills.set([city["ac"]])
    assert count() == before
    assert before <= 20


def test_no_location_anywhere_is_a_reason_not_a_crash(scope_a, wf_template, city):
    bare = StoreFactory(tenant=scope_a, region=city["xuhui"].region, name="无坐标店", code="bare",
                        latitude=None, longitude=None)
    ticket = ticket_intake(tenant=scope_a, source="phone", template=wf_template, data={}, store=bare)
    decision, context = dispatch_evaluate(rule(city, overflow=["store", "nearby"]), ticket)
    assert decision.picked is None and context["source"] == ""
    choice = handlers_choose(rule(city, overflow=["store", "nearby"]), HandlerContext(ticket=ticket))
    assert choice.users == [] and choice.reasons[0]["code"] == "nobody_empty"


@pytest.mark.parametrize(("bad", "message"), [
    ({"role": "wizard"}, "Unknown role “wizard”."),
    ({"w_load": -5}, "A weight cannot be negative."),
    ({"radius_km": -3}, "The radius must be at least 1 km."),
    ({"overflow": ["store", "region", "store"]}, "A step appears twice: the overflow would go round in a loop."),
    ({"overflow": ["tenant", "store"]}, "Each step must be wider than the one before"),
    ({"overflow": ["store", "moon"]}, "Unknown step “moon”"),
    ({"skill_by": "category", "skill_map": {"空调": 999999}}, "“#999999” is not a skill of this company."),
    ({"senior_for": "vip"}, "Say which skill marks senior staff."),
])
def test_bad_rules_are_refused_at_publish_and_nothing_is_published(scope_a, wf_template, city, bad, message):
    workflow = workflow_create(template=wf_template, name="维修派单")
    workflow_draft_set(workflow=workflow, graph=graph(rule(city, **bad)))
    with pytest.raises(ValidationError) as exc:
        workflow_publish(workflow=workflow)
    assert any(message in m and "Smart dispatch" in m for m in exc.value.messages), exc.value.messages
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_a_skill_of_another_tenant_is_refused_at_publish(scope_a, wf_template, city, tenant_b):
    from scrm.tenancy import tenant_scope

    with tenant_scope(tenant_b):
        theirs = Skill.objects.create(tenant=tenant_b, name="冰箱维修")
    workflow = workflow_create(template=wf_template, name="维修派单")
    workflow_draft_set(workflow=workflow, graph=graph(rule(city, skills=[theirs.pk])))
    with pytest.raises(ValidationError) as exc:
        workflow_publish(workflow=workflow)
    assert any(f"“{theirs.pk}” is not a skill of this company." in m for m in exc.value.messages)
    assert not WorkflowVersion.objects.filter(workflow=workflow).exists()


def test_skill_mapped_from_the_category(scope_a, wf_template, city):
    mapped = rule(city, skills=[], skill_by="category", skill_map={wf_template.category.name: city["senior"].pk})
    ticket = intake(scope_a, wf_template, city["xuhui"])
    assert handlers_choose(mapped, HandlerContext(ticket=ticket)).users == [city["wang"]]


def test_a_pooled_ticket_assigned_elsewhere_leaves_the_pool(scope_a, wf_template, city, manager_a):
    from workflow.dispatch_selectors import pool_entries
    from workflow.lifecycle import ticket_assign

    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    ticket = intake(scope_a, wf_template, city["xuhui"])
    assert pool_entries(user=manager_a).count() == 1
    ticket_assign(ticket=ticket, assignee=city["zhang"], actor=manager_a)  # from the ticket page
    assert pool_entries(user=manager_a).count() == 0
    entry = PoolEntry.objects.get(ticket=ticket)
    again = pool_enter(ticket=ticket, reason="escalated", detail="超时", actor=manager_a)
    entry.refresh_from_db()
    assert entry.outcome == "moved_on" and again.pk != entry.pk and again.left_at is None


def test_an_sla_level_can_put_the_ticket_in_the_pool(scope_a, wf_template, city, manager_a):
    from workflow.escalation import ESCALATION_ACTIONS, escalation_action_choices

    assert "exception_pool" in dict(escalation_action_choices())
    ticket = intake(scope_a, wf_template, city["xuhui"])
    change = ESCALATION_ACTIONS["exception_pool"].func(ticket=ticket, task=None, level={"after": 120},
                                                       actor=None)
    entry = PoolEntry.objects.get(ticket=ticket, left_at__isnull=True)
    assert entry.reason == "escalated" and change["field"] == "pool"


def test_first_actions_keep_the_persons_median_speed_and_dispatch_reads_it(scope_a, wf_template, city):
    import datetime
    import statistics

    from django.utils import timezone

    from workflow.dispatch_speed import speed_note, speed_recount
    from workflow.engine import task_act
    from workflow.models import TaskStatus, Workload

    publish(wf_template, rule(city, overflow=["store"]))
    tickets = [intake(scope_a, wf_template, city["xuhui"]) for _ in range(3)]
    now = timezone.now()
    for ticket, minutes in zip(tickets, (10, 40, 20), strict=True):
        task = Task.objects.get(ticket=ticket)
        Task.objects.filter(pk=task.pk).update(created_at=now - datetime.timedelta(minutes=minutes))
        task.refresh_from_db()
        task_act(task=task, action="submit", user=task.assignee)
    done = Task.objects.filter(status=TaskStatus.DONE)
    by_person: dict = {}
    for t in done:
        assert t.first_action_by_id == t.completed_by_id and t.first_action_at is not None
        by_person.setdefault(t.first_action_by_id, []).append(t)
    for user_id, tasks in by_person.items():
        work = Workload.objects.get(user_id=user_id)
        assert work.speed_at is not None and work.speed_minutes is not None
        assert work.speed_minutes == pytest.approx(statistics.median(
            (t.first_action_at - t.created_at).total_seconds() / 60 for t in tasks), abs=0.1)
    # The loader reads it with the load; an old median (no first action in 3 days) is unknown again.
    someone = next(iter(by_person))
    decision, _ = dispatch_evaluate(rule(city, overflow=["store"]), intake(scope_a, wf_template, city["xuhui"]))
    speeds = {s.candidate.user_id: s.candidate.speed_minutes for s in decision.ranked + decision.excluded}
    assert speeds[someone] == Workload.objects.get(user_id=someone).speed_minutes
    Workload.objects.filter(user_id=someone).update(speed_at=now - datetime.timedelta(days=4))
    decision, _ = dispatch_evaluate(rule(city, overflow=["store"]), intake(scope_a, wf_template, city["xuhui"]))
    assert {s.candidate.user_id: s.candidate.speed_minutes for s in decision.ranked}.get(someone) is None
    # The recount gives back what the engine kept.
    kept = dict(Workload.objects.exclude(user_id=someone).values_list("user_id", "speed_minutes"))
    Workload.objects.update(speed_minutes=None, speed_at=None)
    speed_recount()
    assert {u: m for u, m in Workload.objects.values_list("user_id", "speed_minutes") if u in kept} == kept
    # Someone who first acts without a Workload row gets one (open count 0).
    Workload.objects.filter(user_id=city["qian"].pk).delete()
    speed_note(scope_a.pk, city["qian"].pk)
    assert Workload.objects.get(user_id=city["qian"].pk).speed_minutes is None
