"""The outbox with the broker down: tickets still come in and their notifications wait in the
outbox; once the broker is back, the sweep and a real Celery worker deliver every one of them,
exactly once, to the loopback stubs of WeCom and Aliyun SMS.

The broker here is a throwaway redis-server on a free port that this test starts itself (the
machine's Redis, which others use, is never stopped): "down" is nothing listening on that port,
"up" is the server started. The result backend and the WeCom token store stay on REDIS_URL."""

import contextlib
import math
import socket
import subprocess
import time
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from notifications.models import Notification, NotificationTemplate
from notifications.services import sweep
from notifications.tasks import notifications_sweep_task
from scrm import celery_app
from scrm.models import Role, StaffProfile
from scrm.tenancy import tenant_scope
from tests.conftest import make_member
from tests.factories import CustomerFactory, TenantFactory, published_template
from tests.integration.helpers import wait_for
from tests.notifications.stubs import AliyunSmsStub, WeComStub
from tickets.models import Ticket
from tickets.services import ticket_intake
from workflow.lifecycle import ticket_assign

TICKETS = 100


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker_use(url):
    """Point the Celery app's producers at `url`, dropping the pooled connections to the old one."""
    celery_app.conf.broker_url = url
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextlib.contextmanager
def redis_server(port):
    """A throwaway redis-server on 127.0.0.1:port, stopped (and its data gone) on exit."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        assert wait_for(lambda: _pings(client), timeout=10), "the throwaway redis-server did not start"
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def _pings(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def broker_port():
    port = free_port()
    broker_use(f"redis://127.0.0.1:{port}/0")
    yield port
    broker_use(settings.CELERY_BROKER_URL)
    sweep._broker_down_until = 0.0


def test_broker_down_loses_nothing_and_sends_nothing_twice(transactional_db, broker_port):
    corp_id, secret, agent_id = f"ww{uuid.uuid4().hex[:16]}", "wecom-secret-it", 1000002
    sms = {"provider": "aliyun", "access_key_id": "LTAI5tIntegration", "access_key_secret": "aliyun-it-secret",
           "sign_name": "味道江南"}
    tenant = TenantFactory(settings={"wecom": {"corp_id": corp_id, "agent_id": agent_id, "secret": secret},
                                     "sms": sms})
    agent = make_member(tenant, Role.AGENT, "it_agent")
    engineer = make_member(tenant, Role.ENGINEER, "it_engineer")
    with tenant_scope(tenant):
        StaffProfile.objects.filter(user=engineer).update(wecom_userid="it.engineer")
        template = published_template(tenant)
        NotificationTemplate.objects.create(tenant=tenant, event="ticket_created", channel="sms", language="zh-hans",
                                            body="工单{{ ticket_number }}已受理", sms_template_code="SMS_154950909")
        customers = [CustomerFactory(tenant=tenant, phone=f"139{i:08d}") for i in range(TICKETS)]

    wecom_stub = WeComStub(corp_id=corp_id, secret=secret, agent_id=agent_id)
    sms_stub = AliyunSmsStub(access_key_id=sms["access_key_id"], access_key_secret=sms["access_key_secret"])
    with wecom_stub, sms_stub, wecom_stub.installed(), sms_stub.installed():
        # Broker down: every ticket still comes in, with its outbox rows committed alongside.
        started = time.monotonic()
        with tenant_scope(tenant):
            for i, customer in enumerate(customers):
                ticket = ticket_intake(tenant=tenant, source="phone", template=template, actor=agent,
                                       data={"order_no": f"IT-{i}"}, customer=customer, title=f"冷柜不制冷 {i}")
                ticket_assign(ticket=ticket, assignee=engineer, actor=agent)
            down_seconds = time.monotonic() - started
            assert Ticket.objects.count() == TICKETS
            owed = Notification.objects.exclude(channel="inapp")
            assert owed.count() == 2 * TICKETS
            assert set(owed.values_list("status", flat=True)) == {"pending"}
        print(f"\n{TICKETS} intakes + assignments with the broker down: {down_seconds:.1f}s")
        assert wecom_stub.calls(WeComStub.SEND_PATH) == [] and sms_stub.sent == []

        # Broker back: the sweep hands the owed rows over and a real worker delivers them. The
        # sweep runs twice (beat and a worker's start-up both run it), so every row is queued twice,
        # in messages of up to NOTIFICATION_ENQUEUE_CHUNK rows (one tenant here).
        with redis_server(broker_port) as broker:
            assert notifications_sweep_task.apply().get() == 2 * TICKETS
            assert notifications_sweep_task.apply().get() == 2 * TICKETS
            chunk = getattr(settings, "NOTIFICATION_ENQUEUE_CHUNK", 20)
            assert broker.llen("celery") == 2 * math.ceil(2 * TICKETS / chunk)
            with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):

                def all_sent():
                    with tenant_scope(tenant):
                        return not Notification.objects.exclude(channel="inapp").exclude(status="sent").exists()

                assert wait_for(all_sent, timeout=120), "not every notification was delivered"
                # Let the duplicate messages drain too, so a second send would have shown.
                assert wait_for(lambda: broker.llen("celery") == 0, timeout=60)
                assert wait_for(lambda: len(wecom_stub.calls(WeComStub.SEND_PATH)) >= TICKETS, timeout=10)
                time.sleep(0.5)  # the last message taken may still be in the worker's hands

        with tenant_scope(tenant):
            rows = list(Notification.objects.exclude(channel="inapp"))
            numbers = set(Ticket.objects.values_list("number", flat=True))
        assert len(rows) == 2 * TICKETS
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}  # 0 lost, each sent by one attempt
        sent_phones = [p["PhoneNumbers"] for p in sms_stub.sent]
        assert sorted(sent_phones) == sorted(c.phone for c in customers)  # each customer once
        sends = wecom_stub.calls(WeComStub.SEND_PATH)
        titles = [call.json["textcard"]["title"] for call in sends]
        assert len(titles) == TICKETS
        assert {number for number in numbers if any(number in title for title in titles)} == numbers
