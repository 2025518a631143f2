"""The `parts` field type: spare parts a ticket needs, as [{"part": id, "sku", "name", "qty"}].
Typed as lines of "SKU quantity" (or sent as a list by the API); the catalogue behind it is
whatever app registered `tickets.extensions.parts_catalogue_register` (spare parts), so tickets
never imports it."""

import re

from django import forms
from django.utils.translation import gettext

from ..extensions import parts_catalogue
from .base import _invalid

MAX_LINES = 50
MAX_QTY = 9999
_LINE_RE = re.compile(r"^\s*(\S{1,64}?)\s*(?:[x×*＊]\s*|\s+)?(\d{1,6})?\s*$")


def _lines(raw):
    """(code or id, qty) pairs from text lines or a list of {"part"|"sku", "qty"}."""
    if isinstance(raw, str):
        if len(raw) > 4000:
            raise _invalid(gettext("Enter at most %(n)d parts.") % {"n": MAX_LINES})
        items = [item for item in re.split(r"[\n,，;；]", raw) if item.strip()]
        out = []
        for item in items:
            match = _LINE_RE.match(item)
            if not match:
                raise _invalid(gettext("Write each part as “SKU quantity”, one per line."))
            out.append((match.group(1), int(match.group(2) or 1)))
        return out
    if isinstance(raw, list | tuple):
        out = []
        for item in raw:
            if not isinstance(item, dict) or set(item) - {"part", "sku", "name", "qty"}:
                raise _invalid(gettext("Write each part as “SKU quantity”, one per line."))
            ref = item.get("part") if item.get("part") is not None else item.get("sku")
            qty = item.get("qty", 1)
            if isinstance(qty, bool) or not isinstance(qty, int) or not isinstance(ref, int | str) \
                    or isinstance(ref, bool):
                raise _invalid(gettext("Write each part as “SKU quantity”, one per line."))
            out.append((ref, qty))
        return out
    raise _invalid(gettext("Write each part as “SKU quantity”, one per line."))


def _clean_parts(field, raw):
    lines = _lines(raw)
    if len(lines) > MAX_LINES:
        raise _invalid(gettext("Enter at most %(n)d parts.") % {"n": MAX_LINES})
    for _ref, qty in lines:
        if not 1 <= qty <= MAX_QTY:
            raise _invalid(gettext("Each quantity must be between 1 and %(max)d.") % {"max": MAX_QTY})
    catalogue = parts_catalogue()
    if catalogue is None:
        raise _invalid(gettext("There is no parts catalogue to pick from."))
    codes = [ref for ref, _q in lines if isinstance(ref, str)]
    ids = [ref for ref, _q in lines if isinstance(ref, int)]
    found = catalogue.lookup(codes=codes, ids=ids)
    merged: dict[int, dict] = {}
    for ref, qty in lines:
        if ref not in found:
            raise _invalid(gettext("Unknown part: %(code)s.") % {"code": str(ref)[:64]})
        pk, sku, name = found[ref]
        line = merged.setdefault(pk, {"part": pk, "sku": sku, "name": name, "qty": 0})
        line["qty"] += qty
        if line["qty"] > MAX_QTY:
            raise _invalid(gettext("Each quantity must be between 1 and %(max)d.") % {"max": MAX_QTY})
    return list(merged.values())


class PartsWidget(forms.Textarea):
    """Lines of "SKU quantity"; a search box (static/js/parts.js) fills them from the catalogue."""

    def format_value(self, value):
        if isinstance(value, list):
            return "\n".join(f"{line.get('sku')} {line.get('qty')}" for line in value if isinstance(line, dict))
        return super().format_value(value)


def _widget_parts(field):
    catalogue = parts_catalogue()
    attrs = {"class": "form-control font-monospace", "rows": 3,
             "placeholder": gettext("One part per line: SKU quantity, e.g. YS-COMP-15 1")}
    if catalogue is not None:
        attrs["data-parts-search"] = catalogue.search_url()
    return PartsWidget(attrs)


def _display_parts(field, value):
    if not isinstance(value, list):
        return str(value)
    return "；".join(f"{line.get('name')}（{line.get('sku')}）×{line.get('qty')}" for line in value
                    if isinstance(line, dict))
