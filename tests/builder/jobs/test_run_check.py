"""POST /api/jobs/check: the run form's live check. It runs POST /api/jobs's checks on an
unsaved document or a saved version, answers 200 with `ok` and the problems, stores
nothing, and refuses a body that is not a check's with a 400."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openapi_check import assert_conforms
from rest_framework.test import APIClient

from builder.graphs.models import Graph, GraphVersion
from compute.engine import load_starter
from compute.engine.estimate import CPU_SECONDS_PER_RUN
from compute.jobs.models import Job, Upload

pytestmark = pytest.mark.django_db


def check(api: APIClient, **body: Any) -> Any:
    return api.post("/api/jobs/check", body, format="json")


def mlp(**changes: dict[str, Any]) -> dict[str, Any]:
    """The mlp starter with some nodes' params changed: {node id: params}."""
    document = copy.deepcopy(load_starter("mlp"))
    for n in document["nodes"]:
        n.setdefault("params", {}).update(changes.get(n["id"], {}))
    return document


def nothing_stored() -> bool:
    return not (Job.objects.exists() or Graph.objects.exists()
                or GraphVersion.objects.exists() or Upload.objects.exists())


def test_a_run_that_can_start_is_ok_with_its_queue_and_cpu_estimate(
        api: APIClient, openapi: dict[str, Any]) -> None:
    response = check(api, document=mlp(), dataset="digits", config={"steps": 100})
    assert response.status_code == 200, response.content
    assert_conforms(openapi, "/api/jobs/check", "post", response)
    body = response.json()
    assert body["ok"] is True and body["problems"] == [] and body["error"] is None
    assert body["queue"] == "cpu"
    assert CPU_SECONDS_PER_RUN < body["cpu_seconds"] < 60  # a small MLP: seconds
    gpt = check(api, document=load_starter("char_gpt"), dataset="harbour",
                config={"device": "cuda"}).json()
    assert gpt["ok"] and gpt["queue"] == "gpu" and gpt["cpu_seconds"] > 180
    assert nothing_stored()


def test_an_input_the_dataset_cannot_feed_is_named(api: APIClient) -> None:
    body = check(api, document=mlp(x={"shape": [32]}), dataset="digits").json()
    assert body["ok"] is False
    assert body["error"] == ("digits does not fit this graph: digits gives float32 [B, 64], "
                             "but Input 'x' expects float32 [B, 32]")
    assert body["problems"] == [{"field": "dataset", "node": None, "message":
                                 "digits gives float32 [B, 64], but Input 'x' expects "
                                 "float32 [B, 32]"}]
    assert body["queue"] is None and body["cpu_seconds"] is None
    assert nothing_stored()


def test_an_output_that_does_not_match_the_classes_says_how_to_fix_it(
        api: APIClient) -> None:
    body = check(api, document=mlp(logits={"out_features": 64}), dataset="digits").json()
    assert body["ok"] is False
    assert [p["message"] for p in body["problems"]] == [
        "the model outputs 64 classes, but digits has 10: make the last Linear ('logits') "
        "10 wide (out_features 10)"]
    assert nothing_stored()


def test_bad_settings_are_problems_naming_each_setting(api: APIClient) -> None:
    body = check(api, document=mlp(), dataset="digits",
                 config={"steps": 0, "lr": "0.01"}).json()
    assert body["ok"] is False
    assert [p["field"] for p in body["problems"]] == ["config.steps", "config.lr"]
    assert body["error"] == body["problems"][0]["message"]
    assert nothing_stored()


def test_an_invalid_graph_and_a_bad_dataset_are_problems_too(api: APIClient) -> None:
    invalid = check(api, document=mlp(logits={"out_features": 0}), dataset="digits").json()
    assert invalid["ok"] is False and invalid["error"] == "the graph is not valid; see problems"
    assert invalid["problems"][0]["node"] == "logits"
    assert invalid["problems"][0]["field"] == "out_features"
    unknown = check(api, document=mlp(), dataset="nope").json()
    assert unknown["problems"][0]["field"] == "dataset"
    assert unknown["problems"][0]["message"].startswith("no dataset named 'nope'")
    options = check(api, document=mlp(), dataset="modadd",
                    dataset_options={"modulus": 10**9}).json()
    assert options["ok"] is False and options["problems"][0]["field"] == "dataset_options"
    limit = check(api, document=mlp(), dataset="digits", time_limit=5).json()
    assert limit["problems"][0]["field"] == "time_limit"
    assert nothing_stored()


def test_a_saved_version_is_checked_like_a_submission(api: APIClient) -> None:
    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    fits = check(api, graph=graph, dataset="digits").json()
    assert fits["ok"] is True
    misfit = check(api, graph=graph, version=1, dataset="spirals").json()
    submitted = api.post("/api/jobs", {"graph": graph, "dataset": "spirals"}, format="json")
    assert submitted.status_code == 400
    assert misfit["error"] == submitted.json()["error"]  # one check, the same words
    assert [p["message"] for p in misfit["problems"]] == submitted.json()["problems"]
    assert check(api, graph=graph, version=9, dataset="digits").status_code == 404
    assert not Job.objects.exists()


def test_an_upload_is_checked_and_another_users_is_not_found(
        api: APIClient, other_api: APIClient) -> None:
    csv = "a,b,label\n" + "".join(f"{i % 7},{i % 5},{'yes' if i % 2 else 'no'}\n"
                                  for i in range(40))
    made = api.post("/api/uploads", {"file": SimpleUploadedFile("p.csv", csv.encode())},
                    format="multipart").json()
    body = check(api, document=mlp(), upload=made["id"]).json()
    assert body["ok"] is False and body["problems"][0]["field"] == "upload"
    fits = check(api, document=mlp(x={"shape": [2]}, logits={"out_features": 2}),
                 upload=made["id"]).json()
    assert fits["ok"] is True, fits
    assert check(other_api, document=mlp(), upload=made["id"]).status_code == 404
    assert not Job.objects.exists()


@pytest.mark.parametrize("body", [
    {},
    {"document": {}, "graph": 1, "dataset": "digits"},
    {"dataset": "digits"},
    {"document": [], "dataset": "digits"},
    {"document": "/etc/passwd", "dataset": "digits"},
    {"document": 7, "dataset": "digits"},
    {"document": None, "dataset": "digits"},
    {"document": {"format": "shipyard.graph/v1"}, "dataset": "digits", "upload": 1},
    {"document": {}, "dataset": ["digits"]},
    {"document": {}, "dataset": "digits", "config": "steps=1"},
    {"document": {}, "dataset": "digits", "dataset_options": [1]},
    {"document": {}, "dataset": "digits", "time_limit": "soon"},
    {"document": {}, "dataset": "digits", "version": 1},
    {"graph": "one", "dataset": "digits"},
    {"graph": 2**40, "dataset": "digits"},
])
def test_a_body_that_is_not_a_check_is_a_400(api: APIClient, body: dict[str, Any]) -> None:
    response = check(api, **body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert nothing_stored()


@pytest.mark.parametrize("document", [
    {},
    {"format": "shipyard.graph/v1", "nodes": "many", "edges": []},
    {"format": "shipyard.graph/v1", "nodes": [{"id": "x", "type": "Input",
                                               "params": {"shape": [2**40]}}], "edges": []},
    {"format": "shipyard.graph/v1", "nodes": [{"id": "x", "type": "Input",
                                               "params": {"shape": [64]}},
                                              {"id": "r", "type": "Repeat",
                                               "params": {"times": 10**9}}], "edges": []},
])
def test_a_hostile_document_is_a_problem_not_a_failure(api: APIClient,
                                                       document: dict[str, Any]) -> None:
    response = check(api, document=document, dataset="digits")
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is False and response.json()["problems"]
    assert nothing_stored()


def test_a_json_body_that_is_not_an_object_or_too_deep_is_a_400(api: APIClient) -> None:
    assert api.post("/api/jobs/check", "[1]", content_type="application/json").status_code == 400
    deep = '{"document": ' + "[" * 200 + "]" * 200 + ', "dataset": "digits"}'
    assert api.post("/api/jobs/check", deep, content_type="application/json").status_code == 400


def test_a_body_over_the_limit_is_a_413(api: APIClient, settings: Any) -> None:
    big = {"document": mlp(), "dataset": "digits"}
    big["document"]["description"] = "x" * (settings.SHIPYARD_MAX_REQUEST_BYTES + 10)
    assert check(api, **big).status_code == 413


def test_anonymous_callers_are_refused(anon: APIClient) -> None:
    assert check(anon, document=mlp(), dataset="digits").status_code == 401
