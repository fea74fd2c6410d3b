"""REST endpoints for runs, datasets and uploads: parse, call one service or selector,
serialize. Errors are `{"error": ...}` like the rest of the API."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builder.graphs import selectors as graph_selectors
from builder.graphs.api import ERROR, _parsed
from builder.graphs.schema import ref
from compute.engine.datasets import DATASETS

from . import events, kinds, selectors, services
from .models import Job, JobEvent, Upload
from .schema import (
    EVENT_PAGE_REF,
    JOB_REF,
    JOBS_REF,
    RUN_CHECK_REF,
    JobBody,
    RunCheckBody,
    UploadBody,
)

SHARE = OpenApiParameter("share", str, description="A share link's token: watch a run its "
                         "owner published, without logging in.")


class JobCreateIn(serializers.Serializer):
    graph = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False,
                                       help_text="Default: the latest. The run pins it.")
    kind = serializers.ChoiceField(choices=["train"], default="train")
    dataset = serializers.CharField(max_length=64, required=False,
                                    help_text="A built-in dataset (GET /api/datasets).")
    upload = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False,
                                      help_text="Or one of your uploads (POST /api/uploads).")
    dataset_options = serializers.DictField(required=False)
    config = serializers.DictField(required=False, help_text="Training settings (GET "
                                   "/api/run-kinds). Missing ones take their defaults.")
    time_limit = serializers.IntegerField(required=False, min_value=1,
                                          help_text="Seconds; default and most: the "
                                          "server's SHIPYARD_JOB_TIME_LIMIT.")
    published = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("dataset" in attrs) == ("upload" in attrs):
            raise serializers.ValidationError("give either a dataset or an upload")
        return attrs


class JobListQuery(serializers.Serializer):
    graph = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)


class EventsQuery(serializers.Serializer):
    since = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)


class JobPatchIn(serializers.Serializer):
    published = serializers.BooleanField()


class UploadIn(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=Upload.Kind.values, required=False,
                                   help_text="Default: from the file name (.csv or text).")
    target = serializers.CharField(max_length=200, required=False, allow_blank=True)
    task = serializers.ChoiceField(choices=["classification", "regression"],
                                   default="classification")


def job_data(job: Job) -> JobBody:
    files = {k: v for k, v in job.files.items() if not k.endswith("_error")}
    metrics, nonfinite = events.latest_metrics(job.metrics)
    return {
        "id": job.id, "graph": job.graph_id, "graph_name": job.graph.name,
        "version": job.version.number, "kind": job.kind, "dataset": job.dataset,
        "upload": job.upload_id, "dataset_options": job.dataset_options,
        "config": job.config, "queue": job.queue, "time_limit": job.time_limit,
        "status": job.status, "step": job.step, "total_steps": job.total_steps,
        "position": selectors.queue_position(job), "attempts": job.attempts,
        "device": job.device, "worker": job.worker, "error": job.error,
        "cancel_requested": job.cancel_requested, "published": job.published,
        "last_seq": job.last_seq, "metrics": metrics, "nonfinite": nonfinite,
        "downloads": sorted(files), "download_errors": {
            k[:-6]: v for k, v in job.files.items() if k.endswith("_error")},
        "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "heartbeat_at": job.heartbeat_at,
    }


def upload_data(upload: Upload) -> UploadBody:
    return {"id": upload.id, "name": upload.name, "kind": upload.kind, "task": upload.task,
            "target": upload.target, "size": upload.size, "summary": upload.summary,
            "created_at": upload.created_at}


class JobListView(APIView):
    @extend_schema(operation_id="jobs_list", parameters=[
        OpenApiParameter("graph", int, description="Only the runs of this graph."),
        OpenApiParameter("status", str, enum=Job.Status.values)],
        responses={200: JOBS_REF, 400: ERROR})
    def get(self, request: Request) -> Response:
        query = _parsed(JobListQuery, request.query_params)
        wanted = request.query_params.get("status")
        if wanted and wanted not in Job.Status.values:
            return Response({"error": f"status must be one of {', '.join(Job.Status.values)}"},
                            status=status.HTTP_400_BAD_REQUEST)
        jobs = selectors.jobs_of(request.user, graph_id=query.get("graph"), status=wanted)
        return Response([job_data(j) for j in jobs[:200]])

    @extend_schema(operation_id="jobs_create", request=JobCreateIn,
                   responses={201: JOB_REF, 400: ERROR, 404: ERROR, 429: ERROR,
                              503: ERROR})
    def post(self, request: Request) -> Response:
        """Queue a run of a saved graph (201 at once; follow it at /api/jobs/{id} or
        /ws/jobs/{id}/). Everything is checked first, the fit of the dataset included:
        400 names what is wrong, 429 when you have the most runs queued."""
        body = _parsed(JobCreateIn, request.data)
        graph = graph_selectors.graph_of(request.user, body["graph"])
        version = graph_selectors.version_of(graph, body.get("version"))
        upload = (selectors.upload_of(request.user, body["upload"]) if "upload" in body
                  else None)
        job = services.submit_job(
            owner=request.user, graph=graph, version=version, dataset=body.get("dataset"),
            upload=upload, dataset_options=body.get("dataset_options"),
            config=body.get("config"), time_limit=body.get("time_limit"),
            published=body["published"])
        return Response(job_data(job), status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    permission_classes = [AllowAny]  # the owner, or anyone with a share link (published)

    @extend_schema(operation_id="jobs_retrieve", parameters=[SHARE],
                   responses={200: JOB_REF, 404: ERROR})
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        return Response(job_data(job))

    @extend_schema(operation_id="jobs_destroy", responses={204: None, 404: ERROR})
    def delete(self, request: Request, job_id: int) -> Response:
        """Delete a run with its events, checkpoints and results. One still queued or
        running is cancelled first: its worker stops within a second."""
        services.delete_job(selectors.job_of(_user(request), job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="jobs_update", request=JobPatchIn,
                   responses={200: JOB_REF, 404: ERROR})
    def patch(self, request: Request, job_id: int) -> Response:
        """Publish a run (anyone with a share link of its graph may watch it) or not."""
        job = selectors.job_of(_user(request), job_id)
        body = _parsed(JobPatchIn, request.data)
        return Response(job_data(services.set_published(job, body["published"])))


def _user(request: Request) -> Any:
    from rest_framework.exceptions import NotAuthenticated

    if not request.user.is_authenticated:
        raise NotAuthenticated()
    return request.user


class JobCancelView(APIView):
    @extend_schema(operation_id="jobs_cancel", request=None,
                   responses={200: JOB_REF, 404: ERROR, 409: ERROR})
    def post(self, request: Request, job_id: int) -> Response:
        """Cancel a queued run at once, or ask a running one to stop: it ends cancelled
        within a few seconds, keeping its last checkpoint. 409 if it already ended."""
        return Response(job_data(services.cancel_job(selectors.job_of(request.user,
                                                                      job_id))))


class JobEventsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jobs_metrics", parameters=[
        OpenApiParameter("since", int, description="Events after this sequence number "
                         "(default 0: all)."),
        OpenApiParameter("types", str, description="Comma-separated: status, metric, "
                         "attention, sample (default: all)."),
        SHARE], responses={200: EVENT_PAGE_REF, 404: ERROR})
    def get(self, request: Request, job_id: int) -> Response:
        """Everything the run reported after `since`, in order: what a WebSocket client
        missed. At most 5000 a page; `more` says whether to ask again."""
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        since = _parsed(EventsQuery, request.query_params)["since"]
        types = [t for t in request.query_params.get("types", "").split(",") if t]
        bad = sorted(set(types) - set(JobEvent.Type.values))
        if bad:
            return Response({"error": f"no event type {bad[0]!r}; types: "
                             f"{', '.join(JobEvent.Type.values)}"},
                            status=status.HTTP_400_BAD_REQUEST)
        rows = selectors.events_after(job, since, types=types)
        return Response({"events": [events.to_event(r) for r in rows],
                         "last_seq": job.last_seq,
                         "more": len(rows) == selectors.MAX_EVENTS_PER_PAGE})


class JobAttentionView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jobs_attention", parameters=[SHARE],
                   responses={200: EVENT_PAGE_REF, 404: ERROR})
    def get(self, request: Request, job_id: int) -> Response:
        """The newest attention map of every attention module (older snapshots: the
        `attention` events of /metrics)."""
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        rows = selectors.latest_attention(job)
        return Response({"events": [events.to_event(r) for r in rows],
                         "last_seq": job.last_seq, "more": False})


DOWNLOADS = {"weights": ("model.safetensors", "application/octet-stream"),
             "onnx": ("model.onnx", "application/onnx"),
             "pytorch": ("model.py", "text/x-python"),
             "pytorch_weights": ("model.pt", "application/octet-stream")}


class JobDownloadView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jobs_download", parameters=[
        OpenApiParameter("format", str, enum=list(DOWNLOADS), default="weights"), SHARE],
        responses={(200, "application/octet-stream"): OpenApiResponse(
            description="The trained weights (safetensors), the model as ONNX, or as a "
            "PyTorch file (and its weights for it, pytorch_weights)"), 404: ERROR})
    def get(self, request: Request, job_id: int) -> Any:
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        fmt = request.query_params.get("format", "weights")
        if fmt not in DOWNLOADS:
            return Response({"error": f"format must be one of {', '.join(DOWNLOADS)}"},
                            status=status.HTTP_400_BAD_REQUEST)
        key = "pytorch" if fmt == "pytorch_weights" else fmt
        if key not in job.files:
            why = job.files.get(f"{key}_error") or (
                f"the run ended {job.status}" if job.finished else "the run has not ended")
            raise Http404(f"run {job.id} has no {fmt} file: {why}")
        name, content_type = DOWNLOADS[fmt]
        path = job.folder / name
        if not path.is_file():
            raise Http404(f"run {job.id}'s {name} is missing from its folder")
        stem = f"{job.graph.name}-run{job.id}".replace('"', "").replace(" ", "-")
        return FileResponse(path.open("rb"), as_attachment=True, content_type=content_type,
                            filename=f"{stem}{path.suffix}")


class DatasetListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="datasets", responses={200: {
        "type": "array", "items": ref("Dataset"), "description": "The built-in datasets."}})
    def get(self, request: Request) -> Response:
        return Response([entry.to_dict() for entry in DATASETS.values()])


class RunKindListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="run_kinds", responses={200: {
        "type": "array", "items": ref("RunKind"), "description": "The kinds of run."}})
    def get(self, request: Request) -> Response:
        """Each kind of run with the JSON Schema of its settings (a run's `config`): titles,
        descriptions, defaults, ranges and choices, as the editor's run form shows them."""
        return Response(kinds.run_kinds())


class UploadListView(APIView):
    @extend_schema(operation_id="uploads_list",
                   responses={200: {"type": "array", "items": ref("Upload")}})
    def get(self, request: Request) -> Response:
        return Response([upload_data(u) for u in selectors.uploads_of(request.user)])

    @extend_schema(operation_id="uploads_create", request={"multipart/form-data": UploadIn},
                   responses={201: ref("Upload"), 400: ERROR, 413: ERROR, 429: ERROR})
    def post(self, request: Request) -> Response:
        """Upload a CSV (header row, numeric features, a target column: the last unless
        `target` names one) or a plain text for a character model. It is read as a run
        would read it; 400 names the line and column of a problem."""
        body = _parsed(UploadIn, request.data)
        file = body["file"]
        name = file.name or "upload"
        kind = body.get("kind") or ("csv" if name.lower().endswith(".csv") else "text")
        upload = services.create_upload(owner=request.user, name=name, content=file.read(),
                                        kind=kind, target=body.get("target"),
                                        task=body["task"])
        return Response(upload_data(upload), status=status.HTTP_201_CREATED)

    parser_classes = [MultiPartParser]


class UploadDetailView(APIView):
    @extend_schema(operation_id="uploads_destroy", responses={204: None, 404: ERROR,
                                                              409: ERROR})
    def delete(self, request: Request, upload_id: int) -> Response:
        services.delete_upload(selectors.upload_of(request.user, upload_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SharedJobListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="shared_jobs",
                   responses={200: JOBS_REF, 404: ERROR})
    def get(self, request: Request, token: str) -> Response:
        """The runs of a shared graph that its owner published."""
        return Response([job_data(j) for j in selectors.shared_jobs(token)[:200]])


class JobCheckIn(serializers.Serializer):
    document = serializers.JSONField(required=False, help_text="A graph document, saved or "
                                     "not (the editor's current one); or `graph`.")
    graph = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False,
                                       help_text="With `graph`; default: the latest.")
    kind = serializers.ChoiceField(choices=["train"], default="train")
    dataset = serializers.CharField(max_length=64, required=False)
    upload = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    dataset_options = serializers.DictField(required=False)
    config = serializers.DictField(required=False)
    time_limit = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("dataset" in attrs) == ("upload" in attrs):
            raise serializers.ValidationError("give either a dataset or an upload")
        if ("document" in attrs) == ("graph" in attrs):
            raise serializers.ValidationError("give either a document or a graph")
        if "document" in attrs and not isinstance(attrs["document"], dict):
            raise serializers.ValidationError({"document": "a graph document is a JSON "
                                               "object"})
        if "version" in attrs and "graph" not in attrs:
            raise serializers.ValidationError({"version": "a version goes with a graph"})
        return attrs


class JobCheckView(APIView):
    @extend_schema(operation_id="jobs_check", request=JobCheckIn,
                   responses={200: RUN_CHECK_REF, 400: ERROR, 404: ERROR, 413: ERROR})
    def post(self, request: Request) -> Response:
        """Would POST /api/jobs queue this run? The same checks (the settings, the graph,
        the dataset's fit), on a saved version or an unsaved document, and nothing is
        stored: `ok`, the problems, and for a run that can start its queue and about how
        long it takes on a CPU. 400 only for a body that is not a check's."""
        body = _parsed(JobCheckIn, request.data)
        if "graph" in body:
            graph = graph_selectors.graph_of(request.user, body["graph"])
            document = graph_selectors.version_of(graph, body.get("version")).document
        else:
            document = body["document"]
        upload = (selectors.upload_of(request.user, body["upload"]) if "upload" in body
                  else None)
        answer: RunCheckBody
        try:
            plan = services.check_run(
                document=document, dataset=body.get("dataset"), upload=upload,
                dataset_options=body.get("dataset_options"), config=body.get("config"),
                time_limit=body.get("time_limit"))
        except services.JobError as exc:
            answer = {"ok": False, "error": str(exc), "problems": services.problems_of(exc),
                      "queue": None, "cpu_seconds": None}
        else:
            answer = {"ok": True, "error": None, "problems": [], "queue": plan.queue,
                      "cpu_seconds": round(plan.cpu_seconds(), 1)}
        return Response(answer)
