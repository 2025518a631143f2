"""seed_demo: two realistic tenants, idempotent, and every printed login works."""

import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from scrm.models import Customer, Membership, Opportunity, Region, Role, Store, Tenant
from scrm.tenancy import tenant_scope


def counts():
    result = {}
    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            result[tenant.slug] = tuple(m.objects.count() for m in (Region, Store, Membership, Customer, Opportunity))
    return result


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_its_logins_work():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = counts()
    assert set(first) == {"weidao", "meijia"}
    regions, stores, _members, customers, opportunities = first["weidao"]
    assert regions == 5
    assert 28 <= stores <= 35
    assert customers >= 100
    assert opportunities >= 30
    with tenant_scope(Tenant.objects.get(slug="weidao")):
        assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
        assert Customer.objects.filter(tier__in=["vip", "svip"]).exists()

    sla_states_check()
    history_check()
    parts_check()

    call_command("seed_demo", "--quiet", stdout=StringIO())
    assert counts() == first

    printed = out.getvalue()
    # The sign-in page and every public form, at the configured site address.
    assert f"{settings.SITE_URL}/login/" in printed
    assert f"{settings.SITE_URL}/s/weidao/canyin_tousu/" in printed
    usernames = sorted(set(re.findall(r"\b((?:wd|mj)_[a-z0-9_]+|root)\b", printed)))
    assert "wd_admin" in usernames and "mj_agent1" in usernames and "root" in usernames
    for username in usernames:
        client = Client()
        assert client.login(username=username, password="demo12345"), username
        assert client.get("/").status_code == 200, username


def sla_states_check():
    """Both tenants show an SLA on track and one breached and escalated over WeCom and SMS."""
    from django.utils import timezone

    from notifications.models import Notification
    from workflow.models import TicketSla
    from workflow.sla_ticket import sla_status

    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            states = {sla_status(row, timezone.now()).state for row in TicketSla.objects.all()}
            assert {"on_track", "breached"} <= states, (tenant.slug, states)
            channels = set(Notification.objects.filter(event="ticket_escalated").values_list("channel", flat=True))
            assert {"wecom", "sms"} <= channels, (tenant.slug, channels)


def history_check():
    """The demo's history reads like real work: no ticket resolved or closed before it was filed
    (the dashboards' durations would go negative)."""
    from django.db.models import F, Q

    from tickets.models import Ticket

    for tenant in Tenant.objects.all():
        with tenant_scope(tenant):
            backwards = Ticket.objects.filter(Q(closed_at__lt=F("created_at")) | Q(resolved_at__lt=F("created_at")))
            assert not backwards.exists(), (tenant.slug, list(backwards.values_list("number", flat=True)[:5]))


def parts_check():
    """The appliance tenant's parts library has a consumption history in the past (none dated after
    now), its ledger agrees with the levels, and the reorder suggestions have something to say."""
    from django.utils import timezone

    from spareparts.models import Movement, MovementKind
    from spareparts.selectors import reorder_suggestions

    with tenant_scope(Tenant.objects.get(slug="meijia")):
        consumed = Movement.objects.filter(kind=MovementKind.CONSUME).exclude(ticket=None)
        assert consumed.count() >= 20
        assert not Movement.objects.filter(created_at__gt=timezone.now()).exists()
        suggestions = reorder_suggestions()
        assert any(s.recent > 0 for s in suggestions) and any(s.suggested > 0 for s in suggestions)
    out = StringIO()
    call_command("parts_ledger_verify", stdout=out)
