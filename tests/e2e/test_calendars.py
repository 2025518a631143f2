"""A manager creates a business calendar in the browser, imports China's holidays, and the page
holds at desktop and phone width (screenshots to look at)."""

from pathlib import Path

import pytest
from django.conf import settings

from scrm.models import Role
from tests.conftest import PASSWORD, make_member
from tests.factories import TenantFactory

CN_FILE = Path(settings.BASE_DIR) / "workflow" / "data" / "cn_holidays_2026_2027.yaml"


@pytest.fixture
def manager(transactional_db):
    tenant = TenantFactory(name="味道江南餐饮集团", slug="weidao")
    return make_member(tenant, Role.MANAGER, "cal_manager")


def test_create_calendar_and_import_holidays(manager, live_server, page, shot):
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/config/calendars/")
    page.fill("#id_username", "cal_manager")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/config/calendars/")
    assert page.locator("h1").inner_text() == "工作日历"
    page.click("[data-testid=calendar-new]")
    page.fill("#id_name", "总部日历")
    page.fill("#id_fri", "09:00-12:00, 13:30-17:00")
    page.click("[data-testid=calendar-save]")
    page.locator("[data-testid=calendar-import]").wait_for()
    page.set_input_files("#id_file", str(CN_FILE))
    page.locator("[data-testid=calendar-import] button[type=submit]").click()
    page.locator("text=新增 52 天").wait_for()
    assert page.locator("[data-testid=calendar-days] tr").count() == 52
    shot(page, "calendar-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "calendar-phone")
    # A bad hour is refused with the error shown and nothing saved.
    page.fill("#id_mon", "18:00-09:00")
    page.click("[data-testid=calendar-save]")
    assert "结束时间须晚于开始时间" in page.locator("[data-testid=form-error]").inner_text()
    shot(page, "calendar-error-phone")
