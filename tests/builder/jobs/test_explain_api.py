"""What a run's model does to the data, through the API (docs/runs.md): the values on every
edge for the run's fixed validation example (GET /api/jobs/{id}/edges), and a character
model's next characters after a prompt (POST /api/jobs/{id}/next). Only the owner, or
anyone through a share link of a published run; 409 before there are weights; every bad
prompt is a 400 that names what is wrong.

The runs are written as a worker leaves one (a row, weights or a checkpoint in its
folder); they wait on queue gpu, which no worker serves here."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from typing import Any

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from openapi_check import assert_conforms
from rest_framework.test import APIClient

from compute.engine import compile_graph, load_starter
from compute.engine.datasets import dataset_for
from compute.engine.training import TrainConfig, make_optimizer, save_checkpoint, save_weights
from compute.jobs import explain
from compute.jobs.models import Job

GPU = {"device": "cuda", "steps": 10}


@pytest.fixture(autouse=True)
def _no_folders_left(db):
    """The runs' folders go with their rows: the rows are rolled back after each test and
    their ids given again, and a folder left behind would be the next run's."""
    yield
    for job in Job.objects.all():
        shutil.rmtree(job.folder, ignore_errors=True)


def new_graph(api: APIClient, starter: str) -> int:
    response = api.post("/api/graphs", {"starter": starter}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def queued(api: APIClient, starter: str, dataset: str | None, **body: Any) -> Job:
    """A run waiting on queue gpu; `dataset` None for a run on an upload (in `body`)."""
    given = {"dataset": dataset} if dataset is not None else {}
    response = api.post("/api/jobs", {"graph": new_graph(api, starter), **given,
                                      "time_limit": 60, "config": GPU, **body},
                        format="json")
    assert response.status_code == 201, response.content
    return Job.objects.get(id=response.json()["id"])


def trained(api: APIClient, starter: str = "char_gpt", dataset: str | None = "shakespeare",
            dead_relu: bool = False, **body: Any) -> Job:
    """A succeeded run of a starter with seeded weights in its folder; `dead_relu`: the
    mlp's first ReLU never fires (its Linear's bias far below any input)."""
    job = queued(api, starter, dataset, **body)
    model = compile_graph(load_starter(starter), seed=3)
    if dead_relu:
        torch.nn.init.constant_(model.get_submodule("hidden1").bias, -1000.0)  # type: ignore[arg-type]
    job.folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, job.folder / "model.safetensors")
    Job.objects.filter(id=job.id).update(status="succeeded", step=10,
                                         files={"weights": "model.safetensors"},
                                         finished_at=dt.datetime.now(dt.UTC))
    job.refresh_from_db()
    return job


@pytest.fixture
def gpt_run(api: APIClient) -> Job:
    return trained(api)


def next_of(client: APIClient, job: Job, prompt: Any, share: str = "", **meta: str) -> Any:
    query = f"?share={share}" if share else ""
    return client.post(f"/api/jobs/{job.id}/next{query}", {"prompt": prompt}, format="json",
                       **meta)


def test_a_dead_relu_shows_only_zeros_on_its_edge(api, openapi):
    job = trained(api, "mlp", "digits", dead_relu=True)
    response = api.get(f"/api/jobs/{job.id}/edges")
    assert response.status_code == 200, response.content
    body = response.json()
    assert_conforms(openapi, "/api/jobs/{job_id}/edges", "get", response)
    assert body["example"] == {"tokens": None, "weights": "final", "step": 10}
    edges = body["edges"]
    assert list(edges) == ["x.out", "hidden1.out", "act1.out", "hidden2.out", "act2.out",
                           "logits.out"]
    assert edges["act1.out"]["zeros"] == 1.0 and edges["act1.out"]["shape"] == [1, 128]
    assert edges["hidden1.out"]["zeros"] == 0.0 and edges["hidden1.out"]["mean"] < -900
    assert len(edges["x.out"]["histogram"]["counts"]) == 30


def test_a_text_runs_edges_come_with_the_examples_characters(api, gpt_run):
    body = api.get(f"/api/jobs/{gpt_run.id}/edges").json()
    tokens = body["example"]["tokens"]
    assert len(tokens) == 64 and all(len(t) == 1 for t in tokens)
    assert body["edges"]["head.out"]["shape"] == [1, 64, 128]


def test_next_gives_five_characters_and_where_each_head_looked(api, gpt_run, openapi):
    response = next_of(api, gpt_run, "ROMEO:\nWhat say")
    assert response.status_code == 200, response.content
    assert_conforms(openapi, "/api/jobs/{job_id}/next", "post", response)
    body = response.json()
    assert len(body["top"]) == 5 and sum(t["p"] for t in body["top"]) <= 1.0
    assert [t["p"] for t in body["top"]] == sorted((t["p"] for t in body["top"]),
                                                   reverse=True)
    assert body["prompt_used"] == "ROMEO:\nWhat say" and body["truncated"] is False
    heads = body["heads"]
    assert {(h["module"], h["head"]) for h in heads} == {  # the starter: 4 blocks of 4 heads
        (f"blocks.{b}.attn", h) for b in range(4) for h in range(4)}
    assert all(h["tokens"] == list("ROMEO:\nWhat say") for h in heads)


def test_a_run_on_an_uploaded_text_predicts_and_shows_the_uploads_example(api):
    text = "The tide came in over the stones and went out again. " * 40
    response = api.post("/api/uploads", {"file": SimpleUploadedFile("tide.txt", text.encode())},
                        format="multipart")
    assert response.status_code == 201, response.content
    job = trained(api, "char_gpt", upload=response.json()["id"], dataset=None)
    tokens = api.get(f"/api/jobs/{job.id}/edges").json()["example"]["tokens"]
    assert "".join(tokens) in text  # a window of the upload's held-out end
    assert len(next_of(api, job, "The tide").json()["top"]) == 5


def test_a_long_prompt_is_cut_to_the_models_context(api, gpt_run):
    body = next_of(api, gpt_run, "x" * 100 + "the end").json()
    assert body["truncated"] is True and body["context"] == 64
    assert body["prompt_used"] == ("x" * 100 + "the end")[-64:]


@pytest.mark.parametrize(("prompt", "says"), [
    (123, "a prompt is a string"),
    (None, "null"),
    (["a"], "a prompt is a string"),
    ({"a": 1}, "a prompt is a string"),
    ("", "blank"),
    ("x" * 10_001, "10000"),
    ("naïve café ☃", "'é', 'ï', '☃'"),
])
def test_hostile_prompts_are_refused_by_name(api, gpt_run, prompt, says):
    response = next_of(api, gpt_run, prompt)
    assert response.status_code == 400, response.content
    assert says in json.dumps(response.json(), ensure_ascii=False)


def test_unknown_characters_are_all_named(api, gpt_run):
    response = next_of(api, gpt_run, "naïve café ☃")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "'é'" in error and "'ï'" in error and "'☃'" in error


def test_a_model_that_is_not_a_text_model_has_no_next_character(api):
    job = trained(api, "mlp", "digits")
    response = next_of(api, job, "hello")
    assert response.status_code == 400
    assert "not" in response.json()["error"] and "character model" in response.json()["error"]


def test_a_run_without_weights_yet_is_409(api):
    job = queued(api, "char_gpt", "shakespeare")
    assert api.get(f"/api/jobs/{job.id}/edges").status_code == 409
    response = next_of(api, job, "hello")
    assert response.status_code == 409 and "no weights yet" in response.json()["error"]


@pytest.mark.parametrize("damage", ["cut in half", "not safetensors"])
def test_a_weights_file_that_cannot_be_read_is_409_saying_so(api, damage):
    job = trained(api, "mlp", "digits")
    path = job.folder / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "cut in half" else b"garbage" * 10)
    for response in (api.get(f"/api/jobs/{job.id}/edges"), next_of(api, job, "hello")):
        assert response.status_code == 409, response.content
        assert "weights cannot be loaded" in response.json()["error"]


def test_a_run_whose_weights_diverged_says_so_instead_of_failing(api):
    job = trained(api)
    model = compile_graph(load_starter("char_gpt"), seed=3)
    torch.nn.init.constant_(model.get_submodule("head").weight, float("nan"))  # type: ignore[arg-type]
    save_weights(model, job.folder / "model.safetensors")
    response = next_of(api, job, "hello")
    assert response.status_code == 409, response.content
    assert "weights diverged" in response.json()["error"]
    edges = api.get(f"/api/jobs/{job.id}/edges").json()["edges"]
    assert edges["head.out"]["mean"] is None and edges["head.out"]["nonfinite"] == 64 * 128


def test_a_running_run_answers_from_its_latest_checkpoint(api):
    job = queued(api, "mlp", "digits")
    model = compile_graph(load_starter("mlp"), seed=1)
    config = TrainConfig(steps=10)
    save_checkpoint(job.folder / "checkpoints" / "step-000005.safetensors", model,
                    make_optimizer(model, config), 5, config)
    Job.objects.filter(id=job.id).update(status="running", step=6)
    body = api.get(f"/api/jobs/{job.id}/edges").json()
    assert body["example"]["weights"] == "checkpoint" and body["example"]["step"] == 5
    example = dataset_for(model, "digits", seed=job.config["seed"]).x_val[:1]
    expected = model.get_submodule("hidden1")(example)
    assert body["edges"]["hidden1.out"]["mean"] == pytest.approx(expected.mean().item(),
                                                                 abs=1e-6)


def test_another_users_run_is_not_found(api, other_api, gpt_run):
    assert other_api.get(f"/api/jobs/{gpt_run.id}/edges").status_code == 404
    assert next_of(other_api, gpt_run, "hello").status_code == 404


def test_a_published_run_answers_through_a_share_link_only(api, anon, gpt_run):
    token = api.post(f"/api/graphs/{gpt_run.graph_id}/share", {}, format="json").json()["token"]
    assert anon.get(f"/api/jobs/{gpt_run.id}/edges?share={token}").status_code == 404
    api.patch(f"/api/jobs/{gpt_run.id}", {"published": True}, format="json")
    assert anon.get(f"/api/jobs/{gpt_run.id}/edges?share={token}").status_code == 200
    assert next_of(anon, gpt_run, "hello", share=token).status_code == 200
    assert anon.get(f"/api/jobs/{gpt_run.id}/edges").status_code == 404
    assert next_of(anon, gpt_run, "hello", share="nope").status_code == 404


def test_a_share_link_opens_only_its_graphs_published_runs_while_both_last(
        api, other_api, anon, gpt_run):
    # Every view of a run's model and data goes through the same door: another graph's
    # live link (one the visitor made himself) opens nothing, nor does a link once the
    # run is unpublished or the link revoked.
    Job.objects.filter(id=gpt_run.id).update(manifest={"name": "shakespeare"})
    api.patch(f"/api/jobs/{gpt_run.id}", {"published": True}, format="json")
    mine = other_api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    foreign = other_api.post(f"/api/graphs/{mine}/share", {}, format="json").json()["token"]
    link = api.post(f"/api/graphs/{gpt_run.graph_id}/share", {}, format="json").json()

    def statuses(client: APIClient, token: str) -> list[int]:
        job = gpt_run.id
        return [client.get(f"/api/jobs/{job}/edges?share={token}").status_code,
                next_of(client, gpt_run, "hello", share=token).status_code,
                client.get(f"/api/jobs/{job}/manifest?share={token}").status_code,
                client.get(f"/api/jobs/{job}/card?share={token}").status_code,
                client.get(f"/api/shared/{token}/jobs/{job}/manifest").status_code,
                client.get(f"/api/shared/{token}/jobs/{job}/card").status_code]

    assert statuses(anon, link["token"]) == [200] * 6
    assert statuses(anon, foreign) == [404] * 6
    assert statuses(other_api, foreign) == [404] * 6
    api.patch(f"/api/jobs/{gpt_run.id}", {"published": False}, format="json")
    assert statuses(anon, link["token"]) == [404] * 6
    api.patch(f"/api/jobs/{gpt_run.id}", {"published": True}, format="json")
    api.delete(f"/api/graphs/{gpt_run.graph_id}/share/{link['id']}")
    assert statuses(anon, link["token"]) == [404] * 6


def test_the_loaded_model_is_kept_until_its_weights_change(api, gpt_run):
    first = explain.loaded(gpt_run)
    assert explain.loaded(gpt_run) is first
    path = gpt_run.folder / "model.safetensors"
    save_weights(compile_graph(load_starter("char_gpt"), seed=4), path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = explain.loaded(gpt_run)
    assert again is not first
    assert not torch.equal(again.model.state_dict()["head.weight"],
                           first.model.state_dict()["head.weight"])


def test_a_share_links_visitors_are_counted_per_address(api, anon, gpt_run, settings):
    # Running the model for anyone with the link is engine work like inspection: a visitor
    # without an account is limited per address (SHIPYARD_ANON_INSPECT_RATE); the owner not.
    token = api.post(f"/api/graphs/{gpt_run.graph_id}/share", {}, format="json").json()["token"]
    api.patch(f"/api/jobs/{gpt_run.id}", {"published": True}, format="json")
    settings.SHIPYARD_ANON_INSPECT_RATE = "2/minute"
    here = {"REMOTE_ADDR": "198.51.100.77"}
    assert anon.get(f"/api/jobs/{gpt_run.id}/edges?share={token}", **here).status_code == 200
    assert next_of(anon, gpt_run, "hello", share=token, **here).status_code == 200
    assert next_of(anon, gpt_run, "hello", share=token, **here).status_code == 429
    assert anon.post(f"/api/shared/{token}/sql", {"sql": "SELECT 1"}, format="json",
                     **here).status_code == 429
    for _ in range(3):
        assert next_of(api, gpt_run, "hello", **here).status_code == 200
