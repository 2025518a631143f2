"""The intake service: one transaction that validates, classifies, links the customer, numbers
the ticket, writes its first timeline event and its notifications — or writes nothing."""

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django_scopes import ScopeError

from notifications.models import Notification
from scrm.models import Customer
from scrm.tenancy import tenant_scope
from tests.factories import CustomerFactory, RegionFactory, StoreFactory, published_template
from tickets.models import Source, Status, Ticket, TimelineEvent
from tickets.selectors import ticket_list
from tickets.services import classification_rule_save, ticket_intake, ticket_number_next

pytestmark = pytest.mark.django_db


def counts():
    return Ticket.objects.count(), TimelineEvent.objects.count(), Customer.objects.count(), Notification.objects.count()


@time_machine.travel("2026-11-23 10:00 +0800", tick=False)
def test_public_intake_creates_everything(scope_a):
    template = published_template(scope_a)
    ticket = ticket_intake(
        tenant=scope_a, source=Source.WEB, template=template, audience="public",
        data={"order_no": "A1001", "detail": "菜里有头发", "amount": "99.00"},
        contact={"name": "张三", "phone": "138 0013 8000"},
    )
    assert ticket.number == "TS-20261123-0001"
    assert ticket.status == Status.NEW
    assert ticket.data["order_no"] == "A1001"
    assert "amount" not in ticket.data or ticket.data["amount"] in (None, "")  # staff-only: ignored from the public
    assert ticket.customer.phone == "13800138000"
    assert ticket.customer.name == "张三"
    assert ticket.tracking_token.startswith(f"{scope_a.pk:x}-")
    events = list(ticket.events.all())
    assert [e.kind for e in events] == ["created"]
    assert events[0].is_public
    assert Notification.objects.filter(ticket=ticket, customer=ticket.customer).count() == 1


def test_second_ticket_same_phone_links_same_customer(scope_a):
    template = published_template(scope_a)
    first = ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public",
                          data={"order_no": "A1"}, contact={"name": "张三", "phone": "13800138000"})
    second = ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public",
                           data={"order_no": "A2"}, contact={"name": "张三丰", "phone": "13800138000"})
    assert first.customer_id == second.customer_id
    assert Customer.objects.count() == 1
    assert second.number.endswith("-0002")


@pytest.mark.parametrize("data, key", [
    ({}, "order_no"),                                  # missing required
    ({"order_no": "X" * 21}, "order_no"),               # too long
])
def test_bad_data_writes_nothing(scope_a, data, key):
    template = published_template(scope_a)
    before = counts()
    with pytest.raises(ValidationError) as excinfo:
        ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public", data=data,
                      contact={"name": "李四", "phone": "13900139000"})
    assert key in excinfo.value.message_dict
    assert counts() == before


def test_bad_phone_writes_nothing(scope_a):
    template = published_template(scope_a)
    before = counts()
    with pytest.raises(ValidationError):
        ticket_intake(tenant=scope_a, source=Source.WEB, template=template, audience="public",
                      data={"order_no": "A1"}, contact={"name": "李四", "phone": "12345"})
    assert counts() == before


def test_unpublished_or_other_tenant_template_refused(scope_a, tenant_b):
    from scrm.tenancy import tenant_scope

    with tenant_scope(tenant_b):
        other = published_template(tenant_b)
    with pytest.raises(ValidationError) as excinfo:
        ticket_intake(tenant=scope_a, source=Source.API, template=other, data={"order_no": "1"})
    assert "template" in excinfo.value.message_dict
    assert Ticket.objects.count() == 0


def test_other_tenant_customer_refused(scope_a, tenant_b):
    from scrm.tenancy import tenant_scope

    template = published_template(scope_a)
    with tenant_scope(tenant_b):
        stranger = CustomerFactory(tenant=tenant_b)
    with pytest.raises(ValidationError) as excinfo:
        ticket_intake(tenant=scope_a, source=Source.API, template=template, data={"order_no": "1"}, customer=stranger)
    assert "customer" in excinfo.value.message_dict
    assert Ticket.objects.count() == 0


def test_classification_sets_priority_tags_and_template(scope_a):
    default = published_template(scope_a)
    refund = published_template(scope_a, name="退费申请", slug="refund", prefix="TF", category_code="refund",
                                category_name="退费")
    classification_rule_save(tenant=scope_a, name="退费加急", keywords="退费, 退款", set_template=refund,
                             set_priority="urgent", tag_names=["退费"])
    ticket = ticket_intake(tenant=scope_a, source=Source.API, template=None, title="我要退款",
                           data={"order_no": "9"}, contact={"phone": "13700137000"})
    assert ticket.template == refund
    assert ticket.priority == "urgent"
    assert [t.name for t in ticket.tags.all()] == ["退费"]
    assert "退费加急" in ticket.events.get().text
    plain = ticket_intake(tenant=scope_a, source=Source.API, template=default, title="味道不错",
                          data={"order_no": "10"}, contact={"phone": "13700137001"})
    assert plain.priority == "normal"


def test_store_and_region_come_from_customer(scope_a):
    region = RegionFactory(tenant=scope_a)
    store = StoreFactory(tenant=scope_a, region=region)
    customer = CustomerFactory(tenant=scope_a, store=store, region=region)
    ticket = ticket_intake(tenant=scope_a, source=Source.PHONE, template=published_template(scope_a),
                           data={"order_no": "1"}, customer=customer)
    assert (ticket.store, ticket.region) == (store, region)


def test_numbers_are_per_day_and_gap_free_after_rollback(scope_a):
    with time_machine.travel("2026-11-23 09:00 +0800", tick=False):
        assert ticket_number_next(tenant=scope_a, prefix="WX") == "WX-20261123-0001"
        template = published_template(scope_a, prefix="WX")
        with pytest.raises(ValidationError):
            ticket_intake(tenant=scope_a, source=Source.WEB, template=template, data={}, contact={"phone": "1"})
        ok = ticket_intake(tenant=scope_a, source=Source.WEB, template=template, data={"order_no": "1"},
                           contact={"phone": "13600136000"})
        assert ok.number == "WX-20261123-0002"
    with time_machine.travel("2026-11-24 09:00 +0800", tick=False):
        assert ticket_number_next(tenant=scope_a, prefix="WX") == "WX-20261124-0001"


def test_numbers_are_refused_outside_the_tenants_scope(tenant_a, tenant_b):
    with tenant_scope(tenant_a):
        assert ticket_number_next(tenant=tenant_a, prefix="WX").endswith("-0001")
    with pytest.raises(ScopeError):
        ticket_number_next(tenant=tenant_a, prefix="WX")
    with tenant_scope(tenant_b), pytest.raises(ValueError, match="scope"):
        ticket_number_next(tenant=tenant_a, prefix="WX")
    with tenant_scope(tenant_a):  # neither refusal used a number
        assert ticket_number_next(tenant=tenant_a, prefix="WX").endswith("-0002")


def test_list_query_count_is_constant(scope_a, agent_a, django_assert_max_num_queries):
    template = published_template(scope_a)
    for i in range(30):
        ticket_intake(tenant=scope_a, source=Source.WEB, template=template, data={"order_no": str(i)},
                      contact={"phone": f"1380000{i:04d}"})
    qs = ticket_list(user=agent_a)
    with django_assert_max_num_queries(2):
        rows = list(qs[:25])
        assert len(rows) == 25
        assert all(r.customer.name for r in rows)


def test_timeline_is_append_only(scope_a):
    ticket = ticket_intake(tenant=scope_a, source=Source.WEB, template=published_template(scope_a),
                           data={"order_no": "1"}, contact={"phone": "13500135000"})
    event = ticket.events.get()
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        TimelineEvent.objects.filter(ticket=ticket).update(message="x")
    with pytest.raises(TypeError):
        TimelineEvent.objects.filter(ticket=ticket).delete()
    assert TimelineEvent.objects.get(pk=event.pk).message == event.message


def _number_after_a_refused_write(tenant, monkeypatch):
    """Intake once with a hook that refuses (asserting nothing was written), then once more:
    the second ticket's number."""
    template = published_template(tenant, prefix="WX")

    def refuse(**kwargs):
        raise ValidationError("a hook refused")

    monkeypatch.setattr("tickets.services.core.ticket_created", refuse)
    with pytest.raises(ValidationError, match="refused"):
        ticket_intake(tenant=tenant, source=Source.WEB, template=template, data={"order_no": "1"},
                      contact={"phone": "13600136000"})
    assert counts() == (0, 0, 0, 0)
    monkeypatch.undo()
    return ticket_intake(tenant=tenant, source=Source.WEB, template=template, data={"order_no": "1"},
                         contact={"phone": "13600136000"}).number


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_number_is_taken_first_and_a_failed_write_leaves_a_gap(tenant_a, monkeypatch):
    """A web form or the API (no transaction of the caller's) takes the number in a transaction
    of its own, so the day's counter row is not locked while the ticket and its workflow are
    written; the ticket's write failing after that costs the number, and writes nothing else."""
    with tenant_scope(tenant_a), time_machine.travel("2026-11-23 09:00 +0800", tick=False):
        # -0001 went with the refused write
        assert _number_after_a_refused_write(tenant_a, monkeypatch) == "WX-20261123-0002"


def test_inside_a_callers_transaction_a_failed_write_leaves_no_gap(scope_a, monkeypatch):
    with time_machine.travel("2026-11-23 09:00 +0800", tick=False):
        assert _number_after_a_refused_write(scope_a, monkeypatch) == "WX-20261123-0001"
