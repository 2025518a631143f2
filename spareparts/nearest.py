"""Which warehouse is nearest to a ticket: a pure calculator over plain data (no database), so the
order of candidates can be tested on its own. Distance is the great-circle (haversine) distance;
warehouses without coordinates come after those with, same region first."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class Place:
    """A warehouse as the calculator sees it: where it is and how much of one part it has free."""

    id: int
    name: str
    lat: float | None
    lng: float | None
    region_id: int | None = None
    available: int = 0
    stock_id: int | None = None
    kind: str = ""


@dataclass(frozen=True)
class Ranked:
    place: Place
    km: float | None


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _f(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)


def places_rank(places: list[Place], *, origin: tuple[float, float] | None,
                region_id: int | None = None) -> list[Ranked]:
    """`places` nearest first. With an origin, by distance (unknown coordinates last); without one,
    the ticket's region first. Ties go to the larger free quantity, then the lower id, so the
    order is stable."""
    ranked = []
    for place in places:
        lat, lng = _f(place.lat), _f(place.lng)
        km = distance_km(origin[0], origin[1], lat, lng) if origin is not None and lat is not None \
            and lng is not None else None
        ranked.append(Ranked(place, km))

    def key(r: Ranked):
        return (r.km is None, r.km if r.km is not None else 0.0,
                region_id is None or r.place.region_id != region_id, -r.place.available, r.place.id)

    return sorted(ranked, key=key)
