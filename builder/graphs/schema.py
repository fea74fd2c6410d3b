"""The graph format as an OpenAPI component (`GraphDocument`), so that the editor's
TypeScript types can be generated from the API's schema. Block types come from the catalog."""

from __future__ import annotations

from typing import Any

from compute.engine import FORMAT, REGISTRY

ID_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,63}$"
ENDPOINT_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,63}(\\.[A-Za-z_][A-Za-z0-9_]*)?$"


def _graph_body() -> dict[str, Any]:
    return {
        "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/GraphNode"}},
        "edges": {"type": "array", "items": {"$ref": "#/components/schemas/GraphEdge"}},
        "layout": {
            "type": "object",
            "description": "Where the editor draws each node: {node_id: [x, y]}.",
            "additionalProperties": {"type": "array", "items": {"type": "number"},
                                     "minItems": 2, "maxItems": 2},
        },
    }


def components() -> dict[str, Any]:
    return {
        "GraphDocument": {
            "type": "object",
            "description": "A model graph in the shipyard.graph/v1 format.",
            "additionalProperties": False,
            "required": ["format", "nodes", "edges"],
            "properties": {
                "format": {"type": "string", "enum": [FORMAT]},
                "name": {"type": "string"},
                "description": {"type": "string"},
                **_graph_body(),
                "meta": {"type": "object", "additionalProperties": True},
            },
        },
        "NestedGraph": {
            "type": "object",
            "description": "The graph inside a Repeat: one Input, one Output.",
            "additionalProperties": False,
            "required": ["nodes", "edges"],
            "properties": _graph_body(),
        },
        "GraphNode": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "type"],
            "properties": {
                "id": {"type": "string", "pattern": ID_PATTERN},
                "type": {"type": "string", "enum": list(REGISTRY)},
                "params": {"type": "object", "additionalProperties": True,
                           "description": "The block's parameters; see GET /api/blocks."},
                "graph": {"$ref": "#/components/schemas/NestedGraph"},
            },
        },
        "GraphEdge": {
            "type": "object",
            "additionalProperties": False,
            "required": ["from", "to"],
            "properties": {
                "from": {"type": "string", "pattern": ENDPOINT_PATTERN},
                "to": {"type": "string", "pattern": ENDPOINT_PATTERN},
            },
        },
    }


GRAPH_DOCUMENT_REF = {"$ref": "#/components/schemas/GraphDocument"}


def add_graph_components(result: dict[str, Any], generator: Any, request: Any,
                         public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: put the graph format into the document."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(components())
    return result
