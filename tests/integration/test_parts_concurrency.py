"""Spare parts on PostgreSQL under contention: 200 threads reserving the last 50 units of one part —
exactly 50 succeed, the rest get the out-of-stock message, and levels equal the ledger."""

import threading

from django.core.exceptions import ValidationError
from django.db import connection

from scrm.tenancy import tenant_scope
from spareparts import selectors, services
from spareparts.models import Movement, Stock, WarehouseKind
from tests.factories import RegionFactory, StoreFactory, TenantFactory, published_template
from tickets.services import ticket_intake

THREADS = 200
# PostgreSQL's connection limit is shared with the rest of the machine: at most this many threads
# hold a connection at once; all 200 still race for the same row.
CONNECTIONS = 24


def test_concurrent_reservations_never_oversell(transactional_db):
    tenant = TenantFactory()
    with tenant_scope(tenant):
        template = published_template(tenant, prefix="WX")
        region = RegionFactory(tenant=tenant)
        store = StoreFactory(tenant=tenant, region=region)
        warehouse = services.warehouse_create(tenant=tenant, code="c", name="上海中心仓", kind=WarehouseKind.CENTRAL,
                                              region=region, latitude=store.latitude, longitude=store.longitude)
        part = services.part_create(tenant=tenant, sku="YS-COMP-15", name="压缩机", price_fen=98000)
        services.stock_receive(warehouse=warehouse, part=part, quantity=50, actor=None)
        tickets = [ticket_intake(tenant=tenant, source="api", template=template, data={"order_no": str(i)},
                                 store=store) for i in range(10)]

    gate = threading.Semaphore(CONNECTIONS)
    barrier = threading.Barrier(THREADS)
    ok, refused, errors = [], [], []

    def work(i):
        try:
            barrier.wait(timeout=30)
            with gate:
                try:
                    with tenant_scope(tenant):
                        services.stock_reserve(ticket=tickets[i % 10], part=part, quantity=1, actor=None)
                    ok.append(i)
                except ValidationError as exc:
                    refused.append(exc.messages[0])
                finally:
                    connection.close()
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(ok) == 50 and len(refused) == THREADS - 50
    assert all("YS-COMP-15" in m or "压缩机" in m for m in refused)
    with tenant_scope(tenant):
        stock = Stock.objects.get(warehouse=warehouse, part=part)
        assert (stock.on_hand, stock.reserved) == (50, 50)
        assert Movement.objects.filter(kind="reserve").count() == 50
        assert sum(h.held for t in tickets for h in selectors.ticket_reservations(ticket=t)) == 50
        assert selectors.ledger_mismatches() == []
