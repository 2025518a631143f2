"""A demo user signs in, sees the shell with their tenant, switches language, and the layout
holds at phone width."""

import pytest
from django.core.management import call_command


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet")


def sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/customers/")
    assert "/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", "demo12345")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/customers/")


def test_sign_in_see_shell_switch_language(demo, live_server, page, shot):
    page.set_viewport_size({"width": 1366, "height": 850})
    sign_in(page, live_server, "wd_agent1")
    assert page.locator("[data-testid=tenant-name]").inner_text() == "味道江南餐饮集团"
    assert page.locator("h1").inner_text() == "客户"
    assert page.locator("[data-testid=customer-table] tbody tr").count() == 25
    shot(page, "customers-desktop-zh")

    page.click("[data-testid=language-menu]")
    page.click("[data-testid=lang-en]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Customers"
    assert page.locator("[data-testid=language-menu]").inner_text().strip() == "English"
    shot(page, "customers-desktop-en")

    page.click("[data-testid=language-menu]")
    page.click("[data-testid=lang-zh-hans]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "客户"


def test_phone_width_menu_and_search(demo, live_server, page, shot):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, "wd_rm_east")
    # The sidebar collapses into an off-canvas menu behind the ☰ button.
    assert not page.locator("#sidebar .nav-link").first.is_visible()
    page.click("button[aria-controls=sidebar]")
    page.locator("#sidebar.show").wait_for(state="visible")
    page.wait_for_function("!document.querySelector('#sidebar').classList.contains('showing')")
    assert page.locator("#sidebar-title").inner_text() == "味道江南餐饮集团"
    shot(page, "menu-phone")
    page.locator("#sidebar .nav-link", has_text="客户").click()
    page.wait_for_url(f"{live_server.url}/customers/")
    rows_before = page.locator("[data-testid=customer-table] tbody tr").count()
    first_name = page.locator("[data-testid=customer-table] tbody tr td a").first.inner_text()
    page.fill("input[name=q]", first_name)
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=customer-table] tbody tr').length < n", arg=rows_before
    )
    assert first_name in page.locator("[data-testid=customer-table]").inner_text()
    shot(page, "customers-phone-search")
    # Width holds: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
