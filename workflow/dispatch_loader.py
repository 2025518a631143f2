"""What a dispatch decision reads: the ticket's facts and place, the skills it needs, and each
overflow step's candidates as plain rows — two queries per step (staff with their load and
recent speed; their skills), never one per candidate — then the pure ranking of
workflow/dispatch.py. Writes nothing, so the simulation runs it too."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

from django.db.models import IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from scrm.models import Membership, RegionUserObjectPermission, Role, Skill, StaffProfile, StoreUserObjectPermission
from tickets.models import Ticket

from . import dispatch
from .dispatch_speed import SPEED_DAYS
from .models import Workload


def rule_config(rule: dict, ticket_skills: frozenset) -> dispatch.Config:
    return dispatch.Config(
        overflow=tuple(rule.get("overflow") or ("store", "region", "tenant")),
        radius_km=float(rule.get("radius_km") or 30), skills=ticket_skills,
        on_duty_only=bool(rule.get("on_duty_only", True)), under_capacity=bool(rule.get("under_capacity", True)),
        w_distance=int(rule.get("w_distance") or 0), w_load=int(rule.get("w_load") or 0),
        w_speed=int(rule.get("w_speed") or 0), senior_for=rule.get("senior_for") or "",
        senior_bonus=int(rule.get("senior_bonus") or 0), round_robin=bool(rule.get("round_robin", True)))


def _coords(value: Any) -> tuple[float, float] | None:
    if isinstance(value, dict) and value.get("lat") is not None and value.get("lng") is not None:
        try:
            return float(value["lat"]), float(value["lng"])
        except (TypeError, ValueError):
            return None
    return None


def ticket_facts(ticket: Ticket, rule: dict | None = None) -> dict:
    """What dispatch needs of the ticket, in one query joining only what the ticket has and the
    rule reads (the category's name or the template's code only when they pick the skill)."""
    fields = ["store_id", "region_id"]
    if ticket.store_id is not None:
        fields += ["store__name", "store__latitude", "store__longitude", "store__region_id", "store__region__name"]
    if ticket.region_id is not None:
        fields.append("region__name")
    if ticket.customer_id is not None:
        fields.append("customer__tier")
    by = (rule or {}).get("skill_by")
    if by == "category" and ticket.category_id is not None:
        fields.append("category__name")
    elif by == "template":
        fields.append("template__slug")
    row = Ticket.objects.filter(pk=ticket.pk).values(*fields).first() or {}
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


def _cos_deg(deg: float) -> float:
    return abs(math.cos(math.radians(deg)))


class CandidateLoader:
    """Reads the candidates of one overflow step as `dispatch.Candidate`s in two queries: the
    staff rows with their load and recent speed (correlated one-row lookups of the Workload
    roll-up by its unique (tenant, user) index, so neither grows with the open tasks), and their
    skills. `extra_load` adds simulated tasks (the simulation's running tally). The names of
    the skills the ticket needs are collected from the same skill rows."""

    def __init__(self, *, role: str, place: dispatch.Place, config: dispatch.Config, senior_skill: int | None,
                 extra_load: dict | None = None, now: datetime.datetime | None = None):
        self.role, self.place, self.config, self.senior_skill = role, place, config, senior_skill
        self.extra_load = extra_load or {}
        self.now = now or timezone.now()
        self.queries = 0
        self.skill_names: dict[int, str] = {}

    def staff(self, step: str) -> list[Any]:
        # The person's role is selected (a one-row lookup by Membership's unique (tenant, user),
        # probed for the step's few profiles) and compared below: as a WHERE (IN or EXISTS) the
        # planner, misjudging how many profiles the store's OR keeps, hashes every member first.
        qs = StaffProfile.objects.annotate(member_role=Subquery(Membership.objects.filter(
            user_id=OuterRef("user_id"), is_active=True, user__is_active=True).values("role")[:1]))
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
            # A box in SQL (no trigonometry), the exact great circle in Python.
            dlat = self.config.radius_km / 111.0
            dlng = self.config.radius_km / max(1.0, 111.32 * _cos_deg(place.lat))
            qs = qs.filter(lat__gte=place.lat - dlat, lat__lte=place.lat + dlat,
                           lng__gte=place.lng - dlng, lng__lte=place.lng + dlng)
        work = Workload.objects.filter(user_id=OuterRef("user_id"))
        since = self.now - datetime.timedelta(days=SPEED_DAYS)
        qs = qs.annotate(
            load=Coalesce(Subquery(work.values("open_tasks")[:1]), Value(0), output_field=IntegerField()),
            # The median stored at the person's last completed task, forgotten once that is
            # older than the window (workflow/dispatch_speed.py).
            speed=Subquery(work.filter(speed_at__gte=since).values("speed_minutes")[:1]))
        self.queries += 1
        return [r for r in qs.values("id", "user_id", "display_name", "home_store_id", "home_store__region_id", "lat",
                                     "lng", "on_duty", "max_open_tickets", "load", "speed", "member_role")
                if r["member_role"] == self.role]

    def skills(self, step: str, profile_ids: list[int]) -> dict[int, set]:
        out: dict[int, set] = {}
        needed = self.config.skills
        self.queries += 1
        through = StaffProfile.skills.through.objects
        # The whole company: the tenant's profiles as a subquery rather than thousands of ids.
        links = (through.filter(staffprofile_id__in=StaffProfile.objects.values("pk")) if step == "tenant"
                 else through.filter(staffprofile_id__in=profile_ids))
        for profile_id, skill_id, name in links.values_list("staffprofile_id", "skill_id", "skill__name"):
            out.setdefault(profile_id, set()).add(skill_id)
            if skill_id in needed:
                self.skill_names[skill_id] = name
        return out

    def __call__(self, step: str) -> list[dispatch.Candidate]:
        rows = self.staff(step)
        if not rows:
            return []
        skills = self.skills(step, [r["id"] for r in rows])
        step_stores = frozenset([self.place.store_id]) if step == "store" else frozenset()
        step_regions = frozenset([self.place.region_id]) if step == "region" else frozenset()
        extra, senior_skill = self.extra_load, self.senior_skill
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
                load=(r["load"] or 0) + extra.get(r["user_id"], 0),
                capacity=r["max_open_tickets"],
                speed_minutes=round(r["speed"], 1) if r["speed"] is not None else None,
                senior=senior_skill is not None and senior_skill in own))
        return out


def rule_key(rule: dict, template_id: Any) -> str:
    text = json.dumps([template_id, rule], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def dispatch_evaluate(rule: dict, ticket: Ticket, *, rotation_after: int | Callable[[], int | None] | None = None,
                      extra_load: dict | None = None) -> tuple[dispatch.Decision, dict]:
    """Run a dispatch rule for a ticket without writing anything: the decision, and what the
    reasons need (place names, skill names, where the location came from, queries used).
    `rotation_after` may be a function, called only when equal scores need the round-robin."""
    facts = ticket_facts(ticket, rule)
    place, source = place_of(facts, rule)
    needed = skills_needed(rule, facts)
    config = rule_config(rule, needed)
    senior = rule.get("senior_skill") if isinstance(rule.get("senior_skill"), int) else None
    loader = CandidateLoader(role=rule.get("role") or Role.ENGINEER, place=place, config=config,
                             senior_skill=senior, extra_load=extra_load)
    decision = dispatch.dispatch_decide(config, place, loader, rotation_after=rotation_after)
    names = dict(loader.skill_names)
    queries = loader.queries + 1
    if needed - names.keys():  # nobody reached has the skill: name it from the catalogue
        names.update(Skill.objects.filter(pk__in=needed - names.keys()).values_list("pk", "name"))
        queries += 1
    names = dict(sorted(names.items(), key=lambda kv: (kv[1], kv[0])))  # the catalogue's order, by name
    context = {"store": facts.get("store__name") or "", "region": facts.get("region__name") or facts.get(
        "store__region__name") or "", "skills": names, "source": source, "radius": config.radius_km,
        "queries": queries, "place": place, "config": config}
    return decision, context
