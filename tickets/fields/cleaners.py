"""Cleaners: (normalised field, non-blank raw input) -> stored JSON value, or ValidationError;
and the pickers, the only part that reads the database, always inside one tenant's scope."""

import json
from collections.abc import Mapping
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils.translation import gettext, ngettext

from scrm.config_cache import scoped_tenant_id, tenant_config
from scrm.models import Customer, Membership, Region, StaffProfile
from scrm.phone import phone_normalize
from scrm.selectors import stores_cached

from .base import (
    _FALSE,
    _TRUE,
    DECIMAL_LIMIT,
    FEN,
    MAX_LIST_ITEMS,
    MAX_TREE_DEPTH,
    MONEY_LIMIT,
    _blank,
    _check_length,
    _check_range,
    _decimal_str,
    _invalid,
    _parse_date,
    _parse_datetime,
    _parse_time,
    _places,
    _string,
    _to_decimal,
    _to_int,
)
from .patterns import pattern_fullmatch


def _clean_text(field, raw):
    value = _string(raw)
    _check_length(field, value)
    regex = field["validation"].get("regex")
    # RE2: linear time, so a tenant's pattern cannot stall the public form (see patterns.py).
    if regex and not pattern_fullmatch(regex, value):
        raise _invalid(gettext("Enter a value in the expected format."))
    return value


def _clean_textarea(field, raw):
    value = _string(raw, multiline=True)
    _check_length(field, value)
    return value


def _clean_integer(field, raw):
    value = _to_int(raw)
    _check_range(field, value, _to_int)
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
    _check_range(field, value, _to_decimal)
    return _decimal_str(value)


def _clean_money(field, raw):
    if isinstance(raw, str):
        raw = raw.strip().lstrip("¥￥").strip()
    value = _to_decimal(raw)
    if _places(value) > 2:
        raise _invalid(gettext("Enter an amount in yuan with at most 2 decimal places (fen)."))
    if abs(value) >= MONEY_LIMIT:
        raise _invalid(gettext("Enter an amount below 1,000,000,000,000 yuan."))
    _check_range(field, value, _to_decimal)
    return format(value.quantize(FEN) if value else Decimal("0.00"), "f")


def _clean_date(field, raw):
    value = _parse_date(raw)
    _check_range(field, value, _parse_date)
    return value.isoformat()


def _clean_datetime(field, raw):
    value = _parse_datetime(raw)
    _check_range(field, value, _parse_datetime)
    return value.isoformat()


def _clean_time(field, raw):
    value = _parse_time(raw)
    _check_range(field, value, _parse_time)
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


def _staff_labels(ids, *, active_only):
    tenant_id = scoped_tenant_id()
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
    if kind in ("region", "store"):
        # Few rows that change rarely, read by every intake: the tenant's cached list.
        rows = _org_rows(kind)
        return {pk: name for pk, name, is_open in rows if (ids is None or pk in ids) and (is_open or not active_only)}
    rows = Customer.objects.filter(tenant_id=scoped_tenant_id())
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return dict(rows.order_by("name", "pk").values_list("pk", "name"))


def _store_groups():
    """The open stores grouped under their region (<optgroup>), regions and stores in code order."""
    groups: dict = {}
    stores = stores_cached(tenant_config(scoped_tenant_id())).values()
    for store in sorted(stores, key=lambda s: (s.region.code, s.region_id, s.code, s.pk)):
        if store.is_active:
            groups.setdefault(store.region.name, []).append((store.pk, store.name))
    return list(groups.items())


def _org_rows(kind):
    """(id, name, open) of every region or store of the tenant in scope, in code order."""
    config = tenant_config(scoped_tenant_id())

    def load():
        if kind == "store":  # derived from the stores intake caches: no read of its own
            return tuple((s.pk, s.name, s.is_active) for s in stores_cached(config).values())
        return tuple((pk, name, True) for pk, name in Region.objects.order_by("code", "pk").values_list("pk", "name"))

    return config.get(f"picker:{kind}", load)


def _picker_choices(field):
    if field["type"] == "store":
        return [("", "---------"), *_store_groups()]
    labels = _picker_labels(field["type"], active_only=True)
    choices = sorted(labels.items(), key=lambda item: item[1]) if field["type"] == "staff" else labels.items()
    return [("", "---------"), *choices]
