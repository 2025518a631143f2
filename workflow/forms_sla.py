"""The SLA policy page's forms: the policy (which tickets — template, category, priority,
customer tier, region, built into a structured condition —, the targets, the calendar, the
due-soon share and per-node limits typed as "node=minutes" lines), one form per escalation
level (a formset), and the import upload. workflow.sla_policy validates the whole."""

import re

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from notifications.models import ChannelName
from scrm.forms import BootstrapFormMixin
from scrm.models import CustomerTier, Membership, Region, Role
from tickets.models import Category, Priority, TicketTemplate

from .escalation import escalation_action_choices
from .models import BusinessCalendar
from .sla_policy import LEVEL_CHANNELS, MAX_LEVELS

# Dimension → (condition field, how a chosen object is named in the condition).
DIMENSIONS = {"templates": ("template", "slug"), "categories": ("category", "code"), "priorities": ("priority", None),
              "tiers": ("customer.tier", None), "regions": ("region.code", "code")}
_LIMIT_LINE = re.compile(r"^\s*([A-Za-z0-9_-]{1,40})\s*[=:：]\s*(\d{1,7})\s*$")


def _simple_parts(condition):
    """{dimension: [values]} when the condition is one this form builds, else None."""
    if not condition:
        return {}
    items = condition.get("all") if isinstance(condition, dict) else None
    by_field = {field: name for name, (field, _attr) in DIMENSIONS.items()}
    if not isinstance(items, list) or any(
            not isinstance(i, dict) or i.get("op") != "in" or i.get("field") not in by_field for i in items):
        return None
    return {by_field[i["field"]]: list(i.get("value") or []) for i in items}


class SlaPolicyForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("name"), max_length=60)
    is_active = forms.BooleanField(label=_("active"), required=False, initial=True)
    position = forms.IntegerField(label=_("order"), min_value=0, max_value=999, initial=10,
                                  help_text=_("Lower first: the first matching policy applies."))
    templates = forms.ModelMultipleChoiceField(label=_("Templates"), queryset=TicketTemplate.objects.none(),
                                               required=False)
    categories = forms.ModelMultipleChoiceField(label=_("Categories"), queryset=Category.objects.none(),
                                                required=False)
    priorities = forms.MultipleChoiceField(label=_("Priorities"), choices=Priority.choices, required=False,
                                           widget=forms.CheckboxSelectMultiple)
    tiers = forms.MultipleChoiceField(label=_("Customer tiers"), choices=CustomerTier.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple)
    regions = forms.ModelMultipleChoiceField(label=_("Regions"), queryset=Region.objects.none(), required=False)
    response_minutes = forms.IntegerField(label=_("First response within (working minutes)"), required=False,
                                          min_value=1)
    resolution_minutes = forms.IntegerField(label=_("Resolution within (working minutes)"), required=False,
                                            min_value=1)
    calendar = forms.ModelChoiceField(label=_("calendar"), queryset=BusinessCalendar.objects.none(), required=False,
                                      empty_label=_("The default calendar"))
    due_soon_percent = forms.IntegerField(label=_("Due soon when less than this share is left (%)"), initial=20,
                                          min_value=1, max_value=90)
    node_limits = forms.CharField(label=_("Node time limits"), required=False, max_length=4000,
                                  widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text=_("One node per line as node key=working minutes, for example "
                                              "accept=30. They replace the nodes' own limits."))

    def __init__(self, *args, policy=None, **kwargs):
        self.kept_condition = None
        if policy is not None:
            parts = _simple_parts(policy.condition)
            if parts is None:
                self.kept_condition = policy.condition
                parts = {}
            initial = {"name": policy.name, "is_active": policy.is_active, "position": policy.position,
                       "response_minutes": policy.response_minutes, "resolution_minutes": policy.resolution_minutes,
                       "calendar": policy.calendar_id, "due_soon_percent": policy.due_soon_percent,
                       "node_limits": "\n".join(f"{k}={v}" for k, v in (policy.node_limits or {}).items()),
                       "priorities": parts.get("priorities", []), "tiers": parts.get("tiers", [])}
            kwargs.setdefault("initial", initial)
            self._object_parts = parts
        else:
            self._object_parts = {}
        super().__init__(*args, **kwargs)
        # Scoped querysets: another tenant's template, category, region or calendar is not a choice.
        self.fields["templates"].queryset = TicketTemplate.objects.order_by("name")
        self.fields["categories"].queryset = Category.objects.order_by("name")
        self.fields["regions"].queryset = Region.objects.order_by("code")
        self.fields["calendar"].queryset = BusinessCalendar.objects.order_by("name")
        if not self.is_bound:
            for name in ("templates", "categories", "regions"):
                attr = DIMENSIONS[name][1]
                values = self._object_parts.get(name, [])
                if values:
                    self.initial[name] = list(self.fields[name].queryset.filter(**{f"{attr}__in": values}))

    def clean_node_limits(self):
        limits = {}
        for number, line in enumerate((self.cleaned_data.get("node_limits") or "").splitlines(), start=1):
            if not line.strip():
                continue
            match = _LIMIT_LINE.match(line)
            if match is None:
                raise forms.ValidationError(_("Line %(n)d: write node key=minutes, for example accept=30.")
                                            % {"n": number})
            limits[match.group(1)] = int(match.group(2))
        return limits

    def condition(self):
        data = self.cleaned_data
        items = []
        for name, (field, attr) in DIMENSIONS.items():
            chosen = data.get(name) or []
            if chosen:
                items.append({"field": field, "op": "in",
                              "value": [getattr(o, attr) for o in chosen] if attr else list(chosen)})
        if not items and self.kept_condition:
            return self.kept_condition  # a condition this form cannot show (made by import) stays
        return {"all": items} if items else {}

    def service_kwargs(self):
        data = self.cleaned_data
        return {"name": data["name"], "is_active": data["is_active"], "position": data["position"],
                "condition": self.condition(), "calendar": data["calendar"],
                "response_minutes": data["response_minutes"], "resolution_minutes": data["resolution_minutes"],
                "due_soon_percent": data["due_soon_percent"], "node_limits": data["node_limits"]}

    def add_service_errors(self, exc):
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in self.fields and field != "condition" else None, errors)


class LevelForm(BootstrapFormMixin, forms.Form):
    after = forms.IntegerField(label=_("After (minutes)"), min_value=1, max_value=60 * 24 * 366)
    clock = forms.ChoiceField(label=_("Counted in"), choices=[("working", _("working time")),
                                                               ("wall", _("calendar time"))], initial="working")
    basis = forms.ChoiceField(label=_("Counted from"), choices=[("created", _("ticket creation")),
                                                        ("node", _("the node's start"))], initial="created")
    until = forms.ChoiceField(label=_("Unless"), choices=[("response", _("a handler has responded")),
                                                          ("resolution", _("the ticket is resolved"))],
                              initial="resolution")
    to = forms.ChoiceField(label=_("Notify"), choices=[
        ("supervisor", _("the handler's supervisor")), ("regional_manager", _("the regional manager")),
        ("role", _("everyone with a role")), ("user", _("a named person"))], initial="supervisor")
    role = forms.ChoiceField(label=_("Role"), choices=[("", "—"), *Role.choices], required=False)
    user = forms.ModelChoiceField(label=_("Person"), queryset=get_user_model().objects.none(), required=False)
    channels = forms.MultipleChoiceField(label=_("Channels"), widget=forms.CheckboxSelectMultiple,
                                         choices=[(c.value, c.label) for c in ChannelName if c in LEVEL_CHANNELS],
                                         initial=[ChannelName.WECOM])
    actions = forms.MultipleChoiceField(label=_("Also"), widget=forms.CheckboxSelectMultiple, required=False,
                                        choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        members = Membership.objects.filter(is_active=True).values_list("user_id", flat=True)
        self.fields["user"].queryset = get_user_model().objects.filter(pk__in=members).order_by("username")
        self.fields["actions"].choices = escalation_action_choices()

    def level(self):
        data = self.cleaned_data
        level = {k: data[k] for k in ("after", "clock", "basis", "until", "to", "channels", "actions")}
        if data["to"] == "role":
            level["role"] = data.get("role") or None
        if data["to"] == "user":
            level["user"] = data["user"].pk if data.get("user") else None
        return level


LevelFormSet = forms.formset_factory(LevelForm, extra=2, max_num=MAX_LEVELS, validate_max=True)


def level_initial(levels):
    return [dict(level, user=level.get("user")) for level in levels or []]


class SlaImportForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=_("Policy file (JSON or YAML)"),
                           help_text=_("Policies of the same name are replaced; a file with any error changes "
                                       "nothing."))
