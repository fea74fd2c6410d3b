"""REST endpoints for graphs: one view per resource, each method a few lines that parse,
call a service or selector, and serialize."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builder.accounts.throttles import AnonymousThrottle
from builder.rest import ERROR, parsed, ref
from compute import exports
from compute.engine import (
    STARTER_DATASETS,
    STARTERS,
    GraphError,
    block_catalog,
    inspect_graph,
    load_starter,
    pytorch_code,
)
from compute.engine.sql import sql_schema

from . import blocks, downloads, selectors, services, sql
from .models import GraphVersion
from .schema import GRAPH_DOCUMENT_REF
from .serializers import (
    CustomBlockQuery,
    DocumentSqlIn,
    DownloadQuery,
    GraphCreateIn,
    GraphDetailOut,
    GraphImportIn,
    GraphListItemOut,
    GraphOut,
    GraphRenameIn,
    GraphSqlIn,
    RestoreIn,
    SaveOut,
    ShareCreatedOut,
    ShareCreateIn,
    SharedOut,
    ShareOut,
    SqlIn,
    SqlSchemaQuery,
    VersionCreateIn,
    VersionDetailOut,
    VersionOut,
    graph_data,
    graph_list_data,
    graph_sql_data,
    share_data,
    version_data,
)

REPORT = ref("InspectReport")
SQL_RESULT = ref("SqlResult")
SQL_ERROR = OpenApiResponse(ref("SqlErrorBody"), description="A script the engine refused "
                            "(bad SQL, a refused statement, a time or row limit, a change "
                            "that leaves the graph invalid: its problems), or a body that "
                            "is not a script's ({error, fields}); nothing changed.")


def _saved(version: GraphVersion, created: bool) -> Response:
    """201 with a new version; 200 when the save changed nothing."""
    return Response({"created": created, "version": version_data(version)},
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class GraphListView(APIView):
    @extend_schema(operation_id="graphs_list", responses={200: GraphListItemOut(many=True)})
    def get(self, request: Request) -> Response:
        return Response([graph_list_data(g)
                         for g in selectors.graphs_with_last_run(request.user)])

    @extend_schema(operation_id="graphs_create", request=GraphCreateIn,
                   responses={201: GraphDetailOut, 400: ERROR, 413: ERROR})
    def post(self, request: Request) -> Response:
        body = parsed(GraphCreateIn, request.data)
        if "starter" in body:
            if body["starter"] not in STARTERS:
                return Response({"error": f"no starter named {body['starter']!r}; starters: "
                                 f"{', '.join(STARTERS)}"}, status=status.HTTP_400_BAD_REQUEST)
            document = load_starter(body["starter"])
        else:
            document = body["document"]
        graph = services.create_graph(owner=request.user, document=document,
                                      name=body.get("name"), message=body.get("message", ""))
        return Response(graph_data(graph, latest=selectors.version_of(graph)),
                        status=status.HTTP_201_CREATED)


class GraphImportView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="graphs_import", request={"multipart/form-data": GraphImportIn},
                   responses={201: GraphDetailOut, 400: ERROR, 413: ERROR})
    def post(self, request: Request) -> Response:
        """Import an ONNX model as a new graph whose first version starts from the file's
        weights. 400 with `problems` (and `unmapped`: operator -> count, for operators no
        block stands for) when it cannot be imported: nothing is made then."""
        body = parsed(GraphImportIn, request.data)
        file = body["file"]
        stem = (file.name or "").rsplit("/", 1)[-1].removesuffix(".onnx").strip()
        graph = services.import_onnx_graph(owner=request.user, data=file.read(),
                                           name=body.get("name") or stem or None)
        return Response(graph_data(graph, latest=selectors.version_of(graph)),
                        status=status.HTTP_201_CREATED)


class GraphDetailView(APIView):
    @extend_schema(operation_id="graphs_retrieve", responses={200: GraphDetailOut, 404: ERROR})
    def get(self, request: Request, graph_id: int) -> Response:
        graph = selectors.graph_of(request.user, graph_id)
        return Response(graph_data(graph, latest=selectors.version_of(graph)))

    @extend_schema(operation_id="graphs_rename", request=GraphRenameIn,
                   responses={200: GraphOut, 404: ERROR})
    def patch(self, request: Request, graph_id: int) -> Response:
        graph = selectors.graph_of(request.user, graph_id)
        body = parsed(GraphRenameIn, request.data)
        return Response(graph_data(services.rename_graph(graph=graph, name=body["name"])))

    @extend_schema(operation_id="graphs_destroy", responses={204: None, 404: ERROR})
    def delete(self, request: Request, graph_id: int) -> Response:
        services.delete_graph(graph=selectors.graph_of(request.user, graph_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListView(APIView):
    @extend_schema(operation_id="versions_list", responses={200: VersionOut(many=True)})
    def get(self, request: Request, graph_id: int) -> Response:
        graph = selectors.graph_of(request.user, graph_id)
        return Response([version_data(v) for v in selectors.versions_of(graph)])

    @extend_schema(operation_id="versions_create", request=VersionCreateIn,
                   responses={201: SaveOut, 200: SaveOut, 400: ERROR, 404: ERROR,
                              409: ERROR, 413: ERROR})
    def post(self, request: Request, graph_id: int) -> Response:
        """Save a new version. 201 with the new version; 200 if the document equals the
        latest version (nothing new is made); 409 with `current_version` if `base_version`
        is not the latest."""
        graph = selectors.graph_of(request.user, graph_id)
        body = parsed(VersionCreateIn, request.data)
        version, created = services.save_version(
            graph=graph, author=request.user, document=body["document"],
            base_version=body["base_version"], message=body.get("message", ""))
        return _saved(version, created)


class VersionDetailView(APIView):
    @extend_schema(operation_id="versions_retrieve",
                   responses={200: VersionDetailOut, 404: ERROR})
    def get(self, request: Request, graph_id: int, number: int) -> Response:
        graph = selectors.graph_of(request.user, graph_id)
        return Response(version_data(selectors.version_of(graph, number), document=True))


class RestoreView(APIView):
    @extend_schema(operation_id="versions_restore", request=RestoreIn,
                   responses={201: SaveOut, 200: SaveOut, 404: ERROR, 409: ERROR})
    def post(self, request: Request, graph_id: int, number: int) -> Response:
        """Make version `number` the latest again, as a new version."""
        graph = selectors.graph_of(request.user, graph_id)
        selectors.version_of(graph, number)
        body = parsed(RestoreIn, request.data)
        version, created = services.restore_version(
            graph=graph, author=request.user, number=number,
            base_version=body.get("base_version"), message=body.get("message", ""))
        return _saved(version, created)


def _download(version: GraphVersion, fmt: str, title: str) -> HttpResponse | Response:
    """The file, or 503 with Retry-After while it is being made, 422 when it cannot be."""
    outcome = downloads.download(version, fmt, title)
    if isinstance(outcome, exports.Pending):
        return Response({"error": outcome.error, "retry_after": outcome.retry_after,
                         "busy": outcome.busy}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(outcome.retry_after)})
    if isinstance(outcome, exports.Failed):
        return Response({"error": outcome.error, **outcome.details},
                        status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if outcome.path is None:
        response = HttpResponse(outcome.text, content_type=outcome.content_type)
        response["Content-Disposition"] = f'attachment; filename="{outcome.filename}"'
        return response
    return FileResponse(outcome.path.open("rb"), as_attachment=True, filename=outcome.filename,
                        content_type=outcome.content_type)


DOWNLOAD_PARAMS = [
    OpenApiParameter("format", str, enum=list(downloads.FORMATS), default="json"),
    OpenApiParameter("version", int, description="A version number; default: the latest."),
]
DOWNLOAD_RESPONSES = {(200, "application/octet-stream"): OpenApiResponse(
    description="The graph JSON, a PyTorch file, or an ONNX model"), 400: ERROR, 404: ERROR,
    422: OpenApiResponse(description='{"error": "...", "reason": "time" | "memory" | '
                                     '"invalid" | "error"}: the export failed within its '
                                     'budget; tried again when the budget changes'),
    503: OpenApiResponse(description='{"error": "...", "retry_after": N, "busy": bool}: the '
                                     'file is being prepared; ask again after Retry-After')}


class DownloadView(APIView):
    @extend_schema(operation_id="graphs_download", parameters=DOWNLOAD_PARAMS,
                   responses=DOWNLOAD_RESPONSES)
    def get(self, request: Request, graph_id: int) -> HttpResponse | Response:
        graph = selectors.graph_of(request.user, graph_id)
        query = parsed(DownloadQuery, request.query_params)
        version = selectors.version_of(graph, query.get("version"))
        return _download(version, query["format"], graph.name)


class ShareListView(APIView):
    @extend_schema(operation_id="shares_list", responses={200: ShareOut(many=True)})
    def get(self, request: Request, graph_id: int) -> Response:
        graph = selectors.graph_of(request.user, graph_id)
        return Response([share_data(link) for link in selectors.share_links_of(graph)])

    @extend_schema(operation_id="shares_create", request=ShareCreateIn,
                   responses={201: ShareCreatedOut, 404: ERROR})
    def post(self, request: Request, graph_id: int) -> Response:
        """A read-only link for anyone who has it: `/s/<token>`. The token is shown once."""
        graph = selectors.graph_of(request.user, graph_id)
        body = parsed(ShareCreateIn, request.data)
        pinned = body.get("version")
        version = selectors.version_of(graph, pinned) if pinned is not None else None
        link, token = services.create_share_link(graph=graph, created_by=request.user,
                                                 version=version)
        data = {**share_data(link), "token": token, "url": request.build_absolute_uri(
            f"/s/{token}")}
        return Response(data, status=status.HTTP_201_CREATED)


class ShareDetailView(APIView):
    @extend_schema(operation_id="shares_revoke", responses={204: None, 404: ERROR})
    def delete(self, request: Request, graph_id: int, link_id: int) -> Response:
        graph = selectors.graph_of(request.user, graph_id)
        if not services.revoke_share_link(graph=graph, link_id=link_id):
            return Response({"error": "no such live link"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SharedView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="shared_retrieve", responses={200: SharedOut, 404: ERROR})
    def get(self, request: Request, token: str) -> Response:
        link, version = selectors.shared(token)
        return Response({"name": link.graph.name, "owner": link.graph.owner.get_username(),
                         "pinned": link.version_id is not None,
                         "version": version_data(version, document=True)})


class SharedForkView(APIView):
    @extend_schema(operation_id="shared_fork", request=None,
                   responses={201: GraphDetailOut, 401: ERROR, 404: ERROR})
    def post(self, request: Request, token: str) -> Response:
        _, version = selectors.shared(token)
        graph = services.fork_version(version=version, owner=request.user)
        return Response(graph_data(graph, latest=selectors.version_of(graph)),
                        status=status.HTTP_201_CREATED)


class SharedDownloadView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="shared_download", parameters=DOWNLOAD_PARAMS[:1],
                   responses=DOWNLOAD_RESPONSES)
    def get(self, request: Request, token: str) -> HttpResponse | Response:
        link, version = selectors.shared(token)
        query = parsed(DownloadQuery, request.query_params)
        return _download(version, query["format"], link.graph.name)


class SharedInspectView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousThrottle]  # a visitor's engine work, counted per address

    @extend_schema(operation_id="shared_inspect", responses={200: REPORT, 404: ERROR})
    def get(self, request: Request, token: str) -> Response:
        """The engine's report of the version the link shows: what POST /api/inspect
        answers for its document, without logging in."""
        _, version = selectors.shared(token)
        return Response(inspect_graph(version.document))


THROTTLED = OpenApiResponse(description='{"error": "...", "retry_after": N}: too many '
                            'requests without an account from this address '
                            '(SHIPYARD_ANON_INSPECT_RATE); Retry-After says when to try again')


class InspectView(APIView):
    # Open to visitors without an account (the editor works before signing up), counted per
    # client address; accounts are not counted.
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousThrottle]

    @extend_schema(operation_id="inspect", request={"application/json": GRAPH_DOCUMENT_REF},
                   responses={200: REPORT, 400: ERROR, 413: ERROR, 429: THROTTLED})
    def post(self, request: Request) -> Response:
        """The engine's report for any graph, saved or not, valid or not (`valid` says).
        No account needed: without one, requests are limited per client address."""
        if not isinstance(request.data, dict):
            return Response({"error": "send a graph document (a JSON object)"},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(inspect_graph(request.data))


class CodeView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousThrottle]

    @extend_schema(operation_id="code", request={"application/json": GRAPH_DOCUMENT_REF},
                   responses={200: {"type": "object", "required": ["code"],
                                    "properties": {"code": {"type": "string"}}},
                              400: ERROR, 413: ERROR, 429: THROTTLED})
    def post(self, request: Request) -> Response:
        """The PyTorch file of any graph document, saved or not: what the PyTorch download
        of a version with this document holds (seed 0, no weights). 400 with `problems`
        for a graph that is not valid. No account needed: without one, requests are
        limited per client address."""
        if not isinstance(request.data, dict):
            return Response({"error": "send a graph document (a JSON object)"},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            return Response({"code": pytorch_code(request.data)})
        except GraphError as exc:
            return Response({"error": "the graph is not valid; see problems",
                             "problems": [p.to_dict() for p in exc.problems]},
                            status=status.HTTP_400_BAD_REQUEST)


class BlocksView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="blocks", responses={200: ref("BlockCatalog")})
    def get(self, request: Request) -> Response:
        return Response(block_catalog())


class MyBlocksView(APIView):
    @extend_schema(operation_id="blocks_mine",
                   responses={200: {"type": "array", "items": ref("MyBlock")}})
    def get(self, request: Request) -> Response:
        """Your graphs as blocks for other graphs (My blocks): each with its latest version
        and, from that version, its ports, and whether it can be used (`usable`)."""
        return Response(blocks.my_blocks(request.user))


class CustomBlockView(APIView):
    @extend_schema(operation_id="blocks_custom", parameters=[CustomBlockQuery],
                   responses={200: ref("CustomBlock"), 400: ERROR, 404: ERROR})
    def get(self, request: Request) -> Response:
        """The Custom node for a version of one of your graphs, or of a graph shared with
        you (`source=share:<token>`), with its pinned copy and its ports: what the editor
        inserts, and what it compares when it offers an update."""
        query = parsed(CustomBlockQuery, request.query_params)
        try:
            found = blocks.block_node(request.user, query["source"], query.get("version"))
        except blocks.NotReadable as exc:
            return Response({"error": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        return Response(found)


class StartersView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="starters",
                   responses={200: {"type": "array", "items": ref("Starter")}})
    def get(self, request: Request) -> Response:
        """The starters, each with the built-in dataset it learns with the default run
        settings."""
        return Response([{"name": name, "title": title, "dataset": STARTER_DATASETS[name],
                          "document": load_starter(name)} for name, title in STARTERS.items()])


class GraphSqlView(APIView):
    @extend_schema(operation_id="graphs_sql", request=GraphSqlIn,
                   responses={200: ref("GraphSqlResult"), 400: SQL_ERROR, 404: ERROR,
                              409: ERROR, 413: ERROR})
    def post(self, request: Request, graph_id: int) -> Response:
        """Run a SQL script on a version of the graph, or on the editor's document based on
        one (docs/sql.md). SELECT: its rows. A change (UPDATE, INSERT, DELETE) is saved as
        a new version with the script as its message, like a save: 409 with
        `current_version` if `base_version` is not the latest, 400 with the engine's
        problems if it leaves the graph invalid. A version with initial weights (imported
        or derived) has the tables tensors, heads and eval too, and a change keeps its
        weights on the new version."""
        graph = selectors.graph_of(request.user, graph_id)
        body = parsed(GraphSqlIn, request.data)
        answer = sql.run_on_graph(graph=graph, author=request.user, script=body["sql"],
                                  number=body.get("version"), document=body.get("document"),
                                  base_version=body.get("base_version"))
        return Response(graph_sql_data(answer.result.to_json(), answer.version,
                                       answer.created))


class SharedSqlView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousThrottle]  # a visitor's engine work, counted per address

    @extend_schema(operation_id="shared_sql", request=SqlIn,
                   responses={200: SQL_RESULT, 400: SQL_ERROR, 403: SQL_ERROR, 404: ERROR})
    def post(self, request: Request, token: str) -> Response:
        """Run a SQL script on the version a share link shows, read-only: SELECT works; a
        change is refused (403) before anything runs: fork the graph to change it."""
        _, version = selectors.shared(token)
        body = parsed(SqlIn, request.data)
        result = sql.run(version.document, body["sql"], trained=sql.version_model(version),
                         read_only=sql.READ_ONLY)
        return Response(result.to_json())


class DocumentSqlView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymousThrottle]

    @extend_schema(operation_id="sql", request=DocumentSqlIn,
                   responses={200: SQL_RESULT, 400: SQL_ERROR, 413: ERROR, 429: THROTTLED})
    def post(self, request: Request) -> Response:
        """Run a SQL script on any graph document (the editor's, unsaved): its rows, and
        for a change the new document and what changed. Nothing is saved. No account
        needed: without one, requests are limited per client address."""
        body = parsed(DocumentSqlIn, request.data)
        return Response(sql.run(body["document"], body["sql"]).to_json())


class SqlSchemaView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="sql_schema", parameters=[SqlSchemaQuery],
                   responses={200: ref("SqlSchema"), 400: ERROR})
    def get(self, request: Request) -> Response:
        """The SQL dialect's tables and their columns (which are writable), and one-click
        examples: those of a model with weights too with ?trained=1."""
        query = parsed(SqlSchemaQuery, request.query_params)
        return Response(sql_schema(query["trained"] == "1"))
