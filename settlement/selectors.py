"""Settlement reads: runs, statements per party with drill-down, an engineer's earnings and
pending total, the regional ranking — each limited to what the reader may see (finance, admins
and managers see everything; a regional manager their regions; everyone else their own lines)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from scrm.models import Role
from scrm.selectors import granted_region_ids, membership_current

from .models import (
    LOCKED_STATES,
    Party,
    ServiceItem,
    ServicePrice,
    SettlementFieldMap,
    SettlementLine,
    SettlementRule,
    SettlementRun,
    SettlementRunWindow,
    WindowState,
    role_label,
)

ALL_SEEING = (Role.ADMIN, Role.MANAGER, Role.FINANCE)


def _role(user) -> str | None:
    if user.is_superuser:
        return Role.ADMIN
    membership = membership_current(user=user)
    return membership.role if membership else None


def can_manage(*, user) -> bool:
    return _role(user) in ALL_SEEING


def is_regional_manager(*, user) -> bool:
    return _role(user) == Role.REGIONAL_MANAGER


def can_approve(*, user) -> bool:
    return _role(user) in (Role.ADMIN, Role.FINANCE)


def visible_lines(*, user) -> QuerySet[SettlementLine]:
    """The lines the user may see: all (finance, admin, manager), their regions' (regional
    manager: the ticket's region or the party's store/region), else their own party's."""
    lines = SettlementLine.objects.all()
    role = _role(user)
    if role in ALL_SEEING:
        return lines
    if role == Role.REGIONAL_MANAGER:
        regions = granted_region_ids(user=user)
        return lines.filter(Q(ticket__region_id__in=regions) | Q(party__store__region_id__in=regions)
                            | Q(party__region_id__in=regions) | Q(party__user=user))
    return lines.filter(party__user=user)


def run_list() -> QuerySet[SettlementRun]:
    return SettlementRun.objects.select_related("created_by", "approved_by").order_by("-period_start")


def run_get(*, pk: int) -> SettlementRun | None:
    return SettlementRun.objects.filter(pk=pk).first()


def run_windows(*, run: SettlementRun) -> dict[str, int]:
    """How many id windows the run has, and how many are done or failed (one query)."""
    return SettlementRunWindow.objects.filter(run=run).aggregate(
        total=Count("id"), done=Count("id", filter=Q(state=WindowState.DONE)),
        failed=Count("id", filter=Q(state=WindowState.FAILED)))


def run_lines_q(run: SettlementRun) -> Q:
    return Q(run=run) | Q(run=None, period_date__gte=run.period_start, period_date__lte=run.period_end)


def run_statements(*, run: SettlementRun) -> list[dict[str, Any]]:
    """One row per party: kind, name, total, lines and tickets — the run's statements."""
    rows = (SettlementLine.objects.filter(run_lines_q(run)).values("party_id", "party__name", "party__kind")
            .annotate(total=Sum("amount"), lines=Count("id"), tickets=Count("ticket", distinct=True))
            .order_by("-total", "party__name"))
    return [{**row, "kind_label": role_label(row["party__kind"])} for row in rows]


def statement_lines(*, run: SettlementRun, party: Party) -> QuerySet[SettlementLine]:
    return (SettlementLine.objects.filter(run_lines_q(run), party=party).select_related("ticket", "breakdown")
            .order_by("period_date", "id"))


def party_get(*, pk: int) -> Party | None:
    return Party.objects.filter(pk=pk).first()


def my_earnings(*, user, limit: int = 100) -> dict[str, Any]:
    """The user's own lines (newest first) and the totals: pending = not yet in an approved
    or paid run's period, paid = in a paid one."""
    lines = SettlementLine.objects.filter(party__user=user)
    frozen = list(SettlementRun.objects.filter(state__in=LOCKED_STATES).values_list("period_start", "period_end",
                                                                                     "state"))

    def state_of(day: date) -> str:
        return next((state for start, end, state in frozen if start <= day <= end), "draft")

    rows = list(lines.select_related("ticket", "breakdown").order_by("-period_date", "-id")[:limit])
    for row in rows:
        row.state = state_of(row.period_date)  # type: ignore[attr-defined]
    locked_q = Q()
    for start, end, _state in frozen:
        locked_q |= Q(period_date__gte=start, period_date__lte=end)
    pending = (lines.exclude(locked_q) if frozen else lines).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    month_start = timezone.localdate().replace(day=1)
    month = lines.filter(period_date__gte=month_start).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    return {"lines": rows, "pending": pending, "month": month}


SPANS = {"day": 0, "week": 6, "month": 29}


def ranking(*, user, span: str) -> list[dict[str, Any]]:
    """Parties the user may see ranked by what they earned in the last day / 7 days / 30 days."""
    today = timezone.localdate()
    since = today - timedelta(days=SPANS.get(span, 29))
    rows = (visible_lines(user=user).filter(period_date__gte=since, period_date__lte=today)
            .values("party_id", "party__name", "party__kind")
            .annotate(total=Sum("amount"), tickets=Count("ticket", distinct=True))
            .order_by("-total", "party__name")[:100])
    return [{**row, "kind_label": role_label(row["party__kind"])} for row in rows]


def rule_list() -> QuerySet[SettlementRule]:
    return SettlementRule.objects.order_by("kind", "priority", "id")


def rule_get(*, pk: int) -> SettlementRule | None:
    return SettlementRule.objects.filter(pk=pk).first()


def price_book() -> QuerySet[ServiceItem]:
    return ServiceItem.objects.prefetch_related("prices").order_by("code")


def price_rows() -> QuerySet[ServicePrice]:
    """Every price version with its item, for the price book export."""
    return ServicePrice.objects.select_related("item").order_by("item__code", "effective_from")


def condition_data_fields() -> dict[str, str]:
    """Template field key → the settlement input it feeds, over the tenant's field maps: the
    `data.<key>` paths the rule form's condition builder offers (roles are people, not values)."""
    out: dict[str, str] = {}
    for mapping in SettlementFieldMap.objects.values_list("mapping", flat=True):
        for input_name, key in (mapping or {}).items():
            if isinstance(key, str) and key and not input_name.startswith("role:"):
                out.setdefault(key, input_name)
    return out
