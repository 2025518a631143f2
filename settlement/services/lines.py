"""Settlement lines of a ticket: computed when it closes, recomputed (as adjustment lines for the
difference, never an edit) when it closes again."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Sum

from ..calculator import RenderedBreakdown, Rule, RuleBook, TicketResult, steps_digest, ticket_lines, ticket_settle
from ..inputs import InputCache, TicketRow, batch_inputs, ticket_input
from ..models import (
    LOCKED_STATES,
    LineKind,
    SettlementBreakdown,
    SettlementFieldMap,
    SettlementLine,
    SettlementRule,
    SettlementRun,
)
from .config import rule_spec

logger = logging.getLogger(__name__)


def active_rules() -> list[Rule]:
    return [rule_spec(r) for r in SettlementRule.objects.filter(is_active=True)]


def locked_periods() -> list[tuple[date, date]]:
    return list(SettlementRun.objects.filter(state__in=LOCKED_STATES).order_by("period_start")
                .values_list("period_start", "period_end"))


def period_date_for(day: date, locked: Sequence[tuple[date, date]] | None = None) -> date:
    """The day a new line counts on: its own day, or the first day after the frozen periods
    covering it — an approved month is never changed by a late correction."""
    locked = locked_periods() if locked is None else locked
    moved = True
    while moved:
        moved = False
        for start, end in locked:
            if start <= day <= end:
                day, moved = end + timedelta(days=1), True
    return day


Steps = Sequence[Mapping[str, Any]]


def breakdowns_store(breakdowns: Sequence[Steps], *, tenant_id: int, known: dict[str, int] | None = None) -> list[int]:
    """The ids of these breakdowns (in order), each stored once per tenant and content
    (SettlementBreakdown): those in `known` (digest → id, what this process saw committed), then
    one query for those stored already, one INSERT for the rest and one query for their ids. Two
    writers storing the same new breakdown at once both get the one row (the second insert skips
    it). What this call found joins `known` once the caller's transaction commits."""
    digests = [b.digest if type(b) is RenderedBreakdown else steps_digest(b) for b in breakdowns]
    found = {d: known[d] for d in digests if d in known} if known else {}
    missing = {d: b for d, b in zip(digests, breakdowns, strict=True) if d not in found}
    if missing:
        stored = SettlementBreakdown.objects.filter(tenant_id=tenant_id)
        found.update(stored.filter(digest__in=list(missing)).values_list("digest", "pk"))
        new = sorted(d for d in missing if d not in found)  # one order for every writer: no deadlock
        if new:
            SettlementBreakdown.objects.bulk_create(
                [SettlementBreakdown(tenant_id=tenant_id, digest=d, steps=missing[d]) for d in new],
                ignore_conflicts=True)
            found.update(stored.filter(digest__in=new).values_list("digest", "pk"))
        if known is not None:
            fresh = {d: found[d] for d in missing}
            transaction.on_commit(lambda: known.update(fresh))
    return [found[d] for d in digests]


def lines_store(rows: Sequence[tuple[SettlementLine, Steps]]) -> list[SettlementLine]:
    """Unsaved lines with their breakdowns: the breakdowns stored (once each), the lines inserted."""
    by_tenant: dict[int, list[tuple[SettlementLine, Steps]]] = defaultdict(list)
    for line, steps in rows:
        by_tenant[line.tenant_id].append((line, steps))
    for tenant_id, pairs in by_tenant.items():
        ids = breakdowns_store([steps for _line, steps in pairs], tenant_id=tenant_id)
        for (line, _steps), pk in zip(pairs, ids, strict=True):
            line.breakdown_id = pk
    return SettlementLine.objects.bulk_create([line for line, _steps in rows])


_LINE_FIELDS = [f.attname for f in SettlementLine._meta.concrete_fields]
# lines_for_rows passes a run's line values positionally in this order (Model.__init__'s fast path)
_RUN_LINE_ORDER = ["id", "tenant_id", "ticket_id", "party_id", "role", "kind", "amount", "breakdown_id",
                   "period_date", "run_id", "created_at"]
if _LINE_FIELDS != _RUN_LINE_ORDER:  # pragma: no cover - a new field must be placed in lines_for_rows too
    raise ImproperlyConfigured(f"SettlementLine fields changed: {_LINE_FIELDS}; update lines_for_rows")


def _rows(ticket, result: TicketResult, period_date: date) -> list[tuple[SettlementLine, Steps]]:
    return [(SettlementLine(tenant_id=ticket.tenant_id, ticket_id=ticket.pk, party_id=line.party_id, role=line.role,
                            kind=LineKind.TICKET, amount=line.amount, period_date=period_date), line.breakdown())
            for line in result.lines]


@transaction.atomic
def ticket_lines_compute(*, ticket, actor=None, cache: InputCache | None = None,
                         rules: list[Rule] | None = None) -> list[SettlementLine]:
    """Compute the ticket's lines and store what changed: the lines the first time, then one
    adjustment line per (party, role) whose amount differs from what its lines already sum to."""
    if cache is None:
        # One query for the tickets of templates that feed no settlement (most closes).
        if not SettlementFieldMap.objects.filter(template_id=ticket.template_id).exists():
            return []
        cache = InputCache()
    if ticket.template_id not in cache.maps:
        return []  # only templates that say which fields feed settlement are settled
    data = ticket_input(ticket=ticket, cache=cache)
    result = ticket_settle(data, active_rules() if rules is None else rules)
    if result.problems:
        logger.debug("ticket %s settles with problems: %s", ticket.pk, "; ".join(result.problems))
    period_date = period_date_for(data.closed_on)
    before = {(r["party_id"], r["role"]): r["total"] for r in SettlementLine.objects.filter(
        ticket=ticket, kind__in=[LineKind.TICKET, LineKind.ADJUSTMENT]).values("party_id", "role").annotate(
        total=Sum("amount"))}
    if not before:
        rows = _rows(ticket, result, period_date)
    else:
        after: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        steps: dict[tuple[int, str], Steps] = {}
        for line in result.lines:
            after[(line.party_id, line.role)] += line.amount
            steps[(line.party_id, line.role)] = line.breakdown()
        rows = []
        for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1])):
            delta = after.get(key, Decimal("0")) - before.get(key, Decimal("0"))
            if delta:
                rows.append((SettlementLine(tenant_id=ticket.tenant_id, ticket=ticket, party_id=key[0], role=key[1],
                                            kind=LineKind.ADJUSTMENT, amount=delta, period_date=period_date),
                             [*steps.get(key, []), {"rule_id": None, "rule": "adjustment", "kind": "adjustment",
                                                    "before": str(before.get(key, Decimal("0"))),
                                                    "after": str(after.get(key, Decimal("0"))), "detail": {}}]))
    return lines_store(rows)


def lines_for_rows(rows: Sequence[TicketRow], *, cache: InputCache, rules: RuleBook,
                   locked: Sequence[tuple[date, date]],
                   known: dict[str, int] | None = None) -> tuple[list[SettlementLine], int]:
    """Rows (unsaved) for a batch of closed tickets that have no line yet — a run's catch-up —
    and how many tickets could not be settled (a bad mapped value; they stay without lines).
    Their breakdowns are stored here (`breakdowns_store`, `known` its digests seen committed):
    the few distinct ones the batch's lines share, once each."""
    found: list[tuple[int, int, int, str, Decimal, Steps, date]] = []
    append = found.append
    skipped = 0
    period_dates: dict[date, date] = {}
    for row, data in batch_inputs([r for r in rows if r.template_id in cache.maps], cache=cache,
                                  with_context=rules.needs_context):
        if data is None:
            skipped += 1
            continue
        day = period_dates.get(data.closed_on)
        if day is None:
            day = period_dates[data.closed_on] = period_date_for(data.closed_on, locked)
        tenant_id, ticket_id = row.tenant_id, row.pk
        for party_id, role, amount, breakdown in ticket_lines(data, rules):
            append((tenant_id, ticket_id, party_id, role, amount, breakdown, day))
    # Lines with the same steps share one breakdown object (calculator.ticket_lines): each
    # distinct object is looked up once, by identity, while the lines keep it alive.
    distinct: dict[tuple[int, int], Steps] = {}
    for line in found:
        distinct.setdefault((line[0], id(line[5])), line[5])
    ids: dict[tuple[int, int], int] = {}
    for tenant_id in {key[0] for key in distinct}:
        keys = [key for key in distinct if key[0] == tenant_id]
        ids.update(zip(keys, breakdowns_store([distinct[k] for k in keys], tenant_id=tenant_id, known=known),
                       strict=True))
    ticket_kind = LineKind.TICKET
    out: list[SettlementLine] = []
    append_line = out.append
    for tenant_id, ticket_id, party_id, role, amount, steps, day in found:
        values: list[Any] = [None, tenant_id, ticket_id, party_id, role, ticket_kind, amount,
                             ids[(tenant_id, id(steps))], day, None, None]
        append_line(SettlementLine(*values))  # positional, in _RUN_LINE_ORDER (Model.__init__'s fast path)
    return out, skipped
