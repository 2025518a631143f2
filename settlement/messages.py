"""The per-line breakdown an engineer reads in the approval message (WeCom, SMS, the bell): one
short text line per settlement line from its stored breakdown — service item, base, each rule's
change (class premium, altitude, surcharges, distance), the line's total — capped, so a month of
work still fits one message; the full statement is a link."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from .calculator import BILLING_KINDS
from .models import role_label

MAX_LINES = 8  # WeCom text cards truncate long bodies; the link shows the rest
MAX_CHARS = 1200
_BASE_RULES = {"price_book", *BILLING_KINDS}


def _money(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return Decimal("0")


def _plain(text: Any) -> str:
    """A weight as typed (3, 2.5), without the stored figure's trailing zeros (10.00)."""
    try:
        return format(Decimal(str(text)).normalize(), "f")
    except (InvalidOperation, ValueError):
        return str(text)


def _signed(value: Decimal) -> str:
    return f"+{value:,.2f}" if value >= 0 else f"−{-value:,.2f}"


def line_text(*, number: str, item: str, role: str, amount: Decimal, steps: Sequence[Mapping[str, Any]]) -> str:
    """"WX-0001 上门维修: 基价 200.00 · 大区系数 +30.00 · 加急 +69.00 = ¥299.00"."""
    parts: list[str] = []
    for step in steps:
        rule, kind = str(step.get("rule", "")), str(step.get("kind", ""))
        before, after = _money(step.get("before")), _money(step.get("after"))
        if rule in _BASE_RULES or (kind in BILLING_KINDS and before == 0):
            parts.append(_("base %(amount)s") % {"amount": f"{after:,.2f}"})
        elif kind == "split":
            detail = step.get("detail") or {}
            parts.append(_("%(rule)s: %(role)s %(weight)s/%(of)s") % {
                "rule": rule, "role": role_label(str(detail.get("role", role))),
                "weight": _plain(detail.get("weight", "")), "of": _plain(detail.get("of_weights", ""))})
        elif kind == "parts":
            parts.append(_("parts at cost %(amount)s") % {"amount": f"{after:,.2f}"})
        elif kind in ("rounding", "adjustment"):
            continue
        elif after != before:
            parts.append(f"{rule} {_signed(after - before)}")
    head = " ".join(p for p in (number, item) if p)
    return f"{head}: {' · '.join(parts)} = ¥{amount:,.2f}" if parts else f"{head}: ¥{amount:,.2f}"


def lines_text(texts: Iterable[str], *, count: int) -> str:
    """The lines, at most MAX_LINES and MAX_CHARS, with how many more the statement holds."""
    out: list[str] = []
    size = 0
    for text in texts:
        if len(out) >= MAX_LINES or size + len(text) > MAX_CHARS:
            break
        out.append(text)
        size += len(text) + 1
    if count > len(out):
        out.append(_("… and %(n)s more lines in the full statement.") % {"n": count - len(out)})
    return "\n".join(out)
