"""What keeps public intake cheap on the production stack: the Redis rate limiter (one round trip,
a window that expires, open when Redis is down), the customer lookup by phone answered from its
unique index rather than by walking the tenant's customers, a new customer written without a
savepoint, and the broker transport's kept client."""

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from scrm import broker, celery_app, ratelimit
from scrm.models import Customer
from scrm.services import customer_create
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory
from tickets.services import customer_link


@pytest.fixture
def limiter_keys():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    for key in client.scan_iter("rl:test-*"):
        client.delete(key)


@pytest.fixture
def celery_redis():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("scrm-test-kept-client")
    yield client
    client.delete("scrm-test-kept-client")


def test_redis_limiter_counts_per_ident_and_expires_its_window(limiter_keys):
    hits = [ratelimit.rate_limited(scope="test-form", ident="10.0.0.1", limit=2) for _ in range(3)]
    assert hits == [False, False, True]
    assert ratelimit.rate_limited(scope="test-form", ident="10.0.0.2", limit=2) is False
    keys = list(limiter_keys.scan_iter("rl:test-form:10.0.0.1:*"))
    assert len(keys) == 1
    assert 0 < limiter_keys.ttl(keys[0]) <= 65
    assert int(limiter_keys.get(keys[0])) == 3


def test_redis_limiter_sets_the_expiry_on_the_first_hit_of_a_window_only(limiter_keys, monkeypatch):
    client = ratelimit._redis_client()
    expires = []
    real_expire = client.expire
    monkeypatch.setattr(client, "expire", lambda key, seconds: expires.append(key) or real_expire(key, seconds))
    for _ in range(3):
        ratelimit.rate_limited(scope="test-form", ident="10.0.0.4", limit=5)
    assert len(expires) == 1 and expires[0].startswith("rl:test-form:10.0.0.4:")
    assert 0 < limiter_keys.ttl(expires[0]) <= 65


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
    [query] = captured.captured_queries
    plans = []
    with connection.cursor() as cursor:
        # With the statistics of the tests before (or none), the planner may call the tenant's
        # FK index as cheap as the unique one; with this tenant's 50 rows counted, it is not.
        cursor.execute("ANALYZE scrm_customer")
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        finally:
            cursor.execute("RESET enable_seqscan")
    assert all("customer_unique_phone" in plan for plan in plans), plans


def test_a_duplicate_customer_inside_intakes_transaction_does_not_abort_it(tenant_a):
    # On PostgreSQL a failed INSERT aborts the transaction; ON CONFLICT DO NOTHING does not, so
    # customer_create needs no savepoint and the caller can still read the customer that won.
    with tenant_scope(tenant_a):
        CustomerFactory(tenant=tenant_a, name="老张", phone="13800138000")
        with transaction.atomic():
            with CaptureQueriesContext(connection) as captured, pytest.raises(ValidationError) as excinfo:
                customer_create(tenant=tenant_a, name="新张", phone="13800138000")
            assert "老张" in excinfo.value.message_dict["phone"][0]
            assert not [q for q in captured.captured_queries if "SAVEPOINT" in q["sql"]]
            assert Customer.objects.filter(phone="13800138000").get().name == "老张"
        assert Customer.objects.count() == 1


def test_the_broker_transport_keeps_one_client_for_publishing(celery_redis):
    # kombu's Redis channel built a new redis.Redis for every message; ours keeps one per pool.
    with celery_app.connection_for_write() as conn:
        assert isinstance(conn.transport, broker.Transport)
        channel = conn.default_channel
        producer = conn.Producer(channel)
        for n in range(3):
            producer.publish({"n": n}, routing_key="scrm-test-kept-client", serializer="json")
        kept = channel._kept_client
        assert kept is not None and kept.connection_pool is channel.pool
        producer.publish({"n": 3}, routing_key="scrm-test-kept-client", serializer="json")
        assert channel._kept_client is kept
        assert celery_redis.llen("scrm-test-kept-client") == 4
