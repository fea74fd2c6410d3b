"""Accounts: sign up, log in and out, personal API tokens, and how the API authenticates."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from builder.accounts.models import ApiToken


def test_signup_refuses_a_weak_password(db):
    client = Client()
    response = client.post("/accounts/signup/", {"username": "carol", "password1": "123456",
                                                 "password2": "123456"})
    assert response.status_code == 200  # the form again, with the reasons
    assert b"too common" in response.content and b"too short" in response.content
    assert not User.objects.filter(username="carol").exists()


def test_signup_with_a_good_password_logs_the_user_in(db, password):
    client = Client()
    response = client.post("/accounts/signup/", {"username": "carol", "password1": password,
                                                 "password2": password})
    assert response.status_code == 302
    assert User.objects.filter(username="carol").exists()
    assert b"Your models" in client.get("/").content


def test_login_and_logout_through_the_pages(user, password):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "ada", "password": password})
    assert response.status_code == 302
    assert client.get("/api/graphs").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/api/graphs").status_code == 401


def test_a_token_is_issued_for_a_username_and_password(user, password, anon):
    response = anon.post("/api/auth/token", {"username": "ada", "password": password,
                                             "name": "laptop"}, format="json")
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert len(raw) >= 40
    assert body["name"] == "laptop"
    # Only the hash is kept.
    stored = ApiToken.objects.get(id=body["id"])
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert not ApiToken.objects.filter(key_hash=raw).exists()
    assert raw.startswith("shp_") and stored.prefix == raw[4:12]


def test_a_wrong_password_gets_no_token(user, anon):
    response = anon.post("/api/auth/token", {"username": "ada", "password": "nope"},
                         format="json")
    assert response.status_code == 401
    assert "error" in response.json()
    assert not ApiToken.objects.exists()


def test_a_token_request_without_fields_is_400(anon, db):
    assert anon.post("/api/auth/token", {}, format="json").status_code == 400


def test_a_bearer_token_authenticates_api_calls(user, password, anon):
    raw = anon.post("/api/auth/token", {"username": "ada", "password": password},
                    format="json").json()["token"]
    client = APIClient()
    response = client.get("/api/graphs", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


def test_no_credentials_is_401_with_a_challenge(anon):
    response = anon.get("/api/graphs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_a_wrong_token_is_401(anon):
    response = anon.get("/api/graphs", HTTP_AUTHORIZATION="Bearer shp_not-a-real-token")
    assert response.status_code == 401
    assert "error" in response.json()


def test_a_malformed_authorization_header_is_401(anon):
    assert anon.get("/api/graphs", HTTP_AUTHORIZATION="Bearer").status_code == 401
    assert anon.get("/api/graphs", HTTP_AUTHORIZATION="Bearer a b").status_code == 401


def test_a_revoked_token_stops_working(api, user):
    token = ApiToken.objects.get(user=user)
    assert api.delete(f"/api/auth/tokens/{token.id}").status_code == 204
    assert api.get("/api/graphs").status_code == 401


def test_tokens_can_be_listed_and_revoked_only_by_their_owner(api, other_api, user):
    listed = api.get("/api/auth/tokens").json()
    assert [t["name"] for t in listed] == ["tests"]
    assert "token" not in listed[0]
    token_id = listed[0]["id"]
    assert other_api.delete(f"/api/auth/tokens/{token_id}").status_code == 404
    assert api.get("/api/graphs").status_code == 200


def test_an_inactive_users_token_is_refused(api, user):
    user.is_active = False
    user.save()
    assert api.get("/api/graphs").status_code == 401


def test_session_auth_needs_csrf_for_unsafe_methods(user, password):
    client = Client(enforce_csrf_checks=True)
    client.login(username="ada", password=password)
    assert client.get("/api/graphs").status_code == 200
    refused = client.post("/api/graphs", {"starter": "mlp"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    client.get("/accounts/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/graphs", {"starter": "mlp"}, content_type="application/json",
                           HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_a_bearer_token_needs_no_csrf(user, api):
    # APIClient does not enforce CSRF by itself; a plain Client that does shows the point.
    raw_client = Client(enforce_csrf_checks=True)
    header = api._credentials["HTTP_AUTHORIZATION"]
    response = raw_client.post("/api/graphs", {"starter": "mlp"},
                               content_type="application/json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 201


def test_the_account_page_creates_shows_once_and_revokes_tokens(user, password):
    client = Client()
    client.login(username="ada", password=password)
    page = client.post("/accounts/", {"name": "ci"})
    assert page.status_code == 200
    token = ApiToken.objects.get(user=user, name="ci")
    raw = page.context["new_token"]
    assert hashlib.sha256(raw.encode()).hexdigest() == token.key_hash
    assert raw.encode() in page.content
    assert raw.encode() not in client.get("/accounts/").content  # shown once
    client.post("/accounts/", {"revoke": str(token.id)})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_the_account_page_needs_a_login(db):
    response = Client().get("/accounts/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
