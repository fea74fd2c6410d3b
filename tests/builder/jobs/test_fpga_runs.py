"""FPGA runs (kind fpga, docs/fpga.md): submitted and checked like the other kinds (a graph
the FPGA cannot take refused before queueing with its node named, hostile settings refused
by name, never a 500), and run end to end on the real parts (Redis, a Celery worker serving
the fpga queue, g++, hls4ml): the digits MLP trained on digits agrees with PyTorch, the
stages, comparison and sweep stream, the HLS project downloads, a cancel kills the tools
within seconds, and a failure inside the tools ends the run with their own words.

The first tests need no worker: nothing serves the fpga queue until the module's worker
starts, at the end."""

from __future__ import annotations

import copy
import datetime as dt
import io
import itertools
import json
import tarfile
import time
from typing import Any

import pytest
from openapi_check import assert_conforms, validator
from realparts import Worker, finished, wait_for
from rest_framework.test import APIClient

from builder.graphs.models import GraphVersion
from builder.graphs.schema import ref
from compute.engine import load_starter
from compute.jobs import events
from compute.jobs.models import Job, JobEvent

pytestmark = pytest.mark.usefixtures("redis")


def new_graph(api: APIClient, starter: str = "mlp",
              document: dict[str, Any] | None = None) -> int:
    body = {"starter": starter} if document is None else {"document": document}
    response = api.post("/api/graphs", body, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def post_fpga(api: APIClient, graph: int, config: dict[str, Any] | None = None,
              **body: Any) -> Any:
    return api.post("/api/jobs", {"graph": graph, "kind": "fpga", "time_limit": 300,
                                  "config": config or {}, **body}, format="json")


def with_softmax() -> dict[str, Any]:
    """The MLP starter with a Softmax on its scores: computed with lookup tables there."""
    document = copy.deepcopy(load_starter("mlp"))
    document["nodes"].insert(-1, {"id": "probs", "type": "Softmax", "params": {}})
    document["edges"] = [e for e in document["edges"] if e["to"] != "y"]
    document["edges"] += [{"from": "logits", "to": "probs"}, {"from": "probs", "to": "y"}]
    return document


# Submission and its checks (no worker)


def test_the_run_kinds_list_fpga_with_its_settings(anon: APIClient) -> None:
    kinds = {k["kind"]: k for k in anon.get("/api/run-kinds").json()}
    assert list(kinds) == ["train", "benchmark", "fpga"]
    schema = kinds["fpga"]["settings_schema"]["properties"]
    assert schema["precision"]["default"] == "ap_fixed<16,6>"
    assert schema["io_type"]["enum"] == ["io_parallel", "io_stream"]
    assert {"reuse_factor", "part", "clock_period", "sweep_bits", "precision_overrides",
            "samples", "rtl"} <= set(schema)


def test_an_fpga_run_waits_on_the_fpga_queue_with_its_complete_settings(
        api: APIClient, openapi: dict[str, Any]) -> None:
    created = post_fpga(api, new_graph(api), {"sweep_bits": [8, 12], "rtl": True})
    assert created.status_code == 201, created.content
    assert_conforms(openapi, "/api/jobs", "post", created)
    job = created.json()
    assert job["queue"] == "fpga" and job["kind"] == "fpga" and job["dataset"] == ""
    assert job["config"]["precision"] == "ap_fixed<16,6>"
    assert job["config"]["io_type"] == "io_parallel"
    assert job["total_steps"] == 2 + 2 + 1  # compared, archived, two widths, the Verilog
    assert job["waiting_reason"]  # nothing serves the fpga queue yet, and it says so


def test_a_graph_with_attention_is_refused_before_queueing_with_the_node_named(
        api: APIClient) -> None:
    graph = new_graph(api, "transformer_classifier")
    before = Job.objects.count()
    refused = post_fpga(api, graph)
    assert refused.status_code == 400, refused.content
    body = refused.json()
    assert body["error"].startswith("the graph cannot go to an FPGA: ")
    named = {p["node"] for p in body["problems"]}
    attention = [p for p in body["problems"] if "MultiHeadAttention" in p["message"]]
    assert attention and all(p["node"] for p in attention), body["problems"]
    assert any(p["node"] and "embed" in p["node"] for p in body["problems"]), named
    assert Job.objects.count() == before  # nothing stored
    # The live check says the same, in the same per-node format.
    check = api.post("/api/jobs/check", {"graph": graph, "kind": "fpga"}, format="json")
    assert check.status_code == 200
    assert check.json()["ok"] is False
    assert check.json()["problems"] == body["problems"]


def test_the_check_warns_of_blocks_computed_with_lookup_tables(api: APIClient) -> None:
    check = api.post("/api/jobs/check", {"document": with_softmax(), "kind": "fpga"},
                     format="json").json()
    assert check["ok"] is True and check["queue"] == "fpga", check
    assert [(w["node"], w["field"]) for w in check["warnings"]] == [("probs", "type")]
    assert "lookup tables" in check["warnings"][0]["message"]
    plain = api.post("/api/jobs/check", {"document": load_starter("mlp"), "kind": "fpga"},
                     format="json").json()
    assert plain["ok"] is True and plain["warnings"] == []
    training = api.post("/api/jobs/check", {"document": with_softmax(), "dataset": "digits"},
                        format="json").json()
    assert training["warnings"] == []  # only an FPGA run has them


@pytest.mark.parametrize(("config", "field", "words"), [
    ({"precision": "ap_fixed<16,6>; system(\"rm -rf /\")"}, "config.precision",
     "must be ap_fixed<W,I>"),
    ({"precision": "ap_fixed<99,6>"}, "config.precision", "from 1 to 32 total bits"),
    ({"precision": "ap_fixed<١٦,6>"}, "config.precision", "must be ap_fixed<W,I>"),
    ({"part": "xcu250\n]; exec rm"}, "config.part", "must be a Xilinx part name"),
    ({"part": "x" * 500}, "config.part", "at most"),
    ({"sweep_bits": [8, 99]}, "config.sweep_bits", "at most 32"),
    ({"sweep_bits": list(range(4, 30))}, "config.sweep_bits", "at most 8 widths"),
    ({"precision_overrides": {"hidden1": "float"}}, "config.precision_overrides",
     "of hidden1 must be ap_fixed"),
    ({"precision_overrides": {"a b": "ap_fixed<8,3>"}}, "config.precision_overrides",
     "keyed by node ids"),
    ({"reuse_factor": 0}, "config.reuse_factor", "1"),
    ({"samples": 10**9}, "config.samples", "at most 5,000"),
    ({"io_type": "io_serial"}, "config.io_type", "io_parallel"),
    ({"rtl": "yes please"}, "config.rtl", ""),
])
def test_bad_fpga_settings_are_a_400_naming_the_setting(
        api: APIClient, config: dict[str, Any], field: str, words: str) -> None:
    graph = new_graph(api)
    before = Job.objects.count()
    response = post_fpga(api, graph, config)
    assert response.status_code == 400, response.content
    problems = response.json()["problems"]
    assert problems[0]["field"] == field, problems
    assert words in problems[0]["message"], problems
    assert Job.objects.count() == before


def test_an_override_naming_no_node_of_the_graph_is_refused_by_name(api: APIClient) -> None:
    response = post_fpga(api, new_graph(api), {"precision_overrides": {"nope": "ap_fixed<8,3>"}})
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "config.precision_overrides"
    assert "nope" in response.json()["problems"][0]["message"]


def test_verilog_asked_of_a_model_it_cannot_take_is_refused_before_queueing(
        api: APIClient) -> None:
    response = post_fpga(api, new_graph(api, "cnn"), {"rtl": True})
    assert response.status_code == 400, response.content
    problems = response.json()["problems"]
    assert {p["field"] for p in problems} == {"config.rtl"}
    assert any("is a Conv2d: the Verilog path takes only Linear" in p["message"]
               for p in problems), problems
    assert post_fpga(api, new_graph(api, "cnn")).status_code == 201  # without it, it goes


def small_mlp() -> dict[str, Any]:
    """8 → 6 → ReLU → 3: small enough for Yosys within seconds."""
    layers = [{"id": "x", "type": "Input", "params": {"shape": [8]}},
              {"id": "hidden", "type": "Linear", "params": {"out_features": 6}},
              {"id": "act", "type": "ReLU", "params": {}},
              {"id": "scores", "type": "Linear", "params": {"out_features": 3}},
              {"id": "y", "type": "Output", "params": {}}]
    return {"format": "shipyard.graph/v1", "nodes": layers,
            "edges": [{"from": a["id"], "to": b["id"]}
                      for a, b in itertools.pairwise(layers)]}


@pytest.mark.parametrize("body", [{"dataset": "digits"}, {"dataset_options": {"n": 3}}])
def test_an_fpga_run_takes_no_dataset(api: APIClient, body: dict[str, Any]) -> None:
    response = post_fpga(api, new_graph(api), **body)
    assert response.status_code == 400
    assert "an FPGA run takes no" in response.json()["error"]


def test_an_fpga_run_and_its_events_fit_the_schema(api: APIClient,
                                                   openapi: dict[str, Any]) -> None:
    job_id = post_fpga(api, new_graph(api), {"sweep_bits": [8]}).json()["id"]
    now = dt.datetime.now(dt.UTC)
    comparison: events.Comparison = {
        "precision": "ap_fixed<16,6>", "samples": 10, "inputs": "10 seeded random inputs",
        "agreement": 1.0, "max_error": 0.01, "mean_error": 0.001,
        "nodes": [{"node": "hidden1", "max_error": 0.002, "mean_error": 0.0001}]}
    row: events.SweepRow = {"bits": 8, "precision": "ap_fixed<8,6>", "agreement": 0.5,
                            "max_error": 3.0, "mean_error": None, "seconds": 4.2}
    tool: events.ToolReport = {"tool": "yosys", "ran": True, "error": "",
                               "figures": {"luts": 1200, "ffs": 300}}
    result: events.FpgaResult = {
        "kind": "fpga", "settings": {"precision": "ap_fixed<16,6>"}, "warnings": [],
        "stages": {"build": 5.1}, "comparison": comparison, "sweep": [row], "tools": [tool],
        "log_tail": ["error: something"]}
    Job.objects.filter(id=job_id).update(status=Job.Status.RUNNING, attempts=1,
                                         started_at=now, heartbeat_at=now, result=result)
    events.store(job_id, [events.stage_event(0, "compiling", "compiling", None),
                          events.stage_event(0, "build", "built", 5.1),
                          events.comparison_event(1, comparison), events.sweep_event(2, row),
                          events.tool_event(2, tool)])
    running = api.get(f"/api/jobs/{job_id}")
    assert running.json()["result"] == result
    assert_conforms(openapi, "/api/jobs/{job_id}", "get", running)
    page = api.get(f"/api/jobs/{job_id}/metrics", {"types": "stage,comparison,sweep,tool"})
    assert [e["type"] for e in page.json()["events"]] == [
        "stage", "stage", "comparison", "sweep", "tool"]
    assert_conforms(openapi, "/api/jobs/{job_id}/metrics", "get", page)
    each_event = validator(openapi, ref("JobEvent"))
    for event in page.json()["events"]:
        each_event.validate(event)
    assert page.json()["events"][2]["nodes"] == comparison["nodes"]


def test_an_fpga_run_has_no_project_to_download_until_it_made_one(api: APIClient) -> None:
    job_id = post_fpga(api, new_graph(api)).json()["id"]
    response = api.get(f"/api/jobs/{job_id}/download", {"format": "hls_project"})
    assert response.status_code == 404
    assert "has no hls_project file: the run has not ended" in response.json()["error"]


# End to end: a real worker serving cpu and fpga, on the real Redis


@pytest.fixture(scope="module")
def fpga_worker(start_worker: Any) -> Worker:
    worker: Worker = start_worker(queues="cpu,fpga")
    return worker


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_digits_mlp_trained_on_digits_agrees_with_pytorch_on_the_fpga(
        api: APIClient, fpga_worker: Worker, openapi: dict[str, Any]) -> None:
    graph = new_graph(api)
    train = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "config": {
        "steps": 300, "device": "cpu"}}, format="json").json()
    trained = finished(api, train["id"])
    assert trained["status"] == "succeeded", (trained["error"], fpga_worker.output()[-3000:])
    assert trained["metrics"]["val_accuracy"] > 0.85

    job = post_fpga(api, graph, {"sweep_bits": [6, 16]}, weights=train["id"])
    assert job.status_code == 201, job.content
    answer = api.get(f"/api/jobs/{finished(api, job.json()['id'])['id']}")
    done = answer.json()
    assert done["status"] == "succeeded", (done["error"], fpga_worker.output()[-3000:])
    assert_conforms(openapi, "/api/jobs/{job_id}", "get", answer)
    assert done["step"] == done["total_steps"] == 4
    result = done["result"]
    comparison = result["comparison"]
    assert comparison["agreement"] >= 0.98, comparison
    assert comparison["inputs"].endswith("of the validation split of digits (run "
                                         f"{train['id']}'s dataset)")
    assert 0 < comparison["samples"] <= 500
    assert 0 < comparison["mean_error"] <= comparison["max_error"] < 1.0
    per_node = {n["node"]: n for n in comparison["nodes"]}
    assert {"hidden1", "hidden2", "logits"} <= set(per_node), per_node
    assert all(0 <= n["mean_error"] <= n["max_error"] for n in per_node.values())
    # Fewer bits, more error: 6 bits with 6 integer bits cannot tell the scores apart.
    sweep = {row["bits"]: row for row in result["sweep"]}
    assert list(sweep) == [6, 16]
    assert sweep[16]["agreement"] == pytest.approx(comparison["agreement"])
    assert sweep[6]["max_error"] > sweep[16]["max_error"]
    assert {"build", "emulate", "trace", "archive", "sweep"} <= set(result["stages"])
    assert result["warnings"] == [] and result["log_tail"] == []
    vitis = next(t for t in result["tools"] if t["tool"] == "vitis_hls")
    assert not vitis["ran"] and "not on this worker's PATH" in vitis["error"]

    # The stages and the comparison streamed in order, as events.
    stored = api.get(f"/api/jobs/{done['id']}/metrics").json()["events"]
    kinds = [e["type"] for e in stored]
    assert kinds.index("stage") < kinds.index("comparison") < kinds.index("sweep")
    texts = [e["text"] for e in stored if e["type"] == "stage"]
    assert any(t.startswith("compiling") for t in texts), texts
    assert [e["bits"] for e in stored if e["type"] == "sweep"] == [6, 16]

    # The HLS project downloads with its testbench data.
    download = api.get(f"/api/jobs/{done['id']}/download", {"format": "hls_project"})
    assert download.status_code == 200
    assert done["downloads"] == ["hls_project"]
    assert download["Content-Disposition"].endswith('.tar.gz"')
    with tarfile.open(fileobj=io.BytesIO(b"".join(download.streaming_content))) as tar:
        names = tar.getnames()
    assert "myproject/firmware/myproject.cpp" in names
    assert "myproject/tb_data/tb_input_features.dat" in names
    assert "myproject/myproject_test.cpp" in names
    assert not (Job.objects.get(id=done["id"]).folder / "hls").exists()  # the archive has it


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_kills_the_fpga_tools_within_seconds(api: APIClient,
                                                    fpga_worker: Worker) -> None:
    job = post_fpga(api, new_graph(api, "cnn"), {"sweep_bits": [8, 10, 12, 14, 16, 18]})
    job_id = job.json()["id"]
    wait_for(lambda: JobEvent.objects.filter(job_id=job_id, type="stage").exists(), 120,
             "the FPGA run to start its first stage")
    asked = time.monotonic()
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    done = finished(api, job_id, timeout=30)
    assert time.monotonic() - asked < 10
    assert done["status"] == "cancelled"
    assert done["error"].startswith("cancelled after ")
    assert "Traceback" not in done["error"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failure_inside_the_tools_ends_the_run_with_their_own_words(
        api: APIClient, fpga_worker: Worker, user: Any) -> None:
    from compute.jobs import queue

    graph = new_graph(api)
    user.is_staff = True
    queue.pause_queue("fpga", user)
    try:
        job = post_fpga(api, graph)
        assert job.status_code == 201, job.content
        # Its version is changed under it (as no API can) to one with a block the checks
        # refuse: the converter meets it and says so in its own words.
        version = GraphVersion.objects.get(graph_id=graph, number=1)
        broken = copy.deepcopy(version.document)
        broken["nodes"].insert(1, {"id": "emb", "type": "Embedding",
                                   "params": {"num_embeddings": 64, "embedding_dim": 1}})
        broken["nodes"][0]["params"] = {"shape": [64], "dtype": "int64"}
        broken["edges"] = [{"from": "x", "to": "emb"}, {"from": "emb", "to": "flat"},
                           {"from": "flat", "to": "hidden1"},
                           *[e for e in broken["edges"] if e["from"] != "x"]]
        broken["nodes"].insert(2, {"id": "flat", "type": "Flatten", "params": {}})
        GraphVersion.objects.filter(id=version.id).update(document_json=json.dumps(broken))
    finally:
        queue.resume_queue("fpga", user)
    done = finished(api, job.json()["id"])
    assert done["status"] == "failed", done
    assert "Unsupported layer Embedding" in done["error"], done["error"]  # hls4ml's words
    assert "Traceback" not in done["error"], done["error"]
    assert "  File " not in "\n".join(done["result"]["log_tail"])
    assert done["result"]["log_tail"], done["result"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_fpga_run_past_its_time_limit_is_stopped_keeping_what_it_found(
        api: APIClient, fpga_worker: Worker) -> None:
    job = post_fpga(api, new_graph(api), {"sweep_bits": [8, 10, 12, 14, 16, 18, 20, 22]},
                    time_limit=30)
    done = finished(api, job.json()["id"], timeout=120)
    assert done["status"] == "failed", done
    assert done["error"].startswith("the run reached its time limit of 30 s after ")
    ran = (dt.datetime.fromisoformat(done["finished_at"])
           - dt.datetime.fromisoformat(done["started_at"])).total_seconds()
    assert ran < 40  # the tools were killed at the limit, not waited for
    assert len(done["result"]["sweep"]) < 8
    if "archive" in done["result"]["stages"]:  # what it made before the limit stays
        assert done["downloads"] == ["hls_project"]
        assert done["result"]["comparison"] is not None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_linear_relu_model_becomes_verilog_bit_exact_with_the_emulation(
        api: APIClient, fpga_worker: Worker) -> None:
    job = post_fpga(api, new_graph(api, document=small_mlp()), {"rtl": True, "samples": 50})
    assert job.status_code == 201, job.content
    done = finished(api, job.json()["id"], timeout=400)
    assert done["status"] == "succeeded", (done["error"], fpga_worker.output()[-3000:])
    assert done["step"] == done["total_steps"] == 3
    tools = {t["tool"]: t for t in done["result"]["tools"]}
    verilator, yosys = tools["verilator"], tools["yosys"]
    assert verilator["ran"] and verilator["error"] == "", verilator
    assert verilator["figures"]["bit_exact"] is True, verilator
    assert verilator["figures"]["mismatches"] == 0 and verilator["figures"]["samples"] == 50
    assert yosys["ran"] and yosys["figures"]["luts"] > 0 and yosys["figures"]["ffs"] > 0
    assert yosys["figures"]["pipeline_depth"] >= 1
    assert sorted(done["downloads"]) == ["hls_project", "verilog"]
    download = api.get(f"/api/jobs/{done['id']}/download", {"format": "verilog"})
    with tarfile.open(fileobj=io.BytesIO(b"".join(download.streaming_content))) as tar:
        names = tar.getnames()
    assert "verilog/src/shipyard_rtl.v" in names, names
