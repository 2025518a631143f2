"""Sign-in hardening (issue 13): failures counted per account and per address, the right
password refused past the limit with a clear message (on /login/ and /admin/login/), the count
cleared by a success; password reset by email with our templates."""

import re

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 10
    settings.LOGIN_FAILURES_PER_ADDRESS = 30
    settings.LOGIN_FAILURE_WINDOW = 900
    cache.clear()


@pytest.fixture
def english():
    client = Client()
    client.cookies["django_language"] = "en"
    return client


def sign_in(client, url, username, password, ip="203.0.113.5"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_the_right_password_is_refused_after_too_many_wrong_ones(url, admin_a, english):
    admin_a.set_password("right-horse-42")
    admin_a.save()
    with time_machine.travel("2026-03-02 09:00:10 +0800", tick=False) as clock:
        for _ in range(10):
            response = sign_in(english, url, "admin_a", "wrong")
            assert response.status_code == 200
            assert "_auth_user_id" not in english.session
        response = sign_in(english, url, "admin_a", "right-horse-42")
        assert response.status_code == 200
        assert "_auth_user_id" not in english.session
        assert "Too many failed sign-ins for this account or from your network. Try again in 15 minutes." in (
            response.content.decode())
        # From another address too: the account is what is guessed.
        elsewhere = Client()
        assert sign_in(elsewhere, url, "admin_a", "right-horse-42", ip="198.51.100.9").status_code == 200
        assert "_auth_user_id" not in elsewhere.session
        clock.shift(900)
        response = sign_in(english, url, "admin_a", "right-horse-42")
        assert response.status_code == 302
        assert english.session["_auth_user_id"] == str(admin_a.pk)


def test_one_address_guessing_many_accounts_is_stopped(english):
    victims = [UserFactory(username=f"user{n}") for n in range(4)]
    with time_machine.travel("2026-03-02 09:00:10 +0800", tick=False):
        for n in range(30):
            sign_in(english, "/login/", victims[n % 4].username, "wrong")
        victims[0].set_password("right-horse-42")
        victims[0].save()
        response = sign_in(english, "/login/", "user0", "right-horse-42")
        assert "Too many failed sign-ins" in response.content.decode()
        assert "_auth_user_id" not in english.session
        # Another address still signs in: only the guessing address is held (user0 has 8 failures).
        other = Client()
        assert sign_in(other, "/login/", "user0", "right-horse-42", ip="198.51.100.9").status_code == 302


def test_a_success_clears_the_accounts_count(admin_a, english):
    admin_a.set_password("right-horse-42")
    admin_a.save()
    with time_machine.travel("2026-03-02 09:00:10 +0800", tick=False):
        for _ in range(9):
            sign_in(english, "/login/", "admin_a", "wrong")
        assert sign_in(english, "/login/", "admin_a", "right-horse-42").status_code == 302
        english.logout()
        for _ in range(9):
            sign_in(english, "/login/", "admin_a", "wrong", ip="198.51.100.7")
        assert sign_in(english, "/login/", "admin_a", "right-horse-42", ip="198.51.100.7").status_code == 302


def test_password_reset_by_email(english):
    user = UserFactory(username="zhang", email="zhang@example.com")
    user.set_password("old-password-1")
    user.save()
    assert 'href="/password-reset/"' in english.get("/login/").content.decode()
    response = english.post("/password-reset/", {"email": "zhang@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/password-reset/[^/]+/[^/]+/)", mail.outbox[0].body).group(1)
    assert "zhang" in mail.outbox[0].body
    form_url = english.get(link)["Location"]
    response = english.post(form_url, {"new_password1": "Brand-new-pass-77", "new_password2": "Brand-new-pass-77"})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/done/"
    assert sign_in(english, "/login/", "zhang", "Brand-new-pass-77").status_code == 302
    english.logout()
    english.cookies["django_language"] = "en"  # logout() drops the cookies
    # The link works once.
    assert "This link is no longer valid" in english.get(link, follow=True).content.decode()


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(english):
    response = english.post("/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []


def test_password_reset_requests_are_rate_limited(english, settings):
    settings.PASSWORD_RESET_RATE_PER_MINUTE = 2
    UserFactory(username="li", email="li@example.com")
    with time_machine.travel("2026-03-02 09:00:10 +0800", tick=False):
        statuses = [english.post("/password-reset/", {"email": "li@example.com"}).status_code for _ in range(4)]
    assert statuses == [302, 302, 429, 429]
    assert len(mail.outbox) == 2
