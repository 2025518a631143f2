"""The bell in the base layout shows the signed-in person's unread in-app notifications
(notifications.context_processors.unread); pages without a signed-in person have no bell."""

import pytest
from django.urls import reverse

from notifications.models import Notification
from notifications.services import event_emit, notifications_mark_read
from scrm.tenancy import tenant_scope


@pytest.mark.django_db
def test_the_bell_counts_what_the_person_has_not_read(tenant_a, agent_a, engineer_a, client_for):
    with tenant_scope(tenant_a):
        for i in range(2):
            event_emit(tenant=tenant_a, event="parts_low_stock", users=[agent_a], occurrence=str(i),
                       context={"part_name": "压缩机", "stock": "2"})
        event_emit(tenant=tenant_a, event="parts_low_stock", users=[engineer_a], occurrence="x")
        assert Notification.objects.filter(user=agent_a, channel="inapp", read_at=None).count() == 2

    html = client_for(agent_a).get(reverse("home")).content.decode()
    assert 'data-testid="unread-count">2</span>' in html

    with tenant_scope(tenant_a):
        notifications_mark_read(user=agent_a)
    html = client_for(agent_a).get(reverse("home")).content.decode()
    assert 'data-testid="bell"' in html and 'data-testid="unread-count"' not in html


@pytest.mark.django_db
def test_a_page_without_a_signed_in_person_has_no_bell(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert 'data-testid="bell"' not in response.content.decode()
