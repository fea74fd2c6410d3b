"""Hostile input at the web edge: JSON nested too deep, numbers JSON cannot spell, lone
surrogates, ids that are not numbers or do not fit a column. Each is a 400 in the API's error
format, and nothing is stored from a request that fails. Any other failure under /api/ is
JSON too, and the site's own 404 and 500 pages answer elsewhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import path

from builder import urls as site_urls
from builder.accounts.models import ApiToken
from builder.accounts.services import issue_token
from builder.graphs.models import Graph, GraphVersion, ShareLink
from builder.graphs.parsers import MAX_JSON_DEPTH, nesting_depth
from compute.jobs.models import Job


def stored() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (User, ApiToken, Graph, GraphVersion, ShareLink, Job)}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def assert_refused(response: Any, *words: str) -> None:
    assert response.status_code == 400, response.content[:500]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    for word in words:
        assert word in error, error


@pytest.fixture
def saved(make_graph: Callable[..., dict[str, Any]], user: User) -> dict[str, Any]:
    """ada's graph (one version) with a run that ended."""
    graph = make_graph()
    version = GraphVersion.objects.get(graph_id=graph["id"], number=1)
    job = Job.objects.create(owner=user, graph_id=graph["id"], version=version,
                             dataset="digits", time_limit=60, total_steps=10,
                             status=Job.Status.SUCCEEDED)
    return {"graph": graph["id"], "job": job.id}


# Every endpoint that takes a JSON body, with a valid body to spoil.
def json_endpoints(ids: dict[str, Any], mlp: dict[str, Any]) -> list[tuple[str, str, dict]]:
    graph, job = ids["graph"], ids["job"]
    return [
        ("post", "/api/auth/token", {"username": "ada", "password": "x"}),
        ("post", "/api/graphs", {"document": mlp}),
        ("patch", f"/api/graphs/{graph}", {"name": "renamed"}),
        ("post", f"/api/graphs/{graph}/versions", {"document": mlp, "base_version": 1}),
        ("post", f"/api/graphs/{graph}/versions/1/restore", {"base_version": 1}),
        ("post", f"/api/graphs/{graph}/share", {"version": 1}),
        ("post", "/api/inspect", mlp),
        ("post", "/api/jobs", {"graph": graph, "dataset": "digits", "config": {"lr": 0.1}}),
        ("patch", f"/api/jobs/{job}", {"published": True}),
    ]


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 960, 100_000])
def test_json_nested_too_deep_is_refused_on_every_json_endpoint(api, saved, mlp, levels):
    for method, url, body in json_endpoints(saved, mlp):
        before = stored()
        text = json.dumps(body)
        spoiled = text[:-1] + f', "deep": {deep(levels)}}}'
        response = getattr(api, method)(url, spoiled, content_type="application/json")
        assert_refused(response, f"nested more than {MAX_JSON_DEPTH} levels")
        assert stored() == before, url


def test_deep_nesting_is_refused_anonymously_on_the_token_endpoint(anon):
    response = anon.post("/api/auth/token", deep(5000), content_type="application/json")
    assert_refused(response, "nested more than")


def test_json_as_deep_as_allowed_still_parses(api):
    # /api/inspect takes any object and reports on it: a deep but allowed one is no error.
    body = '{"nodes": [], "meta": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    response = api.post("/api/inspect", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]


def test_nesting_depth_ignores_brackets_inside_strings():
    assert nesting_depth('{"a": "[[[[{{{{", "b": [1, {"c": "]]\\"[["}]}') == 3
    assert nesting_depth('"no containers"') == 0


@pytest.mark.parametrize("literal, words", [
    ("1e999", ["1e999", "too large"]), ("-1e400", ["-1e400", "too large"]),
    ("NaN", ["NaN"]), ("Infinity", ["Infinity"]), ("-Infinity", ["-Infinity"])])
def test_numbers_json_cannot_spell_are_refused_on_every_json_endpoint(api, saved, mlp, literal,
                                                                      words):
    for method, url, body in json_endpoints(saved, mlp):
        before = stored()
        spoiled = json.dumps(body)[:-1] + f', "x": {literal}}}'
        response = getattr(api, method)(url, spoiled, content_type="application/json")
        assert_refused(response, *words)
        assert stored() == before, url


def test_a_graph_with_1e999_in_its_document_is_not_stored(api, mlp):
    mlp["meta"] = {"scale": 1}
    text = json.dumps({"document": mlp}).replace('"scale": 1', '"scale": 1e999')
    response = api.post("/api/graphs", text, content_type="application/json")
    assert_refused(response, "1e999")
    assert Graph.objects.count() == 0 and GraphVersion.objects.count() == 0


def test_a_run_with_a_learning_rate_of_1e999_is_refused(api, saved):
    text = json.dumps({"graph": saved["graph"], "dataset": "digits",
                       "config": {"lr": 1}}).replace('"lr": 1', '"lr": 1e999')
    before = stored()
    response = api.post("/api/jobs", text, content_type="application/json")
    assert_refused(response, "1e999")
    assert stored() == before


@pytest.mark.parametrize("where", ["name", "document name", "document description",
                                   "node id", "meta key"])
def test_a_lone_surrogate_is_refused_and_nothing_is_stored(api, mlp, where):
    body: dict[str, Any] = {"document": mlp}
    marker = "SURROGATE-HERE"
    if where == "name":
        body["name"] = marker
    elif where == "document name":
        mlp["name"] = marker
    elif where == "document description":
        mlp["description"] = marker
    elif where == "node id":
        mlp["nodes"][0]["id"] = marker
    else:
        mlp["meta"] = {marker: 1}
    text = json.dumps(body).replace(marker, "\\ud800")
    before = stored()
    response = api.post("/api/graphs", text, content_type="application/json")
    assert_refused(response, "lone surrogate", "U+D800")
    assert stored() == before


def test_a_lone_surrogate_is_refused_when_saving_and_renaming(api, saved, mlp):
    graph = saved["graph"]
    mlp["description"] = "LOW"
    before = stored()
    save = json.dumps({"document": mlp, "base_version": 1}).replace("LOW", "\\udc00")
    response = api.post(f"/api/graphs/{graph}/versions", save, content_type="application/json")
    assert_refused(response, "U+DC00")
    response = api.patch(f"/api/graphs/{graph}", '{"name": "a\\ud83d"}',
                         content_type="application/json")
    assert_refused(response, "U+D83D")
    assert stored() == before
    assert Graph.objects.get(id=graph).name != "a\ud83d"


def test_a_surrogate_pair_is_a_character_and_is_kept(api, mlp):
    mlp["name"] = "ship EMOJI"
    text = json.dumps({"document": mlp}).replace("EMOJI", "\\ud83d\\udea2")
    response = api.post("/api/graphs", text, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["name"] == "ship \U0001f6a2"


def test_an_escaped_backslash_before_ud800_is_plain_text(api, mlp):
    mlp["description"] = "a path like C:\\ud800"
    response = api.post("/api/graphs", {"document": mlp}, format="json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["version"]["document"]["description"] == "a path like C:\\ud800"


@pytest.mark.parametrize("value", ["²", "٣٣٣٣٣٣٣٣٣٣٣٣", "99999999999999999999", "2147483648",
                                   "-1", "1.5", "0x10", "1e3"])
def test_a_query_id_that_is_no_number_or_too_big_is_a_400(api, saved, value):
    job = saved["job"]
    for url in [f"/api/jobs?graph={value}", f"/api/jobs/{job}/metrics?since={value}",
                f"/api/graphs/{saved['graph']}/download?version={value}"]:
        response = api.get(url)
        assert_refused(response)
        assert "fields" in response.json(), url


def test_good_query_ids_still_work(api, saved):
    assert api.get(f"/api/jobs?graph={saved['graph']}").json()[0]["id"] == saved["job"]
    assert api.get("/api/jobs?graph=2147483647").json() == []
    assert api.get(f"/api/jobs/{saved['job']}/metrics?since=2147483647").status_code == 200


def test_the_account_page_ignores_a_revoke_id_that_is_no_number(user, password):
    client = Client()
    client.login(username=user.username, password=password)
    token, _ = issue_token(user=user)
    for value in ["²", "99999999999999999999", "abc"]:
        response = client.post("/accounts/", {"revoke": value}, follow=True)
        assert response.status_code == 200
        assert b"No such token" in response.content
    token.refresh_from_db()
    assert token.revoked_at is None


# Failures that are no one's input: an exception in a view.


def _boom(request: Any) -> Any:
    raise RuntimeError("a bug")


# This module is the URLconf of the tests marked `urls(__name__)`: the site's, and two more.
urlpatterns = [path("api/boom", _boom), path("boom", _boom), *site_urls.urlpatterns]
handler500 = site_urls.handler500


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_exception_under_api_is_a_json_500_whatever_debug_says(db, debug):
    with override_settings(DEBUG=debug):
        response = Client(raise_request_exception=False).get("/api/boom")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "failed" in response.json()["error"]
    assert "a bug" not in response.content.decode()  # no traceback, no message


@pytest.mark.urls(__name__)
def test_an_unhandled_exception_on_a_page_is_the_sites_own_500_page(db):
    response = Client(raise_request_exception=False).get("/boom")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page and "Shipyard" in page
    assert "a bug" not in page and "Traceback" not in page


def test_a_page_that_does_not_exist_is_the_sites_own_404_page(db):
    response = Client().get("/no/such/page")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Nothing here" in page and "⚓ Shipyard" in page
    assert "URLconf" not in page  # Django's debug page lists the URL patterns


def test_a_websocket_path_fetched_over_http_answers_json(db):
    response = Client().get("/ws/jobs/1/")
    assert response.status_code == 404
    assert response.json()["error"].startswith("no such endpoint")


def test_a_host_not_allowed_is_a_json_400_under_api_and_the_plain_page_elsewhere(db):
    response = Client().get("/api/blocks", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == {"error": "bad request"}
    page = Client().get("/", HTTP_HOST="evil.example")
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")
