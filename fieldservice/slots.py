"""The slots of 今日任务 that other capabilities fill: the parts to bring (spare parts: the
reservations still open on the day's tickets, and the warehouse to take each from) and the day's
earnings (settlement: the engineer's settlement lines dated that day). Both apps sit below
fieldservice, so their models are read here directly, one query per slot for the whole page."""

from decimal import Decimal

from django.db.models import Sum
from django.urls import reverse

from settlement.models import SettlementLine
from spareparts.models import Reservation, ReservationStatus


def parts_to_bring(*, ticket_ids) -> dict[int, list[tuple[str, int]]]:
    """{ticket id: [("part name · warehouse", quantity still to use)]} of the tickets' open
    reservations."""
    found: dict[int, list[tuple[str, int]]] = {}
    rows = (Reservation.objects.filter(ticket_id__in=list(ticket_ids), status=ReservationStatus.RESERVED)
            .values_list("ticket_id", "part__name", "warehouse__name", "quantity", "consumed").order_by("pk"))
    for ticket_id, part, warehouse, quantity, consumed in rows:
        if quantity > consumed:
            found.setdefault(ticket_id, []).append((f"{part} · {warehouse}", quantity - consumed))
    return found


def earnings_today(*, user, day) -> tuple[Decimal, str | None] | None:
    """(amount, the engineer's earnings page) of the settlement lines dated `day`, or None when
    they have none that day."""
    total = SettlementLine.objects.filter(party__user=user, period_date=day).aggregate(s=Sum("amount"))["s"]
    return None if total is None else (Decimal(total).quantize(Decimal("0.01")), reverse("settlement-me"))
