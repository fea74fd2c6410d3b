"""The runs' bodies fit their OpenAPI components strictly (see openapi_check): a run
queued, running and ended, every kind of event, datasets and uploads. No worker runs here:
the run waits in Redis and its later states are written as a worker would write them."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, get_args, get_type_hints

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from openapi_check import assert_conforms, validator
from rest_framework.test import APIClient

from builder.graphs.schema import ref
from compute.engine.datasets import DatasetListing
from compute.jobs import events
from compute.jobs.models import Job, JobEvent
from compute.jobs.schema import JobBody, UploadBody

pytestmark = pytest.mark.usefixtures("redis")


def test_runs_and_their_events_fit_the_schema(api: APIClient, anon: APIClient,
                                              openapi: dict[str, Any]) -> None:
    graph = api.post("/api/graphs", {"starter": "char_gpt"}, format="json").json()["id"]
    created = api.post("/api/jobs", {"graph": graph, "dataset": "harbour",
                                     "config": {"device": "cuda", "steps": 10}}, format="json")
    assert created.status_code == 201, created.content
    assert_conforms(openapi, "/api/jobs", "post", created)
    job_id = created.json()["id"]
    assert created.json()["position"] == 1 and created.json()["started_at"] is None

    now = dt.datetime.now(dt.UTC)
    Job.objects.filter(id=job_id).update(
        status=Job.Status.RUNNING, attempts=1, device="cpu", worker="w@host", started_at=now,
        heartbeat_at=now, step=10, metrics={"train_loss": 2.5})
    job = Job.objects.get(id=job_id)
    events.store(job_id, [
        events.status_event(job),
        events.metric_event(10, "train_loss", 2.5),
        events.attention_event(10, "blocks.0.attn", torch.rand(2, 3, 3).softmax(-1)),
        # A Softmax block of a head built from parts: one head, under its node's path.
        events.attention_event(10, "blocks.0.weights", torch.rand(1, 3, 3).softmax(-1),
                               ["a", " ", "\n"]),
        events.sample_event(10, "the tide"),
        *(events.metric_event(10, name, value) for name, value in (
            ("val_loss", math.nan), ("grad_norm", math.inf), ("lr", -math.inf))),
    ])
    running = api.get(f"/api/jobs/{job_id}")
    assert running.json()["position"] is None
    assert_conforms(openapi, "/api/jobs/{job_id}", "get", running)
    page = api.get(f"/api/jobs/{job_id}/metrics")
    assert {e["type"] for e in page.json()["events"]} == {"status", "metric", "attention",
                                                          "sample"}
    assert_conforms(openapi, "/api/jobs/{job_id}/metrics", "get", page)
    assert [e["nonfinite"] for e in page.json()["events"] if "nonfinite" in e] == [
        "nan", "inf", "-inf"]
    each_event = validator(openapi, ref("JobEvent"))
    for event in page.json()["events"]:  # each fits the schema its `type` names, only that
        each_event.validate(event)
        mapping = openapi["components"]["schemas"]["JobEvent"]["discriminator"]["mapping"]
        for type_, target in mapping.items():
            assert validator(openapi, {"$ref": target}).is_valid(event) == (
                type_ == event["type"]), (type_, event)
        assert not each_event.is_valid({**event, "type": "other"})
    status = page.json()["events"][0]
    assert not each_event.is_valid({**status, "type": "sample"})  # a sample has no status
    attention = api.get(f"/api/jobs/{job_id}/attention")
    assert {(e["node"], e["heads"]) for e in attention.json()["events"]} == {
        ("blocks.0.attn", 2), ("blocks.0.weights", 1)}
    # Tokens come back as stored; an event without them (as before they existed) has none.
    assert {e["node"]: e.get("tokens") for e in attention.json()["events"]} == {
        "blocks.0.attn": None, "blocks.0.weights": ["a", " ", "\n"]}
    assert_conforms(openapi, "/api/jobs/{job_id}/attention", "get", attention)

    Job.objects.filter(id=job_id).update(
        status=Job.Status.SUCCEEDED, finished_at=now,
        files={"weights": "model.safetensors", "onnx_error": "no ONNX here"})
    published = api.patch(f"/api/jobs/{job_id}", {"published": True}, format="json")
    assert published.json()["downloads"] == ["weights"]
    assert_conforms(openapi, "/api/jobs/{job_id}", "patch", published)
    assert_conforms(openapi, "/api/jobs", "get", api.get("/api/jobs"))
    token = api.post(f"/api/graphs/{graph}/share", {}, format="json").json()["token"]
    shared = anon.get(f"/api/shared/{token}/jobs")
    assert len(shared.json()) == 1
    assert_conforms(openapi, "/api/shared/{token}/jobs", "get", shared)


def test_datasets_and_uploads_fit_the_schema(api: APIClient, anon: APIClient,
                                             openapi: dict[str, Any]) -> None:
    assert_conforms(openapi, "/api/datasets", "get", anon.get("/api/datasets"))
    kinds = anon.get("/api/run-kinds")
    assert_conforms(openapi, "/api/run-kinds", "get", kinds)
    # The editor's tests read the served run kind from the document's example.
    assert openapi["components"]["schemas"]["RunKind"]["example"] == kinds.json()[0]
    csv = "a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(20))
    for name, content in (("points.csv", csv), ("tide.txt", "The tide came in. " * 40)):
        created = api.post("/api/uploads", {"file": SimpleUploadedFile(name, content.encode())},
                           format="multipart")
        assert created.status_code == 201, created.content
        assert_conforms(openapi, "/api/uploads", "post", created)
    assert_conforms(openapi, "/api/uploads", "get", api.get("/api/uploads"))


@pytest.mark.parametrize(("component", "body"), [
    ("Job", JobBody), ("Upload", UploadBody), ("Dataset", DatasetListing)])
def test_the_typed_bodies_and_their_schemas_agree(openapi: dict[str, Any], component: str,
                                                   body: type) -> None:
    # These schemas are written by hand (descriptions, enums); the TypedDicts type the code
    # that makes the bodies. Neither may gain or lose a member alone.
    schema = openapi["components"]["schemas"][component]
    assert list(schema["properties"]) == list(get_type_hints(body))
    assert set(schema["required"]) == body.__required_keys__


def test_the_event_types_are_the_stored_ones() -> None:
    assert list(events.EVENT_TYPES) == JobEvent.Type.values
    status = get_type_hints(events.StatusEvent)["status"]
    assert list(get_args(status)) == Job.Status.values


def test_a_sample_holding_a_nul_character_is_stored_showing_it(api: APIClient) -> None:
    # A char model may write NUL, one of its 128 characters; PostgreSQL's JSON cannot hold
    # one, and the batch it refused was tried again until the run stopped as unstorable.
    graph = api.post("/api/graphs", {"starter": "char_gpt"}, format="json").json()["id"]
    job_id = api.post("/api/jobs", {"graph": graph, "dataset": "harbour",
                                    "config": {"device": "cuda", "steps": 10}},
                      format="json").json()["id"]
    events.store(job_id, [events.sample_event(10, "the\x00tide")])
    page = api.get(f"/api/jobs/{job_id}/metrics", {"types": "sample"}).json()
    assert [e["text"] for e in page["events"]] == ["the\u2400tide"]
