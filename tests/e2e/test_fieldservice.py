"""The engineer's day on a phone, in a real browser with geolocation: 今日任务, a check-in near the
site (accepted) and one far away (asks for a reason, flagged), a photo compressed and uploaded,
an upload kept on the phone while offline and sent when back, the customer's signature; the
ticket page, the tracking page and the manager's check-ins show all of it."""

import pytest
from django.core.management import call_command

# The demo's 13:30 visit (锦绣路) is at GCJ-02 31.205200,121.555600; a phone there reports WGS-84 about this.
NEAR = {"latitude": 31.207250, "longitude": 121.551130, "accuracy": 20}
FAR = {"latitude": 31.40, "longitude": 121.40, "accuracy": 30}


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", "--quiet", verbosity=0)


def _photo():
    """A 1200×900 PNG (a 'camera photo'): big enough that the canvas compression shrinks it."""
    import struct
    import zlib

    width, height = 1200, 900
    raw = b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(width * 3)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_engineer_day_on_the_phone(demo, login, live_server, browser, shot, tmp_path):
    photo = tmp_path / "现场.png"
    photo.write_bytes(_photo())
    browser.grant_permissions(["geolocation"])
    browser.set_geolocation(NEAR)
    try:
        phone = browser.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        login(phone, live_server.url, "mj_eng1")
        phone.goto(f"{live_server.url}/field/today/")
        rows = phone.locator("[data-testid=today-list] [data-testid=visit-row]")
        assert rows.count() == 5
        assert "uri.amap.com/navigation" in rows.nth(2).locator("[data-testid=nav-link]").get_attribute("href")
        shot(phone, "field-today-phone")
        visits = [rows.nth(i).locator("[data-testid=open-visit]").get_attribute("href") for i in range(5)]

        phone.goto(live_server.url + visits[2])
        phone.click("[data-testid=checkin-btn]")
        phone.wait_for_selector("[data-testid=checked-in]")
        assert "异常" not in phone.inner_text("[data-testid=checked-in]")  # within the radius: not flagged
        phone.set_input_files("[data-testid=photo-after]", str(photo))
        phone.wait_for_selector("[data-testid=photos] img")
        pad = phone.locator("#sig-pad")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        phone.mouse.move(box["x"] + 20, box["y"] + 100)
        phone.mouse.down()
        for i in range(1, 25):
            phone.mouse.move(box["x"] + 20 + i * 10, box["y"] + 100 + (30 if i % 2 else -30))
        phone.mouse.up()
        phone.click("[data-testid=sign-btn]")
        phone.wait_for_selector("[data-testid=visit-signature]")
        phone.click("[data-testid=checkout-btn]")
        phone.wait_for_selector("[data-testid=checkin-btn]")  # checked out: a new visit may start
        shot(phone, "field-visit-done-phone")

        browser.set_geolocation(FAR)
        phone.goto(live_server.url + visits[3])
        phone.click("[data-testid=checkin-btn]")
        phone.wait_for_selector("[data-testid=checkin-reason]:not(.d-none)")
        phone.fill("#reason", "客户临时改到父母家安装，已电话确认")
        phone.click("[data-testid=checkin-reason-btn]")
        phone.wait_for_selector("[data-testid=checked-in]")

        browser.set_offline(True)
        phone.set_input_files("[data-testid=photo-before]", str(photo))
        phone.wait_for_selector("[data-testid=queued-photo][data-state=failed]")
        shot(phone, "field-upload-queued-phone")
        browser.set_offline(False)  # the page's "online" listener sends the queued photo by itself
        phone.wait_for_selector("[data-testid=queued-photo]", state="detached")
        ticket_url = phone.locator("[data-testid=ticket-link]").get_attribute("href")
        phone.close()
    finally:
        browser.set_offline(False)
        browser.clear_permissions()

    browser.clear_cookies()  # the engineer's session: the manager signs in afresh
    desk = browser.new_page()
    desk.set_viewport_size({"width": 1366, "height": 900})
    login(desk, live_server.url, "mj_manager")
    desk.goto(f"{live_server.url}/field/checkins/?flagged=1")
    assert "客户临时改到父母家安装" in desk.inner_text("[data-testid=checkin-table]")
    shot(desk, "field-checkins-desktop")
    desk.goto(live_server.url + ticket_url)
    assert desk.locator("[data-testid=site-visits]").count() == 1
    shot(desk, "field-ticket-desktop")
    desk.close()
