"""`dump_sql`: the statements that rebuild a model on an empty one."""

from __future__ import annotations

import json
import math
from typing import Any

from .tables import walk_document


def literal(value: Any) -> str:
    """A SQL literal for a JSON scalar: text quoted (quotes doubled), numbers as Python writes
    them, None as NULL. Text holding NUL, which SQLite's parser cannot take, is written as
    its UTF-8 bytes cast to text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NULL"
        return repr(value)
    text = str(value)
    if "\x00" in text:
        return f"CAST(x'{text.encode().hex()}' AS TEXT)"
    return "'" + text.replace("'", "''") + "'"


def _json(value: Any) -> str:
    return literal(json.dumps(value, separators=(",", ":")))


def dump_sql(document: dict[str, Any]) -> str:
    """A script that, run on an empty model (no nodes, no edges), gives back `document`:
    its name, description and meta, its nodes in order (nested ones under their Repeat or
    Custom block, by path) with their positions, and its edges in order."""
    nodes, edges = walk_document(document)
    name = document.get("name")
    lines = [
        f"-- {name or 'a model'}: {len(nodes)} nodes, {len(edges)} edges.",
        "-- Run on an empty model to rebuild it: shipyard sql EMPTY.json -f THIS.sql --write",
        f"UPDATE model SET name = {literal(name)}, "
        f"description = {literal(document.get('description'))}, "
        f"meta = {_json(document['meta']) if 'meta' in document else 'NULL'};",
    ]
    if nodes:
        lines.append("INSERT INTO nodes (id, parent, type, params, x, y) VALUES")
        lines.append(",\n".join(
            f"  ({literal(n.id)}, {literal(n.parent)}, {literal(n.type)}, "
            f"{_json(n.params if isinstance(n.params, dict) else {})}, "
            f"{literal(n.x)}, {literal(n.y)})" for n in nodes) + ";")
    if edges:
        lines.append("INSERT INTO edges (from_node, from_port, to_node, to_port) VALUES")
        lines.append(",\n".join(
            f"  ({literal(e.from_node)}, {literal(e.from_port)}, {literal(e.to_node)}, "
            f"{literal(e.to_port)})" for e in edges) + ";")
    return "\n".join(lines) + "\n"


def empty_document() -> dict[str, Any]:
    """The model a dump is run on: no nodes, no edges."""
    from ..graph import FORMAT

    return {"format": FORMAT, "nodes": [], "edges": []}
