"""A manager edits a notification template with the live preview (htmx) and an engineer sets their
preferences, at desktop and phone width."""

import pytest
from django.core.management import call_command


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet")


def sign_in(page, live_server, username, path):
    page.goto(f"{live_server.url}{path}")
    assert "/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", "demo12345")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}{path}")


@pytest.mark.parametrize("width", [1366, 390])
def test_template_editor_previews_live_and_refuses_a_bad_variable(demo, live_server, page, shot, width):
    page.set_viewport_size({"width": width, "height": 900})
    path = "/notifications/templates/edit/?event=ticket_assigned&channel=wecom&language=zh-hans"
    sign_in(page, live_server, "wd_manager", path)
    preview = page.locator("[data-testid=preview-body]")
    preview.wait_for()
    assert "TS-20261123-0001" in preview.inner_text()  # the built-in wording, with sample values
    page.fill("#id_body", "{{ assignee_name }}，请处理 {{ ticket_number }}")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=preview-body]')?.innerText.startsWith('张工，请处理')")
    shot(page, f"notification-template-{width}")
    page.fill("#id_body", "第一行\n{{ secret }}")
    page.locator("[data-testid=preview-errors]").wait_for()
    assert "secret" in page.locator("[data-testid=preview-errors]").inner_text()
    page.click("[data-testid=template-save]")
    page.wait_for_load_state()
    assert "secret" in page.locator("#template-form [data-field-error=body]").inner_text()
    shot(page, f"notification-template-error-{width}")
    page.goto(f"{live_server.url}/notifications/templates/?event=ticket_assigned")
    assert page.locator("[data-testid=template-slot]").count() == 10  # 5 channels × 2 languages
    shot(page, f"notification-templates-{width}")


@pytest.mark.parametrize("width", [1366, 390])
def test_preferences_page(demo, live_server, page, shot, width):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, live_server, "wd_eng1", "/notifications/preferences/")
    row = page.locator("[data-testid=preference-ticket_assigned]")
    row.locator("input[value=sms]").check()
    row.locator("select").select_option("urgent")
    page.fill("#id_ticket_assigned-quiet_start", "22:00")
    page.fill("#id_ticket_assigned-quiet_end", "07:00")
    page.click("[data-testid=preferences-save]")
    page.wait_for_load_state()
    assert page.locator("[data-testid=preference-ticket_assigned] input[value=sms]").is_checked()
    shot(page, f"notification-preferences-{width}")
