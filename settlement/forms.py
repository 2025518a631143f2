"""Settlement forms: start a run, edit a rule (numbers and condition as JSON, checked by the
service), add a price version, preview a rule on a ticket."""

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from .calculator import RULE_KINDS
from .models import RULE_KIND_LABELS, PeriodKind, ServiceItem

MAX_JSON = 4000
KIND_LABELS = RULE_KIND_LABELS


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


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    kind = forms.ChoiceField(label=_("Kind"), choices=[(k, KIND_LABELS[k]) for k in RULE_KINDS])
    params = JSONField(label=_("Numbers"), help_text=_("e.g. {\"flag\": \"urgent\", \"percent\": 30}"))
    condition = JSONField(label=_("Condition"), required=False,
                          help_text=_("e.g. {\"field\": \"region.settlement_class\", \"op\": \"=\", \"value\": \"A\"}"))
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

    def service_kwargs(self):
        data = dict(self.cleaned_data)
        data.pop("preview_ticket", None)
        return data

    def add_service_errors(self, exc):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        for key, messages in errors.items():
            field = key if key in self.fields else None
            for message in messages:
                self.add_error(field, message)

    @classmethod
    def initial_of(cls, rule):
        return {"name": rule.name, "kind": rule.kind, "params": json.dumps(rule.params, ensure_ascii=False),
                "condition": json.dumps(rule.condition, ensure_ascii=False) if rule.condition else "",
                "priority": rule.priority, "exclusive": rule.exclusive, "cap": rule.cap, "minimum": rule.minimum,
                "effective_from": rule.effective_from, "effective_to": rule.effective_to,
                "is_active": rule.is_active}


class PriceForm(forms.Form):
    item = forms.ModelChoiceField(label=_("Service item"), queryset=ServiceItem.objects.none())
    price = forms.DecimalField(label=_("Price (yuan)"), max_digits=14, decimal_places=2)
    effective_from = forms.DateField(label=_("Effective from"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Scoped by the request's tenant (ScopedManager), so another tenant's item is not a choice.
        self.fields["item"].queryset = ServiceItem.objects.filter(is_active=True)
