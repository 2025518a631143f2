"""The parts-used seam settlement reads (`tickets.extensions.parts_used`): consumed net of returns,
priced from the catalogue, one query for many tickets, nothing across tenants."""

from decimal import Decimal

import pytest

from scrm.tenancy import tenant_scope
from spareparts import services
from tickets.extensions import PartUsed, parts_used
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db


def ticket_at(scope, template, store):
    return ticket_intake(tenant=scope, source="phone", template=template, data={}, store=store)


def test_consumed_net_of_returns_at_the_catalogue_price(scope_a, lib, repair_template, django_assert_num_queries):
    for part in (lib["compressor"], lib["filter"]):
        services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=10, actor=None)
    first, second, untouched = (ticket_at(scope_a, repair_template, lib["store"]) for _ in range(3))
    services.stock_reserve(ticket=first, part=lib["compressor"], quantity=1, actor=None)
    services.stock_reserve(ticket=first, part=lib["filter"], quantity=3, actor=None)
    services.reservations_consume(ticket=first, actor=None)
    services.stock_return(ticket=first, part=lib["filter"], warehouse=lib["hangzhou"], quantity=1, actor=None)
    services.stock_reserve(ticket=second, part=lib["filter"], quantity=2, actor=None)
    services.reservations_consume(ticket=second, actor=None)
    services.stock_return(ticket=second, part=lib["filter"], warehouse=lib["hangzhou"], quantity=2, actor=None)
    # Reserved but not consumed: not used.
    services.stock_reserve(ticket=untouched, part=lib["filter"], quantity=1, actor=None)

    with django_assert_num_queries(1):
        found = parts_used(ticket_ids=[first.pk, second.pk, untouched.pk])
    assert found[first.pk] == [
        PartUsed(sku="LW-FILTER", name="空调滤网", quantity=Decimal(2), unit_price=Decimal("35.00")),
        PartUsed(sku="YS-COMP-15", name="压缩机 1.5匹", quantity=Decimal(1), unit_price=Decimal("980.00")),
    ]
    assert found[second.pk] == [] and found[untouched.pk] == []


def test_the_price_is_todays_catalogue_price(scope_a, lib, repair_template):
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["filter"], quantity=1, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=lib["filter"], quantity=1, actor=None)
    services.reservations_consume(ticket=ticket, actor=None)
    lib["filter"].price_fen = 4199
    lib["filter"].save(update_fields=["price_fen"])
    assert parts_used(ticket_ids=[ticket.pk])[ticket.pk][0].unit_price == Decimal("41.99")


@pytest.mark.parametrize("ids", [[], ["1"], [None], [True], [-1], [10**12]])
def test_bad_ids_give_nothing(scope_a, ids, django_assert_max_num_queries):
    from spareparts.selectors import parts_used as provider

    with django_assert_max_num_queries(1):
        assert provider(ticket_ids=ids) == {}


def test_another_tenants_ticket_gives_nothing(scope_a, lib, repair_template, tenant_b):
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["filter"], quantity=1, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=lib["filter"], quantity=1, actor=None)
    services.reservations_consume(ticket=ticket, actor=None)
    with tenant_scope(tenant_b):
        assert parts_used(ticket_ids=[ticket.pk]) == {ticket.pk: []}
