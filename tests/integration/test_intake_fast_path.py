"""What keeps public intake cheap on the production stack: the Redis rate limiter (one round trip,
a window that expires, open when Redis is down) and the customer lookup by phone answered from
its unique index rather than by walking the tenant's customers."""

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scrm import ratelimit
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory
from tickets.services import customer_link


@pytest.fixture
def limiter_keys():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    for key in client.scan_iter("rl:test-*"):
        client.delete(key)


def test_redis_limiter_counts_per_ident_and_expires_its_window(limiter_keys):
    hits = [ratelimit.rate_limited(scope="test-form", ident="10.0.0.1", limit=2) for _ in range(3)]
    assert hits == [False, False, True]
    assert ratelimit.rate_limited(scope="test-form", ident="10.0.0.2", limit=2) is False
    keys = list(limiter_keys.scan_iter("rl:test-form:10.0.0.1:*"))
    assert len(keys) == 1
    assert 0 < limiter_keys.ttl(keys[0]) <= 65
    assert int(limiter_keys.get(keys[0])) == 3


def test_redis_limiter_lets_requests_through_when_redis_is_down(monkeypatch):
    # The warning is read off the logger itself: the worker fixture of other tests reconfigures logging.
    warnings = []
    monkeypatch.setattr(ratelimit.logger, "warning", lambda msg, *args, **kwargs: warnings.append(msg % args))
    monkeypatch.setattr(ratelimit, "_redis", redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    assert ratelimit.rate_limited(scope="test-form", ident="10.0.0.3", limit=0) is False
    assert len(warnings) == 1 and "Redis unavailable, rl:test-form:10.0.0.3:" in warnings[0]


def test_customer_lookup_by_phone_uses_the_unique_index(tenant_a):
    with tenant_scope(tenant_a):
        for i in range(50):
            CustomerFactory(tenant=tenant_a, phone=f"1390000{i:04d}")
        with CaptureQueriesContext(connection) as captured:
            found = customer_link(tenant=tenant_a, phone="13900000042")
    assert found.phone == "13900000042"
    sql = next(q["sql"] for q in captured.captured_queries if 'FROM "scrm_customer"' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert "customer_unique_phone" in plan
