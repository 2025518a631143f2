"""form_class_for: a Django form for a field list and audience, on TicketDataForm, whose clean()
runs data_clean."""

import json

from django import forms
from django.core.exceptions import ValidationError

from .base import _parse_datetime, _text
from .data import _check_audience, _editable, data_clean, display_value, field_label
from .registry import FIELD_TYPES
from .schema import schema_validate


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
                self.schema, raw, audience=self.audience, files=uploads, partial=self.partial, normalised=True,
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


class _SharedFields(dict):
    """base_fields of a form that only reads input: every instance uses the same Field objects
    instead of deep copies (a copy per request of every field and widget is most of what
    building such a form costs). Only safe where nothing changes a field per instance."""

    def __deepcopy__(self, memo):
        return dict(self)


def form_class_for(fields, *, audience, data_initial=None, read_only=False):
    """A Django Form class with one form field per field the audience can see (view-only ones
    disabled), labelled in the active language. Build it inside the tenant scope (pickers).
    `read_only=True` is for a class that only validates submissions and is never rendered:
    its instances share their Field objects."""
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
    if read_only:
        form_fields = _SharedFields(form_fields)
    form_class.base_fields = form_fields
    form_class.declared_fields = form_fields
    return form_class
