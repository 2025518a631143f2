"""Browser tests: Playwright drives Debian's chromium against pytest-django's live server."""

import os
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("E2E_SCREENSHOTS", Path(tempfile.gettempdir()) / "scrm-e2e"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-e2e` installs Debian's chromium")
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            locale="zh-CN",  # our users browse in Chinese; the switcher is tested separately
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--no-first-run",
            ],
        )
        yield context
        context.close()


@pytest.fixture
def page(browser):
    browser.clear_cookies()
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def shot():
    """shot(page, name): save a screenshot to look at (E2E_SCREENSHOTS, default /tmp/scrm-e2e)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def login():
    """login(page, url, user): sign in as a demo user (seed_demo's password) on that page."""
    def sign_in(page, url, user):
        page.goto(f"{url}/login/")
        page.fill("#id_username", user)
        page.fill("#id_password", "demo12345")
        page.press("#id_password", "Enter")
        page.wait_for_load_state()

    return sign_in
