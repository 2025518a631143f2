"""The seams through which upper apps (workflow, and later SLA, settlement, spare parts) extend
tickets without tickets importing them. Each upper app fills these in its `AppConfig.ready()`;
tickets only ever calls what is registered here.

- `on_ticket_created(func)`: `func(*, ticket, actor)` runs inside the transaction that created a
  ticket (intake, split): the workflow starts there. An exception rolls the creation back.
- `visibility_register(func)`: `func(*, user) -> Q` widens which tickets a user sees (a person
  holding a workflow task sees its ticket). Combined with OR into `visible_tickets`.
- `field_scope_register(func)`: `func(*, ticket, user) -> set | None`: the custom-field keys a
  user may see on a ticket, None for no restriction. The first answer that is not None wins.
- `list_badges_register(func)`: `func(*, tickets) -> {ticket id: [badge, …]}` adds badges to the
  rows of a ticket list page (the SLA's remaining time); a badge is a dict with `text`, `css`
  (Bootstrap classes) and optionally `title` and `state`. One query per page, not per row.
- `lifecycle_register(provider)`: the one owner of a ticket's status and assignee (the workflow
  app's `workflow.lifecycle`). Tickets' pages and API change status, assignee, merge and split
  through `lifecycle()`, never by writing the fields themselves.
- `parts_catalogue_register(provider)`: the parts catalogue the `parts` custom field reads
  (spare parts fills it): `provider.lookup(codes=[...], ids=[...]) -> {code_or_id: (id, sku, name)}`
  in the tenant in scope, and `provider.search_url()` for the field's search box.
- `parts_used_register(func)`: `func(*, ticket_ids) -> {ticket id: [PartUsed, …]}`: the parts
  consumed on each ticket, priced (spare parts fills it; settlement reads it through
  `parts_used()` so that parts feed the settlement lines without either app importing the other).
  One query per call, not per ticket.
- `comment_added_register(func)`: `func(*, ticket, event)` runs inside the transaction that added
  a comment (`services.ticket_comment_add`); the dashboards' quality score is recomputed there.
- `ticket_panel_register(url_name)`: a panel the ticket page loads with htmx from
  `reverse(url_name, args=[ticket.pk])` (spare parts shows the ticket's parts there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

_created: list[Callable[..., Any]] = []
_visibility: list[Callable[..., Q]] = []
_field_scope: list[Callable[..., set[str] | None]] = []
_lifecycle: list[Any] = []
_parts_catalogue: list[Any] = []
_ticket_panels: list[str] = []
_list_badges: list[Callable[..., dict]] = []
_parts_used: list[Callable[..., dict]] = []
_comment_added: list[Callable[..., Any]] = []


class Lifecycle(Protocol):
    """What tickets needs from the owner of the lifecycle (implemented by workflow.lifecycle)."""

    def ticket_assign(self, *, ticket: Any, assignee: Any, actor: Any) -> Any: ...

    def ticket_status_change(self, *, ticket: Any, action: str, actor: Any, note: str = "") -> Any: ...

    def ticket_merge(self, *, source: Any, target: Any, actor: Any) -> Any: ...

    def ticket_status_actions(self, *, ticket: Any) -> list[str]: ...


def _register(registry: list, func):
    if func not in registry:
        registry.append(func)
    return func


def on_ticket_created(func):
    return _register(_created, func)


def visibility_register(func):
    return _register(_visibility, func)


def field_scope_register(func):
    return _register(_field_scope, func)


class PartsCatalogue(Protocol):
    """What the `parts` field needs from the parts catalogue (implemented by spareparts.catalogue)."""

    def lookup(self, *, codes: list[str], ids: list[int]) -> dict[Any, tuple[int, str, str]]: ...

    def search_url(self) -> str: ...


def parts_catalogue_register(provider):
    _parts_catalogue[:] = [provider]
    return provider


def parts_catalogue() -> PartsCatalogue | None:
    """The registered parts catalogue, or None when no app provides one."""
    return _parts_catalogue[0] if _parts_catalogue else None


@dataclass(frozen=True)
class PartUsed:
    """One part consumed on a ticket, as settlement needs it: what, how many, at which unit price."""

    sku: str
    name: str
    quantity: Decimal
    unit_price: Decimal


def parts_used_register(func):
    return _register(_parts_used, func)


def ticket_ids_q(ids, field: str = "ticket_id") -> Q:
    """A filter on `field` for a batch of ticket ids (the `parts_used` / minutes-on-site reads).
    A settlement window's ids are nearly contiguous: a range (two parameters) then replaces an IN
    list of thousands that Django resolves and the driver quotes one by one (≈ 3.5 µs of CPU per
    id, measured on 5,000). The range may match tickets not asked for: callers keep only the rows
    of `ids`. Few or scattered ids keep the IN list."""
    ids = ids if isinstance(ids, (set, frozenset)) else set(ids)
    if len(ids) > 100:
        low, high = min(ids), max(ids)
        if high - low < 2 * len(ids):
            return Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return Q(**{f"{field}__in": sorted(ids)})


def parts_used(*, ticket_ids) -> dict[int, list[PartUsed]]:
    """The parts consumed on each of `ticket_ids` (empty lists when no app provides them)."""
    ticket_ids = list(ticket_ids)
    found: dict[int, list[PartUsed]] = {pk: [] for pk in ticket_ids}
    for func in _parts_used:
        for pk, parts in func(ticket_ids=ticket_ids).items():
            found.setdefault(pk, []).extend(parts)
    return found


def comment_added_register(func):
    return _register(_comment_added, func)


def comment_added(*, ticket, event) -> None:
    """Tell every upper app that a comment (`event`) was just added to `ticket`."""
    for func in _comment_added:
        func(ticket=ticket, event=event)


def ticket_panel_register(url_name: str) -> str:
    return _register(_ticket_panels, url_name)


def ticket_panels() -> list[str]:
    """URL names of the extra panels of the ticket page, in registration order."""
    return list(_ticket_panels)


def list_badges_register(func):
    return _register(_list_badges, func)


def list_badges(*, tickets) -> None:
    """Set `ext_badges` (a list, maybe empty) on every ticket of a list page."""
    tickets = list(tickets)
    for ticket in tickets:
        ticket.ext_badges = []
    for func in _list_badges:
        found = func(tickets=tickets)
        for ticket in tickets:
            ticket.ext_badges.extend(found.get(ticket.pk, ()))


def lifecycle_register(provider):
    _lifecycle[:] = [provider]
    return provider


def ticket_created(*, ticket, actor) -> None:
    """Tell every upper app that `ticket` was just created (inside the creating transaction)."""
    for func in _created:
        func(ticket=ticket, actor=actor)


def visibility_q(*, user) -> Q | None:
    """The OR of every registered widening of what `user` sees, or None when none is registered."""
    q = None
    for func in _visibility:
        extra = func(user=user)
        q = extra if q is None else q | extra
    return q


def field_scope(*, ticket, user) -> set[str] | None:
    for func in _field_scope:
        keys = func(ticket=ticket, user=user)
        if keys is not None:
            return keys
    return None


def lifecycle() -> Lifecycle:
    if not _lifecycle:
        raise ImproperlyConfigured("No ticket lifecycle registered: is the workflow app installed?")
    return _lifecycle[0]
