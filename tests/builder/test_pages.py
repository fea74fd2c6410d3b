"""The HTML pages: home, account, the admin, and what a browser gets for errors."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from builder.graphs.models import Graph
from compute.jobs.models import Job


@pytest.fixture
def browser(user, password) -> Client:
    client = Client()
    client.login(username="ada", password=password)
    return client


def test_home_invites_visitors_to_sign_up(db):
    page = Client().get("/")
    assert page.status_code == 200
    assert b"Sign up" in page.content


def test_home_lists_my_graphs_with_links_to_the_editor_and_downloads(browser, make_graph,
                                                                     other_api):
    graph = make_graph(name="Digits MLP")
    other_api.post("/api/graphs", {"starter": "cnn", "name": "Bob's CNN"}, format="json")
    html = browser.get("/").content.decode()
    assert "Digits MLP" in html
    assert "Bob&#x27;s CNN" not in html and "Bob's CNN" not in html
    assert f'href="/g/{graph["id"]}"' in html
    assert f"/api/graphs/{graph['id']}/download?format=json" in html


def test_home_offers_a_blank_canvas_and_every_starter(browser):
    html = browser.get("/").content.decode()
    assert 'href="/new"' in html
    for name in ["mlp", "cnn", "resnet", "transformer_classifier", "char_gpt", "llama"]:
        assert f'href="/new?starter={name}"' in html


def test_home_offers_the_guided_gpt_path(browser, db):
    # The editor reads `path` from its address; the page only has to open on it.
    for html in (browser.get("/").content.decode(), Client().get("/").content.decode()):
        assert 'href="/new?path=gpt"' in html
        assert "Learn: Build a GPT from scratch" in html
    page = browser.get("/new?path=gpt")
    assert page.status_code == 200
    assert boot(page)["starter"] is None


def boot(page) -> dict:
    """What the editor page hands the editor (the json_script block)."""
    import json
    import re

    match = re.search(r'<script id="shipyard-boot" type="application/json">(.*?)</script>',
                      page.content.decode(), re.S)
    assert match, "the page has no boot data"
    return json.loads(match.group(1))


def test_the_editor_opens_a_new_model_or_a_starter(browser):
    assert boot(browser.get("/new")) | {"loginUrl": "", "signupUrl": ""} == {
        "graphId": None, "starter": None, "shareToken": None, "user": {"username": "ada"},
        "loginUrl": "", "signupUrl": ""}
    assert boot(browser.get("/new?starter=char_gpt"))["starter"] == "char_gpt"
    assert browser.get("/new?starter=nope").status_code == 404


@pytest.mark.parametrize("url", ["/new", "/new?starter=char_gpt", "/new?path=gpt",
                                 "/new?starter=mlp&path=gpt&claim=1"])
def test_a_visitor_opens_the_editor_without_an_account(db, url):
    page = Client().get(url)
    assert page.status_code == 200
    handed = boot(page)
    assert handed["user"] is None
    # Signing up or logging in comes back to the very same editor URL, parameters and all.
    assert handed["signupUrl"] == "/accounts/signup/?" + urlencode({"next": url}, safe="/")
    assert handed["loginUrl"] == "/accounts/login/?" + urlencode({"next": url}, safe="/")


def test_a_visitors_saved_models_still_need_a_login(db, make_graph):
    graph = make_graph()
    response = Client().get(f"/g/{graph['id']}")
    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next=/g/{graph['id']}")


def test_home_offers_a_visitor_the_editor_and_every_starter_and_still_sign_up(db):
    html = Client().get("/").content.decode()
    assert 'href="/new"' in html
    for name in ["mlp", "cnn", "resnet", "transformer_classifier", "char_gpt", "llama"]:
        assert f'href="/new?starter={name}"' in html
    assert 'href="/accounts/signup/"' in html and 'href="/accounts/login/"' in html


def test_the_editor_opens_only_my_own_graphs(browser, make_graph, other_api):
    mine = make_graph(name="Mine")
    theirs = other_api.post("/api/graphs", {"starter": "cnn"}, format="json").json()
    page = browser.get(f"/g/{mine['id']}")
    assert page.status_code == 200
    assert boot(page)["graphId"] == mine["id"]
    assert b"<title>Mine" in page.content
    assert browser.get(f"/g/{theirs['id']}").status_code == 404


def test_the_account_page_ignores_a_bad_revoke_value(browser):
    response = browser.post("/accounts/", {"revoke": "abc"})
    assert response.status_code == 302


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
    assert page.context["cl"].has_filters
    first = page.context["cl"].result_list[0]
    assert admin_browser.get(f"{changelist}{first.pk}/change/").status_code == 200


def test_the_admin_home_needs_staff(browser):
    response = browser.get("/admin/")
    assert response.status_code == 302


@pytest.mark.skipif(not settings.EDITOR_DIST.joinpath("manifest.json").exists(),
                    reason="the editor is not built (make editor)")
def test_the_editor_page_loads_its_script_with_debug_off(browser):
    assert not settings.DEBUG  # as `shipyard up` runs by default
    page = browser.get("/new").content.decode()
    scripts = re.findall(r'<script type="module"[^>]* src="(/static/[^"]+\.js)"', page)
    assert scripts, page[:500]
    for src in scripts:
        response = browser.get(src)
        assert response.status_code == 200, src
        assert b"".join(response.streaming_content)  # WhiteNoise serves the file itself


# -- the list of models: last runs, deleting --------------------------------------------


def add_run(graph_id: int, status: str, metrics: dict | None = None) -> Job:
    graph = Graph.objects.get(id=graph_id)
    return Job.objects.create(owner=graph.owner, graph=graph,
                              version=graph.versions.get(number=graph.head), dataset="digits",
                              time_limit=60, total_steps=10, status=status,
                              metrics=metrics or {})


def row_of(html: str, graph_id: int) -> str:
    match = re.search(rf'<tr data-testid="model-row" data-graph="{graph_id}">(.*?)</tr>', html,
                      re.S)
    assert match, f"no row for graph {graph_id}"
    return match[1]


def test_home_shows_each_models_last_run_and_its_headline_metric(browser, make_graph):
    trained, diverged, untouched = (make_graph(name=n)["id"] for n in "abc")
    add_run(trained, "failed", {"train_loss": 3.2})
    add_run(trained, "succeeded", {"train_loss": 1.5, "val_loss": 1.93217, "lr": 0.001})
    add_run(diverged, "failed", {"train_loss": "nan"})
    html = browser.get("/").content.decode()
    assert "succeeded · val_loss 1.93" in row_of(html, trained)
    assert "failed · train_loss not finite" in row_of(html, diverged)
    assert "no runs" in row_of(html, untouched)


def test_home_lists_models_with_a_constant_number_of_queries(browser, make_graph):
    def queries_for_home() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert browser.get("/").status_code == 200
        return len(captured)

    for name in "ab":
        add_run(make_graph(name=name)["id"], "succeeded", {"val_loss": 1.0})
    few = queries_for_home()
    for name in "cdefgh":
        graph_id = make_graph(name=name)["id"]
        add_run(graph_id, "running")
        add_run(graph_id, "succeeded", {"val_loss": 2.0})
    assert queries_for_home() == few


def test_the_api_lists_graphs_with_their_last_run(api, make_graph):
    graph_id = make_graph(name="a")["id"]
    make_graph(name="b")
    add_run(graph_id, "succeeded", {"val_loss": 0.5})
    latest = add_run(graph_id, "failed", {"train_loss": "inf", "val_loss": 0.75})
    listed = {g["name"]: g for g in api.get("/api/graphs").json()}
    assert listed["a"]["last_run"] == {"id": latest.id, "status": "failed",
                                      "metrics": {"train_loss": None, "val_loss": 0.75}}
    assert listed["b"]["last_run"] is None


def test_deleting_a_model_from_the_list_asks_first_naming_it(browser, make_graph, api):
    graph_id = make_graph(name="Digits MLP")["id"]
    add_run(graph_id, "succeeded")
    api.post(f"/api/graphs/{graph_id}/share", {}, format="json")
    assert f'href="/g/{graph_id}/delete"' in browser.get("/").content.decode()
    confirm = browser.get(f"/g/{graph_id}/delete")
    assert confirm.status_code == 200
    text = re.sub(r"\s+", " ", confirm.content.decode())
    assert "Delete Digits MLP?" in text
    assert "1 version, 1 run" in text and "1 live share link" in text
    assert Graph.objects.filter(id=graph_id).exists()  # asking deletes nothing

    done = browser.post(f"/g/{graph_id}/delete", follow=True)
    assert done.redirect_chain == [("/", 302)]
    assert not Graph.objects.filter(id=graph_id).exists()
    assert not Job.objects.filter(graph_id=graph_id).exists()
    assert "Deleted Digits MLP." in done.content.decode()


def test_nobody_deletes_another_users_model(browser, other_api):
    theirs = other_api.post("/api/graphs", {"starter": "cnn"}, format="json").json()["id"]
    assert browser.get(f"/g/{theirs}/delete").status_code == 404
    assert browser.post(f"/g/{theirs}/delete").status_code == 404
    assert Graph.objects.filter(id=theirs).exists()
