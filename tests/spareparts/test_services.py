"""The ledger services: every change is one movement under the row lock, levels equal the ledger,
the database refuses overselling, and bad input changes nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from notifications.models import Notification
from spareparts import selectors, services
from spareparts.models import Movement, PurchaseRequest, PurchaseStatus, Stock, TransferStatus
from spareparts.nearest import Place, distance_km, places_rank
from tickets.services import ticket_intake

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


def level(warehouse, part):
    s = Stock.objects.filter(warehouse=warehouse, part=part).first()
    return (s.on_hand, s.reserved) if s else (0, 0)


def ticket_at(scope, template, store, parts=None):
    data = {"parts": parts} if parts else {}
    return ticket_intake(tenant=scope, source="phone", template=template, data=data, store=store)


def warm_caches(lib):
    """What a running process has loaded already: the warehouses and stores of the tenant."""
    from scrm.selectors import store_cached

    selectors.warehouse_depots()
    store_cached(lib["store"].pk)


def test_receive_adjust_and_the_ledger_add_up(scope_a, lib, staff):
    c, part = lib["central"], lib["compressor"]
    services.stock_receive(warehouse=c, part=part, quantity=10, actor=staff["manager"], reason="入库单 RK-001")
    services.stock_adjust(warehouse=c, part=part, delta=-2, reason="运输损坏", actor=staff["manager"])
    assert level(c, part) == (8, 0)
    kinds = list(Movement.objects.order_by("pk").values_list("kind", "on_hand_delta", "user__username"))
    assert kinds == [("receive", 10, "sp_manager"), ("adjust", -2, "sp_manager")]
    assert selectors.ledger_mismatches() == []


def test_the_database_refuses_negative_stock_and_over_reservation(scope_a, lib, staff):
    services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=3, actor=None)
    stock = Stock.objects.get(warehouse=lib["central"], part=lib["filter"])
    for on_hand, reserved in ((-1, 0), (3, 4), (3, -1)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Stock.objects.filter(pk=stock.pk).update(on_hand=on_hand, reserved=reserved)
    assert level(lib["central"], lib["filter"]) == (3, 0)


def test_movements_are_append_only(scope_a, lib):
    m = services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=1, actor=None)
    with pytest.raises(ValueError):
        m.save()
    with pytest.raises(ValueError):
        m.delete()


@pytest.mark.parametrize("quantity", [0, -3, "abc", "", None, True, 10**9, 2.5])
def test_bad_quantities_write_nothing(scope_a, lib, quantity):
    with pytest.raises(ValidationError) as info:
        services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=quantity, actor=None)
    assert "quantity" in info.value.message_dict
    assert Movement.objects.count() == 0 and Stock.objects.count() == 0


def test_adjust_needs_a_reason_and_cannot_take_reserved_units(scope_a, lib, repair_template):
    c, part = lib["hangzhou"], lib["compressor"]
    services.stock_receive(warehouse=c, part=part, quantity=2, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    before = Movement.objects.count()
    with pytest.raises(ValidationError, match="Say why"):
        services.stock_adjust(warehouse=c, part=part, delta=-1, reason="  ", actor=None)
    with pytest.raises(ValidationError, match="Only 1 free"):
        services.stock_adjust(warehouse=c, part=part, delta=-2, reason="盘亏", actor=None)
    assert Movement.objects.count() == before and level(c, part) == (2, 1)


def test_reserve_takes_the_nearest_warehouse_with_stock(scope_a, lib, repair_template):
    part = lib["compressor"]
    services.stock_receive(warehouse=lib["central"], part=part, quantity=5, actor=None)
    services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=1, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    first = services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    assert first.warehouse == lib["hangzhou"] and first.distance_km < 5
    # Hangzhou is now empty: the next unit comes from Shanghai, ~160 km away.
    second = services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    assert second.warehouse == lib["central"] and 140 < second.distance_km < 200
    # The panel's rows add the lines up; the distance keeps its one decimal place (SQLite's MAX()
    # hands back a float).
    holds = selectors.ticket_reservations(ticket=ticket)
    assert [(h.warehouse_id, h.held, h.distance_km) for h in holds] == [
        (lib["hangzhou"].pk, 1, first.distance_km), (lib["central"].pk, 1, second.distance_km)]
    assert all(h.distance_km.as_tuple().exponent == -1 for h in holds)
    assert level(lib["hangzhou"], part) == (1, 1) and level(lib["central"], part) == (5, 1)
    assert selectors.ledger_mismatches() == []


def test_reserving_more_than_available_names_the_nearest_with_stock(scope_a, lib, repair_template):
    part = lib["compressor"]
    services.stock_receive(warehouse=lib["central"], part=part, quantity=2, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    before = Movement.objects.count()
    with translation_zh(), pytest.raises(ValidationError) as info:
        services.stock_reserve(ticket=ticket, part=part, quantity=3, actor=None)
    message = info.value.messages[0]
    assert "杭州区域仓" in message and "上海中心仓" in message and "缺货" in message
    assert Movement.objects.count() == before and level(lib["central"], part) == (2, 0)


def translation_zh():
    from django.utils import translation

    return translation.override("zh-hans")


def test_another_tenants_part_or_code_is_refused(scope_a, lib, repair_template, tenant_b):
    from scrm.tenancy import tenant_scope
    from tests.factories import TenantFactory  # noqa: F401

    with tenant_scope(tenant_b):
        other = services.part_create(tenant=tenant_b, sku="B-1", barcode="999", name="别家零件")
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    with pytest.raises(ValidationError):
        services.stock_receive(warehouse=lib["central"], part=other, quantity=1, actor=None)
    with pytest.raises(ValidationError, match="No part has this barcode"):
        services.part_scan_consume(ticket=ticket, code="999", actor=None)
    assert Movement.objects.count() == 0


def test_scan_consumes_the_reservation_then_refuses_what_was_not_reserved(scope_a, lib, staff, repair_template):
    part = lib["compressor"]
    services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=3, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    used = services.part_scan_consume(ticket=ticket, code="6901234567001", actor=staff["engineer"])
    assert (used.kind, used.quantity, used.on_hand_delta, used.reserved_delta) == ("consume", 1, -1, -1)
    [hold] = selectors.ticket_reservations(ticket=ticket)
    assert (hold.status, hold.consumed, hold.held, hold.warehouse_id) == ("consumed", 1, 0, lib["hangzhou"].pk)
    assert level(lib["hangzhou"], part) == (2, 0)
    before = Movement.objects.count()
    for code in ("6901234567001", "LW-FILTER", "nope", "", "x" * 500):
        with pytest.raises(ValidationError):
            services.part_scan_consume(ticket=ticket, code=code, actor=staff["engineer"])
    assert Movement.objects.count() == before
    # The engineer's van stock can be used without a reservation.
    services.stock_receive(warehouse=lib["van"], part=lib["filter"], quantity=2, actor=None)
    services.part_scan_consume(ticket=ticket, code="LW-FILTER", actor=staff["engineer"])
    assert level(lib["van"], lib["filter"]) == (1, 0)
    priced = selectors.ticket_parts_priced(ticket=ticket)
    assert [(p.sku, p.quantity, p.amount_fen) for p in priced] == [("LW-FILTER", 1, 3500), ("YS-COMP-15", 1, 98000)]
    assert selectors.ledger_mismatches() == []


def test_release_and_return(scope_a, lib, repair_template):
    part = lib["filter"]
    services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=4, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=part, quantity=3, actor=None)
    assert services.reservations_release(ticket=ticket, actor=None) == 3
    assert level(lib["hangzhou"], part) == (4, 0)
    services.stock_reserve(ticket=ticket, part=part, quantity=2, actor=None)
    assert services.reservations_consume(ticket=ticket, actor=None) == 2
    with pytest.raises(ValidationError, match="Only 2"):
        services.stock_return(ticket=ticket, part=part, warehouse=lib["hangzhou"], quantity=3, actor=None)
    services.stock_return(ticket=ticket, part=part, warehouse=lib["hangzhou"], quantity=1, actor=None)
    assert level(lib["hangzhou"], part) == (3, 0)
    assert [p.quantity for p in selectors.ticket_parts_priced(ticket=ticket)] == [1]
    assert selectors.ledger_mismatches() == []


def test_transfer_is_in_transit_until_received(scope_a, lib, staff):
    part = lib["compressor"]
    services.stock_receive(warehouse=lib["central"], part=part, quantity=5, actor=None)
    t = services.transfer_create(part=part, source=lib["central"], destination=lib["hangzhou"], quantity=2,
                                 actor=staff["manager"])
    assert t.status == TransferStatus.IN_TRANSIT
    assert level(lib["central"], part) == (3, 0) and level(lib["hangzhou"], part) == (0, 0)
    services.transfer_receive(transfer=t, actor=staff["manager"])
    assert level(lib["hangzhou"], part) == (2, 0)
    with pytest.raises(ValidationError):
        services.transfer_receive(transfer=t, actor=staff["manager"])
    with pytest.raises(ValidationError, match="Only 3 free"):
        services.transfer_create(part=part, source=lib["central"], destination=lib["hangzhou"], quantity=4,
                                 actor=None)
    with pytest.raises(ValidationError):
        services.transfer_create(part=part, source=lib["central"], destination=lib["central"], quantity=1,
                                 actor=None)
    assert selectors.ledger_mismatches() == []


def test_reorder_alert_once_per_crossing_with_one_open_request(scope_a, lib, staff, repair_template):
    part, wh = lib["compressor"], lib["hangzhou"]
    wh.keeper = staff["manager"]
    wh.save()
    services.stock_receive(warehouse=wh, part=part, quantity=3, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)  # available 2: at the point
    assert PurchaseRequest.objects.count() == 0
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)  # available 1: below
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)  # still below: no second alert
    assert PurchaseRequest.objects.filter(status=PurchaseStatus.DRAFT).count() == 1
    alerts = Notification.objects.filter(event="parts_low_stock", channel="inapp")
    assert alerts.filter(user=staff["manager"]).count() == 1
    services.stock_receive(warehouse=wh, part=part, quantity=5, actor=None)  # closes the request
    assert PurchaseRequest.objects.filter(status=PurchaseStatus.DRAFT).count() == 0
    services.stock_reserve(ticket=ticket, part=part, quantity=4, actor=None)  # below again: new crossing
    assert PurchaseRequest.objects.filter(status=PurchaseStatus.DRAFT).count() == 1
    assert alerts.filter(user=staff["manager"]).count() == 2


def test_ledger_verify_command(scope_a, lib, capsys):
    services.stock_receive(warehouse=lib["central"], part=lib["filter"], quantity=2, actor=None)
    call_command("parts_ledger_verify")
    assert "weidao: OK" in capsys.readouterr().out
    Stock.objects.filter(warehouse=lib["central"]).update(on_hand=5)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("parts_ledger_verify", "--tenant", "weidao")


def test_nearest_ranks_by_distance_then_region():
    places = [Place(1, "far", 31.23, 121.47, available=9), Place(2, "near", 30.27, 120.15, available=1),
              Place(3, "nowhere", None, None, region_id=7, available=5), Place(4, "nowhere2", None, None)]
    assert [r.place.name for r in places_rank(places, origin=(30.26, 120.13))] == ["near", "far", "nowhere",
                                                                                    "nowhere2"]
    assert places_rank(places, origin=None, region_id=7)[0].place.name == "nowhere"
    assert 150 < distance_km(31.23, 121.47, 30.27, 120.15) < 170


def test_suggestions_take_the_larger_of_recent_and_season():
    assert selectors.suggestion_for(recent=9, days=90, last_year=20, on_hand=5) == (15, "season")
    assert selectors.suggestion_for(recent=90, days=90, last_year=2, on_hand=40) == (0, "recent")


def test_a_first_delivery_below_the_point_leaves_one_open_request(scope_a, lib):
    part, wh = lib["compressor"], lib["central"]  # reorder point 2
    services.stock_receive(warehouse=wh, part=part, quantity=1, actor=None)
    assert list(PurchaseRequest.objects.values_list("status", "quantity")) == [("draft", 5)]
    services.stock_receive(warehouse=wh, part=part, quantity=5, actor=None)
    assert list(PurchaseRequest.objects.values_list("status", flat=True)) == ["received"]


def test_a_reservation_is_two_reads_one_update_and_one_insert(scope_a, lib, repair_template,
                                                             django_assert_num_queries):
    part = lib["filter"]  # no reorder point
    services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=10, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    warm_caches(lib)
    # The tenant's config stamp (the store and warehouses come from the cache), the part's stock
    # rows (no join), the conditional UPDATE of the stock row, the reserve line (which is the
    # reservation): no lock read, no savepoint.
    with django_assert_num_queries(4) as captured:
        line = services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    sql = [q["sql"] for q in captured.captured_queries]
    assert [q.split()[0] for q in sql] == ["SELECT", "SELECT", "UPDATE", "INSERT"]
    assert "config_stamp" in sql[0] and "JOIN" not in sql[1]
    assert (line.kind, line.reserved_delta, line.warehouse_id) == ("reserve", 1, lib["hangzhou"].pk)
    assert level(lib["hangzhou"], part) == (10, 1) and selectors.ledger_mismatches() == []
    assert "RETURNING" in sql[2] and '"on_hand"' in sql[2]  # the level comes back with the UPDATE
    # A part with a reorder point: the same four while the level stays above the point (the UPDATE
    # returns the level, so only a crossing costs a statement more).
    services.stock_receive(warehouse=lib["hangzhou"], part=lib["compressor"], quantity=10, actor=None)
    with django_assert_num_queries(4):
        services.stock_reserve(ticket=ticket, part=lib["compressor"], quantity=1, actor=None)


def test_a_whole_bill_of_materials_is_one_transaction_with_bulk_inserts(scope_a, lib, repair_template,
                                                                        django_assert_max_num_queries):
    from spareparts.models import BillOfMaterials

    for part in (lib["compressor"], lib["filter"]):
        services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=10, actor=None)
        BillOfMaterials.objects.create(tenant=scope_a, template=repair_template, part=part, quantity=2)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    warm_caches(lib)
    with django_assert_max_num_queries(13) as captured:  # incl. one config stamp read for all lines
        made = services.ticket_parts_reserve(ticket=ticket, actor=None)
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(made) == 2 and len(inserts) == 1  # the two reserve lines (the reservations) together
    assert [r.held for r in selectors.ticket_reservations(ticket=ticket)] == [2, 2]
    assert level(lib["hangzhou"], lib["filter"]) == (10, 2) and selectors.ledger_mismatches() == []


def test_one_line_out_of_stock_rolls_the_whole_bill_back(scope_a, lib, repair_template):
    from spareparts.models import BillOfMaterials

    services.stock_receive(warehouse=lib["hangzhou"], part=lib["filter"], quantity=10, actor=None)
    for part in (lib["compressor"], lib["filter"]):
        BillOfMaterials.objects.create(tenant=scope_a, template=repair_template, part=part, quantity=2)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    before = Movement.objects.count()
    with pytest.raises(ValidationError, match=r"YS-COMP-15|压缩机"):
        services.ticket_parts_reserve(ticket=ticket, actor=None)
    assert Movement.objects.count() == before and selectors.ticket_reservations(ticket=ticket) == []
    assert level(lib["hangzhou"], lib["filter"]) == (10, 0)


def test_reserving_down_to_the_reorder_point_alerts_once(scope_a, lib, staff, repair_template):
    from spareparts.models import PurchaseRequest, Stock

    part = lib["compressor"]  # reorder point 2
    services.stock_receive(warehouse=lib["hangzhou"], part=part, quantity=3, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    assert not PurchaseRequest.objects.exists()
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)  # 1 free < 2
    assert PurchaseRequest.objects.filter(part=part, warehouse=lib["hangzhou"], status="draft").count() == 1
    assert Stock.objects.get(warehouse=lib["hangzhou"], part=part).low_alerted
    services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None)
    assert PurchaseRequest.objects.count() == 1


def test_a_warehouse_change_reaches_the_cached_reservation_path(scope_a, lib, staff, repair_template):
    """Warehouses are cached per config stamp: deactivating one, or giving a van to another
    engineer, is seen by the next reservation."""
    part = lib["filter"]
    for wh in (lib["hangzhou"], lib["central"]):
        services.stock_receive(warehouse=wh, part=part, quantity=5, actor=None)
    ticket = ticket_at(scope_a, repair_template, lib["store"])
    assert services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None).warehouse_id == lib["hangzhou"].pk
    services.warehouse_update(warehouse=lib["hangzhou"], is_active=False)
    assert services.stock_reserve(ticket=ticket, part=part, quantity=1, actor=None).warehouse_id == lib["central"].pk
    services.warehouse_update(warehouse=lib["central"], name="上海新中心仓")
    assert "上海新中心仓" in {p.name for p in selectors.stock_candidates(part=part, quantity=1)}
    # Another engineer's van never serves the ticket, the assignee's own does.
    services.stock_receive(warehouse=lib["van"], part=part, quantity=5, actor=None)
    van_ids = {p.id for p in selectors.stock_candidates(part=part, quantity=1, engineer_id=staff["engineer"].pk)}
    assert lib["van"].pk in van_ids
    assert lib["van"].pk not in {p.id for p in selectors.stock_candidates(part=part, quantity=1,
                                                                          engineer_id=staff["agent"].pk)}
    assert selectors.ledger_mismatches() == []


@pytest.mark.parametrize("vendor", ["native", "mysql"])
def test_counter_add_reserves_within_on_hand_and_returns_the_level(scope_a, lib, monkeypatch, vendor):
    # scrm.db.counter_add as the reservation uses it: one UPDATE … RETURNING where the database
    # has it; elsewhere (MySQL) SELECT … FOR UPDATE, then UPDATE — the same answers either way.
    from django.db import connection

    from scrm.db import counter_add

    services.stock_receive(warehouse=lib["hangzhou"], part=lib["filter"], quantity=5, actor=None)
    stock = Stock.objects.get(warehouse=lib["hangzhou"], part=lib["filter"])
    if vendor == "mysql":
        monkeypatch.setattr(connection, "vendor", "mysql")

    def add(n, **where):
        return counter_add(Stock, field="reserved", by=n, within="on_hand", returning=("on_hand", "reserved"),
                           **({"pk": stock.pk, "tenant": scope_a.pk} | where))

    assert add(3) == (5, 3)
    assert add(3) is None  # 6 > 5 on hand: refused, nothing changed
    assert add(2) == (5, 5)
    assert add(1) is None
    assert add(1, pk=stock.pk + 1000) is None  # no such row
    assert level(lib["hangzhou"], lib["filter"]) == (5, 5)
    with pytest.raises(ValueError, match="needs the tenant"):
        counter_add(Stock, field="reserved", by=1, within="on_hand", pk=stock.pk)
