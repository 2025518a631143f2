"""The tenant a public URL names, kept in Django's cache (scrm.selectors.tenant_active_get) and
forgotten when the tenant is saved or deleted (scrm.config_cache); a cached row's config stamp
is read from the database, one column of one row."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scrm.config_cache import config_changed, tenant_cache_key
from scrm.models import Tenant
from scrm.selectors import tenant_active_get


def _read(slug):
    with CaptureQueriesContext(connection) as captured:
        found = tenant_active_get(slug=slug)
    return found, len(captured.captured_queries)


def test_the_second_read_comes_from_the_cache_and_asks_only_the_stamp(tenant_a):
    first, queries = _read("weidao")
    assert first.pk == tenant_a.pk and queries == 1
    with CaptureQueriesContext(connection) as captured:
        again = tenant_active_get(slug="weidao")
    [query] = captured.captured_queries
    assert query["sql"].startswith("SELECT config_stamp")
    assert (again.pk, again.name, again.settings, again.config_stamp) == (
        tenant_a.pk, tenant_a.name, tenant_a.settings, tenant_a.config_stamp)


def test_saving_the_tenant_forgets_it_at_once_and_after_the_commit(tenant_a, django_capture_on_commit_callbacks):
    _read("weidao")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tenant_a.name = "味道江南（新）"
        tenant_a.save()
    assert cache.get(tenant_cache_key("weidao")) is None
    assert len(callbacks) == 1
    found, queries = _read("weidao")  # the commit's delete, after a request put the row back
    callbacks[0]()
    assert cache.get(tenant_cache_key("weidao")) is None
    assert found.name == "味道江南（新）" and queries == 1


def test_a_deactivated_or_deleted_tenant_is_not_served_from_the_cache(tenant_a, tenant_b):
    _read("weidao")
    _read("meijia")
    tenant_a.is_active = False
    tenant_a.save()
    assert _read("weidao") == (None, 1)
    tenant_b.delete()
    assert _read("meijia") == (None, 1)


def test_a_renamed_slug_forgets_the_old_one(tenant_a):
    _read("weidao")
    tenant_a.slug = "weidao-jn"
    tenant_a.save()
    assert _read("weidao") == (None, 1)
    assert _read("weidao-jn")[0].pk == tenant_a.pk


def test_a_cached_row_carries_the_stamp_of_the_database(tenant_a):
    before = _read("weidao")[0].config_stamp
    config_changed(tenant_a.pk)  # QuerySet.update(): no signal reaches the cache
    cached, queries = _read("weidao")
    assert queries == 1
    assert cached.config_stamp == Tenant.objects.get(pk=tenant_a.pk).config_stamp != before


def test_a_row_deleted_behind_the_cache_is_none(tenant_a):
    cached = _read("weidao")[0]
    tenant_a.delete()
    cache.set(tenant_cache_key("weidao"), cached)  # as a request that read it before the delete
    assert _read("weidao") == (None, 1)


@pytest.mark.parametrize("slug", ["nobody", "", "x" * 51])
def test_an_unknown_slug_is_none_and_not_kept(tenant_a, slug):
    assert tenant_active_get(slug=slug) is None
    assert cache.get(tenant_cache_key(slug)) is None
    _found, queries = _read(slug)
    assert queries == (1 if slug == "nobody" else 0)  # an impossible slug asks nothing
