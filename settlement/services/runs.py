"""Period runs: start (or re-run) a month's or quarter's settlement, execute it in batches with
progress, and move it draft → reviewed → approved → paid."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from notifications.models import Event
from notifications.services import event_emit
from scrm.models import Membership, Role
from tickets.models import Status, Ticket

from ..calculator import PERIOD_KINDS, PartyVolume, RuleBook, period_settle, period_window
from ..inputs import ROW_FIELDS, InputCache, rows_from_values
from ..models import LOCKED_STATES, LineKind, Party, PeriodKind, RunState, SettlementLine, SettlementRun
from ..tasks import run_execute_task
from .lines import active_rules, lines_for_rows, locked_periods

BATCH = 5000
APPROVER_ROLES = (Role.FINANCE, Role.ADMIN)


def _role(user) -> str | None:
    return Membership.objects.filter(user=user, is_active=True).values_list("role", flat=True).first()


@transaction.atomic
def run_start(*, tenant, period_kind: str, day: date, actor, background: bool = True) -> SettlementRun:
    """Open the run of the month/quarter containing `day`, or re-run its draft. Refused when the
    period is frozen (reviewed, approved, paid) or overlaps another run's period. With
    `background=False` the caller runs `run_execute` itself (the demo seed, the benchmark)."""
    if period_kind not in PeriodKind.values:
        raise ValidationError({"period_kind": _("Choose a month or a quarter.")})
    start, end = period_window(period_kind, day)
    clashes = list(SettlementRun.objects.select_for_update().filter(period_start__lte=end, period_end__gte=start))
    for run in clashes:
        if run.state in LOCKED_STATES:
            raise ValidationError({"period_kind": _("%(start)s – %(end)s is already %(state)s; it cannot be run "
                                                    "again. Corrections go into the next period.")
                                   % {"start": run.period_start, "end": run.period_end,
                                      "state": run.get_state_display()}})
        if (run.period_start, run.period_end) != (start, end):
            raise ValidationError({"period_kind": _("This period overlaps the draft run %(start)s – %(end)s; "
                                                    "run that period instead.")
                                   % {"start": run.period_start, "end": run.period_end}})
    if clashes:
        run = clashes[0]
        if run.is_running:
            raise ValidationError({"period_kind": _("This period is being run already.")})
        SettlementRun.objects.filter(pk=run.pk).update(is_running=True, progress=0, error="")
        run = SettlementRun.objects.get(pk=run.pk)
    else:
        run = SettlementRun.objects.create(tenant=tenant, period_kind=period_kind, period_start=start,
                                           period_end=end, created_by=actor, is_running=True)
    if background:
        run_execute_task.delay_on_commit(tenant_id=tenant.pk, run_id=run.pk)
    return run


def _bounds(run: SettlementRun) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    return datetime.combine(run.period_start, time.min, zone), datetime.combine(run.period_end, time.max, zone)


def run_execute(*, run: SettlementRun, batch: int = BATCH) -> SettlementRun:
    """Settle the period: closed tickets without lines get theirs (in batches, each its own
    transaction, progress saved after each), then the draft's rebate and bonus lines are replaced
    and the totals summed. Safe to run again: a ticket with lines is never settled twice."""
    if run.state != RunState.DRAFT:
        raise ValidationError(_("Only a draft run can be run."))
    cache, rules = InputCache(), active_rules()
    book = RuleBook(rules)
    locked = locked_periods()
    start_at, end_at = _bounds(run)
    # Windows of ticket ids, each read as plain rows (no model instances, no query per ticket):
    # one query for the tickets, one for their customers' tags, one for minutes on site and one
    # call for the parts used, then one bulk insert. Bounded id windows rather than
    # "id > last ORDER BY id LIMIT n": no index orders this tenant's closed tickets by id, so a
    # LIMIT page sorted every remaining ticket each time (5 s a page at 1,000,000 tickets). The
    # window widens while it finds few tickets (other tenants' ids in between) and narrows when
    # it finds many, so a batch stays near `batch` tickets.
    pending = (Ticket.objects.filter(status=Status.CLOSED, closed_at__gte=start_at, closed_at__lte=end_at,
                                     template_id__in=list(cache.maps))
               .filter(~Exists(SettlementLine.objects.filter(ticket=OuterRef("pk")))))
    bounds = pending.aggregate(low=Min("pk"), high=Max("pk"))
    low, high = bounds["low"] or 0, bounds["high"] or -1
    skipped, at, span = 0, low, batch
    while at <= high:
        page = list(pending.filter(pk__gte=at, pk__lt=at + span).order_by("pk").values(*ROW_FIELDS))
        at += span
        span = (min(span * 2, 1 << 24) if len(page) < batch // 2
                else max(batch // 4, span // 2) if len(page) > batch else span)
        if not page:
            continue
        with transaction.atomic():
            rows, bad = lines_for_rows(rows_from_values(page), cache=cache, rules=book, locked=locked)
            SettlementLine.objects.bulk_create(rows, batch_size=batch)
            skipped += bad
            SettlementRun.objects.filter(pk=run.pk).update(
                progress=min(90, 90 * (at - low) // max(high - low + 1, 1)))
    with transaction.atomic():
        run = SettlementRun.objects.select_for_update().get(pk=run.pk)
        SettlementLine.objects.filter(run=run).delete()  # the draft's own rebate/bonus lines, replaced
        SettlementLine.objects.bulk_create(_period_lines(run, rules, cache))
        in_run = SettlementLine.objects.filter(Q(run=run) | Q(period_date__gte=run.period_start,
                                                               period_date__lte=run.period_end, run=None))
        totals = in_run.aggregate(total=Sum("amount"), lines=Count("id"), tickets=Count("ticket", distinct=True))
        SettlementRun.objects.filter(pk=run.pk).update(
            progress=100, is_running=False, total=totals["total"] or Decimal("0"), line_count=totals["lines"],
            ticket_count=totals["tickets"], finished_at=timezone.now(),
            error=_("%(n)s tickets could not be settled (a bad mapped value).") % {"n": skipped} if skipped else "")
    run = SettlementRun.objects.get(pk=run.pk)
    return run


def _period_lines(run: SettlementRun, rules, cache: InputCache) -> list[SettlementLine]:
    period_rules = [r for r in rules if r.kind in PERIOD_KINDS]
    out: list[SettlementLine] = []
    windows = {period_window(r.params["period"], run.period_end) for r in period_rules}
    for start, end in sorted(windows):
        if end != run.period_end:
            continue
        ticket_lines = SettlementLine.objects.filter(kind__in=[LineKind.TICKET, LineKind.ADJUSTMENT],
                                                     period_date__gte=start, period_date__lte=end)
        agg = ticket_lines.values("party_id").annotate(amount=Sum("amount"), count=Count("ticket", distinct=True))
        firsts = dict(SettlementLine.objects.filter(kind=LineKind.TICKET).values("party_id")
                      .annotate(first=Min("id")).values_list("party_id", "first"))
        first_rows = {row.party_id: row for row in SettlementLine.objects.filter(pk__in=firsts.values())}
        volumes = []
        for row in agg:
            party = cache.parties.get(row["party_id"])
            if party is None:
                continue
            first = first_rows.get(row["party_id"])
            first_amount = (first.amount if first is not None and start <= first.period_date <= end else None)
            volumes.append(PartyVolume(party.pk, party.kind, row["amount"], row["count"], first_amount,
                                       {"party.kind": party.kind}))
        window_rules = [r for r in period_rules if period_window(r.params["period"], run.period_end) == (start, end)]
        for line in period_settle(volumes, window_rules, period_end=run.period_end):
            out.append(SettlementLine(tenant_id=run.tenant_id, party_id=line.party_id, role=line.role,
                                      kind=line.kind, amount=line.amount, breakdown=line.breakdown(),
                                      period_date=run.period_end, run=run))
    return out


def _move(run: SettlementRun, method: str, actor, **fields: Any) -> SettlementRun:
    run = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if run.is_running:
        raise ValidationError(_("Wait until the run has finished."))
    transition = getattr(run, method)
    if not can_proceed(transition):
        raise ValidationError(_("A run that is %(state)s cannot do that.") % {"state": run.get_state_display()})
    transition()
    for key, value in fields.items():
        setattr(run, key, value)
    run.save()
    return run


@transaction.atomic
def run_review(*, run: SettlementRun, actor) -> SettlementRun:
    """Freeze the draft for approval (finance, an admin or a manager)."""
    if _role(actor) not in (*APPROVER_ROLES, Role.MANAGER):
        raise ValidationError(_("Only finance, an administrator or a manager can mark a run reviewed."))
    return _move(run, "review", actor, reviewed_by=actor)


@transaction.atomic
def run_send_back(*, run: SettlementRun, actor) -> SettlementRun:
    if _role(actor) not in APPROVER_ROLES:
        raise ValidationError(_("Only finance can send a run back."))
    return _move(run, "send_back", actor)


@transaction.atomic
def run_approve(*, run: SettlementRun, actor) -> SettlementRun:
    """Finance approves: the run is immutable from now on, and each engineer hears (WeCom and the
    bell, by their preferences) what they earn in it."""
    if _role(actor) not in APPROVER_ROLES:
        raise ValidationError(_("Only finance can approve a settlement run."))
    run = _move(run, "approve", actor, approved_by=actor, approved_at=timezone.now())
    per_party: dict[int, Decimal] = defaultdict(Decimal)
    counts: dict[int, int] = defaultdict(int)
    for party_id, amount in run_lines(run).values_list("party_id", "amount"):
        per_party[party_id] += amount
        counts[party_id] += 1
    period = f"{run.period_start:%Y-%m-%d} – {run.period_end:%Y-%m-%d}"
    for party in Party.objects.filter(pk__in=per_party, user__isnull=False).select_related("user"):
        # The outbox row's subject is a ticket; a run has none, so the message carries its figures.
        event_emit(tenant=run.tenant, event=Event.SETTLEMENT_READY, users=[party.user],
                   context={"settlement_period": period,
                            "amount": _("¥%(amount)s (%(n)s lines)") % {"amount": f"{per_party[party.pk]:,.2f}",
                                                                       "n": counts[party.pk]}},
                   occurrence=f"run{run.pk}:party{party.pk}")
    return run


@transaction.atomic
def run_pay(*, run: SettlementRun, actor) -> SettlementRun:
    if _role(actor) not in APPROVER_ROLES:
        raise ValidationError(_("Only finance can mark a run paid."))
    return _move(run, "pay", actor, paid_at=timezone.now())


def run_lines(run: SettlementRun):
    """The lines a run settles: the ticket and adjustment lines counted in its period, and its own."""
    return SettlementLine.objects.filter(Q(run=run) | Q(run=None, period_date__gte=run.period_start,
                                                        period_date__lte=run.period_end))
