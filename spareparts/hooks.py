"""How spare parts ride the workflow: a node whose graph says `"parts": {"reserve": true}`
reserves the ticket's parts on entry, `{"consume": true}` consumes what is still reserved when its
task is submitted or approved; a return, a cancelled run or a closed ticket releases the rest.
All inside the engine's transaction: an out-of-stock ValidationError rolls the step back."""

from workflow.hooks import workflow_hook

from . import services


def node_parts(node) -> dict:
    parts = node.get("parts") if isinstance(node, dict) else None
    return parts if isinstance(parts, dict) else {}


def _node_of(run, key):
    graph = getattr(getattr(run, "version", None), "graph", None) or {}
    for node in graph.get("nodes", []):
        if isinstance(node, dict) and node.get("key") == key:
            return node
    return {}


@workflow_hook("node_entered")
def parts_reserve_on_entry(*, ticket, node, actor, **_):
    if node_parts(node).get("reserve"):
        services.ticket_parts_reserve(ticket=ticket, actor=actor, node_key=str(node.get("key", "")))


@workflow_hook("task_completed")
def parts_consume_on_completion(*, ticket, run, task, action, actor, **_):
    if action in ("submit", "approve") and node_parts(_node_of(run, task.node)).get("consume"):
        services.reservations_consume(ticket=ticket, actor=actor)


@workflow_hook("task_returned")
def parts_release_on_return(*, ticket, actor, **_):
    services.reservations_release(ticket=ticket, actor=actor, reason="return")


@workflow_hook("run_cancelled")
def parts_release_on_cancel(*, ticket, actor, **_):
    services.reservations_release(ticket=ticket, actor=actor, reason="cancel")


@workflow_hook("ticket_closed")
def parts_release_on_close(*, ticket, actor, **_):
    services.reservations_release(ticket=ticket, actor=actor, reason="close")
