"""From a ticket to the calculator's TicketInput: the template's mapped fields (typed and
checked), the price book, the region class, the parties playing each role, the distance.

`onsite_hours` is the seam for the engineer's phone: when the check-in/check-out record (in the
tickets app) lands, it returns the minutes on site from there and the template's hours field
becomes the fallback. Nothing else here needs to change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.models import Customer, Region, Store
from tickets.extensions import PartUsed, parts_used
from tickets.models import Category, TicketTemplate
from tickets.selectors_visits import onsite_minutes as visits_onsite_minutes
from tickets.selectors_visits import onsite_minutes_by_ticket

from .calculator import MAX_MONEY, Part, TicketInput, altitude_clean, distance_km
from .models import ROLE_INPUT_PREFIX, Party, ServicePrice, SettlementFieldMap

MAX_QUANTITY = Decimal("100000")
ROW_FIELDS = ("id", "tenant_id", "template_id", "data", "priority", "source", "status", "category_id", "region_id",
              "store_id", "assignee_id", "closed_at", "customer_id", "customer__tier", "opportunity_id",
              "opportunity__amount", "opportunity__stage")


@dataclass(slots=True)
class TicketRow:
    """What settlement reads of a ticket: a `values()` row in a run (no model instance), or a
    model ticket's fields on the single-ticket path; the same input either way."""

    pk: int
    tenant_id: int
    template_id: int
    data: Mapping[str, Any]
    priority: str
    source: str
    status: str
    category_id: int | None
    region_id: int | None
    store_id: int | None
    assignee_id: int | None
    closed_at: datetime | None
    customer_tier: str
    customer_tags: tuple[str, ...]
    opportunity_amount: Decimal | None
    opportunity_stage: str


def row_from_ticket(ticket) -> TicketRow:
    customer, opportunity = ticket.customer, ticket.opportunity
    return TicketRow(
        ticket.pk, ticket.tenant_id, ticket.template_id, ticket.data or {}, ticket.priority, ticket.source,
        ticket.status, ticket.category_id, ticket.region_id, ticket.store_id, ticket.assignee_id, ticket.closed_at,
        customer.tier if customer else "", tuple(t.name for t in customer.tags.all()) if customer else (),
        opportunity.amount if opportunity else None, opportunity.stage if opportunity else "")


def rows_from_values(values: Sequence[Mapping[str, Any]]) -> list[TicketRow]:
    """`Ticket.objects.values(*ROW_FIELDS)` rows → TicketRows, the customers' tags in one query."""
    customers = {v["customer_id"] for v in values if v["customer_id"]}
    tags: dict[int, list[str]] = {}
    if customers:
        for customer_id, name in (Customer.tags.through.objects.filter(customer_id__in=customers)
                                  .order_by("tag__name").values_list("customer_id", "tag__name")):
            tags.setdefault(customer_id, []).append(name)
    return [TicketRow(
        v["id"], v["tenant_id"], v["template_id"], v["data"] or {}, v["priority"], v["source"], v["status"],
        v["category_id"], v["region_id"], v["store_id"], v["assignee_id"], v["closed_at"],
        (v["customer__tier"] or "") if v["customer_id"] else "", tuple(tags.get(v["customer_id"], ())),
        v["opportunity__amount"] if v["opportunity_id"] else None,
        (v["opportunity__stage"] or "") if v["opportunity_id"] else "") for v in values]


# What a run reads of a ticket when no ticket rule has a condition (RuleBook.needs_context): the
# context is not built, so neither its columns nor the customer's and opportunity's are read.
PLAIN_ROW_FIELDS = ("id", "tenant_id", "template_id", "data", "priority", "region_id", "store_id", "assignee_id",
                    "closed_at")


def rows_from_plain(values: Iterable[tuple[Any, ...]]) -> list[TicketRow]:
    """`Ticket.objects.values_list(*PLAIN_ROW_FIELDS)` rows → TicketRows without what only the
    context reads (source, status, category, customer, opportunity left empty)."""
    return [TicketRow(pk, tenant_id, template_id, data or {}, priority, "", "", None, region_id, store_id,
                      assignee_id, closed_at, "", (), None, "")
            for pk, tenant_id, template_id, data, priority, region_id, store_id, assignee_id, closed_at in values]


MAX_HOURS = Decimal("1000")
# The labels of the mapped numbers, made once: a lazy string per row costs a run of a million
# tickets seconds of proxy set-up for labels only an error message ever reads.
_HOURS, _FEE, _QUANTITY, _DISTANCE = (gettext_lazy("Working hours"), gettext_lazy("Fee"), gettext_lazy("Quantity"),
                                      gettext_lazy("Distance"))
_PART_QUANTITY, _PART_PRICE = gettext_lazy("Part quantity"), gettext_lazy("Part price")
_MAX_DISTANCE = Decimal("10000")


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
    hours = _number((ticket.data or {}).get(key), _HOURS, maximum=MAX_HOURS)
    return None if hours is None else int((hours * 60).to_integral_value())


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
        self.region_class: dict[int, str] = {pk: r.get("settlement_class", "") for pk, r in self.regions.items()}
        self._store_chain: dict[int, tuple[tuple[str, int], ...]] = {}
        self._price_memo: dict[tuple[str, date], Decimal | None] = {}
        self._readers: dict[int, _Reader] = {}
        self._party_memo: dict[tuple[int | None, int | None, int | None], tuple[tuple[str, int], ...]] = {}
        self._altitudes: dict[tuple[type, Any], int] = {}

    def reader(self, template_id: int) -> _Reader:
        """Where the template's mapped inputs sit in its tickets' data (worked out once per run)."""
        found = self._readers.get(template_id)
        if found is None:
            found = self._readers[template_id] = _reader(self.maps.get(template_id) or {})
        return found

    def altitude(self, value: Any) -> int:
        """altitude_clean, remembered for the few plain values a run's tickets repeat."""
        if value.__class__ not in (int, str, float):
            return altitude_clean(value)
        key = (value.__class__, value)
        found = self._altitudes.get(key)
        if found is None:
            found = altitude_clean(value)
            if len(self._altitudes) < 10_000:
                self._altitudes[key] = found
        return found

    def context(self, ticket: TicketRow) -> dict[str, Any]:
        """workflow.conditions.ticket_context, from these tables instead of the ticket's relations
        (the same keys; customer and opportunity come with the row)."""
        region: dict[str, Any] = self.regions.get(ticket.region_id or 0) or {}
        return {
            "priority": ticket.priority, "source": ticket.source, "status": ticket.status,
            "category": self.categories.get(ticket.category_id or 0, ""),
            "template": self.templates.get(ticket.template_id, ""),
            "customer.tier": ticket.customer_tier,
            "customer.tags": list(ticket.customer_tags),
            "opportunity.amount": ticket.opportunity_amount,
            "opportunity.stage": ticket.opportunity_stage,
            "store.code": (self.stores.get(ticket.store_id or 0) or {}).get("code", ""),
            "region.code": region.get("code", ""),
            "region.settlement_class": region.get("settlement_class", ""),
            "data": ticket.data,
        }

    def price_on(self, item_code: str, day: date) -> Decimal | None:
        """The item's price book version in force on `day` (the latest start on or before it)."""
        key = (item_code, day)
        if key not in self._price_memo:
            self._price_memo[key] = next((price for start, price in self.prices.get(item_code, ()) if start <= day),
                                         None)
        return self._price_memo[key]

    def store_chain(self, store_id: int | None) -> tuple[tuple[str, int], ...]:
        """(kind, party id) of the store's party and its parents (distributor, agent…), memoised."""
        key = store_id or 0
        if key not in self._store_chain:
            out, seen = [], set()
            party = self.parties.get(self.by_store.get(store_id, 0)) if store_id else None
            while party is not None and party.pk not in seen:
                seen.add(party.pk)
                out.append((party.kind, party.pk))
                party = self.parties.get(party.parent_id or 0)
            self._store_chain[key] = tuple(out)
        return self._store_chain[key]


def ticket_parties(*, ticket: TicketRow, mapping: Mapping[str, str],
                   cache: InputCache) -> tuple[tuple[str, int], ...]:
    """(role, party id) in the order the default earner is chosen: mapped roles, the assigned
    engineer, the store's party and its parents (distributor, agent…), the region's party."""
    return _parties(ticket, _reader(mapping).roles, cache)


def _parties(ticket: TicketRow, roles: tuple[tuple[str, Any], ...], cache: InputCache) -> tuple[tuple[str, int], ...]:
    data = ticket.data
    out = [(role, cache.by_user[uid]) for role, field in roles
           if type(uid := data.get(field)) is int and uid in cache.by_user]
    if not out:  # the common case: the same few (engineer, store, region) combinations all month
        key = (ticket.assignee_id, ticket.store_id, ticket.region_id)
        found = cache._party_memo.get(key)
        if found is None:
            found = _default_parties(ticket, cache)
            if len(cache._party_memo) < 100_000:
                cache._party_memo[key] = found
        return found
    return (*out, *_default_parties(ticket, cache))


def _default_parties(ticket: TicketRow, cache: InputCache) -> tuple[tuple[str, int], ...]:
    out = []
    if ticket.assignee_id in cache.by_user:
        out.append(("engineer", cache.by_user[ticket.assignee_id]))
    out.extend(cache.store_chain(ticket.store_id))
    if ticket.region_id in cache.by_region:
        out.append(("region", cache.by_region[ticket.region_id]))
    return tuple(out)


def _distance(ticket: TicketRow, location: Any, cache: InputCache) -> Decimal | None:
    if not isinstance(location, Mapping) or location.get("lat") is None:
        return None
    store: dict[str, Any] = cache.stores.get(ticket.store_id or 0) or {}
    if store.get("latitude") is None:
        return None
    origin = (store["latitude"], store["longitude"])
    return distance_km(float(origin[0]), float(origin[1]), float(location["lat"]), float(location["lng"]))


def _hours(minutes: int | None, typed: Any) -> Decimal | None:
    """The phone's recorded minutes on site when there are any, else the typed hours field."""
    if minutes:
        return (Decimal(minutes) / 60).quantize(Decimal("0.01"))
    hours = _number(typed, _HOURS, maximum=MAX_HOURS)
    if hours is None:
        return None
    return (Decimal(int((hours * 60).to_integral_value())) / 60).quantize(Decimal("0.01"))


def _parts(used: Sequence[PartUsed]) -> tuple[Part, ...]:
    """The parts consumed, checked like every other input (the provider is another app)."""
    out = []
    for p in used:
        quantity = _number(p.quantity, _PART_QUANTITY, maximum=MAX_QUANTITY)
        price = _number(p.unit_price, _PART_PRICE, maximum=MAX_MONEY)
        if quantity is None or price is None:
            raise ValidationError(_("Part %(sku)s has no quantity or price.") % {"sku": p.sku})
        out.append(Part(str(p.sku)[:40], str(p.name)[:80], quantity, price))
    return tuple(out)


_FLAGS = ("night", "urgent", "weekend", "height_work")


@dataclass(frozen=True, slots=True)
class _Reader:
    """A template's field mapping as the data keys of each input (None: not mapped)."""

    item: Any
    fee: Any
    quantity: Any
    altitude: Any
    flags: tuple[tuple[str, Any], ...]
    distance: Any
    location: Any
    milestones: Any
    hours: Any
    roles: tuple[tuple[str, Any], ...]  # (role, data key) of the mapped role inputs, in mapping order
    weekend_mapped: bool


def _reader(mapping: Mapping[str, Any]) -> _Reader:
    def key(name):
        return mapping.get(name) or None

    return _Reader(
        key("service_item"), key("fee"), key("quantity"), key("altitude_m"),
        tuple((flag, k) for flag in _FLAGS if (k := key(flag))), key("distance_km"), key("location"),
        key("milestones"), key("hours"),
        tuple((name[len(ROLE_INPUT_PREFIX):], field) for name, field in mapping.items()
              if name.startswith(ROLE_INPUT_PREFIX)),
        "weekend" in mapping)


def row_input(row: TicketRow, *, cache: InputCache, minutes: int | None = None,
              parts: Sequence[PartUsed] = (), zone: tzinfo | None = None, with_context: bool = True) -> TicketInput:
    """The calculator's view of a closed ticket row; a ValidationError names a bad mapped value.
    `minutes` on site and `parts` consumed come from the batch's one query each."""
    r = cache.reader(row.template_id)
    get = row.data.get
    # `zone` from a batch's caller: the current time zone looked up once, not per ticket
    closed = (row.closed_at or timezone.now()).astimezone(zone or timezone.get_current_timezone()).date()
    item = get(r.item) if r.item else None
    fee = _number(get(r.fee), _FEE, maximum=MAX_MONEY) if r.fee else None
    quantity = _number(get(r.quantity), _QUANTITY, maximum=MAX_QUANTITY) if r.quantity else None
    altitude = get(r.altitude) if r.altitude else None
    flags = {flag for flag, key in r.flags if get(key) is True}
    if row.priority == "urgent":
        flags.add("urgent")
    if not r.weekend_mapped and closed.weekday() >= 5:
        flags.add("weekend")
    distance = _number(get(r.distance), _DISTANCE, maximum=_MAX_DISTANCE) if r.distance else None
    if distance is None:
        distance = _distance(row, get(r.location) if r.location else None, cache)
    milestones = get(r.milestones) if r.milestones else None
    return TicketInput(
        ticket_id=row.pk,
        closed_on=closed,
        context=cache.context(row) if with_context else {},
        region_class=cache.region_class.get(row.region_id or 0, ""),
        unit_price=cache.price_on(str(item), closed) if item else None,
        fee=fee,
        quantity=quantity if quantity is not None else Decimal("1"),
        hours=_hours(minutes, get(r.hours)) if r.hours else None,
        flags=frozenset(flags),
        altitude_m=cache.altitude(altitude) if altitude not in (None, "") else None,
        distance_km=distance,
        milestones_done=tuple(str(m) for m in milestones) if isinstance(milestones, list) else (),
        parties=_parties(row, r.roles, cache),
        parts=_parts(parts) if parts else (),
    )


def ticket_input(*, ticket, cache: InputCache | None = None) -> TicketInput:
    """One ticket (a model instance): the single-ticket path (closing, the preview)."""
    cache = cache or InputCache()
    mapping = cache.maps.get(ticket.template_id) or {}
    minutes = visits_onsite_minutes(ticket=ticket) if mapping.get("hours") else None
    return row_input(row_from_ticket(ticket), cache=cache, minutes=minutes,
                     parts=parts_used(ticket_ids=[ticket.pk]).get(ticket.pk, ()))


def batch_inputs(rows: Sequence[TicketRow], *, cache: InputCache,
                 with_context: bool = True) -> list[tuple[TicketRow, TicketInput | None]]:
    """A run's batch of rows → inputs, with one query for the minutes on site and one call for
    the parts used, whatever the batch size. A row whose mapped values are bad gets None.
    `with_context=False` when no rule has a condition (RuleBook.needs_context): nothing reads it."""
    ids = [r.pk for r in rows]
    hourly = any((cache.maps.get(r.template_id) or {}).get("hours") for r in rows)
    minutes = onsite_minutes_by_ticket(ticket_ids=ids) if hourly else {}
    parts = parts_used(ticket_ids=ids)
    zone = timezone.get_current_timezone()
    out: list[tuple[TicketRow, TicketInput | None]] = []
    for row in rows:
        try:
            out.append((row, row_input(row, cache=cache, minutes=minutes.get(row.pk),
                                       parts=parts.get(row.pk, ()), zone=zone, with_context=with_context)))
        except ValidationError:
            out.append((row, None))
    return out
