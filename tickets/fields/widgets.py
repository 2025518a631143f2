"""Form widgets of the custom-field types (Bootstrap 5 classes, HTML5 input types): one
_widget_* function per type, used by the registry."""

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django import forms
from django.utils.translation import gettext, gettext_lazy

from .base import _as_list, _bound, _parse_date, _parse_datetime, _parse_time, _text
from .cleaners import _picker_choices


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


def _date_attrs(field, kind, parse):
    attrs = {"class": "form-control", "type": kind}
    for name in ("min", "max"):
        bound = field["validation"].get(name)
        if bound is not None:
            value = _bound(field["type"], parse, bound)
            attrs[name] = value.strftime("%Y-%m-%dT%H:%M") if isinstance(value, datetime) else value.isoformat()
    return attrs


def _widget_date(field):
    return forms.DateInput(_date_attrs(field, "date", _parse_date), format="%Y-%m-%d")


def _widget_datetime(field):
    return forms.DateTimeInput(_date_attrs(field, "datetime-local", _parse_datetime), format="%Y-%m-%dT%H:%M")


def _widget_time(field):
    attrs = _date_attrs(field, "time", _parse_time)
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
    attrs = {"class": "form-select"}
    if field["type"] == "store":
        # Dozens of stores: grouped by region, with a filter box (static/js/select_search.js).
        attrs["data-searchable"] = "1"
        attrs["data-search-placeholder"] = gettext_lazy("Search stores or regions")
    return forms.Select(attrs, choices=_picker_choices(field))


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
