"""Ticket numbers on PostgreSQL under concurrent intake: unique and gap-free, and the same new
customer phone arriving twice at once links one customer."""

import threading

from django.db import connection

from scrm.models import Customer
from scrm.tenancy import tenant_scope
from tests.factories import TenantFactory, published_template
from tickets.models import Ticket
from tickets.services import ticket_intake


def run_parallel(count, work):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def wrapper(i):
        try:
            barrier.wait(timeout=10)
            results.append(work(i))
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_concurrent_intake_numbers_are_unique_and_gap_free(transactional_db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        template = published_template(tenant, prefix="WX")

    def work(i):
        with tenant_scope(tenant):
            return ticket_intake(tenant=tenant, source="api", template=template, data={"order_no": str(i)},
                                 contact={"phone": f"1391111{i:04d}"}).number

    numbers, errors = run_parallel(8, work)
    assert errors == []
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers) == list(range(1, 9))
    with tenant_scope(tenant):
        assert Ticket.objects.count() == 8


def test_same_new_phone_at_once_links_one_customer(transactional_db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        template = published_template(tenant)

    def work(i):
        with tenant_scope(tenant):
            return ticket_intake(tenant=tenant, source="web", template=template, data={"order_no": str(i)},
                                 contact={"name": f"王{i}", "phone": "13912345678"}).customer_id

    customer_ids, errors = run_parallel(6, work)
    assert errors == []
    assert len(set(customer_ids)) == 1
    with tenant_scope(tenant):
        assert Customer.objects.filter(phone="13912345678").count() == 1
        assert Ticket.objects.count() == 6


def test_an_intake_in_progress_does_not_hold_up_the_next_ones_number(transactional_db, monkeypatch):
    """The day's counter row is locked only while a number is taken: a second intake finishes
    while the first is still inside its transaction (its workflow starting), and they get
    consecutive numbers."""
    import tickets.services.core as core

    tenant = TenantFactory()
    with tenant_scope(tenant):
        template = published_template(tenant, prefix="WX")
    first_inside, second_done = threading.Event(), threading.Event()
    original = core.ticket_created

    def slow_for_the_first(*, ticket, actor):
        if ticket.data.get("order_no") == "first":
            first_inside.set()
            assert second_done.wait(timeout=20), "the second intake waited for the first one's transaction"
        original(ticket=ticket, actor=actor)

    monkeypatch.setattr(core, "ticket_created", slow_for_the_first)
    results, errors = {}, []

    def intake(order_no, phone):
        try:
            with tenant_scope(tenant):
                results[order_no] = ticket_intake(tenant=tenant, source="web", template=template,
                                                  data={"order_no": order_no}, contact={"phone": phone}).number
        except Exception as exc:  # asserted on below
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=intake, args=("first", "13911110001"))
    first.start()
    assert first_inside.wait(timeout=20)
    intake("second", "13911110002")
    second_done.set()
    first.join(timeout=30)
    assert errors == []
    assert sorted(int(n.rsplit("-", 1)[1]) for n in results.values()) == [1, 2]
    assert results["second"].endswith("-0002")
