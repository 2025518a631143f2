"""The Content-Security-Policy (no inline script) breaks nothing: the pages that run scripts —
the shell's htmx and Bootstrap, the new-ticket customer picker, the template builder with
SortableJS, the workflow designer, the admin — load without a single CSP violation, and htmx
still swaps the ticket list as the agent types."""

import pytest
from django.core.management import call_command

from scrm.models import Tenant
from scrm.tenancy import tenant_scope
from tickets.models import TicketTemplate
from workflow.models import Workflow


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet", verbosity=0)


def test_pages_run_under_the_policy(demo, live_server, page, shot):
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "wd_admin")
    page.fill("#id_password", "demo12345")
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/tickets/")
    rows_before = page.locator("#ticket-table tbody tr").count()
    with page.expect_response(lambda r: "/tickets/?" in r.url and r.request.headers.get("hx-request") == "true"):
        page.fill("input[name=q]", "zz-no-such-ticket")
    page.wait_for_function("document.querySelectorAll('#ticket-table tbody tr').length <= 1")
    assert rows_before > 1

    with tenant_scope(Tenant.objects.get(slug="weidao")):
        template = TicketTemplate.objects.filter(current_version__isnull=False).order_by("pk").first()
        workflow = Workflow.objects.order_by("pk").first()
    page.goto(f"{live_server.url}/tickets/new/{template.pk}/")
    page.fill("#customer-find input[name=q]", "13")
    page.locator("[data-customer-id]").first.click()
    assert page.locator("#id_customer_id").input_value() != ""
    assert page.locator("#customer-picked").is_visible()
    shot(page, "csp-new-ticket")
    page.goto(f"{live_server.url}/config/templates/{template.pk}/")
    page.wait_for_load_state()
    shot(page, "csp-builder")
    page.goto(f"{live_server.url}/config/workflows/{workflow.pk}/")
    page.wait_for_load_state()
    shot(page, "csp-designer")
    page.goto(f"{live_server.url}/admin/scrm/customer/add/")
    page.wait_for_load_state()
    shot(page, "csp-admin")
    assert violations == []
