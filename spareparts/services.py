"""Every write of the parts library. Each service runs in one transaction, locks the stock rows it
changes (`select_for_update`), changes the level and appends the matching ledger `Movement` in
the same step, so levels always equal the ledger's sums (checked by `parts_ledger_verify`).
Errors are `ValidationError`s with a message for the person acting; nothing is written then."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import event_emit
from scrm.config_cache import config_pinned
from scrm.db import counter_add
from scrm.models import Membership

from . import selectors
from .models import (
    PURCHASE_OPEN,
    BillOfMaterials,
    Movement,
    MovementKind,
    Part,
    PurchaseRequest,
    PurchaseStatus,
    Stock,
    Transfer,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)
from .nearest import places_rank

MAX_QUANTITY = 100_000


def quantity_check(quantity: Any, *, allow_negative: bool = False) -> int:
    """A whole number of units, 1…MAX_QUANTITY (or its negative for an adjustment)."""
    if isinstance(quantity, bool):
        raise ValidationError({"quantity": _("Enter a whole number.")})
    try:
        value = int(str(quantity).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError({"quantity": _("Enter a whole number.")}) from exc
    if value == 0 or (value < 0 and not allow_negative):
        raise ValidationError({"quantity": _("The quantity must be at least 1.")})
    if abs(value) > MAX_QUANTITY:
        raise ValidationError({"quantity": _("The quantity must be at most %(max)d.") % {"max": MAX_QUANTITY}})
    return value


def _same_tenant(tenant_id: int, **objects: Any) -> None:
    for name, obj in objects.items():
        if obj is not None and obj.tenant_id != tenant_id:
            raise ValidationError({name: _("Select a valid choice. That choice is not one of the available choices.")})


def _stock_lock(*, warehouse: Warehouse, part: Part) -> Stock:
    """The stock row of (warehouse, part), locked for this transaction; created empty if missing
    (a concurrent creator wins the unique constraint and we lock its row)."""
    stock = Stock.objects.select_for_update().filter(warehouse=warehouse, part=part).first()
    if stock is not None:
        return stock
    try:
        with transaction.atomic():
            Stock.objects.create(tenant_id=warehouse.tenant_id, warehouse=warehouse, part=part)
    except IntegrityError:
        pass
    return Stock.objects.select_for_update().get(warehouse=warehouse, part=part)


def _move(stock: Stock, *, kind: str, quantity: int, on_hand: int = 0, reserved: int = 0, ticket=None,
          actor=None, reason: str = "") -> Movement:
    """Change a locked stock row and append its ledger line. The CHECK constraints refuse a level
    below zero; callers check first so the person gets a message instead of an IntegrityError."""
    stock.on_hand += on_hand
    stock.reserved += reserved
    stock.save(update_fields=["on_hand", "reserved"])
    movement = Movement.objects.create(
        tenant_id=stock.tenant_id, warehouse_id=stock.warehouse_id, part_id=stock.part_id, kind=kind,
        quantity=quantity, on_hand_delta=on_hand, reserved_delta=reserved, ticket=ticket,
        user=actor if getattr(actor, "pk", None) else None, reason=reason[:200])
    _reorder_check(stock)
    return movement


def _reorder_check(stock: Stock) -> None:
    _reorder_after(stock_id=stock.pk, tenant_id=stock.tenant_id, part=stock.part, warehouse_id=stock.warehouse_id,
                   warehouse_kind=stock.warehouse.kind, available=stock.available, alerted=stock.low_alerted,
                   warehouse=stock.warehouse)
    stock.low_alerted = stock.part.reorder_point > 0 and stock.available < stock.part.reorder_point


def _reorder_after(*, stock_id: int, tenant_id: int, part: Part, warehouse_id: int, warehouse_kind: str,
                   available: int, alerted: bool, warehouse: Warehouse | None = None) -> None:
    """Once per crossing below the part's reorder point: remember it on the row, then open the
    request and tell people (`_reorder_open`). Back at or above the point, the next crossing
    alerts again. Reads and writes nothing unless the level crossed."""
    low = part.reorder_point > 0 and available < part.reorder_point
    if low == alerted:
        return
    Stock.objects.filter(pk=stock_id).update(low_alerted=low)
    if low:
        _reorder_open(stock_id=stock_id, tenant_id=tenant_id, part=part, warehouse_id=warehouse_id,
                      warehouse_kind=warehouse_kind, warehouse=warehouse)


def _reorder_open(*, stock_id: int, tenant_id: int, part: Part, warehouse_id: int, warehouse_kind: str,
                  warehouse: Warehouse | None = None) -> None:
    """The level just fell below the reorder point: open a draft purchase request (never a second
    while one is open) and tell the keeper, purchasing and the managers. Not for a van (it is
    refilled from a warehouse, not bought for)."""
    if warehouse_kind == WarehouseKind.VAN:
        return
    if warehouse is None:
        warehouse = Warehouse.objects.select_related("tenant").get(pk=warehouse_id)
    on_hand, reserved = Stock.objects.filter(pk=stock_id).values_list("on_hand", "reserved").get()
    available = on_hand - reserved
    open_request = PurchaseRequest.objects.filter(part=part, warehouse=warehouse, status__in=PURCHASE_OPEN)
    if not open_request.exists():
        PurchaseRequest.objects.create(tenant_id=tenant_id, part=part, warehouse=warehouse,
                                       quantity=max(part.reorder_qty, part.reorder_point - available, 1))
    users = selectors.reorder_recipients(warehouse=warehouse)
    if users:
        event_emit(tenant=warehouse.tenant, event="parts_low_stock", users=users,
                   occurrence=f"low:{stock_id}:{Movement.objects.filter(part=part, warehouse=warehouse).count()}",
                   context={"part_name": f"{part.name}（{warehouse.name}）", "stock": available})


# --- catalogue and warehouses ----------------------------------------------------------------


MAX_MONEY_FEN = 10**10  # ¥100,000,000: a catalogue price beyond it is a typo


def _part_check(part: Part) -> None:
    """What the database would refuse, said as field errors for the person editing."""
    errors: dict[str, str] = {}
    part.sku = (part.sku or "").strip()
    part.barcode = (part.barcode or "").strip()
    others = Part.objects.filter(tenant_id=part.tenant_id).exclude(pk=part.pk)
    if part.sku and others.filter(sku=part.sku).exists():
        errors["sku"] = _("Another part has this SKU.")
    if part.barcode and others.filter(barcode=part.barcode).exists():
        errors["barcode"] = _("Another part has this barcode.")
    for name in ("cost_fen", "price_fen"):
        value = getattr(part, name)
        if not isinstance(value, int) or value < 0 or value > MAX_MONEY_FEN:
            errors[name] = _("Enter an amount between 0 and 100,000,000.")
    if errors:
        raise ValidationError(errors)
    part.full_clean()


@transaction.atomic
def part_create(*, tenant, actor=None, **fields: Any) -> Part:
    part = Part(tenant=tenant, **fields)
    _part_check(part)
    part.save()
    return part


@transaction.atomic
def part_update(*, part: Part, actor=None, **fields: Any) -> Part:
    """Edit a catalogue entry. Its stock and ledger are untouched; a new price applies to what
    settlement prices from now on."""
    for name, value in fields.items():
        setattr(part, name, value)
    _part_check(part)
    part.save()
    return part


def _warehouse_check(warehouse: Warehouse) -> None:
    errors: dict[str, str] = {}
    others = Warehouse.objects.filter(tenant_id=warehouse.tenant_id).exclude(pk=warehouse.pk)
    if warehouse.code and others.filter(code=warehouse.code).exists():
        errors["code"] = _("Another warehouse has this code.")
    if warehouse.kind == WarehouseKind.VAN and warehouse.owner_id is None:
        errors["owner"] = _("A van belongs to one engineer: choose them.")
    if (warehouse.latitude is None) != (warehouse.longitude is None):
        errors["longitude"] = _("Give both latitude and longitude, or neither.")
    for name in ("owner", "keeper"):
        user_id = getattr(warehouse, f"{name}_id")
        if user_id is not None and not Membership.objects.filter(tenant_id=warehouse.tenant_id, user_id=user_id,
                                                                 is_active=True).exists():
            errors[name] = _("Select a valid choice. That choice is not one of the available choices.")
    if errors:
        raise ValidationError(errors)
    _same_tenant(warehouse.tenant_id, region=warehouse.region, store=warehouse.store)
    warehouse.full_clean()


@transaction.atomic
def warehouse_create(*, tenant, actor=None, **fields: Any) -> Warehouse:
    warehouse = Warehouse(tenant=tenant, **fields)
    _warehouse_check(warehouse)
    warehouse.save()
    return warehouse


@transaction.atomic
def warehouse_update(*, warehouse: Warehouse, actor=None, **fields: Any) -> Warehouse:
    """Edit a warehouse. Deactivating one keeps its stock and ledger; it just stops being offered
    for reservations and transfers."""
    for name, value in fields.items():
        setattr(warehouse, name, value)
    _warehouse_check(warehouse)
    warehouse.save()
    return warehouse


# --- bills of materials ------------------------------------------------------------------------


@transaction.atomic
def bom_line_set(*, template, part: Part, quantity: Any, actor=None) -> BillOfMaterials:
    """Every ticket of `template` needs `quantity` of `part` (replacing the line's quantity when
    the part is already on the bill)."""
    quantity = quantity_check(quantity)
    _same_tenant(template.tenant_id, part=part)
    if not part.is_active:
        raise ValidationError({"part": _("This part is no longer active.")})
    line, created = BillOfMaterials.objects.get_or_create(tenant_id=template.tenant_id, template=template,
                                                          part=part, defaults={"quantity": quantity})
    if not created and line.quantity != quantity:
        line.quantity = quantity
        line.save(update_fields=["quantity"])
    return line


@transaction.atomic
def bom_line_remove(*, template, line_id: Any, actor=None) -> None:
    deleted, _n = BillOfMaterials.objects.filter(template=template, pk=line_id if isinstance(line_id, int) else 0
                                                 ).delete()
    if not deleted:
        raise ValidationError(_("This line is not on the bill of materials."))


# --- stock movements -------------------------------------------------------------------------


@transaction.atomic
def stock_receive(*, warehouse: Warehouse, part: Part, quantity: Any, actor, reason: str = "") -> Movement:
    """Parts arrive (a purchase, a count): on hand grows; an open purchase request is closed."""
    quantity = quantity_check(quantity)
    _same_tenant(warehouse.tenant_id, part=part)
    stock = _stock_lock(warehouse=warehouse, part=part)
    # Close the open request first: if the delivery still leaves the part below its point, the
    # reorder check may open the next one.
    _purchase_close_received(part=part, warehouse=warehouse, actor=actor)
    return _move(stock, kind=MovementKind.RECEIVE, quantity=quantity, on_hand=quantity, actor=actor, reason=reason)


@transaction.atomic
def stock_adjust(*, warehouse: Warehouse, part: Part, delta: Any, reason: str, actor) -> Movement:
    """A correction after a count (damage, loss, found): needs a reason; never below reserved."""
    delta = quantity_check(delta, allow_negative=True)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the stock is adjusted.")})
    if len(reason) > 200:
        raise ValidationError({"reason": _("Keep the reason under 200 characters.")})
    _same_tenant(warehouse.tenant_id, part=part)
    stock = _stock_lock(warehouse=warehouse, part=part)
    if stock.on_hand + delta < stock.reserved:
        raise ValidationError({"delta": _("Only %(n)d free to take away (the rest is reserved).")
                               % {"n": stock.available}})
    return _move(stock, kind=MovementKind.ADJUST, quantity=abs(delta), on_hand=delta, actor=actor, reason=reason)


def _out_of_stock(part: Part, quantity: int, ranked) -> ValidationError:
    nearest = ranked[0] if ranked else None
    having = [r for r in ranked if r.place.available > 0][:3]
    others = "、".join(
        (_("%(name)s (%(km)s km, %(n)d free)") if r.km is not None else _("%(name)s (%(n)d free)"))
        % {"name": r.place.name, "km": f"{r.km:.0f}" if r.km is not None else "", "n": r.place.available}
        for r in having) or _("none")
    if nearest is None:
        return ValidationError(_("%(part)s: no warehouse holds this part.") % {"part": part.name})
    return ValidationError(
        _("%(part)s ×%(qty)d is out of stock at %(warehouse)s; nearest with stock: %(others)s.")
        % {"part": part.name, "qty": quantity, "warehouse": nearest.place.name, "others": others})


def _reserve_take(*, stock_id: int, tenant_id: int, part: Part, quantity: int) -> bool | None:
    """Reserve `quantity` on one stock row if it still has them free: one `UPDATE … SET reserved =
    reserved + q WHERE reserved + q <= on_hand RETURNING` (`scrm.db.counter_add`). Its row lock
    lasts until commit; a concurrent reserver blocks, then PostgreSQL re-checks the bound on the
    row as committed, so the answer says who got the units. Returns None when they went meanwhile
    (nothing written), else whether this reservation took the level below the part's reorder
    point: the row comes back under our lock, so only a reservation that crosses it flips
    `low_alerted` (a second conditional UPDATE) — exactly one sees each crossing."""
    row = counter_add(Stock, field="reserved", by=quantity, within="on_hand",
                      returning=("on_hand", "reserved", "low_alerted"), pk=stock_id, tenant=tenant_id)
    if row is None:
        return None
    on_hand, reserved, alerted = row
    if part.reorder_point <= 0 or alerted or on_hand - reserved >= part.reorder_point:
        return False
    return bool(Stock.objects.filter(pk=stock_id, low_alerted=False).update(low_alerted=True))


def _reserve_one(*, ticket, part: Part, quantity: int, places, origin, region_id, actor,
                 node_key: str) -> Movement | None:
    """Reserve in the nearest of `places` (the candidates read before the transaction) that still
    has the units free; the `reserve` ledger line — which is the reservation — comes back unsaved,
    for the caller to insert (one by one or in bulk). None when none has them: nothing was
    written. Must run inside a transaction."""
    for r in places_rank(places, origin=origin, region_id=region_id):
        place = r.place
        assert place.stock_id is not None
        crossed = _reserve_take(stock_id=place.stock_id, tenant_id=ticket.tenant_id, part=part, quantity=quantity)
        if crossed is None:  # another ticket took them between the read and the UPDATE
            continue
        line = Movement(tenant_id=ticket.tenant_id, warehouse_id=place.id, part_id=part.pk, kind=MovementKind.RESERVE,
                        quantity=quantity, reserved_delta=quantity, ticket_id=ticket.pk,
                        user_id=getattr(actor, "pk", None), node_key=node_key[:40],
                        distance_km=None if r.km is None else Decimal(f"{r.km:.1f}"))
        if crossed:
            _reorder_open(stock_id=place.stock_id, tenant_id=ticket.tenant_id, part=part, warehouse_id=place.id,
                          warehouse_kind=place.kind)
        return line
    return None


def _out_of_stock_for(ticket, part: Part, quantity: int, origin, region_id) -> ValidationError:
    places = selectors.stock_places(part=part, engineer=getattr(ticket, "assignee", None))
    return _out_of_stock(part, quantity, places_rank(places, origin=origin, region_id=region_id))


def stock_reserve(*, ticket, part: Part, quantity: Any, actor, node_key: str = "") -> Movement:
    """Reserve `quantity` of `part` for `ticket` in the nearest warehouse that has it all free
    (the ticket's store or address coordinates; its region without them) and return the
    `reserve` ledger line. One read ranks the candidates (no lock); then, in one short
    transaction, a conditional UPDATE of the stock row and the line's INSERT. Another ticket may
    take the units between the read and the UPDATE: then the next warehouse. None left anywhere:
    a ValidationError naming the nearest warehouses with stock, raised outside the transaction
    block, so a caller's own transaction is not spoiled by a refusal and no savepoint is needed."""
    quantity = quantity_check(quantity)
    _same_tenant(ticket.tenant_id, part=part)
    with config_pinned(ticket.tenant_id):  # one stamp read for the cached store and warehouses
        origin, region_id = selectors.ticket_origin(ticket)
        places = selectors.stock_candidates(part=part, quantity=quantity, engineer_id=ticket.assignee_id)
    with transaction.atomic(savepoint=False):
        line = _reserve_one(ticket=ticket, part=part, quantity=quantity, places=places, origin=origin,
                            region_id=region_id, actor=actor, node_key=node_key)
        if line is not None:
            # One row: save() is the plain INSERT, with less to build than a bulk_create of one.
            line.save(force_insert=True)
    if line is None:
        raise _out_of_stock_for(ticket, part, quantity, origin, region_id)
    return line


def _holds_locked(ticket, part: Part | None = None) -> list[tuple[Stock, int]]:
    """The stock rows where `ticket` still holds units (of `part`, or of any part), locked, each
    with the units held, in stock-row order. The rows are locked before the ledger is summed, so
    a concurrent consume or release of the same ticket waits here and then sees the other's lines:
    the same units are never given back or used twice."""
    lines = Movement.objects.filter(ticket=ticket)
    if part is not None:
        lines = lines.filter(part=part)
    reserved_here = lines.filter(kind=MovementKind.RESERVE, warehouse_id=OuterRef("warehouse_id"),
                                 part_id=OuterRef("part_id"))
    stocks = list(Stock.objects.select_for_update().select_related("part", "warehouse")
                  .filter(Exists(reserved_here)).order_by("pk"))
    if not stocks:
        return []
    held = {(w, p): n for w, p, n in lines.exclude(reserved_delta=0).values("warehouse_id", "part_id")
            .annotate(n=Sum("reserved_delta")).values_list("warehouse_id", "part_id", "n").order_by()}
    return [(stock, held[(stock.warehouse_id, stock.part_id)]) for stock in stocks
            if held.get((stock.warehouse_id, stock.part_id), 0) > 0]


@transaction.atomic
def reservations_release(*, ticket, actor, reason: str = "") -> int:
    """Give back what the ticket still holds (return, cancel, close). Returns units released."""
    released = 0
    for stock, held in _holds_locked(ticket):
        _move(stock, kind=MovementKind.RELEASE, quantity=held, reserved=-held, ticket=ticket, actor=actor,
              reason=reason)
        released += held
    return released


@transaction.atomic
def reservations_consume(*, ticket, actor) -> int:
    """The node's work is done: what is still reserved for the ticket was used. Returns units."""
    used = 0
    for stock, held in _holds_locked(ticket):
        _move(stock, kind=MovementKind.CONSUME, quantity=held, on_hand=-held, reserved=-held, ticket=ticket,
              actor=actor)
        used += held
    return used


@transaction.atomic
def part_scan_consume(*, ticket, code: Any, actor, quantity: Any = 1) -> Movement:
    """The engineer scanned (or typed) a part's barcode or SKU on site: consume it from the
    ticket's reservation of that part, else from the engineer's own van. Anything else — an
    unknown code, another tenant's part, a part neither reserved nor in the van — is refused."""
    quantity = quantity_check(quantity)
    part = selectors.part_by_code(code=code)
    if part is None:
        raise ValidationError({"code": _("No part has this barcode or SKU.")})
    for stock, held in _holds_locked(ticket, part):
        if held >= quantity:
            return _move(stock, kind=MovementKind.CONSUME, quantity=quantity, on_hand=-quantity, reserved=-quantity,
                         ticket=ticket, actor=actor, reason=_("scanned"))
    van = Warehouse.objects.filter(kind=WarehouseKind.VAN, owner=actor, is_active=True).first() \
        if getattr(actor, "pk", None) else None
    if van is not None:
        in_van = Stock.objects.select_for_update().select_related("part", "warehouse").filter(
            warehouse=van, part=part).first()
        if in_van is not None and in_van.available >= quantity:
            return _move(in_van, kind=MovementKind.CONSUME, quantity=quantity, on_hand=-quantity, ticket=ticket,
                         actor=actor, reason=_("scanned from van"))
    raise ValidationError({"code": _("%(part)s is not reserved for this ticket and not in your van.")
                           % {"part": part.name}})


@transaction.atomic
def stock_return(*, ticket, part: Part, warehouse: Warehouse, quantity: Any, actor, reason: str = "") -> Movement:
    """A consumed part comes back unused: on hand grows again, booked against the ticket."""
    quantity = quantity_check(quantity)
    _same_tenant(ticket.tenant_id, part=part, warehouse=warehouse)
    used = sum(Movement.objects.filter(ticket=ticket, part=part, kind=MovementKind.CONSUME)
               .values_list("quantity", flat=True))
    back = sum(Movement.objects.filter(ticket=ticket, part=part, kind=MovementKind.RETURN)
               .values_list("quantity", flat=True))
    if quantity > used - back:
        raise ValidationError({"quantity": _("Only %(n)d of this part were used on this ticket.")
                               % {"n": used - back}})
    stock = _stock_lock(warehouse=warehouse, part=part)
    return _move(stock, kind=MovementKind.RETURN, quantity=quantity, on_hand=quantity, ticket=ticket,
                 actor=actor, reason=reason)


# --- purchase requests ------------------------------------------------------------------------

MAX_SUPPLIER = 100
MAX_LEAD_DAYS = 366


def _purchase_close_received(*, part: Part, warehouse: Warehouse, actor) -> None:
    """The part arrived in the warehouse: its open request (draft or ordered) is received."""
    PurchaseRequest.objects.filter(part=part, warehouse=warehouse, status__in=PURCHASE_OPEN).update(
        status=PurchaseStatus.RECEIVED, closed_at=timezone.now(),
        closed_by=actor if getattr(actor, "pk", None) else None)


def _expected_check(value: Any):
    """A delivery date: today up to a year ahead (a date in the past or years away is a typo)."""
    if isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        raise ValidationError({"expected_on": _("Enter a valid date.")})
    today = timezone.localdate()
    if value < today:
        raise ValidationError({"expected_on": _("The expected date cannot be in the past.")})
    if value > today + datetime.timedelta(days=MAX_LEAD_DAYS):
        raise ValidationError({"expected_on": _("The expected date must be within a year.")})
    return value


@transaction.atomic
def purchase_order(*, request: PurchaseRequest, supplier: Any, expected_on: Any, actor,
                   quantity: Any = None) -> PurchaseRequest:
    """Purchasing placed the order: a draft request becomes ordered, with who ordered it, the
    supplier, the expected delivery date and (if changed) the quantity ordered. Only a draft can
    be ordered — claimed by a conditional UPDATE, so two people ordering at once order once."""
    supplier = str(supplier or "").strip()
    if not supplier:
        raise ValidationError({"supplier": _("Name the supplier the part is ordered from.")})
    if len(supplier) > MAX_SUPPLIER:
        raise ValidationError({"supplier": _("Keep the supplier under %(n)d characters.") % {"n": MAX_SUPPLIER}})
    expected_on = _expected_check(expected_on)
    quantity = request.quantity if quantity in (None, "") else quantity_check(quantity)
    claimed = PurchaseRequest.objects.filter(pk=request.pk, status=PurchaseStatus.DRAFT).update(
        status=PurchaseStatus.ORDERED, supplier=supplier, expected_on=expected_on, quantity=quantity,
        ordered_at=timezone.now(), ordered_by=actor if getattr(actor, "pk", None) else None)
    if not claimed:
        raise ValidationError(_("Only a draft request can be ordered; this one is no longer a draft."))
    request.refresh_from_db()
    return request


@transaction.atomic
def purchase_cancel(*, request: PurchaseRequest, actor) -> PurchaseRequest:
    """Drop an open request (draft or ordered) that will not be delivered. The stock row stays
    marked low, so the next request opens when the level has recovered and falls again — or the
    keeper receives parts, which does not need a request."""
    claimed = PurchaseRequest.objects.filter(pk=request.pk, status__in=PURCHASE_OPEN).update(
        status=PurchaseStatus.CANCELLED, closed_at=timezone.now(),
        closed_by=actor if getattr(actor, "pk", None) else None)
    if not claimed:
        raise ValidationError(_("This request is already closed."))
    request.refresh_from_db()
    return request


# --- transfers --------------------------------------------------------------------------------


@transaction.atomic
def transfer_create(*, part: Part, source: Warehouse, destination: Warehouse, quantity: Any, actor) -> Transfer:
    """Send parts from one warehouse to another: they leave the source now and are in transit."""
    quantity = quantity_check(quantity)
    _same_tenant(part.tenant_id, source=source, destination=destination)
    if source.pk == destination.pk:
        raise ValidationError({"destination": _("Choose another warehouse than the source.")})
    # Lock in a fixed order so two opposite transfers cannot deadlock.
    stock = _stock_lock(warehouse=source, part=part)
    if stock.available < quantity:
        raise ValidationError({"quantity": _("Only %(n)d free at %(warehouse)s.")
                               % {"n": stock.available, "warehouse": source.name}})
    transfer = Transfer.objects.create(tenant_id=part.tenant_id, part=part, source=source, destination=destination,
                                       quantity=quantity, created_by=actor if getattr(actor, "pk", None) else None)
    _move(stock, kind=MovementKind.TRANSFER_OUT, quantity=quantity, on_hand=-quantity, actor=actor,
          reason=_("transfer #%(id)d to %(to)s") % {"id": transfer.pk, "to": destination.name})
    return transfer


@transaction.atomic
def transfer_receive(*, transfer: Transfer, actor) -> Transfer:
    """The destination received a transfer in transit (only once)."""
    claimed = Transfer.objects.filter(pk=transfer.pk, status=TransferStatus.IN_TRANSIT).update(
        status=TransferStatus.RECEIVED, received_at=timezone.now())
    if not claimed:
        raise ValidationError(_("This transfer was already received."))
    transfer.refresh_from_db()
    stock = _stock_lock(warehouse=transfer.destination, part=transfer.part)
    _purchase_close_received(part=transfer.part, warehouse=transfer.destination, actor=actor)
    _move(stock, kind=MovementKind.TRANSFER_IN, quantity=transfer.quantity, on_hand=transfer.quantity,
          actor=actor, reason=_("transfer #%(id)d from %(from)s") % {"id": transfer.pk, "from": transfer.source.name})
    return transfer


# --- the ticket's parts, for the engine hooks ------------------------------------------------------


@transaction.atomic
def ticket_parts_reserve(*, ticket, actor, node_key: str = "") -> list[Movement]:
    """Reserve what the ticket needs (its `parts` fields + its template's bill of materials) and
    does not hold or has not used yet, as one transaction: per line one conditional UPDATE, then
    the `reserve` ledger lines in one bulk INSERT. Lines are taken in part order so two tickets
    lock rows in the same order. One line out of stock rolls all of them back."""
    needed = selectors.ticket_part_needs(ticket)
    if not needed:
        return []
    held: dict[int, int] = {}  # reserved and not given back: still held, or used
    lines_so_far = Movement.objects.filter(ticket=ticket, kind__in=[MovementKind.RESERVE, MovementKind.RELEASE])
    for part_id, kind, qty in lines_so_far.values_list("part_id", "kind", "quantity"):
        held[part_id] = held.get(part_id, 0) + (qty if kind == MovementKind.RESERVE else -qty)
    parts = Part.objects.in_bulk(list(needed))
    lines = []
    with config_pinned(ticket.tenant_id):  # one stamp read for the cached store and warehouses
        origin, region_id = selectors.ticket_origin(ticket)
        for part_id in sorted(needed):
            short = needed[part_id] - held.get(part_id, 0)
            if short <= 0 or part_id not in parts:
                continue
            short = quantity_check(short)
            places = selectors.stock_candidates(part=parts[part_id], quantity=short, engineer_id=ticket.assignee_id)
            line = _reserve_one(ticket=ticket, part=parts[part_id], quantity=short, places=places, origin=origin,
                                region_id=region_id, actor=actor, node_key=node_key)
            if line is None:
                raise _out_of_stock_for(ticket, parts[part_id], short, origin, region_id)
            lines.append(line)
    return Movement.objects.bulk_create(lines)


