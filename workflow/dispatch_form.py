"""The `dispatch` handler rule's parameter form: what the designer's node editor shows and what
publishing checks (unknown role, another tenant's skill, negative weights or radius, an overflow
that loops or narrows). The rule kind (workflow/dispatch_rule.py) uses it as its `form_class`."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.models import Role, Skill

from . import dispatch

STEP_WORDS = {"store": "store", "region": "region", "nearby": "nearby", "tenant": "tenant",
              "本店": "store", "门店": "store", "本区域": "region", "区域": "region", "附近": "nearby",
              "全公司": "tenant", "公司": "tenant"}
SKILL_SOURCES = [("", gettext_lazy("— fixed skills only")), ("category", gettext_lazy("Ticket category")),
                 ("template", gettext_lazy("Ticket template")), ("field", gettext_lazy("A field's value"))]
SENIOR_FOR = [("", gettext_lazy("No change")), ("vip", gettext_lazy("VIP and SVIP customers")),
              ("svip", gettext_lazy("SVIP customers only"))]
MAX_MAP_LINES = 50


def _weight(label):
    return forms.IntegerField(label=label, min_value=0, max_value=100, initial=0, required=False,
                              error_messages={"min_value": gettext_lazy("A weight cannot be negative."),
                                              "max_value": gettext_lazy("A weight is at most 100 points."),
                                              "invalid": gettext_lazy("Enter a whole number of points.")})


class DispatchRuleForm(forms.Form):
    """The dispatch rule's parameters; field names are the rule's keys."""

    role = forms.ChoiceField(label=gettext_lazy("Role to draw from"), choices=[("", "—"), *Role.choices],
                             initial=Role.ENGINEER,
                             error_messages={"required": gettext_lazy("Choose the role."),
                                             "invalid_choice": gettext_lazy("Unknown role “%(value)s”.")})
    overflow = forms.CharField(
        label=gettext_lazy("Where to look, in order"), max_length=80, initial="store, region, nearby, tenant",
        help_text=gettext_lazy("Widening steps, comma-separated: store (本店), region (本区域), nearby (附近), "
                               "tenant (全公司). The next step is tried when nobody qualifies."),
        error_messages={"required": gettext_lazy("Say where to look.")})
    radius_km = forms.IntegerField(label=gettext_lazy("Nearby radius (km)"), min_value=1, max_value=500, initial=30,
                                   required=False,
                                   error_messages={"min_value": gettext_lazy("The radius must be at least 1 km."),
                                                   "max_value": gettext_lazy("The radius is at most 500 km.")})
    skills = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Required skills"), queryset=Skill.objects.none(), required=False,
        error_messages={"invalid_choice": gettext_lazy("“%(value)s” is not a skill of this company."),
                        "invalid_pk_value": gettext_lazy("“%(pk)s” is not a skill.")})
    skill_by = forms.ChoiceField(label=gettext_lazy("Skill also from"), choices=SKILL_SOURCES, required=False)
    skill_field = forms.CharField(label=gettext_lazy("Field key (for a field's value)"), max_length=40,
                                  required=False)
    skill_map = forms.CharField(
        label=gettext_lazy("Value → skill"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line: value=skill, e.g. 空调=空调维修 (the category's name, the template's "
                               "code or the field's value)."))
    on_duty_only = forms.BooleanField(label=gettext_lazy("Only people on duty"), required=False, initial=True)
    under_capacity = forms.BooleanField(label=gettext_lazy("Only people under their ticket limit"), required=False,
                                        initial=True)
    w_distance = _weight(gettext_lazy("Weight: distance"))
    w_load = _weight(gettext_lazy("Weight: current load"))
    w_speed = _weight(gettext_lazy("Weight: speed over the last 3 days"))
    senior_skill = forms.ModelChoiceField(
        label=gettext_lazy("Senior staff have the skill"), queryset=Skill.objects.none(), required=False,
        error_messages={"invalid_choice": gettext_lazy("Choose a skill of this company.")})
    senior_for = forms.ChoiceField(label=gettext_lazy("Senior staff only for"), choices=SENIOR_FOR, required=False)
    senior_bonus = _weight(gettext_lazy("Bonus for senior staff on VIP/SVIP tickets"))
    round_robin = forms.BooleanField(label=gettext_lazy("Equal scores take turns (round-robin)"), required=False,
                                     initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["skills"].queryset = Skill.objects.all()
        self.fields["senior_skill"].queryset = Skill.objects.all()
        for name, value in (("w_distance", 40), ("w_load", 40), ("w_speed", 20)):
            self.fields[name].initial = value

    def clean_overflow(self):
        words = [w.strip() for w in self.cleaned_data["overflow"].replace("，", ",").replace("→", ",").split(",")]
        words = [w for w in words if w]
        steps = [STEP_WORDS.get(w.lower(), w) for w in words]
        problems = dispatch.overflow_problems(steps)
        if "unknown" in problems:
            unknown = [w for w, s in zip(words, steps, strict=True) if s not in dispatch.STEPS]
            raise forms.ValidationError(_("Unknown step “%(step)s”: use store, region, nearby or tenant.")
                                        % {"step": unknown[0][:20]})
        if "empty" in problems:
            raise forms.ValidationError(_("Say where to look."))
        if "loop" in problems:
            raise forms.ValidationError(_("A step appears twice: the overflow would go round in a loop."))
        if "narrows" in problems:
            raise forms.ValidationError(_("Each step must be wider than the one before: store, region, nearby, "
                                          "tenant."))
        return steps

    def clean_skill_map(self):
        text = self.cleaned_data.get("skill_map") or ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > MAX_MAP_LINES:
            raise forms.ValidationError(_("At most %(n)d lines.") % {"n": MAX_MAP_LINES})
        pairs = []
        for line in lines:
            value, sep, skill = line.partition("=")
            if not sep or not value.strip() or not skill.strip():
                raise forms.ValidationError(_("“%(line)s” is not value=skill.") % {"line": line[:40]})
            pairs.append((value.strip()[:60], skill.strip()))
        names = {s for _v, s in pairs}
        known = dict(Skill.objects.filter(name__in=names).values_list("name", "pk"))
        mapping = {}
        for value, skill in pairs:
            if skill not in known:
                raise forms.ValidationError(_("“%(skill)s” is not a skill of this company.") % {"skill": skill[:40]})
            mapping[value] = known[skill]
        return mapping

    def clean(self):
        data = super().clean()
        if data.get("skill_by") == "field" and not data.get("skill_field"):
            self.add_error("skill_field", _("Say which field's value picks the skill."))
        if data.get("skill_by") and not data.get("skill_map"):
            self.add_error("skill_map", _("List which value needs which skill."))
        if data.get("senior_for") and not data.get("senior_skill"):
            self.add_error("senior_skill", _("Say which skill marks senior staff."))
        weights = [data.get(k) or 0 for k in ("w_distance", "w_load", "w_speed")]
        if not self.errors and not any(weights):
            self.add_error("w_load", _("Give at least one weight more than 0."))
        return data
