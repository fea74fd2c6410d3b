"""SQL over saved graphs (docs/sql.md): a script runs on a version, or on the editor's
unsaved document based on one, with the version's initial weights when it has some (an
imported or a derived model's: then `tensors`, `heads` and `eval` are there too). A change
is saved as a new version through `services.save_version`, the script as its message and,
on a model with weights, the weights the script left as its initial weights. A share link
runs the script read-only: a change is refused before anything runs.

compute.jobs runs scripts on a training run's weights with `run` and `SqlFailed` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from rest_framework import serializers
from safetensors.torch import load

from builder.rest import ApiError
from compute.engine import GraphError, weight_shapes
from compute.engine.datasets import DATASETS
from compute.engine.sql import SqlError, SqlLimits, SqlResult, TrainedModel, run_sql

from . import selectors, services
from .models import Graph, GraphVersion, InitialWeights

READ_ONLY = "this is a shared link, read-only: fork it to change"
MESSAGE_CHARS = 500  # GraphVersion.message


class SqlFailed(ApiError):
    """A script the engine refused: 400 with SqlError.to_json() ({error, statement, sql,
    position, problems}); 403 for a change asked of a read-only model."""

    def __init__(self, error: SqlError, *, status: int = 400) -> None:
        super().__init__(str(error), status=status)
        self.error = error

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.error.to_json()
        return body


def run(document: Mapping[str, Any], script: str, *, trained: TrainedModel | None = None,
        read_only: str | None = None) -> SqlResult:
    """run_sql with the server's limits (SHIPYARD_SQL_TIMEOUT_MS, SHIPYARD_SQL_MAX_ROWS);
    SqlFailed for anything the engine refuses."""
    try:
        return run_sql(dict(document), script, trained=trained, read_only=read_only,
                       limits=SqlLimits.from_env())
    except SqlError as exc:
        raise SqlFailed(exc, status=403 if exc.kind == "read_only" else 400) from None


def message_of(script: str) -> str:
    """A version's message for the script that made it: the script, cut to fit."""
    text = script.strip()
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


def changes_of(result: SqlResult) -> list[str]:
    """The statements of a script that changed something, as a lineage keeps them."""
    return [s.sql for s in result.statements if s.kind != "select"]


def trained(state: dict[str, Any], frozen: Any, dataset: Any, options: Any,
            config: Any) -> TrainedModel:
    """A trained model for run_sql from what a run or a derived model's lineage stored:
    `eval` and `heads` read a built-in dataset only, with the run's options and seed."""
    settings: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
    seed = settings.get("seed", 0)
    return TrainedModel(state=state,
                        frozen=frozenset(frozen if isinstance(frozen, list) else ()),
                        dataset=dataset if dataset in DATASETS else None,
                        dataset_options=dict(options) if isinstance(options, dict) else {},
                        config=settings, seed=seed if isinstance(seed, int) else 0)


def trained_model(weights: InitialWeights) -> TrainedModel:
    """The model a version's initial weights are, for run_sql: their tensors, their frozen
    names and, for a derived model, its run's dataset and settings."""
    lineage = weights.lineage if isinstance(weights.lineage, dict) else {}
    return trained(load(bytes(weights.data)), weights.frozen, lineage.get("dataset"),
                   lineage.get("dataset_options"), lineage.get("config"))


def _fits(document: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Whether a state dict is exactly the weights of `document`'s model (names and
    shapes, compared on the meta device)."""
    try:
        shapes = weight_shapes(dict(document))
    except GraphError:
        return False
    return shapes == {name: tuple(t.shape) for name, t in state.items()}


def version_model(version: GraphVersion,
                  document: Mapping[str, Any] | None = None) -> TrainedModel | None:
    """The trained model a script on `version` (or on `document`, an unsaved edit of it)
    runs with: the version's initial weights, if it has some and they fit the document."""
    row = version.initial_weights
    if row is None:
        return None
    trained = trained_model(row)
    if document is not None and not _fits(document, trained.state):
        return None  # the edit changed the weighted layers: no weights to query
    return trained


def lineage_after(version: GraphVersion, result: SqlResult) -> dict[str, Any]:
    """The lineage of the weights a script left on `version`'s model: the version's own,
    its statements extended (an imported model's starts at that version)."""
    row = version.initial_weights
    old = dict(row.lineage) if row is not None and isinstance(row.lineage, dict) else {}
    base = {"run": None, "graph": version.graph_id, "version": version.number,
            "statements": [], "dataset": None, "dataset_options": {}, "config": {}}
    lineage = {**base, **old}
    statements = lineage.get("statements")
    lineage["statements"] = [*(statements if isinstance(statements, list) else []),
                             *changes_of(result)]
    return lineage


@dataclass(frozen=True)
class GraphSqlAnswer:
    """What a script on a graph did: its result and, for a change, the version saved
    (`created`: False when it equals the latest, as for a save)."""

    result: SqlResult
    version: GraphVersion | None = None
    created: bool = False


def run_on_graph(*, graph: Graph, author: AbstractBaseUser, script: str,
                 number: int | None = None, document: Mapping[str, Any] | None = None,
                 base_version: int | None = None) -> GraphSqlAnswer:
    """Run `script` on version `number` of `graph` (default: `base_version` if there is
    one, else the latest), or on `document` instead, an unsaved edit of it, with that
    version's weights. A change is saved as the next version if its base is still the
    latest: `base_version`, required with a document; without one, the version the script
    ran on. Raises SqlFailed (the script is one transaction: nothing runs half), Conflict
    (409) or InvalidGraph like a save; nothing is stored then. 404 for a version `number`
    that does not exist."""
    if number is None and base_version:
        number = base_version if graph.versions.filter(number=base_version).exists() \
            else None
    version = selectors.version_of(graph, number)
    trained = version_model(version, document)
    result = run(document if document is not None else version.document, script,
                 trained=trained)
    if not result.changed:
        return GraphSqlAnswer(result)
    if base_version is None:
        if document is not None:
            raise serializers.ValidationError({"base_version": [
                "required with a document when the script changes the graph: the version "
                "the document was loaded from"]})
        base_version = version.number
    new_document = result.document if result.document is not None else (
        document if document is not None else version.document)
    weights = None
    if trained is not None and result.state is not None:
        weights = services.NewWeights(state=result.state,
                                      frozen=result.frozen or frozenset(),
                                      lineage=lineage_after(version, result))
    saved, created = services.save_version(
        graph=graph, author=author, document=new_document, base_version=base_version,
        message=message_of(script), weights=weights)
    return GraphSqlAnswer(result, saved, created)
