"""Shipyard's SQL dialect: plain SQL (SQLite's) over tables filled from a model.

    from compute.engine.sql import run_sql, dump_sql
    result = run_sql(document, "SELECT id, type, flops FROM nodes ORDER BY flops DESC LIMIT 5")
    result.statements[0].rows
    changed = run_sql(document, "UPDATE nodes SET params = json_set(params, '$.times', 6) "
                                "WHERE id = 'blocks'").document

Tables: `model`, `nodes`, `edges`, `blocks`; for a model with trained weights (`trained=`)
also `tensors`, `heads` and `eval`. A script runs as one transaction; a change is validated
by the engine as a saved graph is, and refused whole when the result is invalid.
"""

from __future__ import annotations

from typing import Any

from . import tables as _tables
from .core import SqlError, SqlLimits, SqlResult, StatementResult, run_sql, split_statements
from .dump import dump_sql, empty_document
from .weights import TrainedModel, WeightTables

EXAMPLES: list[dict[str, Any]] = [
    {"title": "Which blocks cost the most",
     "sql": "SELECT path, type, flops, params_count FROM nodes ORDER BY flops DESC LIMIT 5",
     "trained": False},
    {"title": "Parameters per block type",
     "sql": "SELECT type, count(*) AS nodes, sum(params_count) AS params FROM nodes\n"
            "GROUP BY type ORDER BY params DESC",
     "trained": False},
    {"title": "Output shape of every node",
     "sql": "SELECT path, type, json_extract(outputs, '$.out.shape') AS shape FROM nodes",
     "trained": False},
    {"title": "Set every Dropout to 0.2",
     "sql": "UPDATE nodes SET params = json_set(params, '$.p', 0.2) WHERE type = 'Dropout'",
     "trained": False},
    {"title": "Six transformer layers",
     "sql": "UPDATE nodes SET params = json_set(params, '$.times', 6) WHERE id = 'blocks'",
     "trained": False},
    {"title": "What feeds what",
     "sql": "SELECT from_node, to_node, f.type AS from_type, t.type AS to_type\n"
            "FROM edges JOIN nodes f ON f.path = from_node JOIN nodes t ON t.path = to_node",
     "trained": False},
    {"title": "Blocks with a 'dim' parameter",
     "sql": "SELECT type, summary FROM blocks WHERE params LIKE '%\"dim\"%'",
     "trained": False},
    {"title": "Largest tensors",
     "sql": "SELECT name, shape, numel, std FROM tensors ORDER BY numel DESC LIMIT 10",
     "trained": True},
    {"title": "Freeze the first layer",
     "sql": "UPDATE tensors SET frozen = 1 WHERE node LIKE 'blocks.0.%'",
     "trained": True},
    {"title": "Loss and accuracy now",
     "sql": "SELECT * FROM eval",
     "trained": True},
    {"title": "Most focused attention heads",
     "sql": "SELECT node, head, entropy FROM heads ORDER BY entropy LIMIT 5",
     "trained": True},
]


def sql_schema(trained: bool = False) -> dict[str, Any]:
    """What an editor needs to complete and explain statements: each table's columns (name,
    type, writable, what it holds) and the example statements."""
    tables: dict[str, Any] = {}
    for table, columns in _tables.COLUMNS.items():
        cols = [{"name": name, "type": decl.split(" ")[0] if decl else "ANY",
                 "writable": writable, "doc": doc} for name, decl, writable, doc in columns]
        if table == "nodes":
            cols += [{"name": name, "type": "ANY", "writable": False,
                      "doc": f"the parameter {name} (given, or the block's default)"}
                     for name in _tables.PARAM_COLUMNS]
        tables[table] = {"doc": _tables.TABLE_DOCS[table], "columns": cols}
    if trained:
        tables.update(WeightTables.schema())
    return {"tables": tables,
            "examples": [e for e in EXAMPLES if trained or not e["trained"]]}


__all__ = [
    "EXAMPLES",
    "SqlError",
    "SqlLimits",
    "SqlResult",
    "StatementResult",
    "TrainedModel",
    "WeightTables",
    "dump_sql",
    "empty_document",
    "run_sql",
    "split_statements",
    "sql_schema",
]
