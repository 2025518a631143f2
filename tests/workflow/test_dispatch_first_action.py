"""Smart dispatch's recent speed from the first action (Task.first_action_at, recorded once when a
holder first acts, the SLA's first-response moments), and the simulation's generated day: the
same seed gives the same day, tickets that would find nobody are shown, loads are taken at each
ticket's time, and bad input on the form is refused with nothing written."""

import datetime
import statistics

import pytest
from django.utils import timezone, translation

from scrm.models import Customer
from tests.factories import StoreFactory
from tests.workflow.test_dispatch import city, graph, intake, publish, rule  # noqa: F401 (fixture)
from tests.workflow.test_dispatch_views import en  # noqa: F401 (fixture)
from tests.workflow.test_views import url
from tickets.models import Ticket
from workflow.dispatch_selectors import GENERATED_MAX_TICKETS, LoadClock, day_generate, dispatch_simulate
from workflow.dispatch_speed import speed_recount
from workflow.engine import task_act
from workflow.lifecycle import task_first_action
from workflow.models import PoolEntry, Task, TaskStatus, Workflow, Workload
from workflow.services import workflow_draft_set

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_the_first_action_is_recorded_once_by_whoever_acted_first(scope_a, wf_template, city):  # noqa: F811
    publish(wf_template, rule(city, overflow=["store"]))
    ticket = intake(scope_a, wf_template, city["xuhui"])
    task = Task.objects.get(ticket=ticket)
    first_holder = task.assignee
    assert task.first_action_at is None and task.first_action_by is None
    other = city["zhang"] if first_holder != city["zhang"] else city["li"]
    task_act(task=task, action="transfer", user=first_holder, transfer_to=other)
    task.refresh_from_db()
    acted = task.first_action_at
    assert acted is not None and task.first_action_by == first_holder and task.assignee == other
    task_act(task=task, action="submit", user=other)
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE and task.completed_by == other
    assert task.first_action_at == acted and task.first_action_by == first_holder  # kept, not overwritten
    # Called again (another hook path), nothing changes.
    assert task_first_action(task=task, actor=other) is False
    assert task_first_action(task=None, actor=other) is False
    assert Task.objects.filter(first_action_by=other).count() == 0
    assert Workload.objects.get(user_id=first_holder.pk).speed_minutes is not None


def test_speed_is_the_median_time_to_first_action_not_to_completion(scope_a, wf_template, city):  # noqa: F811
    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    # 王 at 浦东店 is the only senior: every ticket of 浦东店 is his.
    wang = city["wang"]
    now = timezone.now()
    tickets = [intake(scope_a, wf_template, city["pudong"]) for _ in range(3)]
    for ticket, minutes in zip(tickets, (10, 40, 20), strict=True):
        task = Task.objects.get(ticket=ticket)
        assert task.assignee == wang
        Task.objects.filter(pk=task.pk).update(created_at=now - datetime.timedelta(minutes=minutes))
        task.refresh_from_db()
        task_act(task=task, action="submit", user=wang)
    # Completion hours later must not move it: the speed is creation → first action.
    Task.objects.filter(first_action_by=wang).update(completed_at=now + datetime.timedelta(hours=5))
    work = Workload.objects.get(user_id=wang.pk)
    assert work.speed_minutes == pytest.approx(20.0, abs=0.2)
    speed_recount()
    assert Workload.objects.get(user_id=wang.pk).speed_minutes == pytest.approx(20.0, abs=0.2)
    samples = [(t.first_action_at - t.created_at).total_seconds() / 60
               for t in Task.objects.filter(first_action_by=wang)]
    assert Workload.objects.get(user_id=wang.pk).speed_minutes == pytest.approx(statistics.median(samples), abs=0.1)


def test_a_generated_day_is_deterministic_and_spread_over_working_hours(scope_a, wf_template, city):  # noqa: F811
    workflow = publish(wf_template, rule(city)).workflow
    Customer.objects.create(tenant=scope_a, name="贵宾", tier="vip")
    day = datetime.date(2026, 12, 7)
    one = day_generate(workflow=workflow, count=30, seed=7, day=day)
    again = day_generate(workflow=workflow, count=30, seed=7, day=day)
    other = day_generate(workflow=workflow, count=30, seed=8, day=day)
    assert [(g.at, g.facts, g.label) for g in one] == [(g.at, g.facts, g.label) for g in again]
    assert [(g.at, g.facts["store_id"]) for g in one] != [(g.at, g.facts["store_id"]) for g in other]
    assert len(one) == 30 and [g.at for g in one] == sorted(g.at for g in one)
    hours = {timezone.localtime(g.at).hour for g in one}
    assert min(hours) >= 9 and max(hours) < 18
    assert {g.facts["store_id"] for g in one} <= {city[s].pk for s in ("xuhui", "pudong", "suzhou")}
    only = day_generate(workflow=workflow, count=10, seed=7, day=day, stores=[city["suzhou"]])
    assert {g.facts["store_id"] for g in only} == {city["suzhou"].pk}


def test_a_generated_day_of_a_stricter_draft_shows_who_finds_nobody_and_writes_nothing(
        scope_a, wf_template, city):  # noqa: F811
    workflow = publish(wf_template, rule(city, overflow=["store"])).workflow
    strict = graph(rule(city, overflow=["store"], skills=[city["senior"].pk]))
    tasks, tickets = Task.objects.count(), Ticket.objects.count()
    day = day_generate(workflow=workflow, count=20, seed=3, stores=[city["xuhui"], city["pudong"]])
    sim = dispatch_simulate(workflow=workflow, graph=strict, generated=day)
    assert sim.generated and len(sim.rows) == 20
    by_store = {}
    for g, row in zip(day, sim.rows, strict=True):
        by_store.setdefault(g.facts["store_id"], set()).add(row.would)
    assert by_store[city["xuhui"].pk] == {""}  # nobody at 徐汇店 is senior
    assert by_store.get(city["pudong"].pk, {"wang"}) == {"wang"}
    assert sim.nobody and all(r.would == "" and r.ticket is None for r in sim.nobody)
    assert sim.rows == dispatch_simulate(workflow=workflow, graph=strict, generated=day).rows  # same again
    assert (Task.objects.count(), Ticket.objects.count(), PoolEntry.objects.count()) == (tasks, tickets, 0)


def test_the_load_clock_gives_each_persons_load_at_the_tickets_time(scope_a, wf_template, city):  # noqa: F811
    publish(wf_template, rule(city, overflow=["store"], skills=[city["senior"].pk]))
    wang = city["wang"]
    early, late = intake(scope_a, wf_template, city["pudong"]), intake(scope_a, wf_template, city["pudong"])
    now = timezone.now()
    early_task, late_task = Task.objects.get(ticket=early), Task.objects.get(ticket=late)
    Task.objects.filter(pk=early_task.pk).update(created_at=now - datetime.timedelta(hours=5))
    Task.objects.filter(pk=late_task.pk).update(created_at=now - datetime.timedelta(hours=1))
    task_act(task=Task.objects.get(pk=early_task.pk), action="submit", user=wang)
    Task.objects.filter(pk=early_task.pk).update(completed_at=now - datetime.timedelta(hours=2))
    assert Workload.objects.get(user_id=wang.pk).open_tasks == 1  # now: the late one only
    clock = LoadClock(now - datetime.timedelta(hours=6))
    assert clock.at(now - datetime.timedelta(hours=6)).get(wang.pk, 0) == -1  # 0 open then
    assert clock.at(now - datetime.timedelta(hours=4)).get(wang.pk, 0) == 0  # 1 open (the early one)
    assert clock.at(now - datetime.timedelta(minutes=90)).get(wang.pk, 0) == -1  # early done, late not yet
    assert clock.at(now).get(wang.pk, 0) == 0


def test_the_simulation_page_runs_a_generated_day(tenant_a, scope_a, wf_template, city, manager_a, en):  # noqa: F811
    workflow = publish(wf_template, rule(city, overflow=["store"])).workflow
    workflow_draft_set(workflow=workflow, graph=graph(rule(city, overflow=["store"], skills=[city["senior"].pk])))
    response = en(manager_a).get(url("workflow-dispatch-simulate", workflow=workflow.pk, version="draft",
                                     window="generated", count=12, seed=5, stores=city["xuhui"].pk))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="sim-generated"' in page and "12 would find nobody" in page
    assert page.count('data-testid="sim-generated-row"') == 12 and "徐汇店" in page
    assert PoolEntry.objects.count() == 0 and Task.objects.count() == 0


@pytest.mark.parametrize(("query", "message"), [
    ({"count": ""}, "Say how many tickets to generate"),
    ({"count": "abc"}, "Enter a whole number."),
    ({"count": 0}, "greater than or equal to 1"),
    ({"count": GENERATED_MAX_TICKETS + 1}, f"less than or equal to {GENERATED_MAX_TICKETS}"),
    ({"seed": -1}, "greater than or equal to 0"),
    ({"seed": "x"}, "Enter a whole number."),
    ({"window": "moon"}, "Choose recent tickets or a generated day."),
    ({"stores": "abc"}, "Choose stores of this company."),
    ({"stores": 10 ** 12}, "Choose stores of this company."),
])
def test_generated_day_bad_input_is_refused_and_writes_nothing(tenant_a, scope_a, wf_template,
                                                                city, manager_a, en,  # noqa: F811
                                                                query, message):
    workflow = publish(wf_template, rule(city)).workflow
    params = {"workflow": workflow.pk, "version": "draft", "window": "generated", "count": 5, "seed": 1, **query}
    response = en(manager_a).get(url("workflow-dispatch-simulate", **params))
    assert response.status_code == 400 and message in response.content.decode()
    assert Task.objects.count() == 0 and PoolEntry.objects.count() == 0


def test_generated_day_refuses_another_tenants_store(tenant_a, tenant_b, scope_a, wf_template,
                                                     city, manager_a, en):  # noqa: F811
    from scrm.tenancy import tenant_scope

    workflow = publish(wf_template, rule(city)).workflow
    with tenant_scope(tenant_b):
        foreign = StoreFactory(tenant=tenant_b, name="别家店", code="other")
    response = en(manager_a).get(url("workflow-dispatch-simulate", workflow=workflow.pk, version="draft",
                                     window="generated", count=5, seed=1, stores=foreign.pk))
    assert response.status_code == 400 and "Choose stores of this company." in response.content.decode()
    assert "别家店" not in response.content.decode()
    assert Workflow.objects.count() == 1 and Task.objects.count() == 0
