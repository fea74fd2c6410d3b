"""SQL over a training run's model through the API (docs/sql.md): the run's weights answer
the weight tables; a change makes a derived model, a new graph of the requester's whose
first version starts from the changed weights with its lineage, and whose runs take the
run's dataset by default and keep its frozen tensors bit for bit; the run itself never
changes; a run that is not yours is not found, one without weights is refused by name.

The trained runs of the first tests are written as a worker leaves one (a row that ended,
weights in its folder); their runs wait on queue gpu, which no worker serves here."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import torch
from openapi_check import assert_conforms
from realparts import Worker, finished
from rest_framework.test import APIClient
from safetensors.torch import load, load_file

from builder.graphs.models import Graph, GraphVersion
from compute.engine import compile_graph, load_starter
from compute.engine.training import save_weights
from compute.jobs.models import Job

GPU = {"device": "cuda", "steps": 10}
FREEZE = "UPDATE tensors SET frozen = 1 WHERE name LIKE 'hidden1.%'"


def new_graph(api: APIClient, starter: str = "mlp") -> int:
    response = api.post("/api/graphs", {"starter": starter}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def trained(api: APIClient, graph: int, status: str = "succeeded", seed: int = 7,
            **body: Any) -> int:
    """A training run of `graph` (the mlp) that ended `status` with seeded weights in its
    folder, as a worker leaves one."""
    response = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "time_limit": 60,
                                      "config": GPU, **body}, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(id=response.json()["id"])
    job.folder.mkdir(parents=True, exist_ok=True)
    save_weights(compile_graph(load_starter("mlp"), seed=seed), job.folder / "model.safetensors")
    Job.objects.filter(id=job.id).update(status=status, files={"weights": "model.safetensors"},
                                         finished_at=dt.datetime.now(dt.UTC), step=10)
    return job.id


def run(api: APIClient, job: int, sql: Any) -> Any:
    return api.post(f"/api/jobs/{job}/sql", {"sql": sql}, format="json")


def weights_of(job: int) -> dict[str, torch.Tensor]:
    return load_file(str(Job.objects.get(id=job).folder / "model.safetensors"))


def test_a_runs_weights_answer_the_weight_tables(api, openapi):
    job = trained(api, new_graph(api))
    response = run(api, job, "SELECT name, shape, frozen FROM tensors ORDER BY name")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [row[0] for row in body["rows"]] == sorted(weights_of(job))
    assert all(row[2] == 0 for row in body["rows"])
    assert body["derived"] is None and body["change"] is None
    assert_conforms(openapi, "/api/jobs/{job_id}/sql", "post", response)
    graphs = Graph.objects.count()
    plain = run(api, job, "SELECT count(*) FROM nodes")
    assert plain.json()["rows"] == [[7]] and Graph.objects.count() == graphs


def test_a_change_makes_a_derived_model_with_its_lineage_and_weights(api, user, openapi):
    graph = new_graph(api)
    job = trained(api, graph)
    before = weights_of(job)
    response = run(api, job, FREEZE)
    assert response.status_code == 200, response.content
    derived = response.json()["derived"]
    assert derived["version"] == 1 and derived["url"] == f"/g/{derived['graph']}"
    assert_conforms(openapi, "/api/jobs/{job_id}/sql", "post", response)
    made = Graph.objects.get(id=derived["graph"])
    assert made.owner == user and made.name == f"digits-mlp (run #{job})"
    version = GraphVersion.objects.select_related("initial_weights").get(graph=made, number=1)
    assert version.message == FREEZE
    row = version.initial_weights
    assert row is not None
    assert sorted(row.frozen) == ["hidden1.bias", "hidden1.weight"]
    assert row.lineage == {"run": job, "graph": graph, "version": 1, "statements": [FREEZE],
                           "dataset": "digits", "dataset_options": {},
                           "config": Job.objects.get(id=job).config}
    kept = load(bytes(row.data))
    assert set(kept) == set(before)
    for name, tensor in before.items():
        assert torch.equal(kept[name], tensor), name
    # The run and its graph are as they were.
    assert Graph.objects.get(id=graph).head == 1 and weights_of(job).keys() == before.keys()
    assert api.get(f"/api/graphs/{made.id}").json()["version"]["initial_weights"] is True


def test_a_derived_models_version_answers_tensor_queries_and_changes_again(api):
    job = trained(api, new_graph(api))
    derived = run(api, job, FREEZE).json()["derived"]["graph"]
    response = api.post(f"/api/graphs/{derived}/sql",
                        {"sql": "SELECT name FROM tensors WHERE frozen = 1 ORDER BY name"},
                        format="json")
    assert response.status_code == 200, response.content
    assert response.json()["rows"] == [["hidden1.bias"], ["hidden1.weight"]]
    grown = api.post(f"/api/graphs/{derived}/sql", {"sql": (
        "UPDATE nodes SET params = json_set(params, '$.out_features', 32) "
        "WHERE id = 'hidden2'")}, format="json")
    assert grown.status_code == 200, grown.content
    version = GraphVersion.objects.select_related("initial_weights").get(graph_id=derived,
                                                                         number=2)
    assert version.initial_weights is not None
    kept = load(bytes(version.initial_weights.data))
    assert torch.equal(kept["hidden1.weight"], weights_of(job)["hidden1.weight"])
    assert kept["hidden2.weight"].shape == (32, 128)
    assert version.initial_weights.lineage["run"] == job
    assert len(version.initial_weights.lineage["statements"]) == 2


def test_an_architecture_change_of_a_run_derives_a_model_of_the_new_graph(api):
    job = trained(api, new_graph(api))
    response = run(api, job, "UPDATE nodes SET params = json_set(params, '$.out_features', "
                             "32) WHERE id = 'hidden2'")
    assert response.status_code == 200, response.content
    derived = response.json()["derived"]["graph"]
    document = api.get(f"/api/graphs/{derived}").json()["version"]["document"]
    assert next(n for n in document["nodes"]
                if n["id"] == "hidden2")["params"]["out_features"] == 32


def test_a_derived_model_trains_on_its_runs_dataset_by_default(api):
    job = trained(api, new_graph(api), dataset_options={})
    derived = run(api, job, FREEZE).json()["derived"]["graph"]
    response = api.post("/api/jobs", {"graph": derived, "config": GPU}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["dataset"] == "digits"
    check = api.post("/api/jobs/check", {"graph": derived, "config": GPU}, format="json")
    assert check.json()["ok"] is True
    plain = api.post("/api/jobs", {"graph": new_graph(api), "config": GPU}, format="json")
    assert plain.status_code == 400
    assert plain.json()["error"] == "give either a dataset or an upload"


def test_another_users_run_is_not_found(api, other_api):
    job = trained(api, new_graph(api))
    for sql in ("SELECT count(*) FROM tensors", FREEZE):
        response = run(other_api, job, sql)
        assert response.status_code == 404 and response.json() == {"error": "no such run"}
    assert run(api, 999_999, "SELECT 1").status_code == 404
    assert Graph.objects.filter(owner__username="bob").count() == 0


def test_a_run_without_weights_is_refused_by_name(api):
    graph = new_graph(api)
    queued = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "config": GPU},
                      format="json").json()["id"]
    response = run(api, queued, "SELECT count(*) FROM tensors")
    assert response.status_code == 409
    assert response.json()["error"] == (f"run {queued} has not ended (it is queued): its "
                                        "weights are there once it ends")
    failed = trained(api, graph, status="failed")
    Job.objects.filter(id=failed).update(files={})
    response = run(api, failed, "SELECT 1")
    assert response.status_code == 409
    assert response.json()["error"] == f"run {failed} kept no weights (it failed)"
    bench = api.post("/api/jobs", {"graph": graph, "kind": "benchmark", "time_limit": 60,
                                   "config": {"device": "cuda"}}, format="json").json()["id"]
    Job.objects.filter(id=bench).update(status="succeeded")
    response = run(api, bench, "SELECT 1")
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"run {bench} is a benchmark run")


@pytest.mark.parametrize("body", [{}, {"sql": 1}, {"sql": None}, {"sql": ""}, {"sql": [1]}])
def test_a_body_that_is_not_a_scripts_is_a_400(api, body):
    job = trained(api, new_graph(api))
    response = api.post(f"/api/jobs/{job}/sql", body, format="json")
    assert response.status_code == 400 and "sql" in response.json()["fields"]


@pytest.mark.parametrize("sql", ["x" * 300_000, "SELECT * FROM nope",
                                 "UPDATE tensors SET shape = '[1]'",
                                 "DELETE FROM tensors", "ATTACH DATABASE ':memory:' AS m",
                                 "UPDATE nodes SET params = json_set(params, '$.out_features',"
                                 " -3) WHERE id = 'hidden2'"])
def test_a_hostile_script_on_a_run_is_a_400_and_derives_nothing(api, sql):
    job = trained(api, new_graph(api))
    graphs = Graph.objects.count()
    response = run(api, job, sql)
    assert response.status_code == 400, response.content
    assert isinstance(response.json()["error"], str) and Graph.objects.count() == graphs


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_of_a_derived_model_keeps_its_frozen_tensors_bit_for_bit(
        api: APIClient, worker: Worker) -> None:
    job = trained(api, new_graph(api))
    derived = run(api, job, FREEZE).json()["derived"]["graph"]
    tune = api.post("/api/jobs", {"graph": derived, "config": {
        "device": "cpu", "steps": 5, "lr": 0.05}}, format="json")
    assert tune.status_code == 201, tune.content
    done = finished(api, tune.json()["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-2000:])
    tuned = weights_of(done["id"])
    start = weights_of(job)
    for name in ("hidden1.weight", "hidden1.bias"):
        assert torch.equal(tuned[name], start[name]), name
    assert not torch.equal(tuned["hidden2.weight"], start["hidden2.weight"])
