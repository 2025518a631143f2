"""Property tests of the engine (hypothesis): random valid graphs, random valid action
sequences, and after every step the invariants that keep a run consistent.

A graph is start → a random block → end, where a block is a sequence of task / approval /
countersign / automatic (set_fields) nodes, conditions (on data fields or priority, always with
a default way) whose branches are blocks meeting again after the condition, and split … join pairs
whose branches are blocks (so parallel sections nest properly). An approval may reject back to
an earlier element of its own block (a loop that stays inside one branch). Every generated graph
passes graph_validate and is published on a template; tickets are started through ticket_intake.

The walk then repeatedly picks an open task, one of its holders and one of the actions that
task_allowed_actions offers (submit / approve / reject / return / transfer / cohandle), with
valid extra arguments, and checks after EVERY step:
- no orphan task: every open task's token is active and sits on that task's node;
- no orphan token: every active token sits on a human node and has an open task there;
  waiting tokens only on joins; no active/waiting token on start, end, condition, auto, split;
- no double completion: a finished (done/cancelled) task never changes again, an act completes
  exactly the task acted on (or none, for transfer/cohandle);
- each act writes timeline events on its own ticket only;
- every ticket is open with at least one open task, or finished: run.is_finished, ticket closed,
  no open task, no active/waiting token.
Finally every ticket is driven forward (submit/approve only) and must reach its end.

Each example runs in its own tenant, inside a savepoint that is rolled back, so examples do not
see each other's rows."""

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import TenantFactory, published_template
from tests.workflow.conftest import FIELDS, edge, node, role
from tickets.models import OPEN_STATUSES, Status, Ticket, TimelineEvent
from tickets.services import ticket_intake
from workflow.engine import _Graph, return_targets, task_act, task_allowed_actions, task_holders
from workflow.graph import HUMAN_KINDS, graph_validate
from workflow.lifecycle import workload_recount
from workflow.models import Run, Task, TaskStatus, Token, TokenState
from workflow.services import workflow_create, workflow_draft_set, workflow_publish

pytestmark = pytest.mark.django_db

WALK_ACTIONS = ("submit", "approve", "reject", "return", "transfer", "cohandle")
COMPLETING = ("submit", "approve", "reject", "return")
STAFF = [("agent", Role.AGENT), ("agent2", Role.AGENT), ("engineer", Role.ENGINEER),
         ("engineer2", Role.ENGINEER), ("manager", Role.MANAGER), ("manager2", Role.MANAGER),
         ("admin", Role.ADMIN)]
FEES = ["5.00", "500.00", "88000.00"]
CONDITIONS = [
    {"field": "data.fee", "op": ">", "value": 100},
    {"field": "data.fee", "op": "<=", "value": 1000},
    {"field": "data.note", "op": "not_empty"},
    {"field": "priority", "op": "in", "value": ["high", "urgent"]},
    {"field": "priority", "op": "=", "value": "low"},
    {"any": [{"field": "priority", "op": "=", "value": "urgent"}, {"field": "data.fee", "op": ">", "value": 50000}]},
    {"all": [{"field": "data.note", "op": "empty"}, {"not": {"field": "priority", "op": "=", "value": "high"}}]},
]
_serial = itertools.count(1)

# --- graph generation -------------------------------------------------------------------


def _fields(draw):
    editable = draw(st.lists(st.sampled_from(["note", "fee"]), unique=True, max_size=2))
    required = [k for k in editable if draw(st.booleans())]
    return {"visible": ["order_no"], "editable": editable, "required": required}


@st.composite
def _element(draw, keys, depth, budget):
    kinds = ["task", "approval", "countersign", "auto"]
    if depth < 2 and budget[0] >= 3:
        kinds += ["condition", "split"]
    kind = draw(st.sampled_from(kinds))
    key = f"n{next(keys)}"
    budget[0] -= 1
    if kind == "task":
        el = {"kind": "task", "key": key, "handler": role(draw(st.sampled_from(["agent", "engineer", "manager"]))),
              "fields": _fields(draw)}
        if draw(st.booleans()):
            el["backup"] = role(draw(st.sampled_from(["agent", "engineer", "manager", "admin"])))
        if draw(st.booleans()):
            extra = draw(st.lists(st.sampled_from(["return", "cohandle"]), unique=True))
            el["actions"] = ["submit", "transfer", *extra]
        return el
    if kind == "approval":
        return {"kind": "approval", "key": key, "handler": role(draw(st.sampled_from(["manager", "admin"]))),
                "fields": _fields(draw), "reject_to": draw(st.none() | st.integers(min_value=0, max_value=20))}
    if kind == "countersign":
        handlers = draw(st.sampled_from([[role("manager")], [role("agent"), role("engineer")],
                                         [role("engineer"), role("manager"), role("admin")]]))
        mode = draw(st.sampled_from(["all", "any"]))
        el = {"kind": "countersign", "key": key, "handlers": handlers, "mode": mode, "fields": _fields(draw)}
        if mode == "any":
            el["n"] = draw(st.integers(min_value=1, max_value=2))
        return el
    if kind == "auto":
        values = draw(st.sampled_from([{"note": "自动填写"}, {"fee": draw(st.sampled_from(FEES))}, {"note": ""}]))
        return {"kind": "auto", "key": key, "values": values}
    if kind == "condition":
        n = draw(st.integers(min_value=1, max_value=2))
        branches = [(draw(st.sampled_from(CONDITIONS)), draw(_block(keys, depth + 1, budget, min_size=0)))
                    for _ in range(n)]
        return {"kind": "condition", "key": key, "branches": branches,
                "default": draw(_block(keys, depth + 1, budget, min_size=0))}
    n = draw(st.integers(min_value=2, max_value=3))
    branches = [draw(_block(keys, depth + 1, budget, min_size=0 if i == 0 else 1)) for i in range(n)]
    return {"kind": "split", "key": key, "join": f"n{next(keys)}", "branches": branches}


@st.composite
def _block(draw, keys, depth, budget, min_size=1):
    size = draw(st.integers(min_value=min_size, max_value=max(min_size, min(3, budget[0]))))
    return [draw(_element(keys, depth, budget)) for _ in range(size) if budget[0] > 0 or min_size]


def _build_block(block, exit_key, nodes, edges):
    entries = [el["key"] for el in block]
    for i, el in enumerate(block):
        nxt = entries[i + 1] if i + 1 < len(block) else exit_key
        kind, key = el["kind"], el["key"]
        if kind == "task":
            extra = {k: el[k] for k in ("backup", "actions") if k in el}
            nodes.append(node(key, "task", handler=el["handler"], fields=el["fields"], **extra))
            edges.append(edge(key, nxt))
        elif kind == "approval":
            nodes.append(node(key, "approval", handler=el["handler"], fields=el["fields"]))
            edges.append(edge(key, nxt, on="approve"))
            if el["reject_to"] is not None and i > 0:
                edges.append(edge(key, entries[el["reject_to"] % i], on="reject"))
        elif kind == "countersign":
            nodes.append(node(key, "countersign", **{k: el[k] for k in ("handlers", "mode", "n", "fields") if k in el}))
            edges.append(edge(key, nxt))
        elif kind == "auto":
            nodes.append(node(key, "auto", action="set_fields", params={"values": el["values"]}))
            edges.append(edge(key, nxt))
        elif kind == "condition":
            nodes.append(node(key, "condition"))
            for condition, branch in el["branches"]:
                edges.append(edge(key, _build_block(branch, nxt, nodes, edges), condition=condition))
            edges.append(edge(key, _build_block(el["default"], nxt, nodes, edges), default=True))
        else:
            nodes.append(node(key, "split"))
            nodes.append(node(el["join"], "join"))
            for branch in el["branches"]:
                edges.append(edge(key, _build_block(branch, el["join"], nodes, edges)))
            edges.append(edge(el["join"], nxt))
    return entries[0] if entries else exit_key


@st.composite
def graphs(draw):
    keys = itertools.count(1)
    budget = [draw(st.integers(min_value=2, max_value=9))]
    block = draw(_block(keys, 0, budget))
    nodes, edges = [node("start", "start"), node("end", "end")], []
    edges.append(edge("start", _build_block(block, "end", nodes, edges)))
    return {"nodes": nodes, "transitions": edges}


# --- the world of one example -----------------------------------------------------------


def _world(graph, ticket_specs):
    n = next(_serial)
    tenant = TenantFactory(slug=f"prop-{n}")
    with tenant_scope(tenant):
        users = {name: make_member(tenant, r, f"p{n}_{name}") for name, r in STAFF}
        template = published_template(tenant, name="属性", slug="prop", prefix="PT", fields=FIELDS)
        workflow = workflow_create(template=template, name="随机流程")
        workflow_draft_set(workflow=workflow, graph=graph)
        workflow_publish(workflow=workflow)
        tickets = []
        for priority, fee in ticket_specs:
            data = {"order_no": "A1"} | ({"fee": fee} if fee else {})
            tickets.append(ticket_intake(tenant=tenant, source="phone", template=template, data=data,
                                         priority=priority))
    return tenant, users, tickets


def _snapshot(tickets):
    tasks = {t.pk: (t.status, t.action, t.completed_at, t.node)
             for t in Task.objects.filter(ticket__in=tickets)}
    events = {t.pk: TimelineEvent.objects.filter(ticket=t).count() for t in tickets}
    return tasks, events


def _check_invariants(tickets, graph):
    # Everyone's open-task roll-up equals their open tasks, whatever the acts did.
    assert workload_recount() == {}
    kinds = {n["key"]: n["kind"] for n in graph["nodes"]}
    for ticket in tickets:
        ticket = Ticket.objects.get(pk=ticket.pk)
        run = Run.objects.get(ticket=ticket)
        tokens = {t.pk: t for t in Token.objects.filter(run=run)}
        open_tasks = list(Task.objects.filter(run=run, status=TaskStatus.OPEN))
        for task in open_tasks:
            token = tokens[task.token_id]
            assert token.state == TokenState.ACTIVE, f"orphan task {task.node}: token {token.state} at {token.node}"
            assert token.node == task.node, f"orphan task {task.node}: its token is at {token.node}"
        for token in tokens.values():
            kind = kinds[token.node]
            if token.state == TokenState.ACTIVE:
                assert kind in HUMAN_KINDS, f"active token left on {kind} node {token.node}"
                assert any(t.token_id == token.pk for t in open_tasks), f"token at {token.node} has no open task"
            if token.state == TokenState.WAITING:
                assert kind == "join", f"waiting token on {kind} node {token.node}"
        live = [t for t in tokens.values() if t.state in (TokenState.ACTIVE, TokenState.WAITING)]
        if run.is_finished:
            assert ticket.status == Status.CLOSED
            assert open_tasks == [] and live == []
        else:
            assert ticket.status in OPEN_STATUSES, ticket.status
            assert open_tasks, f"ticket open but nothing to do; live tokens {[(t.node, t.state) for t in live]}"


def _check_step(before, after, acted, action, ticket_id):
    tasks_before, events_before = before
    tasks_after, events_after = after
    for pk, (status, done_action, completed_at, _node) in tasks_before.items():
        if status != TaskStatus.OPEN:
            assert tasks_after[pk][:3] == (status, done_action, completed_at), f"finished task {pk} changed"
    newly_done = [pk for pk, state in tasks_after.items()
                  if state[0] == TaskStatus.DONE and tasks_before.get(pk, (None,))[0] != TaskStatus.DONE]
    assert newly_done == ([acted.pk] if action in COMPLETING else []), (action, newly_done)
    if action in COMPLETING:
        assert tasks_after[acted.pk][1] == action
    for pk, status in tasks_after.items():
        if pk not in tasks_before:
            assert status[0] == TaskStatus.OPEN, "a new task was born finished"
    for pk, count in events_after.items():
        if pk == ticket_id:
            assert count > events_before[pk], "an act wrote no timeline event"
        else:
            assert count == events_before[pk], "an act on one ticket wrote on another"


def _args(draw, task, action, user, graph, users):
    spec = graph.nodes[task.node].get("fields") or {}
    kwargs = {}
    if action in ("submit", "approve"):
        values = {"note": draw(st.sampled_from(["已处理", "ok"])), "fee": draw(st.sampled_from(FEES))}
        keys = set(spec.get("required", [])) | {k for k in spec.get("editable", []) if draw(st.booleans())}
        kwargs["data"] = {k: values[k] for k in sorted(keys)}
    elif action == "return":
        targets = return_targets(task, graph)
        kwargs["target"] = draw(st.sampled_from(targets))
    if action in ("reject", "return"):
        kwargs["comment"] = "原因"  # 驳回 needs one
    elif action == "transfer":
        kwargs["transfer_to"] = users[draw(st.sampled_from(sorted(users)))]
    elif action == "cohandle":
        kwargs["co_handler"] = users[draw(st.sampled_from(sorted(users)))]
    return kwargs


def _step(draw, tickets, users, *, forward_only=False):
    """One act on a random open task by one of its holders; False when nothing is left."""
    tasks = list(Task.objects.filter(ticket__in=tickets, status=TaskStatus.OPEN)
                 .select_related("run__version").prefetch_related("co_handlers").order_by("id"))
    if not tasks:
        return False
    task = draw(st.sampled_from(tasks)) if not forward_only else tasks[0]
    holders = sorted(task_holders(task))
    assert holders, f"task {task.node} has nobody to act"
    user = get_user_model().objects.get(pk=draw(st.sampled_from(holders)) if not forward_only else holders[0])
    graph = _Graph(task.run.version.graph)
    allowed = task_allowed_actions(task, user, graph)
    assert set(allowed) <= set(graph.nodes[task.node]["actions"]) | {"submit", "approve", "reject"}
    if forward_only:
        action = "approve" if "approve" in allowed else "submit"
    else:
        action = draw(st.sampled_from([a for a in allowed if a in WALK_ACTIONS]))
    kwargs = _args(draw, task, action, user, graph, users)
    before = _snapshot(tickets)
    event(f"act: {graph.nodes[task.node]['kind']} {action}")
    task_act(task=task, action=action, user=user, **kwargs)
    _check_step(before, _snapshot(tickets), task, action, task.ticket_id)
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph=graphs(), specs=st.lists(st.tuples(st.sampled_from(["low", "normal", "high", "urgent"]),
                                                 st.sampled_from([None, *FEES])), min_size=1, max_size=2),
       data=st.data())
def test_random_walks_keep_runs_consistent(db, graph, specs, data):
    graph_validate(graph, field_keys={f["key"] for f in FIELDS}, action_names={"set_fields"})
    with transaction.atomic():
        tenant, users, tickets = _world(graph, specs)
        with tenant_scope(tenant):
            g = Run.objects.get(ticket=tickets[0]).version.graph
            _check_invariants(tickets, g)
            for _ in range(data.draw(st.integers(min_value=3, max_value=30), label="steps")):
                if not _step(data.draw, tickets, users):
                    break
                _check_invariants(tickets, g)
            for _ in range(200):  # forward only: every ticket must reach its end
                if not _step(data.draw, tickets, users, forward_only=True):
                    break
                _check_invariants(tickets, g)
            assert all(Run.objects.get(ticket=t).is_finished for t in tickets)
            if Token.objects.filter(run__ticket__in=tickets, split_token__split_token__isnull=False).exists():
                event("ran a nested parallel section")
            if Token.objects.filter(run__ticket__in=tickets, split_token__isnull=False).exists():
                event("ran a parallel section")
        transaction.set_rollback(True)


def test_generated_graphs_are_valid_and_varied():
    """The generator itself: every graph validates, and all node kinds turn up."""
    seen = set()

    @settings(max_examples=150, deadline=None, database=None)
    @given(graphs())
    def check(graph):
        graph_validate(graph, field_keys={f["key"] for f in FIELDS}, action_names={"set_fields"})
        seen.update(n["kind"] for n in graph["nodes"])
        seen.update("reject" for t in graph["transitions"] if t.get("on") == "reject")

    check()
    assert seen >= {"task", "approval", "countersign", "auto", "condition", "split", "join", "reject"}


# --- regressions the walk found, pinned as plain examples --------------------------------


def _publish(template, graph):
    workflow = workflow_create(template=template, name="回归")
    workflow_draft_set(workflow=workflow, graph=graph)
    workflow_publish(workflow=workflow)


def _open(ticket):
    return list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).order_by("id"))


def _intake(tenant, template, **extra):
    return ticket_intake(tenant=tenant, source="phone", template=template, data={"order_no": "A1"}, **extra)


def test_automatic_set_fields_node_runs(scope_a, wf_template, people):
    """An automatic node reloaded the ticket with refresh_from_db(), which django-fsm refuses
    for the protected status field: every workflow with an automatic node failed at intake."""
    _publish(wf_template, {
        "nodes": [node("start", "start"),
                  node("auto", "auto", action="set_fields", params={"values": {"fee": "99.00"}}),
                  node("fix", "task", handler=role("engineer")), node("end", "end")],
        "transitions": [edge("start", "auto"), edge("auto", "fix"), edge("fix", "end")]})
    ticket = _intake(scope_a, wf_template)
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.data["fee"] == "99.00"
    assert [t.node for t in _open(ticket)] == ["fix"]
    assert ticket.status == Status.IN_PROGRESS


def test_nested_parallel_sections_join(scope_a, wf_template, people):
    """The token that entered an inner split stayed done at the split, and the outer join
    waited for it forever."""
    _publish(wf_template, {
        "nodes": [node("start", "start"), node("split", "split"), node("a", "task", handler=role("agent")),
                  node("inner", "split"), node("b", "task", handler=role("engineer")),
                  node("c", "task", handler=role("finance")), node("inner_join", "join"), node("join", "join"),
                  node("pm", "task", handler=role("manager")), node("end", "end")],
        "transitions": [edge("start", "split"), edge("split", "a"), edge("split", "inner"), edge("inner", "b"),
                        edge("inner", "c"), edge("b", "inner_join"), edge("c", "inner_join"),
                        edge("inner_join", "join"), edge("a", "join"), edge("join", "pm"), edge("pm", "end")]})
    ticket = _intake(scope_a, wf_template)
    for _ in range(3):
        first = _open(ticket)[0]
        task_act(task=first, action="submit", user=first.assignee)
    [pm] = _open(ticket)
    assert pm.node == "pm"
    task_act(task=pm, action="submit", user=pm.assignee)
    assert Ticket.objects.get(pk=ticket.pk).status == Status.CLOSED


def test_return_inside_a_branch_stays_in_the_branch(scope_a, wf_template, people):
    """A return (or a reject without a reject way) inside a parallel branch could go back to a
    node before the split; the branch then re-ran the split while the other branches waited at
    the join for ever."""
    _publish(wf_template, {
        "nodes": [node("start", "start"), node("accept", "task", handler=role("agent")), node("split", "split"),
                  node("design", "task", handler=role("engineer")), node("check", "approval", handler=role("admin")),
                  node("copy", "task", handler=role("finance")), node("join", "join"),
                  node("pm", "task", handler=role("manager")), node("end", "end")],
        "transitions": [edge("start", "accept"), edge("accept", "split"), edge("split", "design"),
                        edge("design", "check"), edge("check", "join", on="approve"), edge("split", "copy"),
                        edge("copy", "join"), edge("join", "pm"), edge("pm", "end")]})
    ticket = _intake(scope_a, wf_template)
    task_act(task=_open(ticket)[0], action="submit", user=people["agent"])
    copy = next(t for t in _open(ticket) if t.node == "copy")
    assert task_allowed_actions(copy, people["finance"]) == ["submit", "transfer", "cohandle"]
    with pytest.raises(ValidationError):
        task_act(task=copy, action="return", user=people["finance"], target="accept")
    design = next(t for t in _open(ticket) if t.node == "design")
    task_act(task=design, action="submit", user=people["engineer"])
    check = next(t for t in _open(ticket) if t.node == "check")
    assert task_allowed_actions(check, people["gm"]) == ["approve", "reject", "transfer"]
    task_act(task=check, action="reject", user=people["gm"], comment="重做")  # back to design, in its own branch
    assert sorted(t.node for t in _open(ticket)) == ["copy", "design"]
    for t in _open(ticket):
        task_act(task=t, action="submit", user=t.assignee)
    check = _open(ticket)[0]
    task_act(task=check, action="approve", user=people["gm"])
    [pm] = _open(ticket)
    assert pm.node == "pm"
    # After the join the work before the split is one's own again: return there, run it again.
    assert task_allowed_actions(pm, people["manager"]) == ["submit", "return", "transfer", "cohandle"]
    task_act(task=pm, action="return", user=people["manager"], target="accept")
    [accept] = _open(ticket)
    assert accept.node == "accept" and accept.is_returned
    task_act(task=accept, action="submit", user=people["agent"])
    assert sorted(t.node for t in _open(ticket)) == ["copy", "design"]


def test_countersign_any_n_counts_only_the_current_round(scope_a, wf_template, people):
    """Rounds were told apart by a one-second window: a countersign entered again within a
    second counted the previous round's signatures and completed after one signature."""
    third = make_member(scope_a, Role.MANAGER, "wf_manager3")
    _publish(wf_template, {
        "nodes": [node("start", "start"), node("sign", "countersign", handlers=[role("manager")], mode="any", n=2),
                  node("gm", "approval", handler=role("admin")), node("end", "end")],
        "transitions": [edge("start", "sign"), edge("sign", "gm"), edge("gm", "end", on="approve"),
                        edge("gm", "sign", on="reject")]})
    ticket = _intake(scope_a, wf_template)
    for _ in range(2):
        first = _open(ticket)[0]
        task_act(task=first, action="submit", user=first.assignee)
    [gm] = _open(ticket)
    task_act(task=gm, action="reject", user=people["gm"], comment="再签一次")
    round_two = _open(ticket)
    assert {t.assignee for t in round_two} == {people["manager"], people["manager2"], third}
    task_act(task=round_two[0], action="submit", user=round_two[0].assignee)
    assert [t.node for t in _open(ticket)] == ["sign", "sign"]
    task_act(task=round_two[1], action="submit", user=round_two[1].assignee)
    assert [t.node for t in _open(ticket)] == ["gm"]
