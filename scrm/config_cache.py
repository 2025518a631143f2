"""A per-process cache of the tenant configuration every intake reads (templates, classification
rules, stores, notification templates, workflows), so a ticket does not pay a query for each.

Entries are keyed by `Tenant.config_stamp`, a random value that a save or delete of any watched
model replaces in the same transaction (`config_watch`): a process reads the stamp (one
indexed row) and keeps using what it loaded until the stamp changes, so nothing it serves is
older than the last committed change. A random stamp, not a counter, because a rolled-back
change or a tenant id reused after a rollback must never match an entry loaded before."""

import contextvars
import threading
import uuid
from contextlib import contextmanager

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django_scopes import get_scope

MAX_TENANTS = 512  # entries kept per process; past it the cache starts again (a reload per tenant)
MAX_VALUES = 256  # values kept per tenant entry, for the same reason

_entries: dict = {}
_lock = threading.Lock()
# model → "model" or "m2m" (a through model): what config_watch connected.
_watched: dict = {}
# (tenant id, entry) while a `config_pinned` block runs in this thread or task.
_pinned = contextvars.ContextVar("scrm_config_pinned", default=None)


class TenantConfig:
    """What one process has loaded for one tenant at one stamp. Values are shared between
    requests (and threads): loaders return data nobody mutates — tuples, dicts used read-only,
    model instances handed out for reading."""

    __slots__ = ("stamp", "values")

    def __init__(self, stamp):
        self.stamp = stamp
        self.values = {}

    def get(self, name, load, *, keep_none=True):
        """The value called `name`, from `load()` the first time at this stamp. `load` runs in
        the caller's tenant scope and transaction. keep_none=False leaves a None result out
        (a lookup by a key from outside, which anyone can vary, must not fill the cache)."""
        try:
            return self.values[name]
        except KeyError:
            pass
        value = load()
        if value is None and not keep_none:
            return None
        if len(self.values) >= MAX_VALUES:
            self.values.clear()
        self.values[name] = value
        return value


def scoped_tenant_id():
    """The tenant of the open scope. Refuses to run unscoped or with scopes switched off, where
    a cached value would be another tenant's."""
    current = get_scope()
    tenant = current.get("tenant")
    if not current.get("_enabled", False) or tenant is None or isinstance(tenant, list | tuple):
        raise RuntimeError("This needs one tenant scope: call inside tenant_scope(tenant).")
    return getattr(tenant, "pk", tenant)


def _stamp_read(tenant_id):
    # A plain cursor: this runs on every intake, and an ORM query costs more to build than to run.
    from .models import Tenant

    table = connection.ops.quote_name(Tenant._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT config_stamp FROM {table} WHERE id = %s", [tenant_id])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        return None
    # SQLite hands back the hex text, PostgreSQL a UUID; entries compare UUIDs.
    return row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(row[0])


def config_stamp_read(tenant_id):
    """The tenant's stamp in the database now (None for no such tenant)."""
    return _stamp_read(tenant_id)


def tenant_config(tenant=None):
    """The cache entry of a tenant (a Tenant, its id, or by default the open scope's): the
    pinned one inside `config_pinned`, else checked against the stamp in the database now."""
    tenant_id = scoped_tenant_id() if tenant is None else getattr(tenant, "pk", tenant)
    pinned = _pinned.get()
    if pinned is not None and pinned[0] == tenant_id:
        return pinned[1]
    return _entry(tenant_id, _stamp_read(tenant_id))


@contextmanager
def config_pinned(tenant, *, stamp=None):
    """Read the stamp once for a whole piece of work (a request, an intake) instead of at each
    cached read inside it. Pass `stamp` when `tenant` was just loaded from the database (its
    `config_stamp`), to spare even that read. A change made inside the block unpins it."""
    tenant_id = getattr(tenant, "pk", tenant)
    pinned = _pinned.get()
    if pinned is not None and pinned[0] == tenant_id:  # already pinned by an outer block
        yield pinned[1]
        return
    entry = _entry(tenant_id, _stamp_read(tenant_id) if stamp is None else stamp)
    token = _pinned.set((tenant_id, entry))
    try:
        yield entry
    finally:
        _pinned.reset(token)


def _entry(tenant_id, stamp):
    entry = _entries.get(tenant_id)
    if entry is not None and entry.stamp == stamp:
        return entry
    entry = TenantConfig(stamp)
    with _lock:
        if len(_entries) >= MAX_TENANTS:
            _entries.clear()
        _entries[tenant_id] = entry
    return entry


def config_changed(tenant_id):
    """Replace the tenant's stamp (inside the caller's transaction): every process reloads on
    its next read after the change commits."""
    from .models import Tenant

    if tenant_id is None:
        return
    Tenant.objects.filter(pk=tenant_id).update(config_stamp=uuid.uuid4())
    pinned = _pinned.get()
    if pinned is not None and pinned[0] == tenant_id:
        _pinned.set(None)


def _on_change(sender, instance, **kwargs):
    if kwargs.get("raw"):  # loaddata: the fixture's own rows, stamps included
        return
    config_changed(getattr(instance, "tenant_id", None))


def _on_m2m_change(sender, instance, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        config_changed(getattr(instance, "tenant_id", None))


def config_watch(*models, m2m=()):
    """Make saving or deleting these tenant-owned models (and changing these many-to-many
    relations, given as their `through` models) replace their tenant's stamp. Apps call it from
    their AppConfig.ready() for every model a cached value is built from."""
    for model in models:
        post_save.connect(_on_change, sender=model, dispatch_uid=f"config-save-{model._meta.label}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"config-delete-{model._meta.label}")
        _watched[model] = "model"
    for through in m2m:
        m2m_changed.connect(_on_m2m_change, sender=through, dispatch_uid=f"config-m2m-{through._meta.label}")
        _watched[through] = "m2m"


def watched_models():
    """The models `config_watch` watches, each with "model" or "m2m" (a through model). The rule
    "never QuerySet.update() on a watched model" (nor bulk_update/bulk_create, which send no
    signal either) is checked against these by the test suite (tests/guards.py)."""
    return dict(_watched)


def config_cache_clear():
    """Forget every entry of this process (tests that swap databases under one process)."""
    with _lock:
        _entries.clear()


# --- the tenant a public URL names ------------------------------------------------------
# Every public request (web form, WeCom/WeChat callback) finds its tenant by the slug in its URL
# (scrm.selectors.tenant_active_get). The row is kept in Django's cache — Redis in production,
# so one change reaches every process — and forgotten by receivers of Tenant's own signals
# rather than by a service, because the admin changes tenants without one. A save or delete
# forgets the slug at once and again after the commit (a request that read the row before the
# commit may have put the old one back meanwhile); a save that renames the slug forgets the old
# one too. An entry lives TENANT_CACHE_SECONDS at most: that bounds a request that put an old
# row back after the commit's delete, and LocMemCache (no Redis), where each process has a
# cache of its own. The config stamp of a cached row is not trusted: config_changed replaces it
# with QuerySet.update(), which sends no signal, so a hit takes it from config_stamp_read.
TENANT_CACHE_SECONDS = 60


def tenant_cache_key(slug):
    return f"scrm:tenant-slug:{slug}"


def tenant_cache_forget(*slugs):
    """Forget the cached tenants of these slugs now and once the transaction commits."""
    keys = [tenant_cache_key(slug) for slug in slugs if slug]
    if keys:
        cache.delete_many(keys)
        transaction.on_commit(lambda: cache.delete_many(keys))


def _on_tenant_pre_save(sender, instance, **kwargs):
    if instance.pk is None:
        return
    old = sender.objects.filter(pk=instance.pk).values_list("slug", flat=True).order_by()[:1]
    if old and old[0] != instance.slug:
        tenant_cache_forget(old[0])


def _on_tenant_change(sender, instance, **kwargs):
    tenant_cache_forget(instance.slug)


def tenant_cache_watch():
    """Connect the receivers above (the core app's ready())."""
    from .models import Tenant

    pre_save.connect(_on_tenant_pre_save, sender=Tenant, dispatch_uid="tenant-cache-pre-save")
    post_save.connect(_on_tenant_change, sender=Tenant, dispatch_uid="tenant-cache-save")
    post_delete.connect(_on_tenant_change, sender=Tenant, dispatch_uid="tenant-cache-delete")
