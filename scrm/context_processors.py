"""What the base layout needs on every page: the tenant, the tenants one may switch to (read only
when the layout shows them), the role. The bell's unread count is notifications' own
(notifications.context_processors)."""

from .tenancy import tenants_for_user


def shell(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": membership,
        # The middleware has read the memberships already (request.memberships): no second query.
        "switchable_tenants": lambda: tenants_for_user(user, memberships=getattr(request, "memberships", None)),
    }

