"""The runs' query parameters: a value that is not one of the choices is a 400 whose error
names the choices, the same sentence whichever way the check is written."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from builder.graphs import services as graph_services
from compute.engine import load_starter
from compute.jobs.models import Job


def _run(owner: User) -> Job:
    graph = graph_services.create_graph(owner=owner, document=load_starter("mlp"))
    return Job.objects.create(owner=owner, graph=graph, version=graph.versions.get(),
                              dataset="digits", time_limit=600, total_steps=100,
                              status=Job.Status.SUCCEEDED)


def test_a_list_of_runs_by_an_unknown_status_is_refused(api: APIClient, user: User) -> None:
    _run(user)
    response = api.get("/api/jobs", {"status": "done"})
    assert response.status_code == 400
    assert response.json() == {"error": "status must be one of queued, running, succeeded, "
                                        "failed, cancelled"}
    assert len(api.get("/api/jobs", {"status": ""}).json()) == 1  # empty: no filter
    assert api.get("/api/jobs", {"status": "queued"}).json() == []


def test_events_of_an_unknown_type_are_refused(api: APIClient, user: User) -> None:
    job = _run(user)
    response = api.get(f"/api/jobs/{job.id}/metrics", {"types": "metric,bogus,attention"})
    assert response.status_code == 400
    assert response.json() == {"error": "no event type 'bogus'; types: status, metric, "
                                        "attention, sample, progress, benchmark, "
                                        "node_costs, stage, comparison, sweep, tool"}
    assert api.get(f"/api/jobs/{job.id}/metrics", {"types": "metric,"}).status_code == 200
    bad_since = api.get(f"/api/jobs/{job.id}/metrics", {"since": "-1", "types": "bogus"})
    assert bad_since.status_code == 400 and "since" in bad_since.json()["fields"]


def test_a_download_in_an_unknown_format_is_refused(api: APIClient, user: User) -> None:
    job = _run(user)
    expected = {"error": "format must be one of weights, onnx, pytorch, pytorch_weights, "
                         "hls_project, verilog"}
    for fmt in ("safetensors", ""):
        response = api.get(f"/api/jobs/{job.id}/download", {"format": fmt})
        assert response.status_code == 400, fmt
        assert response.json() == expected
    missing = api.get(f"/api/jobs/{job.id}/download")  # weights, which this run has not
    assert missing.status_code == 404
    assert missing.json() == {"error": f"run {job.id} has no weights file: the run ended "
                                       "succeeded"}
