"""The graph format as an OpenAPI component (`GraphDocument`), and the bodies the editor
reads (`InspectReport`, `Block`, `Starter`; the runs' are added by `compute.jobs.schema`'s
own hook), so that the editor's TypeScript types can be generated from the API's schema.
Block types come from the catalog.

`required` lists the members a body always has; `nullable: true` (OpenAPI 3.0) marks those
that may be null. Both follow the code that builds each body (compute.engine.report,
Block.describe, StartersView)."""

from __future__ import annotations

from typing import Any

from builder.rest import add_components, integers, object_schema, ref
from compute.engine import FORMAT, REGISTRY, graph

# The engine's id pattern; an endpoint is an id, or an id, a dot and a port name.
ID_PATTERN = graph.ID_PATTERN.pattern
ENDPOINT_PATTERN = ID_PATTERN.removesuffix("$") + r"(\.[A-Za-z_][A-Za-z0-9_]*)?$"


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


def report_components() -> dict[str, Any]:
    """The engine's inspection report (compute.engine.report.build_report)."""
    node_reports = {"type": "object", "additionalProperties": ref("NodeReport"),
                    "description": "By node id, in the order the graph runs them."}
    return {
        "InspectReport": object_schema({
            "format": {"type": "string", "enum": [FORMAT]},
            "name": {"type": "string", "nullable": True,
                     "description": "The document's name; null when it has none (or not "
                     "a string)."},
            "valid": {"type": "boolean", "description": "No problems: the graph is usable."},
            "nodes": node_reports,
            "totals": ref("InspectTotals"),
            "problems": {"type": "array", "items": ref("Problem")},
            "warnings": {"type": "array", "items": ref("Problem")},
        }, description="The engine's report of a graph, valid or not (POST /api/inspect)."),
        "NodeReport": object_schema({
            "type": {"type": "string", "description": "The block type, as the document "
                     "gives it (it may be unknown: then status is error)."},
            "status": {"type": "string", "enum": ["ok", "error", "skipped"],
                       "description": "error: the node is at fault; skipped: not reached, "
                       "a node before it failed."},
            "inputs": {"type": "object", "additionalProperties": ref("TensorSpec"),
                       "description": "By input port; empty when the node was not reached."},
            "outputs": {"type": "object", "additionalProperties": ref("TensorSpec"),
                        "description": "By output port; empty unless status is ok."},
            **integers("params", "trainable_params"),
            "flops": {"type": "integer", "nullable": True,
                      "description": "Forward FLOPs for a batch of one; null when not "
                      "measured (a skipped node, or one at fault before it was measured)."},
            "activation_bytes": {"type": "integer"},
            "attention": {"type": "boolean", "description": "A run shows this node's weights "
                          "as attention maps, under its module path: a MultiHeadAttention, "
                          "or a Softmax over the last dimension of square [T, T] or "
                          "[h, T, T] scores."},
            "times": {"type": "integer", "description": "Repeat only: how many copies."},
            "body": ref("NestedReport"),
            "tied_to": {"type": "string", "description": "A Linear whose weight is this "
                        "Embedding's table (tie_to): the table is counted on the Embedding."},
        }, optional=("times", "body", "tied_to"), description="One node of the report. A Repeat's "
            "params, FLOPs and activations count all its copies; `times` and `body` come "
            "with every Repeat whose nested graph was analysed."),
        "NestedReport": object_schema(
            {"nodes": node_reports, "totals": ref("InspectTotals")},
            description="The report of one copy of a Repeat's nested graph; its problems are "
            "in the top report's, as 'repeat_id/node_id'."),
        "TensorSpec": object_schema({
            "shape": {"type": "array", "items": {"oneOf": [{"type": "integer"},
                                                            {"type": "string"}]},
                      "description": 'The batch first, as "B", then the sizes: ["B", 64].'},
            "dtype": {"type": "string", "description": "float32, int64, ..."},
        }),
        "Problem": object_schema({
            "message": {"type": "string"},
            "node": {"type": "string", "nullable": True, "description": "The node at fault "
                     "('blocks/attn' inside the Repeat 'blocks'); null for the whole graph."},
            "field": {"type": "string", "nullable": True, "description": "The member or "
                      "parameter at fault, if one is."},
        }),
        "InspectTotals": object_schema({
            **integers("params", "trainable_params"),
            "flops": {"type": "integer", "description": "Forward FLOPs for a batch of one "
                      "(nodes that could not be measured count 0)."},
            "param_bytes": {"type": "integer", "description": "params as float32."},
            "activation_bytes": {"type": "integer", "description": "Per sample."},
            "estimated_bytes": {"type": "integer", "description": "param_bytes + "
                                "activation_bytes: a lower bound on what training needs."},
        }, description="Sums over the graph (a batch of one)."),
    }


def catalog_components() -> dict[str, Any]:
    return {
        "Block": object_schema({
            "type": {"type": "string", "enum": list(REGISTRY)},
            "category": {"type": "string", "description": "The palette group."},
            "summary": {"type": "string"},
            "explanation": {"type": "string", "description": "Markdown, for learners."},
            "inputs": {"type": "array", "items": {"type": "string"},
                       "description": "Input port names."},
            "outputs": {"type": "array", "items": {"type": "string"},
                        "description": "Output port names (where outputs_from is set, "
                        "those of the defaults)."},
            "outputs_from": {"type": "string", "nullable": True,
                             "description": "The parameter (a list of names) that names a "
                             "node's output ports, one per entry (Split's names); null "
                             "where the ports are always outputs."},
            "holds_graph": {"type": "boolean", "description": "True for Repeat and Custom."},
            "params_schema": {"type": "object", "additionalProperties": True,
                              "description": "JSON Schema of the parameters, with defaults, "
                              "ranges and enums."},
            "id_stem": {"type": "string", "description": "How new nodes' ids start: attn "
                        "gives attn1, attn2, ..."},
            "defaults": {"type": "object", "additionalProperties": True,
                         "description": "The value each parameter takes where a node "
                         "leaves it out."},
        }, description="A block of the catalog."),
        "BlockCatalog": object_schema({
            "id_pattern": {"type": "string", "description": "The pattern a node id matches "
                           "in full (a regular expression)."},
            "reserved_ids": {"type": "array", "items": {"type": "string"},
                             "description": "Ids refused because the generated code uses "
                             "them: Python keywords, self, torch.fx.GraphModule's names."},
            "blocks": {"type": "array", "items": ref("Block")},
        }, description="The block catalog and the rules for node ids (GET /api/blocks)."),
        "Starter": object_schema({
            "name": {"type": "string", "description": 'For POST /api/graphs {"starter": name}.'},
            "title": {"type": "string"},
            "dataset": {"type": "string", "description": "The built-in dataset it learns "
                        "with the default run settings."},
            "document": ref("GraphDocument"),
        }, description="A built-in starter graph (GET /api/starters)."),
        **my_block_components(),
    }


def my_block_components() -> dict[str, Any]:
    port = object_schema({
        "id": {"type": "string", "description": "The port: the id of the Input or Output."},
        "shape": {"type": "array", "nullable": True, "items": {
            "oneOf": [{"type": "string"}, {"type": "integer"}]},
            "description": 'With a leading "B"; null where the graph cannot say.'},
        "dtype": {"type": "string", "nullable": True},
    }, description="A port of a block from My blocks.")
    ports = {
        "inputs": {"type": "array", "items": ref("BlockPort"),
                   "description": "Its Inputs, in listed order: the node's input ports."},
        "outputs": {"type": "array", "items": ref("BlockPort"),
                    "description": "Its Outputs, in listed order: the node's output ports."},
        "usable": {"type": "boolean", "description": "Valid, with an Input and an Output."},
        "problem": {"type": "string", "nullable": True,
                    "description": "Why it cannot be used as a block, where it cannot."},
        "params": {"type": "integer", "description": "Its parameter count."},
    }
    return {
        "BlockPort": port,
        "MyBlock": object_schema({
            "source": {"type": "string", "description": "The Custom node's source: the "
                       "graph's id."},
            "graph_id": {"type": "integer"},
            "name": {"type": "string"},
            "version": {"type": "integer", "description": "The latest version."},
            "versions": {"type": "array", "items": {"type": "integer"}},
            **ports,
        }, description="One of your graphs as a block (GET /api/blocks/mine)."),
        "CustomBlock": object_schema({
            "node": {"type": "object", "additionalProperties": True, "description":
                     "The node to insert, without its id: type Custom, params (source, "
                     "version, name) and graph, the pinned copy of that version."},
            "name": {"type": "string", "description": "The graph's title."},
            "version": {"type": "integer", "description": "The version pinned."},
            "latest": {"type": "integer", "description": "The latest version the source "
                       "lets you use: a newer one than `version` means an update exists."},
            **ports,
        }, description="A block to insert (GET /api/blocks/custom)."),
    }


def sql_result_properties() -> dict[str, Any]:
    """The members of SqlResult.to_json() (compute.engine.sql), which the SQL endpoints
    answer and extend."""
    rows = {"type": "array", "items": {"type": "array", "items": {}},
            "description": "The rows, each a list of values in the order of `columns` "
            "(numbers, strings, null; JSON columns as their text)."}
    columns = {"type": "array", "items": {"type": "string"}}
    return {
        "statements": {"type": "array", "items": ref("SqlStatement")},
        "columns": {**columns, "description": "Those of the last statement that has "
                    "columns (a SELECT's); empty if none has."},
        "rows": rows,
        "truncated": {"type": "boolean", "description": "The rows were cut at the row limit "
                      "(SHIPYARD_SQL_MAX_ROWS)."},
        "change": {"allOf": [ref("SqlChange")], "nullable": True,
                   "description": "What the script changed; null when it changed nothing."},
        "document": {"allOf": [ref("GraphDocument")], "nullable": True,
                     "description": "The graph after the script, when it changed it."},
        "ms": {"type": "number", "description": "How long the script took, milliseconds."},
    }


def sql_components() -> dict[str, Any]:
    """SQL over models (docs/sql.md): results, errors and the dialect's tables."""
    paths = {"type": "array", "items": {"type": "string"},
             "description": "Node paths: 'blocks/attn' inside the Repeat 'blocks'."}
    edges = {"type": "array", "items": ref("SqlEdge")}
    column = object_schema({
        "name": {"type": "string"},
        "type": {"type": "string", "description": "As declared: TEXT, INTEGER, REAL, JSON; "
                 "ANY for a parameter's column."},
        "writable": {"type": "boolean"},
        "doc": {"type": "string"},
    })
    return {
        "SqlStatement": object_schema({
            "sql": {"type": "string", "description": "The statement, as written."},
            "kind": {"type": "string", "description": "select, insert, update, delete, ..."},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "array", "items": {}}},
            "truncated": {"type": "boolean"},
            "changed": {"type": "integer", "description": "Rows a change touched."},
        }, description="One statement of a script and its rows."),
        "SqlEdge": object_schema({
            "from": {"type": "string", "description": "A node path, with .port where the "
                     "edge names one."},
            "to": {"type": "string"},
            "parent": {"type": "string", "description": "The Repeat the edge is inside."},
        }, optional=("parent",), description="An edge a script added or removed."),
        "SqlChange": object_schema({
            "nodes": object_schema({"added": paths, "removed": paths, "changed": paths}),
            "edges": object_schema({"added": edges, "removed": edges}),
            "model": {"type": "array", "items": {"type": "string"},
                      "description": "The model's fields that changed (name, ...)."},
            "totals": {"allOf": [ref("InspectTotals")], "nullable": True,
                       "description": "The new inspection totals; null when only the "
                       "weights changed."},
            "weights": {"type": "object", "additionalProperties": True, "nullable": True,
                        "description": "What happened to the trained weights (kept, "
                        "initialized, frozen, ...); only on a model with weights."},
        }, optional=("weights",), description="What a script changed: a diff of nodes and "
            "edges, and the new inspection totals."),
        "SqlResult": object_schema(sql_result_properties(), description="What a script "
                                   "answered (POST /api/sql, /api/shared/{token}/sql)."),
        "GraphSqlResult": object_schema({
            **sql_result_properties(),
            "created": {"type": "boolean", "description": "A new version was saved (false "
                        "when the change gives back the latest version's document)."},
            "version": {"allOf": [ref("VersionOut")], "nullable": True,
                        "description": "The version a change was saved as; null when the "
                        "script changed nothing."},
        }, description="What a script on a saved graph answered (POST "
            "/api/graphs/{id}/sql)."),
        "SqlErrorBody": object_schema({
            "error": {"type": "string"},
            "statement": {"type": "integer", "nullable": True,
                          "description": "The statement at fault, from 0."},
            "sql": {"type": "string", "nullable": True, "description": "Its text."},
            "position": {"type": "integer", "nullable": True,
                         "description": "Where in it, from 0, when SQLite says."},
            "problems": {"type": "array", "items": ref("Problem"),
                         "description": "The engine's problems of a changed graph that is "
                         "not valid (nothing changed)."},
        }, description="A script refused (400; 403 for a change on a read-only link)."),
        "SqlSchema": object_schema({
            "tables": {"type": "object", "additionalProperties": object_schema({
                "doc": {"type": "string", "description": "What the table holds."},
                "columns": {"type": "array", "items": ref("SqlColumn")}}),
                "description": "Each table, its columns in order."},
            "examples": {"type": "array", "items": object_schema({
                "title": {"type": "string"}, "sql": {"type": "string"},
                "trained": {"type": "boolean", "description": "Needs a model with "
                            "weights."}})},
        }, description="The dialect's tables and one-click examples (GET /api/sql/schema)."),
        "SqlColumn": column,
    }


def path_components() -> dict[str, Any]:
    """The guided paths (builder.graphs.paths, compute.engine.paths)."""
    step_id = {"type": "string", "description": "A step's id (a slug)."}
    return {
        "PathSummary": object_schema({
            "name": {"type": "string"},
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "steps": {"type": "integer", "description": "How many steps it has."},
            "dataset": {"type": "string", "description": "The built-in dataset its model "
                        "trains on."},
        }, description="A guided path as GET /api/paths lists it."),
        "PathStep": object_schema({
            "id": step_id,
            "title": {"type": "string"},
            "text": {"type": "string", "description": "Markdown: the explanation, maybe a "
                     "small figure in a fenced text block."},
            "task": {"type": "string", "description": "What to build, in a sentence or two."},
            "check": {"type": "string", "enum": ["canvas", "run", "attention", "generate"],
                      "description": "canvas: checked on the document (POST .../check); the "
                      "others are completed by the editor from the run drawer (a finished "
                      "run whose loss fell; its attention tab opened; text generated)."},
            "solution": ref("GraphDocument"),
        }),
        "GuidedPath": object_schema({
            "name": {"type": "string"},
            "title": {"type": "string"},
            "summary": {"type": "string"},
            "dataset": {"type": "string"},
            "steps": {"type": "array", "items": ref("PathStep")},
        }, description="A guided path with its steps (GET /api/paths/{name})."),
        "StepCheck": object_schema({
            "passed": {"type": "boolean"},
            "message": {"type": "string", "description": "One sentence: what is missing or "
                        "wrong, or that the step is done."},
            "node": {"type": "string", "nullable": True, "description": "The node it is "
                     "about, by path (blocks/attn inside the Repeat blocks)."},
        }, description="A step's check on a document."),
        "PathProgress": object_schema({
            "path": {"type": "string"},
            "done": {"type": "array", "items": step_id},
            "current": {**step_id, "nullable": True},
            "updated_at": {"type": "string", "format": "date-time", "nullable": True},
        }, description="A user's progress on a path; nothing done and no dates when none "
           "is kept."),
        "PathProgressIn": {  # both optional: done defaults to [], current to null
            "type": "object",
            "additionalProperties": False,
            "properties": {"done": {"type": "array", "items": step_id},
                           "current": {**step_id, "nullable": True}},
        },
    }


GRAPH_DOCUMENT_REF = ref("GraphDocument")


def add_graph_components(result: dict[str, Any], generator: Any, request: Any,
                         public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: put the graph format, the report and the
    catalog into the document (the views refer to them by $ref)."""
    return add_components(result, {**components(), **report_components(),
                                   **catalog_components(), **sql_components(),
                                   **path_components()})
