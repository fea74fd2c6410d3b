"""The guided paths over HTTP: listed and served to anyone, a step checked on a document,
and each user's own progress, kept and validated."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_check import assert_conforms
from rest_framework.test import APIClient

from compute.engine import FORMAT
from compute.engine.paths import load_path


def _solution(name: str, step_id: str) -> dict[str, Any]:
    return next(s["solution"] for s in load_path(name)["steps"] if s["id"] == step_id)


def test_anyone_can_list_the_paths(anon: APIClient) -> None:
    response = anon.get("/api/paths")
    assert response.status_code == 200
    listed = response.json()
    assert [p["name"] for p in listed] == ["gpt", "digits"]
    gpt = listed[0]
    assert gpt["title"] == "Build a GPT from scratch" and gpt["dataset"] == "shakespeare"
    assert gpt["steps"] == len(load_path("gpt")["steps"]) and gpt["summary"]


def test_anyone_can_read_a_path_with_its_steps_and_solutions(anon: APIClient) -> None:
    response = anon.get("/api/paths/digits")
    assert response.status_code == 200
    body = response.json()
    assert body == load_path("digits")
    first = body["steps"][0]
    assert set(first) == {"id", "title", "text", "task", "check", "solution"}
    assert first["solution"]["format"] == FORMAT


def test_an_unknown_path_is_a_json_404(anon: APIClient, api: APIClient) -> None:
    response = anon.get("/api/paths/nope")
    assert response.status_code == 404 and "no path named 'nope'" in response.json()["error"]
    assert api.get("/api/paths/nope/progress").status_code == 404
    assert api.put("/api/paths/nope/progress", {"done": []}, format="json").status_code == 404
    long = "x" * 5000
    response = anon.get(f"/api/paths/{long}")
    assert response.status_code == 404 and len(response.json()["error"]) < 300


def test_a_step_checks_the_document_it_is_sent(api: APIClient) -> None:
    url = "/api/paths/gpt/steps/embedding/check"
    passed = api.post(url, _solution("gpt", "embedding"), format="json")
    assert passed.status_code == 200 and passed.json()["passed"] is True
    small = _solution("gpt", "embedding")
    next(n for n in small["nodes"] if n["id"] == "wte")["params"]["num_embeddings"] = 64
    failed = api.post(url, small, format="json")
    assert failed.status_code == 200
    assert failed.json() == {"passed": False, "node": "wte", "message": (
        "The Embedding 'wte' has 64 rows but the characters are ids from 0 to 127: set "
        "num_embeddings to 128.")}
    before = api.post(url, _solution("gpt", "tokens"), format="json").json()
    assert before["passed"] is False and "Embedding" in before["message"]


def test_a_check_takes_a_json_object_only(api: APIClient) -> None:
    url = "/api/paths/gpt/steps/tokens/check"
    bodies: list[Any] = [[], "text", 3, [{"nodes": []}]]
    for body in bodies:
        response = api.post(url, body, format="json")
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert api.post(url, "{not json", content_type="application/json").status_code == 400
    strange = api.post(url, {"nodes": "many", "edges": {}}, format="json")
    assert strange.status_code == 200 and strange.json()["passed"] is False


def test_checking_an_unknown_path_or_step_is_a_404(api: APIClient) -> None:
    document = _solution("gpt", "tokens")
    assert api.post("/api/paths/nope/steps/tokens/check", document,
                    format="json").status_code == 404
    response = api.post("/api/paths/gpt/steps/nope/check", document, format="json")
    assert response.status_code == 404 and "no step 'nope'" in response.json()["error"]


def test_progress_is_for_signed_in_users_only(anon: APIClient) -> None:
    assert anon.get("/api/paths/gpt/progress").status_code == 401
    assert anon.put("/api/paths/gpt/progress", {"done": ["tokens"]},
                    format="json").status_code == 401


def test_progress_round_trips_and_starts_empty(api: APIClient) -> None:
    empty = api.get("/api/paths/gpt/progress")
    assert empty.status_code == 200
    assert empty.json() == {"path": "gpt", "done": [], "current": None, "updated_at": None}
    saved = api.put("/api/paths/gpt/progress",
                    {"done": ["tokens", "embedding"], "current": "positions"}, format="json")
    assert saved.status_code == 200
    body = saved.json()
    assert body["done"] == ["tokens", "embedding"] and body["current"] == "positions"
    assert body["updated_at"]
    assert api.get("/api/paths/gpt/progress").json() == body
    again = api.put("/api/paths/gpt/progress", {"done": ["tokens"], "current": None},
                    format="json").json()
    assert again["done"] == ["tokens"] and again["current"] is None
    assert api.get("/api/paths/digits/progress").json()["done"] == []


@pytest.mark.parametrize(("body", "named"), [
    ({"done": ["tokens", "nope"]}, "'nope'"),
    ({"done": ["tokens", "tokens"]}, "'tokens' is listed twice"),
    ({"done": "tokens"}, "done must be a list"),
    ({"done": [1]}, "strings"),
    ({"done": [["tokens"]]}, "strings"),
    ({"done": ["x"] * 1000}, "the path has 12"),
    ({"current": "nope"}, "'nope'"),
    ({"current": 3}, "not a string"),
    ({"done": [], "owner": 2}, "'owner'"),
    (["tokens"], "send {"),
    ("tokens", "send {"),
])
def test_bad_progress_is_refused_naming_what_is_wrong(api: APIClient, body: Any,
                                                      named: str) -> None:
    response = api.put("/api/paths/gpt/progress", body, format="json")
    assert response.status_code == 400, response.content
    assert named in response.json()["error"]
    assert api.get("/api/paths/gpt/progress").json()["updated_at"] is None


def test_a_long_bad_step_id_is_cut_in_the_message(api: APIClient) -> None:
    response = api.put("/api/paths/gpt/progress", {"current": "y" * 10_000}, format="json")
    assert response.status_code == 400 and len(response.json()["error"]) < 300


def test_no_user_sees_anothers_progress(api: APIClient, other_api: APIClient) -> None:
    api.put("/api/paths/gpt/progress", {"done": ["tokens"], "current": "embedding"},
            format="json")
    theirs = other_api.get("/api/paths/gpt/progress").json()
    assert theirs["done"] == [] and theirs["current"] is None
    other_api.put("/api/paths/gpt/progress", {"done": [], "current": "tokens"}, format="json")
    mine = api.get("/api/paths/gpt/progress").json()
    assert mine["done"] == ["tokens"] and mine["current"] == "embedding"


def test_the_paths_responses_fit_the_schema(api: APIClient, anon: APIClient,
                                            openapi: dict[str, Any]) -> None:
    assert_conforms(openapi, "/api/paths", "get", anon.get("/api/paths"))
    for name in ("gpt", "digits"):
        assert_conforms(openapi, "/api/paths/{name}", "get", anon.get(f"/api/paths/{name}"))
    check = "/api/paths/{name}/steps/{step_id}/check"
    for document in (_solution("gpt", "head"), _solution("gpt", "tokens")):
        response = api.post("/api/paths/gpt/steps/head/check", document, format="json")
        assert_conforms(openapi, check, "post", response)
    progress = "/api/paths/{name}/progress"
    assert_conforms(openapi, progress, "get", api.get("/api/paths/gpt/progress"))
    saved = api.put("/api/paths/gpt/progress", {"done": ["tokens"], "current": "embedding"},
                    format="json")
    assert_conforms(openapi, progress, "put", saved)
    assert_conforms(openapi, progress, "get", api.get("/api/paths/gpt/progress"))


def test_a_visitor_checks_a_step_within_the_visitors_limit(anon: APIClient, settings,
                                                           openapi: dict[str, Any]) -> None:
    # The guided path is for visitors too; its checks are inspection's work and count with it.
    settings.SHIPYARD_ANON_INSPECT_RATE = "2/minute"
    here = {"REMOTE_ADDR": "198.51.100.40"}
    solution = _solution("gpt", "tokens")
    url = "/api/paths/gpt/steps/tokens/check"
    assert anon.post(url, solution, format="json", **here).json()["passed"] is True
    assert anon.post("/api/inspect", solution, format="json", **here).status_code == 200
    refused = anon.post(url, solution, format="json", **here)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused.json()["retry_after"] == int(refused["Retry-After"])
    documented = openapi["paths"]["/api/paths/{name}/steps/{step_id}/check"]["post"]
    assert "429" in documented["responses"]
