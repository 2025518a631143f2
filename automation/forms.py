"""The automation pages' forms: a trigger (when / if / then — the condition built from rows of
field, operator and value, the ticket's fields mapped one line each), a schedule, a revisit's
outcome. They turn what people type into the services' arguments; the services validate."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin
from scrm.models import Customer, CustomerSource, CustomerTier, Membership, Role, Store
from tickets.models import Priority, TicketTemplate
from workflow.conditions import OPS

from .models import Action, Event, LeadGrade, Recurrence, RevisitOutcome, TargetKind
from .subjects import SCHEDULE_SOURCES, SUBJECT_FIELDS

CONDITION_ROWS = 4
MAX_MAPPING_TEXT = 3000
MAX_ASSET_TEXT = 40000
_ASSET_SPLIT = re.compile(r"\s*[,，\t]\s*")
_MAPPING_LINE = re.compile(r"^\s*([A-Za-z0-9_]{1,40})\s*[=＝:：]\s*([a-z_.]{1,60})\s*$")
OP_LABELS = {"=": "=", "!=": "≠", ">": ">", ">=": "≥", "<": "<", "<=": "≤", "in": _("is one of"),
             "not_in": _("is none of"), "contains": _("contains"), "empty": _("is empty"),
             "not_empty": _("is not empty")}
WEEKDAYS = [(0, _("Monday")), (1, _("Tuesday")), (2, _("Wednesday")), (3, _("Thursday")), (4, _("Friday")),
            (5, _("Saturday")), (6, _("Sunday"))]


def _field_choices():
    seen, choices = set(), [("", "—")]
    for fields in SUBJECT_FIELDS.values():
        for key, label in fields.items():
            if key not in seen:
                seen.add(key)
                choices.append((key, f"{label} ({key})" if str(label) != key else key))
    return choices


def _value(text, op):
    """What a condition row's value box holds, as the condition stores it: a list for in /
    not_in (comma separated), a number when it reads as one, else the text."""
    text = (text or "").strip()
    if op in ("in", "not_in"):
        return [part.strip() for part in re.split(r"[,，、]", text) if part.strip()]
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return int(number) if number == number.to_integral_value() else float(number)


def mapping_parse(text):
    """"key = source" lines → {key: source}; a malformed line raises ValidationError."""
    mapping = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _MAPPING_LINE.match(line)
        if match is None:
            raise forms.ValidationError(_("Line %(n)d: write field key = source.") % {"n": number})
        mapping[match.group(1)] = match.group(2)
    return mapping


def condition_rows(condition):
    """A stored condition ({"all": [comparisons]}) as the form's rows."""
    items = (condition or {}).get("all") or ([] if not condition else [condition])
    rows = []
    for item in items:
        if isinstance(item, dict) and "field" in item:
            value = item.get("value")
            rows.append((item["field"], item.get("op", "="),
                         "、".join(map(str, value)) if isinstance(value, list) else ("" if value is None else value)))
    return rows


class TriggerForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("name"), max_length=80)
    event = forms.ChoiceField(label=_("When"), choices=Event.choices)
    is_active = forms.BooleanField(label=_("on"), required=False, initial=True)
    action = forms.ChoiceField(label=_("Then"), choices=Action.choices)
    template = forms.ModelChoiceField(label=_("template"), required=False, queryset=TicketTemplate.objects.none(),
                                      to_field_name="slug")
    title = forms.CharField(label=_("ticket title"), max_length=120, required=False,
                            help_text=_("Placeholders such as {opportunity.title} or {customer.name} are filled in."))
    priority = forms.ChoiceField(label=_("priority"), required=False, choices=[("", "—"), *Priority.choices])
    mapping = forms.CharField(
        label=_("field mapping"), required=False, max_length=MAX_MAPPING_TEXT,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "contract_title = opportunity.title"}),
        help_text=_("One line per ticket field: field key = source, for example contact_phone = customer.phone."))
    tag = forms.CharField(label=_("tag"), max_length=30, required=False)
    tier = forms.ChoiceField(label=_("tier"), required=False, choices=[("", "—"), *CustomerTier.choices])
    grade = forms.ChoiceField(label=_("lead grade"), required=False, choices=[("", "—"), *LeadGrade.choices])
    days = forms.IntegerField(label=_("revisit after (days)"), required=False, min_value=0, max_value=365)
    reason = forms.CharField(label=_("revisit reason"), max_length=120, required=False)
    notify_role = forms.ChoiceField(label=_("notify role"), required=False, choices=[("", "—"), *Role.choices])
    notify_user = forms.TypedChoiceField(label=_("or this person"), required=False, coerce=int, empty_value=None)
    message = forms.CharField(label=_("message"), max_length=500, required=False,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, trigger=None, **kwargs):
        if trigger is not None and "initial" not in kwargs:
            params = trigger.params or {}
            initial = {"name": trigger.name, "event": trigger.event, "is_active": trigger.is_active,
                       "action": trigger.action,
                       "mapping": "\n".join(f"{k} = {v}" for k, v in (params.get("mapping") or {}).items()),
                       "notify_role": params.get("role"), "notify_user": params.get("user_id"),
                       **{k: params.get(k) for k in ("template", "title", "priority", "tag", "tier", "grade", "days",
                                                     "reason", "message")}}
            for i, (field, op, value) in enumerate(condition_rows(trigger.condition)[:CONDITION_ROWS]):
                initial.update({f"c{i}_field": field, f"c{i}_op": op, f"c{i}_value": value})
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = TicketTemplate.objects.filter(
            is_active=True, current_version__isnull=False).order_by("name")
        self.fields["notify_user"].choices = [("", "—")] + [
            (m.user_id, m.user.first_name or m.user.username)
            for m in Membership.objects.filter(is_active=True).select_related("user").order_by("user__first_name")]
        field_choices = _field_choices()
        for i in range(CONDITION_ROWS):
            self.fields[f"c{i}_field"] = forms.ChoiceField(label=_("field"), required=False, choices=field_choices)
            self.fields[f"c{i}_op"] = forms.ChoiceField(label=_("operator"), required=False,
                                                        choices=[(op, OP_LABELS[op]) for op in OPS])
            self.fields[f"c{i}_value"] = forms.CharField(label=_("value"), required=False, max_length=200)
        for i in range(CONDITION_ROWS):
            for part in ("field", "op", "value"):
                widget = self.fields[f"c{i}_{part}"].widget
                widget.attrs["class"] = ("form-control form-control-sm" if part == "value"
                                         else "form-select form-select-sm")

    @property
    def value_codes(self):
        """The codes a stage or tier value is written as, for the hint under the condition rows."""
        from scrm.models import OpportunityStage

        return [(_("Opportunity stage"), OpportunityStage.choices), (_("tier"), CustomerTier.choices)]

    @property
    def condition_fields(self):
        return [(self[f"c{i}_field"], self[f"c{i}_op"], self[f"c{i}_value"]) for i in range(CONDITION_ROWS)]

    def clean_mapping(self):
        return mapping_parse(self.cleaned_data.get("mapping"))

    def clean(self):
        data = super().clean()
        items = []
        for i in range(CONDITION_ROWS):
            field, op = data.get(f"c{i}_field"), data.get(f"c{i}_op") or "="
            if field:
                item = {"field": field, "op": op}
                if op not in ("empty", "not_empty"):
                    item["value"] = _value(data.get(f"c{i}_value"), op)
                items.append(item)
        data["condition"] = {"all": items} if items else {}
        return data

    def service_kwargs(self):
        data = self.cleaned_data
        action = data["action"]
        params: dict = {}
        if action in (Action.CREATE_TICKET, Action.START_APPROVAL):
            params = {"template": data["template"].slug if data.get("template") else "", "title": data["title"],
                      "mapping": data["mapping"]}
            if data.get("priority"):
                params["priority"] = data["priority"]
        elif action == Action.NOTIFY:
            params = {"message": data["message"]}
            if data.get("notify_user") is not None:
                params["user_id"] = data["notify_user"]
            else:
                params["role"] = data.get("notify_role") or ""
        elif action == Action.ADD_TAG:
            params = {"tag": data["tag"]}
        elif action == Action.SET_TIER:
            params = {"tier": data["tier"]}
        elif action in (Action.PLAN_REVISIT, Action.SET_LEAD_GRADE):
            params = {"days": data["days"], "reason": data["reason"]}
            if action == Action.SET_LEAD_GRADE:
                params["grade"] = data["grade"]
                if data["days"] is None:
                    params.pop("days")
        return {"name": data["name"], "event": data["event"], "is_active": data["is_active"], "action": action,
                "condition": data["condition"], "params": params}

    def add_service_errors(self, exc):
        for key, messages in exc.message_dict.items():
            field = key if key in self.fields else ("c0_field" if key == "condition" else None)
            self.add_error(field, messages)


class ScheduleForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("name"), max_length=80)
    template = forms.ModelChoiceField(label=_("template"), queryset=TicketTemplate.objects.none())
    title = forms.CharField(label=_("ticket title"), max_length=120, required=False)
    recurrence = forms.ChoiceField(label=_("repeats"), choices=Recurrence.choices)
    every = forms.IntegerField(label=_("every"), min_value=1, max_value=366, initial=1)
    weekday = forms.TypedChoiceField(label=_("weekday"), required=False, coerce=int, empty_value=None,
                                     choices=[("", "—"), *WEEKDAYS])
    month_day = forms.IntegerField(label=_("day of month"), required=False, min_value=1, max_value=31)
    month = forms.IntegerField(label=_("month"), required=False, min_value=1, max_value=12)
    cron = forms.CharField(
        label=_("cron rule"), required=False, max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "0 9 1 * *", "class": "font-monospace"}),
        help_text=_("Minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5 (weekdays at 9:00) or 30 8 1,15 * * "
                    "(the 1st and 15th at 8:30). Day of week: 0 or 7 is Sunday."))
    at_time = forms.TimeField(label=_("at"), required=False,
                              widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    starts_on = forms.DateField(label=_("starts on"), widget=forms.DateInput(attrs={"type": "date"},
                                                                           format="%Y-%m-%d"))
    ends_on = forms.DateField(label=_("ends on"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    target_kind = forms.ChoiceField(label=_("one ticket for"), choices=TargetKind.choices, initial=TargetKind.NONE,
                                    required=False)
    stores = forms.ModelMultipleChoiceField(label=_("stores"), required=False, queryset=Store.objects.none(),
                                            widget=forms.SelectMultiple(attrs={"size": 6}))
    customers = forms.ModelMultipleChoiceField(label=_("customers"), required=False,
                                               queryset=Customer.objects.none(),
                                               widget=forms.SelectMultiple(attrs={"size": 6}))
    assets = forms.CharField(
        label=_("asset list"), required=False, max_length=MAX_ASSET_TEXT,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "BX-01, 冷库, xujiahui"}),
        help_text=_("One asset per line: code, name, store code (optional)."))
    mapping = forms.CharField(
        label=_("field mapping"), required=False, max_length=MAX_MAPPING_TEXT,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "equipment = asset.name"}),
        help_text=_("One line per ticket field: field key = source, for example contact_phone = customer.phone."))
    is_active = forms.BooleanField(label=_("on"), required=False, initial=True)

    def __init__(self, *args, schedule=None, **kwargs):
        if schedule is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                **{f: getattr(schedule, f) for f in ("name", "title", "recurrence", "every", "weekday", "month_day",
                                                     "month", "cron", "at_time", "starts_on", "ends_on", "is_active",
                                                     "target_kind")},
                "template": schedule.template_id, "stores": [s.pk for s in schedule.stores.all()],
                "customers": [c.pk for c in schedule.customers.all()],
                "assets": "\n".join(", ".join(filter(None, [a.code, a.name, a.store.code if a.store else ""]))
                                    for a in schedule.assets.all()),
                "mapping": "\n".join(f"{k} = {v}" for k, v in (schedule.mapping or {}).items())}
            if schedule.recurrence == Recurrence.CRON:
                kwargs["initial"]["at_time"] = None  # a cron rule carries its own times
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = TicketTemplate.objects.filter(
            is_active=True, current_version__isnull=False).order_by("name")
        self.fields["stores"].queryset = Store.objects.filter(is_active=True).order_by("name")
        self.fields["customers"].queryset = Customer.objects.select_related("store").order_by("name")

    @property
    def sources(self):
        """The mapping's sources for each kind of target (the hint under the mapping box)."""
        labels = dict(TargetKind.choices)
        return [(labels[kind], list(sources.items())) for kind, sources in SCHEDULE_SOURCES.items()]

    def clean_mapping(self):
        return mapping_parse(self.cleaned_data.get("mapping"))

    def clean_assets(self):
        """"code, name, store code" lines → the service's asset dicts (the store looked up among the
        tenant's own: another tenant's code is not found)."""
        lines = [line for line in (self.cleaned_data.get("assets") or "").splitlines() if line.strip()]
        rows = [_ASSET_SPLIT.split(line.strip()) for line in lines]
        codes = {row[2] for row in rows if len(row) > 2 and row[2]}
        stores = {s.code: s for s in Store.objects.filter(code__in=codes)} if codes else {}
        assets = []
        for number, row in enumerate(rows, start=1):
            if len(row) < 2 or len(row) > 3:
                raise forms.ValidationError(_("Line %(n)d: write code, name and optionally the store code.")
                                            % {"n": number})
            store = None
            if len(row) == 3 and row[2]:
                store = stores.get(row[2])
                if store is None:
                    raise forms.ValidationError(_("Line %(n)d: no store has the code %(code)s.")
                                                % {"n": number, "code": row[2]})
            assets.append({"code": row[0], "name": row[1], "store": store})
        return assets

    def service_kwargs(self):
        data = dict(self.cleaned_data)
        if not data.get("target_kind"):
            data["target_kind"] = TargetKind.STORES if data.get("stores") else TargetKind.NONE
        return data

    def add_service_errors(self, exc):
        for key, messages in exc.message_dict.items():
            self.add_error(key if key in self.fields else None, messages)


class RevisitForm(BootstrapFormMixin, forms.Form):
    outcome = forms.ChoiceField(label=_("outcome"), choices=[c for c in RevisitOutcome.choices if c[0]])
    note = forms.CharField(label=_("note"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class LeadRuleForm(BootstrapFormMixin, forms.Form):
    """One tier's rule (the lead tiers page shows one per grade A–D)."""

    is_active = forms.BooleanField(label=_("on"), required=False)
    min_amount = forms.DecimalField(label=_("opportunities at least (yuan)"), required=False, min_value=0,
                                    max_digits=14, decimal_places=2)
    sources = forms.MultipleChoiceField(label=_("sources"), required=False,
                                        choices=[c for c in CustomerSource.choices if c[0]],
                                        widget=forms.CheckboxSelectMultiple)
    contact_within_days = forms.IntegerField(label=_("last contact within (days)"), required=False, min_value=0,
                                             max_value=3650)
    contact_older_than_days = forms.IntegerField(label=_("no contact for more than (days)"), required=False,
                                                 min_value=0, max_value=3650)
    followup_days = forms.IntegerField(label=_("revisit after (days)"), required=False, min_value=0, max_value=365)
    followup_reason = forms.CharField(label=_("follow-up"), required=False, max_length=120)
