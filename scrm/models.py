"""Core data: tenants and memberships, the organisation (regions, stores, teams, staff) and CRM
(customers, opportunities). Every model but Tenant is tenant-owned and scoped."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager
from guardian.models import UserObjectPermissionBase


class Tenant(models.Model):
    """A company using the product. The root of every scope; its slug appears in public URLs."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Replaced whenever the configuration intake caches changes (scrm.config_cache).
    config_stamp = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["name"]

    def __str__(self):
        return self.name


class TenantOwned(models.Model):
    """Base of every tenant-owned model: a tenant FK and a manager that refuses to run unscoped."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, verbose_name=_("tenant"), related_name="+")

    objects = ScopedManager(tenant="tenant")
    # {constraint name: field}: a CheckConstraint about one field reports its violation on that
    # field (under the form field, in words), not as a form-wide "constraint … is violated".
    constraint_fields: dict[str, str] = {}

    class Meta:
        abstract = True

    def validate_constraints(self, exclude=None):
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as exc:
            if not hasattr(exc, "error_dict") or not self.constraint_fields:
                raise
            moved: dict[str, list] = {}
            for key, errors in exc.error_dict.items():
                for error in errors:
                    field = self.constraint_fields.get(error.code or "") if key == NON_FIELD_ERRORS else None
                    moved.setdefault(field or key, []).append(error)
            raise ValidationError(moved) from exc


class Role(models.TextChoices):
    ADMIN = "admin", _("Tenant admin")
    MANAGER = "manager", _("Manager")
    REGIONAL_MANAGER = "regional_manager", _("Regional manager")
    AGENT = "agent", _("Agent")
    ENGINEER = "engineer", _("Engineer")
    FINANCE = "finance", _("Finance")
    WAREHOUSE_KEEPER = "warehouse_keeper", _("Warehouse keeper")
    PURCHASING = "purchasing", _("Purchasing")


class Membership(TenantOwned):
    """A user's seat in a tenant with one role; a user has at most one membership per tenant."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self):
        return f"{self.user} @ {self.tenant_id} ({self.get_role_display()})"


class SettlementClass(models.TextChoices):
    A = "A", _("Class A")
    B = "B", _("Class B")
    C = "C", _("Class C")


class Region(TenantOwned):
    """A sales or service region (华东, 华北 …), optionally inside a parent region.
    Its settlement class (A/B/C) picks the settlement tier later."""

    name = models.CharField(_("name"), max_length=60)
    code = models.SlugField(_("code"), max_length=30)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children",
        verbose_name=_("parent region"),
    )
    settlement_class = models.CharField(
        _("settlement class"), max_length=1, choices=SettlementClass.choices, default=SettlementClass.A
    )

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["code"]
        permissions = [("manage_region", _("Manage the region's stores, customers and tickets"))]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="region_unique_code"),
            models.UniqueConstraint(fields=["tenant", "name"], name="region_unique_name"),
            models.CheckConstraint(condition=Q(settlement_class__in=["A", "B", "C"]), name="region_settlement_class"),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="region_not_own_parent",
                                   violation_error_code="region_not_own_parent",
                                   violation_error_message=_("A region cannot be its own parent.")),
        ]

    constraint_fields = {"region_not_own_parent": "parent"}

    def __str__(self):
        return self.name


class Store(TenantOwned):
    """A store, branch or service point in a region, with a location for dispatch by distance."""

    constraint_fields = {"store_latitude_range": "latitude", "store_longitude_range": "longitude"}

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="stores", verbose_name=_("region"))
    name = models.CharField(_("name"), max_length=80)
    code = models.SlugField(_("code"), max_length=30)
    city = models.CharField(_("city"), max_length=40, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=24, blank=True)
    latitude = models.DecimalField(
        _("latitude"), max_digits=9, decimal_places=6, null=True, blank=True,
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))],
    )
    longitude = models.DecimalField(
        _("longitude"), max_digits=9, decimal_places=6, null=True, blank=True,
        validators=[MinValueValidator(Decimal("-180")), MaxValueValidator(Decimal("180"))],
    )
    is_active = models.BooleanField(_("open"), default=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]
        permissions = [("manage_store", _("Manage the store's customers and tickets"))]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="store_unique_code"),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="store_latitude_range", violation_error_code="store_latitude_range",
                violation_error_message=_("Latitude is between -90 and 90."),
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="store_longitude_range", violation_error_code="store_longitude_range",
                violation_error_message=_("Longitude is between -180 and 180."),
            ),
        ]
        indexes = [models.Index(fields=["tenant", "region"], name="store_tenant_region")]

    def __str__(self):
        return self.name


class RegionUserObjectPermission(UserObjectPermissionBase):
    """guardian grant on one region, with a real FK so visibility is a plain SQL join."""

    content_object = models.ForeignKey(Region, on_delete=models.CASCADE)


class StoreUserObjectPermission(UserObjectPermissionBase):
    """guardian grant on one store, with a real FK (see RegionUserObjectPermission)."""

    content_object = models.ForeignKey(Store, on_delete=models.CASCADE)


class Team(TenantOwned):
    """A group of staff who share a queue (e.g. 华东安装一组), optionally tied to a region."""

    name = models.CharField(_("name"), max_length=60)
    region = models.ForeignKey(
        Region, on_delete=models.SET_NULL, null=True, blank=True, related_name="teams", verbose_name=_("region")
    )
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("team lead"),
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_unique_name")]

    def __str__(self):
        return self.name


class Skill(TenantOwned):
    """A skill tag that dispatch matches against (空调安装, 冰箱维修, 粤菜 …)."""

    name = models.CharField(_("name"), max_length=40)

    class Meta:
        verbose_name = _("skill")
        verbose_name_plural = _("skills")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="skill_unique_name")]

    def __str__(self):
        return self.name


class StaffProfile(TenantOwned):
    """What dispatch needs to know about a staff member in a tenant: skills, home store,
    location, whether on duty, and how many open tickets they may hold."""

    constraint_fields = {"staffprofile_max_open_positive": "max_open_tickets"}

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profiles")
    display_name = models.CharField(_("display name"), max_length=40)
    phone = models.CharField(_("phone"), max_length=24, blank=True)
    wecom_userid = models.CharField(_("WeCom user id"), max_length=64, blank=True)
    skills = models.ManyToManyField(Skill, blank=True, related_name="staff", verbose_name=_("skills"))
    teams = models.ManyToManyField(Team, blank=True, related_name="members", verbose_name=_("teams"))
    home_store = models.ForeignKey(
        Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="staff", verbose_name=_("home store")
    )
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    on_duty = models.BooleanField(_("on duty"), default=True)
    max_open_tickets = models.PositiveSmallIntegerField(_("max open tickets"), default=20)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="staffprofile_unique_user_per_tenant"),
            models.CheckConstraint(condition=Q(max_open_tickets__gte=1), name="staffprofile_max_open_positive",
                                   violation_error_code="staffprofile_max_open_positive",
                                   violation_error_message=_("At least one open ticket at a time.")),
        ]
        indexes = [models.Index(fields=["tenant", "on_duty"], name="staff_tenant_on_duty")]

    def __str__(self):
        return self.display_name


class CustomerTier(models.TextChoices):
    NORMAL = "normal", _("Normal")
    VIP = "vip", _("VIP")
    SVIP = "svip", _("SVIP")


class CustomerSource(models.TextChoices):
    """The channel a customer (lead) came through; lead tier rules read it."""

    UNKNOWN = "", _("Unknown")
    WALK_IN = "walk_in", _("Walk-in")
    PHONE = "phone", _("Phone")
    WECOM = "wecom", _("WeCom")
    WECHAT = "wechat", _("WeChat")
    WEBSITE = "website", _("Website")
    REFERRAL = "referral", _("Referral")
    EXHIBITION = "exhibition", _("Trade show")
    OTHER = "other", _("Other")


class Tag(TenantOwned):
    """A free label on customers (later on tickets too): 团购客户, 老客户, 企业客户 …"""

    name = models.CharField(_("name"), max_length=30)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="tag_unique_name")]

    def __str__(self):
        return self.name


class Customer(TenantOwned):
    """A person or company that asks for service. Identified by phone, WeCom external user id
    or WeChat openid, each unique within the tenant when present; the phone is stored normalised."""

    name = models.CharField(_("name"), max_length=60)
    phone = models.CharField(_("phone"), max_length=24, blank=True)
    email = models.EmailField(_("email"), blank=True)
    wecom_external_userid = models.CharField(_("WeCom external user id"), max_length=64, blank=True)
    wechat_openid = models.CharField(_("WeChat openid"), max_length=64, blank=True)
    tier = models.CharField(_("tier"), max_length=10, choices=CustomerTier.choices, default=CustomerTier.NORMAL)
    source = models.CharField(_("source"), max_length=12, choices=CustomerSource.choices, blank=True, default="")
    # Stamped when a ticket, a comment or a visit touches the customer (automation's hooks).
    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True)
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, null=True, blank=True, related_name="customers", verbose_name=_("region")
    )
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="customers", verbose_name=_("store")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("owner"),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers", verbose_name=_("tags"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    note = models.TextField(_("note"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "phone"], condition=~Q(phone=""), name="customer_unique_phone",
                violation_error_message=_("A customer with this phone number already exists."),
            ),
            models.UniqueConstraint(
                fields=["tenant", "wecom_external_userid"], condition=~Q(wecom_external_userid=""),
                name="customer_unique_wecom_id",
                violation_error_message=_("Another customer already has this WeCom external user id."),
            ),
            models.UniqueConstraint(
                fields=["tenant", "wechat_openid"], condition=~Q(wechat_openid=""), name="customer_unique_openid",
                violation_error_message=_("Another customer already has this WeChat openid."),
            ),
            models.CheckConstraint(condition=Q(tier__in=CustomerTier.values), name="customer_tier_valid"),
            models.CheckConstraint(condition=Q(source__in=CustomerSource.values), name="customer_source_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "region"], name="customer_tenant_region"),
            models.Index(fields=["tenant", "store"], name="customer_tenant_store"),
            models.Index(fields=["tenant", "tier"], name="customer_tenant_tier"),
            models.Index(fields=["tenant", "name"], name="customer_tenant_name"),
            models.Index(fields=["tenant", "-created_at"], name="customer_tenant_created"),
        ]

    def __str__(self):
        return self.name


class OpportunityStage(models.TextChoices):
    LEAD = "lead", _("Lead")
    QUALIFIED = "qualified", _("Qualified")
    PROPOSAL = "proposal", _("Proposal")
    NEGOTIATION = "negotiation", _("Negotiation")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Opportunity(TenantOwned):
    """A 商机: a deal with a customer worth an amount (yuan, fen-exact), moving through stages;
    a signed date is required once won."""

    constraint_fields = {"opportunity_amount_not_negative": "amount", "opportunity_won_has_signed_date": "signed_date"}

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="opportunities", verbose_name=_("customer")
    )
    title = models.CharField(_("title"), max_length=120)
    amount = models.DecimalField(
        _("amount (yuan)"), max_digits=14, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    stage = models.CharField(_("stage"), max_length=12, choices=OpportunityStage.choices, default=OpportunityStage.LEAD)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("owner"),
    )
    signed_date = models.DateField(_("signed date"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunity_amount_not_negative",
                                   violation_error_code="opportunity_amount_not_negative",
                                   violation_error_message=_("The amount cannot be negative.")),
            models.CheckConstraint(condition=Q(stage__in=OpportunityStage.values), name="opportunity_stage_valid"),
            models.CheckConstraint(
                condition=~Q(stage="won") | Q(signed_date__isnull=False), name="opportunity_won_has_signed_date",
                violation_error_code="opportunity_won_has_signed_date",
                violation_error_message=_("A won opportunity needs its signed date."),
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "stage"], name="opportunity_tenant_stage"),
            models.Index(fields=["tenant", "customer"], name="opportunity_tenant_customer"),
            models.Index(fields=["tenant", "-created_at"], name="opportunity_tenant_created"),
        ]

    def __str__(self):
        return self.title
