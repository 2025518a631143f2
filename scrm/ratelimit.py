"""A fixed-window request counter for public endpoints (per IP, or per API key): in Redis when
the site has it, else in the cache."""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_redis = None
_redis_lock = threading.Lock()


def client_ip(request):
    """The client's address. X-Forwarded-For is trusted only for the hops our own proxies added
    (TRUSTED_PROXY_COUNT of them, in front of the app): each proxy appends the address it saw,
    so the client is the entry that many places from the right. Anything to its left was
    written by the client and can be anything; without proxies the header is ignored."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if not forwarded:
        return remote
    # Fewer entries than proxies: the request skipped a proxy; the leftmost is the best we know.
    return forwarded[-hops] if len(forwarded) >= hops else forwarded[0]


def _redis_client():
    # One client per process: Django's Redis cache builds a new client object on every call,
    # which costs more than the round trip itself on a request that does nothing else with it.
    global _redis
    if _redis is None:
        import redis

        with _redis_lock:
            if _redis is None:
                _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    return _redis


def window_left(window=60):
    """Seconds until the current window ends (what a 429's Retry-After says)."""
    return max(1, int(window - time.time() % window))


def rate_limited(*, scope, ident, limit, window=60):
    """Count one hit; True once `ident` made more than `limit` hits in this window."""
    bucket = int(time.time() // window)
    key = f"rl:{scope}:{ident}:{bucket}"
    if getattr(settings, "REDIS_URL", ""):
        return _redis_hit(key, window) > limit
    if cache.add(key, 1, timeout=window + 5):
        return False
    try:
        hits = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window + 5)
        return False
    return hits > limit


def _redis_hit(key, window):
    """INCR, and EXPIRE after the first hit of the window only: one command per request, no
    pipeline to build. A key that missed its EXPIRE (a crash between the two) only lingers: it
    names a window that is over. A Redis outage lets the request through (0): the form must
    keep taking tickets while the cache is down."""
    import redis

    try:
        client = _redis_client()
        hits = client.incr(key)
        if hits == 1:
            client.expire(key, window + 5)
    except redis.RedisError:
        logger.warning("rate limiter: Redis unavailable, %s not counted", key, exc_info=True)
        return 0
    return hits


def _failure_key(scope, ident, window):
    return f"rl:{scope}:{ident}:{int(time.time() // window)}"


def failures_get(*, scope, ident, window):
    """How many failures `ident` has in this window (read only: a refused attempt is not counted,
    or a locked-out account could never come back)."""
    key = _failure_key(scope, ident, window)
    if getattr(settings, "REDIS_URL", ""):
        import redis

        try:
            return int(_redis_client().get(key) or 0)
        except redis.RedisError:
            logger.warning("rate limiter: Redis unavailable, %s not read", key, exc_info=True)
            return 0
    return cache.get(key, 0)


def failures_add(*, scope, ident, window):
    """Count one failure in this window."""
    rate_limited(scope=scope, ident=ident, limit=0, window=window)


def failures_clear(*, scope, ident, window):
    key = _failure_key(scope, ident, window)
    if getattr(settings, "REDIS_URL", ""):
        import redis

        try:
            _redis_client().delete(key)
        except redis.RedisError:
            logger.warning("rate limiter: Redis unavailable, %s not cleared", key, exc_info=True)
        return
    cache.delete(key)
