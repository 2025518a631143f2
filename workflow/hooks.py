"""Engine hooks: where SLA, spare parts, settlement and other upper apps plug into a ticket's
journey without the engine knowing them.

    from workflow.hooks import workflow_hook

    @workflow_hook("node_entered")
    def reserve_parts(*, ticket, run, node, tasks, actor, **_):
        ...

Every hook is called with keyword arguments only, inside the engine's transaction, after the
engine's own rows for the step are written: raising rolls the whole action back. A
ValidationError reaches the user as it is; any other exception is logged with its traceback and
becomes a ValidationError naming the step, so the person acting sees a clear error instead of a
server error. Accept `**_` so that arguments added later do not break a hook.

| hook | when | arguments |
| --- | --- | --- |
| node_entered | a human node's task(s) were created (entry, loop, return) | ticket, run, node, tasks, actor, returned |
| task_completed | a task was submitted / approved / rejected | ticket, run, task, action, actor |
| task_returned | a task sent the ticket back to an earlier node | ticket, run, task, target, actor |
| run_cancelled | a run ended before its end node (cancel, close, merge) | ticket, run, actor, reason |
| ticket_closed | the ticket reached Closed by any path (with or without a workflow) | ticket, run, actor |
| status_changed | the ticket's status moved (lifecycle.status_move), any path | ticket, old, new |
| handler_acted | a person acted: a task action, or a status change by hand | ticket, task, action, actor |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

HOOK_NAMES = ("node_entered", "task_completed", "task_returned", "run_cancelled", "ticket_closed", "status_changed",
              "handler_acted")
_HOOKS: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOK_NAMES}


def workflow_hook(name: str):
    """Register `func(**kwargs)` for the hook `name` (one of HOOK_NAMES)."""
    if name not in _HOOKS:
        raise ValueError(f"unknown workflow hook {name!r}; known: {', '.join(HOOK_NAMES)}")

    def register(func):
        if func not in _HOOKS[name]:
            _HOOKS[name].append(func)
        return func

    return register


def hook_unregister(name: str, func: Callable[..., Any]) -> None:
    """Remove a registered hook (tests that register their own)."""
    if func in _HOOKS.get(name, []):
        _HOOKS[name].remove(func)


def hooks_call(name: str, **kwargs: Any) -> None:
    for func in _HOOKS[name]:
        try:
            func(**kwargs)
        except ValidationError:
            raise
        except Exception as exc:
            logger.exception("workflow hook %s (%s) failed", name, getattr(func, "__qualname__", func))
            raise ValidationError(_("A step of this action failed (%(hook)s), so nothing was saved. "
                                    "Try again; if it keeps failing, tell your administrator.")
                                  % {"hook": name}) from exc
