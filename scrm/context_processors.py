"""What the base layout needs on every page: the tenant, the tenants one may switch to (read only
when the layout shows them), the role. The bell's unread count is notifications' own
(notifications.context_processors)."""

import hashlib
import re

from django.utils.translation import get_language

from .tenancy import tenants_for_user

_DIGIT_RUNS = re.compile(r"\d+")


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
        "sidebar_key": lambda: sidebar_key(request),
    }


def sidebar_key(request):
    """What the sidebar's HTML depends on, for the layout's fragment cache: who (their
    permissions, role, tenant), the language, and the path with its numbers folded — the
    links' own paths hold no digits (a test says so), so /tickets/12/ and /tickets/13/ light
    the same link and share one copy."""
    user, membership, tenant = request.user, getattr(request, "membership", None), getattr(request, "tenant", None)
    # A superuser has every permission without a read; listing them would cost one.
    perms = "*" if user.is_superuser else "\n".join(sorted(user.get_all_permissions()))
    digest = hashlib.blake2b(perms.encode(), digest_size=12).hexdigest()
    return (f"{user.pk}:{getattr(membership, 'role', '')}:{getattr(tenant, 'pk', '')}:{get_language()}:{digest}:"
            f"{_DIGIT_RUNS.sub('#', request.path)}")

