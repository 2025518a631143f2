"""A fixed-window request counter in the cache, for public endpoints (per IP)."""

import time

from django.core.cache import cache


def client_ip(request):
    # Behind the production proxy the first X-Forwarded-For hop is the client; runserver and
    # tests have REMOTE_ADDR only.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR", "")


def rate_limited(*, scope, ident, limit, window=60):
    """Count one hit; True once `ident` made more than `limit` hits in this window."""
    bucket = int(time.time() // window)
    key = f"rl:{scope}:{ident}:{bucket}"
    if cache.add(key, 1, timeout=window + 5):
        return False
    try:
        hits = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 5)
        return False
    return hits > limit
