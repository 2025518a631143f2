"""Foundation behaviour that differs on the real stack: tasks on a Redis-backed worker open their
tenant's scope and run only after commit; a duplicate phone racing on PostgreSQL gets the same
clear error as a sequential one; the cache is Redis."""

import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from scrm.models import Customer, Tag
from scrm.services import customer_create, tag_get_or_create
from scrm.tasks import tenant_task
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, TenantFactory
from tests.integration.helpers import wait_for


@tenant_task(name="tests.integration.customer_count")
def customer_count(*, tenant_id):
    return Customer.objects.count()


@tenant_task(name="tests.integration.tag_create")
def tag_create(*, tenant_id, name):
    from scrm.models import Tenant

    tag_get_or_create(tenant=Tenant.objects.get(pk=tenant_id), name=name)
    return name


def test_worker_runs_tenant_task_in_its_scope(celery_worker_thread):
    tenant_a, tenant_b = TenantFactory(), TenantFactory()
    with tenant_scope(tenant_a):
        CustomerFactory.create_batch(3, tenant=tenant_a)
    with tenant_scope(tenant_b):
        CustomerFactory(tenant=tenant_b)
    assert customer_count.delay(tenant_id=tenant_a.pk).get(timeout=20) == 3
    assert customer_count.delay(tenant_id=tenant_b.pk).get(timeout=20) == 1


def test_task_is_sent_only_when_the_transaction_commits(celery_worker_thread):
    tenant = TenantFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        tag_create.delay_on_commit(tenant_id=tenant.pk, name="回滚的标签")
        raise RuntimeError("roll back")
    with transaction.atomic():
        tag_create.delay_on_commit(tenant_id=tenant.pk, name="提交的标签")

    def names():
        with tenant_scope(tenant):
            return set(Tag.objects.values_list("name", flat=True))

    assert wait_for(lambda: names() == {"提交的标签"})
    # The worker is solo and FIFO: once the committed task ran, a rolled-back one would have too.
    assert names() == {"提交的标签"}


def test_racing_duplicate_phone_gets_the_clear_error(transactional_db):
    tenant = TenantFactory()
    barrier = threading.Barrier(2)
    outcomes = []

    def create(name):
        try:
            with tenant_scope(tenant):
                barrier.wait(timeout=10)
                customer_create(tenant=tenant, name=name, phone="13912345678")
            outcomes.append("created")
        except ValidationError as exc:
            outcomes.append(exc.message_dict["phone"][0])
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(name,)) for name in ("王一", "王二")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes, key=len)[0] == "created"
    assert "13912345678" in sorted(outcomes, key=len)[1]
    with tenant_scope(tenant):
        assert Customer.objects.filter(phone="13912345678").count() == 1


def test_cache_is_redis(db):
    cache.set("scrm:it", "好", 30)
    raw = redis.Redis.from_url(settings.REDIS_URL)
    assert any(b"scrm:it" in key for key in raw.keys("*scrm:it*"))
    assert cache.get("scrm:it") == "好"
