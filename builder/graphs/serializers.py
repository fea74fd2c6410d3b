"""Request bodies (validated here, shallowly: the engine checks the graph itself) and the
shapes of responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import Graph, GraphVersion, ShareLink
from .schema import GRAPH_DOCUMENT_REF

MAX_NUMBER = 2**31 - 1  # version numbers live in 32-bit integer columns


@extend_schema_field(GRAPH_DOCUMENT_REF)
class GraphDocumentField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError("a graph document is a JSON object")
        return data


class GraphCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    document = GraphDocumentField(required=False)
    starter = serializers.CharField(required=False, help_text="Start from a built-in starter "
                                    "(see GET /api/starters) instead of a document.")
    message = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("document" in attrs) == ("starter" in attrs):
            raise serializers.ValidationError("give either a document or a starter")
        return attrs


class GraphImportIn(serializers.Serializer):
    file = serializers.FileField(help_text="An ONNX model (.onnx), self-contained: weights "
                                 "inside, none in external data files.")
    name = serializers.CharField(max_length=200, required=False, help_text="The new "
                                 "graph's title; default: the model's graph name.")


class CustomBlockQuery(serializers.Serializer):
    source = serializers.RegexField(
        r"^(share:)?[A-Za-z0-9_-]{1,64}$", max_length=70,
        help_text="A graph's id, or share: and a share link's token.")
    version = serializers.IntegerField(min_value=1, max_value=MAX_NUMBER, required=False,
                                       help_text="Default: the latest you may use.")


class GraphRenameIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)


class VersionCreateIn(serializers.Serializer):
    document = GraphDocumentField()
    base_version = serializers.IntegerField(
        min_value=0, max_value=MAX_NUMBER,
        help_text="The version this save is based on; a stale one gets 409.")
    message = serializers.CharField(max_length=500, required=False, allow_blank=True)


class RestoreIn(serializers.Serializer):
    base_version = serializers.IntegerField(min_value=0, max_value=MAX_NUMBER, required=False)
    message = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ShareCreateIn(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=MAX_NUMBER, required=False,
                                       allow_null=True,
                                       help_text="Pin this version; leave out to follow "
                                       "the latest.")


class DownloadQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "pytorch", "onnx", "weights"],
                                     default="json")
    version = serializers.IntegerField(min_value=1, max_value=MAX_NUMBER, required=False)


class ScriptField(serializers.CharField):
    """A SQL script: a string as it is (a number is not one), its length checked by the
    engine against its limit."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("a SQL script is a string")
        value: str = super().to_internal_value(data)
        return value


class SqlIn(serializers.Serializer):
    sql = ScriptField(help_text="One or more statements separated by ';', run as one "
                      "transaction (docs/sql.md).")


class DocumentSqlIn(SqlIn):
    document = GraphDocumentField(help_text="The graph the script runs on; nothing is "
                                  "saved.")


class GraphSqlIn(SqlIn):
    version = serializers.IntegerField(min_value=1, max_value=MAX_NUMBER, required=False,
                                       help_text="The version the script runs on (its "
                                       "initial weights too); default: the latest.")
    document = GraphDocumentField(required=False, help_text="The editor's document, saved "
                                  "or not: the script runs on it instead (with the "
                                  "version's weights where they fit it).")
    base_version = serializers.IntegerField(
        min_value=0, max_value=MAX_NUMBER, required=False,
        help_text="The version a change is saved on top of (409 if it is not the latest); "
        "required with `document` when the script changes something. Default: `version`.")


class SqlSchemaQuery(serializers.Serializer):
    trained = serializers.ChoiceField(choices=["0", "1"], default="0", help_text="1: the "
                                      "tables of a model with weights too (tensors, heads, "
                                      "eval).")


# Responses. Each *_data function is the one place a response shape is made; the
# serializer classes beside them describe it for the OpenAPI document.


class VersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    author = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    restored_from = serializers.IntegerField(allow_null=True)
    content_hash = serializers.CharField()
    initial_weights = serializers.BooleanField(help_text="Whether runs of this version start "
                                               "from stored weights (an imported model's; "
                                               "download them as format=weights) rather "
                                               "than seeded ones.")
    created_at = serializers.DateTimeField()


class VersionDetailOut(VersionOut):
    document = GraphDocumentField()


def version_data(version: GraphVersion, *, document: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": version.number,
        "author": version.author.get_username() if version.author else None,
        "message": version.message,
        "restored_from": version.restored_from,
        "content_hash": version.content_hash,
        "initial_weights": version.initial_weights_id is not None,
        "created_at": version.created_at.isoformat(),
    }
    if document:
        data["document"] = version.document
    return data


class ForkOriginOut(serializers.Serializer):
    graph_name = serializers.CharField()
    version = serializers.IntegerField()


class GraphOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    head = serializers.IntegerField(help_text="Number of the latest version.")
    forked_from = ForkOriginOut(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class GraphDetailOut(GraphOut):
    version = VersionDetailOut()


class LastRunOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="As the run's own status at /api/jobs/{id}.")
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                    help_text="The latest value of each metric the run "
                                    "reported; null for one that is not a finite number.")


class GraphListItemOut(GraphOut):
    last_run = LastRunOut(allow_null=True, help_text="The graph's latest run; null if it "
                          "has none. Its details are at /api/jobs/{id}.")


def graph_data(graph: Graph, *, latest: GraphVersion | None = None) -> dict[str, Any]:
    origin = graph.forked_from
    data: dict[str, Any] = {
        "id": graph.id,
        "name": graph.name,
        "head": graph.head,
        "forked_from": ({"graph_name": graph.forked_from_name, "version": origin.number}
                        if origin is not None else None),
        "created_at": graph.created_at.isoformat(),
        "updated_at": graph.updated_at.isoformat(),
    }
    if latest is not None:
        data["version"] = version_data(latest, document=True)
    return data


def graph_list_data(graph: Graph) -> dict[str, Any]:
    """A graph from `selectors.graphs_with_last_run`, as the list gives it."""
    run = selectors.last_run(graph)
    return {**graph_data(graph), "last_run": None if run is None else {
        "id": run.id, "status": run.status, "metrics": run.metrics}}


class SaveOut(serializers.Serializer):
    created = serializers.BooleanField(help_text="False when the document equals the latest "
                                       "version: no new version was made.")
    version = VersionOut()


class ShareOut(serializers.Serializer):
    id = serializers.IntegerField()
    prefix = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="Pinned version, or null.")
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class ShareCreatedOut(ShareOut):
    token = serializers.CharField(help_text="Shown once: only a hash is kept.")
    url = serializers.CharField()


def share_data(link: ShareLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "prefix": link.prefix,
        "version": link.version.number if link.version else None,
        "created_at": link.created_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
    }


class SharedOut(serializers.Serializer):
    name = serializers.CharField()
    owner = serializers.CharField()
    pinned = serializers.BooleanField()
    version = VersionDetailOut()


def graph_sql_data(result: dict[str, Any], version: GraphVersion | None,
                   created: bool) -> dict[str, Any]:
    """POST /api/graphs/{id}/sql: the script's result (SqlResult.to_json()) and the version
    a change was saved as (null when it changed nothing)."""
    return {**result, "created": created,
            "version": None if version is None else version_data(version)}
