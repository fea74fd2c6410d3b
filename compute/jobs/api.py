"""REST endpoints for runs, datasets and uploads: parse, call one service or selector,
serialize. Errors are `{"error": ...}` like the rest of the API."""

from __future__ import annotations

import json
from typing import Any

from django.http import FileResponse, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builder.accounts.throttles import AnonymousThrottle
from builder.graphs import selectors as graph_selectors
from builder.graphs.serializers import SqlIn
from builder.rest import ERROR, ApiError, parsed, ref
from compute.engine.datasets import DATASETS

from . import cards, events, explain, kinds, selectors, services, sql
from .models import Job
from .schema import EVENT_PAGE_REF, JOB_REF, JOBS_REF, RUN_CHECK_REF, RunCheckBody
from .serializers import (
    CardQuery,
    EventsQuery,
    JobCheckIn,
    JobCreateIn,
    JobDownloadQuery,
    JobListQuery,
    JobPatchIn,
    ManifestQuery,
    NextIn,
    UploadIn,
    job_data,
    job_sql_data,
    jobs_data,
    upload_data,
)

SHARE = OpenApiParameter("share", str, description="A share link's token: watch a run its "
                         "owner published, without logging in.")


class JobListView(APIView):
    @extend_schema(operation_id="jobs_list", parameters=[
        OpenApiParameter("graph", int, description="Only the runs of this graph."),
        OpenApiParameter("status", str, enum=Job.Status.values),
        OpenApiParameter("kind", str, enum=list(kinds.KINDS))],
        responses={200: JOBS_REF, 400: ERROR})
    def get(self, request: Request) -> Response:
        query = parsed(JobListQuery, request.query_params)
        jobs = selectors.jobs_of(request.user, graph_id=query.get("graph"),
                                 status=query["status"], kind=query["kind"])
        return Response(jobs_data(jobs[:200]))

    @extend_schema(operation_id="jobs_create", request=JobCreateIn,
                   responses={201: JOB_REF, 400: ERROR, 404: ERROR, 429: ERROR,
                              503: ERROR})
    def post(self, request: Request) -> Response:
        """Queue a run of a saved graph, training or benchmark (201 at once; follow it at
        /api/jobs/{id} or /ws/jobs/{id}/). Everything is checked first, the fit of the
        dataset and the weights a benchmark takes included: 400 names what is wrong, 404 a
        graph, upload or weights run that is not yours, 429 when you have the most runs
        queued."""
        body = parsed(JobCreateIn, request.data)
        graph = graph_selectors.graph_of(request.user, body["graph"])
        version = graph_selectors.version_of(graph, body.get("version"))
        upload = (selectors.upload_of(request.user, body["upload"]) if "upload" in body
                  else None)
        job = services.submit_job(
            owner=request.user, graph=graph, version=version, kind=body["kind"],
            dataset=body.get("dataset"), upload=upload,
            dataset_options=body.get("dataset_options"), config=body.get("config"),
            time_limit=body.get("time_limit"), weights=body.get("weights"),
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

    @extend_schema(operation_id="jobs_destroy", responses={204: None, 404: ERROR,
                                                           409: ERROR})
    def delete(self, request: Request, job_id: int) -> Response:
        """Delete a run with its events, checkpoints and results. One still queued or
        running is cancelled first: its worker stops within a second. 409 for a training
        run whose weights a queued or running benchmark takes."""
        services.delete_job(selectors.job_of(_user(request), job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="jobs_update", request=JobPatchIn,
                   responses={200: JOB_REF, 404: ERROR})
    def patch(self, request: Request, job_id: int) -> Response:
        """Publish a run (anyone with a share link of its graph may watch it) or not."""
        job = selectors.job_of(_user(request), job_id)
        body = parsed(JobPatchIn, request.data)
        return Response(job_data(services.set_published(job, body["published"])))


def _user(request: Request) -> Any:
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
                         "attention, sample, progress, benchmark, node_costs (default: "
                         "all)."),
        SHARE], responses={200: EVENT_PAGE_REF, 404: ERROR})
    def get(self, request: Request, job_id: int) -> Response:
        """Everything the run reported after `since`, in order: what a WebSocket client
        missed. At most 5000 a page; `more` says whether to ask again."""
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        query = parsed(EventsQuery, request.query_params)
        rows = selectors.events_after(job, query["since"], types=query["types"])
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


class JobDownloadView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jobs_download", parameters=[
        OpenApiParameter("format", str, enum=list(selectors.RESULT_FILES),
                         default="weights"), SHARE],
        responses={(200, "application/octet-stream"): OpenApiResponse(
            description="The trained weights (safetensors), the model as ONNX, or as a "
            "PyTorch file (and its weights for it, pytorch_weights); an FPGA run's HLS "
            "project (hls_project) or Verilog (verilog), as .tar.gz"), 404: ERROR,
        503: ERROR})
    def get(self, request: Request, job_id: int) -> Any:
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        fmt = parsed(JobDownloadQuery, request.query_params)["format"]
        file, filename, content_type = selectors.result_file(job, fmt)
        return FileResponse(file, as_attachment=True, content_type=content_type,
                            filename=filename)


def _with_manifest(request: Request, job_id: int, token: str | None) -> Job:
    job = selectors.watchable_job_or_404(request.user, job_id, token)
    if not job.manifest:
        raise ApiError(f"run {job.id} recorded no dataset manifest: it trains nothing, or "
                       "it ended before its data was loaded", status=404)
    return job


DOWNLOAD = OpenApiParameter("download", bool, description="1: as a file to save "
                            "(Content-Disposition: attachment).")
MANIFEST_RESPONSE = OpenApiResponse({"type": "object", "additionalProperties": True},
                                    description="The dataset manifest: MLCommons Croissant "
                                    "1.0 JSON-LD, with Shipyard's fields (shipyard:*)")
CARD_RESPONSE = OpenApiResponse(ref("ModelCard"), description="The model card as Markdown "
                                "({markdown}); ?format=markdown: the Markdown itself")


def manifest_response(request: Request, job_id: int, token: str | None) -> Any:
    query = parsed(ManifestQuery, request.query_params)
    job = _with_manifest(request, job_id, token or query.get("share"))
    if not query["download"]:
        return Response(job.manifest)
    response = HttpResponse(json.dumps(job.manifest, indent=2, ensure_ascii=False),
                            content_type="application/ld+json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{cards.manifest_filename(job)}"'
    return response


def card_response(request: Request, job_id: int, token: str | None) -> Any:
    query = parsed(CardQuery, request.query_params)
    job = selectors.watchable_job_or_404(request.user, job_id, token or query.get("share"))
    markdown = cards.model_card(job)
    if query["format"] == "json" and not query["download"]:
        return Response({"markdown": markdown})
    response = HttpResponse(markdown, content_type="text/markdown; charset=utf-8")
    if query["download"]:
        response["Content-Disposition"] = (f'attachment; filename="shipyard-run-{job.id}-'
                                           'model-card.md"')
    return response


class JobManifestView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jobs_manifest", parameters=[DOWNLOAD, SHARE],
                   responses={200: MANIFEST_RESPONSE, 400: ERROR, 404: ERROR})
    def get(self, request: Request, job_id: int) -> Any:
        """The dataset manifest a training run recorded when it loaded its data (docs/
        runs.md): name, source, licence, size, SHA-256 of the exact bytes, vocabulary,
        split and preprocessing. 404 for a run without one (a benchmark)."""
        return manifest_response(request, job_id, None)


class JobCardView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jobs_card", parameters=[
        OpenApiParameter("format", str, enum=["json", "markdown"], default="json"),
        DOWNLOAD, SHARE], responses={200: CARD_RESPONSE, 400: ERROR, 404: ERROR})
    def get(self, request: Request, job_id: int) -> Any:
        """The run's model card: architecture, parameters, training settings, final
        metrics, its dataset manifest summed up, intended use and limits."""
        return card_response(request, job_id, None)


class SharedJobManifestView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="shared_jobs_manifest", parameters=[DOWNLOAD],
                   responses={200: MANIFEST_RESPONSE, 400: ERROR, 404: ERROR})
    def get(self, request: Request, token: str, job_id: int) -> Any:
        """A published run's dataset manifest, through a live share link of its graph."""
        return manifest_response(request, job_id, token)


class SharedJobCardView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="shared_jobs_card", parameters=[
        OpenApiParameter("format", str, enum=["json", "markdown"], default="json"),
        DOWNLOAD], responses={200: CARD_RESPONSE, 400: ERROR, 404: ERROR})
    def get(self, request: Request, token: str, job_id: int) -> Any:
        """A published run's model card, through a live share link of its graph."""
        return card_response(request, job_id, token)
class JobEdgesView(APIView):
    permission_classes = [AllowAny]
    # A share link's visitor runs the model: counted per address like any visitor.
    throttle_classes = [AnonymousThrottle]

    @extend_schema(operation_id="jobs_edges", parameters=[SHARE],
                   responses={200: ref("EdgeValues"), 400: ERROR, 404: ERROR, 409: ERROR})
    def get(self, request: Request, job_id: int) -> Response:
        """What flows on every edge for the run's fixed validation example (the one its
        attention maps show): shape, histogram, mean, std, share of exact zeros. From the
        final weights, or while the run trains its latest checkpoint. 400 for a run that
        trains nothing, 409 for one without weights yet."""
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        return Response(explain.edges_of(job))


class JobNextView(APIView):
    permission_classes = [AllowAny]
    # A share link's visitor runs the model: counted per address like any visitor.
    throttle_classes = [AnonymousThrottle]

    @extend_schema(operation_id="jobs_next", parameters=[SHARE], request=NextIn,
                   responses={200: ref("NextChars"), 400: ERROR, 404: ERROR, 409: ERROR})
    def post(self, request: Request, job_id: int) -> Response:
        """A character model's five likeliest next characters after `prompt`, with their
        probabilities, and per attention head the weights the last position gave the
        prompt's characters. A prompt longer than the model reads is cut to its end
        (`truncated`). 400 for a model that does not predict characters, an empty prompt
        or characters it does not know (named); 409 for a run without weights yet."""
        job = selectors.watchable_job_or_404(request.user, job_id,
                                             request.query_params.get("share"))
        body = parsed(NextIn, request.data)
        return Response(explain.next_of(job, body["prompt"]))


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
        body = parsed(UploadIn, request.data)
        file = body["file"]
        name = file.name or "upload"
        kind = body.get("kind") or ("csv" if name.lower().endswith(".csv") else "text")
        upload = services.create_upload(owner=request.user, name=name, content=file.read(),
                                        kind=kind, target=body.get("target"),
                                        task=body["task"], source=body.get("source", ""),
                                        licence=body.get("licence", ""))
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
        return Response(jobs_data(selectors.shared_jobs(token)[:200]))


class JobCheckView(APIView):
    @extend_schema(operation_id="jobs_check", request=JobCheckIn,
                   responses={200: RUN_CHECK_REF, 400: ERROR, 404: ERROR, 413: ERROR})
    def post(self, request: Request) -> Response:
        """Would POST /api/jobs queue this run? The same checks (the settings, the graph,
        the dataset's fit, a benchmark's weights), on a saved version or an unsaved
        document, and nothing is stored: `ok`, the problems, and for a run that can start
        its queue and about how long it takes on a CPU. 400 only for a body that is not a
        check's. With a document (no `graph`), the weights' run may be of any graph of
        yours whose weights fit the document."""
        body = parsed(JobCheckIn, request.data)
        graph_id = None
        dataset, options = body.get("dataset"), body.get("dataset_options")
        upload = (selectors.upload_of(request.user, body["upload"]) if "upload" in body
                  else None)
        if "graph" in body:
            graph = graph_selectors.graph_of(request.user, body["graph"])
            version = graph_selectors.version_of(graph, body.get("version"))
            document = version.document
            graph_id = graph.id
            if body["kind"] == kinds.TRAIN:
                dataset, options = services.lineage_dataset(version, dataset, upload, options)
        else:
            document = body["document"]
        answer: RunCheckBody
        try:
            plan = services.check_run(
                document=document, kind=body["kind"], owner=request.user, graph_id=graph_id,
                dataset=dataset, upload=upload,
                dataset_options=options, config=body.get("config"),
                time_limit=body.get("time_limit"), weights=body.get("weights"))
        except services.JobError as exc:
            answer = {"ok": False, "error": str(exc), "problems": services.problems_of(exc),
                      "queue": None, "warnings": [], "cpu_seconds": None}
        else:
            answer = {"ok": True, "error": None, "problems": [], "queue": plan.queue,
                      "warnings": plan.warnings, "cpu_seconds": round(plan.cpu_seconds(), 1)}
        return Response(answer)


class JobSqlView(APIView):
    @extend_schema(operation_id="jobs_sql", request=SqlIn, responses={
        200: ref("JobSqlResult"),
        400: OpenApiResponse(ref("SqlErrorBody"), description="A script the engine "
                             "refused, or a run that trains nothing; nothing changed."),
        404: ERROR, 409: ERROR})
    def post(self, request: Request, job_id: int) -> Response:
        """Run a SQL script on a training run's model (docs/sql.md): its graph version with
        the weights it kept, so tensors, heads and eval are there. A change makes a
        derived model, a new graph of yours starting from the changed weights (`derived`);
        the run itself never changes. 409 for a run that has not ended or kept no
        weights."""
        job = selectors.job_of(request.user, job_id)
        body = parsed(SqlIn, request.data)
        answer = sql.run_on_job(job=job, owner=request.user, script=body["sql"])
        return Response(job_sql_data(answer.result.to_json(), answer.derived))
