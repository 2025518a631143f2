"""What a person may do on a task: the engine's rules in one pure function. Given the node (a
dict of the graph), the task's state, who holds it and where it could return to, `task_policy`
says which actions are allowed, which fields are visible, editable and required, and the return
targets. The ticket panel draws its buttons and form from it; `task_act` refuses anything it
does not allow — so the page and the engine cannot disagree. No database access here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

HUMAN_ACTIONS = ("submit", "approve", "reject", "return", "transfer", "cohandle", "split", "close")
# Sign-off nodes (审批, 会签) ask for a verdict: 同意 or 驳回, never submit/return. Graphs published
# before that, and callers of the engine, may still say return there, or submit at a countersign
# (its signature used to be a submit): they mean the verdict. A submit at an approval stays refused:
# an approval was never passed by a plain submit.
SIGNOFF_KINDS = ("approval", "countersign")
SIGNOFF_ALIASES = {"approval": {"return": "reject"}, "countersign": {"submit": "approve", "return": "reject"}}
# Actions the person must give a reason for (the comment): it goes to whoever the ticket goes back to.
REASON_REQUIRED = frozenset({"reject"})


@dataclass(frozen=True)
class TaskPolicy:
    actions: tuple[str, ...] = ()
    visible: frozenset[str] = frozenset()
    editable: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    return_targets: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())  # why nothing is allowed (for a clear error)
    kind: str = ""  # the node's kind: at an approval or countersign the verdict is approve / reject
    reason_required: frozenset[str] = REASON_REQUIRED

    @property
    def signoff(self) -> bool:
        return self.kind in SIGNOFF_KINDS

    def allows(self, action: str) -> bool:
        return action in self.actions

    def canonical(self, action: str) -> str:
        """The action as this node knows it: at a sign-off node submit means approve and return
        means reject."""
        return SIGNOFF_ALIASES.get(self.kind, {}).get(action, action)

    def needs_reason(self, action: str) -> bool:
        return self.canonical(action) in self.reason_required


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
    that there is somewhere to go back to (task_act looks them up only for those actions).

    Approval and countersign nodes offer 同意 / 驳回 (approve / reject, a reason required for
    reject): their configured submit/return are read as approve/reject (`TaskPolicy.canonical`).
    Without a reject way out, reject goes back to the previous node like return — at a
    countersign one signer's 驳回 ends the round for everyone (一票否决)."""
    visible, editable, required = node_fields(node)
    kind = str(node.get("kind") or "")
    if not is_open:
        return TaskPolicy(visible=visible, reasons=("finished",), kind=kind)
    if user_id is None or user_id not in set(holders):
        return TaskPolicy(visible=visible, reasons=("not_holder",), kind=kind)
    actions = [a for a in node.get("actions", []) if a in HUMAN_ACTIONS]
    if kind in SIGNOFF_KINDS:
        aliases = SIGNOFF_ALIASES[kind]
        actions = [aliases.get(a, a) for a in actions if a != "submit" or "submit" in aliases]
        if "approve" not in actions:
            actions.insert(0, "approve")
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
                      return_targets=targets, kind=kind)
