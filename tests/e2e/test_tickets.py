"""Tried as a new user would: a customer submits the public form at phone width and follows
the tracking link; an agent sees the ticket with the customer linked."""

import pytest
from django.core.management import call_command


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet", verbosity=0)


def test_customer_submits_public_form_and_agent_sees_it(demo, live_server, browser, shot):
    phone = browser.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"{live_server.url}/s/weidao/canyin_tousu/")
    form = phone.locator("[data-testid=public-form]")
    form.locator("select[name=store]").select_option(index=1)
    form.locator("input[name=dined_at]").fill("2026-11-22T19:30")
    form.locator("select[name=complaint_type]").select_option("waiting")
    form.locator("textarea[name=description]").fill("周六晚上等了五十分钟才上菜，服务员也没有解释。")
    form.locator("input[name=contact_name]").fill("赵女士")
    form.locator("input[name=contact_phone]").fill("139 1700 8866")
    form.locator("input[name=expectation][value=apology]").check()
    shot(phone, "public-form-phone")
    form.locator("button[type=submit]").click()
    phone.wait_for_url("**/s/thanks/**")
    number = phone.locator("[data-testid=ticket-number]").inner_text().strip()
    assert number.startswith("TS-")
    shot(phone, "public-thanks-phone")
    phone.click("[data-testid=tracking-link]")
    phone.wait_for_url("**/track/**")
    assert phone.locator("[data-testid=ticket-number]").inner_text().strip() == number
    assert "等了五十分钟" not in phone.locator("[data-testid=public-timeline]").inner_text()  # internal data stays out
    assert phone.locator("[data-testid=track-steps] .step.done").count() >= 1
    phone.fill("textarea[name=body]", "请尽快回电，谢谢")
    phone.click("[data-testid=reply-form] button[type=submit]")
    phone.wait_for_load_state()
    assert "请尽快回电" in phone.locator("[data-testid=public-timeline]").inner_text()
    shot(phone, "public-track-phone")
    phone.close()

    desk = browser.new_page()
    desk.set_viewport_size({"width": 1366, "height": 900})
    desk.goto(f"{live_server.url}/login/")
    desk.fill("#id_username", "wd_agent1")
    desk.fill("#id_password", "demo12345")
    desk.click("button[type=submit]")
    desk.wait_for_load_state()
    desk.goto(f"{live_server.url}/tickets/?q={number}")
    desk.click(f"text={number}")
    desk.wait_for_load_state()
    assert desk.locator("[data-testid=ticket-number]").inner_text().strip() == number
    body = desk.content()
    assert "赵女士" in body and "13917008866" in body
    assert "请尽快回电" in desk.locator("[data-testid=timeline]").inner_text()
    shot(desk, "ticket-desktop")
    desk.close()
