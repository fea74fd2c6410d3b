"""Starting runs over the API: everything is checked before anything is queued, each
problem is named, quotas hold, and a run is only ever seen by its owner (or, published,
by whoever has a share link of its graph). No worker runs here: the runs wait in Redis."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
import torch
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from builder.asgi import application
from compute.engine.training import TrainConfig, make_optimizer
from compute.jobs import events
from compute.jobs.models import Job, JobEvent

pytestmark = pytest.mark.usefixtures("redis")
GPU = {"device": "cuda"}  # queue gpu: no worker serves it here, so runs stay queued


def new_graph(api: APIClient, starter: str = "mlp") -> int:
    response = api.post("/api/graphs", {"starter": starter}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def post_job(api: APIClient, **body: Any) -> Any:
    body.setdefault("config", GPU)
    return api.post("/api/jobs", body, format="json")


def test_a_run_is_queued_at_once_with_its_complete_config(api: APIClient) -> None:
    graph = new_graph(api)
    response = post_job(api, graph=graph, dataset="digits",
                        config={"steps": 100, "lr": 0.01, "device": "cuda"})
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "queued" and job["queue"] == "gpu" and job["position"] == 1
    assert job["config"]["steps"] == 100 and job["config"]["min_lr"] == pytest.approx(0.001)
    assert job["config"]["optimizer"] == "adamw"  # defaults fill the rest
    assert job["version"] == 1 and job["total_steps"] == 100 and job["attempts"] == 0
    assert [j["id"] for j in api.get("/api/jobs", {"graph": graph}).json()] == [job["id"]]
    events = api.get(f"/api/jobs/{job['id']}/metrics").json()
    assert [e["status"] for e in events["events"]] == ["queued"] and events["last_seq"] == 1


def test_a_browser_session_starts_a_run_like_a_token_does(api: APIClient, user: Any,
                                                         password: str) -> None:
    """The editor calls the API with the login session and a CSRF token, not a token."""
    from django.test import Client

    graph = new_graph(api)
    browser = Client(enforce_csrf_checks=True)
    browser.login(username=user.username, password=password)
    browser.get("/")  # sets the csrftoken cookie, as the editor's page does
    response = browser.post("/api/jobs", {"graph": graph, "dataset": "digits", "config": GPU},
                            content_type="application/json",
                            headers={"X-CSRFToken": browser.cookies["csrftoken"].value})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"


@pytest.mark.parametrize(("body", "message"), [
    ({"dataset": "mnist"}, "no dataset named 'mnist'; datasets: digits"),
    ({"dataset": "digits", "config": {"stpes": 10}}, "config has no setting 'stpes'"),
    ({"dataset": "digits", "config": {"steps": "many"}},
     "config.steps must be a whole number, got 'many'"),
    ({"dataset": "digits", "config": {"steps": 0}},
     "config.steps must be at least 1 and at most 100,000, got 0"),
    ({"dataset": "digits", "config": {"steps": 10**9}},
     "config.steps must be at least 1 and at most 100,000, got 1000000000"),
    ({"dataset": "digits", "config": {"lr": 0.1, "min_lr": 0.5}},
     "config.min_lr must be at most lr (0.1), got 0.5"),
    ({"dataset": "digits", "config": {"optimizer": "adam"}}, "optimizer must be adamw or sgd"),
    ({"dataset": "digits", "config": {"steps": 1000, "attention_interval": 1}},
     "would keep 1000 attention snapshots; the most is 64"),
    ({"dataset": "modadd", "dataset_options": {"modulo": 7}}, "modadd has no option 'modulo'"),
    ({"dataset": "digits", "time_limit": 5}, "time_limit must be between 10 and"),
])
def test_a_bad_run_is_refused_naming_what_is_wrong(api: APIClient, body: dict[str, Any],
                                                  message: str) -> None:
    graph = new_graph(api)
    response = post_job(api, graph=graph, **body)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert not Job.objects.exists()


def test_a_long_run_keeps_at_most_64_attention_snapshots_by_default(api: APIClient) -> None:
    response = post_job(api, graph=new_graph(api), dataset="digits",
                        config={"steps": 10_000, "eval_interval": 50, "device": "cuda"})
    assert response.status_code == 201
    assert response.json()["config"]["attention_interval"] == 200  # every 4th evaluation
    assert response.json()["config"]["checkpoint_interval"] == 50


def test_a_dataset_that_does_not_fit_the_graph_is_refused_with_what_does_not_fit(
        api: APIClient) -> None:
    graph = new_graph(api, "cnn")  # takes [B, 1, 8, 8] digits; text gives int64 tokens
    response = post_job(api, graph=graph, dataset="harbour")
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("harbour does not fit this graph")
    assert any("Input" in p for p in body["problems"])
    assert not Job.objects.exists()


def test_runs_need_a_dataset_or_an_upload_but_not_both(api: APIClient) -> None:
    graph = new_graph(api)
    assert post_job(api, graph=graph).status_code == 400
    assert post_job(api, graph=graph, dataset="digits", upload=1).status_code == 400


def test_another_users_graph_and_runs_are_not_found(api: APIClient,
                                                    other_api: APIClient) -> None:
    graph = new_graph(api)
    job = post_job(api, graph=graph, dataset="digits").json()
    assert post_job(other_api, graph=graph, dataset="digits").status_code == 404
    for path in ("", "/metrics", "/attention", "/download"):
        assert other_api.get(f"/api/jobs/{job['id']}{path}").status_code == 404
    assert other_api.post(f"/api/jobs/{job['id']}/cancel").status_code == 404
    assert other_api.get("/api/jobs").json() == []
    assert Job.objects.get(id=job["id"]).status == "queued"


def test_the_queue_quota_refuses_more_runs_with_429(api: APIClient, settings: Any) -> None:
    settings.JOB_MAX_QUEUED_PER_USER = 2
    graph = new_graph(api)
    for _ in range(2):
        assert post_job(api, graph=graph, dataset="digits").status_code == 201
    response = post_job(api, graph=graph, dataset="digits")
    assert response.status_code == 429
    assert "you have 2 runs waiting in the queue, the most allowed" in response.json()["error"]
    first = Job.objects.order_by("id").first()
    assert first is not None
    api.post(f"/api/jobs/{first.id}/cancel")  # a place frees up
    assert post_job(api, graph=graph, dataset="digits").status_code == 201


def test_positions_count_the_runs_ahead_in_the_same_queue(api: APIClient,
                                                          other_api: APIClient) -> None:
    graph, theirs = new_graph(api), new_graph(other_api)
    first = post_job(api, graph=graph, dataset="digits").json()
    post_job(other_api, graph=theirs, dataset="digits")
    third = post_job(api, graph=graph, dataset="digits").json()
    assert first["position"] == 1 and third["position"] == 3
    api.post(f"/api/jobs/{first['id']}/cancel")
    assert api.get(f"/api/jobs/{third['id']}").json()["position"] == 2


def test_a_run_without_results_says_why_there_is_nothing_to_download(
        api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    response = api.get(f"/api/jobs/{job['id']}/download", {"format": "onnx"})
    assert response.status_code == 404
    assert "has no onnx file: the run has not ended" in response.json()["error"]
    assert api.get(f"/api/jobs/{job['id']}/download",
                   {"format": "zip"}).status_code == 400


def test_backfill_rejects_a_bad_sequence_number_or_type(api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    assert api.get(f"/api/jobs/{job['id']}/metrics", {"since": "x"}).status_code == 400
    response = api.get(f"/api/jobs/{job['id']}/metrics", {"types": "metric,bogus"})
    assert response.status_code == 400 and "bogus" in response.json()["error"]
    assert api.get(f"/api/jobs/{job['id']}/metrics", {"since": 1}).json()["events"] == []


def test_the_built_in_datasets_are_listed_for_anyone(anon: APIClient) -> None:
    kinds = {d["name"]: d["kind"] for d in anon.get("/api/datasets").json()}
    assert {"digits", "moons", "spirals", "copy", "reverse", "sort", "modadd",
            "harbour"} <= set(kinds)
    assert (kinds["digits"], kinds["moons"], kinds["copy"], kinds["harbour"]) == (
        "image", "points", "tokens", "text")



def test_each_built_in_dataset_says_where_it_comes_from_and_its_licence(anon: APIClient) -> None:
    listed = {d["name"]: d for d in anon.get("/api/datasets").json()}
    assert listed["shakespeare"]["licence"].lower().startswith("public domain")
    assert "tinyshakespeare" in listed["shakespeare"]["source"]
    assert listed["digits"]["licence"] == "CC-BY-4.0"
    assert all(d["source"] and d["licence"] for d in listed.values())


# Uploads

CSV = "a,b,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}\n"
                              for i in range(40))


def upload(api: APIClient, name: str, content: bytes, **fields: str) -> Any:
    return api.post("/api/uploads", {"file": SimpleUploadedFile(name, content), **fields},
                    format="multipart")


def test_a_csv_upload_is_read_as_a_run_would_and_trains_a_matching_graph(
        api: APIClient) -> None:
    response = upload(api, "points.csv", CSV.encode())
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["kind"] == "csv" and data["summary"] == "40 rows, 2 features, 2 classes"
    document = api.get(f"/api/graphs/{new_graph(api)}").json()["version"]["document"]
    nodes = {n["id"]: n for n in document["nodes"]}
    nodes["x"]["params"]["shape"] = [2]
    nodes["logits"]["params"]["out_features"] = 2
    graph = api.post("/api/graphs", {"document": document}, format="json").json()["id"]
    job = post_job(api, graph=graph, upload=data["id"])
    assert job.status_code == 201, job.content
    assert job.json()["dataset"] == "upload" and job.json()["upload"] == data["id"]
    # The mlp as it is takes 64 features: it does not fit.
    misfit = post_job(api, graph=new_graph(api), upload=data["id"])
    assert misfit.status_code == 400 and "does not fit" in misfit.json()["error"]
    # An upload with runs is kept.
    assert api.delete(f"/api/uploads/{data['id']}").status_code == 409


def test_a_bad_csv_is_refused_naming_the_row_and_column(api: APIClient) -> None:
    response = upload(api, "bad.csv", (CSV + "3,oops,no\n").encode())
    assert response.status_code == 400
    assert "bad.csv row 42, column 'b': 'oops' is not a number" in response.json()["error"]
    assert api.get("/api/uploads").json() == []


def test_uploads_over_the_limit_or_not_utf8_are_refused(api: APIClient) -> None:
    from compute.engine.datasets import MAX_UPLOAD_BYTES

    response = upload(api, "big.txt", b"a" * (MAX_UPLOAD_BYTES + 100 * 1024))
    assert response.status_code == 413 and "limit" in response.json()["error"]
    latin = upload(api, "latin1.txt", "caf\xe9 ".encode("latin-1") * 200)
    assert latin.status_code == 400
    assert latin.json()["error"] == "latin1.txt is not UTF-8 text (byte 3 is not valid)"


def test_a_text_upload_trains_a_character_model(api: APIClient) -> None:
    text = ("The tide came in over the stones and went out again. " * 40).encode()
    response = upload(api, "tide.txt", text)
    assert response.status_code == 201 and response.json()["task"] == "next_token"
    job = post_job(api, graph=new_graph(api, "char_gpt"), upload=response.json()["id"])
    assert job.status_code == 201, job.content
    uploads = api.get("/api/uploads").json()
    assert [u["name"] for u in uploads] == ["tide.txt"]


def test_another_users_uploads_are_not_theirs_to_train_on(api: APIClient,
                                                          other_api: APIClient) -> None:
    mine = upload(api, "points.csv", CSV.encode()).json()
    response = post_job(other_api, graph=new_graph(other_api), upload=mine["id"])
    assert response.status_code == 404
    assert other_api.delete(f"/api/uploads/{mine['id']}").status_code == 404


# Watching: the WebSocket and published runs


async def handshake(path: str, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=10)
    if not connected:
        return ["refused", code]
    first = await communicator.receive_json_from(timeout=10)
    if first["type"] == "error":
        closed = await communicator.receive_output(timeout=10)
        return [first, closed.get("code")]
    await communicator.disconnect()
    return [first]


def watch(path: str, *headers: tuple[bytes, bytes]) -> list[Any]:
    return asyncio.run(handshake(path, list(headers)))


def bearer(api: APIClient) -> tuple[bytes, bytes]:
    return (b"authorization", api._credentials["HTTP_AUTHORIZATION"].encode())


@pytest.mark.django_db(transaction=True)
def test_a_websocket_joins_only_its_users_runs(api: APIClient, other_api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    path = f"/ws/jobs/{job['id']}/"
    [state] = watch(path, bearer(api))
    assert state["type"] == "state" and state["job"]["status"] == "queued"
    assert state["last_seq"] == 1
    error, code = watch(path, bearer(other_api))
    assert code == 4404 and error["error"] == "no such run"
    error, code = watch(path)
    assert code == 4401 and "log in" in error["error"]
    error, code = watch(path, (b"authorization", b"Bearer shp_not-a-token"))
    assert code == 4401


@pytest.mark.django_db(transaction=True)
def test_what_a_watcher_sends_is_dropped_and_the_stream_goes_on(api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()

    async def scenario() -> list[Any]:
        communicator = WebsocketCommunicator(application, f"/ws/jobs/{job['id']}/",
                                             headers=[bearer(api)])
        assert (await communicator.connect(timeout=10))[0]
        state = await communicator.receive_json_from(timeout=10)
        for frame in ("[" * 100_000 + "]" * 100_000, "not json", '{"a": 1e999}', "\ud800"):
            await communicator.send_to(text_data=frame)
        await communicator.send_to(bytes_data=b"\xff" * 1000)
        await get_channel_layer().group_send(events.group_name(job["id"]), {
            "type": "job.events", "events": [{"type": "status", "seq": 2}]})
        after = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return [state["type"], after]

    assert asyncio.run(scenario()) == ["state", {"type": "status", "seq": 2}]


@pytest.mark.django_db(transaction=True)
def test_a_websocket_from_a_foreign_page_is_refused(api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    path = f"/ws/jobs/{job['id']}/"
    assert watch(path, bearer(api), (b"origin", b"https://evil.example"))[0] == "refused"
    assert watch(path, bearer(api), (b"origin", b"http://127.0.0.1:9999"),
                 (b"host", b"127.0.0.1:8000"))[0] == "refused"  # another port
    [state] = watch(path, bearer(api), (b"origin", b"http://127.0.0.1:8000"),
                    (b"host", b"127.0.0.1:8000"))
    assert state["type"] == "state"


@pytest.mark.django_db(transaction=True)
def test_a_published_run_is_watched_through_a_share_link_of_its_graph(
        api: APIClient, anon: APIClient) -> None:
    graph = new_graph(api)
    job = post_job(api, graph=graph, dataset="digits").json()
    token = api.post(f"/api/graphs/{graph}/share", {}, format="json").json()["token"]
    path = f"/ws/jobs/{job['id']}/?share={token}"
    assert watch(path)[1] == 4404  # not published yet
    assert anon.get(f"/api/jobs/{job['id']}", {"share": token}).status_code == 404
    assert anon.get(f"/api/shared/{token}/jobs").json() == []

    published = api.patch(f"/api/jobs/{job['id']}", {"published": True}, format="json")
    assert published.status_code == 200 and published.json()["published"]
    assert watch(path)[0]["type"] == "state"
    assert anon.get(f"/api/jobs/{job['id']}", {"share": token}).status_code == 200
    assert anon.get(f"/api/jobs/{job['id']}/metrics", {"share": token}).status_code == 200
    assert [j["id"] for j in anon.get(f"/api/shared/{token}/jobs").json()] == [job["id"]]
    assert anon.post(f"/api/jobs/{job['id']}/cancel").status_code == 401
    assert anon.patch(f"/api/jobs/{job['id']}", {"published": False},
                      format="json").status_code == 401

    link = api.get(f"/api/graphs/{graph}/share").json()[0]["id"]
    api.delete(f"/api/graphs/{graph}/share/{link}")
    assert watch(path)[1] == 4404  # a revoked link shows nothing
    assert anon.get(f"/api/jobs/{job['id']}", {"share": token}).status_code == 404


def test_events_keep_their_numbers_in_the_database(api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    api.post(f"/api/jobs/{job['id']}/cancel")
    rows = list(JobEvent.objects.filter(job_id=job["id"]).values_list("seq", "type"))
    assert rows == [(1, "status"), (2, "status")]


def test_a_queued_run_is_cancelled_and_deleted_and_then_its_upload(
        api: APIClient, other_api: APIClient) -> None:
    data = upload(api, "points.csv", CSV.encode()).json()
    document = api.get(f"/api/graphs/{new_graph(api)}").json()["version"]["document"]
    nodes = {n["id"]: n for n in document["nodes"]}
    nodes["x"]["params"]["shape"] = [2]
    nodes["logits"]["params"]["out_features"] = 2
    graph = api.post("/api/graphs", {"document": document}, format="json").json()["id"]
    job = post_job(api, graph=graph, upload=data["id"]).json()
    folder = Job.objects.get(id=job["id"]).folder
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    assert other_api.delete(f"/api/jobs/{job['id']}").status_code == 404
    assert api.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert not folder.exists() and not JobEvent.objects.filter(job_id=job["id"]).exists()
    assert api.delete(f"/api/uploads/{data['id']}").status_code == 204


def test_deleting_a_graph_deletes_its_runs_and_their_folders(
        api: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    graph = new_graph(api)
    job = post_job(api, graph=graph, dataset="digits").json()
    folder = Job.objects.get(id=job["id"]).folder
    folder.mkdir(parents=True)
    with django_capture_on_commit_callbacks() as committed:
        assert api.delete(f"/api/graphs/{graph}").status_code == 204
    assert not Job.objects.filter(id=job["id"]).exists()
    assert folder.exists()  # the folder goes once the deletion is committed, not before
    for callback in committed:
        callback()
    assert not folder.exists()


def test_the_answer_to_a_new_run_counts_its_queued_event(api: APIClient) -> None:
    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    assert job["last_seq"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_metrics_is_sent_at_most_10_times_a_second_and_nothing_is_lost(
        api: APIClient) -> None:
    import time

    from compute.jobs.events import metric_event
    from compute.jobs.runner import Publisher

    job = Job.objects.get(id=post_job(api, graph=new_graph(api), dataset="digits").json()["id"])
    publisher = Publisher(job, heartbeat=False)
    sends: list[float] = []
    original = publisher._publish

    def counted(loop: Any, batch: list[Any]) -> None:
        sends.append(time.monotonic())
        original(loop, batch)

    publisher._publish = counted  # type: ignore[method-assign]  # counts the real sends
    publisher.start()
    began = time.monotonic()
    for step in range(1500):  # about 1.5 s of a 1 kHz stream
        publisher.put(metric_event(step, "train_loss", 1.0 / (step + 1)))
        time.sleep(0.001)
    publisher.close()
    elapsed = time.monotonic() - began
    assert elapsed < 5
    assert all(later - earlier >= 0.99 for earlier, later in zip(sends, sends[10:],
                                                                 strict=False))
    # At most 10 in any second (above), so about 10 per second the flood lasted (on a
    # loaded machine the 1.5 s loop takes longer; the bound grows with it).
    assert 10 <= len(sends) <= 10 * elapsed + 5
    steps = [e["step"] for e in api.get(f"/api/jobs/{job.id}/metrics",
                                        {"types": "metric"}).json()["events"]]
    assert steps == list(range(1500))


@pytest.mark.django_db(transaction=True)
def test_a_mixture_of_experts_aux_loss_travels_to_the_api_like_the_train_loss(
        api: APIClient) -> None:
    from compute.jobs.events import metric_event
    from compute.jobs.runner import Publisher

    job = Job.objects.get(id=post_job(api, graph=new_graph(api), dataset="digits").json()["id"])
    publisher = Publisher(job, heartbeat=False)
    publisher.start()
    for step in (10, 20):  # in the order the training loop reports them
        publisher.put(metric_event(step, "aux_loss", 0.01 + step / 1000))
        publisher.put(metric_event(step, "train_loss", 2.0 - step / 100))
    publisher.close()
    assert publisher.metrics["aux_loss"] == pytest.approx(0.03)
    got = [(e["step"], e["name"], e["value"]) for e in api.get(
        f"/api/jobs/{job.id}/metrics", {"types": "metric"}).json()["events"]]
    assert got == [(10, "aux_loss", pytest.approx(0.02)), (10, "train_loss", 1.9),
                   (20, "aux_loss", pytest.approx(0.03)), (20, "train_loss", 1.8)]


@pytest.mark.parametrize(("config", "message"), [
    ({"batch_size": 2**70}, "config.batch_size must be at least 1 and at most 4,096, got "
     "1180591620717411303424"),
    ({"lr": 1e30}, "config.lr must be above 0 and at most 100, got 1e+30"),
    ({"lr": 0}, "config.lr must be above 0 and at most 100, got 0.0"),
    ({"seed": -1}, "config.seed must be at least 0 and at most 2,147,483,647, got -1"),
    ({"seed": 2**64}, "config.seed must be at least 0 and at most 2,147,483,647"),
    ({"warmup_steps": 10**12}, "config.warmup_steps must be at least 0 and at most 100,000"),
    ({"eval_batches": 10**6}, "config.eval_batches must be at least 1 and at most 1,000"),
    ({"sample_length": 10**9}, "config.sample_length must be at least 0 and at most 10,000"),
    ({"grad_clip": 0}, "config.grad_clip must be above 0 and at most 1,000,000, got 0.0"),
    ({"sample_temperature": 1e300}, "config.sample_temperature must be at least 0 and at "
     "most 100"),
])
def test_a_config_number_out_of_its_range_is_refused_naming_the_field_and_its_range(
        api: APIClient, config: dict[str, Any], message: str) -> None:
    response = post_job(api, graph=new_graph(api), dataset="digits", config=config)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"].startswith(message)
    assert body["problems"] == [{"field": f"config.{next(iter(config))}",
                                 "message": body["error"], "node": None}]
    assert not Job.objects.exists()


def test_a_config_number_that_is_not_finite_is_refused() -> None:
    # JSON bodies cannot carry NaN or infinity past the parser; the service is the last
    # line for any other caller.
    from compute.jobs.services import JobError, train_config

    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(JobError, match=r"config\.lr must be above 0 and at most 100"):
            train_config({"lr": value})


@pytest.mark.parametrize(("config", "message"), [
    ({"lr": "0.01"}, "config.lr must be a number, got '0.01'"),
    ({"steps": "100"}, "config.steps must be a whole number, got '100'"),
    ({"steps": True}, "config.steps must be a whole number, got True"),
    ({"lr": False}, "config.lr must be a number, got False"),
    ({"bf16": 1}, "config.bf16 must be true or false, got 1"),
    ({"device": 0}, "config.device must be auto, cpu or cuda, got 0"),
    ({"steps": 2.5}, "config.steps must be a whole number, got 2.5"),
    ({"grad_clip": "none"}, "config.grad_clip must be a number or null, got 'none'"),
    ({"seed": 10**30}, "config.seed must be at least 0 and at most 2,147,483,647, got "
     "1000000000000000000000000000000"),
    ({"steps": -(10**40)}, "config.steps must be at least 1 and at most 100,000, got -1"),
    ({"lr": {"value": 0.1}}, "config.lr must be a number, got {'value': 0.1}"),
    ({"batch_size": [64]}, "config.batch_size must be a whole number, got [64]"),
    ({"beta2": 1}, "config.beta2 must be at least 0 and below 1, got 1.0"),
    ({"beta1": -0.1}, "config.beta1 must be at least 0 and below 1, got -0.1"),
    ({"__class__": {}}, "config has no setting '__class__'; settings: steps, batch_size"),
])
def test_a_hostile_config_value_is_a_400_naming_the_setting(
        api: APIClient, config: dict[str, Any], message: str) -> None:
    response = post_job(api, graph=new_graph(api), dataset="digits", config=config)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"].startswith(message)
    assert body["problems"][0] == {"field": f"config.{next(iter(config))}",
                                   "message": body["error"], "node": None}
    assert not Job.objects.exists()


def test_every_wrong_setting_is_a_problem_of_its_own(api: APIClient) -> None:
    response = post_job(api, graph=new_graph(api), dataset="digits",
                        config={"steps": "many", "lr": -1, "optimizer": "adam", "stpes": 3})
    assert response.status_code == 400, response.content
    body = response.json()
    assert [p["field"] for p in body["problems"]] == [
        "config.steps", "config.lr", "config.optimizer", "config.stpes"]
    assert body["error"] == body["problems"][0]["message"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("literal", ["1e999", "NaN", "-Infinity"])
def test_a_config_number_json_cannot_spell_is_refused_by_the_strict_parser(
        api: APIClient, literal: str) -> None:
    text = json.dumps({"graph": new_graph(api), "dataset": "digits",
                       "config": {"lr": 1}}).replace('"lr": 1', f'"lr": {literal}')
    response = api.post("/api/jobs", text, content_type="application/json")
    assert response.status_code == 400, response.content
    assert literal in response.json()["error"]
    assert not Job.objects.exists()


def test_the_server_caps_steps_in_validation_and_in_the_served_schema(
        api: APIClient, settings: Any) -> None:
    settings.JOB_MAX_STEPS = 500
    train = api.get("/api/run-kinds").json()[0]
    properties = train["settings_schema"]["properties"]
    assert properties["steps"]["maximum"] == 500
    assert properties["eval_interval"]["maximum"] == 500
    response = post_job(api, graph=new_graph(api), dataset="digits", config={"steps": 501})
    assert response.status_code == 400
    assert response.json()["error"] == ("config.steps must be at least 1 and at most 500, "
                                        "got 501")
    assert post_job(api, graph=new_graph(api), dataset="digits",
                    config={"steps": 500, "device": "cuda"}).status_code == 201


def test_the_run_kinds_serve_the_training_settings_with_titles_defaults_and_ranges(
        client: Any) -> None:
    response = client.get("/api/run-kinds")  # no login needed
    assert response.status_code == 200
    train, benchmark, fpga = response.json()
    assert (train["kind"], train["title"]) == ("train", "Training")
    assert benchmark["kind"] == "benchmark" and fpga["kind"] == "fpga"
    schema = train["settings_schema"]
    assert schema["additionalProperties"] is False
    steps, lr, beta2 = (schema["properties"][k] for k in ("steps", "lr", "beta2"))
    assert steps == {**steps, "title": "Steps", "type": "integer", "default": 300,
                     "minimum": 1, "maximum": 100_000, "x-basic": True}
    assert lr == {**lr, "title": "Learning rate", "default": 0.003, "exclusiveMinimum": 0}
    assert beta2 == {**beta2, "default": 0.95, "minimum": 0, "exclusiveMaximum": 1}
    assert "0.99" in beta2["description"]
    assert schema["properties"]["device"]["enum"] == ["auto", "cpu", "cuda"]
    basic = [k for k, v in schema["properties"].items() if v.get("x-basic")]
    assert basic == ["steps", "batch_size", "lr", "device"]
    for derived in ("min_lr", "attention_interval", "checkpoint_interval"):
        field = schema["properties"][derived]
        assert "default" not in field and field["x-derived"], derived
    assert all(v.get("title") and v.get("description") for v in schema["properties"].values())


def test_a_run_passes_its_betas_to_adamw(api: APIClient) -> None:
    response = post_job(api, graph=new_graph(api), dataset="digits",
                        config={"beta1": 0.8, "beta2": 0.99, "device": "cuda"})
    assert response.status_code == 201, response.content
    config = Job.objects.get().config
    assert (config["beta1"], config["beta2"]) == (0.8, 0.99)
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, TrainConfig.model_validate(config))
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.99)


def test_the_queued_time_of_a_user_is_capped_with_429_saying_how_much(
        api: APIClient, other_api: APIClient, settings: Any) -> None:
    settings.JOB_MAX_QUEUED_SECONDS_PER_USER = 3600
    graph = new_graph(api)
    assert post_job(api, graph=graph, dataset="digits", time_limit=1800).status_code == 201
    assert post_job(api, graph=graph, dataset="digits", time_limit=1800).status_code == 201
    response = post_job(api, graph=graph, dataset="digits", time_limit=60)
    assert response.status_code == 429
    assert response.json() == {
        "error": "your queued and running runs may take 1 h (the sum of their time limits) "
                 "and this one 1 min; the most one user may have waiting or running is 1 h "
                 "(SHIPYARD_MAX_QUEUED_SECONDS_PER_USER): give it a shorter time_limit, or "
                 "wait for a run to end",
        "queued_seconds": 3600, "cap_seconds": 3600}
    # Only their own work counts: another user's short run goes in.
    assert post_job(other_api, graph=new_graph(other_api), dataset="digits",
                    time_limit=60).status_code == 201
    # A run that ends frees its time.
    first = Job.objects.filter(owner__username="ada").order_by("id").first()
    assert first is not None
    api.post(f"/api/jobs/{first.id}/cancel")
    assert post_job(api, graph=graph, dataset="digits", time_limit=1800).status_code == 201


def test_the_default_time_limit_counts_in_full(api: APIClient, settings: Any) -> None:
    settings.JOB_MAX_QUEUED_SECONDS_PER_USER = 2 * settings.JOB_HARD_TIME_LIMIT
    graph = new_graph(api)
    for _ in range(2):
        assert post_job(api, graph=graph, dataset="digits").status_code == 201
    response = post_job(api, graph=graph, dataset="digits")
    assert response.status_code == 429
    assert response.json()["queued_seconds"] == 2 * settings.JOB_HARD_TIME_LIMIT


def test_accounts_younger_than_a_day_share_one_queued_time_budget(
        api: APIClient, other_api: APIClient, other_user: Any, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    settings.JOB_MAX_QUEUED_SECONDS_NEW_ACCOUNTS = 3600
    assert post_job(api, graph=new_graph(api), dataset="digits",
                    time_limit=2400).status_code == 201
    response = post_job(other_api, graph=new_graph(other_api), dataset="digits",
                        time_limit=2400)
    assert response.status_code == 429
    assert response.json()["error"].startswith(
        "accounts less than a day old have runs that may take 40 min queued or running, "
        "and this one 40 min; together they may have at most 1 h "
        "(SHIPYARD_MAX_QUEUED_SECONDS_NEW_ACCOUNTS)")
    # An account of a day and more has only its own cap.
    type(other_user).objects.filter(pk=other_user.pk).update(
        date_joined=timezone.now() - timedelta(days=1, minutes=1))
    assert post_job(other_api, graph=new_graph(other_api), dataset="digits",
                    time_limit=2400).status_code == 201


def test_uploads_have_a_per_user_quota_of_count_and_bytes(
        api: APIClient, other_api: APIClient, user: Any, settings: Any,
        tmp_path: Any) -> None:
    settings.UPLOADS_DIR = tmp_path  # earlier tests' files stay (their rows roll back)
    settings.UPLOADS_MAX_PER_USER = 2
    settings.UPLOADS_MAX_BYTES_PER_USER = 3000
    text = b"the tide came in over the stones. " * 40  # 1,360 bytes
    assert upload(api, "a.txt", text).status_code == 201
    too_big = upload(api, "b.txt", text + text)
    assert too_big.status_code == 413
    assert too_big.json()["error"] == (
        "b.txt is 2,720 bytes and your uploads already take 1,360; the most one user may "
        "keep is 3,000 bytes (SHIPYARD_MAX_UPLOAD_BYTES_PER_USER): delete some first")
    assert upload(api, "b.txt", text).status_code == 201
    third = upload(api, "c.txt", b"tiny text for a model " * 10)
    assert third.status_code == 429
    assert third.json()["error"] == ("you have 2 uploads, the most one user may keep "
                                     "(SHIPYARD_MAX_UPLOADS_PER_USER); delete one first")
    assert len(list((settings.UPLOADS_DIR / str(user.pk)).glob("*"))) == 2  # none refused
    assert [u["name"] for u in api.get("/api/uploads").json()] == ["b.txt", "a.txt"]
    # Another user's quota is their own.
    assert upload(other_api, "c.txt", text).status_code == 201
    # Deleting one frees its place.
    first = api.get("/api/uploads").json()[-1]["id"]
    assert api.delete(f"/api/uploads/{first}").status_code == 204
    assert upload(api, "c.txt", text).status_code == 201


def test_a_cancel_set_while_a_run_is_handed_on_stops_the_next_attempt(
        api: APIClient) -> None:
    # The state a hand-over can leave: the run went back to the queue (its worker was lost
    # or shut down) with its owner's cancel on it. The next claim ends it, not runs it.
    from compute.jobs.services import claim_job

    job = post_job(api, graph=new_graph(api), dataset="digits").json()
    Job.objects.filter(id=job["id"]).update(cancel_requested=True, attempts=1, step=40)
    assert claim_job(job_id=job["id"], worker="w@host", pid=1) is None
    state = Job.objects.get(id=job["id"])
    assert state.status == "cancelled" and state.attempts == 1 and state.worker == ""
    assert state.error == "cancelled at step 40; the last checkpoint is kept"


@pytest.mark.parametrize("hand_over", ["lose", "release"])
def test_a_running_run_cancelled_before_its_hand_over_ends_cancelled(
        api: APIClient, hand_over: str) -> None:
    from compute.jobs.services import lose_job, release_job

    job = Job.objects.get(id=post_job(api, graph=new_graph(api), dataset="digits").json()["id"])
    Job.objects.filter(id=job.id).update(status="running", attempts=1, step=30,
                                         cancel_requested=True)
    job.refresh_from_db()
    if hand_over == "lose":
        lose_job(job, "the worker w stopped answering")
    else:
        release_job(job, 35, "its worker shut down")
    state = Job.objects.get(id=job.id)
    step = 30 if hand_over == "lose" else 35
    assert (state.status, state.attempts, state.step) == ("cancelled", 1, step)
    assert state.error == f"cancelled at step {step}; the last checkpoint is kept"


@pytest.mark.django_db(transaction=True)
def test_a_nan_metric_is_stored_flagged_and_the_heartbeat_goes_on(
        api: APIClient, settings: Any) -> None:
    import time

    from compute.jobs.events import metric_event
    from compute.jobs.runner import Publisher

    settings.JOB_HEARTBEAT_SECONDS = 0.2  # the thread reads it on each round
    job = Job.objects.get(id=post_job(api, graph=new_graph(api), dataset="digits").json()["id"])
    Job.objects.filter(id=job.id).update(status="running", attempts=1)
    job.refresh_from_db()
    publisher = Publisher(job)
    publisher.start()
    try:
        publisher.put(metric_event(10, "train_loss", 2.5))
        publisher.put(metric_event(20, "train_loss", math.nan))
        publisher.put(metric_event(20, "grad_norm", math.inf))
        publisher.put(metric_event(20, "lr", -math.inf))
        time.sleep(1)
        first = Job.objects.get(id=job.id).heartbeat_at
        time.sleep(1)
        assert publisher.is_alive()
        state = Job.objects.get(id=job.id)
        assert first is not None and state.heartbeat_at is not None
        assert state.heartbeat_at > first  # still beating after the NaN
    finally:
        publisher.close()
    metrics = [(e["step"], e["name"], e["value"], e.get("nonfinite")) for e in api.get(
        f"/api/jobs/{job.id}/metrics", {"types": "metric"}).json()["events"]]
    assert metrics == [(10, "train_loss", 2.5, None), (20, "train_loss", None, "nan"),
                       (20, "grad_norm", None, "inf"), (20, "lr", None, "-inf")]
    data = api.get(f"/api/jobs/{job.id}").json()
    assert data["step"] == 20
    assert data["metrics"] == {"train_loss": None, "grad_norm": None, "lr": None}
    assert data["nonfinite"] == {"train_loss": "nan", "grad_norm": "inf", "lr": "-inf"}


@pytest.mark.django_db(transaction=True)
def test_events_that_cannot_be_stored_stop_the_run_but_not_the_heartbeat(
        api: APIClient, settings: Any) -> None:
    import time

    from compute.jobs.events import metric_event
    from compute.jobs.runner import Publisher

    settings.JOB_HEARTBEAT_SECONDS = 0.2
    job = Job.objects.get(id=post_job(api, graph=new_graph(api), dataset="digits").json()["id"])
    Job.objects.filter(id=job.id).update(status="running", attempts=1)
    job.refresh_from_db()
    publisher = Publisher(job, give_up_after=1.5)
    publisher.start()
    try:
        broken = {**metric_event(5, "train_loss", 1.0), "extra": object()}  # not JSON
        publisher.put(broken)
        time.sleep(0.8)
        assert publisher.stop_reason == ""  # a failure may pass: it tries again
        time.sleep(1.5)
        assert publisher.stop_reason == "unstorable" and publisher.is_alive()
        beat = Job.objects.get(id=job.id).heartbeat_at
        time.sleep(0.6)
        later = Job.objects.get(id=job.id).heartbeat_at
        assert beat is not None and later is not None and later > beat
        publisher.put(metric_event(6, "train_loss", 1.0))  # dropped: the run is ending
    finally:
        publisher.close()
    assert not publisher.is_alive()
    assert api.get(f"/api/jobs/{job.id}/metrics", {"types": "metric"}).json()["events"] == []


def test_an_unexpected_error_is_said_in_one_line_without_its_cpp_trace() -> None:
    # PyTorch's C++ errors carry their own stack trace in the message; a real one needs
    # a tensor op to fail, so this one is written as PyTorch writes them.
    from compute.jobs.runner import unexpected

    error = RuntimeError("Trying to create tensor with negative dimension -2: [-2]\n"
                         "Exception raised from check_size_nonnegative at aten/src/ATen/"
                         "EmptyTensor.cpp:46 (most recent call first):\n"
                         "frame #0: c10::Error::Error(...) + 0x9c (0x7f in libc10.so)")
    assert unexpected(error) == (
        "the run stopped on an unexpected error (RuntimeError: Trying to create tensor with "
        "negative dimension -2: [-2]); the worker's log has the details")
    assert unexpected(KeyError()) == ("the run stopped on an unexpected error (KeyError); "
                                      "the worker's log has the details")


def registered_worker(name: str, queues: list[str], device: str,
                      memory: int | None = None) -> None:
    from django.utils import timezone

    from compute.jobs.models import Worker

    Worker.objects.create(hostname=name, host="host", queues=queues, device=device,
                          memory=memory, heartbeat_at=timezone.now())


def test_a_run_on_more_gpus_than_any_worker_of_its_queue_has_is_refused(
        api: APIClient) -> None:
    graph = new_graph(api)
    # No worker registered for the queue yet: the run waits for one, as any run does.
    response = post_job(api, graph=graph, dataset="digits",
                        config={"device": "cuda", "gpus": 2})
    assert response.status_code == 201, response.content
    Job.objects.all().delete()
    registered_worker("one@a", ["gpu"], "NVIDIA H100 80GB HBM3", 80 << 30)
    registered_worker("four@b", ["gpu"], "4 × NVIDIA A10", 24 << 30)
    registered_worker("cpu@c", ["cpu"], "a CPU, 16 cores")  # another queue's: no help
    response = post_job(api, graph=graph, dataset="digits",
                        config={"device": "cuda", "gpus": 8})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == ("config.gpus: 8 GPUs were asked for, but the gpu queue's "
                             "workers have at most 4 GPUs")
    assert body["problems"] == [{"field": "config.gpus", "message": body["error"],
                                 "node": None}]
    assert not Job.objects.exists()
    # The one with four takes it; on the CPU, a worker's cores bound the processes.
    response = post_job(api, graph=graph, dataset="digits",
                        config={"device": "cuda", "gpus": 4})
    assert response.status_code == 201, response.content
    assert response.json()["config"]["gpus"] == 4
    response = post_job(api, graph=graph, dataset="digits",
                        config={"device": "cpu", "gpus": 32})
    assert response.status_code == 400
    assert response.json()["error"] == ("config.gpus: 32 CPU cores were asked for, but the "
                                        "cpu queue's workers have at most 16 CPU cores")


def test_a_batch_that_does_not_split_across_the_gpus_is_refused(api: APIClient) -> None:
    response = post_job(api, graph=new_graph(api), dataset="digits",
                        config={"device": "cuda", "gpus": 4, "batch_size": 30})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == ("config.batch_size 30 does not split evenly across 4 "
                                        "GPUs (gpus): give a multiple of 4, such as 28")
    assert not Job.objects.exists()


def test_a_worker_counts_the_devices_it_describes() -> None:
    import os

    from compute.jobs.models import Worker
    from compute.jobs.workers import device_of, devices

    this = Worker(device=device_of(["cpu"])[0])  # this machine's CPU, as a worker records it
    assert devices(this) == (os.cpu_count() or 1)
    assert devices(Worker(device="8 × NVIDIA H100 80GB HBM3", memory=80 << 30)) == 8
    assert devices(Worker(device="NVIDIA H100 80GB HBM3", memory=80 << 30)) == 1
    assert devices(Worker(device="")) == 1  # a row written by hand says nothing: one
