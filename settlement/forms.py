"""Settlement forms: start a run, edit a rule (each kind with its own fields, the condition in
rows of field/operator/value or, for nested groups, as JSON; checked by the calculator and the
service), add a price version, preview a rule on a ticket, upload a price book or rules file."""

import json
import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import condition_builder as cb
from .calculator import ALTITUDE_RANGE, RULE_KINDS, rule_params_clean
from .models import RULE_KIND_LABELS, PartyKind, PeriodKind, ServiceItem
from .selectors import condition_data_fields

MAX_JSON = 4000
KIND_LABELS = RULE_KIND_LABELS
SURCHARGE_FLAG_CHOICES = [("night", _("Night service")), ("urgent", _("Urgent ticket")), ("weekend", _("Weekend")),
                          ("height_work", _("Work at height"))]


class RunStartForm(forms.Form):
    period_kind = forms.ChoiceField(label=_("Period"), choices=PeriodKind.choices)
    day = forms.DateField(label=_("Any day in the period"), widget=forms.DateInput(attrs={"type": "date"}))


class JSONField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}))
        kwargs.setdefault("max_length", MAX_JSON)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return {}
        try:
            data = json.loads(value)
        except ValueError:
            raise forms.ValidationError(_("Enter valid JSON, e.g. {\"percent\": 30}.")) from None
        if not isinstance(data, dict):
            raise forms.ValidationError(_("Enter a JSON object."))
        return data


# Tiers, milestones, split roles: the form offers the rows filled plus two empty ones (at least
# ROWS), up to what the calculator accepts, so editing a long rule never drops a row.
ROWS = 4
MAX_ROWS = {"m": 20, "t": 20, "r": 10}


def _money(label, **kw):
    return forms.DecimalField(label=label, min_value=0, max_value=Decimal("100000000"), max_digits=14,
                              decimal_places=2, **kw)


def _number(label, *, maximum, places=4, **kw):
    return forms.DecimalField(label=label, min_value=0, max_value=Decimal(maximum), max_digits=12,
                              decimal_places=places, **kw)


def _period_fields():
    return {
        "period": forms.ChoiceField(label=_("Period"), choices=PeriodKind.choices, initial="month"),
        "party_kind": forms.ChoiceField(label=_("For parties of kind"), required=False,
                                        choices=[("", _("any kind")), *list(PartyKind.choices)]),
    }


def _rows(prefix, first, second, first_field, second_field, rows):
    fields = {}
    for i in range(1, min(rows, MAX_ROWS[prefix]) + 1):
        fields[f"{prefix}{i}_{first}"] = first_field(i)
        fields[f"{prefix}{i}_{second}"] = second_field(i)
    return fields


def kind_fields(kind: str, rows: int = ROWS) -> dict[str, forms.Field]:
    """The form fields of one rule kind: names are the rule's parameters (rows numbered)."""
    if kind == "fixed":
        return {"amount": _money(_("Package amount (yuan)"))}
    if kind == "hourly":
        return {"rate": _money(_("Hourly rate (yuan)"))}
    if kind == "milestones":
        return _rows("m", "name", "share",
                     lambda i: forms.CharField(label=_("Milestone %(n)s") % {"n": i}, max_length=40, required=False),
                     lambda i: _number(_("Share (%)"), maximum=100, required=False), rows)
    if kind == "region_class":
        return {f"class_{c}": _number(_("Class %(c)s coefficient") % {"c": c}, maximum=10, required=False)
                for c in "ABC"}
    if kind == "altitude":
        return {"above_m": forms.IntegerField(label=_("Above (metres)"), min_value=ALTITUDE_RANGE[0],
                                              max_value=ALTITUDE_RANGE[1]),
                "multiplier": _number(_("Multiplier"), maximum=10)}
    if kind == "surcharge":
        return {"flag": forms.ChoiceField(label=_("For"), choices=SURCHARGE_FLAG_CHOICES),
                "percent": _number(_("Surcharge (%)"), maximum=1000)}
    if kind == "distance":
        return {"base_km": _number(_("Included distance (km)"), maximum=10000, places=1),
                "base_amount": _money(_("Travel amount within it (yuan)"), required=False),
                "per_km": _number(_("Per km beyond (yuan)"), maximum=1000, places=2)}
    if kind == "split":
        return _rows("r", "role", "weight",
                     lambda i: forms.CharField(label=_("Role %(n)s") % {"n": i}, max_length=30, required=False),
                     lambda i: _number(_("Weight"), maximum=1000, required=False), rows)
    if kind == "rebate":
        return {**_period_fields(),
                "basis": forms.ChoiceField(label=_("Over"), choices=[("amount", _("the amount")),
                                                                    ("count", _("the number of tickets"))]),
                "mode": forms.ChoiceField(label=_("Mode"), choices=[
                    ("retroactive", _("Retroactive: the whole volume at the tier reached")),
                    ("marginal", _("Marginal: each slice at its own tier's rate"))]),
                **_rows("t", "from", "percent",
                        lambda i: _money(_("Tier %(n)s from") % {"n": i}, required=False),
                        lambda i: _number(_("Rebate (%)"), maximum=100, required=False), rows)}
    if kind == "first_order_bonus":
        return {**_period_fields(), "threshold": _money(_("First order at least (yuan)")),
                "percent": _number(_("Bonus (%)"), maximum=100)}
    if kind == "target_bonus":
        return {**_period_fields(), "target": _money(_("Period target (yuan)")),
                "percent": _number(_("Bonus (%)"), maximum=100)}
    return {}  # per_item: the price book's price × quantity, nothing to set


def _plain(value):
    """A cleaned Decimal as the rule stores it (no exponent, no trailing zeros beyond the fen)."""
    if value is None:
        return None
    return format(value.normalize(), "f") if value != value.to_integral_value() else str(int(value))


def params_from(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The kind's cleaned form fields → the rule's parameters (checked by rule_params_clean)."""
    def rows(prefix, first, second):
        out = []
        for i in range(1, MAX_ROWS[prefix] + 1):
            a, b = data.get(f"{prefix}{i}_{first}"), data.get(f"{prefix}{i}_{second}")
            if a in (None, "") and b is None:
                continue
            out.append({first: _plain(a) if isinstance(a, Decimal) else a, second: _plain(b)})
        return out

    simple = {k: (_plain(v) if isinstance(v, Decimal) else v) for k, v in data.items()
              if k in kind_fields(kind) and not re.match(r"^[mrt]\d+_", k)}
    if kind == "milestones":
        return {"milestones": rows("m", "name", "share")}
    if kind == "region_class":
        return {"coefficients": {c: _plain(data[f"class_{c}"]) for c in "ABC" if data.get(f"class_{c}") is not None}}
    if kind == "split":
        return {"roles": rows("r", "role", "weight")}
    if kind == "rebate":
        return {**dict(simple.items()), "tiers": rows("t", "from", "percent")}
    if kind == "distance" and simple.get("base_amount") is None:
        simple["base_amount"] = "0"
    return simple


def params_initial(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """A stored rule's parameters → the kind's form fields."""
    params = params or {}
    out = {k: v for k, v in params.items() if not isinstance(v, (list, dict))}
    for prefix, key, first, second in (("m", "milestones", "name", "share"), ("r", "roles", "role", "weight"),
                                       ("t", "tiers", "from", "percent")):
        for i, row in enumerate(params.get(key) or [], start=1):
            if isinstance(row, dict) and i <= MAX_ROWS[prefix]:
                out[f"{prefix}{i}_{first}"], out[f"{prefix}{i}_{second}"] = row.get(first), row.get(second)
    for c, value in (params.get("coefficients") or {}).items():
        out[f"class_{c}"] = value
    return out


class RuleForm(forms.Form):
    """A rule of one kind: the common fields, then the kind's own (kind_fields), checked by the
    calculator's rule_params_clean with its message on the form."""

    name = forms.CharField(label=_("Name"), max_length=80)
    kind = forms.ChoiceField(label=_("Kind"), choices=[(k, KIND_LABELS[k]) for k in RULE_KINDS],
                             widget=forms.HiddenInput)
    condition = JSONField(label=_("Condition as JSON (advanced)"), required=False,
                          help_text=_("For nested groups the rows cannot express, e.g. {\"any\": [{\"all\": […]}, "
                                      "{\"not\": …}]}. Leave the rows empty when you use it."))
    cond_join = forms.ChoiceField(label=_("Apply when"), required=False, initial="all",
                                  choices=[("all", _("all rows match")), ("any", _("any row matches"))])
    priority = forms.IntegerField(label=_("Priority"), min_value=0, max_value=1000, initial=100)
    exclusive = forms.BooleanField(label=_("Exclusive"), required=False)
    cap = forms.DecimalField(label=_("Cap"), required=False, min_value=0, max_digits=14, decimal_places=2)
    minimum = forms.DecimalField(label=_("Minimum"), required=False, min_value=0, max_digits=14, decimal_places=2)
    effective_from = forms.DateField(label=_("Effective from"), required=False,
                                     widget=forms.DateInput(attrs={"type": "date"}))
    effective_to = forms.DateField(label=_("Effective to"), required=False,
                                   widget=forms.DateInput(attrs={"type": "date"}))
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    preview_ticket = forms.CharField(label=_("Preview on ticket number"), required=False, max_length=32)

    COMMON = ("name", "kind", "priority", "exclusive", "cap", "minimum", "effective_from",
              "effective_to", "is_active", "preview_ticket")

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.rule_kind = kind if kind in RULE_KINDS else ""
        self.fields["kind"].initial = self.rule_kind
        source = self.data if self.is_bound else {**(self.initial or {}), **(kwargs.get("initial") or {})}
        numbers = [int(m.group(1)) for key in source if (m := re.match(r"^[mrt](\d{1,2})_", str(key)))
                   and source.get(key) not in (None, "")]
        extra = kind_fields(self.rule_kind, rows=max(ROWS, max(numbers, default=0) + 2))
        self.kind_field_names = list(extra)
        self.fields.update(extra)
        self.catalogue = cb.field_catalogue(condition_data_fields())
        field_choices = [("", "—"), *((path, label) for path, (label, _kind) in self.catalogue.items())]
        for i in range(1, cb.MAX_ROWS + 1):
            self.fields[f"c{i}_field"] = forms.ChoiceField(label=_("Field"), required=False, choices=field_choices)
            self.fields[f"c{i}_op"] = forms.ChoiceField(label=_("Operator"), required=False,
                                                        choices=[("", "—"), *cb.OP_LABELS.items()])
            self.fields[f"c{i}_value"] = forms.CharField(label=_("Value"), required=False, max_length=cb.MAX_VALUE)
        # Editing: a condition the rows show exactly goes into them; anything else (nested
        # groups, "not", a field no template maps now) stays in the JSON editor with a note.
        self.condition_nested = False
        if not self.is_bound and self.initial.get("condition_data"):
            shown = cb.condition_rows(self.initial["condition_data"], self.catalogue)
            if shown is None:
                self.condition_nested = True
            else:
                self.initial["condition"], self.initial["cond_join"] = "", shown[0]
                for i, row in enumerate(shown[1], start=1):
                    for key in ("field", "op", "value"):
                        self.initial[f"c{i}_{key}"] = row[key]
        for f in self.fields.values():
            widget = f.widget
            css = ("form-check-input" if isinstance(widget, forms.CheckboxInput) else
                   "form-select form-select-sm" if isinstance(widget, forms.Select) else "form-control form-control-sm")
            widget.attrs["class"] = f"{css} {widget.attrs.get('class', '')}".strip()

    def common_fields(self):
        return [self[name] for name in self.COMMON if name != "kind"]

    def condition_rows(self):
        return [(self[f"c{i}_field"], self[f"c{i}_op"], self[f"c{i}_value"]) for i in range(1, cb.MAX_ROWS + 1)]

    def _clean_condition(self, data):
        """The rows → the condition; each bad row gets its own message on its value."""
        extra = [k for k, v in self.data.items() if (m := re.match(r"^c(\d+)_(field|op|value)$", k))
                 and int(m.group(1)) > cb.MAX_ROWS and v] if self.is_bound else []
        if extra:
            self.add_error(None, _("A condition has at most %(n)s rows; use the JSON editor for more.")
                           % {"n": cb.MAX_ROWS})
            return
        rows = []
        for i in range(1, cb.MAX_ROWS + 1):
            field, op, value = (data.get(f"c{i}_{k}") or "" for k in ("field", "op", "value"))
            if not (field or op or value) or any(f"c{i}_{k}" in self.errors for k in ("field", "op", "value")):
                continue  # an empty row, or one whose own field already says what is wrong
            try:
                rows.append(cb.row_condition(field, op, value, self.catalogue))
            except ValueError as exc:
                self.add_error(f"c{i}_value", str(exc))
        if rows and data.get("condition"):
            self.add_error("condition", _("Use either the rows or the JSON editor, not both."))
        elif not data.get("condition") and not self.errors:
            data["condition"] = cb.rows_condition(data.get("cond_join") or "all", rows)

    def kind_bound_fields(self):
        return [self[name] for name in self.kind_field_names]

    def clean(self):
        data = super().clean()
        if data.get("kind") and data["kind"] != self.rule_kind:
            raise forms.ValidationError(_("The rule kind cannot change; make a new rule instead."))
        self._clean_condition(data)
        if self.errors:
            return data
        try:
            data["params"] = rule_params_clean(self.rule_kind, params_from(self.rule_kind, data))
        except ValidationError as exc:
            for message in exc.messages:
                self.add_error(None, message)
        return data

    def service_kwargs(self):
        data = {k: v for k, v in self.cleaned_data.items() if k in self.COMMON or k == "params"}
        data.pop("preview_ticket", None)
        data["condition"] = self.cleaned_data.get("condition") or {}
        return data

    def add_service_errors(self, exc):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        for key, messages in errors.items():
            field = key if key in self.fields and key != "kind" else None
            for message in messages:
                self.add_error(field, message)

    @classmethod
    def initial_of(cls, rule):
        return {"name": rule.name, "kind": rule.kind,
                "condition": json.dumps(rule.condition, ensure_ascii=False) if rule.condition else "",
                "condition_data": rule.condition,
                "priority": rule.priority, "exclusive": rule.exclusive, "cap": rule.cap, "minimum": rule.minimum,
                "effective_from": rule.effective_from, "effective_to": rule.effective_to,
                "is_active": rule.is_active, **params_initial(rule.kind, rule.params)}


class PriceForm(forms.Form):
    item = forms.ModelChoiceField(label=_("Service item"), queryset=ServiceItem.objects.none())
    price = forms.DecimalField(label=_("Price (yuan)"), max_digits=14, decimal_places=2)
    effective_from = forms.DateField(label=_("Effective from"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Scoped by the request's tenant (ScopedManager), so another tenant's item is not a choice.
        self.fields["item"].queryset = ServiceItem.objects.filter(is_active=True)


class ImportForm(forms.Form):
    file = forms.FileField(label=_("File (.csv or .xlsx)"))
