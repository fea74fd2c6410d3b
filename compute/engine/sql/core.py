"""Running a script of SQL statements over a model.

SQLite (the standard library's, in memory) runs the statements; Shipyard fills its tables
from the document before and reads them back after. Nothing of the user's text becomes code
anywhere else: a changed document is rebuilt from the tables' values and validated by the
engine exactly as a saved graph is.

Safety: an authorizer allows only what the dialect needs (reading Shipyard's tables, the
writable columns, rows added to and removed from nodes and edges); ATTACH, PRAGMA, schema
changes, transactions and extension loading are refused with a message. A progress handler
stops a script at its time limit; rows returned are cut at a limit; value sizes are capped.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from ..blocks import get_block
from ..graph import FORMAT
from ..limits import Limits, env_int
from . import tables as T
from .weights import COLUMNS as WEIGHT_COLUMNS
from .weights import TrainedModel, WeightsError, WeightTables

# --- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlLimits:
    timeout_ms: int = 2_000  # SHIPYARD_SQL_TIMEOUT_MS: a whole script's running time
    max_rows: int = 1_000  # SHIPYARD_SQL_MAX_ROWS: rows one statement returns
    max_script: int = 100_000  # characters of a script
    max_statements: int = 100  # statements of a script
    max_value_bytes: int = 1_000_000  # any one string or blob a statement makes

    @classmethod
    def from_env(cls) -> SqlLimits:
        return cls(timeout_ms=env_int("SHIPYARD_SQL_TIMEOUT_MS", cls.timeout_ms),
                   max_rows=env_int("SHIPYARD_SQL_MAX_ROWS", cls.max_rows))


# --- results and errors -------------------------------------------------------------------


class SqlError(ValueError):
    """What went wrong with a script, in words, with where: the statement (0-based), the
    character in it, and for a change that leaves the model invalid, the engine's problems."""

    def __init__(self, message: str, *, statement: int | None = None, sql: str | None = None,
                 position: int | None = None, problems: list[dict[str, Any]] | None = None,
                 kind: str = "error"):
        super().__init__(message)
        # "read_only": a change refused because the model is read-only (run_sql's
        # `read_only`); "error" for everything else.
        self.kind = kind
        self.message = message
        self.statement = statement
        self.sql = sql
        self.position = position
        self.problems = problems or []

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "statement": self.statement, "sql": self.sql,
                "position": self.position, "problems": self.problems}


@dataclass
class StatementResult:
    sql: str
    kind: str  # select | insert | update | delete
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    changed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "kind": self.kind, "columns": self.columns, "rows": self.rows,
                "truncated": self.truncated, "changed": self.changed}


@dataclass
class SqlResult:
    statements: list[StatementResult]
    document: dict[str, Any] | None = None  # the changed document; None: unchanged
    report: dict[str, Any] | None = None  # its inspection
    change: dict[str, Any] | None = None
    state: dict[str, torch.Tensor] | None = None  # new weights (a trained model's)
    frozen: frozenset[str] | None = None
    ms: float = 0.0

    @property
    def changed(self) -> bool:
        return self.document is not None or self.state is not None

    def to_json(self) -> dict[str, Any]:
        last = next((s for s in reversed(self.statements) if s.columns), None)
        return {"statements": [s.to_json() for s in self.statements],
                "columns": last.columns if last else [], "rows": last.rows if last else [],
                "truncated": last.truncated if last else False,
                "change": self.change, "document": self.document, "ms": round(self.ms, 2)}


# --- splitting a script -------------------------------------------------------------------

_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}


def split_statements(script: str) -> list[tuple[int, str]]:
    """(offset, text) of each statement, split at semicolons outside strings, quoted names
    and comments. Empty statements (and comment-only ones) are dropped."""
    out: list[tuple[int, str]] = []
    start = i = 0
    n = len(script)
    while i < n:
        c = script[i]
        if c in _QUOTES:
            end = script.find(_QUOTES[c], i + 1)
            while end != -1 and c != "[" and end + 1 < n and script[end + 1] == c:
                end = script.find(c, end + 2)  # a doubled quote is one quote
            i = n if end == -1 else end + 1
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end == -1 else end + 1
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif c == ";":
            out.append((start, script[start:i]))
            start = i = i + 1
        else:
            i += 1
    out.append((start, script[start:]))
    result = []
    for offset, text in out:
        if _strip_comments(text).strip():
            lead = len(text) - len(text.lstrip())
            result.append((offset + lead, text.strip()))
    return result


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?(\*/|$)", " ", text, flags=re.S)


def _first_word(text: str) -> str:
    m = re.match(r"\s*([A-Za-z]+)", _strip_comments(text))
    return m.group(1).lower() if m else ""


# --- the authorizer ------------------------------------------------------------------------

_SCHEMA_ACTIONS = {getattr(sqlite3, name) for name in dir(sqlite3)
                   if re.fullmatch(r"SQLITE_(CREATE|DROP)_\w+|SQLITE_ALTER_TABLE|SQLITE_REINDEX"
                                   r"|SQLITE_ANALYZE", name)}
_REFUSED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}


class _Guard:
    """SQLite's authorizer: allows what the dialect needs and remembers why it refused."""

    def __init__(self, tables: dict[str, frozenset[str]], growable: frozenset[str],
                 read_only: str | None) -> None:
        self.tables = tables  # table -> its writable columns
        self.growable = growable
        self.read_only = read_only
        self.reason: str | None = None
        self.kind = "error"
        self.reads: set[str] = set()

    def deny(self, reason: str, kind: str = "error") -> int:
        if self.reason is None:
            self.reason, self.kind = reason, kind
        return sqlite3.SQLITE_DENY

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None,
                 source: str | None) -> int:
        if source in T.TRIGGERS:
            return sqlite3.SQLITE_OK  # Shipyard's own triggers keep paths and edges true
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if arg1 and arg1.lower().startswith("sqlite_"):
                return self.deny(f"{arg1} is SQLite's own; the tables are "
                                 f"{', '.join(sorted(self.tables))}")
            if arg1 in self.tables:
                self.reads.add(arg1)
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in _REFUSED_FUNCTIONS:
                return self.deny(f"the function {arg2}() is not part of Shipyard's SQL")
            return sqlite3.SQLITE_OK
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_UPDATE):
            table = arg1 or ""
            verb = {sqlite3.SQLITE_INSERT: "INSERT", sqlite3.SQLITE_DELETE: "DELETE",
                    sqlite3.SQLITE_UPDATE: "UPDATE"}[action]
            if table.lower().startswith("sqlite_"):
                return self.deny("the tables are Shipyard's: statements that create, drop or "
                                 "alter tables, views, indexes or triggers are not allowed")
            if self.read_only:
                return self.deny(f"{verb} is refused: {self.read_only}", "read_only")
            self.reads.add(table)  # a statement that changes a table needs its rows
            if table not in self.tables:
                return self.deny(f"{table} cannot be changed; the tables are "
                                 f"{', '.join(sorted(self.tables))}")
            if action == sqlite3.SQLITE_UPDATE:
                if arg2 in self.tables[table]:
                    return sqlite3.SQLITE_OK
                writable = ", ".join(sorted(self.tables[table])) or "none"
                hint = " (change params)" if table == "nodes" and arg2 in T.PARAM_COLUMNS else ""
                return self.deny(f"{table}.{arg2} is read-only{hint}; the writable columns of "
                                 f"{table} are: {writable}")
            if table in self.growable:
                return sqlite3.SQLITE_OK
            return self.deny(f"rows of {table} cannot be added or removed"
                             + ("; UPDATE its writable columns instead"
                                if self.tables[table] else ""))
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            return self.deny("a script already runs as one transaction (all or nothing): "
                             "leave out BEGIN, COMMIT, ROLLBACK and SAVEPOINT")
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return self.deny("ATTACH and DETACH are not allowed: Shipyard's SQL sees only the "
                             "model's tables")
        if action == sqlite3.SQLITE_PRAGMA:
            return self.deny("PRAGMA is not allowed in Shipyard's SQL")
        if action in _SCHEMA_ACTIONS:
            return self.deny("the tables are Shipyard's: statements that create, drop or alter "
                             "tables, views, indexes or triggers are not allowed")
        return self.deny("this kind of statement is not part of Shipyard's SQL (SELECT, "
                         "INSERT, UPDATE and DELETE are)")


# --- inspection, cached -------------------------------------------------------------------

_REPORTS: OrderedDict[str, dict[str, Any]] = OrderedDict()
_REPORTS_KEPT = 32


def inspect_document(doc: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The engine's report of a document, remembered for the last few documents seen: the
    same model queried again is not inspected again."""
    from .. import inspect_graph  # the package imports this module

    key = hashlib.sha256(json.dumps([doc, repr(limits)], sort_keys=True).encode()).hexdigest()
    if key in _REPORTS:
        _REPORTS.move_to_end(key)
        return _REPORTS[key]
    report = inspect_graph(doc, limits=limits)
    _REPORTS[key] = report
    while len(_REPORTS) > _REPORTS_KEPT:
        _REPORTS.popitem(last=False)
    return report


# --- running a script ---------------------------------------------------------------------


def run_sql(document: dict[str, Any], script: str, *, trained: TrainedModel | None = None,
            read_only: str | None = None, limits: SqlLimits | None = None,
            graph_limits: Limits | None = None) -> SqlResult:
    """Run `script` over `document` (and, given `trained`, its weights). Raises `SqlError`,
    and nothing else for a user's input; the document given is never modified."""
    started = time.perf_counter()
    limits = limits or SqlLimits.from_env()
    graph_limits = graph_limits or Limits.from_env()
    if not isinstance(script, str):
        raise SqlError("the script must be text")
    if len(script) > limits.max_script:
        raise SqlError(f"the script is {len(script):,} characters; the limit is "
                       f"{limits.max_script:,}")
    if not isinstance(document, dict):
        raise SqlError("the model must be a graph document (a JSON object)")
    statements = split_statements(script)
    if not statements:
        raise SqlError("there is no statement to run: write one, such as "
                       "SELECT id, type FROM nodes")
    if len(statements) > limits.max_statements:
        raise SqlError(f"the script has {len(statements)} statements; the limit is "
                       f"{limits.max_statements}")

    report = inspect_document(document, graph_limits)
    node_rows, edge_rows = T.walk_document(document)
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        weights = _prepare(conn, document, report, node_rows, edge_rows, trained, limits,
                           graph_limits)
        writable = dict(T.WRITABLE)
        if weights is not None:
            writable |= {t: WeightTables.WRITABLE.get(t, frozenset())
                         for t in WeightTables.TABLES}
        guard = _Guard(writable, T.GROWABLE, read_only)
        conn.set_authorizer(guard)
        clock = _Clock(time.perf_counter() + limits.timeout_ms / 1000)  # statements only

        def over_time() -> int:
            return 1 if time.perf_counter() > clock.deadline else 0

        conn.set_progress_handler(over_time, 1_000)
        results = [_run_one(conn, guard, weights, i, text, limits, clock)
                   for i, (_, text) in enumerate(statements)]
        conn.set_authorizer(None)
        conn.set_progress_handler(None, 0)
        result = SqlResult(results)
        _write_back(conn, result, document, node_rows, edge_rows, weights, graph_limits)
    except sqlite3.Error as exc:  # anything the per-statement handling did not name
        raise SqlError(f"SQLite: {exc}") from None
    except WeightsError as exc:  # weights that do not fit, a dataset that cannot be made
        raise SqlError(str(exc)) from None
    except RecursionError:
        raise SqlError("a value is nested too deeply to read") from None
    finally:
        conn.close()
    result.ms = (time.perf_counter() - started) * 1000
    return result


def _prepare(conn: sqlite3.Connection, document: dict[str, Any], report: dict[str, Any],
             node_rows: list[T.NodeRow], edge_rows: list[T.EdgeRow],
             trained: TrainedModel | None, limits: SqlLimits, graph_limits: Limits
             ) -> WeightTables | None:
    conn.execute("PRAGMA recursive_triggers = ON")
    # Bounds on what a statement may build: values, and the database as a whole.
    conn.execute("PRAGMA max_page_count = 65536")  # 256 MiB at 4 KiB pages
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, limits.max_script * 4)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    for ddl in T.SCHEMA:
        conn.execute(ddl)
    T.fill(conn, document, report, node_rows, edge_rows)
    for ddl in T.TRIGGER_DDL:
        conn.execute(ddl)
    if trained is None:
        return None
    from .. import load_graph
    from ..errors import GraphError

    try:
        graph = load_graph(document, limits=graph_limits)
    except GraphError as exc:
        raise SqlError("the trained model's graph is not valid, so its weights cannot be "
                       "read", problems=[p.to_dict() for p in exc.problems]) from None
    weights = WeightTables(graph, trained)
    weights.create(conn)
    return weights


def _run_one(conn: sqlite3.Connection, guard: _Guard, weights: WeightTables | None,
             index: int, text: str, limits: SqlLimits, clock: _Clock) -> StatementResult:
    word = _first_word(text)
    try:
        if weights is not None:
            # Compile first (EXPLAIN runs nothing) to learn which weight tables the
            # statement reads: those are filled now, the others never.
            guard.reads.clear()
            if word != "explain":
                conn.execute("EXPLAIN " + text).fetchall()
                wanted = set(guard.reads)
            else:
                wanted = set(WeightTables.TABLES)
            for table in WeightTables.TABLES:
                if table in wanted and table not in weights.filled:
                    # Shipyard's own work: neither refused nor counted against the limit.
                    conn.set_authorizer(None)
                    paused = time.perf_counter()
                    try:
                        weights.fill(conn, table)
                    finally:
                        clock.deadline += time.perf_counter() - paused
                        conn.set_authorizer(guard)
        before = conn.total_changes
        cursor = conn.execute(text)
        columns = [d[0] for d in cursor.description or []]
        rows: list[list[Any]] = []
        truncated = False
        if columns:
            fetched = cursor.fetchmany(limits.max_rows + 1)
            truncated = len(fetched) > limits.max_rows
            rows = [[_plain(v) for v in row] for row in fetched[:limits.max_rows]]
        changed = conn.total_changes - before
        kind = word if word in ("insert", "update", "delete", "replace") else "select"
        if kind == "select" and changed:
            kind = "update"
        return StatementResult(text, kind, columns, rows, truncated,
                               max(cursor.rowcount, 0) if kind != "select" else 0)
    except sqlite3.Error as exc:
        raise _explain(exc, guard, index, text, weights, limits) from None


@dataclass
class _Clock:
    deadline: float


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _explain(exc: sqlite3.Error, guard: _Guard, index: int, text: str,
             weights: WeightTables | None, limits: SqlLimits) -> SqlError:
    """SQLite's message, made useful: the authorizer's reason for a refusal, the tables or
    columns there are for an unknown one, where in the statement the error is."""
    message = str(exc)
    position: int | None = None
    kind = "error"
    if any(w in message for w in ("not authorized", "prohibited", "authorization denied")):
        message = guard.reason or ("this kind of statement is not part of Shipyard's SQL "
                                   "(SELECT, INSERT, UPDATE and DELETE are)")
        kind = guard.kind if guard.reason else "error"
        guard.reason, guard.kind = None, "error"
    elif m := re.match(r'cannot UPDATE generated column "(\w+)"', message):
        message = (f"nodes.{m.group(1)} is read-only (change params); the writable columns "
                   f"of nodes are: {', '.join(sorted(T.WRITABLE['nodes']))}")
    elif m := re.match(r"CHECK constraint failed: (\w+)_is_a_json_object", message):
        message = (f"{m.group(1)} must be a JSON object, such as '{{\"p\": 0.2}}' (write it "
                   f"with json_set({m.group(1)}, '$.name', value))")
    elif message == "interrupted":
        message = (f"the script ran past its time limit of {limits.timeout_ms:,} ms "
                   "(SHIPYARD_SQL_TIMEOUT_MS)")
    elif "string or blob too big" in message:
        message = (f"a value grew past {limits.max_value_bytes:,} bytes, the most a statement "
                   "may make")
    elif "database or disk is full" in message:
        message = "the statement made more data than Shipyard's SQL holds (256 MiB)"
    else:
        tables = sorted(T.COLUMNS) + (list(WeightTables.TABLES) if weights else [])
        if m := re.match(r"no such table: (?:main\.)?(\S+)", message):
            message += f"; the tables are: {', '.join(tables)}"
            position = _find(text, m.group(1))
        elif m := re.match(r"no such column: (\S+)", message):
            name = m.group(1)
            position = _find(text, name)
            mentioned = [t for t in tables
                         if re.search(rf"\b{t}\b", text, re.I)] or ["nodes"]
            listing = "; ".join(f"{t} has {', '.join(_columns_of(t, weights))}"
                                for t in mentioned)
            message += f"; {listing}"
        elif m := re.match(r'near "(.+)": syntax error', message, re.S):
            position = _find(text, m.group(1))
        elif "incomplete input" in message:
            position = len(text)
    if position is not None:
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        message += f" (statement {index + 1}, line {line}, column {column})"
    else:
        message += f" (statement {index + 1})"
    return SqlError(message, statement=index, sql=text, position=position, kind=kind)


def _find(text: str, token: str) -> int | None:
    at = text.find(token)
    if at == -1:
        at = text.lower().find(token.lower())
    return at if at != -1 else None


def _columns_of(table: str, weights: WeightTables | None) -> list[str]:
    if table in T.COLUMNS:
        extra = list(T.PARAM_COLUMNS) if table == "nodes" else []
        return [c[0] for c in T.COLUMNS[table]] + extra
    if weights is not None and table in WEIGHT_COLUMNS:
        return [c[0] for c in WEIGHT_COLUMNS[table]]
    return []


# --- writing back ---------------------------------------------------------------------------


def _write_back(conn: sqlite3.Connection, result: SqlResult, document: dict[str, Any],
                old_nodes: list[T.NodeRow], old_edges: list[T.EdgeRow],
                weights: WeightTables | None, graph_limits: Limits) -> None:
    """The document the tables now describe, if it differs: validated, diffed, and (for a
    trained model) the weights carried onto it."""
    if not any(s.kind != "select" for s in result.statements):
        return
    new_doc, rows, edge_rows = _assemble(conn, document, old_nodes, graph_limits)
    if new_doc != document:
        report = inspect_document(new_doc, graph_limits)
        if not report["valid"]:
            raise SqlError(
                "the change leaves the model invalid, so nothing was changed: "
                + "; ".join(f"{p['node'] or 'graph'}: {p['message']}"
                            for p in report["problems"][:5])
                + (f" (and {len(report['problems']) - 5} more)"
                   if len(report["problems"]) > 5 else ""),
                problems=report["problems"])
        result.document, result.report = new_doc, report
        result.change = _diff(document, old_nodes, old_edges, rows, edge_rows, new_doc)
        result.change["totals"] = report["totals"]
    if weights is not None:
        from .. import load_graph

        new_graph = load_graph(new_doc, limits=graph_limits) if result.document else None
        applied = weights.apply(conn, new_graph)
        if applied is not None:
            result.state, result.frozen, summary = applied
            if result.change is None:
                result.change = {"nodes": {"added": [], "removed": [], "changed": []},
                                 "edges": {"added": [], "removed": []}, "model": [],
                                 "totals": None}
            result.change["weights"] = summary


_NODE_SELECT = "SELECT rowid, path, id, parent, type, params, x, y FROM nodes ORDER BY rowid"


def _assemble(conn: sqlite3.Connection, document: dict[str, Any], old_nodes: list[T.NodeRow],
              graph_limits: Limits
              ) -> tuple[dict[str, Any], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    count = conn.execute("SELECT count(*) FROM nodes").fetchone()[0]
    if count > graph_limits.max_nodes:
        raise SqlError(f"the model would have {count:,} nodes; the limit is "
                       f"{graph_limits.max_nodes:,} (SHIPYARD_MAX_NODES)")
    edges_count = conn.execute("SELECT count(*) FROM edges").fetchone()[0]
    if edges_count > 4 * graph_limits.max_nodes:
        raise SqlError(f"the model would have {edges_count:,} edges; at most "
                       f"{4 * graph_limits.max_nodes:,} fit its nodes")
    rows = conn.execute(_NODE_SELECT).fetchall()
    old_by_rowid = {i + 1: n for i, n in enumerate(old_nodes)}
    by_path: dict[str, tuple[Any, ...]] = {}
    children: dict[str | None, list[tuple[Any, ...]]] = {}
    for row in rows:
        _, path, node_id, parent, *_ = row
        if path is None:
            raise SqlError(f"node {node_id!r} has no path: give it an id")
        by_path[path] = row
        children.setdefault(parent, []).append(row)
    for parent in children:
        if parent is None:
            continue
        holder = by_path.get(parent)
        if holder is None:
            raise SqlError(f"{children[parent][0][1]}: its parent {parent!r} is not a node")
        block = get_block(holder[4])
        if block is None or not block.holds_graph:
            raise SqlError(f"{children[parent][0][1]}: its parent {parent!r} is a "
                           f"{holder[4]}, which holds no nodes (a Repeat does)")
    edges: dict[str | None, list[dict[str, str]]] = {}
    edge_rows = conn.execute(
        "SELECT from_node, from_port, to_node, to_port FROM edges ORDER BY rowid").fetchall()
    for from_node, from_port, to_node, to_port in edge_rows:
        ends = []
        for path, port in ((from_node, from_port), (to_node, to_port)):
            parent, _, local = str(path).rpartition("/")
            ends.append((parent or None, local + (f".{port}" if port is not None else "")))
        if ends[0][0] != ends[1][0]:
            raise SqlError(f"the edge from {from_node} to {to_node} joins nodes of different "
                           "graphs; an edge stays inside one graph (a Repeat's body, or the "
                           "top level)")
        if ends[0][0] is not None and ends[0][0] not in by_path:
            raise SqlError(f"the edge from {from_node} to {to_node}: there is no node "
                           f"{ends[0][0]!r}")
        edges.setdefault(ends[0][0], []).append({"from": ends[0][1], "to": ends[1][1]})

    def params_of(row: tuple[Any, ...]) -> tuple[bool, Any]:
        params = json.loads(row[5])
        old = old_by_rowid.get(row[0])
        keep_member = bool(params) or (old is not None and old.params is not None)
        return keep_member, params

    def graph_of(parent: str | None, members: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        nodes: list[dict[str, Any]] = []
        layout: dict[str, list[Any]] = {}
        for row in children.get(parent, []):
            rowid, path, node_id, _, node_type, _, x, y = row
            node: dict[str, Any] = {"id": node_id, "type": node_type}
            keep, params = params_of(row)
            if keep:
                node["params"] = params
            old = old_by_rowid.get(rowid)
            if path in children or (old is not None and old.graph is not None):
                node["graph"] = graph_of(path, old.graph if old is not None else None)
            if old is not None:
                node.update(old.extra)
            nodes.append(node)
            if x is not None or y is not None:
                layout[node_id] = [x, y]
        base = members if members is not None else {}
        for key, value in base.items():
            if key != "layout":
                out[key] = value
        out["nodes"] = nodes
        out["edges"] = edges.get(parent, [])
        if layout or "layout" in base:
            out["layout"] = layout
        return out

    top_members = {k: v for k, v in document.items() if k not in ("nodes", "edges")}
    name, description, meta = conn.execute(
        "SELECT name, description, meta FROM model").fetchone()
    for key, value in (("name", name), ("description", description),
                       ("meta", json.loads(meta) if meta is not None else None)):
        if value is None:
            top_members.pop(key, None)
        else:
            top_members[key] = value
    top_members.setdefault("format", FORMAT)
    doc = graph_of(None, top_members)
    ordered: dict[str, Any] = {k: doc[k] for k in ("format", "name", "description", "meta")
                               if k in doc}
    ordered.update(doc)
    _check_custom_copies(ordered, document)
    return ordered, rows, edge_rows


def _check_custom_copies(new: dict[str, Any], old: dict[str, Any]) -> None:
    """A Custom block's nodes are a pinned copy of another graph's version: they are read,
    never changed here (positions may move)."""
    def customs(doc: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for n in doc.get("nodes") or []:
            if not isinstance(n, dict) or not isinstance(n.get("graph"), dict):
                continue
            path = prefix + str(n.get("id"))
            if n.get("type") == "Custom":
                found[path] = n
            else:
                found |= customs(n["graph"], path + "/")
        return found

    before = customs(old, "")
    for path, node in customs(new, "").items():
        was = before.get(path)
        inner, old_inner = node["graph"], (was or {}).get("graph") or {}
        if was is None:
            continue  # a block added here: saving checks its copy against its source
        if (inner.get("nodes"), inner.get("edges")) != (old_inner.get("nodes"),
                                                        old_inner.get("edges")):
            name = (node.get("params") or {}).get("name", "the block")
            raise SqlError(f"{path}: the nodes inside a Custom block are a pinned copy of "
                           f"{name!r}; change the original graph and update the block instead")


def _diff(document: dict[str, Any], old_nodes: list[T.NodeRow], old_edges: list[T.EdgeRow],
          rows: list[tuple[Any, ...]], edge_rows: list[tuple[Any, ...]],
          new_doc: dict[str, Any]) -> dict[str, Any]:
    old_by_rowid = {i + 1: n for i, n in enumerate(old_nodes)}
    now = {row[0]: row for row in rows}
    added = [row[1] for rid, row in now.items() if rid not in old_by_rowid]
    removed = [n.path for rid, n in old_by_rowid.items() if rid not in now]
    changed = []
    for rid, row in now.items():
        old = old_by_rowid.get(rid)
        if old is None:
            continue
        params = json.loads(row[5])
        if (row[1], row[2], row[3], row[4], params, row[6], row[7]) != (
                old.path, old.id, old.parent, old.type, old.params or {}, old.x, old.y):
            changed.append(row[1])

    def label(node: str, port: str | None) -> str:
        return node + (f".{port}" if port is not None else "")

    before = [(label(e.from_node, e.from_port), label(e.to_node, e.to_port)) for e in old_edges]
    after = [(label(a, b), label(c, d)) for a, b, c, d in edge_rows]
    old_set, new_set = set(before), set(after)
    model = [k for k in ("name", "description", "meta") if document.get(k) != new_doc.get(k)]
    return {
        "nodes": {"added": added, "removed": removed, "changed": changed},
        "edges": {"added": [{"from": a, "to": b} for a, b in after if (a, b) not in old_set],
                  "removed": [{"from": a, "to": b} for a, b in before if (a, b) not in new_set]},
        "model": model,
    }
