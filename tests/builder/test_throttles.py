"""Guessing passwords and making accounts are throttled, per account and per client address,
in Redis (the cache every web process shares); X-Forwarded-For counts only from a trusted
proxy."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from builder.accounts.throttles import client_address
from compute.serve import free_port


def token(client: APIClient, username: str, password: str, **meta: str) -> Any:
    return client.post("/api/auth/token", {"username": username, "password": password},
                       format="json", **meta)


def form_login(client: Client, username: str, password: str, **meta: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password},
                       **meta)


def test_throttles_count_in_redis_that_every_process_shares(user: User) -> None:
    assert settings.CACHES["default"]["BACKEND"] == (
        "django.core.cache.backends.redis.RedisCache")
    token(APIClient(), "ada", "wrong")
    # Seen from a connection of its own, as another web process would see it.
    other = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert [int(other.get(key)) for key in other.keys("shipyard-cache:1:throttle:login-*")
            if not key.endswith(b":start")] == [1, 1, 1]


def test_the_11th_login_for_an_account_from_one_address_is_refused_even_with_the_right_password(
        user: User, password: str, anon: APIClient) -> None:
    guesser = {"REMOTE_ADDR": "198.51.100.7"}
    for i in range(10):
        assert token(anon, "ada", f"guess-{i}", **guesser).status_code == 401
    refused = token(anon, "ada", password, **guesser)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"].startswith("too many failed logins: try again in 15 minutes")
    assert 850 <= int(refused["Retry-After"]) <= 900 and body["retry_after"] == int(
        refused["Retry-After"])
    page = form_login(Client(), "ADA ", password, **guesser)
    assert page.status_code == 429 and int(page["Retry-After"]) > 0
    assert b"too many failed logins: try again in 15 minutes" in page.content
    assert "_auth_user_id" not in page.wsgi_request.session
    # Another account is not locked by ada's, even from the guesser's address.
    User.objects.create_user("bob", password=password)
    assert token(anon, "bob", password, **guesser).status_code == 201


def test_a_guesser_does_not_lock_the_owner_out_but_guessing_from_many_addresses_is_stopped(
        user: User, password: str, anon: APIClient, settings: Any) -> None:
    for i in range(10):
        assert token(anon, "ada", f"guess-{i}", REMOTE_ADDR="198.51.100.7").status_code == 401
    assert token(anon, "ada", password, REMOTE_ADDR="198.51.100.7").status_code == 429
    # Ada, at home, is not locked out by someone else's guesses.
    assert token(anon, "ada", password, REMOTE_ADDR="203.0.113.20").status_code == 201
    # Guesses spread over many addresses meet the account's limit from anywhere.
    settings.SHIPYARD_LOGIN_FAILURES_PER_ACCOUNT_ANYWHERE = 25
    for i in range(15):
        assert token(anon, "ada", "wrong", REMOTE_ADDR=f"192.0.2.{i}").status_code == 401
    refused = token(anon, "ada", password, REMOTE_ADDR="203.0.113.20")
    assert refused.status_code == 429 and "too many failed logins" in refused.json()["error"]


def test_the_login_form_is_refused_after_ten_wrong_passwords(user: User,
                                                             password: str) -> None:
    browser = Client()
    for _ in range(10):
        assert form_login(browser, "ada", "wrong").status_code == 200  # the form again
    page = form_login(browser, "ada", password)
    assert page.status_code == 429
    assert b"too many failed logins" in page.content and b'name="username"' in page.content
    assert browser.get("/api/graphs").status_code == 401
    assert token(APIClient(), "ada", password).status_code == 429  # one count for both


def test_successful_logins_do_not_count(user: User, password: str, anon: APIClient) -> None:
    for _ in range(9):
        assert token(anon, "ada", "wrong").status_code == 401
    for _ in range(15):
        assert token(anon, "ada", password).status_code == 201
        assert form_login(Client(), "ada", password).status_code == 302
    assert token(anon, "ada", "wrong").status_code == 401  # the tenth failure
    assert token(anon, "ada", password).status_code == 429


def test_varying_x_forwarded_for_does_not_escape_the_per_address_limit(
        user: User, password: str, anon: APIClient) -> None:
    for i in range(30):
        response = token(anon, f"nobody-{i}", "wrong", REMOTE_ADDR="203.0.113.5",
                         HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
        assert response.status_code == 401
    refused = token(anon, "ada", password, REMOTE_ADDR="203.0.113.5",
                    HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert refused.status_code == 429 and "Retry-After" in refused
    page = form_login(Client(), "ada", password, REMOTE_ADDR="203.0.113.5",
                      HTTP_X_FORWARDED_FOR="192.0.2.201")
    assert page.status_code == 429
    assert token(anon, "ada", password, REMOTE_ADDR="203.0.113.6").status_code == 201


def test_a_trusted_proxy_names_the_client(user: User, password: str, anon: APIClient,
                                          settings: Any) -> None:
    settings.SHIPYARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = {"REMOTE_ADDR": "10.1.2.3"}
    for i in range(30):
        # The client puts a made-up address first; the proxy appends the real one.
        assert token(anon, f"nobody-{i}", "wrong", **via_proxy,
                     HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.7").status_code == 401
    assert token(anon, "ada", password, **via_proxy,
                 HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Someone else behind the same proxy is not refused.
    assert token(anon, "ada", password, **via_proxy,
                 HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 201


@pytest.mark.parametrize(("remote", "forwarded", "client"), [
    ("203.0.113.5", "", "203.0.113.5"),
    ("203.0.113.5", "192.0.2.1", "203.0.113.5"),  # not a trusted proxy: header ignored
    ("10.0.0.2", "", "10.0.0.2"),  # a proxy that says nothing is the client
    ("10.0.0.2", "192.0.2.1", "192.0.2.1"),
    ("10.0.0.2", "192.0.2.1, 10.0.0.9", "192.0.2.1"),  # two trusted hops
    ("10.0.0.2", "192.0.2.1, 198.51.100.4", "198.51.100.4"),  # only the last hop is sure
    ("10.0.0.2", "not-an-address, 10.0.0.3", "not-an-address"),
    ("::1", "192.0.2.1", "::1"),
])
def test_the_client_address_trusts_forwarding_only_from_configured_proxies(
        remote: str, forwarded: str, client: str, settings: Any) -> None:
    settings.SHIPYARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address({"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}) == client


def signup(client: Client, username: str, password: str, **meta: str) -> Any:
    return client.post("/accounts/signup/", {"username": username, "password1": password,
                                             "password2": password}, **meta)


def test_sign_ups_are_throttled_per_client_address(db: None, password: str) -> None:
    for i in range(5):
        assert signup(Client(), f"user{i}", "123", REMOTE_ADDR="203.0.113.9").status_code == 200
        assert signup(Client(), f"user{i}", password, REMOTE_ADDR="203.0.113.9",
                      HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code == 302
    refused = signup(Client(), "user5", password, REMOTE_ADDR="203.0.113.9",
                     HTTP_X_FORWARDED_FOR="192.0.2.50")
    assert refused.status_code == 429 and 3500 <= int(refused["Retry-After"]) <= 3600
    assert b"too many accounts were made from here: try again in 60 minutes" in (
        refused.content)
    assert not User.objects.filter(username="user5").exists()
    assert signup(Client(), "user5", password, REMOTE_ADDR="203.0.113.10").status_code == 302


def test_the_admin_login_counts_the_same_failures(user: User, password: str) -> None:
    user.is_staff = user.is_superuser = True
    user.save()
    browser = Client()
    for _ in range(10):
        assert form_login(browser, "ada", "wrong").status_code == 200
    refused = browser.post("/admin/login/", {"username": "ada", "password": password})
    assert refused.status_code == 429 and b"too many failed logins" in refused.content
    assert browser.get("/admin/").status_code == 302  # to the login page: not logged in


def test_logins_still_work_while_redis_is_down_and_the_log_says_so(
        user: User, password: str, anon: APIClient, settings: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/1"}}
    assert token(anon, "ada", "wrong").status_code == 401
    assert token(anon, "ada", password).status_code == 201
    assert "the cache cannot be reached; login-account is not counted" in caplog.text


def test_sign_ups_and_failed_logins_count_an_ipv6_client_by_its_64_network(
        user: User, password: str) -> None:
    """One home holds a whole /64: a new address in it is no new allowance."""
    for i in range(5):
        assert signup(Client(), f"six{i}", password,
                      REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}").status_code == 302
    refused = signup(Client(), "six5", password, REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert refused.status_code == 429
    assert signup(Client(), "six5", password, REMOTE_ADDR="2001:db8:1:3::1").status_code == 302

    client = Client()
    for i in range(10):
        client.post("/accounts/login/", {"username": user.username, "password": "wrong"},
                    REMOTE_ADDR=f"2001:db8:9:9::{i + 1:x}")
    blocked = client.post("/accounts/login/", {"username": user.username,
                                               "password": password},
                          REMOTE_ADDR="2001:db8:9:9:abcd::1")
    assert blocked.status_code == 429
