"""`next` through log-in and sign-up: a visitor who came from a shared page goes back to it,
and a `next` that leaves the site is ignored (an open redirect would let a link to our
sign-up page land new users on someone else's site)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

OFF_SITE = ["https://evil.example", "//evil.example", "/\\evil.example",
            "https://evil.example/s/abc", "javascript:alert(1)"]


def signup(client: Client, password: str, **query: str) -> str:
    path = "/accounts/signup/"
    response = client.post(path, {"username": "carol", "password1": password,
                                  "password2": password, **query})
    assert response.status_code == 302, response.content
    assert User.objects.filter(username="carol").exists()
    return str(response["Location"])


def test_signing_up_goes_back_to_the_page_that_asked(db, password):
    assert signup(Client(), password, next="/s/abc123") == "/s/abc123"


def test_signing_up_without_next_goes_home(db, password):
    assert signup(Client(), password) == "/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_signing_up_ignores_a_next_off_the_site(db, password, target):
    assert signup(Client(), password, next=target) == "/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_logging_in_ignores_a_next_off_the_site(user, password, target):
    response = Client().post("/accounts/login/", {"username": "ada", "password": password,
                                                  "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_logging_in_goes_back_to_the_page_that_asked(user, password):
    response = Client().post("/accounts/login/?next=/s/abc123",
                             {"username": "ada", "password": password, "next": "/s/abc123"})
    assert response["Location"] == "/s/abc123"


def test_the_sign_up_page_keeps_next_in_its_form_and_its_log_in_link(db):
    html = Client().get("/accounts/signup/?next=/s/abc123").content.decode()
    assert '<input type="hidden" name="next" value="/s/abc123">' in html
    assert 'href="/accounts/login/?next=%2Fs%2Fabc123"' in html


def test_the_log_in_page_passes_next_on_to_sign_up(db):
    html = Client().get("/accounts/login/?next=/s/abc123").content.decode()
    assert 'href="/accounts/signup/?next=%2Fs%2Fabc123"' in html


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_pages_do_not_carry_a_next_off_the_site(db, target):
    for page in ("/accounts/signup/", "/accounts/login/"):
        html = Client().get(page, {"next": target}).content.decode()
        assert "evil" not in html and "javascript" not in html, page


def test_a_shared_page_sends_its_visitors_to_log_in_or_sign_up_and_back(api, make_graph):
    graph = make_graph()
    token = api.post(f"/api/graphs/{graph['id']}/share", {}, format="json").json()["token"]
    html = Client().get(f"/s/{token}").content.decode()
    assert f'"loginUrl": "/accounts/login/?next=/s/{token}"' in html
    assert f'"signupUrl": "/accounts/signup/?next=/s/{token}"' in html
