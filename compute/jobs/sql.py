"""SQL over a training run's model (docs/sql.md): the graph version it trained with the
weights it kept, the names its initial weights held frozen, and its dataset and settings
(so `eval` and `heads` read its validation data). A change makes a derived model: a new
graph of the requester's whose first version starts from the weights the script left,
with its lineage (which run, which statements); a training run of it fine-tunes them."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from safetensors.torch import load_file

from builder.graphs import services as graph_services
from builder.graphs import sql as graph_sql
from builder.graphs.models import Graph
from compute.engine.sql import SqlResult, TrainedModel

from . import kinds, store
from .models import Job
from .services import WEIGHTS_FILE, JobError


def run_model(job: Job) -> TrainedModel:
    """The trained model of a run, or a JobError saying why it has none: 400 for a run
    that trains nothing, 409 for one that has not ended or kept no weights."""
    if job.kind != kinds.TRAIN:
        raise JobError(f"run {job.id} is a {job.kind} run: SQL reads the weights of a "
                       "training run")
    if not job.finished:
        raise JobError(f"run {job.id} has not ended (it is {job.status}): its weights are "
                       "there once it ends", status=409)
    path = store.local(job, WEIGHTS_FILE) if "weights" in job.files else None
    if path is None:
        raise JobError(f"run {job.id} kept no weights (it {job.status})", status=409)
    try:
        state = load_file(str(path))
    except Exception:  # safetensors raises its own error types
        raise JobError(f"run {job.id}'s weights file cannot be read", status=409) from None
    initial = job.version.initial_weights
    return graph_sql.trained(state, initial.frozen if initial is not None else [],
                             job.dataset, job.dataset_options, job.config)


def derived_name(job: Job) -> str:
    return f"{job.graph.name} (run #{job.id})"[:200]


@dataclass(frozen=True)
class JobSqlAnswer:
    """What a script on a run's model did: its result and, for a change, the derived
    model made."""

    result: SqlResult
    derived: Graph | None = None


def run_on_job(*, job: Job, owner: AbstractBaseUser, script: str) -> JobSqlAnswer:
    """Run `script` on `job`'s trained model. A change makes a derived model for `owner`
    (see the module's doc); a run's own graph and weights never change. Raises JobError
    for a run without weights and SqlFailed for a script the engine refuses."""
    trained = run_model(job)
    result = graph_sql.run(job.version.document, script, trained=trained)
    if not result.changed:
        return JobSqlAnswer(result)
    lineage = {"run": job.id, "graph": job.graph_id, "version": job.version.number,
               "statements": graph_sql.changes_of(result), "dataset": job.dataset,
               "dataset_options": dict(job.dataset_options or {}),
               "config": dict(trained.config)}
    if job.upload_id is not None:
        lineage["upload"] = job.upload_id
    weights = graph_services.NewWeights(
        state=result.state if result.state is not None else trained.state,
        frozen=result.frozen if result.frozen is not None else trained.frozen,
        lineage=lineage)
    graph = graph_services.create_derived_graph(
        owner=owner, name=derived_name(job),
        document=result.document if result.document is not None else job.version.document,
        weights=weights, message=graph_sql.message_of(script))
    return JobSqlAnswer(result, graph)
