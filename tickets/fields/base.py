"""Constants and small parsing/checking helpers shared by every part of the custom-field package
(no Django forms, no database, no registry)."""

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import get_language, gettext

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
LANGS = ("zh-hans", "en")
AUDIENCES = ("public", "staff")
PUBLIC_MODES = ("edit", "view", "hidden")
STAFF_MODES = ("edit", "view")
# Which field types each prefill source may fill: a phone number cannot land in a money field.
PREFILL_SOURCES = {
    "customer.name": ("text", "textarea"),
    "customer.phone": ("phone", "text"),
    "customer.address": ("address", "text", "textarea"),
    "opportunity.amount": ("money", "decimal"),
    "opportunity.title": ("text", "textarea"),
}
FIELD_SETTINGS = frozenset(
    {"key", "type", "label", "help", "required", "default", "validation", "options", "public", "staff", "prefill"}
)
MAX_FIELDS = 100
MAX_CHOICES = 200
MAX_TREE_NODES = 5000
MAX_TREE_DEPTH = 6
MAX_LIST_ITEMS = 200
MAX_REGEX_LENGTH = 200
INTEGER_LIMIT = 10**15  # beyond this JavaScript clients lose integer precision
DECIMAL_LIMIT = Decimal(10) ** 15
MONEY_LIMIT = Decimal(10) ** 12
FEN = Decimal("0.01")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp")
FILE_EXTENSIONS = ("pdf", "doc", "docx", "xls", "xlsx", "txt", "csv", "zip", "jpg", "jpeg", "png")
# Files a browser could run or render as a page from our media domain; never accepted, whatever
# a template's builder lists.
BLOCKED_EXTENSIONS = frozenset(
    {"htm", "html", "xhtml", "svg", "js", "mjs", "exe", "bat", "cmd", "com", "sh", "php", "jsp", "asp",
     "aspx", "msi", "dll", "jar", "vbs", "ps1", "scr"}
)
_TRUE = frozenset({"true", "1", "on", "yes", "y", "是"})
_FALSE = frozenset({"false", "0", "off", "no", "n", "否"})
_INT_RE = re.compile(r"[+-]?\d{1,18}")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?")
_TIME_RE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_EXTENSION_RE = re.compile(r"^[a-z0-9]{1,10}$")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _lang():
    """The label language to show: "en" for any English, else Chinese (the default)."""
    return "en" if (get_language() or "").lower().startswith("en") else "zh-hans"


def _text(labels, fallback=""):
    if not isinstance(labels, Mapping):
        return str(labels) if labels else fallback
    return labels.get(_lang()) or labels.get("zh-hans") or fallback


def _invalid(message):
    return ValidationError(message, code="invalid")


def _blank(raw):
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, list | tuple):
        return all(_blank(item) for item in raw)
    if isinstance(raw, Mapping):
        return all(_blank(item) for item in raw.values())
    return False


def _is_empty(value):
    return value is None or value in ("", [], {})


def _to_int(raw):
    message = gettext("Enter a whole number.")
    if isinstance(raw, bool):
        raise _invalid(message)
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        if not raw.is_integer():
            raise _invalid(message)
        value = int(raw)
    elif isinstance(raw, Decimal):
        if not raw.is_finite() or raw != raw.to_integral_value():
            raise _invalid(message)
        value = int(raw)
    elif isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        raise _invalid(message)
    if abs(value) >= INTEGER_LIMIT:
        raise _invalid(gettext("Enter a number smaller than %(limit)s in absolute value.") % {"limit": INTEGER_LIMIT})
    return value


def _to_decimal(raw):
    message = gettext("Enter a number.")
    if isinstance(raw, bool):
        raise _invalid(message)
    if isinstance(raw, int | Decimal):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))  # repr is the shortest exact spelling: 0.1 stays 0.1
    elif isinstance(raw, str):
        text = raw.strip()
        if _THOUSANDS_RE.fullmatch(text):  # "1,280.50"; a lone "1,5" is not a thousands group
            text = text.replace(",", "")
        if len(text) > 40 or not _DECIMAL_RE.fullmatch(text):
            raise _invalid(message)
        value = Decimal(text)
    else:
        raise _invalid(message)
    if not value.is_finite():
        raise _invalid(message)
    return value


def _places(value):
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _decimal_str(value):
    """The canonical stored spelling: plain digits, no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _parse_date(raw):
    if isinstance(raw, datetime):
        raise _invalid(gettext("Enter a valid date."))
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        text = raw.strip().replace("/", "-")
        if _DATE_RE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
    raise _invalid(gettext("Enter a valid date."))


def _parse_datetime(raw):
    """An aware datetime; a naive input is read in the active time zone (Asia/Shanghai)."""
    value = None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip().replace("/", "-")
        if _DATETIME_RE.fullmatch(text):
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                value = None
    if value is None:
        raise _invalid(gettext("Enter a valid date/time."))
    if timezone.is_naive(value):
        try:
            value = timezone.make_aware(value)
        except ValueError as exc:  # a wall-clock time skipped by a DST change
            raise _invalid(gettext("Enter a valid date/time.")) from exc
    return timezone.localtime(value).replace(microsecond=0)


def _parse_time(raw):
    if isinstance(raw, time):
        return raw.replace(microsecond=0, tzinfo=None)
    if isinstance(raw, str) and _TIME_RE.fullmatch(raw.strip()):
        text = raw.strip()
        try:
            return time.fromisoformat(text if len(text.split(":")[0]) == 2 else "0" + text)
        except ValueError:
            pass
    raise _invalid(gettext("Enter a valid time."))


def _string(raw, *, multiline=False):
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise _invalid(gettext("Enter text."))
    value = str(raw)
    if "\x00" in value:
        raise _invalid(gettext("Null characters are not allowed."))
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.strip()


def _check_length(field, value):
    rules = field["validation"]
    if "max_length" in rules and len(value) > rules["max_length"]:
        raise ValidationError(
            gettext("Ensure this value has at most %(limit)d characters (it has %(count)d).")
            % {"limit": rules["max_length"], "count": len(value)},
            code="max_length",
        )
    if "min_length" in rules and len(value) < rules["min_length"]:
        raise ValidationError(
            gettext("Ensure this value has at least %(limit)d characters (it has %(count)d).")
            % {"limit": rules["min_length"], "count": len(value)},
            code="min_length",
        )


def _bound(type_name, parse, raw):
    """A min/max setting as a comparable value; "today" and "now" move with the clock. `parse` is
    the type's FieldType.parse_bound (passed in: the registry is built on these helpers)."""
    if raw == "today" and type_name == "date":
        return timezone.localdate()
    if raw == "now" and type_name == "datetime":
        return timezone.localtime().replace(microsecond=0)
    return parse(raw)


def _show_bound(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return _decimal_str(value)
    return str(value)


def _check_range(field, value, parse):
    """Enforce validation.min/max; `parse` is the field type's FieldType.parse_bound."""
    type_name = field["type"]
    rules = field["validation"]
    if rules.get("min") is not None:
        low = _bound(type_name, parse, rules["min"])
        if value < low:
            raise ValidationError(
                gettext("Ensure this value is greater than or equal to %(limit_value)s.")
                % {"limit_value": _show_bound(low)},
                code="min_value",
            )
    if rules.get("max") is not None:
        high = _bound(type_name, parse, rules["max"])
        if value > high:
            raise ValidationError(
                gettext("Ensure this value is less than or equal to %(limit_value)s.")
                % {"limit_value": _show_bound(high)},
                code="max_value",
            )


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
