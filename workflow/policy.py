"""What a person may do on a task: the engine's rules in one pure function. Given the node (a
dict of the graph), the task's state, who holds it and where it could return to, `task_policy`
says which actions are allowed, which fields are visible, editable and required, and the return
targets. The ticket panel draws its buttons and form from it; `task_act` refuses anything it
does not allow — so the page and the engine cannot disagree. No database access here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

HUMAN_ACTIONS = ("submit", "approve", "reject", "return", "transfer", "cohandle", "split", "close")


@dataclass(frozen=True)
class TaskPolicy:
    actions: tuple[str, ...] = ()
    visible: frozenset[str] = frozenset()
    editable: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    return_targets: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())  # why nothing is allowed (for a clear error)

    def allows(self, action: str) -> bool:
        return action in self.actions


def node_fields(node: dict) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(visible, editable, required) field keys of a node; `unlock` fields are editable too."""
    spec = node.get("fields") or {}
    visible = frozenset(spec.get("visible", []))
    editable = frozenset(spec.get("editable", [])) | frozenset(node.get("unlock") or [])
    required = frozenset(spec.get("required", []))
    return visible, editable, required


def task_policy(*, node: dict, is_open: bool, user_id: int | None, holders: Iterable[int],
                out_transitions: Sequence[dict] = (), return_targets: Sequence[str] | None = None) -> TaskPolicy:
    """The policy for `user_id` on a task at `node`.

    `return_targets` are the earlier nodes the task's token completed (most recent first); pass
    None when they were not looked up: "return" and "reject" are then listed without checking
    that there is somewhere to go back to (task_act looks them up only for those actions)."""
    visible, editable, required = node_fields(node)
    if not is_open:
        return TaskPolicy(visible=visible, reasons=("finished",))
    if user_id is None or user_id not in set(holders):
        return TaskPolicy(visible=visible, reasons=("not_holder",))
    actions = [a for a in node.get("actions", []) if a in HUMAN_ACTIONS]
    if node.get("kind") == "approval":
        actions = [a for a in actions if a != "submit"]
    else:
        actions = [a for a in actions if a not in ("approve", "reject")]
        if "submit" not in actions:
            actions.insert(0, "submit")
    targets = tuple(return_targets or ())
    if return_targets is not None and not targets:
        if "return" in actions:
            actions.remove("return")
        # Without a reject way out, reject returns to the previous node: none, no reject.
        if "reject" in actions and not any(t.get("on") == "reject" for t in out_transitions):
            actions.remove("reject")
    return TaskPolicy(actions=tuple(dict.fromkeys(actions)), visible=visible, editable=editable, required=required,
                      return_targets=targets)
