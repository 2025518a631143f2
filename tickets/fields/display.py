"""Display: a stored value as the ticket page shows it, one _display_* function per type, used
by the registry."""

from collections.abc import Mapping
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext

from .base import _lang, _parse_datetime, _text
from .cleaners import _picker_labels


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


def _display_picker(field, value, known_names=None):
    """The picked row's name: from `known_names` ({id: name}, read already by the caller) when it
    is there, else read now."""
    name = known_names.get(value) if known_names and type(value) is int else None
    if name is None:
        name = _picker_labels(field["type"], [value]).get(value)
    return name or f"#{value}"


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
