"""Benchmark runs: submitted and checked like training runs (hostile settings and weights
refused by name, never a 500), and run end to end on the real parts (Redis, a Celery
worker process, the database): every backend at every batch size gives its figures or the
reason it cannot, the progress and the rows stream in order, and the per-node costs and
the machine are kept on the run.

The first tests need no worker: their runs wait on queue gpu, which no worker serves here,
and the training runs whose weights a benchmark takes are written as a worker would write
them (a row that succeeded, weights in its folder)."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import math
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from openapi_check import assert_conforms, validator
from realparts import Worker, finished, wait_for
from rest_framework.test import APIClient

from builder.asgi import application
from builder.graphs.models import GraphVersion
from builder.graphs.schema import ref
from compute.engine import compile_graph, load_starter
from compute.engine.training import save_weights
from compute.jobs import events, services
from compute.jobs.models import Job

pytestmark = pytest.mark.usefixtures("redis")
BACKENDS = ["eager", "compile", "onnxruntime", "eager_bf16", "compile_bf16"]
SMALL = {"batch_sizes": [1, 4], "repeats": 3, "warmup": 1}


def new_graph(api: APIClient, starter: str = "mlp") -> int:
    response = api.post("/api/graphs", {"starter": starter}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def post_benchmark(api: APIClient, graph: int, config: dict[str, Any] | None = None,
                   **body: Any) -> Any:
    """POST /api/jobs for a benchmark; by default on queue gpu, where nothing takes it."""
    return api.post("/api/jobs", {"graph": graph, "kind": "benchmark", "time_limit": 60,
                                  "config": {"device": "cuda", **SMALL, **(config or {})},
                                  **body}, format="json")


def trained(api: APIClient, graph: int, document: dict[str, Any] | None = None,
            status: str = "succeeded") -> int:
    """A training run of `graph` that ended `status`, with the weights of `document` (the
    mlp starter by default) in its folder, as a worker leaves one."""
    response = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "time_limit": 60,
                                      "config": {"device": "cuda", "steps": 10}},
                        format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    job.folder.mkdir(parents=True, exist_ok=True)
    save_weights(compile_graph(document or load_starter("mlp")),
                 job.folder / "model.safetensors")
    Job.objects.filter(id=job.id).update(status=status, files={"weights": "model.safetensors"},
                                         finished_at=dt.datetime.now(dt.UTC), step=10)
    return job.id


def wider_mlp() -> dict[str, Any]:
    document = copy.deepcopy(load_starter("mlp"))
    next(n for n in document["nodes"] if n["id"] == "hidden1")["params"]["out_features"] = 32
    return document


# Submission and its checks (no worker)


def test_a_benchmark_is_queued_without_a_dataset_with_its_complete_settings(
        api: APIClient) -> None:
    graph = new_graph(api)
    response = post_benchmark(api, graph)
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["kind"], job["status"], job["queue"]) == ("benchmark", "queued", "gpu")
    assert job["dataset"] == "" and job["weights_of"] is None and job["result"] is None
    assert job["config"]["batch_sizes"] == [1, 4] and job["config"]["repeats"] == 3
    assert job["config"]["backends"] == BACKENDS  # the default: every backend
    assert job["total_steps"] == len(BACKENDS) * 2  # one step per backend and batch size
    events_ = api.get(f"/api/jobs/{job['id']}/metrics").json()["events"]
    assert [e["status"] for e in events_] == ["queued"]


def test_runs_are_listed_by_kind_and_an_unknown_kind_is_a_400(api: APIClient) -> None:
    graph = new_graph(api)
    bench = post_benchmark(api, graph).json()
    train = trained(api, graph)
    listed = {kind: [j["id"] for j in api.get("/api/jobs", {"graph": graph, "kind": kind}
                                              ).json()] for kind in ("benchmark", "train")}
    assert listed == {"benchmark": [bench["id"]], "train": [train]}
    assert len(api.get("/api/jobs", {"graph": graph}).json()) == 2
    for bad in ("bogus", "", "train,benchmark", "<script>"):
        response = api.get("/api/jobs", {"kind": bad})
        if bad == "":  # an empty filter is no filter
            assert response.status_code == 200
            continue
        assert response.status_code == 400
        assert response.json() == {"error": "kind must be one of train, benchmark, fpga"}


def test_the_run_kinds_list_the_benchmark_with_its_settings(anon: APIClient) -> None:
    kinds = {k["kind"]: k for k in anon.get("/api/run-kinds").json()}
    assert list(kinds) == ["train", "benchmark", "fpga"]
    properties = kinds["benchmark"]["settings_schema"]["properties"]
    for name in ("batch_sizes", "backends", "warmup", "repeats", "device", "seed",
                 "per_node"):
        assert name in properties, name
    assert properties["batch_sizes"]["default"] == [1, 8, 64]


@pytest.mark.parametrize(("config", "field"), [
    ({"batch_sizes": [0]}, "config.batch_sizes"),
    ({"batch_sizes": [-1]}, "config.batch_sizes"),
    ({"batch_sizes": [2**40]}, "config.batch_sizes"),
    ({"batch_sizes": [1.5]}, "config.batch_sizes"),
    ({"batch_sizes": ["8"]}, "config.batch_sizes"),
    ({"batch_sizes": "eight"}, "config.batch_sizes"),
    ({"batch_sizes": []}, "config.batch_sizes"),
    ({"batch_sizes": [1] * 10_000}, "config.batch_sizes"),  # no unbounded work
    ({"backends": ["tensorrt"]}, "config.backends"),
    ({"backends": ["eager; rm -rf /"]}, "config.backends"),
    ({"backends": "eager"}, "config.backends"),
    ({"warmup": -1}, "config.warmup"),
    ({"repeats": 0}, "config.repeats"),
    ({"repeats": 10**12}, "config.repeats"),
    ({"device": "tpu"}, "config.device"),
    ({"seed": 2**70}, "config.seed"),
    ({"steps": 100}, "config.steps"),  # a training setting: not a benchmark's
])
def test_bad_benchmark_settings_are_a_400_naming_the_setting(
        api: APIClient, config: dict[str, Any], field: str) -> None:
    graph = new_graph(api)
    response = post_benchmark(api, graph, config)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["problems"][0]["field"] == field, body
    assert body["error"].startswith(field) or field.removeprefix("config.") in body["error"]
    assert not Job.objects.exists()
    check = api.post("/api/jobs/check", {"graph": graph, "kind": "benchmark",
                                         "config": {**SMALL, **config}}, format="json")
    assert check.status_code == 200 and not check.json()["ok"]
    assert check.json()["problems"][0]["field"] == field


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"dataset": "digits"}, "dataset", "a benchmark run takes no dataset"),
    ({"dataset_options": {"modulus": 7}}, "dataset_options", "takes no dataset_options"),
    ({"kind": "quantum"}, "kind", ""),
    ({"kind": ["benchmark"]}, "kind", ""),
])
def test_a_benchmark_takes_no_dataset_and_an_unknown_kind_is_refused(
        api: APIClient, body: dict[str, Any], field: str, words: str) -> None:
    response = post_benchmark(api, new_graph(api), **body)
    assert response.status_code == 400, response.content
    named = response.json().get("fields", {})
    assert (words and words in response.json()["error"]) or field in named, response.json()
    assert not Job.objects.exists()


def test_a_training_run_takes_no_weights(api: APIClient) -> None:
    graph = new_graph(api)
    source = trained(api, graph)
    response = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "weights": source,
                                      "config": {"device": "cuda"}}, format="json")
    assert response.status_code == 400
    assert "weights are for a benchmark or FPGA run" in response.json()["error"]


def test_a_benchmark_takes_the_weights_of_a_finished_training_run_of_its_graph(
        api: APIClient) -> None:
    graph = new_graph(api)
    source = trained(api, graph)
    response = post_benchmark(api, graph, weights=source)
    assert response.status_code == 201, response.content
    assert response.json()["weights_of"] == source
    assert Job.objects.get(id=response.json()["id"]).weights_of_id == source
    check = api.post("/api/jobs/check", {"graph": graph, "kind": "benchmark",
                                         "weights": source, "config": SMALL}, format="json")
    assert check.json()["ok"] and check.json()["cpu_seconds"] > 0


def test_weights_that_are_not_a_finished_training_run_of_the_graph_are_refused_saying_why(
        api: APIClient, other_api: APIClient) -> None:
    graph, other_graph = new_graph(api), new_graph(api)
    theirs = trained(other_api, new_graph(other_api))
    elsewhere = trained(api, other_graph)
    failed = trained(api, graph, status="failed")
    queued = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "time_limit": 60,
                                    "config": {"device": "cuda"}}, format="json").json()["id"]
    bench = post_benchmark(api, graph).json()["id"]
    unfit = trained(api, graph, document=wider_mlp())
    cases = [
        (theirs, 404, "you have no run"),
        (2**31 - 1, 404, "you have no run"),
        (elsewhere, 400, "trained another graph"),
        (failed, 400, "has not succeeded (it is failed)"),
        (queued, 400, "has not succeeded (it is queued)"),
        (bench, 400, "is a benchmark run"),
        (unfit, 400, "hidden1.weight is [32, 64] in the file and [128, 64] in the graph"),
    ]
    before = Job.objects.count()
    for weights, status, words in cases:
        response = post_benchmark(api, graph, weights=weights)
        assert response.status_code == status, (weights, response.content)
        assert words in response.json()["error"], response.json()
        check = api.post("/api/jobs/check", {"graph": graph, "kind": "benchmark",
                                             "weights": weights, "config": SMALL},
                         format="json")
        assert check.status_code == 200 and not check.json()["ok"]
        assert check.json()["problems"] == [{"field": "weights", "node": None,
                                             "message": response.json()["error"]}]
    for nonsense in ("seven", -1, 0, 2**40, 1.5, [1], None, {"id": 1}):
        response = post_benchmark(api, graph, weights=nonsense)
        assert response.status_code == 400, (nonsense, response.content)
        assert "weights" in response.json()["fields"], response.json()
    assert Job.objects.count() == before


def test_the_check_of_an_unsaved_document_takes_weights_that_fit_it(api: APIClient) -> None:
    source = trained(api, new_graph(api))
    fits = api.post("/api/jobs/check", {"document": load_starter("mlp"), "kind": "benchmark",
                                        "weights": source, "config": SMALL}, format="json")
    assert fits.status_code == 200 and fits.json()["ok"], fits.json()
    assert fits.json()["queue"] == "cpu"
    unfit = api.post("/api/jobs/check", {"document": wider_mlp(), "kind": "benchmark",
                                         "weights": source, "config": SMALL}, format="json")
    assert not unfit.json()["ok"]
    assert unfit.json()["problems"][0]["field"] == "weights"
    assert "hidden1.weight is [128, 64] in the file and [32, 64] in the graph" in \
        unfit.json()["error"]


def test_the_weights_file_gone_from_a_succeeded_run_is_refused(api: APIClient) -> None:
    graph = new_graph(api)
    source = trained(api, graph)
    (Job.objects.get(id=source).folder / "model.safetensors").write_bytes(b"not a tensor")
    response = post_benchmark(api, graph, weights=source)
    assert response.status_code == 400
    assert "cannot be read" in response.json()["error"]
    (Job.objects.get(id=source).folder / "model.safetensors").unlink()
    response = post_benchmark(api, graph, weights=source)
    assert response.status_code == 400 and "has no weights file" in response.json()["error"]


def test_a_training_run_whose_weights_a_waiting_benchmark_takes_is_not_deleted(
        api: APIClient) -> None:
    graph = new_graph(api)
    source = trained(api, graph)
    bench = post_benchmark(api, graph, weights=source).json()
    refused = api.delete(f"/api/jobs/{source}")
    assert refused.status_code == 409 and f"benchmark run(s) {bench['id']}" in \
        refused.json()["error"]
    assert api.post(f"/api/jobs/{bench['id']}/cancel").status_code == 200
    assert api.delete(f"/api/jobs/{source}").status_code == 204


def test_a_benchmark_whose_worker_is_lost_is_handed_on_to_start_over(api: APIClient) -> None:
    job = Job.objects.get(id=post_benchmark(api, new_graph(api)).json()["id"])
    Job.objects.filter(id=job.id).update(status="running", attempts=1, worker="w@gone")
    job.refresh_from_db()
    services.lose_job(job, "the worker w@gone stopped answering")
    job.refresh_from_db()
    assert job.status == "queued"
    assert job.error == ("the worker w@gone stopped answering; trying again from its first "
                         "measurement")  # a benchmark keeps no checkpoint


def test_a_benchmark_run_and_its_events_fit_the_schema(api: APIClient,
                                                       openapi: dict[str, Any]) -> None:
    created = post_benchmark(api, new_graph(api))
    assert_conforms(openapi, "/api/jobs", "post", created)
    job_id = created.json()["id"]
    now = dt.datetime.now(dt.UTC)
    row = {"backend": "compile", "batch": 4, "error": "", "latency_ms_median": 1.5,
           "latency_ms_p95": 2.0, "samples_per_s": 2666.7, "tokens_per_s": None,
           "peak_memory_bytes": 123456, "flops_per_s": 1e9, "max_abs_diff": math.inf,
           "within_tolerance": False, "extra": "dropped"}
    costs = {"backend": "eager", "batch": 1, "method": "hooks", "nodes": [
        {"node": "hidden1", "parent": None, "type": "Linear", "ms": 0.1, "share": 0.5,
         "flops": 16384, "flops_per_s": math.nan}]}
    machine = {"type": "machine", "cpu": "x86_64", "cores": 2, "gpu": None,
               "gpu_memory": None, "device": "cpu", "torch": "2", "onnxruntime": "1.2",
               "python": "3.11"}
    result = {"machine": events.machine(machine), "rows": [events.benchmark_row(row)],
              "node_costs": [events.node_costs_row(costs)], "settings": {"repeats": 3}}
    assert result["rows"][0]["max_abs_diff"] is None  # JSON has no infinity
    assert "extra" not in result["rows"][0]
    Job.objects.filter(id=job_id).update(status=Job.Status.RUNNING, attempts=1,
                                         started_at=now, heartbeat_at=now, result=result)
    events.store(job_id, [
        events.progress_event(0, {"type": "progress", "backend": "compile", "batch": 4,
                                  "done": 2, "total": 4}),
        events.benchmark_event(1, row), events.node_costs_event(1, costs)])
    running = api.get(f"/api/jobs/{job_id}")
    assert running.json()["result"] == result
    assert_conforms(openapi, "/api/jobs/{job_id}", "get", running)
    page = api.get(f"/api/jobs/{job_id}/metrics", {"types": "progress,benchmark,node_costs"})
    assert [e["type"] for e in page.json()["events"]] == ["progress", "benchmark",
                                                          "node_costs"]
    assert_conforms(openapi, "/api/jobs/{job_id}/metrics", "get", page)
    each_event = validator(openapi, ref("JobEvent"))
    for event in page.json()["events"]:
        each_event.validate(event)
    assert_conforms(openapi, "/api/jobs", "get", api.get("/api/jobs", {"kind": "benchmark"}))


# End to end: a real worker on the real Redis


async def _watch(token: str, job_id: int, timeout: float = 240) -> list[dict[str, Any]]:
    communicator = WebsocketCommunicator(application, f"/ws/jobs/{job_id}/", headers=[
        (b"authorization", f"Bearer {token}".encode())])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while loop.time() < deadline:
            message = await communicator.receive_json_from(timeout=deadline - loop.time())
            messages.append(message)
            if message.get("type") == "status" and message["status"] in (
                    "succeeded", "failed", "cancelled"):
                break
    finally:
        await communicator.disconnect()
    return messages


def assert_every_row_has_figures_or_a_reason(rows: list[dict[str, Any]]) -> None:
    assert [(r["backend"], r["batch"]) for r in rows] == [
        (b, n) for b in BACKENDS for n in (1, 4)]
    for row in rows:
        if row["error"]:  # it cannot run here: the reason, and no figures
            assert row["latency_ms_median"] is None and row["samples_per_s"] is None, row
            assert not row["within_tolerance"]
        else:
            assert 0 < row["latency_ms_median"] <= row["latency_ms_p95"], row
            assert row["samples_per_s"] > 0, row
            assert row["max_abs_diff"] is not None, row
    eager = [r for r in rows if r["backend"] == "eager"]
    assert all(not r["error"] for r in eager), eager  # eager runs everywhere


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_benchmark_of_the_starter_mlp_measures_every_backend_and_batch_live(
        user: Any, worker: Worker, openapi: dict[str, Any]) -> None:
    import torch

    from builder.accounts.services import issue_token

    _, token = issue_token(user=user, name="ws")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    graph = new_graph(api)
    job = post_benchmark(api, graph, {"device": "cpu"}).json()
    assert job["queue"] == "cpu" and job["total_steps"] == 10
    live = async_to_sync(_watch)(token, job["id"])[1:]  # after the `state` message

    answer = api.get(f"/api/jobs/{job['id']}")
    done = answer.json()
    assert done["status"] == "succeeded", (done["error"], worker.output()[-3000:])
    assert_conforms(openapi, "/api/jobs/{job_id}", "get", answer)  # the result is typed
    assert done["step"] == done["total_steps"] == 10 and done["device"] == "cpu"
    result = done["result"]
    assert_every_row_has_figures_or_a_reason(result["rows"])
    assert result["machine"]["torch"] == torch.__version__
    assert result["machine"]["device"] == "cpu" and result["machine"]["cores"] >= 1
    assert result["settings"] == done["config"]
    assert result["node_costs"]  # one or more batch sizes, each of eager
    for costs in result["node_costs"]:
        assert costs["backend"] == "eager" and costs["batch"] in (1, 4), costs
        assert {"hidden1", "hidden2", "logits"} <= {n["node"] for n in costs["nodes"]}
        assert all(0 <= n["share"] <= 1 for n in costs["nodes"])

    # Stored in order, with no gaps, and the socket sent each one as it is stored.
    page = api.get(f"/api/jobs/{job['id']}/metrics")
    assert_conforms(openapi, "/api/jobs/{job_id}/metrics", "get", page)
    stored = page.json()["events"]
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    by_seq = {e["seq"]: e for e in stored}
    assert [by_seq[m["seq"]] for m in live] == live
    assert [e["status"] for e in stored if e["type"] == "status"] == [
        "queued", "running", "succeeded"]
    rows = [e for e in stored if e["type"] == "benchmark"]
    assert [{k: v for k, v in e.items() if k not in ("type", "seq", "step", "time")}
            for e in rows] == result["rows"]
    assert [e["step"] for e in rows] == list(range(1, 11))  # a step per row measured
    for (backend, batch) in (("eager", 1), ("eager", 4)):
        seqs = [e["seq"] for e in stored if e["type"] == "progress"
                and (e["backend"], e["batch"]) == (backend, batch)]
        row = next(e for e in rows if (e["backend"], e["batch"]) == (backend, batch))
        assert seqs and max(seqs) < row["seq"], (backend, batch)  # progress, then the row
    assert [{k: v for k, v in e.items() if k not in ("type", "seq", "step", "time")}
            for e in stored if e["type"] == "node_costs"] == result["node_costs"]
    assert {"progress", "benchmark", "node_costs"} <= {m["type"] for m in live}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_benchmark_measures_the_weights_of_a_finished_training_run(
        api: APIClient, worker: Worker) -> None:
    graph = new_graph(api)
    train = api.post("/api/jobs", {"graph": graph, "dataset": "digits",
                                   "config": {"steps": 20, "device": "cpu"}},
                     format="json").json()
    assert finished(api, train["id"])["status"] == "succeeded"
    job = post_benchmark(api, graph, {"device": "cpu"}, weights=train["id"])
    assert job.status_code == 201, job.content
    done = finished(api, job.json()["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-3000:])
    assert done["weights_of"] == train["id"]
    assert_every_row_has_figures_or_a_reason(done["result"]["rows"])

    # Weights that stop fitting between submission and start fail the run, saying why.
    blocker = post_benchmark(api, new_graph(api, "char_gpt"),
                             {"device": "cpu", "batch_sizes": [64], "repeats": 500,
                              "backends": ["eager"]}).json()
    late = post_benchmark(api, graph, {"device": "cpu"}, weights=train["id"]).json()
    save_weights(compile_graph(wider_mlp()),
                 Job.objects.get(id=train["id"]).folder / "model.safetensors")
    api.post(f"/api/jobs/{blocker['id']}/cancel")
    failed = finished(api, late["id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith(f"the weights of run {train['id']} do not fit this "
                                      "graph: hidden1.weight is [32, 64] in the file")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_benchmark_within_seconds_keeping_what_it_measured(
        api: APIClient, worker: Worker) -> None:
    graph = new_graph(api, "char_gpt")
    job = post_benchmark(api, graph, {"device": "cpu", "batch_sizes": [64],
                                      "repeats": 500, "backends": ["eager"]}).json()
    wait_for(lambda: api.get(f"/api/jobs/{job['id']}/metrics",
                             {"types": "progress"}).json()["events"], 120,
             "the benchmark to report progress")
    asked = time.monotonic()
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = finished(api, job["id"], timeout=30)
    assert time.monotonic() - asked < 10
    assert done["status"] == "cancelled"
    assert done["error"] == "cancelled after 0 of 1 measurements"
    assert done["result"]["machine"]["device"] == "cpu" and done["result"]["rows"] == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_benchmark_of_a_graph_that_cannot_be_built_fails_saying_why(
        api: APIClient, worker: Worker) -> None:
    graph = new_graph(api)
    job = post_benchmark(api, graph).json()  # waits on queue gpu, which nothing serves
    # Its version is changed under it (as no API can), and it is handed to the cpu worker:
    # the worker finds the graph invalid and says so, instead of failing on an exception.
    version = GraphVersion.objects.get(graph_id=graph, number=1)
    broken = copy.deepcopy(version.document)
    next(n for n in broken["nodes"] if n["id"] == "hidden1")["params"]["out_features"] = -3
    GraphVersion.objects.filter(id=version.id).update(document_json=json.dumps(broken))
    Job.objects.filter(id=job["id"]).update(queue="cpu",
                                            config={**job["config"], "device": "cpu"})
    services.enqueue(Job.objects.get(id=job["id"]))
    done = finished(api, job["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("the graph is not valid: ") and "hidden1" in done["error"]
