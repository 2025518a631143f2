"""A short-lived shared cache of the dashboards' computed figures (the 工作台's numbers, the
board's columns, the manager dashboard's series) on Django's cache API — Redis in production, so
every worker shares one copy.

An entry is keyed by the tenant, the visibility scope (every tenant-wide role shares "all"; anyone
else is their own scope, because what they see includes their own work), the page's filters, the
language and the local day; and it is stored beside the stamps it depends on:

* `LIVE`: tickets, workflow tasks and SLA clocks — replaced when one of them is saved or deleted
  (the 工作台's live figures, the board);
* `ROLLUP`: the daily roll-ups — replaced by every roll-up refresh or backfill (the dashboard);
* `RATINGS`: satisfaction ratings — replaced when one is saved or deleted (the dashboard's CSAT);
* `GRANTS` (not per tenant): memberships, region and store grants, home stores, regions and
  stores — replaced when one changes, which moves a regional manager's scope.

A stamp is a random token (never a counter a rolled-back change or a reused tenant id could meet
again), replaced before the changing thread's next read and once more after the commit: a read
between the two may have cached figures from before the commit under the first new token, and the
second makes them unreachable.
An entry whose stamps differ from the current ones is recomputed. Time alone moves some figures
(a ticket falls overdue without any write; bulk writes send no signal), so every entry also
expires after its time to live. Reading an entry costs one round trip (stamps and entry in one
get_many)."""

from __future__ import annotations

import functools
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone, translation

from scrm.config_cache import scoped_tenant_id
from scrm.permissions import TENANT_WIDE_ROLES
from scrm.selectors import membership_current

LIVE = "live"
ROLLUP = "rollup"
RATINGS = "ratings"
GRANTS = "grants"

# Times to live in seconds. The 工作台's live figures: half a minute (SLA figures move with the
# clock). The board: a few seconds (its htmx poll comes every 15 s). The dashboard reads only the
# roll-ups, which the beat task refreshes every 5 minutes and which replace the ROLLUP stamp.
FIGURES_TTL = 30
BOARD_TTL = 5
ROLLUP_TTL = 300

PREFIX = "dash"
T = TypeVar("T")


def _stamp_key(tenant_id: int | None, name: str) -> str:
    return f"{PREFIX}:stamp:{name}" if tenant_id is None else f"{PREFIX}:{tenant_id}:stamp:{name}"


def scope_of(user: Any) -> str | None:
    """The visibility scope a cached entry is shared by: "all" for the superuser and the
    tenant-wide roles, "u<id>:<role>" for anyone else (their regions and stores plus their own
    work); None (do not cache) without a seat in the tenant."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return "all"
    membership = membership_current(user=user)
    if membership is None:
        return None
    if membership.role in TENANT_WIDE_ROLES:
        return "all"
    return f"u{user.pk}:{membership.role}"


def _stamps_current(keys: list[str], found: dict[str, Any]) -> list[str]:
    stamps = []
    for key in keys:
        stamp = found.get(key)
        if stamp is None:  # never set, or evicted: start one (another process may win the race)
            stamp = uuid.uuid4().hex
            if not cache.add(key, stamp, timeout=None):
                stamp = cache.get(key) or stamp
        stamps.append(stamp)
    return stamps


def cached(name: str, *, user: Any, parts: Iterable[Any], depends: tuple[str, ...], ttl: int,
           compute: Callable[[], T]) -> T:
    """`compute()`'s value for this tenant, scope and `parts` (the filters: plain values whose
    repr says them fully), from the cache when an entry with the current `depends` stamps is
    there, else computed and stored for `ttl` seconds. Computed without the cache for a user
    without a scope, or with the setting DASHBOARDS_CACHE = False (the bench's uncached run). The
    value must pickle; every read hands out a copy of its own (the cache
    pickles), so a caller may change what it gets."""
    scope = scope_of(user)
    if scope is None or not getattr(settings, "DASHBOARDS_CACHE", True):
        return compute()
    tenant_id = scoped_tenant_id()
    now = timezone.localtime()
    description = repr((name, scope, tuple(parts), translation.get_language(), str(now.tzinfo), now.date()))
    key = f"{PREFIX}:{tenant_id}:{name}:{hashlib.sha256(description.encode()).hexdigest()[:32]}"
    stamp_keys = [_stamp_key(None if dep == GRANTS else tenant_id, dep) for dep in (*depends, GRANTS)]
    _replace_now()
    found = cache.get_many([*stamp_keys, key])
    stamps = _stamps_current(stamp_keys, found)
    entry = found.get(key)
    if entry is not None and entry[0] == stamps:
        return entry[1]
    value = compute()
    cache.set(key, (stamps, value), timeout=ttl)
    return value


def cached_selector(name: str, *, depends: tuple[str, ...], ttl: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Make a selector called with keywords (`user=` and plain values such as TicketFilters)
    read through `cached`: its other keywords are the entry's parts. A call with an explicit
    clock (`now=`) is computed as asked, never cached."""
    def wrap(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def read(*, user: Any, **kwargs: Any) -> T:
            if kwargs.get("now") is not None:
                return func(user=user, **kwargs)
            return cached(name, user=user, parts=sorted(kwargs.items()), depends=depends, ttl=ttl,
                          compute=lambda: func(user=user, **kwargs))
        read.uncached = func  # type: ignore[attr-defined]
        return read
    return wrap


class _Pending(threading.local):
    """The stamps this thread must replace: `keys` after the commit, `now` before its own next
    read. A change is invisible to other connections until it commits, so replacing a stamp for
    them before the commit serves nothing; this thread's reads (the same transaction) must see it
    at once. Saving a ticket, its task and the ticket again in one intake so costs one
    replacement after the commit instead of six round trips."""

    keys: set[str] | None = None
    now: set[str] | None = None


_pending = _Pending()


def stamp_bump(tenant_id: int | None, *names: str) -> None:
    """Replace these stamps of a tenant (None: the global GRANTS) for this thread's next read and
    again after the commit."""
    keys = [_stamp_key(None if name == GRANTS else tenant_id, name) for name in names]
    if not keys or (tenant_id is None and any(name != GRANTS for name in names)):
        return
    if _pending.keys is None:
        _pending.keys = set()
    if _pending.now is None:
        _pending.now = set()
    _pending.keys.update(keys)
    _pending.now.update(keys)
    # Every call registers one (a savepoint rolled back drops only its own): the first to run
    # after the commit replaces every pending stamp, the others find none left. Stamps left by a
    # rolled-back transaction are replaced at the next read or commit, which is harmless.
    transaction.on_commit(_replace_pending)


def _replace(keys: list[str]) -> None:
    if len(keys) == 1:  # one key: a plain SET, no MULTI/EXEC pipeline
        cache.set(keys[0], uuid.uuid4().hex, timeout=None)
    else:
        cache.set_many({key: uuid.uuid4().hex for key in keys}, timeout=None)


def _replace_now() -> None:
    """Before this thread reads stamps: replace those its uncommitted changes made stale."""
    keys, _pending.now = _pending.now, None
    if keys:
        _replace(sorted(keys))


def _replace_pending() -> None:
    keys, _pending.keys, _pending.now = _pending.keys, None, None
    if keys:
        _replace(sorted(keys))


def _receiver(*names: str) -> Callable[..., None]:
    def receive(sender: Any, instance: Any, **kwargs: Any) -> None:
        if kwargs.get("raw"):
            return
        stamp_bump(getattr(instance, "tenant_id", None), *names)
    return receive


_live_changed = _receiver(LIVE)
_ratings_changed = _receiver(RATINGS)
_grants_changed = _receiver(GRANTS)


def _on_tenant_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # A new tenant starts with fresh stamps: nothing cached under a reused id can match.
    if created and not kwargs.get("raw"):
        stamp_bump(instance.pk, LIVE, ROLLUP, RATINGS)


def cache_watch() -> None:
    """Connect the receivers that replace the stamps (dashboards' AppConfig.ready)."""
    from scrm.models import (
        Membership,
        Region,
        RegionUserObjectPermission,
        StaffProfile,
        Store,
        StoreUserObjectPermission,
        Tenant,
    )
    from tickets.models import SatisfactionRating, Ticket
    from workflow.models import Task, TicketSla

    for model in (Ticket, Task, TicketSla):
        post_save.connect(_live_changed, sender=model, dispatch_uid=f"dash-live-save-{model._meta.label}")
        post_delete.connect(_live_changed, sender=model, dispatch_uid=f"dash-live-delete-{model._meta.label}")
    post_save.connect(_ratings_changed, sender=SatisfactionRating, dispatch_uid="dash-ratings-save")
    post_delete.connect(_ratings_changed, sender=SatisfactionRating, dispatch_uid="dash-ratings-delete")
    for grant in (Membership, RegionUserObjectPermission, StoreUserObjectPermission, StaffProfile, Region, Store):
        post_save.connect(_grants_changed, sender=grant, dispatch_uid=f"dash-grants-save-{grant._meta.label}")
        post_delete.connect(_grants_changed, sender=grant, dispatch_uid=f"dash-grants-delete-{grant._meta.label}")
    post_save.connect(_on_tenant_saved, sender=Tenant, dispatch_uid="dash-tenant-created")
