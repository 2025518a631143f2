"""Custom fields of ticket templates: the one schema (what a field definition may say), the one
cleaning path from submitted input to stored JSON, and the form and display built on them."""

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from pathlib import PurePath
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import get_language, gettext, gettext_lazy, ngettext
from django_scopes import get_scope

from scrm.models import Customer, Membership, Region, StaffProfile, Store
from scrm.phone import phone_normalize

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


# ---------------------------------------------------------------------------------------------
# Small helpers


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


def _bound(ftype, raw):
    """A min/max setting as a comparable value; "today" and "now" move with the clock."""
    if raw == "today" and ftype.name == "date":
        return timezone.localdate()
    if raw == "now" and ftype.name == "datetime":
        return timezone.localtime().replace(microsecond=0)
    return ftype.parse_bound(raw)


def _show_bound(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return _decimal_str(value)
    return str(value)


def _check_range(field, value):
    ftype = FIELD_TYPES[field["type"]]
    rules = field["validation"]
    if rules.get("min") is not None:
        low = _bound(ftype, rules["min"])
        if value < low:
            raise ValidationError(
                gettext("Ensure this value is greater than or equal to %(limit_value)s.")
                % {"limit_value": _show_bound(low)},
                code="min_value",
            )
    if rules.get("max") is not None:
        high = _bound(ftype, rules["max"])
        if value > high:
            raise ValidationError(
                gettext("Ensure this value is less than or equal to %(limit_value)s.")
                % {"limit_value": _show_bound(high)},
                code="max_value",
            )


# ---------------------------------------------------------------------------------------------
# Cleaners: (normalised field, non-blank raw input) -> stored JSON value, or ValidationError.


def _clean_text(field, raw):
    value = _string(raw)
    _check_length(field, value)
    regex = field["validation"].get("regex")
    # Inputs are short (max_length) and regexes at most 200 characters: the cost of a bad
    # pattern stays bounded without a regex timeout, which Python's re does not have.
    if regex and not re.fullmatch(regex, value):
        raise _invalid(gettext("Enter a value in the expected format."))
    return value


def _clean_textarea(field, raw):
    value = _string(raw, multiline=True)
    _check_length(field, value)
    return value


def _clean_integer(field, raw):
    value = _to_int(raw)
    _check_range(field, value)
    return value


def _clean_decimal(field, raw):
    value = _to_decimal(raw)
    if abs(value) >= DECIMAL_LIMIT:
        raise _invalid(gettext("Enter a number smaller than %(limit)s in absolute value.") % {"limit": "10^15"})
    places = field["validation"].get("decimal_places", 6)
    if _places(value) > places:
        raise _invalid(
            ngettext(
                "Ensure that there are no more than %(max)s decimal place.",
                "Ensure that there are no more than %(max)s decimal places.",
                places,
            )
            % {"max": places}
        )
    _check_range(field, value)
    return _decimal_str(value)


def _clean_money(field, raw):
    if isinstance(raw, str):
        raw = raw.strip().lstrip("¥￥").strip()
    value = _to_decimal(raw)
    if _places(value) > 2:
        raise _invalid(gettext("Enter an amount in yuan with at most 2 decimal places (fen)."))
    if abs(value) >= MONEY_LIMIT:
        raise _invalid(gettext("Enter an amount below 1,000,000,000,000 yuan."))
    _check_range(field, value)
    return format(value.quantize(FEN) if value else Decimal("0.00"), "f")


def _clean_date(field, raw):
    value = _parse_date(raw)
    _check_range(field, value)
    return value.isoformat()


def _clean_datetime(field, raw):
    value = _parse_datetime(raw)
    _check_range(field, value)
    return value.isoformat()


def _clean_time(field, raw):
    value = _parse_time(raw)
    _check_range(field, value)
    return value.isoformat()


def _choice_value(raw):
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _invalid(gettext("Select a valid choice."))
    return str(raw).strip()


def _not_a_choice(value):
    return _invalid(
        gettext("Select a valid choice. %(value)s is not one of the available choices.") % {"value": value}
    )


def _clean_choice(field, raw):
    value = _choice_value(raw)
    if value not in {choice["value"] for choice in field["options"]["choices"]}:
        raise _not_a_choice(value)
    return value


def _clean_multiselect(field, raw):
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list | tuple) or len(raw) > MAX_LIST_ITEMS:
        raise _invalid(gettext("Enter a list of values."))
    picked = {_choice_value(item) for item in raw} - {""}
    allowed = [choice["value"] for choice in field["options"]["choices"]]
    unknown = sorted(picked - set(allowed))
    if unknown:
        raise _not_a_choice(unknown[0])
    return [value for value in allowed if value in picked]  # choice order: one spelling per set


def _clean_checkbox(field, raw):
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise _invalid(gettext("Enter true or false."))


def _clean_cascade(field, raw):
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):  # the form's <option> values are JSON paths
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise _invalid(gettext("Enter a list of values.")) from exc
        else:
            raw = [text]
    if not isinstance(raw, list | tuple) or len(raw) > MAX_TREE_DEPTH:
        raise _invalid(gettext("Enter a list of values."))
    path = [_choice_value(part) for part in raw]
    while path and not path[-1]:
        path.pop()  # a form may leave the deeper levels unselected
    nodes = field["options"]["tree"]
    for depth, part in enumerate(path):
        node = next((n for n in nodes if n["value"] == part), None)
        if node is None:
            raise _invalid(
                gettext("“%(path)s” is not one of the available options.") % {"path": " / ".join(path[: depth + 1])}
            )
        nodes = node.get("children", [])
    return path or None


def _clean_phone(field, raw):
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _invalid(gettext("Enter a phone number."))
    return phone_normalize(str(raw))


def _clean_email(field, raw):
    value = _string(raw)
    if len(value) > 254:
        raise _invalid(gettext("Enter a valid email address."))
    EmailValidator()(value)
    return value


def _clean_url(field, raw):
    value = _string(raw)
    if len(value) > 2000:
        raise _invalid(gettext("Enter a valid URL."))
    URLValidator(schemes=["http", "https"])(value)
    return value


def _clean_id(field, raw):
    try:
        value = _to_int(raw)
    except ValidationError as exc:
        raise _invalid(gettext("Select a valid choice. That choice is not one of the available choices.")) from exc
    if value < 1:
        raise _invalid(gettext("Select a valid choice. That choice is not one of the available choices."))
    return value


def _clean_address(field, raw):
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, Mapping) or set(raw) - {"text", "lat", "lng"}:
        raise _invalid(gettext("Enter an address as text with optional latitude and longitude."))
    text = _string(raw.get("text") or "")
    lat, lng = (None if _blank(raw.get(name)) else raw.get(name) for name in ("lat", "lng"))
    if not text:
        raise _invalid(gettext("Enter the address text."))
    if len(text) > 200:
        raise _invalid(
            gettext("Ensure this value has at most %(limit)d characters (it has %(count)d).")
            % {"limit": 200, "count": len(text)}
        )
    if (lat is None) != (lng is None):
        raise _invalid(gettext("Give both latitude and longitude, or neither."))
    value = {"text": text}
    if lat is not None:
        lat, lng = _to_decimal(lat), _to_decimal(lng)
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise _invalid(gettext("Latitude must be within ±90 and longitude within ±180."))
        value["lat"], value["lng"] = float(round(lat, 6)), float(round(lng, 6))
    return value


def _clean_rating(field, raw):
    value = _to_int(raw)
    scale = field["options"]["scale"]
    if not 1 <= value <= scale:
        raise _invalid(gettext("Choose a rating from 1 to %(scale)d.") % {"scale": scale})
    return value


# ---------------------------------------------------------------------------------------------
# Pickers: the only part that reads the database, always inside one tenant's scope.


def _tenant_id():
    """The tenant of the open scope. Refuses to run unscoped or with scopes switched off, where
    a picker would accept (and show) another tenant's rows."""
    current = get_scope()
    tenant = current.get("tenant")
    if not current.get("_enabled", False) or tenant is None or isinstance(tenant, list | tuple):
        raise RuntimeError("Picker fields need one tenant scope: call inside tenant_scope(tenant).")
    return getattr(tenant, "pk", tenant)


def _staff_labels(ids, *, active_only):
    tenant_id = _tenant_id()
    memberships = Membership.objects.filter(tenant_id=tenant_id).select_related("user")
    if ids is not None:
        memberships = memberships.filter(user_id__in=ids)
    if active_only:
        memberships = memberships.filter(is_active=True, user__is_active=True)
    profiles = StaffProfile.objects.filter(tenant_id=tenant_id)
    if ids is not None:
        profiles = profiles.filter(user_id__in=ids)
    names = dict(profiles.values_list("user_id", "display_name"))
    return {
        m.user_id: names.get(m.user_id) or m.user.get_full_name() or m.user.get_username() for m in memberships
    }


def _picker_labels(kind, ids=None, *, active_only=False):
    """{id: name} of the given ids (or all) of the tenant in scope."""
    if kind == "staff":
        return _staff_labels(ids, active_only=active_only)
    model = {"region": Region, "store": Store, "customer": Customer}[kind]
    rows = model.objects.filter(tenant_id=_tenant_id())
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    if active_only and kind == "store":
        rows = rows.filter(is_active=True)
    order = "code" if kind in ("region", "store") else "name"
    return dict(rows.order_by(order, "pk").values_list("pk", "name"))


def _picker_choices(field):
    labels = _picker_labels(field["type"], active_only=True)
    choices = sorted(labels.items(), key=lambda item: item[1]) if field["type"] == "staff" else labels.items()
    return [("", "---------"), *choices]


# ---------------------------------------------------------------------------------------------
# Widgets (Bootstrap 5 classes, HTML5 input types)


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True

    def value_from_datadict(self, data, files, name):
        return files.getlist(name) if hasattr(files, "getlist") else _as_list(files.get(name))


class AddressWidget(forms.MultiWidget):
    """Address text plus optional latitude/longitude; its value is the stored dict shape."""

    def __init__(self, attrs=None):
        number = {"class": "form-control", "step": "any"}
        super().__init__(
            [
                forms.TextInput({"class": "form-control", "maxlength": 200, "placeholder": gettext("Address")}),
                forms.NumberInput({**number, "min": -90, "max": 90, "placeholder": gettext("Latitude")}),
                forms.NumberInput({**number, "min": -180, "max": 180, "placeholder": gettext("Longitude")}),
            ],
            attrs,
        )

    def decompress(self, value):
        if isinstance(value, Mapping):
            return [value.get("text"), value.get("lat"), value.get("lng")]
        return [value, None, None]

    def value_from_datadict(self, data, files, name):
        text, lat, lng = super().value_from_datadict(data, files, name)
        return {"text": text or "", "lat": lat, "lng": lng}


def _choice_options(field):
    return [(c["value"], _text(c["label"], c["value"])) for c in field["options"]["choices"]]


def _leaf_paths(nodes, prefix=()):
    for node in nodes:
        path = (*prefix, node)
        if node.get("children"):
            yield from _leaf_paths(node["children"], path)
        else:
            yield path


def _widget_text(field):
    return forms.TextInput({"class": "form-control", "maxlength": field["validation"]["max_length"]})


def _widget_textarea(field):
    return forms.Textarea({"class": "form-control", "rows": 4, "maxlength": field["validation"]["max_length"]})


def _number_attrs(field, step):
    attrs = {"class": "form-control", "step": step, "inputmode": "decimal" if step != "1" else "numeric"}
    for name in ("min", "max"):
        if field["validation"].get(name) is not None:
            attrs[name] = field["validation"][name]
    return attrs


def _widget_integer(field):
    return forms.NumberInput(_number_attrs(field, "1"))


def _widget_decimal(field):
    places = field["validation"].get("decimal_places", 6)
    return forms.NumberInput(_number_attrs(field, format(Decimal(1).scaleb(-places), "f")))


def _widget_money(field):
    return forms.NumberInput(_number_attrs(field, "0.01"))


def _date_attrs(field, kind):
    attrs = {"class": "form-control", "type": kind}
    for name in ("min", "max"):
        bound = field["validation"].get(name)
        if bound is not None:
            value = _bound(FIELD_TYPES[field["type"]], bound)
            attrs[name] = value.strftime("%Y-%m-%dT%H:%M") if isinstance(value, datetime) else value.isoformat()
    return attrs


def _widget_date(field):
    return forms.DateInput(_date_attrs(field, "date"), format="%Y-%m-%d")


def _widget_datetime(field):
    return forms.DateTimeInput(_date_attrs(field, "datetime-local"), format="%Y-%m-%dT%H:%M")


def _widget_time(field):
    attrs = _date_attrs(field, "time")
    for name in ("min", "max"):
        if name in attrs:
            attrs[name] = attrs[name][:5]
    return forms.TimeInput(attrs, format="%H:%M")


def _widget_select(field):
    return forms.Select({"class": "form-select"}, choices=[("", "---------"), *_choice_options(field)])


def _widget_multiselect(field):
    return forms.CheckboxSelectMultiple({"class": "form-check-input"}, choices=_choice_options(field))


def _widget_radio(field):
    return forms.RadioSelect({"class": "form-check-input"}, choices=_choice_options(field))


def _widget_checkbox(field):
    return forms.CheckboxInput({"class": "form-check-input"})


def _widget_cascade(field):
    options = []
    for path in _leaf_paths(field["options"]["tree"]):
        value = json.dumps([node["value"] for node in path], ensure_ascii=False)
        options.append((value, " / ".join(_text(node.get("label"), node["value"]) for node in path)))
    return forms.Select({"class": "form-select"}, choices=[("", "---------"), *options])


def _widget_phone(field):
    return forms.TextInput({"class": "form-control", "type": "tel", "maxlength": 24, "autocomplete": "tel"})


def _widget_email(field):
    return forms.EmailInput({"class": "form-control", "maxlength": 254, "autocomplete": "email"})


def _widget_url(field):
    return forms.URLInput({"class": "form-control", "maxlength": 2000})


def _widget_picker(field):
    return forms.Select({"class": "form-select"}, choices=_picker_choices(field))


def _widget_customer(field):
    # A tenant may have hundreds of thousands of customers: an id box, not a <select>.
    return forms.NumberInput({"class": "form-control", "step": "1", "min": "1"})


def _widget_address(field):
    return AddressWidget()


def _widget_rating(field):
    scale = field["options"]["scale"]
    choices = [(n, "★" * n + "☆" * (scale - n)) for n in range(1, scale + 1)]
    return forms.RadioSelect({"class": "form-check-input"}, choices=choices)


def _widget_files(field):
    rules = field["validation"]
    attrs = {"class": "form-control", "accept": ",".join("." + ext for ext in rules["extensions"])}
    return MultipleFileInput(attrs) if rules["max_files"] > 1 else forms.FileInput(attrs)


def _widget_computed(field):
    return forms.TextInput({"class": "form-control", "readonly": True})


# ---------------------------------------------------------------------------------------------
# Display: a stored value as the ticket page shows it


def _display_plain(field, value):
    return str(value)


def _display_money(field, value):
    amount = Decimal(str(value))
    return f"{'-' if amount < 0 else ''}¥{abs(amount):,.2f}"


def _display_datetime(field, value):
    return timezone.localtime(_parse_datetime(value)).strftime("%Y-%m-%d %H:%M")


def _display_time(field, value):
    return str(value)[:5]


def _choice_label(field, value):
    for choice in field.get("options", {}).get("choices", []):
        if choice["value"] == value:
            return _text(choice.get("label"), value)
    return str(value)


def _display_choice(field, value):
    return _choice_label(field, value)


def _display_multiselect(field, value):
    return ("、" if _lang() == "zh-hans" else ", ").join(_choice_label(field, v) for v in value)


def _display_checkbox(field, value):
    return gettext("Yes") if value else gettext("No")


def _display_cascade(field, value):
    labels, nodes = [], field.get("options", {}).get("tree", [])
    for part in value:
        node = next((n for n in nodes if n["value"] == part), None)
        labels.append(_text(node.get("label"), part) if node else str(part))
        nodes = node.get("children", []) if node else []
    return " / ".join(labels)


def _display_picker(field, value):
    return _picker_labels(field["type"], [value]).get(value) or f"#{value}"


def _display_address(field, value):
    if not isinstance(value, Mapping):
        return str(value)
    if value.get("lat") is not None:
        return f"{value.get('text', '')} ({value['lat']}, {value['lng']})"
    return str(value.get("text", ""))


def _display_rating(field, value):
    scale = field.get("options", {}).get("scale", 5)
    return "★" * int(value) + "☆" * max(0, scale - int(value))


def _display_files(field, value):
    return ", ".join(str(item.get("name", "")) if isinstance(item, Mapping) else str(item) for item in value)


def _display_computed(field, value):
    formula = field.get("options", {}).get("formula", {})
    return _display_money(field, value) if formula.get("money") else str(value)


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class FieldType:
    """One kind of custom field: how it is checked, stored, rendered and shown. Adding a type
    means one entry in FIELD_TYPES (CONTRIBUTING: "add a field type")."""

    name: str
    label: Any
    clean: Callable[[dict, Any], Any] | None  # None: never read from input (files, computed)
    widget: Callable[[dict], forms.Widget]
    display: Callable[[dict, Any], str]
    validation: frozenset = frozenset()  # the validation settings that apply
    validation_defaults: Mapping = dataclass_field(default_factory=dict)
    options: frozenset = frozenset()
    parse_bound: Callable[[Any], Any] | None = None  # min/max setting -> comparable value
    empty: Any = None  # the stored value of a field left empty
    kind: str = ""  # "number" / "date": what formulas may read
    multi: bool = False  # a list from a QueryDict (getlist)
    picker: bool = False
    is_file: bool = False
    computed: bool = False

    def empty_value(self):
        return copy.copy(self.empty)


def _files_type(name, label, extensions):
    return FieldType(
        name, label, None, _widget_files, _display_files,
        validation=frozenset({"max_size_mb", "extensions", "max_files"}),
        validation_defaults={"max_size_mb": 10, "extensions": list(extensions), "max_files": 5},
        empty=[], multi=True, is_file=True,
    )


def _picker_type(name, label, widget=_widget_picker):
    return FieldType(name, label, _clean_id, widget, _display_picker, picker=True)


_RANGE = frozenset({"min", "max"})
_LENGTH = frozenset({"min_length", "max_length"})

FIELD_TYPES = {
    ft.name: ft
    for ft in (
        FieldType("text", gettext_lazy("Text"), _clean_text, _widget_text, _display_plain,
                  validation=_LENGTH | {"regex"}, validation_defaults={"max_length": 200}),
        FieldType("textarea", gettext_lazy("Long text"), _clean_textarea, _widget_textarea, _display_plain,
                  validation=_LENGTH, validation_defaults={"max_length": 5000}),
        FieldType("integer", gettext_lazy("Whole number"), _clean_integer, _widget_integer, _display_plain,
                  validation=_RANGE, parse_bound=_to_int, kind="number"),
        FieldType("decimal", gettext_lazy("Decimal number"), _clean_decimal, _widget_decimal, _display_plain,
                  validation=_RANGE | {"decimal_places"}, validation_defaults={"decimal_places": 6},
                  parse_bound=_to_decimal, kind="number"),
        FieldType("money", gettext_lazy("Money"), _clean_money, _widget_money, _display_money,
                  validation=_RANGE, parse_bound=_to_decimal, kind="number"),
        FieldType("date", gettext_lazy("Date"), _clean_date, _widget_date, _display_plain,
                  validation=_RANGE, parse_bound=_parse_date, kind="date"),
        FieldType("datetime", gettext_lazy("Date and time"), _clean_datetime, _widget_datetime, _display_datetime,
                  validation=_RANGE, parse_bound=_parse_datetime, kind="date"),
        FieldType("time", gettext_lazy("Time"), _clean_time, _widget_time, _display_time,
                  validation=_RANGE, parse_bound=_parse_time),
        FieldType("select", gettext_lazy("Drop-down"), _clean_choice, _widget_select, _display_choice,
                  options=frozenset({"choices"})),
        FieldType("multiselect", gettext_lazy("Multiple choice"), _clean_multiselect, _widget_multiselect,
                  _display_multiselect, options=frozenset({"choices"}), empty=[], multi=True),
        FieldType("checkbox", gettext_lazy("Checkbox"), _clean_checkbox, _widget_checkbox, _display_checkbox,
                  empty=False),
        FieldType("radio", gettext_lazy("Radio buttons"), _clean_choice, _widget_radio, _display_choice,
                  options=frozenset({"choices"})),
        FieldType("cascade", gettext_lazy("Cascading choice"), _clean_cascade, _widget_cascade, _display_cascade,
                  options=frozenset({"tree"})),
        FieldType("phone", gettext_lazy("Phone number"), _clean_phone, _widget_phone, _display_plain),
        FieldType("email", gettext_lazy("Email"), _clean_email, _widget_email, _display_plain),
        FieldType("url", gettext_lazy("Web address"), _clean_url, _widget_url, _display_plain),
        FieldType("pattern", gettext_lazy("Formatted code"), _clean_text, _widget_text, _display_plain,
                  validation=_LENGTH | {"regex"}, validation_defaults={"max_length": 64}),
        _picker_type("region", gettext_lazy("Region")),
        _picker_type("store", gettext_lazy("Store")),
        _picker_type("staff", gettext_lazy("Staff member")),
        _picker_type("customer", gettext_lazy("Customer"), _widget_customer),
        FieldType("address", gettext_lazy("Address"), _clean_address, _widget_address, _display_address),
        FieldType("rating", gettext_lazy("Rating"), _clean_rating, _widget_rating, _display_rating,
                  options=frozenset({"scale"}), kind="number"),
        _files_type("image", gettext_lazy("Images"), IMAGE_EXTENSIONS),
        _files_type("file", gettext_lazy("Files"), FILE_EXTENSIONS),
        FieldType("computed", gettext_lazy("Computed"), None, _widget_computed, _display_computed,
                  options=frozenset({"formula"}), computed=True),
    )
}
_NEEDS_OPTION = {"choices": ("select", "multiselect", "radio"), "tree": ("cascade",), "formula": ("computed",)}
_LENGTH_CAPS = {"text": 1000, "textarea": 20000, "pattern": 200}


# ---------------------------------------------------------------------------------------------
# schema_validate


def _labels_normalise(raw, problems, *, required, max_length):
    if raw is None or raw in ("", {}):
        if required:
            problems.append(gettext("the label needs Chinese (zh-hans) text."))
        return {}
    if isinstance(raw, str):
        raw = {"zh-hans": raw}
    if not isinstance(raw, Mapping):
        problems.append(gettext("labels and help are texts per language, e.g. {\"zh-hans\": …, \"en\": …}."))
        return {}
    unknown = sorted(map(str, set(raw) - set(LANGS)))
    if unknown:
        problems.append(gettext("unknown language(s): %(names)s.") % {"names": ", ".join(unknown)})
    out = {}
    for lang in LANGS:
        value = raw.get(lang)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value.strip()) > max_length:
            problems.append(gettext("texts must be strings of at most %(limit)d characters.") % {"limit": max_length})
            continue
        if value.strip():
            out[lang] = value.strip()
    if required and not out.get("zh-hans"):
        problems.append(gettext("the label needs Chinese (zh-hans) text."))
    return out


def _small_int(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _validation_normalise(ftype, raw, problems):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(gettext("“validation” must be an object."))
        raw = {}
    for name in sorted(map(str, set(raw) - ftype.validation)):
        problems.append(gettext("the setting validation.%(name)s does not apply to this type.") % {"name": name})
    out = copy.deepcopy(dict(ftype.validation_defaults))
    out.update({k: v for k, v in raw.items() if k in ftype.validation and v is not None})
    cap = _LENGTH_CAPS.get(ftype.name, 0)
    limits = {"min_length": (0, cap), "max_length": (1, cap), "max_size_mb": (1, 50), "max_files": (1, 20),
              "decimal_places": (0, 10)}
    for name, (low, high) in limits.items():
        if name in out and not _small_int(out[name], low, high):
            problems.append(
                gettext("validation.%(name)s must be a whole number from %(low)d to %(high)d.")
                % {"name": name, "low": low, "high": high}
            )
            out.pop(name)
    if out.get("min_length", 0) > out.get("max_length", cap):
        problems.append(gettext("validation.min_length is greater than validation.max_length."))
    if "regex" in ftype.validation:
        _regex_check(ftype, out, problems)
    if "extensions" in out:
        _extensions_check(ftype, out, problems)
    if "min" in ftype.validation:
        _range_check(ftype, out, problems)
    return out


def _regex_check(ftype, out, problems):
    regex = out.get("regex")
    if regex is None:
        if ftype.name == "pattern":
            problems.append(gettext("a formatted-code field needs validation.regex."))
        return
    if not isinstance(regex, str) or not regex or len(regex) > MAX_REGEX_LENGTH:
        problems.append(gettext("invalid regular expression (at most %(limit)d characters).")
                        % {"limit": MAX_REGEX_LENGTH})
        out.pop("regex")
        return
    try:
        re.compile(regex)
    except re.error as exc:
        problems.append(gettext("invalid regular expression: %(error)s.") % {"error": exc})
        out.pop("regex")


def _extensions_check(ftype, out, problems):
    extensions = out["extensions"]
    allowed = IMAGE_EXTENSIONS if ftype.name == "image" else None
    if not isinstance(extensions, list) or not extensions or len(extensions) > 30:
        problems.append(gettext("validation.extensions must be a non-empty list."))
        out["extensions"] = list(ftype.validation_defaults["extensions"])
        return
    cleaned = []
    for ext in extensions:
        ext = ext.lower().lstrip(".") if isinstance(ext, str) else ""
        if not _EXTENSION_RE.match(ext) or ext in BLOCKED_EXTENSIONS or (allowed and ext not in allowed):
            problems.append(gettext("file type “%(ext)s” is not allowed here.") % {"ext": ext})
        elif ext not in cleaned:
            cleaned.append(ext)
    out["extensions"] = cleaned or list(ftype.validation_defaults["extensions"])


def _range_check(ftype, out, problems):
    bounds = {}
    for name in ("min", "max"):
        if name not in out:
            continue
        if out[name] in ("today", "now"):
            if out[name] != {"date": "today", "datetime": "now"}.get(ftype.name):
                problems.append(gettext("validation.%(name)s is not a valid value.") % {"name": name})
                out.pop(name)
            continue
        try:
            bounds[name] = ftype.parse_bound(out[name])
        except ValidationError:
            problems.append(gettext("validation.%(name)s is not a valid value.") % {"name": name})
            out.pop(name)
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        problems.append(gettext("validation.min is greater than validation.max."))


def _choices_normalise(raw, problems):
    if not isinstance(raw, list) or not raw:
        problems.append(gettext("choices are missing: add at least one."))
        return []
    if len(raw) > MAX_CHOICES:
        problems.append(gettext("at most %(limit)d choices.") % {"limit": MAX_CHOICES})
    out, seen = [], set()
    for item in raw[:MAX_CHOICES]:
        if isinstance(item, str | int) and not isinstance(item, bool):
            item = {"value": str(item)}
        value = item.get("value") if isinstance(item, Mapping) else None
        value = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not value or len(value) > 100:
            problems.append(gettext("each choice needs a value of 1 to 100 characters."))
            continue
        if value in seen:
            problems.append(gettext("the choice “%(value)s” appears twice.") % {"value": value})
            continue
        seen.add(value)
        label = _labels_normalise(item.get("label"), problems, required=False, max_length=100)
        out.append({"value": value, "label": {"zh-hans": value, **label}})
    return out


def _tree_normalise(raw, problems, depth=1, counter=None):
    counter = counter if counter is not None else [0]
    if not isinstance(raw, list) or not raw:
        problems.append(gettext("the cascade tree is missing or empty."))
        return []
    if depth > MAX_TREE_DEPTH:
        problems.append(gettext("the cascade tree is deeper than %(limit)d levels.") % {"limit": MAX_TREE_DEPTH})
        return []
    out, seen = [], set()
    for item in raw:
        counter[0] += 1
        if counter[0] > MAX_TREE_NODES:
            problems.append(gettext("the cascade tree has more than %(limit)d options.") % {"limit": MAX_TREE_NODES})
            return out
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(value, str) or not value.strip() or len(value) > 100 or value.strip() in seen:
            problems.append(gettext("each cascade option needs a value of 1 to 100 characters, unique among "
                                    "its siblings."))
            continue
        value = value.strip()
        seen.add(value)
        node = {"value": value}
        if item.get("label") is not None:
            node["label"] = _labels_normalise(item["label"], problems, required=False, max_length=100)
        if item.get("children"):
            node["children"] = _tree_normalise(item["children"], problems, depth + 1, counter)
        out.append(node)
    return out


def _formula_normalise(raw, problems):
    bad = gettext("the formula needs “op” (mul, sum, months_since or days_between) and its fields.")
    if not isinstance(raw, Mapping):
        problems.append(bad)
        return {}
    op = raw.get("op")
    shape = {
        "mul": {"op", "fields", "places", "money"},
        "sum": {"op", "fields", "places", "money"},
        "months_since": {"op", "field"},
        "days_between": {"op", "fields"},
    }
    if op not in shape:
        problems.append(bad)
        return {}
    for name in sorted(map(str, set(raw) - shape[op])):
        problems.append(gettext("the formula setting “%(name)s” is not known.") % {"name": name})
    out = {"op": op}
    if op == "months_since":
        if not isinstance(raw.get("field"), str):
            problems.append(bad)
        out["field"] = raw.get("field")
        return out
    fields = raw.get("fields")
    wanted = {"mul": 2, "sum": 1, "days_between": 2}[op]
    if (not isinstance(fields, list) or len(fields) < wanted or (op == "days_between" and len(fields) != 2)
            or len(set(map(str, fields))) != len(fields) or not all(isinstance(k, str) for k in fields)):
        problems.append(bad)
        fields = []
    out["fields"] = list(fields)
    if raw.get("places") is not None:
        if not _small_int(raw["places"], 0, 6):
            problems.append(gettext("formula places must be a whole number from 0 to 6."))
        else:
            out["places"] = raw["places"]
    if raw.get("money") is not None:
        if not isinstance(raw["money"], bool):
            problems.append(gettext("formula money must be true or false."))
        elif raw["money"]:
            out["money"] = True
    return out


def _options_normalise(ftype, raw, problems):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(gettext("“options” must be an object."))
        raw = {}
    for name in sorted(map(str, set(raw) - ftype.options)):
        problems.append(gettext("the setting options.%(name)s does not apply to this type.") % {"name": name})
    out = {}
    if "choices" in ftype.options:
        out["choices"] = _choices_normalise(raw.get("choices"), problems)
    if "tree" in ftype.options:
        out["tree"] = _tree_normalise(raw.get("tree"), problems)
    if "formula" in ftype.options:
        out["formula"] = _formula_normalise(raw.get("formula"), problems)
    if "scale" in ftype.options:
        scale = raw.get("scale", 5)
        if not _small_int(scale, 2, 10):
            problems.append(gettext("options.scale must be a whole number from 2 to 10."))
            scale = 5
        out["scale"] = scale
    return out


def _field_normalise(raw, problems):
    if not isinstance(raw, Mapping):
        problems.append(gettext("a field must be an object."))
        return None
    for name in sorted(map(str, set(raw) - FIELD_SETTINGS)):
        problems.append(gettext("unknown setting “%(name)s”.") % {"name": name})
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        problems.append(gettext("the key must start with a-z and contain only a-z, 0-9 and _ (at most 40)."))
    ftype = FIELD_TYPES.get(raw.get("type")) if isinstance(raw.get("type"), str) else None
    if ftype is None:
        problems.append(gettext("unknown type “%(type)s”.") % {"type": raw.get("type")})
        return None
    required = raw.get("required", False)
    if not isinstance(required, bool):
        problems.append(gettext("“required” must be true or false."))
    elif required and ftype.computed:
        problems.append(gettext("a computed field cannot be required."))
    public = raw.get("public", "hidden")
    staff = raw.get("staff", "view" if ftype.computed else "edit")
    if public not in PUBLIC_MODES:
        problems.append(gettext("“public” must be edit, view or hidden."))
    if staff not in STAFF_MODES:
        problems.append(gettext("“staff” must be edit or view."))
    if ftype.computed and "edit" in (public, staff):
        problems.append(gettext("a computed field cannot be edited; use view or hidden."))
    prefill = raw.get("prefill") or ""
    if prefill and prefill not in PREFILL_SOURCES:
        problems.append(gettext("unknown prefill source “%(source)s”.") % {"source": prefill})
    elif prefill and ftype.name not in PREFILL_SOURCES[prefill]:
        problems.append(gettext("%(source)s cannot fill a field of this type.") % {"source": prefill})
    field = {
        "key": key,
        "type": ftype.name,
        "label": _labels_normalise(raw.get("label"), problems, required=True, max_length=100),
        "help": _labels_normalise(raw.get("help"), problems, required=False, max_length=500),
        "required": required is True,
        "default": None,
        "validation": _validation_normalise(ftype, raw.get("validation"), problems),
        "options": _options_normalise(ftype, raw.get("options"), problems),
        "public": public,
        "staff": staff,
        "prefill": prefill,
    }
    default = raw.get("default")
    if default is not None and not problems:
        if ftype.clean is None or ftype.picker:
            # Picker ids differ between tenants, and a template travels between tenants as JSON.
            problems.append(gettext("this type cannot have a default."))
        elif not _blank(default):
            try:
                field["default"] = ftype.clean(field, default)
            except ValidationError as exc:
                problems.append(gettext("the default is not valid: %(error)s") % {"error": " ".join(exc.messages)})
    return field


def _formula_problems(field, by_key):
    formula = field["options"].get("formula") or {}
    refs = [formula["field"]] if formula.get("op") == "months_since" else formula.get("fields", [])
    kind = "date" if formula.get("op") in ("months_since", "days_between") else "number"
    problems = []
    for ref in refs:
        target = by_key.get(ref)
        if target is None or ref == field["key"]:
            problems.append(gettext("the formula refers to an unknown field “%(ref)s”.") % {"ref": ref})
        elif FIELD_TYPES[target["type"]].kind != kind or target["type"] == "computed":
            message = (gettext("the formula needs a number field, but “%(ref)s” is not one.") if kind == "number"
                       else gettext("the formula needs a date field, but “%(ref)s” is not one."))
            problems.append(message % {"ref": ref})
    return problems


def _problem(position, key, problem):
    shown = key if isinstance(key, str) and key else "?"
    return gettext("Field %(position)d (%(key)s): %(problem)s") % {"position": position, "key": shown,
                                                                    "problem": problem}


def schema_validate(fields):
    """Check a whole field list and return it normalised (every setting present, defaults
    filled in, validation defaults frozen in so a published version keeps today's rules).
    Raises ValidationError with one message per problem, each naming the field's position and key."""
    if not isinstance(fields, list | tuple):
        raise ValidationError(gettext("The field list must be a list."))
    if len(fields) > MAX_FIELDS:
        raise ValidationError(gettext("A template has at most %(limit)d fields.") % {"limit": MAX_FIELDS})
    errors, normalised, positions, seen = [], [], {}, set()
    for position, raw in enumerate(fields, start=1):
        problems = []
        field = _field_normalise(raw, problems)
        key = raw.get("key") if isinstance(raw, Mapping) else None
        if isinstance(key, str) and key in seen:
            problems.append(gettext("the key “%(key)s” is used twice.") % {"key": key})
        seen.add(key)
        errors.extend(_problem(position, key, p) for p in problems)
        if field is not None:
            normalised.append(field)
            positions[id(field)] = position
    by_key = {f["key"]: f for f in normalised}
    for field in normalised:
        if field["type"] == "computed":
            errors.extend(_problem(positions[id(field)], field["key"], p) for p in _formula_problems(field, by_key))
    if errors:
        raise ValidationError(errors)
    return normalised


# ---------------------------------------------------------------------------------------------
# data_clean


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _raw_value(data, key, ftype):
    if ftype.multi and hasattr(data, "getlist"):
        return data.getlist(key)
    return data.get(key)


def _sniff_image(upload):
    try:
        upload.seek(0)
        head = upload.read(16)
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def _files_clean(field, uploads):
    """Describe the uploads after checking count, extension, size and (for images) content."""
    rules = field["validation"]
    if len(uploads) > rules["max_files"]:
        raise ValidationError(
            ngettext("Upload at most %(count)d file.", "Upload at most %(count)d files.", rules["max_files"])
            % {"count": rules["max_files"]},
            code="max_files",
        )
    errors, described = [], []
    limit = rules["max_size_mb"] * 1024 * 1024
    for upload in uploads:
        if not hasattr(upload, "read") or not getattr(upload, "name", None):
            errors.append(gettext("No file was submitted. Check the encoding type on the form."))
            continue
        name = PurePath(str(upload.name).replace("\\", "/")).name
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        size = upload.size or 0
        if extension not in rules["extensions"]:
            errors.append(
                gettext("“%(name)s”: this file type is not allowed (allowed: %(allowed)s).")
                % {"name": name, "allowed": ", ".join(rules["extensions"])}
            )
        elif size == 0:
            errors.append(gettext("“%(name)s” is empty.") % {"name": name})
        elif size > limit:
            errors.append(
                gettext("“%(name)s” is larger than %(limit)d MB.") % {"name": name, "limit": rules["max_size_mb"]}
            )
        elif len(name) > 200:
            errors.append(gettext("The file name “%(name)s…” is longer than 200 characters.") % {"name": name[:40]})
        else:
            kind = _sniff_image(upload) if extension in IMAGE_EXTENSIONS else None
            if extension in IMAGE_EXTENSIONS and kind is None:
                errors.append(
                    gettext("“%(name)s” is not a valid image (PNG, JPEG, GIF or WebP).") % {"name": name}
                )
                continue
            content_type = kind or getattr(upload, "content_type", None) or "application/octet-stream"
            described.append({"name": name, "size": size, "content_type": content_type})
    if errors:
        raise ValidationError(errors, code="invalid")
    return described


def upload_check(upload, *, kind="file", max_size_mb=10, extensions=None):
    """Check one upload outside a field (a comment's attachment) by the same rules as an
    image/file field with default limits. Returns its description; raises ValidationError."""
    if kind not in ("image", "file"):
        raise ValueError(f"kind must be image or file, not {kind!r}")
    rules = dict(FIELD_TYPES[kind].validation_defaults, max_files=1, max_size_mb=max_size_mb)
    if extensions is not None:
        rules["extensions"] = [ext for ext in extensions if ext not in BLOCKED_EXTENSIONS]
    return _files_clean({"validation": rules}, [upload])[0]


def _months_between(start, end):
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if end.day < start.day else months


def _stored_date(value):
    if value in (None, ""):
        return None
    return _parse_date(value) if len(str(value)) == 10 else timezone.localdate(_parse_datetime(value))


def _compute(field, values):
    """A computed field's value from the cleaned values; None while an input is empty."""
    formula = field["options"]["formula"]
    op = formula["op"]
    if op == "months_since":
        start = _stored_date(values.get(formula["field"]))
        return None if start is None else _months_between(start, timezone.localdate())
    inputs = [values.get(key) for key in formula["fields"]]
    if any(value in (None, "") for value in inputs):
        return None
    if op == "days_between":
        first, second = (_stored_date(value) for value in inputs)
        return (second - first).days
    numbers = [Decimal(str(value)) for value in inputs]
    with localcontext(prec=60):  # products of large amounts must not round silently
        result = Decimal(1) if op == "mul" else Decimal(0)
        for number in numbers:
            result = result * number if op == "mul" else result + number
        places = 2 if formula.get("money") else formula.get("places")
        if places is None:
            return _decimal_str(result)
        # Written-down rounding rule (DESIGN rule 5): half up, once, at the end.
        return format(result.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) + 0, "f")


def _editable(field, audience):
    return field[audience] == "edit" and not FIELD_TYPES[field["type"]].computed


def _check_audience(audience):
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}, not {audience!r}")


def data_clean(fields, data, *, audience, files=None, partial=False, current=None):
    """Validate submitted `data` (a dict or QueryDict) and `files` against a field list.

    Only fields the audience may edit are read; the rest keep their defaults (or, with
    partial=True, are left out so the caller keeps the stored value). Required fields left out
    fail unless partial. Returns (cleaned_data, files_to_store); raises ValidationError({key:
    [messages]}) with every field's errors at once. Pickers check ids in the open tenant scope.
    With partial=True, pass the stored data as `current` so a computed field is recomputed when
    only some of its inputs change."""
    _check_audience(audience)
    schema = schema_validate(fields)
    data = data if data is not None else {}
    files = files if files is not None else {}
    cleaned, to_store, errors, picked = {}, {}, {}, {}
    required_message = gettext("This field is required.")
    for field in schema:
        key, ftype = field["key"], FIELD_TYPES[field["type"]]
        if ftype.computed:
            continue
        if not _editable(field, audience):
            if not partial:
                cleaned[key] = copy.deepcopy(field["default"]) if field["default"] is not None else ftype.empty_value()
            continue
        if ftype.is_file:
            uploads = [u for u in _as_list(_raw_value(files, key, ftype)) if u]
            if not uploads:
                if field["required"] and not partial:
                    errors[key] = [required_message]
                elif not partial:
                    cleaned[key] = []
                continue
            try:
                cleaned[key] = _files_clean(field, uploads)
                to_store[key] = uploads
            except ValidationError as exc:
                errors[key] = exc.messages
            continue
        if key in data:
            raw = _raw_value(data, key, ftype)
        elif partial:
            continue
        else:
            raw = field["default"]
        try:
            value = ftype.empty_value() if _blank(raw) else ftype.clean(field, raw)
        except ValidationError as exc:
            errors[key] = exc.messages
            continue
        if field["required"] and (_is_empty(value) or value is False):
            errors[key] = [required_message]
            continue
        cleaned[key] = value
        if ftype.picker and value is not None:
            picked.setdefault(field["type"], {})[key] = value
    for kind, by_key in picked.items():
        found = _picker_labels(kind, set(by_key.values()), active_only=kind == "staff")
        thing = capfirst(FIELD_TYPES[kind].label)
        for key, pk in by_key.items():
            if pk not in found:
                errors[key] = [gettext("%(thing)s %(id)s was not found.") % {"thing": thing, "id": pk}]
    if errors:
        raise ValidationError(errors)
    values = {**(current or {}), **cleaned} if partial else cleaned
    for field in schema:
        if FIELD_TYPES[field["type"]].computed:
            formula = field["options"]["formula"]
            refs = [formula["field"]] if "field" in formula else formula["fields"]
            # A partial edit recomputes only when an input changed and every input is known;
            # otherwise the stored result stays, rather than being wiped by a guess.
            if not partial or (any(ref in cleaned for ref in refs) and all(ref in values for ref in refs)):
                cleaned[field["key"]] = _compute(field, values)
    return cleaned, to_store


# ---------------------------------------------------------------------------------------------
# prefill_values, display_value


def prefill_values(fields, *, customer=None, opportunity=None):
    """Suggested values for fields with a prefill source, in their stored form. A source value
    that does not fit the field (a landline in a mobile-only pattern…) is skipped, not an error."""
    if customer is None and opportunity is not None:
        customer = opportunity.customer
    sources = {
        "customer.name": getattr(customer, "name", None),
        "customer.phone": getattr(customer, "phone", None),
        "customer.address": getattr(customer, "address", None),
        "opportunity.amount": getattr(opportunity, "amount", None),
        "opportunity.title": getattr(opportunity, "title", None),
    }
    values = {}
    for field in schema_validate(fields):
        raw = sources.get(field["prefill"]) if field["prefill"] else None
        if _blank(raw):
            continue
        try:
            values[field["key"]] = FIELD_TYPES[field["type"]].clean(field, raw)
        except ValidationError:
            continue
    return values


def field_label(field):
    """A field's label in the active language (Chinese when there is no English one)."""
    return _text(field.get("label"), field.get("key", ""))


def display_value(field, value):
    """A stored value as text for the ticket page, in the active language ("" when empty)."""
    ftype = FIELD_TYPES.get(field.get("type"))
    if _is_empty(value):
        return ""
    if ftype is None:
        return str(value)
    try:
        return ftype.display(field, value)
    except (ValidationError, InvalidOperation, TypeError, ValueError, AttributeError):
        return str(value)  # data older than a schema change: show it raw rather than fail the page


# ---------------------------------------------------------------------------------------------
# form_class_for


class RawField(forms.Field):
    """Hands the widget's value through untouched: data_clean is the one validator."""

    def clean(self, value):
        return value


class TicketDataForm(forms.Form):
    """Base of the forms form_class_for builds. Its clean() runs data_clean and maps the errors
    onto the fields; on success `cleaned_json` and `files_to_store` hold the result."""

    schema: list = []
    audience = "staff"

    def __init__(self, *args, partial=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.partial = partial
        self.cleaned_json = None
        self.files_to_store = {}
        # What clean() handed to data_clean: services re-validate exactly this (one path).
        self.raw_data, self.raw_files = {}, {}

    def clean(self):
        cleaned_data = super().clean()
        raw, uploads = {}, {}
        for field in self.schema:
            key = field["key"]
            if key in self.fields and not self.fields[key].disabled and key in cleaned_data:
                target = uploads if FIELD_TYPES[field["type"]].is_file else raw
                target[key] = cleaned_data[key]
        self.raw_data, self.raw_files = raw, uploads
        try:
            self.cleaned_json, self.files_to_store = data_clean(
                self.schema, raw, audience=self.audience, files=uploads, partial=self.partial
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for key, messages in exc.message_dict.items():
                    self.add_error(key if key in self.fields else None, messages)
            else:
                self.add_error(None, exc.messages)
        return cleaned_data


def _initial_for(field, value):
    """A stored value as its widget wants it (datetime-local, JSON cascade paths …)."""
    if value is None:
        return None
    kind = field["type"]
    try:
        if kind == "datetime":
            return _parse_datetime(value).strftime("%Y-%m-%dT%H:%M")
        if kind == "time":
            return str(value)[:5]
        if kind == "cascade":
            return json.dumps(list(value), ensure_ascii=False)
        if kind == "computed":
            return display_value(field, value)
    except (ValidationError, TypeError):
        return None
    return None if FIELD_TYPES[kind].is_file else value


def form_class_for(fields, *, audience, data_initial=None):
    """A Django Form class with one form field per field the audience can see (view-only ones
    disabled), labelled in the active language. Build it inside the tenant scope (pickers)."""
    _check_audience(audience)
    schema = schema_validate(fields)
    data_initial = data_initial or {}
    form_fields = {}
    for field in schema:
        if field[audience] == "hidden":
            continue
        key, ftype = field["key"], FIELD_TYPES[field["type"]]
        editable = _editable(field, audience)
        form_fields[key] = RawField(
            label=field_label(field),
            help_text=_text(field["help"]),
            required=field["required"] and editable,
            disabled=not editable,
            widget=ftype.widget(field),
            initial=_initial_for(field, data_initial.get(key, field["default"])),
        )
    form_class = type("TicketDataForm", (TicketDataForm,), {"schema": schema, "audience": audience})
    # Set after class creation: a field key may be any name, including one of Form's methods.
    form_class.base_fields = form_fields
    form_class.declared_fields = form_fields
    return form_class
