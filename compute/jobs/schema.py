"""The runs' bodies as OpenAPI components (`Job`, `JobEvent`, `EventPage`, `Dataset`,
`Upload`), for the editor's generated TypeScript types. The post-processing hook
`add_job_components` (SPECTACULAR_SETTINGS) puts them into the document; the views refer to
them by $ref.

`required` lists the members a body always has (see job_data, upload_data, events.to_event,
DatasetEntry.to_dict); `nullable: true` marks those that may be null."""

from __future__ import annotations

from typing import Any

from builder.rest import add_components, integers, object_schema, ref

from .models import Job, JobEvent, Upload

TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {**TIME, "nullable": True}
NONFINITE = {"type": "string", "enum": ["nan", "inf", "-inf"]}


def _job() -> dict[str, Any]:
    return object_schema({
        "id": {"type": "integer"},
        "graph": {"type": "integer", "description": "The graph's id."},
        "graph_name": {"type": "string", "description": "The graph's title."},
        "version": {"type": "integer", "description": "The version number it trains."},
        "kind": {"type": "string", "enum": ["train"]},
        "dataset": {"type": "string", "description": "A built-in dataset's name, or 'upload'."},
        "upload": {"type": "integer", "nullable": True, "description": "The upload's id."},
        "dataset_options": {"type": "object", "additionalProperties": True},
        "config": {"type": "object", "additionalProperties": True,
                   "description": "The complete training configuration, defaults filled in "
                   "(docs/runs.md, Configuration)."},
        "queue": {"type": "string", "enum": ["cpu", "gpu"]},
        "time_limit": {"type": "integer", "description": "Seconds."},
        "status": {"type": "string", "enum": Job.Status.values},
        "step": {"type": "integer"},
        "total_steps": {"type": "integer"},
        "position": {"type": "integer", "nullable": True, "description": "1 for the next run "
                     "its queue starts; null unless queued."},
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
                                                 "enum": ["weights", "onnx", "pytorch"]},
                      "description": "The result formats ready to download."},
        "download_errors": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "A format that could not be made, and why."},
        "created_at": TIME,
        "started_at": NULLABLE_TIME,
        "finished_at": NULLABLE_TIME,
        "heartbeat_at": NULLABLE_TIME,
    }, description="A training run (docs/runs.md, The run object).")


def _event() -> dict[str, Any]:
    return object_schema({
        "type": {"type": "string", "enum": JobEvent.Type.values},
        "seq": {"type": "integer", "description": "1, 2, 3, ... within the run."},
        "step": {"type": "integer", "description": "Optimizer steps done when reported."},
        "time": {"type": "number", "description": "Unix seconds."},
        # status
        "status": {"type": "string", "enum": Job.Status.values,
                   "description": "status events: the run's new status."},
        "total": {"type": "integer", "description": "status events: total_steps."},
        "attempts": {"type": "integer", "description": "status events."},
        "device": {"type": "string", "description": "status events."},
        "worker": {"type": "string", "description": "status events."},
        "error": {"type": "string", "description": "status events: the run's error then."},
        # metric
        "name": {"type": "string", "description": "metric events: train_loss, val_loss, "
                 "val_accuracy, lr, grad_norm, samples_per_s, tokens_per_s."},
        "value": {"type": "number", "nullable": True, "description": "metric events; null "
                  "for a value that is not a finite number (see nonfinite)."},
        "nonfinite": {**NONFINITE, "description": "metric events whose value is not a "
                      "finite number (JSON has none): what it is. A diverged loss."},
        # attention
        "node": {"type": "string", "description": "attention events: the module's path, "
                 "e.g. blocks.0.attn."},
        **integers("heads", "rows", "cols"),
        "scale": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                  "description": "attention events: scale[head][row], the row's largest "
                  "weight."},
        "data": {"type": "string", "format": "byte", "description": "attention events: "
                 "base64 of heads x rows x cols bytes; weight = byte / 255 x "
                 "scale[head][row]."},
        # sample
        "text": {"type": "string", "description": "sample events: the text the model wrote."},
    }, optional=("status", "total", "attempts", "device", "worker", "error", "name", "value",
                 "nonfinite", "node", "heads", "rows", "cols", "scale", "data", "text"),
        description="One thing a run reported. Which optional members it has depends on "
        "`type`: status (status, total, attempts, device, worker, error), metric (name, "
        "value, nonfinite), attention (node, heads, rows, cols, scale, data), sample (text).")


def components() -> dict[str, Any]:
    return {
        "Job": _job(),
        "JobEvent": _event(),
        "EventPage": object_schema({
            "events": {"type": "array", "items": ref("JobEvent")},
            "last_seq": {"type": "integer", "description": "The run's latest sequence "
                         "number, whatever the filter."},
            "more": {"type": "boolean", "description": "A full page: ask again with since "
                     "set to the last seq."},
        }),
        "Dataset": object_schema({
            "name": {"type": "string"},
            "description": {"type": "string"},
            "tasks": {"type": "array", "items": {"type": "string"},
                      "description": "classification, next_token, ..."},
            "gives": {"type": "string", "description": "Shapes and dtypes, in words."},
            "options": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "dataset_options it takes: name -> what it does."},
        }, description="A built-in dataset (GET /api/datasets)."),
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
            "created_at": TIME,
        }, description="One of your uploaded files."),
    }


JOB_REF = ref("Job")
JOBS_REF = {"type": "array", "items": ref("Job")}
EVENT_PAGE_REF = ref("EventPage")


def add_job_components(result: dict[str, Any], generator: Any, request: Any,
                       public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: put the runs' bodies into the document."""
    return add_components(result, components())
