"""Rules of the code that the whole test suite enforces while it runs (tests/conftest.py turns
them on for the session).

Watched configuration (scrm.config_cache.config_watch) is cached per process until its tenant's
stamp changes, and only a save, a delete or an m2m change replaces the stamp: a
`QuerySet.update()`, `bulk_update()` or `bulk_create()` sends no signal, so every process would
keep serving the old value. The guard wraps those QuerySet methods so that using one on a
watched model fails the test that ran it, however the queryset was reached (a manager, a
related manager, a queryset kept in a variable). An m2m through model may be bulk-created: its
related manager's add()/set() does that, and sends m2m_changed itself."""

import functools
from contextlib import contextmanager

from django.db.models import QuerySet

from scrm.config_cache import watched_models

GUARDED = {"update": ("model", "m2m"), "bulk_update": ("model", "m2m"), "bulk_create": ("model",)}


class WatchedConfigBulkWrite(AssertionError):
    """A watched configuration model was written past its signals."""


def _guarded(name, original):
    @functools.wraps(original)
    def method(self, *args, **kwargs):
        if watched_models().get(self.model) in GUARDED[name]:
            raise WatchedConfigBulkWrite(
                f"QuerySet.{name}() on {self.model._meta.label}, which config_watch watches: it sends no signal, so "
                "the tenant's config stamp stays and cached configuration goes stale. Save or delete each object "
                "through the ORM (CONTRIBUTING: Checklist: add a model, 6).")
        return original(self, *args, **kwargs)

    return method


@contextmanager
def watched_config_bulk_writes_refused():
    originals = {name: getattr(QuerySet, name) for name in GUARDED}
    for name, original in originals.items():
        setattr(QuerySet, name, _guarded(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(QuerySet, name, original)
