"""Runs end to end on the real parts: the API queues a run, a Celery worker process trains
it on the Redis broker, and the results come back through the database, REST and the
WebSocket (the Channels communicator on the Redis channel layer)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from realparts import Worker, finished, wait_for
from rest_framework.test import APIClient

from builder.asgi import application
from compute.engine import load_starter
from compute.jobs.events import decode_attention
from compute.jobs.models import Job

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def new_graph(api: APIClient, starter: str) -> int:
    response = api.post("/api/graphs", {"starter": starter}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def submit(api: APIClient, graph: int, dataset: str, **body: Any) -> dict[str, Any]:
    response = api.post("/api/jobs", {"graph": graph, "dataset": dataset, **body},
                        format="json")
    assert response.status_code == 201, response.content
    data: dict[str, Any] = response.json()
    return data


def all_events(api: APIClient, job_id: int, since: int = 0) -> list[dict[str, Any]]:
    response = api.get(f"/api/jobs/{job_id}/metrics", {"since": since})
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_a_run_on_digits_learns_and_gives_its_weights_onnx_and_pytorch(
        api: APIClient, worker: Worker) -> None:
    graph = new_graph(api, "mlp")
    job = submit(api, graph, "digits", config={"steps": 300})
    assert job["status"] == "queued" and job["version"] == 1 and job["total_steps"] == 300

    done = finished(api, job["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-2000:])
    assert done["metrics"]["val_accuracy"] > 0.9
    assert done["step"] == 300 and done["attempts"] == 1 and done["device"] == "cpu"
    assert done["worker"] == worker.name
    assert sorted(done["downloads"]) == ["onnx", "pytorch", "weights"]
    weights = api.get(f"/api/jobs/{job['id']}/download", {"format": "weights"})
    assert weights.status_code == 200
    from safetensors.torch import load

    state = load(b"".join(weights.streaming_content))
    assert state["logits.weight"].shape == (10, 64)
    onnx = api.get(f"/api/jobs/{job['id']}/download", {"format": "onnx"})
    assert onnx.status_code == 200 and len(b"".join(onnx.streaming_content)) > 1000
    code = b"".join(api.get(f"/api/jobs/{job['id']}/download",
                            {"format": "pytorch"}).streaming_content).decode()
    assert "class" in code and "nn.Linear(64, 128" in code

    statuses = [e["status"] for e in all_events(api, job["id"]) if e["type"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]


def test_a_run_pins_the_version_it_trains(api: APIClient, worker: Worker) -> None:
    # A run ahead keeps the one worker busy, so this one is still queued when its graph
    # gets a version 2 of another width: the weights it gives must have version 1's.
    ahead = submit(api, new_graph(api, "mlp"), "digits", config={"steps": 300})
    graph = new_graph(api, "mlp")
    job = submit(api, graph, "digits", config={"steps": 20})
    document = load_starter("mlp")
    document["nodes"][1]["params"]["out_features"] = 32
    saved = api.post(f"/api/graphs/{graph}/versions", {"document": document,
                                                       "base_version": 1}, format="json")
    assert saved.status_code == 201 and saved.json()["version"]["number"] == 2
    assert api.get(f"/api/jobs/{job['id']}").json()["status"] == "queued"
    assert finished(api, ahead["id"])["status"] == "succeeded"
    done = finished(api, job["id"])
    assert done["status"] == "succeeded" and done["version"] == 1
    weights = api.get(f"/api/jobs/{job['id']}/download", {"format": "weights"})
    assert weights.status_code == 200
    from safetensors.torch import load

    state = load(b"".join(weights.streaming_content))
    assert state["hidden1.weight"].shape == (128, 64)  # version 2's would be (32, 64)
    assert state["hidden2.weight"].shape == (64, 128)


def test_a_character_gpt_learns_and_writes_samples(api: APIClient, worker: Worker) -> None:
    graph = new_graph(api, "char_gpt")
    job = submit(api, graph, "harbour", config={"steps": 40, "batch_size": 16,
                                                "eval_interval": 20, "log_interval": 5,
                                                "sample_length": 30})
    done = finished(api, job["id"])
    assert done["status"] == "succeeded", done["error"]
    events = all_events(api, job["id"])
    losses = [e["value"] for e in events if e["type"] == "metric" and e["name"] == "train_loss"]
    assert len(losses) == 8
    assert losses[-1] < losses[0] - 1.0  # from ~4.8 (uniform over 128) to well under
    samples = [e for e in events if e["type"] == "sample"]
    assert [s["step"] for s in samples] == [20, 40]
    assert all(len(s["text"]) == 30 for s in samples)


def test_cancel_stops_a_running_run_within_seconds_and_keeps_its_checkpoint(
        api: APIClient, worker: Worker) -> None:
    graph = new_graph(api, "char_gpt")
    job = submit(api, graph, "harbour", config={"steps": 5000, "batch_size": 8,
                                                "checkpoint_interval": 5,
                                                "eval_interval": 1000})
    wait_for(lambda: api.get(f"/api/jobs/{job['id']}").json()["step"] >= 5, 120,
             "the run to pass step 5")

    asked = time.monotonic()
    response = api.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"]
    done = finished(api, job["id"], timeout=30)
    assert time.monotonic() - asked < 10
    assert done["status"] == "cancelled"
    assert "last checkpoint is kept" in done["error"]
    checkpoints = sorted((Job.objects.get(id=job["id"]).folder / "checkpoints").glob("*"))
    assert checkpoints and checkpoints[-1].name == f"step-{done['step']:06d}.safetensors"
    again = api.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["error"]


def test_a_run_on_two_processes_trains_streams_rank_0s_metrics_once_and_cancels(
        api: APIClient, worker: Worker) -> None:
    # gpus on the CPU: two training processes (gloo) spawned from the worker's pool child.
    graph = new_graph(api, "mlp")
    job = submit(api, graph, "digits", config={"steps": 40, "gpus": 2, "device": "cpu",
                                               "log_interval": 10, "eval_interval": 20})
    done = finished(api, job["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-2000:])
    assert done["step"] == 40 and sorted(done["downloads"]) == ["onnx", "pytorch", "weights"]
    events = all_events(api, job["id"])
    steps = {name: [e["step"] for e in events if e["type"] == "metric" and e["name"] == name]
             for name in ("train_loss", "val_loss")}
    assert steps == {"train_loss": [10, 20, 30, 40], "val_loss": [20, 40]}

    # A cancel reaches both processes: the run stops within seconds with a checkpoint.
    job = submit(api, graph, "digits", config={"steps": 100_000, "gpus": 2, "device": "cpu",
                                               "eval_interval": 10_000,
                                               "checkpoint_interval": 50})
    wait_for(lambda: api.get(f"/api/jobs/{job['id']}").json()["step"] >= 20, 120,
             "the run to pass step 20")
    asked = time.monotonic()
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = finished(api, job["id"], timeout=30)
    assert time.monotonic() - asked < 10
    assert done["status"] == "cancelled", done["error"]
    checkpoints = sorted((Job.objects.get(id=job["id"]).folder / "checkpoints").glob("*"))
    assert checkpoints and checkpoints[-1].name == f"step-{done['step']:06d}.safetensors"


def test_a_queued_run_cancels_at_once(api: APIClient, redis: Any) -> None:
    # No worker takes it (its queue has none): it is cancelled where it waits.
    graph = new_graph(api, "mlp")
    job = submit(api, graph, "digits", config={"device": "cuda"})
    assert job["queue"] == "gpu" and job["position"] == 1
    response = api.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


async def _watch(token: str, job_id: int, until: str = "succeeded",
                 timeout: float = 180) -> list[dict[str, Any]]:
    communicator = WebsocketCommunicator(application, f"/ws/jobs/{job_id}/",
                                         headers=[(b"authorization",
                                                   f"Bearer {token}".encode())])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while loop.time() < deadline:
            message = await communicator.receive_json_from(timeout=deadline - loop.time())
            messages.append(message)
            if message.get("type") == "status" and message["status"] == until:
                break
    finally:
        await communicator.disconnect()
    return messages


def test_the_websocket_streams_status_metrics_and_attention_in_order_without_gaps(
        user: Any, worker: Worker) -> None:
    from asgiref.sync import async_to_sync

    from builder.accounts.services import issue_token

    _, token = issue_token(user=user, name="ws")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    graph = new_graph(api, "transformer_classifier")
    job = submit(api, graph, "modadd", config={"steps": 60, "log_interval": 5,
                                               "eval_interval": 20})
    messages = async_to_sync(_watch)(token, job["id"])

    state, live = messages[0], messages[1:]
    assert state["type"] == "state" and state["job"]["id"] == job["id"]
    seqs = [m["seq"] for m in live]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # in order, no repeats
    assert live[-1]["type"] == "status" and live[-1]["status"] == "succeeded"
    kinds = {m["type"] for m in live}
    assert {"status", "metric", "attention"} <= kinds

    # The REST backfill holds every event, each number from 1 to the last once, and each
    # one the socket sent is the same there, field for field.
    backfill = {e["seq"]: e for e in all_events(api, job["id"], since=0)}
    assert sorted(backfill) == list(range(1, live[-1]["seq"] + 1))
    assert [backfill[m["seq"]] for m in live] == live

    maps = [m for m in live if m["type"] == "attention"]
    assert {m["step"] for m in maps} == {20, 40, 60}
    weights = decode_attention(maps[-1])
    assert weights.shape == (maps[-1]["heads"], maps[-1]["rows"], maps[-1]["cols"])
    assert weights.sum(-1).sub(1).abs().max() < 0.05  # each row still sums to 1
    # The fixed example's token ids label both axes, one per position, on every map.
    assert all(m["tokens"] == maps[0]["tokens"] and len(m["tokens"]) == m["rows"]
               and all(t.isdigit() for t in m["tokens"]) for m in maps)
    latest = api.get(f"/api/jobs/{job['id']}/attention").json()["events"]
    assert {m["node"] for m in latest} == {m["node"] for m in maps}
    assert all(m["step"] == 60 for m in latest)
    assert all(m["tokens"] == maps[0]["tokens"] for m in latest)


def test_a_text_runs_attention_events_carry_the_examples_characters(
        api: APIClient, worker: Worker) -> None:
    from compute.engine.datasets import dataset_for

    graph = new_graph(api, "char_gpt")
    job = submit(api, graph, "harbour", config={"steps": 2, "batch_size": 4,
                                                "eval_interval": 2, "sample_length": 0})
    done = finished(api, job["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-2000:])
    data = dataset_for(load_starter("char_gpt"), "harbour")
    assert data.decode is not None
    characters = list(data.decode(data.x_val[0].tolist()))
    maps = [e for e in all_events(api, job["id"]) if e["type"] == "attention"]
    assert len(maps) == 4  # one per block, at the last step
    assert all(m["tokens"] == characters and m["rows"] == len(characters) for m in maps)


def test_a_run_whose_loss_turns_nan_fails_within_seconds_and_shows_the_nan(
        user: Any, worker: Worker) -> None:
    from asgiref.sync import async_to_sync

    from builder.accounts.services import issue_token

    _, token = issue_token(user=user, name="ws")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # Plain SGD at lr 100 with no clipping: the mlp's loss is NaN within ten steps.
    job = submit(api, new_graph(api, "mlp"), "digits", config={
        "steps": 1000, "optimizer": "sgd", "lr": 100, "warmup_steps": 0, "grad_clip": None,
        "log_interval": 1})
    began = time.monotonic()
    messages = async_to_sync(_watch)(token, job["id"], until="failed", timeout=60)
    done = finished(api, job["id"], timeout=10)
    assert time.monotonic() - began < 30

    losses = [e for e in all_events(api, job["id"]) if e["type"] == "metric"
              and e["name"] == "train_loss"]
    flagged = [e for e in losses if e["value"] is None]
    assert flagged and all(e["nonfinite"] == "nan" for e in flagged)
    assert all("nonfinite" not in e for e in losses if e["value"] is not None)
    first = flagged[0]["step"]
    assert done["status"] == "failed" and done["attempts"] == 1
    assert done["error"] == (f"the loss became NaN at step {first}: lower the learning rate "
                             "or clip gradients")
    assert [e["step"] for e in flagged] == [first, first + 1, first + 2]  # 3 in a row
    assert done["step"] < 20  # it stopped there, not 1000 steps of NaN later
    assert done["metrics"]["train_loss"] is None
    assert done["nonfinite"]["train_loss"] == "nan"
    # The WebSocket says the same as the REST backfill.
    live = [m for m in messages if m.get("type") == "metric" and m["name"] == "train_loss"
            and m["value"] is None]
    assert [(m["step"], m["nonfinite"]) for m in live] == [(e["step"], "nan") for e in flagged]
    assert messages[-1]["status"] == "failed" and messages[-1]["error"] == done["error"]


def test_deleting_a_graph_mid_run_stops_its_worker_at_once_and_leaves_no_files(
        api: APIClient, worker: Worker) -> None:
    seen = len(worker.output())
    graph = new_graph(api, "char_gpt")
    job = submit(api, graph, "harbour", config={"steps": 5000, "batch_size": 8,
                                                "checkpoint_interval": 5,
                                                "eval_interval": 1000})
    folder = Job.objects.get(id=job["id"]).folder
    wait_for(lambda: list((folder / "checkpoints").glob("step-*")), 120,
             "the run's first checkpoint")
    task = worker_task_of(worker, seen)

    assert api.delete(f"/api/graphs/{graph}").status_code == 204
    deleted = time.monotonic()
    wait_for(lambda: f"[{task}] succeeded" in worker.output()[seen:], 15,
             "the worker's task to end")
    assert time.monotonic() - deleted < 10
    assert not folder.exists()
    time.sleep(3)  # and it stays gone: nothing writes there any more
    assert not folder.exists()
    log = worker.output()[seen:]
    assert "Traceback" not in log and "could not store" not in log, log[-3000:]

    # The worker is free at once for the same user's next run.
    nxt = submit(api, new_graph(api, "mlp"), "digits", config={"steps": 20})
    asked = time.monotonic()
    wait_for(lambda: Job.objects.get(id=nxt["id"]).status != "queued", 15,
             "the next run to start")
    assert time.monotonic() - asked < 5
    assert finished(api, nxt["id"], timeout=60)["status"] == "succeeded"


def worker_task_of(worker: Worker, since: int) -> str:
    """The Celery id of the last run_job task the worker received after offset `since`."""
    import re

    found = re.findall(r"Task shipyard\.run_job\[([0-9a-f-]+)\] received",
                       worker.output()[since:])
    return found[-1] if found else "none yet"


def test_a_run_at_its_time_limit_fails_saying_so_in_a_sentence(
        api: APIClient, worker: Worker) -> None:
    job = submit(api, new_graph(api, "char_gpt"), "harbour", time_limit=10,
                 config={"steps": 5000, "batch_size": 8, "eval_interval": 1000})
    done = finished(api, job["id"], timeout=60)
    assert done["status"] == "failed", done
    assert done["error"] == (f"the run reached its time limit of 10 s at step {done['step']}; "
                             "the last checkpoint is kept")
    assert 0 < done["step"] < 5000
