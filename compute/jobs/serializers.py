"""Request bodies and queries of the runs' API (validated here), and the one place each
response body is made (`job_data`, `jobs_data`, `upload_data`; their OpenAPI components are
in schema.py).

A query parameter that is not one of its choices is answered `{"error": "... must be one
of ..."}` (an ApiError), not with the per-field form of a bad body."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any, cast

from rest_framework import serializers

from builder.graphs.models import Graph
from builder.rest import ApiError
from compute.engine.manifest import is_url

from . import events, kinds, rule, selectors
from .events import RunResult
from .explain import MAX_PROMPT
from .models import AdminAction, Job, JobEvent, Upload
from .schema import JobBody, UploadBody

MAX_ID = 2**31 - 1


class RunIn(serializers.Serializer):
    """What a run is: the members of POST /api/jobs and POST /api/jobs/check alike."""

    version = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                       help_text="With `graph`; default: the latest. A run "
                                       "pins it.")
    kind = serializers.ChoiceField(choices=list(kinds.KINDS), default=kinds.TRAIN,
                                   help_text="train, benchmark or fpga (GET /api/run-kinds).")
    dataset = serializers.CharField(max_length=64, required=False,
                                    help_text="Training: a built-in dataset (GET "
                                    "/api/datasets); default (with no upload either): the "
                                    "dataset of the run a derived model came from. A "
                                    "benchmark or FPGA run takes none.")
    upload = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                      help_text="Training: or one of your uploads (POST "
                                      "/api/uploads).")
    dataset_options = serializers.DictField(required=False)
    config = serializers.DictField(required=False, help_text="The kind's settings (GET "
                                   "/api/run-kinds). Missing ones take their defaults.")
    time_limit = serializers.IntegerField(required=False, min_value=1,
                                          help_text="Seconds; default and most: the "
                                          "server's SHIPYARD_JOB_TIME_LIMIT.")
    weights = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                       help_text="A benchmark or FPGA run: the id of a "
                                       "succeeded training run of the same graph whose "
                                       "weights it takes (default: fresh weights).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Neither: a derived model's version trains on its run's dataset (services).
        if attrs["kind"] == kinds.TRAIN and "dataset" in attrs and "upload" in attrs:
            raise serializers.ValidationError("give either a dataset or an upload")
        return attrs


class JobCreateIn(RunIn):
    graph = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    published = serializers.BooleanField(default=False)


class QueryText(serializers.Field):
    """A query parameter as given, an empty one too, checked by its serializer's
    validate()."""

    allow_blank = True  # `?format=` is a bad format, not the default one

    def to_internal_value(self, data: Any) -> str:
        return str(data)

    def to_representation(self, value: Any) -> str:
        return str(value)


class PromptField(serializers.CharField):
    """A prompt as it is: a string (a number is not one), spaces kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("a prompt is a string")
        value: str = super().to_internal_value(data)
        return value


class NextIn(serializers.Serializer):
    prompt = PromptField(max_length=MAX_PROMPT, help_text=(
        "The text to continue; the model reads its last T characters (T: its Input)."))


class JobListQuery(serializers.Serializer):
    graph = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    status = QueryText(required=False)
    kind = QueryText(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        wanted = attrs.pop("status", "")
        if wanted and wanted not in Job.Status.values:
            raise ApiError(f"status must be one of {', '.join(Job.Status.values)}")
        kind = attrs.pop("kind", "")
        if kind and kind not in kinds.KINDS:
            raise ApiError(f"kind must be one of {', '.join(kinds.KINDS)}")
        return {**attrs, "status": wanted or None, "kind": kind or None}


class EventsQuery(serializers.Serializer):
    since = serializers.IntegerField(min_value=0, max_value=MAX_ID, default=0)
    types = QueryText(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        types = [t for t in attrs.pop("types", "").split(",") if t]
        bad = sorted(set(types) - set(JobEvent.Type.values))
        if bad:
            raise ApiError(f"no event type {bad[0]!r}; types: "
                           f"{', '.join(JobEvent.Type.values)}")
        return {**attrs, "types": types}


class JobDownloadQuery(serializers.Serializer):
    format = QueryText(default="weights")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["format"] not in selectors.RESULT_FILES:
            raise ApiError(f"format must be one of {', '.join(selectors.RESULT_FILES)}")
        return attrs


class ManifestQuery(serializers.Serializer):
    download = serializers.BooleanField(default=False)
    share = serializers.CharField(required=False, max_length=200)


class CardQuery(ManifestQuery):
    format = serializers.ChoiceField(choices=["json", "markdown"], default="json")


class JobPatchIn(serializers.Serializer):
    published = serializers.BooleanField()


MAX_SOURCE, MAX_LICENCE = 500, 200  # characters; as the Upload model's fields
# A scheme and something right after it ("javascript:x", "ftp://x"): words that are an
# address, which must then be an http(s) one. "Source: a book" (a space after) is words.
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:\S", re.IGNORECASE)
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def declared_text(value: str, field: str) -> str:
    """An upload's source or licence: one line of plain text (no control or format
    characters); one that looks like an address must be an http or https one."""
    bad = next((c for c in value if unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        raise serializers.ValidationError(
            f"the {field} must be one line of plain text; it holds the character "
            f"U+{ord(bad):04X}")
    if _SCHEME.match(value) and not is_url(value):
        raise serializers.ValidationError(
            f"the {field} looks like a web address but is not an http or https one; give "
            "an http(s) address, or words")
    return value


class UploadIn(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=Upload.Kind.values, required=False,
                                   help_text="Default: from the file name (.csv or text).")
    target = serializers.CharField(max_length=200, required=False, allow_blank=True)
    task = serializers.ChoiceField(choices=["classification", "regression"],
                                   default="classification")
    source = serializers.CharField(max_length=MAX_SOURCE, required=False, allow_blank=True,
                                   help_text="Where the data comes from: a web address "
                                   "(http or https) or words, one line. Default: not "
                                   "declared.")
    licence = serializers.CharField(max_length=MAX_LICENCE, required=False, allow_blank=True,
                                    help_text="Its licence (e.g. CC-BY-4.0), one line. "
                                    "Default: not declared.")

    def validate_source(self, value: str) -> str:
        return declared_text(value, "source")

    def validate_licence(self, value: str) -> str:
        return declared_text(value, "licence")


class JobCheckIn(RunIn):
    document = serializers.JSONField(required=False, help_text="A graph document, saved or "
                                     "not (the editor's current one); or `graph`.")
    graph = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if ("document" in attrs) == ("graph" in attrs):
            raise serializers.ValidationError("give either a document or a graph")
        if "document" in attrs and not isinstance(attrs["document"], dict):
            raise serializers.ValidationError({"document": "a graph document is a JSON "
                                               "object"})
        if "version" in attrs and "graph" not in attrs:
            raise serializers.ValidationError({"version": "a version goes with a graph"})
        return attrs


# Responses


def job_data(job: Job) -> JobBody:
    """One run (its place in the queue costs a few queries when it is queued)."""
    return jobs_data([job])[0]


def jobs_data(jobs: Iterable[Job]) -> list[JobBody]:
    """A page of runs, their queue positions, reasons and admin actions read at once."""
    page = list(jobs)
    waiting = rule.waiting_info(page)
    actions = selectors.admin_actions_of(page)
    result = []
    for job in page:
        position, reason = waiting.get(job.id, (None, ""))
        result.append(_job_data(job, position, reason, actions.get(job.id, [])))
    return result


def _job_data(job: Job, position: int | None, reason: str,
              actions: list[AdminAction]) -> JobBody:
    files = {k: v for k, v in job.files.items() if not k.endswith("_error")}
    metrics, nonfinite = events.latest_metrics(job.metrics)
    return {
        "id": job.id, "graph": job.graph_id, "graph_name": job.graph.name,
        "version": job.version.number, "kind": job.kind, "weights_of": job.weights_of_id,
        "dataset": job.dataset,
        "upload": job.upload_id, "dataset_options": job.dataset_options,
        "config": job.config, "queue": job.queue, "time_limit": job.time_limit,
        "status": job.status, "step": job.step, "total_steps": job.total_steps,
        "position": position, "waiting_reason": reason, "priority": job.priority,
        "retry_of": job.retry_of_id, "attempts": job.attempts,
        "device": job.device, "worker": job.worker, "error": job.error,
        "cancel_requested": job.cancel_requested, "published": job.published,
        "last_seq": job.last_seq, "metrics": metrics, "nonfinite": nonfinite,
        "downloads": sorted(files), "download_errors": {
            k[:-6]: v for k, v in job.files.items() if k.endswith("_error")},
        "admin_actions": [{"action": a.action, "detail": a.detail, "at": a.at}
                          for a in actions],
        "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "heartbeat_at": job.heartbeat_at,
        "result": cast(RunResult, job.result) if job.result else None,
    }


def upload_data(upload: Upload) -> UploadBody:
    return {"id": upload.id, "name": upload.name, "kind": upload.kind, "task": upload.task,
            "target": upload.target, "size": upload.size, "summary": upload.summary,
            "source": upload.source, "licence": upload.licence,
            "created_at": upload.created_at}


def job_sql_data(result: dict[str, Any], derived: Graph | None) -> dict[str, Any]:
    """POST /api/jobs/{id}/sql: the script's result (SqlResult.to_json()) and the derived
    model a change made (JobSqlResult)."""
    return {**result, "derived": None if derived is None else {
        "graph": derived.id, "version": derived.head, "url": f"/g/{derived.id}"}}
