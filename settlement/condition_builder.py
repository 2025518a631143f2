"""The rule form's condition builder: rows of (field, operator, value) joined by all/any ↔ the
structured JSON `workflow/conditions.py` evaluates. Pure (no queries): the caller passes the
tenant's mapped template fields (`data_fields`), so the form stays thin and this is testable alone."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from workflow.conditions import FIELDS as CONDITION_FIELDS
from workflow.conditions import OPS

MAX_ROWS = 5
MAX_VALUE = 200  # characters of one row's value
MAX_LIST = 50  # items of an "in" / "not in" list
JOINS = ("all", "any")
CLASSES = ("A", "B", "C")

# Context paths of the ticket every rule may test, with the kind of value each holds. Only paths
# workflow.conditions knows (asserted below), so the builder never produces a field it refuses.
TICKET_FIELDS: tuple[tuple[str, Any, str], ...] = (
    ("region.settlement_class", gettext_lazy("Region class (A/B/C)"), "class"),
    ("customer.tier", gettext_lazy("Customer tier"), "text"),
    ("priority", gettext_lazy("Priority"), "text"),
    ("region.code", gettext_lazy("Region code"), "text"),
    ("store.code", gettext_lazy("Store code"), "text"),
    ("category", gettext_lazy("Category code"), "text"),
    ("template", gettext_lazy("Template"), "text"),
    ("source", gettext_lazy("Source"), "text"),
    ("customer.tags", gettext_lazy("Customer tags"), "text"),
    ("opportunity.amount", gettext_lazy("Opportunity amount"), "number"),
)
assert all(path in CONDITION_FIELDS for path, _label, _kind in TICKET_FIELDS)

# Settlement inputs a template maps to one of its fields (SettlementFieldMap) that a condition
# can test as `data.<field key>`; location, milestones and roles are not single values.
INPUT_FIELDS: dict[str, tuple[Any, str]] = {
    "service_item": (gettext_lazy("Service item"), "text"),
    "fee": (gettext_lazy("Fee"), "number"),
    "quantity": (gettext_lazy("Quantity"), "number"),
    "hours": (gettext_lazy("Working hours"), "number"),
    "altitude_m": (gettext_lazy("Altitude (m)"), "number"),
    "distance_km": (gettext_lazy("Distance (km)"), "number"),
    "night": (gettext_lazy("Night service"), "bool"),
    "urgent": (gettext_lazy("Urgent ticket"), "bool"),
    "weekend": (gettext_lazy("Weekend"), "bool"),
    "height_work": (gettext_lazy("Work at height"), "bool"),
}

OP_LABELS: dict[str, Any] = {
    "=": gettext_lazy("is"), "!=": gettext_lazy("is not"), ">": gettext_lazy("more than"),
    ">=": gettext_lazy("at least"), "<": gettext_lazy("less than"), "<=": gettext_lazy("at most"),
    "in": gettext_lazy("is one of"), "not_in": gettext_lazy("is none of"), "contains": gettext_lazy("contains"),
    "empty": gettext_lazy("is empty"), "not_empty": gettext_lazy("is filled"),
}
assert set(OP_LABELS) == set(OPS)
# Which operators mean something for each kind of value (ordering is numbers only: the evaluator
# answers False for "<" on text, so offering it would build a rule that never applies).
KIND_OPS = {
    "number": ("=", "!=", ">", ">=", "<", "<=", "in", "not_in", "empty", "not_empty"),
    "text": ("=", "!=", "in", "not_in", "contains", "empty", "not_empty"),
    "class": ("=", "!=", "in", "not_in"),
    "bool": ("=", "!="),
}
NO_VALUE = ("empty", "not_empty")
TRUE, FALSE = ("true", "yes", "1", "是"), ("false", "no", "0", "否")


def field_catalogue(data_fields: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Path → (label, kind) the builder offers: the ticket's paths, then `data.<key>` for each
    mapped input (`data_fields`: field key → settlement input, from the tenant's field maps)."""
    out: dict[str, tuple[Any, str]] = {path: (label, kind) for path, label, kind in TICKET_FIELDS}
    for key, input_name in sorted(data_fields.items()):
        if input_name in INPUT_FIELDS:
            label, kind = INPUT_FIELDS[input_name]
            out[f"data.{key}"] = (f"{label} · {key}", kind)
    return out


def _scalar(raw: str, kind: str) -> Any:
    """One typed value, or raise ValueError with the message for the row."""
    if kind == "number":
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise ValueError(_("“%(value)s” is not a number.") % {"value": raw}) from None
        if not number.is_finite() or abs(number) > Decimal("1000000000000"):
            raise ValueError(_("“%(value)s” is not a number in range.") % {"value": raw})
        # JSON has no decimal: an integral value is stored as an int, else as its shortest float
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "bool":
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise ValueError(_("Enter true or false."))
    if kind == "class":
        if raw.upper() not in CLASSES:
            raise ValueError(_("A region class is A, B or C."))
        return raw.upper()
    return raw


def row_condition(field: str, op: str, raw: str, catalogue: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """One builder row → one comparison; ValueError with a message naming what is wrong."""
    if field not in catalogue:
        raise ValueError(_("Unknown field “%(field)s”.") % {"field": field})
    kind = catalogue[field][1]
    if op not in OPS:
        raise ValueError(_("Unknown operator “%(op)s”.") % {"op": op})
    if op not in KIND_OPS[kind]:
        raise ValueError(_("“%(op)s” does not apply to this field.") % {"op": OP_LABELS[op]})
    raw = (raw or "").strip()
    if len(raw) > MAX_VALUE:
        raise ValueError(_("The value is longer than %(n)s characters.") % {"n": MAX_VALUE})
    if op in NO_VALUE:
        if raw:
            raise ValueError(_("“%(op)s” takes no value.") % {"op": OP_LABELS[op]})
        return {"field": field, "op": op}
    if not raw:
        raise ValueError(_("Enter a value."))
    if op in ("in", "not_in"):
        items = [part.strip() for part in raw.replace("，", ",").split(",") if part.strip()]
        if not items or len(items) > MAX_LIST:
            raise ValueError(_("List between 1 and %(n)s values, separated by commas.") % {"n": MAX_LIST})
        return {"field": field, "op": op, "value": [_scalar(item, kind) for item in items]}
    return {"field": field, "op": op, "value": _scalar(raw, kind)}


def rows_condition(join: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Checked comparisons → the stored condition: none → {}, one → itself, more → {join: [...]}."""
    if not rows:
        return {}
    if len(rows) == 1:
        return rows[0]
    return {join if join in JOINS else "all": rows}


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def condition_rows(condition: Any, catalogue: Mapping[str, tuple[Any, str]]) -> tuple[str, list[dict[str, str]]] | None:
    """A stored condition → (join, rows of field/op/value text) when the builder can show it
    exactly; None when it cannot (nested groups, "not", a field it does not offer, too many rows)."""
    if condition in (None, {}):
        return "all", []
    if not isinstance(condition, dict):
        return None
    join, items = "all", [condition]
    for key in JOINS:
        if key in condition and len(condition) == 1:
            join, items = key, condition[key]
    if not isinstance(items, list) or not items or len(items) > MAX_ROWS:
        return None
    rows = []
    for item in items:
        if not isinstance(item, dict) or set(item) - {"field", "op", "value"} or item.get("field") not in catalogue:
            return None
        op, value = item.get("op"), item.get("value")
        if op not in KIND_OPS[catalogue[item["field"]][1]]:
            return None
        if op in NO_VALUE:
            text: str | None = ""
        elif op in ("in", "not_in"):
            parts = [_text(v) for v in value] if isinstance(value, list) else [None]
            text = None if None in parts else ", ".join(p for p in parts if p is not None)
        else:
            text = _text(value)
        if text is None:
            return None
        rows.append({"field": item["field"], "op": op, "value": text})
    return join, rows
