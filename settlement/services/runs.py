"""Period runs: start (or re-run) a month's or quarter's settlement, execute it in batches with
progress, and move it draft → reviewed → approved → paid."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, Min, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from notifications.models import Event
from notifications.services import event_emit
from scrm.models import Membership, Role
from tickets.models import Status, Ticket

from ..calculator import PERIOD_KINDS, PartyVolume, RuleBook, period_settle, period_window
from ..inputs import PLAIN_ROW_FIELDS, ROW_FIELDS, InputCache, TicketRow, rows_from_plain, rows_from_values
from ..messages import MAX_LINES, line_text, lines_text
from ..models import (
    LOCKED_STATES,
    LineKind,
    Party,
    PeriodKind,
    RunState,
    ServiceItem,
    SettlementFieldMap,
    SettlementLine,
    SettlementRun,
    SettlementRunWindow,
    WindowState,
)
from ..tasks import run_finish_task, run_plan_task, run_window_task
from .lines import Steps, active_rules, lines_for_rows, lines_store, locked_periods

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
        run_plan_task.delay_on_commit(tenant_id=tenant.pk, run_id=run.pk)
    return run


def run_retry(*, run: SettlementRun, actor) -> SettlementRun:
    """Run a draft's period again (after a failed window, or to catch up): the same as starting
    it from the list; what earlier windows settled stays settled."""
    return run_start(tenant=run.tenant, period_kind=run.period_kind, day=run.period_start, actor=actor)


def _bounds(run: SettlementRun) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    return datetime.combine(run.period_start, time.min, zone), datetime.combine(run.period_end, time.max, zone)


def _closed(run: SettlementRun, template_ids) -> Any:
    """The period's closed tickets of settled templates."""
    start_at, end_at = _bounds(run)
    return Ticket.objects.filter(status=Status.CLOSED, closed_at__gte=start_at, closed_at__lte=end_at,
                                 template_id__in=list(template_ids))


def _pending(run: SettlementRun, template_ids) -> Any:
    """The period's closed tickets of settled templates that have no line yet."""
    return _closed(run, template_ids).filter(~Exists(SettlementLine.objects.filter(ticket=OuterRef("pk"))))


def _window_rows(window: SettlementRunWindow, context: WindowContext) -> list[TicketRow]:
    """The window's closed tickets that have no line yet: their ids, the ids of those with lines,
    then the rows of the rest — plain reads of the window's id range rather than one NOT EXISTS,
    which the planner judges by statistics that lag a table the run is filling (it picked plans
    reading all the lines, or the window's lines once per ticket). Tickets before lines: a ticket
    read as closed has its lines (written in the transaction that closed it) in the second read;
    the rows read last are kept only if their id was read first."""
    tickets = _closed(window.run, context.cache.maps).filter(pk__gte=window.low, pk__lte=window.high)
    ids = set(tickets.values_list("pk", flat=True))
    closed = len(ids)
    ids.difference_update(SettlementLine.objects.filter(ticket_id__gte=window.low, ticket_id__lte=window.high)
                          .values_list("ticket_id", flat=True))
    if not ids:
        return []
    if len(ids) * 2 < closed:  # mostly settled already (a re-run): read the rest by id
        tickets = tickets.filter(pk__in=ids)
    if context.rules.needs_context:
        rows = rows_from_values(list(tickets.values(*ROW_FIELDS)))
    else:
        rows = rows_from_plain(tickets.values_list(*PLAIN_ROW_FIELDS))
    return [row for row in rows if row.pk in ids]


def run_plan(*, run: SettlementRun, batch: int = BATCH, fan_out: bool = False) -> list[int]:
    """Cut the period's pending tickets into id windows of `batch` tickets (replacing the draft's
    earlier windows) and return their ids. One pass over the ids in order, keeping only each
    window's first and last id, so planning a million tickets holds no list of them. With
    `fan_out` each window becomes a Celery task once this commits (the finish task when empty)."""
    with transaction.atomic():
        # The earlier windows go first, before the run's lock: a window still being settled holds
        # its own row and then asks for the run's, so taking them in the other order could deadlock.
        SettlementRunWindow.objects.filter(run=run).delete()
        run = SettlementRun.objects.select_for_update().get(pk=run.pk)
        if run.state != RunState.DRAFT:
            raise ValidationError(_("Only a draft run can be run."))
        bounds: list[tuple[int, int]] = []
        low = last = None
        count = 0
        settled = SettlementFieldMap.objects.values_list("template_id", flat=True)
        ids = _pending(run, settled).order_by("pk").values_list("pk", flat=True)
        for pk in ids.iterator(chunk_size=20000):
            if low is None:
                low = pk
            last, count = pk, count + 1
            if count == batch:
                bounds.append((low, pk))
                low, count = None, 0
        if low is not None and last is not None:
            bounds.append((low, last))
        windows = SettlementRunWindow.objects.bulk_create(
            [SettlementRunWindow(tenant_id=run.tenant_id, run=run, low=lo, high=hi) for lo, hi in bounds])
        window_ids = [w.pk for w in windows]
        SettlementRun.objects.filter(pk=run.pk).update(progress=0, error="")
        if fan_out:
            tenant_id, run_id = run.tenant_id, run.pk
            if window_ids:
                transaction.on_commit(lambda: [run_window_task.delay(tenant_id=tenant_id, window_id=pk)
                                               for pk in window_ids])
            else:
                run_finish_task.delay_on_commit(tenant_id=tenant_id, run_id=run_id)
    return window_ids


class WindowContext:
    """What every window of a run reads once: the tenant's small tables, the rules prepared, the
    frozen periods; and the breakdowns stored so far (digest → id), which grows window by window.
    A worker builds one per window (a few small queries); the sequential path shares one over all
    windows."""

    def __init__(self):
        self.cache = InputCache()
        self.rules = RuleBook(active_rules())
        self.locked = locked_periods()
        self.breakdowns: dict[str, int] = {}


def run_window_execute(*, window_id: int, context: WindowContext | None = None, fan_out: bool = False) -> bool:
    """Settle one window: claim it (a row lock, skipping a window another worker holds), write the
    lines of its tickets that have none, mark it done and advance the run's progress — all in one
    transaction, so a window is settled exactly once whatever the workers do. Returns True when it
    was the run's last window (with `fan_out`, the finish task is sent once this commits)."""
    with transaction.atomic():
        window = (SettlementRunWindow.objects.select_for_update(skip_locked=True, of=("self",))
                  .filter(pk=window_id, state=WindowState.PENDING, run__is_running=True,
                          run__state=RunState.DRAFT).select_related("run").first())
        if window is None:
            return False  # done, failed, being settled by another worker, or its run was re-planned
        run = window.run
        context = context or WindowContext()
        page = _window_rows(window, context)
        rows, bad = lines_for_rows(page, cache=context.cache, rules=context.rules, locked=context.locked,
                                   known=context.breakdowns)
        SettlementLine.objects.bulk_create(rows, batch_size=5000)  # a window (11 parameters a line) in one statement
        SettlementRunWindow.objects.filter(pk=window.pk).update(
            state=WindowState.DONE, tickets=len(page), lines=len(rows), skipped=bad, finished_at=timezone.now())
        # The run's row lock orders the windows' ends: the last one to take it sees every other
        # window done (each statement reads what committed before it), so exactly one finishes.
        SettlementRun.objects.select_for_update().filter(pk=run.pk).first()
        counts = SettlementRunWindow.objects.filter(run=run).aggregate(
            total=Count("id"), done=Count("id", filter=Q(state=WindowState.DONE)))
        SettlementRun.objects.filter(pk=run.pk).update(progress=90 * counts["done"] // max(counts["total"], 1))
        last = counts["done"] == counts["total"]
        if last and fan_out:
            run_finish_task.delay_on_commit(tenant_id=run.tenant_id, run_id=run.pk)
    return last


@transaction.atomic
def run_window_fail(*, window_id: int, error: str) -> None:
    """A window's settling raised: the window is marked failed (its lines were rolled back) and the
    run stops with a message saying which tickets and why; starting the period again retries it
    (what the other windows settled stays settled)."""
    window = SettlementRunWindow.objects.filter(pk=window_id).first()
    if window is None:
        return
    SettlementRunWindow.objects.filter(pk=window_id, state=WindowState.PENDING).update(
        state=WindowState.FAILED, error=error[:300], finished_at=timezone.now())
    message = _("Tickets %(low)s–%(high)s could not be settled (%(error)s). Run the period again to retry; "
                "what the other windows settled is kept.") % {"low": window.low, "high": window.high,
                                                                "error": error[:150]}
    SettlementRun.objects.filter(pk=window.run_id, is_running=True).update(is_running=False, error=message[:300])


def run_finish(*, run: SettlementRun) -> SettlementRun:
    """After the last window: the draft's rebate and bonus lines replaced, the totals summed, the
    run no longer running. Does nothing while a window is pending or when already finished."""
    with transaction.atomic():
        run = SettlementRun.objects.select_for_update().get(pk=run.pk)
        windows = SettlementRunWindow.objects.filter(run=run)
        if not run.is_running or windows.exclude(state=WindowState.DONE).exists():
            return run
        skipped = windows.aggregate(n=Sum("skipped"))["n"] or 0
        SettlementLine.objects.filter(run=run).delete()  # the draft's own rebate/bonus lines, replaced
        lines_store(_period_lines(run, active_rules(), InputCache()))
        in_run = SettlementLine.objects.filter(Q(run=run) | Q(period_date__gte=run.period_start,
                                                               period_date__lte=run.period_end, run=None))
        totals = in_run.aggregate(total=Sum("amount"), lines=Count("id"), tickets=Count("ticket", distinct=True))
        SettlementRun.objects.filter(pk=run.pk).update(
            progress=100, is_running=False, total=totals["total"] or Decimal("0"), line_count=totals["lines"],
            ticket_count=totals["tickets"], finished_at=timezone.now(),
            error=_("%(n)s tickets could not be settled (a bad mapped value).") % {"n": skipped} if skipped else "")
    return SettlementRun.objects.get(pk=run.pk)


def run_execute(*, run: SettlementRun, batch: int = BATCH) -> SettlementRun:
    """The whole run in this process, window after window (the demo seed, tests, the one-worker
    bench): the same window and finish services the Celery fan-out calls. Safe to run again: a
    ticket with lines is never settled twice."""
    if run.state != RunState.DRAFT:
        raise ValidationError(_("Only a draft run can be run."))
    SettlementRun.objects.filter(pk=run.pk).update(is_running=True)
    context = WindowContext()
    for window_id in run_plan(run=run, batch=batch):
        try:
            run_window_execute(window_id=window_id, context=context)
        except Exception as exc:
            run_window_fail(window_id=window_id, error=str(exc) or exc.__class__.__name__)
            raise
    return run_finish(run=run)


def _period_lines(run: SettlementRun, rules, cache: InputCache) -> list[tuple[SettlementLine, Steps]]:
    period_rules = [r for r in rules if r.kind in PERIOD_KINDS]
    out: list[tuple[SettlementLine, Steps]] = []
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
            out.append((SettlementLine(tenant_id=run.tenant_id, party_id=line.party_id, role=line.role,
                                       kind=line.kind, amount=line.amount, period_date=run.period_end, run=run),
                        line.breakdown()))
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
    if SettlementRunWindow.objects.filter(run=run, state=WindowState.FAILED).exists():
        raise ValidationError(_("Some tickets of this run could not be settled; run it again before reviewing it."))
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
    maps = dict(SettlementFieldMap.objects.values_list("template_id", "mapping"))
    items = dict(ServiceItem.objects.values_list("code", "name"))
    url = settings.SITE_URL.rstrip("/") + reverse("settlement-me")
    language = (run.tenant.settings or {}).get("language", settings.LANGUAGE_CODE)
    for party in Party.objects.filter(pk__in=per_party, user__isnull=False).select_related("user"):
        # The outbox row's subject is a ticket; a run has none, so the message carries its figures:
        # the total, then the first lines with their breakdown (in the tenant's language, as the
        # message itself), then the link to all of them.
        with translation.override(language):
            shown = (run_lines(run).filter(party=party).select_related("ticket", "breakdown")
                     .order_by("period_date", "id"))
            texts = (line_text(number=line.ticket.number if line.ticket else line.get_kind_display(),
                               item=_line_item(line, maps, items), role=line.role, amount=line.amount,
                               steps=line.breakdown.steps or []) for line in shown[:MAX_LINES])
            context = {"settlement_period": period,
                       "amount": _("¥%(amount)s (%(n)s lines)") % {"amount": f"{per_party[party.pk]:,.2f}",
                                                                  "n": counts[party.pk]},
                       "settlement_lines": lines_text(texts, count=counts[party.pk]), "settlement_url": url}
        event_emit(tenant=run.tenant, event=Event.SETTLEMENT_READY, users=[party.user], context=context,
                   occurrence=f"run{run.pk}:party{party.pk}")
    return run


@transaction.atomic
def run_pay(*, run: SettlementRun, actor) -> SettlementRun:
    if _role(actor) not in APPROVER_ROLES:
        raise ValidationError(_("Only finance can mark a run paid."))
    return _move(run, "pay", actor, paid_at=timezone.now())


def _line_item(line: SettlementLine, maps: dict, items: dict[str, str]) -> str:
    """The service item a ticket line was for (its mapped field's code, shown by name)."""
    if line.ticket is None:
        return ""
    key = (maps.get(line.ticket.template_id) or {}).get("service_item")
    code = (line.ticket.data or {}).get(key) if key else None
    return items.get(str(code), str(code)) if code else ""


def run_lines(run: SettlementRun):
    """The lines a run settles: the ticket and adjustment lines counted in its period, and its own."""
    return SettlementLine.objects.filter(Q(run=run) | Q(run=None, period_date__gte=run.period_start,
                                                        period_date__lte=run.period_end))
