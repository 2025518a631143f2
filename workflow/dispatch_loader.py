"""What a dispatch decision reads: the ticket's facts and place, the skills it needs, and each
overflow step's candidates as plain rows — one statement per step (staff with their role, load,
recent speed and skills), never one per candidate — then the pure ranking of
workflow/dispatch.py. Writes nothing, so the simulation runs it too."""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from scrm.config_cache import scoped_tenant_id, tenant_config
from scrm.models import (
    Customer,
    Membership,
    Region,
    RegionUserObjectPermission,
    Role,
    Skill,
    StaffProfile,
    Store,
    StoreUserObjectPermission,
)
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


@functools.cache
def _facts_sql(vendor: str) -> str:
    """One statement for what dispatch needs of a ticket (outer joins by primary key: each a
    one-row probe, cheaper than choosing the joins per ticket in Python)."""
    from tickets.models import Category, TicketTemplate

    # Table names from the models, values as parameters.
    return (
        f"SELECT t.store_id, t.region_id, s.name, s.latitude, s.longitude, s.region_id, sr.name, r.name, c.tier, "  # noqa: S608
        f"cat.name, tpl.slug FROM {_table(Ticket)} t "
        f"LEFT OUTER JOIN {_table(Store)} s ON s.id = t.store_id "
        f"LEFT OUTER JOIN {_table(Region)} sr ON sr.id = s.region_id "
        f"LEFT OUTER JOIN {_table(Region)} r ON r.id = t.region_id "
        f"LEFT OUTER JOIN {_table(Customer)} c ON c.id = t.customer_id "
        f"LEFT OUTER JOIN {_table(Category)} cat ON cat.id = t.category_id "
        f"LEFT OUTER JOIN {_table(TicketTemplate)} tpl ON tpl.id = t.template_id "
        f"WHERE t.id = %s AND t.tenant_id = %s")


_FACTS = ("store_id", "region_id", "store__name", "store__latitude", "store__longitude", "store__region_id",
          "store__region__name", "region__name", "customer__tier", "category__name", "template__slug")


def ticket_facts(ticket: Ticket, rule: dict | None = None) -> dict:
    """What dispatch needs of the ticket (its store, region, customer tier, category name and
    template code), in one query of the tenant in scope."""
    with connection.cursor() as cursor:
        cursor.execute(_facts_sql(connection.vendor), [ticket.pk, scoped_tenant_id()])
        row = cursor.fetchone()
    facts = dict(zip(_FACTS, row, strict=True)) if row else {}
    facts["data"] = ticket.data or {}
    return facts


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


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _staff_sql(vendor: str, step: str) -> str:
    """The statement reading one overflow step's staff with their role, load, recent speed and
    skill ids, built once per (database, step): a dispatch decision is on the intake's path, and
    an ORM query costs more Python to build than this one costs PostgreSQL to run.

    The role, load and speed are correlated one-row lookups by unique (tenant, user) indexes,
    probed for the step's few profiles: with the role as a WHERE (IN, EXISTS or a join) the
    planner, misjudging how many profiles the store's OR keeps, hashes every member first. The
    skill ids come as one comma-separated text per person (no second round trip)."""
    through = StaffProfile.skills.through
    agg = ("string_agg(ps.skill_id::text, ',')" if vendor == "postgresql" else "group_concat(ps.skill_id, ',')")
    where = {
        "store": f"AND (p.home_store_id = %s OR p.user_id IN (SELECT g.user_id FROM "  # noqa: S608
                 f"{_table(StoreUserObjectPermission)} g WHERE g.content_object_id = %s))",
        "region": f"AND (hs.region_id = %s OR p.user_id IN (SELECT g.user_id FROM "  # noqa: S608
                  f"{_table(RegionUserObjectPermission)} g WHERE g.content_object_id = %s))",
        # A box (no trigonometry in SQL, so SQLite runs the same statement); the exact great
        # circle in Python.
        "nearby": "AND COALESCE(p.latitude, hs.latitude) BETWEEN %s AND %s "
                  "AND COALESCE(p.longitude, hs.longitude) BETWEEN %s AND %s",
        "tenant": "",
    }[step]
    # Table names from the models, values as parameters.
    return (
        f"SELECT p.id, p.user_id, p.display_name, p.home_store_id, hs.region_id, "  # noqa: S608
        f"COALESCE(p.latitude, hs.latitude), COALESCE(p.longitude, hs.longitude), p.on_duty, p.max_open_tickets, "
        f"COALESCE((SELECT w.open_tasks FROM {_table(Workload)} w WHERE w.tenant_id = p.tenant_id "
        f"AND w.user_id = p.user_id), 0), "
        f"(SELECT w.speed_minutes FROM {_table(Workload)} w WHERE w.tenant_id = p.tenant_id "
        f"AND w.user_id = p.user_id AND w.speed_at >= %s), "
        f"(SELECT m.role FROM {_table(Membership)} m INNER JOIN {_table(get_user_model())} u ON u.id = m.user_id "
        f"WHERE m.tenant_id = p.tenant_id AND m.user_id = p.user_id AND m.is_active AND u.is_active), "
        f"(SELECT {agg} FROM {_table(through)} ps WHERE ps.staffprofile_id = p.id) "
        f"FROM {_table(StaffProfile)} p LEFT OUTER JOIN {_table(Store)} hs ON hs.id = p.home_store_id "
        f"WHERE p.tenant_id = %s {where} ORDER BY p.display_name, p.id")


def skill_names() -> dict[int, str]:
    """The tenant's skills {id: name}, from the configuration cache (Skill is watched)."""
    return tenant_config().get("dispatch_skill_names", lambda: dict(Skill.objects.values_list("pk", "name")))


class CandidateLoader:
    """Reads the candidates of one overflow step as `dispatch.Candidate`s in one statement (the
    staff rows with their role, load, recent speed and skill ids: see `_staff_sql`), so it grows
    neither with the open tasks nor per candidate. `extra_load` adds simulated tasks (the
    simulation's running tally)."""

    def __init__(self, *, role: str, place: dispatch.Place, config: dispatch.Config, senior_skill: int | None,
                 extra_load: dict | None = None, now: datetime.datetime | None = None):
        self.role, self.place, self.config, self.senior_skill = role, place, config, senior_skill
        self.extra_load = extra_load or {}
        self.now = now or timezone.now()
        self.queries = 0

    def staff(self, step: str) -> list[tuple]:
        place = self.place
        params: list[Any] = [self.now - datetime.timedelta(days=SPEED_DAYS), scoped_tenant_id()]
        if step == "store":
            if place.store_id is None:
                return []
            params += [place.store_id, place.store_id]
        elif step == "region":
            if place.region_id is None:
                return []
            params += [place.region_id, place.region_id]
        elif step == "nearby":
            if place.lat is None or place.lng is None:
                return []
            dlat = self.config.radius_km / 111.0
            dlng = self.config.radius_km / max(1.0, 111.32 * _cos_deg(place.lat))
            params += [place.lat - dlat, place.lat + dlat, place.lng - dlng, place.lng + dlng]
        self.queries += 1
        with connection.cursor() as cursor:
            cursor.execute(_staff_sql(connection.vendor, step), params)
            rows = cursor.fetchall()
        return [r for r in rows if r[11] == self.role]

    def __call__(self, step: str) -> list[dispatch.Candidate]:
        rows = self.staff(step)
        if not rows:
            return []
        step_stores = frozenset([self.place.store_id]) if step == "store" else frozenset()
        step_regions = frozenset([self.place.region_id]) if step == "region" else frozenset()
        extra, senior_skill = self.extra_load, self.senior_skill
        out = []
        for (_pk, user_id, name, store_id, region_id, lat, lng, on_duty, capacity, load, speed, _role,
             skills) in rows:
            own = frozenset(int(s) for s in skills.split(",")) if skills else frozenset()
            out.append(dispatch.Candidate(
                user_id=user_id, name=name,
                store_ids=step_stores | ({store_id} if store_id else set()),
                region_ids=step_regions | ({region_id} if region_id else set()),
                lat=float(lat) if lat is not None else None, lng=float(lng) if lng is not None else None,
                skills=own, on_duty=bool(on_duty), load=max(0, (load or 0) + extra.get(user_id, 0)), capacity=capacity,
                speed_minutes=round(speed, 1) if speed is not None else None,
                senior=senior_skill is not None and senior_skill in own))
        return out


def rule_key(rule: dict, template_id: Any) -> str:
    text = json.dumps([template_id, rule], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def dispatch_evaluate(rule: dict, ticket: Ticket | None, *,
                      rotation_after: int | Callable[[], int | None] | None = None,
                      extra_load: dict | None = None, facts: dict | None = None) -> tuple[dispatch.Decision, dict]:
    """Run a dispatch rule for a ticket without writing anything: the decision, and what the
    reasons need (place names, skill names, where the location came from, queries used).
    `rotation_after` may be a function, called only when equal scores need the round-robin.
    `facts` (the keys of `ticket_facts`) stand in for a ticket that is not stored: the
    simulation's generated day."""
    read = facts is None
    if facts is None:
        assert ticket is not None
        facts = ticket_facts(ticket, rule)
    place, source = place_of(facts, rule)
    needed = skills_needed(rule, facts)
    config = rule_config(rule, needed)
    senior = rule.get("senior_skill") if isinstance(rule.get("senior_skill"), int) else None
    loader = CandidateLoader(role=rule.get("role") or Role.ENGINEER, place=place, config=config,
                             senior_skill=senior, extra_load=extra_load)
    decision = dispatch.dispatch_decide(config, place, loader, rotation_after=rotation_after)
    queries = loader.queries + int(read)
    catalogue = skill_names() if needed else {}
    names = {pk: catalogue.get(pk, f"#{pk}") for pk in needed}
    names = dict(sorted(names.items(), key=lambda kv: (kv[1], kv[0])))  # the catalogue's order, by name
    context = {"store": facts.get("store__name") or "", "region": facts.get("region__name") or facts.get(
        "store__region__name") or "", "skills": names, "source": source, "radius": config.radius_km,
        "queries": queries, "place": place, "config": config}
    return decision, context
