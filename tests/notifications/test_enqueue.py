"""Handing outbox rows to Celery: a tenant's rows go in chunks, one message each (a lone row as
the single-row task), tenants never share a message, a row that fails does not stop the others
in its message, and a broker that is down leaves every row pending for the sweep."""

import math

import pytest
from kombu.exceptions import OperationalError

from notifications.models import Notification
from notifications.services import sweep
from notifications.tasks import notification_deliver_task, notifications_deliver_task
from scrm import celery_app
from scrm.models import Role
from scrm.tenancy import tenant_scope
from tests.conftest import make_member


def email_rows(tenant, count, *, start=0, params=None):
    """`count` pending email rows of `tenant` (Django's test mail backend is the real outbox)."""
    user = make_member(tenant, Role.AGENT, f"mail-{tenant.slug}-{start}")
    with tenant_scope(tenant):
        return [Notification.objects.create(
            tenant=tenant, event="ticket_created", channel="email", idempotency_key=f"enqueue-{n}",
            user=user, address=f"person{n}@example.com", subject=f"工单 {n}", body="冷柜不制冷",
            params={} if params is None else params,
        ) for n in range(start, start + count)]


@pytest.fixture
def published(monkeypatch):
    """Every publish of either delivery task, recorded, then really made (eager in tests)."""
    messages = []
    for task in (notification_deliver_task, notifications_deliver_task):
        def record(*args, _publish=task.apply_async, _name=task.name, **kwargs):
            messages.append((_name, kwargs["kwargs"]))
            return _publish(*args, **kwargs)
        monkeypatch.setattr(task, "apply_async", record)
    monkeypatch.setattr(sweep, "_broker_down_until", 0.0)
    return messages


def statuses(tenant, rows):
    with tenant_scope(tenant):
        found = dict(Notification.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", "status"))
    return [found[r.pk] for r in rows]


@pytest.mark.django_db
def test_a_tenants_rows_go_in_chunks_and_tenants_never_share_a_message(tenant_a, tenant_b, published, settings,
                                                                        mailoutbox):
    settings.NOTIFICATION_ENQUEUE_CHUNK = 3
    rows_a, rows_b = email_rows(tenant_a, 7), email_rows(tenant_b, 2, start=100)
    # Interleaved, as rows of several tenants come out of the sweep (oldest first).
    pairs = [(r.pk, r.tenant_id) for r in rows_a[:4]] + [(r.pk, r.tenant_id) for r in rows_b] + [
        (r.pk, r.tenant_id) for r in rows_a[4:]]
    sweep._enqueue(pairs)
    assert len(published) == math.ceil(7 / 3) + math.ceil(2 / 3)
    assert published == [
        ("notifications.deliver_many", {"notification_ids": [r.pk for r in rows_a[:3]], "tenant_id": tenant_a.pk}),
        ("notifications.deliver_many", {"notification_ids": [r.pk for r in rows_a[3:6]], "tenant_id": tenant_a.pk}),
        ("notifications.deliver", {"notification_id": rows_a[6].pk, "tenant_id": tenant_a.pk}),
        ("notifications.deliver_many", {"notification_ids": [r.pk for r in rows_b], "tenant_id": tenant_b.pk}),
    ]
    # Each message ran in its tenant's scope and delivered every row it carried.
    assert statuses(tenant_a, rows_a) == ["sent"] * 7 and statuses(tenant_b, rows_b) == ["sent"] * 2
    assert len(mailoutbox) == 9


@pytest.mark.django_db
def test_the_default_chunk_makes_one_message_per_twenty_rows(tenant_a, published, mailoutbox):
    rows = email_rows(tenant_a, 45)
    sweep._enqueue([(r.pk, r.tenant_id) for r in rows])
    assert [len(kwargs.get("notification_ids", [None])) for _name, kwargs in published] == [20, 20, 5]
    assert statuses(tenant_a, rows) == ["sent"] * 45


@pytest.mark.django_db
def test_a_row_that_fails_does_not_stop_the_others_in_its_message(tenant_a, published, mailoutbox, caplog):
    first = email_rows(tenant_a, 1)
    # Malformed stored params make the delivery raise outside the channel's own error handling.
    broken = email_rows(tenant_a, 1, start=1, params=["not", "a", "dict"])
    last = email_rows(tenant_a, 1, start=2)
    sweep._enqueue([(r.pk, tenant_a.pk) for r in first + broken + last])
    assert len(published) == 1
    assert statuses(tenant_a, first + last) == ["sent", "sent"]
    # The broken row keeps its lease: when it runs out, the sweep offers it again.
    assert statuses(tenant_a, broken) == ["sending"]
    assert f"notification {broken[0].pk} could not be delivered" in caplog.text


@pytest.mark.django_db
def test_a_broker_that_is_down_leaves_every_chunk_pending(tenant_a, tenant_b, monkeypatch, caplog, settings):
    settings.NOTIFICATION_ENQUEUE_CHUNK = 2
    rows = email_rows(tenant_a, 5) + email_rows(tenant_b, 3, start=100)
    calls = []

    def down(*args, **kwargs):
        calls.append(kwargs["kwargs"])
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(sweep, "_broker_down_until", 0.0)
    for task in (notification_deliver_task, notifications_deliver_task):
        monkeypatch.setattr(task, "apply_async", down)
    sweep._enqueue([(r.pk, r.tenant_id) for r in rows])
    assert len(calls) == 1  # one failed publish is enough to know
    assert statuses(tenant_a, rows[:5]) == ["pending"] * 5 and statuses(tenant_b, rows[5:]) == ["pending"] * 3
    assert "left for the sweep" in caplog.text
    assert sweep._broker_down_until > 0


def test_the_single_row_task_stays_registered_for_messages_already_queued():
    assert {"notifications.deliver", "notifications.deliver_many"} <= set(celery_app.tasks)
