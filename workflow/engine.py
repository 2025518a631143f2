"""The engine that moves a ticket through its workflow: `workflow_start(ticket)` and
`task_act(task, action, …)`. Each call is one transaction that locks the ticket row first, so
two people acting at once are serialised and never double-advance it; every node entered and
every action writes one timeline event; the ticket's lifecycle (django-fsm) follows the graph."""

import datetime
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import event_emit
from scrm.config_cache import tenant_config
from scrm.models import Membership
from tickets import fields as schema
from tickets.models import EventKind, Ticket
from tickets.services import (
    attachments_store,
    ticket_split,
    timeline_event_add,
    timeline_event_new,
    timeline_events_save,
)

from . import lifecycle
from .actions import ACTIONS
from .conditions import condition_eval, ticket_context
from .graph import HUMAN_KINDS, _index, node_label
from .hooks import hooks_call
from .lifecycle import actor_name as _actor_name
from .models import Run, Task, TaskStatus, Token, TokenState, Workflow
from .policy import SIGNOFF_KINDS, TaskPolicy, task_policy
from .routing import HandlerContext, handlers_choose

MAX_STEPS = 200  # automatic nodes in a loop must not spin forever
_REFRESH_FIELDS = [f.attname for f in Ticket._meta.concrete_fields if f.name not in ("id", "status")]
# What nearly every act reads of its ticket: the template version's fields (_write_fields) and
# the tenant (notifications). Both are NOT NULL, so inner joins. Joining the nullable ones the
# condition context reads as well (customer, opportunity, store …) was measured slower on
# PostgreSQL: planning a ten-table outer join costs ~3 ms, more than the lazy queries it saves.
_TICKET_RELATED = ("tenant", "template_version")


class _Graph:
    def __init__(self, graph):
        self.raw = graph
        self.nodes, self.out, self.inc = _index(graph)

    def start(self):
        return next(k for k, n in self.nodes.items() if n["kind"] == "start")


# --- start ------------------------------------------------------------------------------

def workflow_start(*, ticket, actor=None, new=False):
    """Start the ticket's template workflow (its published version), if it has one. `new`: the
    ticket was created in the caller's transaction (intake, split), so no one else can hold or
    have started it: the row lock and the "already running?" check are skipped."""
    # Every intake asks: the answer is cached per tenant until a workflow changes, and a
    # template without one costs no query (not even a savepoint).
    workflow = tenant_config(ticket.tenant_id).get(f"workflow_of_template:{ticket.template_id}", lambda: (
        Workflow.objects.select_related("current_version").filter(
            template_id=ticket.template_id, current_version__isnull=False).first()))
    if workflow is None:
        return None
    return _workflow_run_start(ticket=ticket, workflow=workflow, actor=actor, new=new)


def workflow_start_on_created(*, ticket, actor):
    """The `tickets.extensions.on_ticket_created` hook: every new ticket starts its workflow."""
    workflow_start(ticket=ticket, actor=actor, new=True)


def _workflow_run_start(*, ticket, workflow, actor, new=False):
    # A new ticket is inside intake's transaction, which rolls back whole: no savepoint of its own.
    with transaction.atomic(savepoint=not new):
        if not new:
            # Lock the row but keep the caller's instance.
            Ticket.objects.select_for_update().filter(pk=ticket.pk).values("pk").get()
            if Run.objects.filter(ticket=ticket).exists():
                raise ValidationError(_("This ticket already runs a workflow."))
        version = workflow.current_version
        run = Run.objects.create(tenant_id=ticket.tenant_id, ticket=ticket, version=version)
        graph = _Graph(version.graph)
        # The status moves when the first person gets the ticket (_enter_human), in the same
        # UPDATE that names them; the token starts on the start node's successor. The start's
        # event is written with the first node's (one INSERT), or before any other step's.
        held = [timeline_event_new(
            ticket=ticket, kind=EventKind.WORKFLOW, actor=actor, is_public=True,
            code="workflow.started", params={"name": workflow.name, "n": version.number},
        )]
        start = graph.start()
        first = graph.out[start][0]["to"] if graph.out[start] else start
        token = Token.objects.create(tenant_id=ticket.tenant_id, run=run, node=first)
        _advance(run=run, ticket=ticket, graph=graph, tokens=[token], actor=actor, previous=actor, held=held)
        return run


# --- moving tokens ----------------------------------------------------------------------

def _follow(graph, node_key, ticket, *, on=None):
    """The transition to take out of a node: on approve/reject the matching one; otherwise the
    first whose condition holds, else the default."""
    transitions = graph.out[node_key]
    if on is not None:
        matching = [t for t in transitions if t.get("on", "approve") == on]
        if on == "reject":
            matching = [t for t in transitions if t.get("on") == "reject"]
        transitions = matching
    if not transitions:
        return None
    conditional = [t for t in transitions if t.get("condition") and not t.get("default")]
    if conditional:
        context = ticket_context(ticket)
        for t in conditional:
            if condition_eval(t["condition"], context):
                return t
    defaults = [t for t in transitions if t.get("default") or not t.get("condition")]
    return defaults[0] if defaults else None


def _advance(*, run, ticket, graph, tokens, actor, previous, held=None):
    """Walk the tokens on to the next human nodes or the end. `held`: timeline events not yet
    written (the run's start), saved with the first human node's event, else before the first
    other step writes anything."""
    held = held if held is not None else []
    steps = 0
    queue = list(tokens)
    while queue:
        steps += 1
        if steps > MAX_STEPS:
            raise ValidationError(_("The workflow loops without reaching a person or an end."))
        token = queue.pop(0)
        node = graph.nodes[token.node]
        kind = node["kind"]
        if kind in HUMAN_KINDS:
            _enter_human(run=run, ticket=ticket, token=token, node=node, actor=actor, previous=previous, held=held)
            continue
        if held:
            timeline_events_save(held)
            held.clear()
        if kind == "start":
            _move(token, graph.out[token.node][0]["to"], queue)
        elif kind == "condition":
            t = _follow(graph, token.node, ticket)
            timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None,
                               code="workflow.branch",
                               params={"node": node_label(node), "to": node_label(graph.nodes[t["to"]])})
            _move(token, t["to"], queue)
        elif kind == "split":
            token.state = TokenState.DONE
            token.save(update_fields=["state"])
            for t in graph.out[token.node]:
                queue.append(Token.objects.create(tenant_id=ticket.tenant_id, run=run, node=t["to"],
                                                  split_token=token))
            timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None,
                               code="workflow.parallel", params={
                                   "names": "、".join(node_label(graph.nodes[t["to"]]) for t in graph.out[token.node])})
        elif kind == "join":
            merged = _join(run=run, token=token, graph=graph)
            if merged is not None:
                timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None,
                                   code="workflow.joined", params={"node": node_label(node)})
                _move(merged, graph.out[merged.node][0]["to"], queue)
        elif kind == "auto":
            action = ACTIONS.get(node.get("action"))
            if action is None:
                raise ValidationError(_("Unknown automatic action “%(a)s”.") % {"a": node.get("action")})
            line = action(ticket=ticket, node=node, params=node.get("params") or {}, actor=actor)
            # The action wrote through its own service: reload what it may have changed. Not the
            # status: django-fsm refuses a direct write of a protected field (and only the
            # engine's lifecycle transitions move it).
            ticket.refresh_from_db(fields=_REFRESH_FIELDS)
            timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=None,
                               code="workflow.auto", params={"node": node_label(node), "line": str(line)})
            _move(token, _follow(graph, token.node, ticket)["to"], queue)
        elif kind == "end":
            token.state = TokenState.DONE
            token.save(update_fields=["state"])
            if not run.tokens.filter(state__in=[TokenState.ACTIVE, TokenState.WAITING]).exists():
                _finish(run=run, ticket=ticket, actor=actor)
    if held:
        timeline_events_save(held)
        held.clear()


def _move(token, to, queue):
    token.node = to
    token.save(update_fields=["node"])
    queue.append(token)


def _join(*, run, token, graph):
    """Park the token at the join; when every branch of its split has arrived, return the token
    that entered the split (revived at the join) to carry on, else None.

    The token that enters a split is parked there (state done) while its branches run, and comes
    back to life here: so it is still "pending" for the join of an enclosing split (nested
    parallel sections), and the work before the split and after the join stays on one token (a
    return from after the join may go back before the split). Branch tokens of an earlier pass
    through the same split (a loop) are done at this join and no longer count."""
    token.state = TokenState.WAITING
    token.save(update_fields=["state"])
    split = token.split_token
    siblings = list(run.tokens.filter(split_token=split).exclude(state=TokenState.CANCELLED))
    arrived = [s for s in siblings if s.state == TokenState.WAITING and s.node == token.node]
    pending = [s for s in siblings if s not in arrived and (
        s.state in (TokenState.ACTIVE, TokenState.WAITING)
        or (s.state == TokenState.DONE and graph.nodes.get(s.node, {}).get("kind") == "split"))]
    if pending:
        return None
    Token.objects.filter(pk__in=[s.pk for s in arrived]).update(state=TokenState.DONE)
    if split is None:
        return Token.objects.create(tenant_id=run.tenant_id, run=run, node=token.node)
    split.state = TokenState.ACTIVE
    split.node = token.node
    split.save(update_fields=["state", "node"])
    return split


def _enter_human(*, run, ticket, token, node, actor, previous, returned=False, handlers=None, reason="", held=None):
    """Create the node's task(s): the handlers the node's rule picks (stored with the reasons
    the rule gave, for 为什么派给他), or `handlers` as given (a return goes back to the person).
    `held`: events to write before this node's, in the same INSERT."""
    ctx = HandlerContext(ticket=ticket, previous=previous)
    reasons = []
    if handlers is None:
        if node["kind"] == "countersign":
            handlers = []
            for rule in node.get("handlers") or [node.get("handler")]:
                choice = handlers_choose(rule, ctx, many=len(node.get("handlers") or []) <= 1)
                reasons += choice.reasons
                for user in choice.users:
                    if user not in handlers:
                        handlers.append(user)
        else:
            choice = handlers_choose(node.get("handler"), ctx)
            handlers, reasons = choice.users, choice.reasons
    backup = (handlers_choose(node.get("backup"), ctx).users or [None])[0] if node.get("backup") else None
    limit = node.get("time_limit")
    due = timezone.now() + datetime.timedelta(minutes=limit) if limit else None
    label = node_label(node)
    created = [lifecycle.task_create(run=run, ticket=ticket, token=token, node=node, label=label, assignee=user,
                                     backup=backup, due_at=due, returned=returned, reasons=reasons)
               for user in handlers or [None]]
    changes: list[dict] = []
    dirty: list[str] = []
    change = lifecycle.status_move(ticket, "wait_for_customer" if node.get("status") == "waiting" else "start",
                                   dirty=dirty)
    if change:
        changes.append(change)
    first = created[0].assignee
    if first is not None:
        change = lifecycle.assignee_set(ticket, first, dirty=dirty)
        if change:
            changes.append(change)
    lifecycle.ticket_save(ticket, dirty)  # status and assignee in one UPDATE
    names = [_actor_name(t.assignee) if t.assignee else None for t in created]
    # The customer follows the steps meant for them: work nodes, not approvals and countersigns
    # (a node's "public" setting overrides), and never a return.
    public = not returned and node.get("public", node.get("kind") == "task") is True
    entered = timeline_event_new(ticket=ticket, kind=EventKind.WORKFLOW, actor=None, changes=changes,
                                 is_public=public, code="workflow.returned_to" if returned else "workflow.entered",
                                 params={"node": label, "names": names})
    timeline_events_save([*(held or ()), entered])
    if held:
        held.clear()
    users = [t.assignee for t in created if t.assignee is not None]
    if users:
        event_emit(tenant=ticket.tenant, event="ticket_returned" if returned else "ticket_assigned", ticket=ticket,
                   actor=actor, users=users, occurrence=f"task{created[0].pk}",
                   context={"node_name": label, **({"comment": reason} if returned and reason else {})})
    hooks_call("node_entered", ticket=ticket, run=run, node=node, tasks=created, actor=actor, returned=returned)
    return created


def _finish(*, run, ticket, actor, run_done=False):
    if not run_done:
        lifecycle.run_finish(run)
    changes = [c for c in (lifecycle.status_move(ticket, "resolve"),) if c]
    close = lifecycle.status_move(ticket, "close")
    if close:
        if changes:
            changes[0]["new"] = close["new"]
        else:
            changes.append(close)
    timeline_event_add(ticket=ticket, kind=EventKind.WORKFLOW, actor=actor, is_public=True,
                       code="workflow.finished", changes=changes)
    event_emit(tenant=ticket.tenant, event="ticket_resolved", ticket=ticket, actor=actor)
    lifecycle.ticket_closed(ticket=ticket, run=run, actor=actor)


# --- acting -----------------------------------------------------------------------------

def task_holders(task):
    ids = {task.assignee_id, task.backup_id} | {u.pk for u in task.co_handlers.all()}
    ids.discard(None)
    return ids


def return_targets(task, graph):
    """Earlier human nodes that this task's token completed, most recent first. Only its own
    token's: inside a parallel branch that is the branch's own nodes (returning into another
    branch, or before the split while the other branches run, would strand them); after a join
    it is the nodes before the split and after the join."""
    done = (Task.objects.filter(run_id=task.run_id, token_id=task.token_id, status=TaskStatus.DONE)
            .exclude(node=task.node)
            .order_by("-completed_at", "-id").values_list("node", flat=True))
    seen = []
    for key in done:
        if key not in seen and key in graph.nodes:
            seen.append(key)
    return seen


def task_policy_for(task, user, graph=None, *, holders=None, with_targets=True) -> TaskPolicy:
    """workflow.policy.task_policy for this task and user, with what it needs read from the
    database: the holders and (when the node offers return or reject, and `with_targets`) the
    nodes it could return to."""
    graph = graph or _Graph(task.run.version.graph)
    holders = task_holders(task) if holders is None else holders
    node = graph.nodes[task.node]
    targets = None
    if with_targets and task.status == TaskStatus.OPEN and user.pk in holders:
        targets = return_targets(task, graph) if {"return", "reject"} & set(node.get("actions", [])) else []
    return task_policy(node=node, is_open=task.status == TaskStatus.OPEN, user_id=user.pk, holders=holders,
                       out_transitions=graph.out[task.node], return_targets=targets)


def task_allowed_actions(task, user, graph=None):
    """The actions this user may take on this task now (for the buttons)."""
    return list(task_policy_for(task, user, graph).actions)


class _Act:
    """One act in progress: what every per-action handler needs."""

    def __init__(self, *, ticket, task, graph, user, policy, action, comment, changes):
        self.ticket, self.task, self.graph, self.user, self.policy = ticket, task, graph, user, policy
        self.run, self.node = task.run, graph.nodes[task.node]
        self.action, self.comment, self.changes = action, comment, changes

    def log(self, *, is_public=True, code="task.acted", **params):
        timeline_event_add(ticket=self.ticket, kind=EventKind.WORKFLOW, actor=self.user, code=code,
                           params={"node": node_label(self.node), "who": _actor_name(self.user),
                                   "action": self.action, **params},
                           message=self.comment, changes=self.changes, is_public=is_public)


@transaction.atomic
def task_act(*, task, action, user, data=None, comment="", target=None, transfer_to=None, co_handler=None,
             parts=None, files=None):
    """Act on a task: submit / approve / reject / return (to `target`, an earlier node) /
    transfer (to `transfer_to`) / cohandle (add `co_handler`) / split (`parts`) / close.
    At an approval or countersign node submit/return mean approve/reject (workflow.policy), and
    reject needs a reason in `comment`."""
    # of=("self",) on both: lock only the ticket and the task rows. A plain FOR UPDATE also
    # locks every joined row — the workflow version and template version that all tickets on
    # them share — so acts on different tickets would queue behind each other.
    ticket = (Ticket.objects.select_for_update(of=("self",))
              .select_related(*_TICKET_RELATED).get(pk=task.ticket_id))
    task = (Task.objects.select_for_update(of=("self",)).select_related("run__version", "token")
            .get(pk=task.pk))
    graph = _Graph(task.run.version.graph)
    policy = task_policy_for(task, user, graph, with_targets=action in ("return", "reject"))
    action = policy.canonical(action)
    if not policy.allows(action):
        if "finished" in policy.reasons:
            raise ValidationError({"action": _("This task is already finished.")})
        if "not_holder" in policy.reasons:
            raise ValidationError({"action": _("You do not hold this task.")})
        raise ValidationError({"action": _("“%(action)s” is not allowed at “%(node)s”.") % {
            "action": action, "node": node_label(graph.nodes[task.node])}})
    if policy.needs_reason(action) and not (comment or "").strip():
        # Checked before anything is written: a 驳回 without a reason changes nothing.
        raise ValidationError({"comment": _("Give the reason for rejecting: it goes to the person the ticket "
                                            "goes back to.")})
    changes = _write_fields(ticket=ticket, task=task, policy=policy, data=data or {}, files=files,
                            check_required=action in ("submit", "approve"), actor=user)
    act = _Act(ticket=ticket, task=task, graph=graph, user=user, policy=policy, action=action,
               comment=(comment or "")[:2000], changes=changes)
    hooks_call("handler_acted", ticket=ticket, task=task, action=action, actor=user)
    return _ACT_HANDLERS[action](act, target=target, transfer_to=transfer_to, co_handler=co_handler, parts=parts)


def _act_transfer(act, *, transfer_to, **_kw):
    lifecycle.member_check(transfer_to, "transfer_to", holds_tickets=False)
    act.changes.append(lifecycle.task_transfer(act.task, transfer_to))
    lifecycle.assignee_set(act.ticket, transfer_to)
    act.log(is_public=True)
    event_emit(tenant=act.ticket.tenant, event="ticket_assigned", ticket=act.ticket, actor=act.user,
               users=[transfer_to], occurrence=f"task{act.task.pk}-transfer{transfer_to.pk}")
    return act.task


def _act_cohandle(act, *, co_handler, **_kw):
    lifecycle.member_check(co_handler, "co_handler", holds_tickets=False)
    act.task.co_handlers.add(co_handler)
    act.log(code="task.cohandled", co=_actor_name(co_handler))
    return act.task


def _act_split(act, *, parts, **_kw):
    children = ticket_split(ticket=act.ticket, actor=act.user, parts=parts or [])
    act.log()
    return children


def _act_close(act, **_kw):
    act.log()
    lifecycle.run_cancel(run=act.run, ticket=act.ticket, actor=act.user, reason="close")
    _finish(run=act.run, ticket=act.ticket, actor=act.user, run_done=True)
    return act.task


def _act_return(act, *, target, action="return", **_kw):
    """Back to an earlier node (by default the last one), to the person who completed it there."""
    task, run, token = act.task, act.run, act.task.token
    targets = act.policy.return_targets
    target = target or (targets[0] if targets else None)
    if target not in targets:
        raise ValidationError({"target": _("Return to a node this ticket has already passed.")})
    lifecycle.task_complete(task, action, act.user)
    lifecycle.tasks_cancel(run, token=token)
    previous_task = (Task.objects.filter(run=run, token=token, node=target, status=TaskStatus.DONE)
                     .select_related("completed_by").order_by("-completed_at", "-id").first())
    act.log(is_public=False)
    hooks_call("task_returned", ticket=act.ticket, run=run, task=task, target=target, actor=act.user)
    token.node = target
    token.save(update_fields=["node"])
    _enter_human(run=run, ticket=act.ticket, token=token, node=act.graph.nodes[target], actor=act.user,
                 previous=act.user, returned=True, reason=act.comment,
                 handlers=[previous_task.completed_by] if previous_task else None)
    return task


def _act_forward(act, *, action, **_kw):
    """Submit / approve / reject along a transition: complete the task, and once the node is
    done (a countersign waits for its round) move the token on."""
    task, run, token, node = act.task, act.run, act.task.token, act.node
    lifecycle.task_complete(task, action, act.user)
    act.log()
    hooks_call("task_completed", ticket=act.ticket, run=run, task=task, action=action, actor=act.user)
    # A countersign waits for its round to be signed; one 驳回 ends the round at once.
    if node["kind"] == "countersign" and action != "reject" and not _countersign_complete(task, node):
        return task
    lifecycle.tasks_cancel(run, token=token)
    transition = _follow(act.graph, task.node, act.ticket, on=action if node["kind"] in SIGNOFF_KINDS else None)
    if transition is None:
        raise ValidationError({"action": _("No way out of “%(node)s” for this action.") % {"node": node_label(node)}})
    token.node = transition["to"]
    token.save(update_fields=["node"])
    _advance(run=run, ticket=act.ticket, graph=act.graph, tokens=[token], actor=act.user, previous=act.user)
    return task


def _act_reject(act, **kw):
    # 驳回 to a chosen earlier node, or without a reject way out of the node, sends the ticket
    # back like return (to the person who did that node); otherwise it follows the reject way.
    if kw.get("target") or not _follow(act.graph, act.task.node, act.ticket, on="reject"):
        return _act_return(act, action="reject", **kw)
    return _act_forward(act, action="reject", **kw)


_ACT_HANDLERS: dict[str, Callable[..., Any]] = {
    "submit": lambda act, **kw: _act_forward(act, action="submit", **kw),
    "approve": lambda act, **kw: _act_forward(act, action="approve", **kw),
    "reject": _act_reject,
    "return": _act_return,
    "transfer": _act_transfer,
    "cohandle": _act_cohandle,
    "split": _act_split,
    "close": _act_close,
}


def _countersign_complete(task, node):
    """Whether the countersign round this task belongs to is complete. A node entered again (a
    loop, a return) starts a new round on the same token: the round is the tasks created after
    the previous round ended, which is when one of its tasks was completed (its last signature,
    or a return) — every task of this round was created before any of them was completed."""
    same = Task.objects.filter(token_id=task.token_id, node=task.node)
    ended = (same.filter(status=TaskStatus.DONE, completed_at__lt=task.created_at)
             .aggregate(at=Max("completed_at"))["at"])
    siblings = same.filter(status__in=[TaskStatus.OPEN, TaskStatus.DONE])
    if ended is not None:
        siblings = siblings.filter(created_at__gt=ended)
    counts = dict(siblings.values_list("status").annotate(n=Count("id")).order_by())
    done, still_open = counts.get(TaskStatus.DONE, 0), counts.get(TaskStatus.OPEN, 0)
    if node.get("mode", "all") == "any":
        return done >= min(node.get("n", 1), done + still_open)
    return not still_open


def _write_fields(*, ticket, task, policy, data, files, check_required, actor=None):
    """Validate and store the node's editable fields (field-level permission); the others in
    `data` are refused. Required fields must hold a value after the write."""
    editable, required = policy.editable, policy.required
    extra = [k for k in [*data, *(files or {})] if k not in editable]
    if extra:
        raise ValidationError({"data": _("These fields cannot be edited at this node: %(keys)s.") % {
            "keys": ", ".join(sorted(extra))}})
    version_fields = ticket.template_version.fields
    writable = [dict(f, staff="edit") for f in version_fields if f["key"] in editable]
    changes = []
    if data or files:
        cleaned, files_to_store = schema.data_clean(writable, data, audience="staff", files=files, partial=True,
                                                    current=ticket.data)
        by_key = {f["key"]: f for f in version_fields}
        new = dict(ticket.data)
        for key, value in cleaned.items():
            if key in data and new.get(key) != value:
                changes.append({"field": key, "label": by_key[key].get("label") or key,
                                "old": schema.display_value(by_key[key], new.get(key)),
                                "new": schema.display_value(by_key[key], value)})
                new[key] = value
        if files_to_store:  # uploads at a node become the ticket's attachments, like a staff edit
            stored = attachments_store(ticket=ticket, files_to_store=files_to_store, actor=actor, is_public=False)
            for key, items in stored.items():
                new[key] = list(new.get(key) or []) + items
                changes.append({"field": key, "label": by_key[key].get("label") or key, "old": "",
                                "new": "、".join(i["name"] for i in items)})
        if changes:
            ticket.data = new
            ticket.save(update_fields=["data", "updated_at"])
    if check_required:
        missing = [k for k in required if ticket.data.get(k) in (None, "", [])]
        if missing:
            labels = {f["key"]: schema.field_label(f) for f in version_fields}
            raise ValidationError({"data": _("Fill in before submitting: %(fields)s.") % {
                "fields": "、".join(labels.get(k, k) for k in missing)}})
    return changes


def staff_user(pk):
    return get_user_model().objects.filter(pk=pk, memberships__in=Membership.objects.filter(is_active=True)).first()
