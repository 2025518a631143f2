"""Every read of the parts library: catalogue, levels, ledger, a ticket's parts and where they are,
reorder and suggestion lists — and `ticket_parts_priced`, the one read settlement should use for
the parts a ticket consumed and their prices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from scrm.config_cache import tenant_config
from scrm.models import Membership, Role
from scrm.selectors import store_cached
from tickets.extensions import PartUsed, ticket_ids_q

from .models import (
    PURCHASE_OPEN,
    BillOfMaterials,
    Movement,
    MovementKind,
    Part,
    PurchaseRequest,
    PurchaseStatus,
    ReservationStatus,
    Stock,
    Transfer,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)
from .nearest import Place

MAX_CODE = 64


def part_by_code(*, code: Any) -> Part | None:
    """The active part whose barcode or SKU is `code` (in the tenant in scope), or None."""
    if not isinstance(code, str):
        return None
    code = code.strip()
    if not code or len(code) > MAX_CODE:
        return None
    return Part.objects.filter(Q(barcode=code) | Q(sku=code), is_active=True).order_by("pk").first()


def part_search(*, q: str, limit: int = 20) -> QuerySet[Part]:
    q = (q or "").strip()[:50]
    qs = Part.objects.filter(is_active=True)
    if q:
        qs = qs.filter(Q(sku__icontains=q) | Q(name__icontains=q) | Q(barcode=q) | Q(compatible_models__icontains=q))
    return qs.order_by("sku")[:limit]


def part_list(*, q: str = "") -> QuerySet[Part]:
    """The catalogue with each part's totals over all warehouses."""
    qs = Part.objects.all()
    q = (q or "").strip()[:50]
    if q:
        qs = qs.filter(Q(sku__icontains=q) | Q(name__icontains=q) | Q(barcode=q) | Q(compatible_models__icontains=q))
    return qs.annotate(total_on_hand=Sum("stocks__on_hand"), total_reserved=Sum("stocks__reserved")).order_by("sku")


def bom_templates():
    """The tenant's ticket templates, each with `bom_count`, the number of parts on its bill."""
    from django.db.models import Count, OuterRef, Subquery

    from tickets.models import TicketTemplate

    counts = (BillOfMaterials.objects.filter(template=OuterRef("pk")).order_by().values("template")
              .annotate(n=Count("pk")).values("n"))
    return TicketTemplate.objects.annotate(bom_count=Subquery(counts)).order_by("name")


def bom_lines(*, template) -> QuerySet[BillOfMaterials]:
    return BillOfMaterials.objects.filter(template=template).select_related("part").order_by("part__sku")


def warehouse_list() -> QuerySet[Warehouse]:
    return Warehouse.objects.select_related("region", "store", "owner").order_by("kind", "code")


def stock_list(*, warehouse: Warehouse | None = None, low_only: bool = False) -> QuerySet[Stock]:
    qs = Stock.objects.select_related("warehouse", "part")
    if warehouse is not None:
        qs = qs.filter(warehouse=warehouse)
    if low_only:
        qs = qs.filter(part__reorder_point__gt=0, on_hand__lt=F("reserved") + F("part__reorder_point"))
    return qs.order_by("warehouse__code", "part__sku")


def movement_list(*, warehouse: Warehouse | None = None, part: Part | None = None, ticket=None) -> QuerySet[Movement]:
    qs = Movement.objects.select_related("warehouse", "part", "ticket", "user")
    if warehouse is not None:
        qs = qs.filter(warehouse=warehouse)
    if part is not None:
        qs = qs.filter(part=part)
    if ticket is not None:
        qs = qs.filter(ticket=ticket)
    return qs.order_by("-created_at", "-id")


def transfer_list(*, open_only: bool = False) -> QuerySet[Transfer]:
    qs = Transfer.objects.select_related("part", "source", "destination")
    if open_only:
        qs = qs.filter(status=TransferStatus.IN_TRANSIT)
    return qs.order_by("-created_at", "-id")


PURCHASE_FILTERS = ("open", *PurchaseStatus.values, "all")


def purchase_request_list(*, status: str = "open") -> QuerySet[PurchaseRequest]:
    """Purchase requests newest first: `open` (draft or ordered, the default), one status, or `all`."""
    qs = PurchaseRequest.objects.select_related("part", "warehouse", "ordered_by")
    if status == "open":
        qs = qs.filter(status__in=PURCHASE_OPEN)
    elif status in PurchaseStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def reorder_recipients(*, warehouse: Warehouse) -> list:
    """Who hears that a part runs low: the warehouse's keeper (every warehouse keeper when it has
    none), purchasing, and the tenant's managers and admins. One query."""
    roles = [Role.ADMIN, Role.MANAGER, Role.PURCHASING]
    if warehouse.keeper_id is None:
        roles.append(Role.WAREHOUSE_KEEPER)
    who = Q(role__in=roles) | Q(user_id=warehouse.keeper_id) if warehouse.keeper_id else Q(role__in=roles)
    return [m.user for m in Membership.objects.filter(who, is_active=True, user__is_active=True)
            .select_related("user").order_by("user_id")]


# --- a ticket's parts -------------------------------------------------------------------------


def ticket_origin(ticket) -> tuple[tuple[float, float] | None, int | None]:
    """Where a ticket is: an address field with coordinates in its data, else its store's
    coordinates; and its region (the store's when it has none). The store comes from the
    tenant's configuration cache (`scrm.selectors.store_cached`), not a query."""
    store = store_cached(ticket.store_id) if ticket.store_id else None
    region_id = ticket.region_id or (store.region_id if store is not None else None)
    for value in (ticket.data or {}).values():
        if isinstance(value, dict) and value.get("lat") is not None and value.get("lng") is not None:
            try:
                return (float(value["lat"]), float(value["lng"])), region_id
            except (TypeError, ValueError):
                continue
    if store is not None and store.latitude is not None and store.longitude is not None:
        return (float(store.latitude), float(store.longitude)), region_id
    return None, region_id


def stock_places(*, part: Part, engineer=None) -> list[Place]:
    """Every active warehouse that could serve a ticket (not other engineers' vans) with what it
    has free of `part`: two queries, whatever the number of warehouses."""
    warehouses = Warehouse.objects.filter(is_active=True).filter(
        ~Q(kind=WarehouseKind.VAN) | Q(owner_id=getattr(engineer, "pk", None) or 0))
    levels = {s["warehouse_id"]: s for s in Stock.objects.filter(part=part, warehouse__is_active=True)
              .values("id", "warehouse_id", "on_hand", "reserved")}
    places = []
    for w in warehouses.values("id", "name", "latitude", "longitude", "region_id"):
        level = levels.get(w["id"])
        places.append(Place(
            id=w["id"], name=w["name"], region_id=w["region_id"],
            lat=None if w["latitude"] is None else float(w["latitude"]),
            lng=None if w["longitude"] is None else float(w["longitude"]),
            available=(level["on_hand"] - level["reserved"]) if level else 0,
            stock_id=level["id"] if level else None))
    return places


@dataclass(frozen=True)
class Depot:
    """What the reservation path needs of a warehouse, cached per tenant and config stamp."""

    name: str
    lat: float | None
    lng: float | None
    region_id: int | None
    kind: str
    owner_id: int | None


def warehouse_depots() -> dict[int, Depot]:
    """Every active warehouse of the tenant in scope by id, from the per-process configuration
    cache (`scrm.config_cache`; a warehouse's save replaces the stamp, `config_watch` in
    apps.py): the reservation path then reads only the stock rows of the part, no join."""

    def load() -> dict[int, Depot]:
        return {pk: Depot(name, None if lat is None else float(lat), None if lng is None else float(lng),
                          region_id, kind, owner_id)
                for pk, name, lat, lng, region_id, kind, owner_id in Warehouse.objects.filter(is_active=True)
                .values_list("id", "name", "latitude", "longitude", "region_id", "kind", "owner_id")}

    return tenant_config().get("spareparts.warehouses", load)


def stock_candidates(*, part: Part, quantity: int, engineer_id: int | None = None) -> list[Place]:
    """The warehouses that could serve a reservation of `quantity` of `part` right now (free stock
    enough; active; not another engineer's van), as Places for the nearest-first ranking. One
    query on the part's stock rows (the warehouses come from the cache; a part is stocked in a
    few of them, so the free quantity is compared here rather than built into the query), no
    lock: the reservation's conditional UPDATE re-checks the level."""
    depots = warehouse_depots()
    places = []
    for stock_id, w_id, on_hand, reserved in Stock.objects.filter(part_id=part.pk).values_list(
            "id", "warehouse_id", "on_hand", "reserved"):
        if on_hand - reserved < quantity:
            continue
        depot = depots.get(w_id)
        other_van = depot is not None and depot.kind == WarehouseKind.VAN and (
            engineer_id is None or depot.owner_id != engineer_id)
        if depot is None or other_van:
            continue
        places.append(Place(id=w_id, name=depot.name, region_id=depot.region_id, lat=depot.lat, lng=depot.lng,
                            available=on_hand - reserved, stock_id=stock_id, kind=depot.kind))
    return places


def ticket_part_needs(ticket) -> dict[int, int]:
    """Part id → quantity the ticket needs: its template's bill of materials plus every `parts`
    field of its data (a list of {"part": id, "qty": n})."""
    needs: dict[int, int] = {}
    for part_id, qty in BillOfMaterials.objects.filter(template_id=ticket.template_id).values_list(
            "part_id", "quantity"):
        needs[part_id] = needs.get(part_id, 0) + qty
    fields = getattr(ticket.template_version, "fields", None) or []
    for field in fields:
        if isinstance(field, dict) and field.get("type") == "parts":
            for line in (ticket.data or {}).get(field.get("key")) or []:
                if isinstance(line, dict) and isinstance(line.get("part"), int) and isinstance(line.get("qty"), int) \
                        and line["qty"] > 0:
                    needs[line["part"]] = needs.get(line["part"], 0) + line["qty"]
    return needs


@dataclass(frozen=True)
class Hold:
    """What a ticket reserved of one part in one warehouse, added up from its ledger lines."""

    part_id: int
    part_name: str
    warehouse_id: int
    warehouse_name: str
    warehouse_address: str
    reserved: int
    consumed: int
    released: int
    distance_km: Decimal | None

    @property
    def held(self) -> int:
        """Still reserved: to be used on site or given back."""
        return self.reserved - self.consumed - self.released

    @property
    def status(self) -> str:
        if self.held > 0:
            return ReservationStatus.RESERVED
        return ReservationStatus.CONSUMED if self.consumed else ReservationStatus.RELEASED

    @property
    def status_label(self) -> str:
        return str(ReservationStatus(self.status).label)

    @property
    def quantity(self) -> int:
        """The units this hold is about: what was kept (held + used), or what was given back."""
        return (self.reserved - self.released) or self.released


def ticket_reservations(*, ticket) -> list[Hold]:
    """The ticket's parts and where to take them from (warehouse, its address and the distance it
    was chosen at), one row per part and warehouse in the order they were first reserved: one
    query over the ticket's ledger lines that moved a reservation."""
    rows = (Movement.objects.filter(ticket=ticket).exclude(reserved_delta=0)
            .values("part_id", "part__name", "warehouse_id", "warehouse__name", "warehouse__address")
            .annotate(first=Min("pk"), distance=Max("distance_km"),
                      reserved=Sum("quantity", filter=Q(kind=MovementKind.RESERVE)),
                      consumed=Sum("quantity", filter=Q(kind=MovementKind.CONSUME)),
                      released=Sum("quantity", filter=Q(kind=MovementKind.RELEASE)))
            .order_by("first"))
    return [Hold(part_id=r["part_id"], part_name=r["part__name"], warehouse_id=r["warehouse_id"],
                 warehouse_name=r["warehouse__name"], warehouse_address=r["warehouse__address"],
                 reserved=r["reserved"] or 0, consumed=r["consumed"] or 0, released=r["released"] or 0,
                 # SQLite's MAX() hands a decimal back as a float: one decimal place, as stored.
                 distance_km=None if r["distance"] is None else Decimal(str(r["distance"])).quantize(Decimal("0.1")))
            for r in rows]


@dataclass(frozen=True)
class PricedPart:
    """One part consumed on a ticket, net of returns, with its catalogue price (fen)."""

    part_id: int
    sku: str
    name: str
    unit: str
    quantity: int
    unit_price_fen: int

    @property
    def amount_fen(self) -> int:
        return self.quantity * self.unit_price_fen


def ticket_parts_priced(*, ticket) -> list[PricedPart]:
    """What settlement reads for a ticket's parts lines: consumed minus returned per part, at the
    catalogue price in fen. One query."""
    rows = (Movement.objects.filter(ticket=ticket, kind__in=[MovementKind.CONSUME, MovementKind.RETURN])
            .values("part_id", "part__sku", "part__name", "part__unit", "part__price_fen")
            .annotate(used=Sum("quantity", filter=Q(kind=MovementKind.CONSUME)),
                      back=Sum("quantity", filter=Q(kind=MovementKind.RETURN)))
            .order_by("part__sku"))
    out = []
    for r in rows:
        qty = (r["used"] or 0) - (r["back"] or 0)
        if qty > 0:
            out.append(PricedPart(r["part_id"], r["part__sku"], r["part__name"], r["part__unit"], qty,
                                  r["part__price_fen"]))
    return out


def parts_used(*, ticket_ids) -> dict[int, list[PartUsed]]:
    """The `tickets.extensions.parts_used` provider (settlement's parts lines): per ticket, each
    part consumed net of returns, at the catalogue price in yuan. One query for any number of
    tickets; tickets of another tenant, or with nothing (net) used, map to nothing."""
    ids = {pk for pk in ticket_ids if isinstance(pk, int) and not isinstance(pk, bool)}
    if not ids:
        return {}
    rows = (Movement.objects.filter(ticket_ids_q(ids), kind__in=[MovementKind.CONSUME, MovementKind.RETURN])
            .values("ticket_id", "part_id", "part__sku", "part__name", "part__price_fen")
            .annotate(used=Sum("quantity", filter=Q(kind=MovementKind.CONSUME), default=0),
                      back=Sum("quantity", filter=Q(kind=MovementKind.RETURN), default=0))
            .order_by("ticket_id", "part__sku"))
    found: dict[int, list[PartUsed]] = {}
    for r in rows:
        net = r["used"] - r["back"]
        if net > 0 and r["ticket_id"] in ids:
            found.setdefault(r["ticket_id"], []).append(PartUsed(
                sku=r["part__sku"], name=r["part__name"], quantity=Decimal(net),
                unit_price=(Decimal(r["part__price_fen"]) / 100).quantize(Decimal("0.01"))))
    return found


# --- verification and suggestions ------------------------------------------------------------------


def ledger_mismatches() -> list[dict]:
    """Stock rows whose level differs from the sum of their movements, and tickets that used or
    gave back more of a part in a warehouse than they reserved there (should be empty)."""
    sums = {(r["warehouse_id"], r["part_id"]): r for r in Movement.objects.values("warehouse_id", "part_id")
            .annotate(on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")).order_by()}
    bad = []
    for s in Stock.objects.values("id", "warehouse_id", "part_id", "on_hand", "reserved"):
        r = sums.pop((s["warehouse_id"], s["part_id"]), {"on_hand": 0, "reserved": 0})
        if (s["on_hand"], s["reserved"]) != (r["on_hand"] or 0, r["reserved"] or 0):
            bad.append({"stock": s["id"], "level": (s["on_hand"], s["reserved"]),
                        "ledger": (r["on_hand"] or 0, r["reserved"] or 0)})
    for (warehouse_id, part_id), r in sums.items():
        if r["on_hand"] or r["reserved"]:
            bad.append({"stock": None, "warehouse": warehouse_id, "part": part_id, "level": (0, 0),
                        "ledger": (r["on_hand"], r["reserved"])})
    # A ticket never gives back or uses more than it reserved in a warehouse.
    for row in (Movement.objects.exclude(ticket=None).exclude(reserved_delta=0)
                .values("ticket_id", "warehouse_id", "part_id").annotate(held=Sum("reserved_delta"))
                .filter(held__lt=0).order_by()):
        bad.append({"stock": None, "ticket": row["ticket_id"], "warehouse": row["warehouse_id"],
                    "part": row["part_id"], "held": row["held"]})
    return bad


@dataclass(frozen=True)
class Suggestion:
    region: str
    part: Part
    recent: int
    last_year: int
    on_hand: int
    suggested: int
    reason: str


def reorder_suggestions(*, days: int = 90, today=None) -> list[Suggestion]:
    """Per region and part: what to hold next month, from the last `days` days of consumption
    (scaled to 30 days) and the same month last year (seasonal: compressors before summer),
    whichever is larger, minus what is on hand. Pure arithmetic in `suggestion_for`."""
    today = today or timezone.localdate()
    since = timezone.now() - timedelta(days=days)
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    ly_start = next_month.replace(year=next_month.year - 1)
    ly_end = (ly_start + timedelta(days=32)).replace(day=1)
    consumed = Movement.objects.filter(kind=MovementKind.CONSUME)
    recent = {(r["warehouse__region__name"], r["part_id"]): r["n"] for r in consumed.filter(created_at__gte=since)
              .values("warehouse__region__name", "part_id").annotate(n=Sum("quantity")).order_by()}
    seasonal = {(r["warehouse__region__name"], r["part_id"]): r["n"] for r in consumed.filter(
        created_at__date__gte=ly_start, created_at__date__lt=ly_end)
        .values("warehouse__region__name", "part_id").annotate(n=Sum("quantity")).order_by()}
    on_hand = {(r["warehouse__region__name"], r["part_id"]): r["n"] for r in Stock.objects
               .values("warehouse__region__name", "part_id").annotate(n=Sum(F("on_hand") - F("reserved"))).order_by()}
    keys = set(recent) | set(seasonal)
    parts = Part.objects.in_bulk([k[1] for k in keys])
    out = []
    for key in sorted(keys, key=lambda k: (k[0] or "", k[1])):
        if key[1] not in parts:
            continue
        suggested, reason = suggestion_for(recent=recent.get(key, 0), days=days, last_year=seasonal.get(key, 0),
                                           on_hand=on_hand.get(key, 0))
        out.append(Suggestion(key[0] or "—", parts[key[1]], recent.get(key, 0), seasonal.get(key, 0),
                              on_hand.get(key, 0), suggested, reason))
    return out


def suggestion_for(*, recent: int, days: int, last_year: int, on_hand: int) -> tuple[int, str]:
    """Next month's need: the larger of the recent monthly rate and last year's same month; the
    suggestion is that need less the free stock. Returns (units, reason code)."""
    rate = -(-recent * 30 // max(days, 1))  # ceil
    need, reason = (last_year, "season") if last_year > rate else (rate, "recent")
    return max(need - max(on_hand, 0), 0), reason
