"""The HTML pages: home, account, the admin, and what a browser gets for errors."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.fixture
def browser(user, password) -> Client:
    client = Client()
    client.login(username="ada", password=password)
    return client


def test_home_invites_visitors_to_sign_up(db):
    page = Client().get("/")
    assert page.status_code == 200
    assert b"Sign up" in page.content


def test_home_lists_my_graphs_with_downloads_and_an_editor_placeholder(browser, make_graph,
                                                                       other_api):
    graph = make_graph(name="Digits MLP")
    other_api.post("/api/graphs", {"starter": "cnn", "name": "Bob's CNN"}, format="json")
    html = browser.get("/").content.decode()
    assert "Digits MLP" in html
    assert "Bob&#x27;s CNN" not in html and "Bob's CNN" not in html
    assert f"/api/graphs/{graph['id']}/download?format=json" in html
    assert "editor" in html.lower()


def test_the_account_page_ignores_a_bad_revoke_value(browser):
    response = browser.post("/accounts/", {"revoke": "abc"})
    assert response.status_code in (302, 400)


@pytest.mark.parametrize("path", ["/api/graphs/not-a-number", "/api/nope",
                                  "/api/graphs/99999999999", "/api/graphs/1/versions/x"])
def test_an_unknown_api_path_is_a_json_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


def test_an_unsafe_method_on_an_unknown_api_path_is_a_json_404_too(user, password):
    client = Client(enforce_csrf_checks=True)
    client.login(username="ada", password=password)
    response = client.delete("/api/auth/tokens/abc")
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.fixture
def admin_browser(db, password, make_graph, api) -> Client:
    graph = make_graph()
    api.post(f"/api/graphs/{graph['id']}/share", {}, format="json")
    User.objects.create_superuser("root", "root@example.com", password)
    client = Client()
    client.login(username="root", password=password)
    return client


@pytest.mark.parametrize("model", ["graphs/graph", "graphs/graphversion", "graphs/sharelink",
                                   "accounts/apitoken", "auth/user"])
def test_the_admin_lists_search_and_filter_every_model(admin_browser, model):
    changelist = f"/admin/{model}/"
    assert admin_browser.get(changelist).status_code == 200
    assert admin_browser.get(changelist, {"q": "ada"}).status_code == 200
    page = admin_browser.get(changelist)
    assert page.context["cl"].has_filters or model == "auth/user"
    first = page.context["cl"].result_list[0]
    assert admin_browser.get(f"{changelist}{first.pk}/change/").status_code == 200


def test_the_admin_home_needs_staff(browser):
    response = browser.get("/admin/")
    assert response.status_code == 302
