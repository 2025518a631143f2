"""The `dispatch` handler rule kind (智能派单): its parameter form (the designer's node editor and
the publish check), the loader that reads candidates as plain rows — a fixed number of queries
per overflow step, never one per candidate — and the reasons it stores on the task.
The ranking itself is workflow/dispatch.py, a pure function."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Avg, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.models import (
    Membership,
    RegionUserObjectPermission,
    Role,
    Skill,
    StaffProfile,
    StoreUserObjectPermission,
)
from tickets.models import Ticket

from . import dispatch
from .routing import MAX_REASONS, HandlerChoice, HandlerRuleKind, handler_rule_register

SPEED_DAYS = 3
STEP_WORDS = {"store": "store", "region": "region", "nearby": "nearby", "tenant": "tenant",
              "本店": "store", "门店": "store", "本区域": "region", "区域": "region", "附近": "nearby",
              "全公司": "tenant", "公司": "tenant"}
STEP_LABELS = {"store": gettext_lazy("the ticket's store"), "region": gettext_lazy("the ticket's region"),
               "nearby": gettext_lazy("within %(km)s km"), "tenant": gettext_lazy("the whole company")}
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


def _config(rule: dict, ticket_skills: frozenset) -> dispatch.Config:
    return dispatch.Config(
        overflow=tuple(rule.get("overflow") or ("store", "region", "tenant")),
        radius_km=float(rule.get("radius_km") or 30), skills=ticket_skills,
        on_duty_only=bool(rule.get("on_duty_only", True)), under_capacity=bool(rule.get("under_capacity", True)),
        w_distance=int(rule.get("w_distance") or 0), w_load=int(rule.get("w_load") or 0),
        w_speed=int(rule.get("w_speed") or 0), senior_for=rule.get("senior_for") or "",
        senior_bonus=int(rule.get("senior_bonus") or 0), round_robin=bool(rule.get("round_robin", True)))


# --- the loader ------------------------------------------------------------------------------

def _coords(value: Any) -> tuple[float, float] | None:
    if isinstance(value, dict) and value.get("lat") is not None and value.get("lng") is not None:
        try:
            return float(value["lat"]), float(value["lng"])
        except (TypeError, ValueError):
            return None
    return None


def ticket_facts(ticket: Ticket) -> dict:
    """What dispatch needs of the ticket, in one query."""
    row = (Ticket.objects.filter(pk=ticket.pk)
           .values("store_id", "region_id", "store__name", "region__name", "store__latitude", "store__longitude",
                   "store__region_id", "store__region__name", "customer__tier", "category__name", "template__slug")
           .first()) or {}
    row["data"] = ticket.data or {}
    return row


def place_of(facts: dict, rule: dict) -> tuple[dispatch.Place, str]:
    """The ticket's place and where its coordinates came from ("field", "store" or "")."""
    data = facts.get("data") or {}
    coords = _coords(data.get(rule.get("location_field"))) if rule.get("location_field") else None
    if coords is None:
        coords = next((c for c in map(_coords, data.values()) if c is not None), None)
    source = "field" if coords else ""
    if coords is None and facts.get("store__latitude") is not None and facts.get("store__longitude") is not None:
        coords, source = (float(facts["store__latitude"]), float(facts["store__longitude"])), "store"
    return dispatch.Place(store_id=facts.get("store_id"), region_id=facts.get("region_id") or facts.get(
        "store__region_id"), lat=coords[0] if coords else None, lng=coords[1] if coords else None,
        tier=facts.get("customer__tier") or "normal"), source


def skills_needed(rule: dict, facts: dict) -> frozenset:
    """The fixed skills plus the one the ticket's category / template / field value maps to."""
    needed = {s for s in rule.get("skills") or [] if isinstance(s, int)}
    mapping = rule.get("skill_map") or {}
    by = rule.get("skill_by")
    values: list = []
    if by == "category":
        values = [facts.get("category__name")]
    elif by == "template":
        values = [facts.get("template__slug")]
    elif by == "field":
        value = (facts.get("data") or {}).get(rule.get("skill_field"))
        values = value if isinstance(value, list) else [value]
    for value in values:
        if isinstance(value, str | int) and str(value) in mapping:
            needed.add(mapping[str(value)])
    return frozenset(needed)


class CandidateLoader:
    """Reads the candidates of one overflow step as `dispatch.Candidate`s: the staff rows (one
    query), their skills, load and recent speed (one query each) — four per step, whatever the
    number of staff. `extra_load` adds simulated tasks (the simulation's running tally)."""

    def __init__(self, *, role: str, place: dispatch.Place, config: dispatch.Config, senior_skill: int | None,
                 extra_load: dict | None = None, now: datetime.datetime | None = None):
        self.role, self.place, self.config, self.senior_skill = role, place, config, senior_skill
        self.extra_load = extra_load or {}
        self.now = now or timezone.now()
        self.queries = 0

    def staff(self, step: str):
        # The role as a subquery on Membership (tenant-scoped), not a join: the planner then
        # starts from the store's or region's few profiles instead of every member of the role.
        members = Membership.objects.filter(role=self.role, is_active=True, user__is_active=True).values("user_id")
        qs = StaffProfile.objects.filter(user_id__in=members)
        place = self.place
        if step == "store":
            if place.store_id is None:
                return []
            qs = qs.filter(Q(home_store_id=place.store_id) | Q(user_id__in=StoreUserObjectPermission.objects.filter(
                content_object_id=place.store_id).values("user_id")))
        elif step == "region":
            if place.region_id is None:
                return []
            qs = qs.filter(Q(home_store__region_id=place.region_id) | Q(
                user_id__in=RegionUserObjectPermission.objects.filter(content_object_id=place.region_id)
                .values("user_id")))
        qs = qs.annotate(lat=Coalesce("latitude", "home_store__latitude"),
                         lng=Coalesce("longitude", "home_store__longitude"))
        if step == "nearby":
            if place.lat is None or place.lng is None:
                return []
            # A box in SQL (indexable, no trigonometry), the exact great circle in Python.
            dlat = self.config.radius_km / 111.0
            dlng = self.config.radius_km / max(1.0, 111.32 * _cos_deg(place.lat))
            qs = qs.filter(lat__gte=place.lat - dlat, lat__lte=place.lat + dlat,
                           lng__gte=place.lng - dlng, lng__lte=place.lng + dlng)
        self.queries += 1
        return list(qs.values("id", "user_id", "display_name", "home_store_id", "home_store__region_id", "lat", "lng",
                              "on_duty", "max_open_tickets"))

    def __call__(self, step: str) -> list[dispatch.Candidate]:
        rows = self.staff(step)
        if not rows:
            return []
        from .models import Task, TaskStatus, Workload

        profile_ids = [r["id"] for r in rows]
        user_ids = [r["user_id"] for r in rows]
        skills: dict[int, set] = {}
        for profile_id, skill_id in StaffProfile.skills.through.objects.filter(
                staffprofile_id__in=profile_ids).values_list("staffprofile_id", "skill_id"):
            skills.setdefault(profile_id, set()).add(skill_id)
        load = dict(Workload.objects.filter(user_id__in=user_ids).values_list("user_id", "open_tasks"))
        took = ExpressionWrapper(F("completed_at") - F("created_at"), output_field=DurationField())
        speed = {}
        for user_id, avg in (Task.objects.filter(completed_by_id__in=user_ids, status=TaskStatus.DONE,
                                                 completed_at__gte=self.now - datetime.timedelta(days=SPEED_DAYS))
                             .values("completed_by_id").annotate(avg=Avg(took)).order_by()
                             .values_list("completed_by_id", "avg")):
            if avg is not None:
                seconds = avg.total_seconds() if isinstance(avg, datetime.timedelta) else float(avg) / 1e6
                speed[user_id] = round(seconds / 60, 1)
        self.queries += 4
        step_stores = frozenset([self.place.store_id]) if step == "store" else frozenset()
        step_regions = frozenset([self.place.region_id]) if step == "region" else frozenset()
        out = []
        for r in rows:
            own = skills.get(r["id"], set())
            out.append(dispatch.Candidate(
                user_id=r["user_id"], name=r["display_name"],
                store_ids=step_stores | ({r["home_store_id"]} if r["home_store_id"] else set()),
                region_ids=step_regions | ({r["home_store__region_id"]} if r["home_store__region_id"] else set()),
                lat=float(r["lat"]) if r["lat"] is not None else None,
                lng=float(r["lng"]) if r["lng"] is not None else None,
                skills=frozenset(own), on_duty=r["on_duty"],
                load=load.get(r["user_id"], 0) + self.extra_load.get(r["user_id"], 0),
                capacity=r["max_open_tickets"], speed_minutes=speed.get(r["user_id"]),
                senior=self.senior_skill is not None and self.senior_skill in own))
        return out


def _cos_deg(deg: float) -> float:
    import math

    return abs(math.cos(math.radians(deg)))


def rule_key(rule: dict, template_id: Any) -> str:
    text = json.dumps([template_id, rule], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def dispatch_evaluate(rule: dict, ticket: Ticket, *, rotation_after: int | None = None,
                      extra_load: dict | None = None) -> tuple[dispatch.Decision, dict]:
    """Run a dispatch rule for a ticket without writing anything: the decision, and what the
    reasons need (place names, skill names, where the location came from, queries used)."""
    facts = ticket_facts(ticket)
    place, source = place_of(facts, rule)
    needed = skills_needed(rule, facts)
    config = _config(rule, needed)
    senior = rule.get("senior_skill") if isinstance(rule.get("senior_skill"), int) else None
    loader = CandidateLoader(role=rule.get("role") or Role.ENGINEER, place=place, config=config,
                             senior_skill=senior, extra_load=extra_load)
    decision = dispatch.dispatch_decide(config, place, loader, rotation_after=rotation_after)
    names = dict(Skill.objects.filter(pk__in=needed).values_list("pk", "name")) if needed else {}
    context = {"store": facts.get("store__name") or "", "region": facts.get("region__name") or facts.get(
        "store__region__name") or "", "skills": names, "source": source, "radius": config.radius_km,
        "queries": loader.queries + 2 + (1 if needed else 0), "place": place, "config": config}
    return decision, context


# --- the rule kind ---------------------------------------------------------------------------

def _km(value: float | str | None) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return f"{value:g}"


@handler_rule_register
class DispatchRule(HandlerRuleKind):
    """Smart dispatch: the best eligible person by distance, load and recent speed, widening
    from the ticket's store to its region, nearby stores and the whole company."""

    name = "dispatch"
    label = gettext_lazy("Smart dispatch")
    form_class = DispatchRuleForm
    reason_texts = {
        "picked": gettext_lazy("Picked"),
        "ranked": gettext_lazy("Lower score than the one picked"),
        "tie": gettext_lazy("Same score as the one picked; round-robin chose the other"),
        "off_duty": gettext_lazy("Off duty"),
        "full": gettext_lazy("Full: %(load)d open, limit %(cap)d"),
        "no_skill": gettext_lazy("Lacks the skill %(missing)s"),
        "not_senior": gettext_lazy("Not senior: this customer's tier is served by senior staff only"),
        "nobody": gettext_lazy("Nobody eligible (looked in %(steps)s; %(n)d considered, mostly: %(main)s)"),
        "nobody_empty": gettext_lazy("Nobody with the role %(role)s in %(steps)s"),
    }
    cause_texts = {"off_duty": gettext_lazy("off duty"), "full": gettext_lazy("full"),
                   "no_skill": gettext_lazy("lacking the skill"), "not_senior": gettext_lazy("not senior")}
    piece_texts = {
        "where_store": gettext_lazy("works in the ticket's store %(place)s"),
        "where_region": gettext_lazy("covers the ticket's region %(place)s"),
        "where_nearby": gettext_lazy("within %(radius)s km"),
        "where_tenant": gettext_lazy("elsewhere in the company"),
        "overflow": gettext_lazy("cross-store support: nobody eligible in %(first)s"),
        "distance": gettext_lazy("%(km)s km away"),
        "no_distance": gettext_lazy("distance unknown"),
        "load": gettext_lazy("%(load)d open now (limit %(cap)d)"),
        "skills": gettext_lazy("skills %(skills)s"),
        "speed": gettext_lazy("average response %(min)s min over 3 days"),
        "no_speed": gettext_lazy("no responses in 3 days"),
        "senior": gettext_lazy("senior staff for a VIP customer"),
        "score": gettext_lazy("score %(score)s"),
        "best": gettext_lazy("the one picked scored %(best)s"),
    }

    def form_data(self, rule):
        data = super().form_data(rule)
        if isinstance(data.get("overflow"), list):
            data["overflow"] = ", ".join(str(s) for s in data["overflow"])
        mapping = data.get("skill_map")
        if isinstance(mapping, dict):
            ids = [v for v in mapping.values() if isinstance(v, int)]
            names = dict(Skill.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
            # An id that is not this tenant's skill stays "#id", which the form refuses by name.
            data["skill_map"] = "\n".join(f"{k}={names.get(v, f'#{v}')}" for k, v in mapping.items())
        return data

    def params(self, cleaned_data):
        params = {"role": cleaned_data["role"], "overflow": cleaned_data["overflow"],
                  "on_duty_only": bool(cleaned_data.get("on_duty_only")),
                  "under_capacity": bool(cleaned_data.get("under_capacity")),
                  "round_robin": bool(cleaned_data.get("round_robin"))}
        for key in ("radius_km", "w_distance", "w_load", "w_speed", "senior_bonus"):
            if cleaned_data.get(key) is not None:
                params[key] = cleaned_data[key]
        if cleaned_data.get("skills"):
            params["skills"] = sorted(s.pk for s in cleaned_data["skills"])
        for key in ("skill_by", "skill_field", "senior_for"):
            if cleaned_data.get(key):
                params[key] = cleaned_data[key]
        if cleaned_data.get("skill_map"):
            params["skill_map"] = cleaned_data["skill_map"]
        if cleaned_data.get("senior_skill") is not None:
            params["senior_skill"] = cleaned_data["senior_skill"].pk
        return params

    def summary(self, rule, users=None):
        role = dict(Role.choices).get(rule.get("role"), rule.get("role"))
        steps = " → ".join(self._step_label(s, rule.get("radius_km") or 30) for s in rule.get("overflow") or [])
        return _("Smart dispatch: %(role)s, %(steps)s") % {"role": role, "steps": steps}

    @staticmethod
    def _step_label(step, radius):
        label = STEP_LABELS.get(step)
        return str(label) % {"km": _km(radius)} if label is not None and step == "nearby" else str(label or step)

    # --- reasons ---

    def reason_why(self, reason):
        code = reason.get("code")
        params = dict(reason.get("params") or {})
        # Step and role names are stored as codes and named here, in the reader's language.
        if params.get("cause") in self.cause_texts:
            params["main"] = str(self.cause_texts[params["cause"]])
        if isinstance(params.get("tried"), list):
            params["steps"] = " → ".join(self._step_label(s, params.get("radius")) for s in params["tried"])
        if isinstance(params.get("first_step"), str):
            params["first"] = self._step_label(params["first_step"], params.get("radius"))
        if params.get("role_code"):
            params["role"] = str(dict(Role.choices).get(params["role_code"], params["role_code"]))
        head = self.reason_texts.get(code)
        if head is None:
            return ""
        try:
            head_text = str(head) % params if "%(" in str(head) else str(head)
        except (KeyError, TypeError, ValueError):
            head_text = str(head)
        pieces = []
        for key in params.get("pieces") or []:
            text = self.piece_texts.get(key)
            if text is None:
                continue
            try:
                pieces.append(str(text) % params)
            except (KeyError, TypeError, ValueError):
                continue
        if not pieces:
            return head_text
        if code in ("picked", "ranked", "tie"):
            return _("%(head)s: %(pieces)s") % {"head": head_text, "pieces": _(", ").join(pieces)}
        return _("%(head)s (%(pieces)s)") % {"head": head_text, "pieces": _(", ").join(pieces)}

    def _reason(self, scored: dispatch.Scored, code: str, context: dict, decision: dispatch.Decision, **params):
        c = scored.candidate
        pieces = [f"where_{scored.step}"]
        params.update(place=context["store"] if scored.step == "store" else context["region"],
                      radius=_km(context["radius"]))
        if code in ("picked", "ranked", "tie") and decision.overflowed and scored.step == decision.step:
            pieces.append("overflow")
            params["first_step"] = decision.tried[0]
        if scored.distance_km is not None:
            pieces.append("distance")
            params["km"] = _km(scored.distance_km)
        elif code in ("picked", "ranked", "tie"):
            pieces.append("no_distance")
        pieces.append("load")
        params.update(load=c.load, cap=c.capacity)
        if context["skills"] and code in ("picked", "ranked", "tie"):
            pieces.append("skills")
            params["skills"] = "、".join(context["skills"].values())
        if code == "no_skill":
            params["missing"] = "、".join(context["skills"].get(s, f"#{s}") for s in scored.missing)
        if c.speed_minutes is not None:
            pieces.append("speed")
            params["min"] = _km(c.speed_minutes)
        elif code in ("picked", "ranked", "tie"):
            pieces.append("no_speed")
        if "senior" in scored.parts:
            pieces.append("senior")
        if code in ("picked", "ranked", "tie"):
            pieces.append("score")
            params["score"] = f"{scored.score:g}"
            params["parts"] = scored.parts
        if code == "ranked" and decision.picked is not None:
            pieces.append("best")
            params["best"] = f"{decision.picked.score:g}"
        params["pieces"] = pieces
        reason = {"user_id": c.user_id, "name": c.name, "picked": scored.picked, "rule": self.name, "code": code,
                  "params": params}
        reason["why"] = self.reason_why(reason)
        return reason

    def reasons_for(self, decision: dispatch.Decision, context: dict, rule: dict) -> list[dict]:
        reasons = []
        for scored in decision.ranked:
            code = "picked" if scored.picked else ("tie" if scored.tie else "ranked")
            reasons.append(self._reason(scored, code, context, decision))
        for scored in decision.excluded:
            reasons.append(self._reason(scored, scored.excluded, context, decision))
        reasons = reasons[:MAX_REASONS]
        if decision.picked is None:
            where = {"tried": list(decision.tried), "radius": _km(context["radius"])}
            if decision.excluded:
                params = {**where, "n": len(decision.excluded), "cause": decision.why_nobody}
                code = "nobody"
            else:
                params = {**where, "role_code": rule.get("role") or "", "cause": "nobody"}
                code = "nobody_empty"
            reason = {"user_id": None, "name": "", "picked": False, "rule": self.name, "code": code, "params": params}
            reason["why"] = self.reason_why(reason)
            reasons.insert(0, reason)
        return reasons

    # --- choosing ---

    def choose(self, rule, ctx, *, many):
        from .models import DispatchRotation

        ticket = ctx.ticket
        key = rule_key(rule, ticket.template_id)
        rotation = DispatchRotation.objects.filter(rule_key=key).values_list("last_user_id", flat=True).first()
        decision, context = dispatch_evaluate(rule, ticket, rotation_after=rotation)
        reasons = self.reasons_for(decision, context, rule)
        if decision.picked is None:
            return HandlerChoice(reasons=reasons, summary=reasons[0]["why"])
        ids = [s.candidate.user_id for s in decision.ranked] if many else [decision.picked.candidate.user_id]
        users = {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)}
        picked_id = decision.picked.candidate.user_id
        if not many and any(s.tie for s in decision.ranked):
            DispatchRotation.objects.update_or_create(tenant_id=ticket.tenant_id, rule_key=key,
                                                      defaults={"last_user_id": picked_id})
        return HandlerChoice(users=[users[i] for i in ids if i in users], reasons=reasons,
                             summary=_("%(name)s: %(why)s") % {"name": decision.picked.candidate.name,
                                                               "why": reasons[0]["why"]})
