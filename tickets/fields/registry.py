"""The registry: FieldType (how one kind of field is checked, stored, rendered and shown) and
FIELD_TYPES, every type by name."""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from .base import FILE_EXTENSIONS, IMAGE_EXTENSIONS, _parse_date, _parse_datetime, _parse_time, _to_decimal, _to_int
from .cleaners import (
    _clean_address,
    _clean_cascade,
    _clean_checkbox,
    _clean_choice,
    _clean_date,
    _clean_datetime,
    _clean_decimal,
    _clean_email,
    _clean_id,
    _clean_integer,
    _clean_money,
    _clean_multiselect,
    _clean_phone,
    _clean_rating,
    _clean_text,
    _clean_textarea,
    _clean_time,
    _clean_url,
)
from .display import (
    _display_address,
    _display_cascade,
    _display_checkbox,
    _display_choice,
    _display_computed,
    _display_datetime,
    _display_files,
    _display_money,
    _display_multiselect,
    _display_picker,
    _display_plain,
    _display_rating,
    _display_time,
)
from .parts import _clean_parts, _display_parts, _widget_parts
from .widgets import (
    _widget_address,
    _widget_cascade,
    _widget_checkbox,
    _widget_computed,
    _widget_customer,
    _widget_date,
    _widget_datetime,
    _widget_decimal,
    _widget_email,
    _widget_files,
    _widget_integer,
    _widget_money,
    _widget_multiselect,
    _widget_phone,
    _widget_picker,
    _widget_radio,
    _widget_rating,
    _widget_select,
    _widget_text,
    _widget_textarea,
    _widget_time,
    _widget_url,
)


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
        FieldType("parts", gettext_lazy("Spare parts"), _clean_parts, _widget_parts, _display_parts, empty=[]),
        FieldType("computed", gettext_lazy("Computed"), None, _widget_computed, _display_computed,
                  options=frozenset({"formula"}), computed=True),
    )
}
_NEEDS_OPTION = {"choices": ("select", "multiselect", "radio"), "tree": ("cascade",), "formula": ("computed",)}
_LENGTH_CAPS = {"text": 1000, "textarea": 20000, "pattern": 200}
