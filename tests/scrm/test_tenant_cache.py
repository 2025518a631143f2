"""The tenant a public URL names, kept in Django's cache (scrm.selectors.tenant_active_get) and
forgotten when the tenant is saved or deleted (scrm.config_cache); its config stamp is always
read from the database."""

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


def test_the_second_read_comes_from_the_cache(tenant_a):
    first, queries = _read("weidao")
    assert first.pk == tenant_a.pk and queries == 1
    again, queries = _read("weidao")
    assert queries == 0
    assert (again.pk, again.name, again.settings) == (tenant_a.pk, tenant_a.name, tenant_a.settings)


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


def test_the_config_stamp_is_read_from_the_database(tenant_a):
    _read("weidao")
    config_changed(tenant_a.pk)  # QuerySet.update(): no signal reaches the cache
    cached, queries = _read("weidao")
    assert queries == 0
    with CaptureQueriesContext(connection) as captured:
        stamp = cached.config_stamp
    assert len(captured.captured_queries) == 1
    assert stamp == Tenant.objects.get(pk=tenant_a.pk).config_stamp


@pytest.mark.parametrize("slug", ["nobody", "", "x" * 51])
def test_an_unknown_slug_is_none_and_not_kept(tenant_a, slug):
    assert tenant_active_get(slug=slug) is None
    assert cache.get(tenant_cache_key(slug)) is None
    _found, queries = _read(slug)
    assert queries == (1 if slug == "nobody" else 0)  # an impossible slug asks nothing
