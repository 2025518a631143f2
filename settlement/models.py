"""Settlement data: the parties who earn, service items with effective-dated prices, rules as
data, the template field mapping, settlement lines (an append-only ledger) and period runs."""

import json
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, transition

from scrm.models import Region, Store, Tenant, TenantOwned
from tickets.models import Ticket, TicketTemplate

from .calculator import RULE_KINDS, RenderedBreakdown

MONEY = {"max_digits": 14, "decimal_places": 2}


class PartyKind(models.TextChoices):
    ENGINEER = "engineer", _("Engineer")
    STORE = "store", _("Store")
    REGION = "region", _("Region")
    PROVIDER = "provider", _("Service provider")
    DISTRIBUTOR = "distributor", _("Distributor")
    AGENT = "agent", _("Agent")
    HEADQUARTERS = "headquarters", _("Headquarters")


RULE_KIND_LABELS = {
    "fixed": _("Billing: fixed package"), "per_item": _("Billing: per item"), "hourly": _("Billing: hourly"),
    "milestones": _("Billing: project milestones"), "region_class": _("Region class coefficient"),
    "altitude": _("Altitude multiplier"), "surcharge": _("Surcharge"), "distance": _("Distance"),
    "split": _("Revenue split"), "rebate": _("Tiered rebate"), "first_order_bonus": _("First-order bonus"),
    "target_bonus": _("Period target bonus"),
}


class Party(TenantOwned):
    """Someone who earns or pays in settlement: an engineer (linked to a user), a store, a region,
    a partner service provider, or a distributor/agent in levels (`parent`). A user, a store and a
    region each have at most one party per tenant."""

    kind = models.CharField(_("kind"), max_length=20, choices=PartyKind.choices)
    name = models.CharField(_("name"), max_length=80)
    code = models.SlugField(_("code"), max_length=40)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children",
                               verbose_name=_("parent"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+", verbose_name=_("user"))
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              verbose_name=_("store"))
    region = models.ForeignKey(Region, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               verbose_name=_("region"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("settlement party")
        verbose_name_plural = _("settlement parties")
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="party_unique_code"),
            models.UniqueConstraint(fields=["tenant", "user"], condition=Q(user__isnull=False),
                                    name="party_unique_user"),
            models.UniqueConstraint(fields=["tenant", "store"], condition=Q(store__isnull=False),
                                    name="party_unique_store"),
            models.UniqueConstraint(fields=["tenant", "region"], condition=Q(region__isnull=False),
                                    name="party_unique_region"),
            models.CheckConstraint(condition=Q(kind__in=PartyKind.values), name="party_kind_valid"),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="party_not_own_parent"),
        ]

    def __str__(self):
        return self.name


class ServiceItem(TenantOwned):
    """A priced service (安装, 维修, 保养…): a ticket's service-item field holds its code."""

    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=80)
    unit = models.CharField(_("unit"), max_length=10, default="次")
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("service item")
        verbose_name_plural = _("service items")
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="serviceitem_unique_code")]

    def __str__(self):
        return f"{self.name} ({self.code})"


class ServicePrice(TenantOwned):
    """One version of an item's base price in the price book, in force from `effective_from`
    until the next version starts. Never negative; one version per item and start day."""

    item = models.ForeignKey(ServiceItem, on_delete=models.CASCADE, related_name="prices", verbose_name=_("item"))
    price = models.DecimalField(_("price"), **MONEY)
    effective_from = models.DateField(_("effective from"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("price book")
        ordering = ["item", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "item", "effective_from"], name="serviceprice_unique_start"),
            models.CheckConstraint(condition=Q(price__gte=0), name="serviceprice_not_negative"),
        ]


class SettlementRule(TenantOwned):
    """A rule as data: kind, cleaned numbers (`params`, see calculator.rule_params_clean), a
    structured condition (workflow.conditions), when it is in force (a seasonal rate ends by
    itself), priority, exclusive or stackable, cap and minimum of what it contributes."""

    name = models.CharField(_("name"), max_length=80)
    kind = models.CharField(_("kind"), max_length=20, choices=[(k, RULE_KIND_LABELS[k]) for k in RULE_KINDS])
    params = models.JSONField(_("parameters"), default=dict)
    condition = models.JSONField(_("condition"), default=dict, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=100)
    exclusive = models.BooleanField(_("exclusive"), default=False)
    cap = models.DecimalField(_("cap"), null=True, blank=True, **MONEY)
    minimum = models.DecimalField(_("minimum"), null=True, blank=True, **MONEY)
    effective_from = models.DateField(_("effective from"), null=True, blank=True)
    effective_to = models.DateField(_("effective to"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("settlement rule")
        verbose_name_plural = _("settlement rules")
        ordering = ["priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="settlementrule_unique_name"),
            models.CheckConstraint(condition=Q(kind__in=RULE_KINDS), name="settlementrule_kind_valid"),
            models.CheckConstraint(condition=Q(cap__isnull=True) | Q(cap__gte=0), name="settlementrule_cap"),
            models.CheckConstraint(condition=Q(minimum__isnull=True) | Q(minimum__gte=0),
                                   name="settlementrule_minimum"),
            models.CheckConstraint(condition=Q(effective_to__isnull=True) | Q(effective_from__isnull=True)
                                   | Q(effective_to__gte=models.F("effective_from")),
                                   name="settlementrule_dates"),
        ]
        indexes = [models.Index(fields=["tenant", "is_active", "kind"], name="settlementrule_active")]

    def __str__(self):
        return self.name


SETTLEMENT_INPUTS = {
    # input → the field types that may feed it
    "service_item": ("select", "radio", "text", "pattern"),
    "fee": ("money", "decimal", "integer", "computed"),
    "quantity": ("integer", "decimal"),
    "hours": ("decimal", "integer"),
    "night": ("checkbox",),
    "urgent": ("checkbox",),
    "weekend": ("checkbox",),
    "height_work": ("checkbox",),
    "altitude_m": ("integer", "decimal"),
    "location": ("address",),
    "distance_km": ("decimal", "integer"),
    "milestones": ("multiselect",),
}
ROLE_INPUT_PREFIX = "role:"  # "role:designer" → a staff field naming who plays that role


class SettlementFieldMap(TenantOwned):
    """Which of a template's fields feed settlement (`mapping`: input → field key, e.g.
    {"fee": "repair_fee", "altitude_m": "altitude", "role:designer": "designer"}), checked
    against the template's published fields when saved. One per template."""

    template = models.ForeignKey(TicketTemplate, on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("template"))
    mapping = models.JSONField(_("mapping"), default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("settlement field mapping")
        verbose_name_plural = _("settlement field mappings")
        constraints = [models.UniqueConstraint(fields=["tenant", "template"], name="fieldmap_unique_template")]


class RunState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    REVIEWED = "reviewed", _("Reviewed")
    APPROVED = "approved", _("Approved")
    PAID = "paid", _("Paid")


LOCKED_STATES = (RunState.REVIEWED, RunState.APPROVED, RunState.PAID)


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")


class SettlementRun(TenantOwned):
    """A period's settlement (a month or a quarter): draft → reviewed → approved → paid. Periods
    of one tenant never overlap; once reviewed its lines are frozen (approved by finance, then
    paid), later corrections land in a later period as adjustment lines. A draft can be re-run:
    its rebate and bonus lines are replaced, the ticket lines it sums are counted once."""

    period_kind = models.CharField(_("period"), max_length=10, choices=PeriodKind.choices)
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("to"))
    state = FSMField(_("state"), max_length=10, choices=RunState.choices, default=RunState.DRAFT, protected=True)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    is_running = models.BooleanField(default=False)
    ticket_count = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    total = models.DecimalField(_("total"), default=Decimal("0"), **MONEY)
    error = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("settlement run")
        verbose_name_plural = _("settlement runs")
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "period_start"], name="settlementrun_unique_start"),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="settlementrun_dates"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="settlementrun_progress"),
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d}…{self.period_end:%Y-%m-%d}"

    @property
    def is_locked(self):
        return self.state in LOCKED_STATES

    @transition(field=state, source=RunState.DRAFT, target=RunState.REVIEWED)
    def review(self):
        pass

    @transition(field=state, source=RunState.REVIEWED, target=RunState.DRAFT)
    def send_back(self):
        pass

    @transition(field=state, source=RunState.REVIEWED, target=RunState.APPROVED)
    def approve(self):
        pass

    @transition(field=state, source=RunState.APPROVED, target=RunState.PAID)
    def pay(self):
        pass


class WindowState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class SettlementRunWindow(TenantOwned):
    """One id window of a run (tickets with `low <= id <= high`): the unit a worker settles. A
    window is claimed by a row lock held for the transaction that writes its lines and marks it
    done, so it is settled exactly once — a second worker skips it, a worker that dies rolls back
    and leaves it pending for the next try. Windows of one run never overlap."""

    run = models.ForeignKey(SettlementRun, on_delete=models.CASCADE, related_name="windows")
    low = models.BigIntegerField()
    high = models.BigIntegerField()
    state = models.CharField(_("state"), max_length=10, choices=WindowState.choices, default=WindowState.PENDING)
    tickets = models.PositiveIntegerField(default=0)
    lines = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("settlement run window")
        verbose_name_plural = _("settlement run windows")
        ordering = ["run", "low"]
        constraints = [
            models.UniqueConstraint(fields=["run", "low"], name="settlementrunwindow_unique_low"),
            models.CheckConstraint(condition=Q(high__gte=models.F("low")), name="settlementrunwindow_bounds"),
            models.CheckConstraint(condition=Q(state__in=WindowState.values), name="settlementrunwindow_state"),
        ]
        indexes = [models.Index(fields=["run", "state"], name="settlementrunwindow_state_idx")]

    def __str__(self):
        return f"{self.low}–{self.high}"


class LineKind(models.TextChoices):
    TICKET = "ticket", _("Ticket")
    ADJUSTMENT = "adjustment", _("Adjustment")
    REBATE = "rebate", _("Rebate")
    BONUS = "bonus", _("Bonus")


# Split roles the demo and most renovation/installation tenants use; other role names show as typed.
ROLE_LABELS = {**dict(PartyKind.choices), "designer": _("Designer"), "supervisor": _("Supervisor"),
               "crew": _("Crew")}


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


class BreakdownEncoder(json.JSONEncoder):
    """json.dumps as before, except that a breakdown a run rendered once is written as its text."""

    def encode(self, o):
        if type(o) is RenderedBreakdown:
            return o.json
        return super().encode(o)


class SettlementBreakdown(TenantOwned):
    """The steps that explain a settlement line (every rule applied, before/after), stored once
    per tenant and content: a month's lines repeat a few hundred distinct breakdowns, so a line
    points to its breakdown instead of carrying a copy. Content-addressed (`digest`, see
    calculator.steps_digest) and never changed."""

    digest = models.CharField(max_length=64)
    steps = models.JSONField(_("breakdown"), default=list, encoder=BreakdownEncoder)

    class Meta:
        verbose_name = _("settlement breakdown")
        verbose_name_plural = _("settlement breakdowns")
        constraints = [models.UniqueConstraint(fields=["tenant", "digest"], name="settlementbreakdown_unique")]


class SettlementLine(TenantOwned):
    """One amount one party earns, with the breakdown of every rule applied (before/after).
    Append-only: a recomputed ticket adds adjustment lines for the difference. `period_date`
    decides the period it counts in (the ticket's closing day, moved past any frozen period);
    rebate and bonus lines belong to the run that made them (`run`).

    Indexes: a run inserts a million of these, and every index costs each insert, so there is one
    per way lines are read — (tenant, period date), (party, period date), (tenant, ticket), run
    (only the rebate and bonus lines have one); the foreign keys have none of their own (a party
    belongs to one tenant, so its index needs no tenant column before it). Tickets and breakdowns
    are deleted only with their tenant, so nothing looks lines up by breakdown."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, verbose_name=_("tenant"), related_name="+",
                               db_index=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               db_index=False)
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="lines", verbose_name=_("party"),
                              db_index=False)
    role = models.CharField(_("role"), max_length=30)
    kind = models.CharField(_("kind"), max_length=12, choices=LineKind.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    breakdown = models.ForeignKey(SettlementBreakdown, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("breakdown"), db_index=False)
    period_date = models.DateField(_("period date"))
    run = models.ForeignKey(SettlementRun, on_delete=models.CASCADE, null=True, blank=True, related_name="lines",
                            db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")
        ordering = ["-period_date", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=LineKind.values), name="settlementline_kind_valid"),
            models.CheckConstraint(condition=Q(kind__in=["ticket", "adjustment"], ticket__isnull=False)
                                   | Q(kind__in=["rebate", "bonus"], run__isnull=False),
                                   name="settlementline_owner"),
        ]
        indexes = [
            models.Index(fields=["tenant", "period_date"], name="settlementline_period"),
            models.Index(fields=["party", "period_date"], name="settlementline_party"),
            models.Index(fields=["tenant", "ticket"], name="settlementline_ticket"),
            models.Index(fields=["run"], condition=Q(run__isnull=False), name="settlementline_run"),
        ]

    @property
    def role_label(self):
        return role_label(self.role)

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Settlement lines are append-only; add an adjustment line instead.")
        super().save(*args, **kwargs)
