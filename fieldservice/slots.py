"""The slots of 今日任务 that other capabilities fill: the parts to bring (spare parts: the
reservations still open on the day's tickets, and the warehouse to take each from) and the day's
earnings (settlement: the engineer's settlement lines dated that day). Both apps sit below
fieldservice, so their models are read here directly, one query per slot for the whole page."""

from decimal import Decimal

from django.db.models import Min, Sum
from django.urls import reverse

from settlement.models import SettlementLine
from spareparts.models import Movement


def parts_to_bring(*, ticket_ids) -> dict[int, list[tuple[str, int]]]:
    """{ticket id: [("part name · warehouse", quantity still to use)]} of what the tickets still
    hold (the sum of their ledger lines' reserved_delta per part and warehouse)."""
    found: dict[int, list[tuple[str, int]]] = {}
    rows = (Movement.objects.filter(ticket_id__in=list(ticket_ids)).exclude(reserved_delta=0)
            .values("ticket_id", "part_id", "warehouse_id", "part__name", "warehouse__name")
            .annotate(held=Sum("reserved_delta"), first=Min("pk")).filter(held__gt=0).order_by("first"))
    for row in rows:
        found.setdefault(row["ticket_id"], []).append((f"{row['part__name']} · {row['warehouse__name']}", row["held"]))
    return found


def earnings_today(*, user, day) -> tuple[Decimal, str | None] | None:
    """(amount, the engineer's earnings page) of the settlement lines dated `day`, or None when
    they have none that day."""
    total = SettlementLine.objects.filter(party__user=user, period_date=day).aggregate(s=Sum("amount"))["s"]
    return None if total is None else (Decimal(total).quantize(Decimal("0.01")), reverse("settlement-me"))
