"""From a ticket to the calculator's TicketInput: the template's mapped fields (typed and
checked), the price book, the region class, the parties playing each role, the distance.

`onsite_hours` is the seam for the engineer's phone: when the check-in/check-out record (in the
tickets app) lands, it returns the minutes on site from there and the template's hours field
becomes the fallback. Nothing else here needs to change."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.models import Region, Store
from tickets.models import Category, TicketTemplate
from tickets.selectors_visits import onsite_minutes as visits_onsite_minutes

from .calculator import TicketInput, altitude_clean, distance_km
from .models import ROLE_INPUT_PREFIX, Party, ServicePrice, SettlementFieldMap

MAX_QUANTITY = Decimal("100000")
MAX_HOURS = Decimal("1000")


def _number(value: Any, label: Any, *, maximum: Decimal) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(_("%(label)s must be a number.") % {"label": label}) from None
    if not number.is_finite() or number < 0 or number > maximum:
        raise ValidationError(_("%(label)s must be between 0 and %(max)s.") % {"label": label, "max": maximum})
    return number


def onsite_minutes(*, ticket, mapping: Mapping[str, str]) -> int | None:
    """Minutes the engineer spent on site, for a template that bills hours: the phone's
    check-in/check-out record (现场签到) when there is one, else the template's hours field (×60)."""
    key = mapping.get("hours")
    if not key:
        return None
    recorded = visits_onsite_minutes(ticket=ticket)
    if recorded:
        return recorded
    hours = _number((ticket.data or {}).get(key), gettext_lazy("Working hours"), maximum=MAX_HOURS)
    return None if hours is None else int((hours * 60).to_integral_value())


def onsite_hours(*, ticket, mapping: Mapping[str, str]) -> Decimal | None:
    minutes = onsite_minutes(ticket=ticket, mapping=mapping)
    return None if minutes is None else (Decimal(minutes) / 60).quantize(Decimal("0.01"))


class InputCache:
    """The tenant's small settlement tables read once (parties, prices, field maps), so a run
    over a million tickets does not query them per ticket."""

    def __init__(self):
        self.parties = {p.pk: p for p in Party.objects.filter(is_active=True)}
        self.by_user = {p.user_id: p.pk for p in self.parties.values() if p.user_id}
        self.by_store = {p.store_id: p.pk for p in self.parties.values() if p.store_id}
        self.by_region = {p.region_id: p.pk for p in self.parties.values() if p.region_id}
        self.prices: dict[str, list[tuple[date, Decimal]]] = {}
        for code, start, price in (ServicePrice.objects.filter(item__is_active=True)
                                   .order_by("item__code", "-effective_from")
                                   .values_list("item__code", "effective_from", "price")):
            self.prices.setdefault(code, []).append((start, price))
        self.maps = dict(SettlementFieldMap.objects.values_list("template_id", "mapping"))
        self.regions: dict[int, dict[str, Any]] = {
            r["id"]: dict(r) for r in Region.objects.values("id", "code", "settlement_class")}
        self.stores: dict[int, dict[str, Any]] = {
            s["id"]: dict(s) for s in Store.objects.values("id", "code", "latitude", "longitude")}
        self.templates: dict[int, str] = dict(TicketTemplate.objects.values_list("id", "slug"))
        self.categories: dict[int, str] = dict(Category.objects.values_list("id", "code"))

    def context(self, ticket) -> dict[str, Any]:
        """workflow.conditions.ticket_context, from these tables instead of the ticket's relations
        (the same keys; customer and opportunity still come with the ticket)."""
        customer, opportunity = ticket.customer, ticket.opportunity
        region: dict[str, Any] = self.regions.get(ticket.region_id) or {}
        return {
            "priority": ticket.priority, "source": ticket.source, "status": ticket.status,
            "category": self.categories.get(ticket.category_id, ""),
            "template": self.templates.get(ticket.template_id, ""),
            "customer.tier": customer.tier if customer else "",
            "customer.tags": [t.name for t in customer.tags.all()] if customer else [],
            "opportunity.amount": opportunity.amount if opportunity else None,
            "opportunity.stage": opportunity.stage if opportunity else "",
            "store.code": (self.stores.get(ticket.store_id) or {}).get("code", ""),
            "region.code": region.get("code", ""),
            "region.settlement_class": region.get("settlement_class", ""),
            "data": ticket.data or {},
        }

    def price_on(self, item_code: str, day: date) -> Decimal | None:
        """The item's price book version in force on `day` (the latest start on or before it)."""
        return next((price for start, price in self.prices.get(item_code, ()) if start <= day), None)


def ticket_parties(*, ticket, mapping: Mapping[str, str], cache: InputCache) -> tuple[tuple[str, int], ...]:
    """(role, party id) in the order the default earner is chosen: mapped roles, the assigned
    engineer, the store's party and its parents (distributor, agent…), the region's party."""
    data = ticket.data or {}
    user_roles = [(key[len(ROLE_INPUT_PREFIX):], data.get(field)) for key, field in mapping.items()
                  if key.startswith(ROLE_INPUT_PREFIX)]
    out = [(role, cache.by_user[uid]) for role, uid in user_roles if uid in cache.by_user]
    if ticket.assignee_id in cache.by_user:
        out.append(("engineer", cache.by_user[ticket.assignee_id]))
    party = cache.parties.get(cache.by_store.get(ticket.store_id, 0))
    seen = set()
    while party is not None and party.pk not in seen:
        seen.add(party.pk)
        out.append((party.kind, party.pk))
        party = cache.parties.get(party.parent_id or 0)
    if ticket.region_id in cache.by_region:
        out.append(("region", cache.by_region[ticket.region_id]))
    return tuple(out)


def _distance(ticket, location: Any, cache: InputCache) -> Decimal | None:
    if not isinstance(location, Mapping) or location.get("lat") is None:
        return None
    store: dict[str, Any] = cache.stores.get(ticket.store_id) or {}
    if store.get("latitude") is None:
        return None
    origin = (store["latitude"], store["longitude"])
    return distance_km(float(origin[0]), float(origin[1]), float(location["lat"]), float(location["lng"]))


def ticket_input(*, ticket, cache: InputCache | None = None) -> TicketInput:
    """The calculator's view of a closed ticket; a ValidationError names a bad mapped value."""
    cache = cache or InputCache()
    mapping: Mapping[str, str] = cache.maps.get(ticket.template_id) or {}
    data = ticket.data or {}

    def value(name):
        key = mapping.get(name)
        return data.get(key) if key else None

    closed = timezone.localtime(ticket.closed_at or timezone.now()).date()
    item = value("service_item")
    fee = _number(value("fee"), gettext_lazy("Fee"), maximum=Decimal("100000000"))
    quantity = _number(value("quantity"), gettext_lazy("Quantity"), maximum=MAX_QUANTITY)
    altitude = value("altitude_m")
    flags = {flag for flag in ("night", "urgent", "weekend", "height_work") if value(flag) is True}
    if ticket.priority == "urgent":
        flags.add("urgent")
    if "weekend" not in mapping and closed.weekday() >= 5:
        flags.add("weekend")
    distance = _number(value("distance_km"), gettext_lazy("Distance"), maximum=Decimal("10000"))
    if distance is None:
        distance = _distance(ticket, value("location"), cache)
    milestones = value("milestones")
    return TicketInput(
        ticket_id=ticket.pk,
        closed_on=closed,
        context=cache.context(ticket),
        region_class=(cache.regions.get(ticket.region_id) or {}).get("settlement_class", ""),
        unit_price=cache.price_on(str(item), closed) if item else None,
        fee=fee,
        quantity=quantity if quantity is not None else Decimal("1"),
        hours=onsite_hours(ticket=ticket, mapping=mapping),
        flags=frozenset(flags),
        altitude_m=altitude_clean(altitude) if altitude not in (None, "") else None,
        distance_km=distance,
        milestones_done=tuple(str(m) for m in milestones) if isinstance(milestones, list) else (),
        parties=ticket_parties(ticket=ticket, mapping=mapping, cache=cache),
    )
