"""Structured conditions (never eval): `{"all": [{"field": "opportunity.amount", "op": ">",
"value": 500000}, …]}`, `{"any": […]}`, `{"not": {…}}`. One module evaluates them in Python over a
plain context dict and compiles them to a Django Q where they must run in SQL."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

OPS = ("=", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "empty", "not_empty")
# Context paths a condition may read, and the ORM path each compiles to on Ticket.
FIELDS = {
    "priority": "priority",
    "source": "source",
    "status": "status",
    "category": "category__code",
    "template": "template__slug",
    "customer.tier": "customer__tier",
    "customer.tags": "customer__tags__name",
    "opportunity.amount": "opportunity__amount",
    "opportunity.stage": "opportunity__stage",
    "store.code": "store__code",
    "region.code": "region__code",
    "region.settlement_class": "region__settlement_class",
}
MAX_DEPTH = 6


def _known(path):
    return path in FIELDS or (path.startswith("data.") and len(path) > 5)


def condition_check(condition, depth=0, *, fields=None):
    """Raise ValidationError unless the condition is well formed (empty = always true). `fields`:
    the paths allowed instead of the ticket's (a trigger's subject offers its own)."""
    if condition in (None, {}):
        return
    if depth > MAX_DEPTH:
        raise ValidationError(_("Conditions nest too deeply."))
    if not isinstance(condition, dict) or (len(condition) != 1 and "field" not in condition):
        raise ValidationError(_("A condition is {\"all\": […]}, {\"any\": […]}, {\"not\": …} or a comparison."))
    if "all" in condition or "any" in condition:
        items = condition.get("all", condition.get("any"))
        if not isinstance(items, list) or not items:
            raise ValidationError(_("“all” and “any” need a non-empty list."))
        for item in items:
            condition_check(item, depth + 1, fields=fields)
        return
    if "not" in condition:
        condition_check(condition["not"], depth + 1, fields=fields)
        return
    field, op = condition.get("field"), condition.get("op")
    if not isinstance(field, str) or not (_known(field) if fields is None else field in fields):
        raise ValidationError(_("Unknown field “%(field)s” in a condition.") % {"field": field})
    if op not in OPS:
        raise ValidationError(_("Unknown operator “%(op)s” in a condition.") % {"op": op})
    if op in ("in", "not_in") and not isinstance(condition.get("value"), list):
        raise ValidationError(_("“%(op)s” needs a list of values.") % {"op": op})


def _number(value):
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _compare(actual, op, expected):
    if op == "empty":
        return actual in (None, "", [], {})
    if op == "not_empty":
        return actual not in (None, "", [], {})
    if op in ("in", "not_in"):
        hit = (set(map(str, actual)) & set(map(str, expected))) if isinstance(actual, list) else (
            str(actual) in set(map(str, expected)))
        return bool(hit) if op == "in" else not hit
    if op == "contains":
        return str(expected) in (actual if isinstance(actual, list) else str(actual or ""))
    a, b = _number(actual), _number(expected)
    if a is None or b is None:
        a, b = str(actual if actual is not None else ""), str(expected)
        if op in (">", ">=", "<", "<="):
            return False  # ordering only means something for numbers
    return {"=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def condition_eval(condition, context):
    """True/False for a plain context: {"priority": …, "opportunity.amount": …, "data": {…}}."""
    if condition in (None, {}):
        return True
    if "all" in condition:
        return all(condition_eval(c, context) for c in condition["all"])
    if "any" in condition:
        return any(condition_eval(c, context) for c in condition["any"])
    if "not" in condition:
        return not condition_eval(condition["not"], context)
    field = condition["field"]
    actual = context.get("data", {}).get(field[5:]) if field.startswith("data.") else context.get(field)
    return _compare(actual, condition["op"], condition.get("value"))


def condition_q(condition):
    """The same condition as a Q over Ticket, for sweeps and reports."""
    if condition in (None, {}):
        return Q()
    if "all" in condition:
        q = Q()
        for c in condition["all"]:
            q &= condition_q(c)
        return q
    if "any" in condition:
        q = Q(pk__in=[])
        for c in condition["any"]:
            q |= condition_q(c)
        return q
    if "not" in condition:
        return ~condition_q(condition["not"])
    field, op, value = condition["field"], condition["op"], condition.get("value")
    path = f"data__{field[5:]}" if field.startswith("data.") else FIELDS[field]
    lookups = {"=": "", "!=": "", ">": "__gt", ">=": "__gte", "<": "__lt", "<=": "__lte", "in": "__in",
               "not_in": "__in", "contains": "__contains"}
    if op == "empty":
        return Q(**{f"{path}__isnull": True}) | Q(**{path: ""})
    if op == "not_empty":
        return ~(Q(**{f"{path}__isnull": True}) | Q(**{path: ""}))
    q = Q(**{f"{path}{lookups[op]}": value})
    return ~q if op in ("!=", "not_in") else q


def ticket_context(ticket):
    """The plain context a ticket offers to conditions."""
    opportunity, customer = ticket.opportunity, ticket.customer
    return {
        "priority": ticket.priority, "source": ticket.source, "status": ticket.status,
        "category": ticket.category.code if ticket.category_id else "",
        "template": ticket.template.slug if ticket.template_id else "",
        "customer.tier": customer.tier if customer else "",
        "customer.tags": [t.name for t in customer.tags.all()] if customer else [],
        "opportunity.amount": opportunity.amount if opportunity else None,
        "opportunity.stage": opportunity.stage if opportunity else "",
        "store.code": ticket.store.code if ticket.store_id else "",
        "region.code": ticket.region.code if ticket.region_id else "",
        "region.settlement_class": ticket.region.settlement_class if ticket.region_id else "",
        "data": ticket.data or {},
    }
