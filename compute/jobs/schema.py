"""The runs' bodies as OpenAPI components (`Job`, `JobEvent` and its kinds, `EventPage`,
`Dataset`, `Upload`), for the editor's generated TypeScript types. The events' schemas are
generated from their TypedDicts (events.py); the others are written here, and a test checks
them against the TypedDicts that type the bodies (`JobBody`, `UploadBody`,
`DatasetListing`). The post-processing hook `add_job_components` (SPECTACULAR_SETTINGS)
puts them into the document; the views refer to them by $ref.

`required` lists the members a body always has (see job_data, upload_data, events.to_event,
DatasetEntry.to_dict); `nullable: true` marks those that may be null."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, get_args

from pydantic import TypeAdapter

from builder.graphs.schema import sql_result_properties
from builder.rest import add_components, object_schema, ref
from compute.engine.datasets import KINDS
from compute.engine.probe import NextChars

from . import kinds
from .events import EVENT_TYPES, BenchmarkResult, FpgaResult, NonFinite, RunResult
from .explain import EdgesBody
from .models import Job, Upload

TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {**TIME, "nullable": True}
NONFINITE = {"type": "string", "enum": list(get_args(NonFinite))}


class AdminActionBody(TypedDict):
    """What an administrator did to a run (`AdminActionOnRun`), without who."""

    action: str
    detail: str
    at: datetime


class JobBody(TypedDict):
    """A run as the API gives it (`Job`; api.job_data)."""

    id: int
    graph: int
    graph_name: str
    version: int
    kind: str
    weights_of: int | None
    dataset: str
    upload: int | None
    dataset_options: dict[str, Any]
    config: dict[str, Any]
    queue: str
    time_limit: int
    status: str
    step: int
    total_steps: int
    position: int | None
    waiting_reason: str
    priority: int
    retry_of: int | None
    attempts: int
    device: str
    worker: str
    error: str
    cancel_requested: bool
    published: bool
    last_seq: int
    metrics: dict[str, float | None]
    nonfinite: dict[str, str]
    downloads: list[str]
    download_errors: dict[str, str]
    admin_actions: list[AdminActionBody]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    result: RunResult | None


class UploadBody(TypedDict):
    """An upload as the API gives it (`Upload`; api.upload_data)."""

    id: int
    name: str
    kind: str
    task: str
    target: str
    size: int
    summary: str
    source: str
    licence: str
    created_at: datetime


class RunCheckBody(TypedDict):
    """What POST /api/jobs/check answers (`RunCheck`; api.JobCheckView)."""

    ok: bool
    error: str | None
    problems: list[dict[str, Any]]
    queue: str | None
    warnings: list[dict[str, Any]]
    cpu_seconds: float | None


def _job() -> dict[str, Any]:
    return object_schema({
        "id": {"type": "integer"},
        "graph": {"type": "integer", "description": "The graph's id."},
        "graph_name": {"type": "string", "description": "The graph's title."},
        "version": {"type": "integer", "description": "The version number it trains."},
        "kind": {"type": "string", "enum": list(kinds.KINDS)},
        "weights_of": {"type": "integer", "nullable": True, "description": "A benchmark: "
                       "the training run whose weights it measures; null for fresh ones."},
        "dataset": {"type": "string", "description": "A built-in dataset's name, or 'upload'."},
        "upload": {"type": "integer", "nullable": True, "description": "The upload's id."},
        "dataset_options": {"type": "object", "additionalProperties": True},
        "config": {"type": "object", "additionalProperties": True,
                   "description": "The complete training configuration, defaults filled in "
                   "(docs/runs.md, Configuration)."},
        "queue": {"type": "string", "enum": ["cpu", "gpu", "fpga"]},
        "time_limit": {"type": "integer", "description": "Seconds."},
        "status": {"type": "string", "enum": Job.Status.values},
        "step": {"type": "integer"},
        "total_steps": {"type": "integer"},
        "position": {"type": "integer", "nullable": True, "description": "1 for the next run "
                     "its queue starts, in the order of the queue's rule (docs/queue.md); "
                     "null unless queued."},
        "waiting_reason": {"type": "string", "description": "Why a queued run waits, in "
                           "words (queue paused by an administrator, no worker serves the "
                           "gpu queue, your quota: ..., waiting for 3 runs ahead); empty "
                           "when it is next and nothing holds it, and for a run not "
                           "queued."},
        "priority": {"type": "integer", "description": "Higher starts sooner; 0 unless an "
                     "administrator changed it."},
        "retry_of": {"type": "integer", "nullable": True, "description": "The failed or "
                     "cancelled run an administrator requeued as this one."},
        "attempts": {"type": "integer"},
        "device": {"type": "string", "description": "Empty until started."},
        "worker": {"type": "string", "description": "Empty until started."},
        "error": {"type": "string", "description": "Why it failed, was cancelled or went "
                  "back to the queue; empty otherwise."},
        "cancel_requested": {"type": "boolean"},
        "published": {"type": "boolean"},
        "last_seq": {"type": "integer", "description": "The sequence number of its latest "
                     "event."},
        "metrics": {"type": "object", "additionalProperties": {"type": "number",
                                                                "nullable": True},
                    "description": "The latest value of each metric; null for one that is "
                    "not a finite number (see nonfinite)."},
        "nonfinite": {"type": "object", "additionalProperties": NONFINITE,
                      "description": "The metrics whose latest value is not a finite "
                      "number, and what it is."},
        "downloads": {"type": "array", "items": {"type": "string",
                                                 "enum": ["weights", "onnx", "pytorch",
                                                          "hls_project", "verilog"]},
                      "description": "The result formats ready to download (an FPGA run: "
                      "hls_project, and verilog when it made one)."},
        "download_errors": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "A format that could not be made, and why."},
        "admin_actions": {"type": "array", "items": ref("AdminActionOnRun"),
                          "description": "What administrators did to this run, oldest "
                          "first."},
        "created_at": TIME,
        "started_at": NULLABLE_TIME,
        "finished_at": NULLABLE_TIME,
        "heartbeat_at": NULLABLE_TIME,
        "result": {"oneOf": [ref("BenchmarkResult"), ref("FpgaResult")], "nullable": True,
                   "description": "A benchmark or FPGA run: what it found so far (its `kind` "
                   "says which); null for a training run, and until the run starts."},
    }, description="A run, training or benchmark (docs/runs.md, The run object).")


def openapi_schema(kind: type) -> dict[str, Any]:
    """A TypedDict's JSON Schema (pydantic's) in the OpenAPI 3.0 dialect of the rest of the
    document: a constant as a one-value enum, `nullable: true` for a null alternative, no
    titles. A typed dict inside another (a benchmark's per-node costs) is written in place."""
    schema = TypeAdapter(kind).json_schema()
    return _openapi_3_0(_inlined(schema, schema.pop("$defs", {})))


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with each `{"$ref": "#/$defs/X"}` replaced by X itself."""
    if isinstance(schema, list):
        return [_inlined(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _inlined({**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}},
                        defs)
    return {key: _inlined(value, defs) for key, value in schema.items()}


def _openapi_3_0(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _openapi_3_0(s) for name, s in value.items()}
        elif key in {"items", "additionalProperties"}:
            out[key] = _openapi_3_0(value)
        elif key in {"anyOf", "oneOf", "allOf"}:
            out[key] = [_openapi_3_0(s) for s in value]
        elif key == "const":
            out["enum"] = [value]
        elif key != "title":
            out[key] = value
    options = out.get("anyOf", [])
    if len(options) == 2 and {"type": "null"} in options:
        [other] = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        out = {**other, **out, "nullable": True}
    assert "$ref" not in out and "$defs" not in out, "nested types: give them components"
    return out


def _events() -> dict[str, Any]:
    """One component per kind of event, and `JobEvent`: one of them, by `type`."""
    schemas = {kind.__name__: openapi_schema(kind) for kind in EVENT_TYPES.values()}
    for schema in schemas.values():  # `type` first, as people read them
        schema["properties"] = {"type": schema["properties"].pop("type"),
                                **schema["properties"]}
    schemas["JobEvent"] = {
        "oneOf": [ref(name) for name in schemas],
        "discriminator": {"propertyName": "type", "mapping": {
            type_: ref(kind.__name__)["$ref"] for type_, kind in EVENT_TYPES.items()}},
        "description": "One thing a run reported; `type` says which.",
    }
    return schemas


def components() -> dict[str, Any]:
    return {
        "Job": _job(),
        "AdminActionOnRun": object_schema({
            "action": {"type": "string", "enum": ["cancel", "requeue", "priority",
                                                  "move_to_front"]},
            "detail": {"type": "string", "description": "What was done, in words."},
            "at": TIME,
        }, description="An administrator's action on a run (who is not shown)."),
        **_events(),
        "BenchmarkResult": {**openapi_schema(BenchmarkResult), "description": (
            "What a benchmark run measured, filled in as it goes (docs/runs.md, Benchmark "
            "runs); a training run has none (null).")},
        "FpgaResult": {**openapi_schema(FpgaResult), "description": (
            "What an FPGA run found, filled in as it goes (docs/fpga.md)")},
        "EventPage": object_schema({
            "events": {"type": "array", "items": ref("JobEvent")},
            "last_seq": {"type": "integer", "description": "The run's latest sequence "
                         "number, whatever the filter."},
            "more": {"type": "boolean", "description": "A full page: ask again with since "
                     "set to the last seq."},
        }),
        "Dataset": object_schema({
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": list(KINDS), "description": "What its samples "
                     "are: characters of a text, symbol tokens, images, points, table rows."},
            "description": {"type": "string"},
            "tasks": {"type": "array", "items": {"type": "string"},
                      "description": "classification, next_token, ..."},
            "gives": {"type": "string", "description": "Shapes and dtypes, in words."},
            "options": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "dataset_options it takes: name -> what it does."},
            "source": {"type": "string", "description": "Where it comes from (an address "
                       "or words); its run's dataset manifest says more."},
            "licence": {"type": "string", "description": "Its licence (an SPDX name, or "
                        "words such as public domain)."},
        }, description="A built-in dataset (GET /api/datasets)."),
        "ModelCard": object_schema({
            "markdown": {"type": "string", "description": "The card, Markdown: headings, "
                         "lists, bold and code; every user string in it is escaped."},
        }, description="A run's model card (GET /api/jobs/{id}/card)."),
        "Upload": object_schema({
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": Upload.Kind.values},
            "task": {"type": "string", "enum": ["classification", "regression",
                                                "next_token"]},
            "target": {"type": "string", "description": "CSV: the target column; empty for "
                       "a text."},
            "size": {"type": "integer", "description": "Bytes."},
            "summary": {"type": "string", "description": "What it holds, in words."},
            "source": {"type": "string", "description": "Where the data comes from (a web "
                       "address or words); empty: not declared."},
            "licence": {"type": "string", "description": "Its licence; empty: not "
                        "declared."},
            "created_at": TIME,
        }, description="One of your uploaded files."),
        "RunKind": {**object_schema({
            "kind": {"type": "string", "description": "A run's kind (train, benchmark)."},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "settings_schema": {"type": "object", "additionalProperties": True,
                                "description": "The JSON Schema of its settings (a run's "
                                "config); x-basic marks the settings a form shows first, "
                                "x-derived a default that follows from other settings."},
        }, description="A kind of run and its settings (GET /api/run-kinds)."),
            # What the server serves (its default limits): the editor's tests read it.
            "example": kinds.run_kinds()[0]},
        "JobSqlResult": object_schema({
            **sql_result_properties(),
            "derived": {"allOf": [ref("DerivedModel")], "nullable": True,
                        "description": "The model a change made; null when the script "
                        "changed nothing."},
        }, description="What a script on a run's trained model answered (POST "
            "/api/jobs/{id}/sql)."),
        "DerivedModel": object_schema({
            "graph": {"type": "integer", "description": "The new graph's id (yours)."},
            "version": {"type": "integer"},
            "url": {"type": "string", "description": "Its page in the editor."},
        }, description="A graph made from a run's model by a SQL change: its first version "
            "starts from the changed weights (initial weights, with their frozen names and "
            "lineage)."),
        "EdgeValues": {**openapi_schema(EdgesBody), "description": (
            "What flows on every edge for a run's fixed validation example (GET "
            "/api/jobs/{id}/edges), by source `node.port`.")},
        "NextChars": {**openapi_schema(NextChars), "description": (
            "A character model's likeliest next characters after a prompt, and where each "
            "head looked (POST /api/jobs/{id}/next).")},
        "RunCheck": object_schema({
            "ok": {"type": "boolean", "description": "Whether POST /api/jobs would queue "
                   "this run (the queue quotas aside)."},
            "error": {"type": "string", "nullable": True, "description": "The first "
                      "problem, as POST /api/jobs would give it; null when ok."},
            "problems": {"type": "array", "items": ref("Problem"), "description": "Every "
                         "problem of the first kind met, each naming its field (config.lr, "
                         "dataset) or node."},
            "queue": {"type": "string", "enum": ["cpu", "gpu", "fpga"], "nullable": True,
                      "description": "Where the run would wait; null unless ok."},
            "warnings": {"type": "array", "items": ref("Problem"), "description": "What "
                         "would run but not exactly as drawn (an FPGA run's blocks computed "
                         "with lookup tables), each naming its node."},
            "cpu_seconds": {"type": "number", "nullable": True, "description": "About how "
                            "many seconds it would train on a CPU; null unless ok."},
        }, description="Whether a run could start (POST /api/jobs/check)."),
    }


JOB_REF = ref("Job")
JOBS_REF = {"type": "array", "items": ref("Job")}
EVENT_PAGE_REF = ref("EventPage")
RUN_CHECK_REF = ref("RunCheck")


def add_job_components(result: dict[str, Any], generator: Any, request: Any,
                       public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: put the runs' bodies into the document."""
    return add_components(result, components())
