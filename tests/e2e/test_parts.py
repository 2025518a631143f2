"""The ticket page's spare parts panel in a real browser: the vendored ZXing barcode reader loads
where the browser has no BarcodeDetector (Debian's chromium has none, like iOS Safari) and offers
the camera button without a console error; typing the barcode consumes the reserved compressor
end to end (the real camera cannot be driven here)."""

import pytest
from django.core.management import call_command

from scrm.models import Tenant
from scrm.tenancy import tenant_scope
from spareparts import selectors
from spareparts.models import Movement, Stock


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet", verbosity=0)


def test_scan_panel_loads_the_reader_and_consumes_a_typed_code(demo, login, live_server, page, shot):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    tenant = Tenant.objects.get(slug="meijia")
    with tenant_scope(tenant):
        # A ticket of the demo still holding one unit of the part (its reserve line, not used yet).
        reservation = next(line for line in Movement.objects.filter(
            kind="reserve", part__barcode="6923456700015", quantity=1).select_related("part").order_by("pk")
            if [h.held for h in selectors.ticket_reservations(ticket=line.ticket)
                if h.part_id == line.part_id] == [1])
        stock = Stock.objects.get(warehouse_id=reservation.warehouse_id, part_id=reservation.part_id)
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server.url, "mj_eng1")
    page.goto(f"{live_server.url}/tickets/{reservation.ticket_id}/")
    page.wait_for_selector("[data-testid=scan-form]")

    assert page.evaluate("'BarcodeDetector' in window") is False
    camera = page.locator("[data-testid=scan-camera]")
    camera.wait_for(state="visible")
    assert camera.get_attribute("data-reader") == "zxing"
    assert page.evaluate("typeof window.ZXing.BrowserMultiFormatReader") == "function"
    assert page.evaluate("typeof new window.ZXing.BrowserMultiFormatReader().decodeFromConstraints") == "function"
    shot(page, "parts-scan-phone")

    page.fill("[data-testid=scan-form] input[name=code]", reservation.part.barcode)
    page.press("[data-testid=scan-form] input[name=code]", "Enter")
    page.wait_for_selector("#ticket-parts .alert-success")
    # The swapped panel sets its camera button up again (the reader is already loaded).
    page.locator("[data-testid=scan-camera]").wait_for(state="visible")
    page.set_viewport_size({"width": 1366, "height": 900})
    shot(page, "parts-scan-desktop")
    assert errors == []
    with tenant_scope(tenant):
        after = Stock.objects.get(pk=stock.pk)
        [hold] = [h for h in selectors.ticket_reservations(ticket=reservation.ticket)
                  if h.part_id == reservation.part_id]
        assert (hold.status, hold.held, hold.consumed) == ("consumed", 0, 1)
        assert after.on_hand == stock.on_hand - reservation.quantity
        assert Movement.objects.filter(ticket_id=reservation.ticket_id, kind="consume").count() == 1
