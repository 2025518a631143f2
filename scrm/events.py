"""Named business events and the seam through which an upper app (automation) hears them without
the app where they happen importing it.

Lower apps call `event_fire(name, tenant=…, subject=…, **params)` inside the transaction that made
the change; each subscriber runs there too, so what it records (automation writes a pending
firing row) commits or rolls back with the change itself, and its own work runs after commit.
`guard_register(name, func)` lets an upper app refuse a change before it is written (an
opportunity cannot be won while its approval is pending): `guards_check(name, …)` calls each
guard, which raises `ValidationError` with the message for the person acting.

| event | subject | params | fired by |
| --- | --- | --- | --- |
| opportunity.stage_entered | Opportunity | previous (stage before) | scrm.services (create, update) |
| opportunity.amount_changed | Opportunity | previous (Decimal or None) | scrm.services (create, update) |
| customer.created | Customer | — | scrm.services.customer_create |
| customer.tier_changed | Customer | previous | scrm.services.customer_update |
| ticket.closed | Ticket | — | the workflow's `ticket_closed` hook (automation relays it) |
| ticket.rated | Ticket | score (1–5), comment | the CSAT service, once a rating is saved |

Guards: `opportunity.stage_change` (opportunity, stage: the stage it is about to enter).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

EVENT_NAMES = (
    "opportunity.stage_entered",
    "opportunity.amount_changed",
    "customer.created",
    "customer.tier_changed",
    "ticket.closed",
    "ticket.rated",
)
GUARD_NAMES = ("opportunity.stage_change",)
# A subscriber whose work fires the same event again (a trigger setting the tier on "tier
# changed") is stopped at this depth instead of recursing.
MAX_DEPTH = 4

_subscribers: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENT_NAMES}
_guards: dict[str, list[Callable[..., Any]]] = {name: [] for name in GUARD_NAMES}
_depth: ContextVar[int] = ContextVar("scrm_event_depth", default=0)


def _add(registry, name, func):
    if name not in registry:
        raise ValueError(f"unknown business event {name!r}; known: {', '.join(registry)}")
    if func not in registry[name]:
        registry[name].append(func)
    return func


def event_subscribe(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Call `func(*, event, tenant, subject, depth, **params)` whenever `name` fires."""
    return _add(_subscribers, name, func)


def event_unsubscribe(name: str, func: Callable[..., Any]) -> None:
    if func in _subscribers.get(name, []):
        _subscribers[name].remove(func)


def guard_register(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Call `func(**params)` before the change `name`; it raises ValidationError to refuse it."""
    return _add(_guards, name, func)


def guard_unregister(name: str, func: Callable[..., Any]) -> None:
    if func in _guards.get(name, []):
        _guards[name].remove(func)


def guards_check(name: str, **params: Any) -> None:
    for func in _guards[name]:
        func(**params)


def event_depth() -> int:
    """How many events deep the current call is (0 outside any subscriber)."""
    return _depth.get()


def event_fire(name: str, *, tenant: Any, subject: Any, **params: Any) -> None:
    """Tell the subscribers of `name` about `subject` (inside the caller's transaction)."""
    if name not in _subscribers:
        raise ValueError(f"unknown business event {name!r}")
    depth = _depth.get()
    if depth >= MAX_DEPTH or not _subscribers[name]:
        return
    token = _depth.set(depth + 1)
    try:
        for func in _subscribers[name]:
            func(event=name, tenant=tenant, subject=subject, depth=depth + 1, **params)
    finally:
        _depth.reset(token)
