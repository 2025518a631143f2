"""Spare parts (备件库): warehouses, the parts catalogue, stock levels per warehouse and part, the
append-only movement ledger, the parts a ticket has reserved, transfers and purchase requests.

Levels (`Stock.on_hand`, `Stock.reserved`) are a cache of the ledger: every change writes one
`Movement` in the same transaction, under the stock row's lock, and `manage.py parts_ledger_verify`
proves `level == sum(deltas)`. The database refuses negative stock and over-reservation by
CHECK constraints, so even a bug above cannot oversell."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from scrm.models import Region, Store, Tenant, TenantOwned


class WarehouseKind(models.TextChoices):
    CENTRAL = "central", _("Central warehouse")
    REGIONAL = "regional", _("Regional warehouse")
    STORE = "store", _("Store stock")
    VAN = "van", _("Engineer's van")


class Warehouse(TenantOwned):
    """A place that holds parts: the central or a regional warehouse, a store's stock room or an
    engineer's van. Its coordinates decide which warehouse is nearest to a ticket; a van belongs to
    one engineer (`owner`). Codes are unique per tenant."""

    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=80)
    kind = models.CharField(_("kind"), max_length=10, choices=WarehouseKind.choices)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               verbose_name=_("region"))
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              verbose_name=_("store"))
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+", verbose_name=_("engineer (van)"))
    keeper = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+", verbose_name=_("warehouse keeper"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True,
                                   validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))])
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True,
                                    validators=[MinValueValidator(Decimal("-180")),
                                                MaxValueValidator(Decimal("180"))])
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="warehouse_unique_code"),
            models.CheckConstraint(condition=Q(kind__in=WarehouseKind.values), name="warehouse_kind_valid"),
            models.CheckConstraint(condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                                   name="warehouse_latitude_range"),
            models.CheckConstraint(condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                                   name="warehouse_longitude_range"),
            models.CheckConstraint(condition=~Q(kind="van") | Q(owner__isnull=False), name="warehouse_van_has_owner"),
        ]
        indexes = [models.Index(fields=["tenant", "owner"], name="warehouse_tenant_owner")]

    def __str__(self):
        return self.name


class Part(TenantOwned):
    """One spare part of the catalogue. SKU is unique per tenant, and so is a non-empty barcode
    (scan to consume finds the part by either). Cost and price are integer fen, never negative;
    below `reorder_point` available units, `reorder_qty` is suggested for purchase."""

    sku = models.CharField(_("SKU"), max_length=40)
    barcode = models.CharField(_("barcode"), max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=100)
    compatible_models = models.CharField(_("compatible models"), max_length=300, blank=True,
                                         help_text=_("Model numbers this part fits, separated by commas."))
    unit = models.CharField(_("unit"), max_length=10, default="个")
    cost_fen = models.BigIntegerField(_("cost (fen)"), default=0)
    price_fen = models.BigIntegerField(_("price (fen)"), default=0)
    reorder_point = models.PositiveIntegerField(_("reorder point"), default=0)
    reorder_qty = models.PositiveIntegerField(_("reorder quantity"), default=0)
    supplier = models.CharField(_("preferred supplier"), max_length=100, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("part")
        verbose_name_plural = _("parts")
        ordering = ["sku"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="part_unique_sku"),
            models.UniqueConstraint(fields=["tenant", "barcode"], condition=~Q(barcode=""),
                                    name="part_unique_barcode"),
            models.CheckConstraint(condition=Q(cost_fen__gte=0) & Q(price_fen__gte=0), name="part_money_not_negative"),
        ]
        indexes = [models.Index(fields=["tenant", "name"], name="part_tenant_name")]

    def __str__(self):
        return f"{self.name} ({self.sku})"

    @property
    def price_yuan(self):
        return Decimal(self.price_fen) / 100

    @property
    def cost_yuan(self):
        return Decimal(self.cost_fen) / 100


class Stock(TenantOwned):
    """The level of one part in one warehouse: on hand, of which reserved for tickets. Available
    = on hand − reserved. Written only by the services in `spareparts/services.py`, under this
    row's lock, with one Movement per change. `low_alerted` remembers that the reorder alert of the
    current crossing below the reorder point was sent (cleared when stock is back above it)."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stocks")
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="stocks")
    on_hand = models.IntegerField(_("on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)
    low_alerted = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "part"], name="stock_unique_warehouse_part"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0) & Q(reserved__lte=F("on_hand")),
                                   name="stock_reserved_within_on_hand"),
        ]
        indexes = [models.Index(fields=["tenant", "part"], name="stock_tenant_part")]

    @property
    def available(self):
        return self.on_hand - self.reserved


class MovementKind(models.TextChoices):
    RECEIVE = "receive", _("Received")
    RESERVE = "reserve", _("Reserved")
    RELEASE = "release", _("Released")
    CONSUME = "consume", _("Consumed")
    RETURN = "return", _("Returned")
    TRANSFER_OUT = "transfer_out", _("Transferred out")
    TRANSFER_IN = "transfer_in", _("Transferred in")
    ADJUST = "adjust", _("Adjusted")


class Movement(TenantOwned):
    """One line of the append-only stock ledger: what happened to a part in a warehouse, by whom,
    for which ticket. `on_hand_delta` and `reserved_delta` are what it changed, so a level is the
    sum of its movements. Never updated or deleted: a correction is a new `adjust` row with a
    reason.

    A `reserve` line is also the reservation: what a ticket still holds of a part in a warehouse
    is the sum of its lines' `reserved_delta` there (reserve +q; consume and release −q), so no
    second table has to be written, locked and kept equal to the ledger. It carries the node that
    reserved and the distance the warehouse was chosen at."""

    # Every read is tenant-scoped and the composite indexes below lead with tenant (and ticket):
    # single-column indexes on tenant and ticket would only be written, never read, on each line.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, verbose_name=_("tenant"), related_name="+",
                               db_index=False)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+")
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=14, choices=MovementKind.choices)
    quantity = models.PositiveIntegerField(_("quantity"))
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    node_key = models.CharField(max_length=40, blank=True)
    distance_km = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=MovementKind.values), name="movement_kind_valid"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="movement_quantity_positive"),
            models.CheckConstraint(condition=~Q(kind="adjust") | ~Q(reason=""), name="movement_adjust_has_reason"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="movement_tenant_created"),
            models.Index(fields=["tenant", "warehouse", "part"], name="movement_tenant_stock"),
            models.Index(fields=["tenant", "ticket"], name="movement_tenant_ticket"),
        ]

    def save(self, *args, **kwargs):
        # Append-only (DESIGN rule 6): a stored movement is never rewritten.
        if self.pk is not None:
            raise ValueError("stock movements are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("stock movements are append-only")


class ReservationStatus(models.TextChoices):
    """Where a ticket's hold on a part in one warehouse stands, as the ledger adds it up
    (`selectors.ticket_reservations`): no table keeps it."""

    RESERVED = "reserved", _("Reserved")
    CONSUMED = "consumed", _("Consumed")
    RELEASED = "released", _("Released")


class BillOfMaterials(TenantOwned):
    """A part every ticket of a template needs (e.g. a filter for each 清洗 job); reserved with the
    ticket's own `parts` field lines when a node says so. One row per template and part."""

    template = models.ForeignKey("tickets.TicketTemplate", on_delete=models.CASCADE, related_name="+")
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"), default=1)

    class Meta:
        verbose_name = _("bill of materials line")
        verbose_name_plural = _("bill of materials")
        constraints = [
            models.UniqueConstraint(fields=["template", "part"], name="bom_unique_template_part"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="bom_quantity_positive"),
        ]


class TransferStatus(models.TextChoices):
    IN_TRANSIT = "in_transit", _("In transit")
    RECEIVED = "received", _("Received")


class Transfer(TenantOwned):
    """Parts moving between two warehouses: leave the source on creation (transfer_out) and are
    in transit until the destination receives them (transfer_in)."""

    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    status = models.CharField(_("status"), max_length=12, choices=TransferStatus.choices,
                              default=TransferStatus.IN_TRANSIT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="transfer_quantity_positive"),
            models.CheckConstraint(condition=~Q(source=F("destination")), name="transfer_two_warehouses"),
            models.CheckConstraint(condition=Q(status__in=TransferStatus.values), name="transfer_status_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="transfer_tenant_status")]


class PurchaseStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ORDERED = "ordered", _("Ordered")
    RECEIVED = "received", _("Received")
    CANCELLED = "cancelled", _("Cancelled")


# A request is open until it is received or cancelled: at most one open per part and warehouse.
PURCHASE_OPEN = (PurchaseStatus.DRAFT, PurchaseStatus.ORDERED)


class PurchaseRequest(TenantOwned):
    """A purchase request opened when a part's available stock in a warehouse fell below its
    reorder point: draft → ordered (by whom, from which supplier, expected when) → received
    (receiving the part into that warehouse closes it) or cancelled. At most one open (draft or
    ordered) request per part and warehouse; an ordered one always names its supplier, date and
    the time it was ordered."""

    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="+")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    status = models.CharField(_("status"), max_length=10, choices=PurchaseStatus.choices,
                              default=PurchaseStatus.DRAFT)
    supplier = models.CharField(_("supplier"), max_length=100, blank=True)
    expected_on = models.DateField(_("expected on"), null=True, blank=True)
    ordered_at = models.DateTimeField(_("ordered at"), null=True, blank=True)
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("ordered by"))
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    class Meta:
        verbose_name = _("purchase request")
        verbose_name_plural = _("purchase requests")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "part", "warehouse"], condition=Q(status__in=PURCHASE_OPEN),
                                    name="purchase_one_open_per_stock"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="purchase_quantity_positive"),
            models.CheckConstraint(condition=Q(status__in=PurchaseStatus.values), name="purchase_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="ordered") | (~Q(supplier="") & Q(expected_on__isnull=False)
                                                  & Q(ordered_at__isnull=False)),
                name="purchase_ordered_complete"),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="purchase_tenant_status")]
