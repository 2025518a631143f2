"""Tenancy: opening the django-scopes scope for a request, a task or a command, and finding
which tenants a user belongs to. The only place outside sweeps and the superuser admin that
may look across tenants (membership lookup filters by user, so it cannot leak other rows)."""

from contextlib import contextmanager

from django.http import Http404
from django_scopes import scope, scopes_disabled

SESSION_TENANT_KEY = "scrm_tenant_id"


@contextmanager
def tenant_scope(tenant):
    """Open the scope of one tenant (a Tenant or its id). Refuses None: a scope without a
    tenant would be a scope on every tenant."""
    tenant_id = getattr(tenant, "pk", tenant)
    if tenant_id is None:
        raise ValueError("tenant_scope needs a tenant")
    with scope(tenant=tenant_id):
        yield


def user_memberships(user):
    """Active memberships of a user in active tenants, with their tenants, across tenants."""
    from .models import Membership

    if not user.is_authenticated:
        return []
    with scopes_disabled():
        return list(
            Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
            .select_related("tenant")
            .order_by("tenant__name")
        )


def tenants_for_user(user, *, memberships=None):
    """Tenants the user may switch to: every active one for a superuser, else their memberships'
    (pass `memberships` when they are at hand: user_memberships(user), as request.memberships)."""
    from .models import Tenant

    if user.is_superuser:
        return list(Tenant.objects.filter(is_active=True))
    if memberships is None:
        memberships = user_memberships(user)
    return [m.tenant for m in memberships]


def resolve_tenant(request):
    """Pick the request's tenant and membership: the one chosen in the session if still allowed,
    else the user's first. Returns (tenant, membership); (None, None) for a user with no seat.
    The memberships it reads stay on request.memberships: the tenant switcher lists them."""
    user = request.user
    memberships = request.memberships = user_memberships(user)
    wanted = request.session.get(SESSION_TENANT_KEY)
    by_tenant = {m.tenant_id: m for m in memberships}
    if wanted in by_tenant:
        return by_tenant[wanted].tenant, by_tenant[wanted]
    if user.is_superuser:
        from .models import Tenant

        tenant = Tenant.objects.filter(is_active=True, pk=wanted).first() if wanted else None
        if tenant is None and memberships:
            return memberships[0].tenant, memberships[0]
        if tenant is None:
            tenant = Tenant.objects.filter(is_active=True).first()
        return tenant, by_tenant.get(getattr(tenant, "pk", None))
    if memberships:
        return memberships[0].tenant, memberships[0]
    return None, None


class TenantScopeMiddleware:
    """Opens the scope of the signed-in user's tenant for the whole request (templates are
    rendered inside it). Anonymous requests get no scope: public views open their own from the
    URL's tenant slug. The superuser's admin runs unscoped, the admin's one escape hatch."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        request.memberships = []
        if not request.user.is_authenticated:
            return self.get_response(request)
        request.tenant, request.membership = resolve_tenant(request)
        from .selectors import membership_remember

        membership_remember(user=request.user, membership=request.membership)
        if request.user.is_superuser and request.path.startswith("/admin/"):
            with scopes_disabled():
                return self.get_response(request)
        if request.tenant is None:
            return self.get_response(request)
        with tenant_scope(request.tenant):
            return self.get_response(request)


def require_tenant(request):
    """The request's tenant, or 404 for a signed-in user who has no seat in any tenant."""
    if request.tenant is None:
        raise Http404("no tenant")
    return request.tenant
