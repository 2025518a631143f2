"""Reads of the core app. `visible_*` compute in SQL what a person may see, from their role in
the tenant in scope and their guardian grants on regions and stores (a few rows per user)."""

from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_scopes import get_scope

from .config_cache import TENANT_CACHE_SECONDS, config_stamp_read, tenant_cache_key
from .models import (
    Customer,
    Membership,
    Opportunity,
    Region,
    RegionUserObjectPermission,
    StaffProfile,
    Store,
    StoreUserObjectPermission,
    Tag,
    Team,
    Tenant,
)
from .permissions import TENANT_WIDE_ROLES, permissions_preload

_CACHE_ATTR = "_scrm_memberships"


def _real(user):
    """The user behind request.user's lazy wrapper, so the cache below is the one the auth
    backends (which get the real user) read too."""
    return getattr(user, "_wrapped", user) if user.is_authenticated else user


def tenant_active_get(*, slug):
    """The active tenant with this slug, or None: what a public URL (form, callback) names.
    Unscoped, like the membership lookup: finding the tenant is what opens its scope. Read on
    every public request, so kept in the cache and forgotten when the tenant is saved or
    deleted (scrm.config_cache). Its `config_stamp` is always the database's: the stamp
    changes without a save, so a cached row gets it from the one-column read that
    `config_pinned` would otherwise make."""
    if not slug or len(slug) > (Tenant._meta.get_field("slug").max_length or 0):
        return None
    key = tenant_cache_key(slug)
    tenant = cache.get(key)
    if tenant is None:
        try:
            tenant = Tenant.objects.get(slug=slug, is_active=True)
        except Tenant.DoesNotExist:
            return None  # not kept: anyone can vary the slug of a URL
        cache.set(key, tenant, TENANT_CACHE_SECONDS)
        return tenant
    stamp = config_stamp_read(tenant.pk)
    if stamp is None:  # deleted since; its delete has forgotten the entry by now
        return None
    tenant.config_stamp = stamp
    return tenant


def membership_current(*, user):
    """The user's active membership in the tenant in scope (cached on the user object)."""
    if not user.is_authenticated:
        return None
    user = _real(user)
    tenant_id = get_scope().get("tenant")
    cache = user.__dict__.setdefault(_CACHE_ATTR, {})
    if tenant_id not in cache:
        cache[tenant_id] = Membership.objects.filter(user=user, is_active=True).first()
    return cache[tenant_id]


def membership_remember(*, user, membership):
    """Let the middleware hand over the membership it already loaded; with it, the request's
    permissions are read in one query when first checked (scrm.permissions.permissions_preload)."""
    if membership is not None:
        user = _real(user)
        user.__dict__.setdefault(_CACHE_ATTR, {})[membership.tenant_id] = membership
        permissions_preload(user=user, membership=membership)


def _is_tenant_wide(user):
    if user.is_superuser:
        return True
    membership = membership_current(user=user)
    if membership is None:
        return False
    return membership.role in TENANT_WIDE_ROLES


def _region_descendants(region_ids):
    """The given regions and every region below them (regions are few; one query)."""
    if not region_ids:
        return set()
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Region.objects.values_list("id", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    result, stack = set(), list(region_ids)
    while stack:
        pk = stack.pop()
        if pk in result:
            continue
        result.add(pk)
        stack.extend(children.get(pk, ()))
    return result


def granted_region_ids(*, user):
    """Regions the user holds manage_region on, with their sub-regions."""
    direct = RegionUserObjectPermission.objects.filter(
        user=user, permission__codename="manage_region", content_object__tenant_id=get_scope().get("tenant")
    ).values_list("content_object_id", flat=True)
    return _region_descendants(set(direct))


def _store_scope_q(user):
    """Q over Store for a non-tenant-wide user: stores in granted regions, granted stores, home store."""
    region_ids = granted_region_ids(user=user)
    store_grants = StoreUserObjectPermission.objects.filter(
        user=user, permission__codename="manage_store"
    ).values("content_object_id")
    q = Q(region_id__in=region_ids) | Q(pk__in=store_grants)
    home = StaffProfile.objects.filter(user=user, home_store__isnull=False).values("home_store_id")
    return q | Q(pk__in=home), region_ids


def visible_regions(*, user):
    if _is_tenant_wide(user):
        return Region.objects.all()
    if membership_current(user=user) is None:
        return Region.objects.none()
    store_q, region_ids = _store_scope_q(user)
    store_regions = Store.objects.filter(store_q).values("region_id")
    return Region.objects.filter(Q(pk__in=region_ids) | Q(pk__in=store_regions))


def visible_stores(*, user):
    """Stores the user may see, with their region."""
    qs = Store.objects.select_related("region")
    if _is_tenant_wide(user):
        return qs
    if membership_current(user=user) is None:
        return qs.none()
    store_q, _region_ids = _store_scope_q(user)
    return qs.filter(store_q)


def visibility_q(*, user, store_field="store", region_field="region"):
    """The Q that limits rows carrying a store and a region column to what the user may see:
    None for tenant-wide roles (no limit); rows of visible stores, and store-less rows of
    visible regions, otherwise; nothing for a user without a seat."""
    if _is_tenant_wide(user):
        return None
    if membership_current(user=user) is None:
        return Q(pk__in=[])
    store_q, region_ids = _store_scope_q(user)
    stores = Store.objects.filter(store_q).values("pk")
    in_region = {f"{store_field}__isnull": True, f"{region_field}_id__in": region_ids}
    return Q(**{f"{store_field}__in": stores}) | Q(**in_region)


def visible_customers(*, user):
    """Customers the user may see: all for tenant-wide roles; otherwise those of visible stores,
    and those with no store whose region is visible."""
    q = visibility_q(user=user)
    return Customer.objects.all() if q is None else Customer.objects.filter(q)


def visible_opportunities(*, user):
    return Opportunity.objects.filter(customer__in=visible_customers(user=user).values("pk"))


def customer_list(*, user, search="", tier="", region_id=None, store_id=None, tag_id=None):
    """The customer list page: visible customers, filtered, with what each row shows."""
    qs = visible_customers(user=user).select_related("region", "store", "owner").prefetch_related("tags")
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(phone__contains=search))
    if tier:
        qs = qs.filter(tier=tier)
    if region_id:
        qs = qs.filter(region_id=region_id)
    if store_id:
        qs = qs.filter(store_id=store_id)
    if tag_id:
        qs = qs.filter(tags__id=tag_id)
    return qs.annotate(opportunity_count=Count("opportunities", distinct=True)).order_by("-created_at", "-id")


def customer_get(*, user, pk):
    """One visible customer or None."""
    return visible_customers(user=user).select_related("region", "store", "owner").filter(pk=pk).first()


def customer_opportunities(*, customer):
    return customer.opportunities.select_related("owner").order_by("-created_at")


def customer_find_by_phone(*, phone):
    return Customer.objects.filter(phone=phone).first()


def opportunity_list(*, user, search="", stage=""):
    qs = visible_opportunities(user=user).select_related("customer", "owner")
    if search:
        qs = qs.filter(Q(title__icontains=search) | Q(customer__name__icontains=search))
    if stage:
        qs = qs.filter(stage=stage)
    return qs.order_by("-created_at", "-id")


def opportunity_get(*, user, pk):
    return visible_opportunities(user=user).select_related("customer", "owner").filter(pk=pk).first()


def store_list(*, user, search="", region_id=None):
    qs = visible_stores(user=user).annotate(
        customer_count=Count("customers", distinct=True), staff_count=Count("staff", distinct=True)
    )
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(city__icontains=search) | Q(code__icontains=search))
    if region_id:
        qs = qs.filter(region_id=region_id)
    return qs.order_by("region__code", "code")


def store_get(*, user, pk):
    return visible_stores(user=user).filter(pk=pk).first()


def region_list(*, user):
    return (
        visible_regions(user=user)
        .select_related("parent")
        .annotate(store_count=Count("stores", distinct=True))
        .order_by("code")
    )


def team_list():
    return Team.objects.select_related("region", "lead").annotate(member_count=Count("members")).order_by("name")


def tag_list():
    return Tag.objects.order_by("name")


def dashboard_summary(*, user):
    """Counts for the home page, in three queries whatever the tenant's size."""
    customers = visible_customers(user=user)
    by_tier = dict(customers.values_list("tier").annotate(n=Count("id")).order_by())
    opps = visible_opportunities(user=user).exclude(stage__in=["won", "lost"])
    pipeline = opps.aggregate(n=Count("id"), amount=Sum("amount"))
    return {
        "customers": sum(by_tier.values()),
        "vip_customers": by_tier.get("vip", 0) + by_tier.get("svip", 0),
        "open_opportunities": pipeline["n"] or 0,
        "pipeline_amount": pipeline["amount"] or 0,
        "stores": visible_stores(user=user).filter(is_active=True).count(),
    }


def stores_cached(config=None):
    """Every store of the tenant in scope with its region, {id: Store} in code order: for intake
    (which links every ticket to a store) and the store pickers. Cached per tenant until a store
    or region changes (scrm.config_cache); callers only read it. Pass `config` when holding the
    tenant's cache entry already (its stamp is not read again)."""
    from .config_cache import tenant_config

    return (config or tenant_config()).get("stores", lambda: {
        s.pk: s for s in Store.objects.select_related("region").order_by("code", "pk")})


def store_cached(pk):
    """A store of the tenant in scope with its region, or None (see stores_cached)."""
    return stores_cached().get(pk)


def staff_list(*, search="", role="", active=None):
    """The tenant's staff with their role and seat state (one query), for the staff page."""
    memberships = Membership.objects.filter(user=OuterRef("user"))
    qs = (StaffProfile.objects.select_related("user", "home_store")
          .annotate(role=Subquery(memberships.values("role")[:1]),
                    is_active=Subquery(memberships.values("is_active")[:1]))
          .order_by("-is_active", "display_name"))
    if search:
        qs = qs.filter(Q(display_name__icontains=search) | Q(phone__startswith=search)
                       | Q(user__username__icontains=search))
    if role:
        qs = qs.filter(role=role)
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs


def staff_get(*, pk):
    """One staff profile of the tenant in scope with its role and seat state, or None."""
    return staff_list().prefetch_related("skills", "teams").filter(pk=pk).first()


def staff_password_link(*, profile):
    """The path of a one-time link where the person sets their own password (Django's password
    reset token: valid for PASSWORD_RESET_TIMEOUT, spent once the password changes)."""
    user = profile.user
    return reverse("password_reset_confirm", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                                   default_token_generator.make_token(user)])
