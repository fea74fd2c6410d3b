"""The tables a model is seen through: their definitions, and filling them from a document.

`model` (one row), `nodes` (one row per node, nested ones with their path), `edges`
(nodes named by path) and `blocks` (the catalog). What the user may write is declared here
(`WRITABLE`); the authorizer in core.py enforces it. Triggers keep paths and edges true when
a node is renamed, moved or deleted, so statements read as they would on any database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..blocks import catalog

# Parameters common enough to read as columns of their own: `WHERE times > 4` rather than
# `WHERE json_extract(params, '$.times') > 4`. Each is the value given, or the block's
# default; read-only (change `params`).
PARAM_COLUMNS = ("times", "out_features", "num_heads", "dim", "p", "shape")

NODE_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    # name, SQL declaration, writable, what it holds
    ("path", "TEXT", False, "the node's path: its id, under its Repeat's path when nested "
                            "(blocks/attn); kept by Shipyard from parent and id"),
    ("id", "TEXT NOT NULL", True, "the node's id, unique in its graph"),
    ("parent", "TEXT", True, "the path of the Repeat (or Custom block) holding it; NULL at the "
                             "top level"),
    ("type", "TEXT NOT NULL", True, "its block type (see the blocks table)"),
    ("params", "TEXT NOT NULL DEFAULT '{}' CONSTRAINT params_is_a_json_object "
               "CHECK (json_valid(params) AND json_type(params) = 'object')", True,
     "its parameters as a JSON object: change them with json_set, json_remove"),
    ("x", "", True, "its position on the canvas (NULL: none)"),
    ("y", "", True, "its position on the canvas (NULL: none)"),
    ("defaults", "TEXT", False, "the block's default parameters (JSON)"),
    ("inputs", "TEXT", False, "input port -> {shape, dtype} (JSON; shapes start with \"B\")"),
    ("outputs", "TEXT", False, "output port -> {shape, dtype} (JSON)"),
    ("params_count", "INTEGER", False, "parameters (a nested node: per copy)"),
    ("trainable_count", "INTEGER", False, "trainable parameters"),
    ("flops", "INTEGER", False, "forward FLOPs for one sample"),
    ("activation_bytes", "INTEGER", False, "bytes of activations for one sample"),
    ("status", "TEXT", False, "ok, error, or skipped (an upstream node failed)"),
    ("problems", "TEXT", False, "the problems found on it (JSON list of messages)"),
)

EDGE_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("from_node", "TEXT NOT NULL", True, "path of the node the edge leaves"),
    ("from_port", "TEXT", True, "its output port; NULL: the node's only one"),
    ("to_node", "TEXT NOT NULL", True, "path of the node the edge enters"),
    ("to_port", "TEXT", True, "its input port; NULL: the node's only one"),
)

MODEL_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("name", "TEXT", True, "the model's name"),
    ("description", "TEXT", True, "its description"),
    ("meta", "TEXT CONSTRAINT meta_is_a_json_object CHECK (meta IS NULL OR (json_valid(meta) "
             "AND json_type(meta) = 'object'))", True, "free-form JSON object"),
)

BLOCK_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("type", "TEXT", False, "the block type"),
    ("category", "TEXT", False, "its palette category"),
    ("summary", "TEXT", False, "one line on what it does"),
    ("inputs", "TEXT", False, "its input ports (JSON list)"),
    ("outputs", "TEXT", False, "its output ports (JSON list)"),
    ("params", "TEXT", False, "its parameter names (JSON list)"),
    ("defaults", "TEXT", False, "their defaults (JSON object)"),
    ("params_schema", "TEXT", False, "the JSON Schema of its parameters"),
    ("explanation", "TEXT", False, "what it is, for learners (Markdown)"),
)

COLUMNS = {"model": MODEL_COLUMNS, "nodes": NODE_COLUMNS, "edges": EDGE_COLUMNS,
           "blocks": BLOCK_COLUMNS}
TABLE_DOCS = {
    "model": "the model itself: one row",
    "nodes": "one row per node; nested nodes by path (blocks/attn)",
    "edges": "one row per edge, nodes named by path",
    "blocks": "the catalog of blocks",
}
WRITABLE: dict[str, frozenset[str]] = {
    table: frozenset(name for name, _, writable, _ in cols if writable)
    for table, cols in COLUMNS.items()}
# Tables whose rows statements may add and remove.
GROWABLE = frozenset({"nodes", "edges"})


def _ddl(table: str, columns: tuple[tuple[str, str, bool, str], ...], extra: str = "") -> str:
    body = ",\n  ".join(f"{name} {decl}".rstrip() for name, decl, _, _ in columns)
    return f"CREATE TABLE {table} (\n  {body}{extra}\n)"


_PATH = "CASE WHEN {r}.parent IS NULL THEN {r}.id ELSE {r}.parent || '/' || {r}.id END"
_GENERATED = "".join(
    f",\n  {name} GENERATED ALWAYS AS (coalesce(json_extract(params, '$.{name}'), "
    f"json_extract(defaults, '$.{name}')))" for name in PARAM_COLUMNS)

SCHEMA = [
    _ddl("model", MODEL_COLUMNS),
    _ddl("nodes", NODE_COLUMNS, _GENERATED),
    "CREATE UNIQUE INDEX nodes_path ON nodes(path)",
    "CREATE INDEX nodes_parent ON nodes(parent)",
    _ddl("edges", EDGE_COLUMNS),
    "CREATE INDEX edges_from ON edges(from_node)",
    "CREATE INDEX edges_to ON edges(to_node)",
    _ddl("blocks", BLOCK_COLUMNS),
]
# Created after the tables are filled: Shipyard's own rows come with their paths.
TRIGGER_DDL = [
    # A new node: its path, and its block's defaults.
    f"""CREATE TRIGGER node_added AFTER INSERT ON nodes BEGIN
      UPDATE nodes SET path = {_PATH.format(r='NEW')},
        defaults = (SELECT defaults FROM blocks WHERE blocks.type = NEW.type)
      WHERE rowid = NEW.rowid;
    END""",
    # A renamed or moved node: its path, the edges naming it, its nested nodes (which fire
    # this trigger in turn: recursive triggers are on).
    f"""CREATE TRIGGER node_moved AFTER UPDATE OF id, parent ON nodes
    WHEN NEW.path IS NOT {_PATH.format(r='NEW')} BEGIN
      UPDATE nodes SET path = {_PATH.format(r='NEW')} WHERE rowid = NEW.rowid;
      UPDATE edges SET from_node = {_PATH.format(r='NEW')} WHERE from_node = OLD.path;
      UPDATE edges SET to_node = {_PATH.format(r='NEW')} WHERE to_node = OLD.path;
      UPDATE nodes SET parent = {_PATH.format(r='NEW')} WHERE parent = OLD.path;
    END""",
    """CREATE TRIGGER node_retyped AFTER UPDATE OF type ON nodes BEGIN
      UPDATE nodes SET defaults = (SELECT defaults FROM blocks WHERE blocks.type = NEW.type)
      WHERE rowid = NEW.rowid;
    END""",
    # A node cannot hold itself, directly or through the nodes nested in it.
    """CREATE TRIGGER node_nesting BEFORE UPDATE OF parent ON nodes
    WHEN NEW.parent IS NOT NULL AND (NEW.parent = OLD.path
         OR substr(NEW.parent, 1, length(OLD.path) + 1) = OLD.path || '/') BEGIN
      SELECT RAISE(ABORT, 'a node cannot be nested inside itself');
    END""",
    # A deleted node takes its edges and its nested nodes with it.
    """CREATE TRIGGER node_deleted AFTER DELETE ON nodes BEGIN
      DELETE FROM edges WHERE from_node = OLD.path OR to_node = OLD.path;
      DELETE FROM nodes WHERE parent = OLD.path;
    END""",
]
TRIGGERS = frozenset({"node_added", "node_moved", "node_retyped", "node_nesting",
                      "node_deleted"})


@dataclass
class NodeRow:
    path: str
    id: str
    parent: str | None
    type: str
    params: dict[str, Any] | None  # None: the node had no params member
    x: Any = None
    y: Any = None
    graph: dict[str, Any] | None = None  # a nested graph's members other than nodes/edges
    extra: dict[str, Any] = field(default_factory=dict)  # members Shipyard does not know


@dataclass
class EdgeRow:
    from_node: str
    from_port: str | None
    to_node: str
    to_port: str | None


def split_endpoint(text: Any, parent: str | None) -> tuple[str, str | None]:
    """`"qkv.k"` inside `blocks` -> (`blocks/qkv`, `k`)."""
    node, _, port = str(text).partition(".")
    return (node if parent is None else f"{parent}/{node}"), (port or None)


def walk_document(doc: dict[str, Any]) -> tuple[list[NodeRow], list[EdgeRow]]:
    """Every node (nested ones after their holder's siblings, depth first in listed order)
    and every edge of a document, as rows."""
    nodes: list[NodeRow] = []
    edges: list[EdgeRow] = []

    def visit(graph: dict[str, Any], parent: str | None) -> None:
        raw_layout = graph.get("layout")
        layout: dict[str, Any] = raw_layout if isinstance(raw_layout, dict) else {}
        nested: list[tuple[dict[str, Any], str]] = []
        listed = graph.get("nodes")
        for raw in listed if isinstance(listed, list) else []:
            if not isinstance(raw, dict):
                continue
            node_id = str(raw.get("id"))
            path = node_id if parent is None else f"{parent}/{node_id}"
            pos = layout.get(node_id)
            x, y = (pos[0], pos[1]) if isinstance(pos, list) and len(pos) == 2 else (None, None)
            params = raw.get("params") if "params" in raw else None
            inner = raw.get("graph")
            row = NodeRow(path, node_id, parent, str(raw.get("type")),
                          params,
                          x, y, extra={k: v for k, v in raw.items()
                                       if k not in ("id", "type", "params", "graph")})
            if isinstance(inner, dict):
                row.graph = {k: v for k, v in inner.items() if k not in ("nodes", "edges")}
                nested.append((inner, path))
            elif "graph" in raw:
                row.extra["graph"] = inner
            nodes.append(row)
        listed = graph.get("edges")
        for raw in listed if isinstance(listed, list) else []:
            if isinstance(raw, dict):
                src = split_endpoint(raw.get("from"), parent)
                dst = split_endpoint(raw.get("to"), parent)
                edges.append(EdgeRow(src[0], src[1], dst[0], dst[1]))
        for inner, path in nested:
            visit(inner, path)

    visit(doc, None)
    return nodes, edges


def report_entries(report: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, entry) for every node of an inspection report, nested ones included."""
    def walk(nodes: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for node_id, entry in nodes.items():
            path = prefix + node_id
            yield path, entry
            body = entry.get("body")
            if isinstance(body, dict):
                yield from walk(body.get("nodes", {}), path + "/")
    yield from walk(report.get("nodes") or {}, "")


def _blocks_rows() -> list[tuple[Any, ...]]:
    rows = []
    for b in catalog():
        schema = b["params_schema"]
        rows.append((b["type"], b["category"], b["summary"], json.dumps(b["inputs"]),
                     json.dumps(b["outputs"]), json.dumps(list(schema.get("properties", {}))),
                     json.dumps(b.get("defaults", {})), json.dumps(schema), b["explanation"]))
    return rows


_BLOCK_ROWS: list[tuple[Any, ...]] | None = None


def fill(conn: sqlite3.Connection, doc: dict[str, Any], report: dict[str, Any],
         nodes: list[NodeRow], edges: list[EdgeRow]) -> None:
    global _BLOCK_ROWS
    if _BLOCK_ROWS is None:
        _BLOCK_ROWS = _blocks_rows()
    conn.executemany(f"INSERT INTO blocks VALUES ({', '.join('?' * len(BLOCK_COLUMNS))})",
                     _BLOCK_ROWS)
    conn.execute("INSERT INTO model VALUES (?, ?, ?)",
                 (doc.get("name"), doc.get("description"),
                  json.dumps(doc["meta"]) if "meta" in doc else None))
    problems: dict[str, list[str]] = {}
    for p in report.get("problems", []):
        if p.get("node"):
            problems.setdefault(p["node"], []).append(p["message"])
    entries = dict(report_entries(report))
    defaults = {row[0]: row[6] for row in _BLOCK_ROWS}
    node_rows = []
    for n in nodes:
        e = entries.get(n.path, {})
        node_rows.append((
            n.path, n.id, n.parent, n.type,
            json.dumps(n.params if n.params is not None else {}), n.x, n.y,
            defaults.get(n.type),
            json.dumps(e["inputs"]) if "inputs" in e else None,
            json.dumps(e["outputs"]) if "outputs" in e else None,
            e.get("params"), e.get("trainable_params"), e.get("flops"),
            e.get("activation_bytes"), e.get("status"),
            json.dumps(problems.get(n.path, []))))
    names = ", ".join(name for name, *_ in NODE_COLUMNS)
    # Executed without the triggers' help: paths and defaults are given here.
    conn.executemany(f"INSERT INTO nodes ({names}) VALUES ({', '.join('?' * len(NODE_COLUMNS))})",
                     node_rows)
    conn.executemany("INSERT INTO edges VALUES (?, ?, ?, ?)",
                     [(e.from_node, e.from_port, e.to_node, e.to_port) for e in edges])
