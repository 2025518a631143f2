"""Smart dispatch (智能派单) as a pure calculator: who of the candidates gets a ticket, and why.

Plain dataclasses in, a `Decision` out — no database, so the rules are table-tested
(tests/workflow/test_dispatch_scoring.py). `workflow/dispatch_loader.py` loads the candidates of
each overflow step (a bounded number of queries per step) and stores the decision's reasons on
the task; the simulation runs the same function without writing.

The walk: the overflow steps in order (store → region → nearby within N km → tenant). Each step
adds the people it reaches who were not reached before; they are filtered (role pool, on duty,
under capacity, required skills, the senior pool for VIP/SVIP); the first step with anyone
eligible decides, scoring by distance, load and recent speed (weights are points, each factor
normalised to 0…1 among the eligible of the step), plus a bonus for senior staff on a VIP/SVIP
ticket. Equal scores go round-robin: the first tied person after the last one picked."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

STEPS = ("store", "region", "nearby", "tenant")
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Candidate:
    """A person who could get the ticket, as the loader read them."""

    user_id: int
    name: str
    store_ids: frozenset = frozenset()  # home store and store grants
    region_ids: frozenset = frozenset()  # home store's region and region grants
    lat: float | None = None
    lng: float | None = None
    skills: frozenset = frozenset()  # skill ids
    on_duty: bool = True
    load: int = 0  # open tasks held now
    capacity: int = 20  # StaffProfile.max_open_tickets
    speed_minutes: float | None = None  # median minutes from a task's creation to their first action, last 3 days
    senior: bool = False


@dataclass(frozen=True)
class Place:
    """Where the ticket is and who it is for."""

    store_id: int | None = None
    region_id: int | None = None
    lat: float | None = None
    lng: float | None = None
    tier: str = "normal"  # Customer.tier: normal / vip / svip


@dataclass(frozen=True)
class Config:
    """A dispatch rule's parameters, as the rule kind normalised them."""

    overflow: tuple = ("store", "region", "tenant")
    radius_km: float = 30.0
    skills: frozenset = frozenset()  # required skill ids (fixed plus mapped)
    on_duty_only: bool = True
    under_capacity: bool = True
    w_distance: int = 40
    w_load: int = 40
    w_speed: int = 20
    senior_for: str = ""  # "" (nobody), "vip" (VIP and SVIP), "svip": tiers that only senior staff serve
    senior_bonus: int = 0  # points for senior staff on a VIP/SVIP ticket
    round_robin: bool = True


@dataclass
class Scored:
    """One candidate's outcome: where they were reached, and either why they were left out
    (`excluded`: a code, with `missing` skill ids for no_skill) or their score and its parts."""

    candidate: Candidate
    step: str
    distance_km: float | None = None
    excluded: str = ""  # off_duty / full / no_skill / not_senior / "" (eligible)
    missing: tuple = ()
    score: float = 0.0
    parts: dict = field(default_factory=dict)
    picked: bool = False
    tie: bool = False  # eligible, scored as high as the one picked, lost the round-robin


@dataclass
class Decision:
    picked: Scored | None
    step: str | None  # the step that decided; None: nobody
    ranked: list  # eligible of the deciding step, best first
    excluded: list  # everyone left out on the way, in the order reached
    tried: list  # the steps walked
    senior_only: bool = False

    @property
    def overflowed(self) -> bool:
        """Whether the ticket went beyond the first step (跨店支援)."""
        return bool(self.step and self.tried and self.step != self.tried[0])

    @property
    def why_nobody(self) -> str:
        """The commonest reason people were left out when nobody was picked ("" if someone was)."""
        if self.picked is not None:
            return ""
        if not self.excluded:
            return "nobody"
        counts: dict[str, int] = {}
        for s in self.excluded:
            counts[s.excluded] = counts.get(s.excluded, 0) + 1
        return max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]


def distance_km(lat1: float | None, lng1: float | None, lat2: float | None, lng2: float | None) -> float | None:
    """Great-circle distance (haversine), or None when either point is unknown."""
    if None in (lat1, lng1, lat2, lng2):
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)  # type: ignore[arg-type]
    dp, dl = p2 - p1, math.radians(lng2 - lng1)  # type: ignore[operator]
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def in_step(step: str, cand: Candidate, place: Place, dist: float | None, config: Config) -> bool:
    """Whether a step reaches this candidate."""
    if step == "store":
        return place.store_id is not None and place.store_id in cand.store_ids
    if step == "region":
        return place.region_id is not None and place.region_id in cand.region_ids
    if step == "nearby":
        return dist is not None and dist <= config.radius_km
    return step == "tenant"


def senior_only(config: Config, place: Place) -> bool:
    if config.senior_for == "vip":
        return place.tier in ("vip", "svip")
    if config.senior_for == "svip":
        return place.tier == "svip"
    return False


def _exclusion(cand: Candidate, config: Config, seniors_only: bool) -> tuple[str, tuple]:
    if config.on_duty_only and not cand.on_duty:
        return "off_duty", ()
    if config.under_capacity and cand.load >= cand.capacity:
        return "full", ()
    missing = tuple(sorted(config.skills - cand.skills))
    if missing:
        return "no_skill", missing
    if seniors_only and not cand.senior:
        return "not_senior", ()
    return "", ()


def _spread(values: dict[int, float], *, lower_is_better: bool) -> dict[int, float]:
    """Each value as 0…1 among the others (1 = best); all equal → 1 for everyone."""
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    if hi == lo:
        return dict.fromkeys(values, 1.0)
    return {k: ((hi - v) if lower_is_better else (v - lo)) / (hi - lo) for k, v in values.items()}


def score_step(eligible: list[Scored], config: Config, place: Place, seniors_only: bool) -> None:
    """Fill in each eligible candidate's score and its parts (points per factor)."""
    dist = _spread({s.candidate.user_id: s.distance_km for s in eligible if s.distance_km is not None},
                   lower_is_better=True)
    speed = _spread({s.candidate.user_id: s.candidate.speed_minutes for s in eligible
                     if s.candidate.speed_minutes is not None}, lower_is_better=True)
    vip = place.tier in ("vip", "svip")
    for s in eligible:
        c = s.candidate
        free = 1.0 - min(1.0, c.load / c.capacity) if c.capacity > 0 else 0.0
        parts = {
            # Unknown distance or speed scores half: neither rewarded nor ruled out.
            "distance": config.w_distance * dist.get(c.user_id, 0.5 if s.distance_km is None else 0.0),
            "load": config.w_load * free,
            "speed": config.w_speed * speed.get(c.user_id, 0.5),
        }
        if vip and c.senior and config.senior_bonus:
            parts["senior"] = float(config.senior_bonus)
        s.parts = {k: round(v, 1) for k, v in parts.items()}
        s.score = round(sum(parts.values()), 1)


def _tie_break(top: list[Scored], config: Config, rotation_after: int | Callable[[], int | None] | None) -> Scored:
    ids = sorted(s.candidate.user_id for s in top)
    chosen = ids[0]
    last = rotation_after() if callable(rotation_after) and config.round_robin and len(ids) > 1 else rotation_after
    if config.round_robin and isinstance(last, int):
        chosen = next((i for i in ids if i > last), ids[0])
    return next(s for s in top if s.candidate.user_id == chosen)


def dispatch_decide(config: Config, place: Place, fetch: Callable[[str], Iterable[Candidate]], *,
                    rotation_after: int | Callable[[], int | None] | None = None) -> Decision:
    """Walk the overflow steps; `fetch(step)` gives the people a step may reach (the loader's
    query, or a table in tests) — people already reached by an earlier step are skipped. The
    first step with anyone eligible decides. `rotation_after` (the last person the round-robin
    picked) may be a function, asked only when scores tie."""
    seen: set[int] = set()
    excluded: list[Scored] = []
    tried: list[str] = []
    seniors_only = senior_only(config, place)
    for step in config.overflow:
        tried.append(step)
        eligible: list[Scored] = []
        for cand in fetch(step):
            if cand.user_id in seen:
                continue
            dist = distance_km(place.lat, place.lng, cand.lat, cand.lng)
            if not in_step(step, cand, place, dist, config):
                continue
            seen.add(cand.user_id)
            code, missing = _exclusion(cand, config, seniors_only)
            scored = Scored(candidate=cand, step=step, distance_km=None if dist is None else round(dist, 1),
                            excluded=code, missing=missing)
            (excluded if code else eligible).append(scored)
        if not eligible:
            continue
        score_step(eligible, config, place, seniors_only)
        best = max(s.score for s in eligible)
        top = [s for s in eligible if s.score == best]
        picked = _tie_break(top, config, rotation_after)
        picked.picked = True
        for s in top:
            s.tie = s is not picked
        ranked = sorted(eligible, key=lambda s: (not s.picked, -s.score, s.candidate.user_id))
        return Decision(picked=picked, step=step, ranked=ranked, excluded=excluded, tried=tried,
                        senior_only=seniors_only)
    return Decision(picked=None, step=None, ranked=[], excluded=excluded, tried=tried, senior_only=seniors_only)


def overflow_problems(overflow: list) -> list[str]:
    """Codes of what is wrong with an overflow order: unknown step, a step twice (a loop), or a
    narrower step after a wider one (the walk only widens). Empty: fine."""
    problems = []
    if not overflow:
        problems.append("empty")
    unknown = [s for s in overflow if s not in STEPS]
    if unknown:
        problems.append("unknown")
    if len(set(overflow)) != len(overflow):
        problems.append("loop")
    known = [STEPS.index(s) for s in overflow if s in STEPS]
    if known != sorted(known):
        problems.append("narrows")
    return problems
