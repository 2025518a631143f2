"""Two workers racing for one outbox row on PostgreSQL, where their transactions and row claims
are real: the row is sent once. (SQLite's in-memory test database cannot hold two connections'
transactions at once: "database table is locked".)"""

import threading

import pytest
from django.db import connection

from notifications.channels.wecom import token_storage
from notifications.models import Notification
from notifications.services import notification_deliver
from scrm import celery_app
from scrm.models import StaffProfile
from scrm.tenancy import tenant_scope
from tests.factories import published_template
from tests.notifications.conftest import AGENT_ID, CHANNEL_SETTINGS, CORP_ID, WECOM_SECRET
from tests.notifications.stubs import WeComStub
from tickets.services import ticket_intake
from workflow.lifecycle import ticket_assign

WECOM_SEND = WeComStub.SEND_PATH


@pytest.fixture
def wecom_stub():
    token_storage().clear()
    with WeComStub(corp_id=CORP_ID, secret=WECOM_SECRET, agent_id=AGENT_ID) as stub:
        yield stub
    token_storage().clear()


@pytest.fixture
def no_queued_deliveries():
    # The commits below publish their deliveries to Redis and no worker runs here: leave none
    # behind for the next test's worker.
    yield
    celery_app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_row_send_it_once(tenant_a, agent_a, engineer_a, wecom_stub,
                                                     no_queued_deliveries):
    tenant_a.settings = dict(CHANNEL_SETTINGS)
    tenant_a.save()
    with tenant_scope(tenant_a):
        StaffProfile.objects.filter(user=engineer_a).update(wecom_userid="zhang.gong")
        template = published_template(tenant_a)
        ticket = ticket_intake(tenant=tenant_a, source="phone", template=template, data={"order_no": "WD-1024"},
                               actor=agent_a, title="冷柜不制冷")
        ticket_assign(ticket=ticket, assignee=engineer_a, actor=agent_a)
        [row] = Notification.objects.filter(ticket=ticket, channel="wecom")
    barrier = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            with tenant_scope(tenant_a):
                barrier.wait(timeout=10)
                outcomes.append(notification_deliver(notification_id=row.pk, session=wecom_stub.session()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes, key=str) == [None, "sent"]
    assert len(wecom_stub.calls(WECOM_SEND)) == 1
    with tenant_scope(tenant_a):
        assert Notification.objects.get(pk=row.pk).status == "sent"
