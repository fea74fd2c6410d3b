"""The SQL dialect over a model's architecture: each table, each kind of statement, the
write-back that validates a change as a save does, the dump that rebuilds a model, and the
guard that keeps a statement inside Shipyard's tables and limits."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.engine import block_catalog, inspect_graph, load_starter, starter_names
from compute.engine.sql import (
    SqlError,
    SqlLimits,
    dump_sql,
    empty_document,
    run_sql,
    split_statements,
    sql_schema,
)

from .graphs import document, input_node, node
from .test_custom_blocks import model as custom_model
from .test_properties import Drawn, valid_graphs


def rows(doc: dict[str, Any], sql: str, **kw: Any) -> list[list[Any]]:
    return run_sql(doc, sql, **kw).statements[-1].rows


def refused(doc: dict[str, Any], sql: str, **kw: Any) -> SqlError:
    before = copy.deepcopy(doc)
    with pytest.raises(SqlError) as caught:
        run_sql(doc, sql, **kw)
    assert doc == before  # the document given is never touched
    return caught.value


MLP = load_starter("mlp")
GPT = load_starter("char_gpt")


# --- the tables ---------------------------------------------------------------------------

def test_nodes_hold_each_node_with_its_inspection() -> None:
    report = inspect_graph(MLP)
    got = rows(MLP, "SELECT id, path, parent, type, params_count, flops, status, "
                    "json_extract(outputs, '$.out.shape') FROM nodes")
    assert [r[0] for r in got] == [n["id"] for n in MLP["nodes"]]  # document order
    for node_id, path, parent, type_, count, flops, status, shape in got:
        entry = report["nodes"][node_id]
        assert (path, parent, type_, status) == (node_id, None, entry["type"], "ok")
        assert (count, flops) == (entry["params"], entry["flops"])
        if entry["outputs"]:
            assert json.loads(shape) == entry["outputs"]["out"]["shape"]


def test_nested_nodes_have_their_path_and_parent() -> None:
    got = rows(GPT, "SELECT path, id, parent FROM nodes WHERE parent IS NOT NULL")
    body = next(n for n in GPT["nodes"] if n["id"] == "blocks")["graph"]["nodes"]
    assert got == [[f"blocks/{n['id']}", n["id"], "blocks"] for n in body]


def test_parameter_columns_read_given_values_or_the_defaults() -> None:
    assert rows(GPT, "SELECT times FROM nodes WHERE id = 'blocks'") == [[4]]
    got = dict(rows(GPT, "SELECT path, p FROM nodes WHERE type = 'Dropout'"))
    assert got and all(isinstance(v, float) for v in got.values())
    assert rows(MLP, "SELECT out_features FROM nodes WHERE id = 'logits'") == [[10]]


def test_edges_name_nodes_by_path_and_ports_where_given() -> None:
    doc = document(
        [input_node("x", [8]), node("qkv", "Split", names=["a", "b"], sizes=[4, 4]),
         node("s", "Add"), node("y", "Output")],
        [("x", "qkv"), ("qkv.a", "s.a"), ("qkv.b", "s.b"), ("s", "y")])
    assert rows(doc, "SELECT * FROM edges") == [
        ["x", None, "qkv", None], ["qkv", "a", "s", "a"], ["qkv", "b", "s", "b"],
        ["s", None, "y", None]]
    inner = rows(GPT, "SELECT count(*) FROM edges WHERE from_node LIKE 'blocks/%'")[0][0]
    body = next(n for n in GPT["nodes"] if n["id"] == "blocks")["graph"]
    assert inner == len(body["edges"])


def test_blocks_is_the_catalog_and_model_is_one_row() -> None:
    catalog = block_catalog()["blocks"]
    assert [r[0] for r in rows(MLP, "SELECT type FROM blocks")] == [b["type"] for b in catalog]
    assert rows(MLP, "SELECT name, description IS NOT NULL FROM model") == [[MLP["name"], 1]]


def test_select_joins_aggregates_and_json_functions() -> None:
    got = rows(GPT, "SELECT n.type, count(*), sum(n.params_count) FROM edges e "
                    "JOIN nodes n ON n.path = e.to_node GROUP BY n.type ORDER BY 3 DESC "
                    "LIMIT 1")
    assert got[0][0] == "Repeat"
    got = rows(GPT, "SELECT json_extract(params, '$.num_heads') FROM nodes "
                    "WHERE type = 'MultiHeadAttention'")
    assert got == [[4]]


# --- changing the architecture ------------------------------------------------------------

def test_update_params_with_json_set_changes_every_matching_node() -> None:
    result = run_sql(GPT, "UPDATE nodes SET params = json_set(params, '$.p', 0.2) "
                          "WHERE type = 'Dropout'")
    assert result.document is not None and result.change is not None
    changed = result.change["nodes"]["changed"]
    assert changed and all(rows(result.document, f"SELECT p FROM nodes WHERE path = '{p}'")
                           == [[0.2]] for p in changed)
    assert result.statements[0].changed == len(changed)
    assert result.report is not None and result.report["valid"]


def test_growing_a_repeat_gives_the_new_totals() -> None:
    result = run_sql(GPT, "UPDATE nodes SET params = json_set(params, '$.times', 6) "
                          "WHERE id = 'blocks'")
    assert result.document is not None and result.change is not None
    assert result.change["nodes"]["changed"] == ["blocks"]
    assert result.change["totals"] == inspect_graph(result.document)["totals"]
    assert result.change["totals"]["params"] > inspect_graph(GPT)["totals"]["params"]


def test_inserting_a_node_between_two_others() -> None:
    result = run_sql(MLP, """
        INSERT INTO nodes (id, type, params) VALUES ('drop', 'Dropout', '{"p": 0.25}');
        UPDATE edges SET to_node = 'drop' WHERE from_node = 'hidden1' AND to_node = 'act1';
        INSERT INTO edges (from_node, to_node) VALUES ('drop', 'act1');""")
    doc = result.document
    assert doc is not None and result.change is not None
    assert {"id": "drop", "type": "Dropout", "params": {"p": 0.25}} in doc["nodes"]
    assert {"from": "hidden1", "to": "drop"} in doc["edges"]
    assert {"from": "drop", "to": "act1"} in doc["edges"]
    assert result.change["nodes"]["added"] == ["drop"]
    assert result.change["edges"]["removed"] == [{"from": "hidden1", "to": "act1"}]


def test_deleting_a_node_deletes_its_edges() -> None:
    result = run_sql(MLP, "DELETE FROM nodes WHERE id = 'act1';"
                          "INSERT INTO edges (from_node, to_node) VALUES ('hidden1', 'hidden2')")
    doc = result.document
    assert doc is not None and result.change is not None
    assert all("act1" not in (e["from"], e["to"]) for e in doc["edges"])
    assert result.change["nodes"]["removed"] == ["act1"]


def test_renaming_a_node_renames_it_in_edges_and_in_nested_paths() -> None:
    result = run_sql(GPT, "UPDATE nodes SET id = 'layers' WHERE id = 'blocks';"
                          "SELECT path FROM nodes WHERE parent = 'layers' LIMIT 1")
    body = next(n for n in GPT["nodes"] if n["id"] == "blocks")["graph"]["nodes"]
    assert result.statements[1].rows == [[f"layers/{body[0]['id']}"]]
    doc = result.document
    assert doc is not None
    assert any(e["to"] == "layers" for e in doc["edges"])
    assert "layers" in doc.get("layout", {})


def test_deleting_a_repeat_deletes_its_nested_nodes() -> None:
    before = rows(GPT, "SELECT count(*) FROM edges")[0][0]
    inner = len(next(n for n in GPT["nodes"] if n["id"] == "blocks")["graph"]["edges"])
    # The Repeat's place is taken by a wire from what fed it to what it fed.
    result = run_sql(GPT, "INSERT INTO edges (from_node, to_node) "
                          "  SELECT a.from_node, b.to_node FROM edges a, edges b"
                          "  WHERE a.to_node = 'blocks' AND b.from_node = 'blocks';"
                          "DELETE FROM nodes WHERE id = 'blocks';"
                          "SELECT count(*) FROM nodes WHERE path LIKE 'blocks/%';"
                          "SELECT count(*) FROM edges")
    assert result.statements[2].rows == [[0]]
    assert result.statements[3].rows == [[before + 1 - 2 - inner]]
    assert result.document is not None
    assert all(n["id"] != "blocks" for n in result.document["nodes"])


def test_an_invalid_result_is_refused_with_the_engines_problems() -> None:
    err = refused(MLP, "UPDATE nodes SET params = json_set(params, '$.out_features', -3) "
                       "WHERE id = 'hidden1'")
    assert any(p["node"] == "hidden1" for p in err.problems)
    assert "nothing was changed" in err.message


def test_a_script_is_all_or_nothing() -> None:
    err = refused(MLP, "UPDATE model SET name = 'renamed';"
                       "UPDATE nodes SET nonsense = 1")
    assert err.statement == 1
    assert "no such column: nonsense" in err.message


def test_statements_that_change_nothing_give_no_new_document() -> None:
    result = run_sql(MLP, "UPDATE nodes SET type = type")
    assert result.document is None and not result.changed


def test_model_members_can_be_changed() -> None:
    result = run_sql(MLP, "UPDATE model SET name = 'bigger', meta = json('{\"lr\": 0.1}')")
    assert result.document is not None and result.change is not None
    assert result.document["name"] == "bigger" and result.document["meta"] == {"lr": 0.1}
    assert result.change["model"] == ["name", "meta"]


def test_nodes_inside_a_custom_block_are_read_only() -> None:
    doc = custom_model()
    assert rows(doc, "SELECT count(*) FROM nodes WHERE parent = 'ffn'") == [[7]]
    err = refused(doc, "UPDATE nodes SET params = json_set(params, '$.out_features', 3) "
                       "WHERE path = 'ffn/lin'")
    assert "pinned copy" in err.message and "ffn" in err.message


def test_a_node_nested_in_a_block_that_holds_no_graph_is_refused() -> None:
    err = refused(MLP, "INSERT INTO nodes (id, parent, type) VALUES ('z', 'hidden1', 'ReLU')")
    assert "holds no nodes" in err.message


def test_a_node_nested_inside_itself_is_refused_at_once() -> None:
    for sql in ("UPDATE nodes SET parent = 'blocks' WHERE id = 'blocks'",
                "UPDATE nodes SET parent = 'blocks/attn' WHERE id = 'blocks'"):
        assert "nested inside itself" in refused(GPT, sql).message


def test_params_must_stay_a_json_object() -> None:
    err = refused(MLP, "UPDATE nodes SET params = '[1]' WHERE id = 'hidden1'")
    assert "params must be a JSON object" in err.message


def test_an_edge_across_graphs_is_refused() -> None:
    err = refused(GPT, "INSERT INTO edges (from_node, to_node) VALUES ('wte', 'blocks/attn')")
    assert "different graphs" in err.message


def test_read_only_models_answer_selects_and_refuse_changes() -> None:
    reason = "this is a shared link, read-only: fork it to change"
    assert rows(MLP, "SELECT count(*) FROM nodes", read_only=reason) == [[7]]
    for sql in ("UPDATE model SET name = 'x'", "DELETE FROM edges",
                "INSERT INTO nodes (id, type) VALUES ('a', 'ReLU')"):
        err = refused(MLP, sql, read_only=reason)
        assert reason in err.message and err.kind == "read_only"
    assert refused(MLP, "PRAGMA x", read_only=reason).kind == "error"


# --- the guard and the limits -------------------------------------------------------------

@pytest.mark.parametrize(("sql", "says"), [
    ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
    ("DETACH DATABASE main", "ATTACH and DETACH"),
    ("PRAGMA table_info(nodes)", "PRAGMA"),
    ("SELECT load_extension('/tmp/evil.so')", "load_extension"),
    ("CREATE TABLE t (x)", "create, drop or alter"),
    ("CREATE TEMP VIEW v AS SELECT 1", "create, drop or alter"),
    ("DROP TABLE nodes", "create, drop or alter"),
    ("ALTER TABLE nodes ADD COLUMN z", "create, drop or alter"),
    ("CREATE TRIGGER t AFTER INSERT ON nodes BEGIN SELECT 1; END", "create, drop or alter"),
    ("BEGIN", "one transaction"),
    ("COMMIT", "one transaction"),
    ("SAVEPOINT a", "one transaction"),
    ("VACUUM", "not allowed"),
    ("SELECT * FROM sqlite_master", "SQLite's own"),
    ("SELECT * FROM sqlite_temp_master", "SQLite's own"),
    ("UPDATE nodes SET flops = 0", "nodes.flops is read-only"),
    ("UPDATE nodes SET times = 9", "(change params)"),
    ("UPDATE nodes SET path = 'x'", "read-only"),
    ("DELETE FROM blocks", "cannot be added or removed"),
    ("INSERT INTO model VALUES ('a', 'b', NULL)", "cannot be added or removed"),
    ("UPDATE blocks SET summary = ''", "read-only"),
])
def test_the_guard_refuses_what_the_dialect_does_not_need(sql: str, says: str) -> None:
    assert says in refused(MLP, sql).message


def test_a_statement_that_runs_too_long_is_stopped() -> None:
    err = refused(MLP, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                       "SELECT count(*) FROM c", limits=SqlLimits(timeout_ms=200))
    assert "time limit of 200 ms" in err.message and "SHIPYARD_SQL_TIMEOUT_MS" in err.message


def test_rows_are_cut_at_the_limit_and_said_so() -> None:
    result = run_sql(MLP, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                          "SELECT x FROM c", limits=SqlLimits(max_rows=50))
    assert len(result.statements[0].rows) == 50 and result.statements[0].truncated
    assert result.to_json()["truncated"] is True


def test_huge_values_and_scripts_are_refused() -> None:
    assert "the most a statement may make" in refused(
        MLP, "SELECT zeroblob(2000000000)").message
    assert rows(MLP, "SELECT length(printf('%.*c', 50000000, 'x'))") == [[None]]
    assert "the limit is" in refused(MLP, "SELECT 1;" * 200).message
    assert "characters" in refused(MLP, "SELECT '" + "x" * 200_000 + "'").message


def test_growing_the_model_past_the_node_limit_is_refused() -> None:
    err = refused(MLP, "INSERT INTO nodes (id, type) WITH RECURSIVE c(i) AS "
                       "(SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 6000) "
                       "SELECT 'n' || i, 'ReLU' FROM c")
    assert "SHIPYARD_MAX_NODES" in err.message


def test_bad_sql_gets_sqlites_message_with_the_position() -> None:
    err = refused(MLP, "SELECT id FROM nodes;\nSELECT id,\n  FROM nodes")
    assert err.statement == 1 and err.position is not None
    assert 'near "FROM": syntax error' in err.message and "line 2" in err.message


def test_unknown_tables_and_columns_list_what_there_is() -> None:
    err = refused(MLP, "SELECT * FROM layers")
    assert "the tables are: blocks, edges, model, nodes" in err.message
    err = refused(MLP, "SELECT widht FROM nodes")
    assert "nodes has path, id, parent, type, params" in err.message
    assert err.position == 7


def test_split_statements_respects_strings_names_and_comments() -> None:
    script = "SELECT ';' AS \"a;b\"; -- c;d\nSELECT [x;y] FROM t /* ; */; ;"
    assert [s for _, s in split_statements(script)] == [
        "SELECT ';' AS \"a;b\"", "-- c;d\nSELECT [x;y] FROM t /* ; */"]


def test_no_statement_is_a_clear_error() -> None:
    assert "no statement" in refused(MLP, " -- only a comment ;; ").message


# --- the dump: a script that rebuilds the model -------------------------------------------

@pytest.mark.parametrize("name", starter_names())
def test_dump_rebuilds_every_starter_exactly(name: str) -> None:
    doc = load_starter(name)
    result = run_sql(empty_document(), dump_sql(doc))
    assert result.document == doc


def test_dump_rebuilds_custom_blocks_and_awkward_text() -> None:
    doc = custom_model(description="it's \"quoted\"; -- not a comment\n\x00 and é",
                       meta={"note": "a'b"})
    doc["layout"] = {"x": [0, 1.5], "ffn": [220, -3]}
    result = run_sql(empty_document(), dump_sql(doc))
    assert result.document == doc
    # Numbers keep their form (1 stays 1, 1.5 stays 1.5).
    assert json.dumps(result.document, sort_keys=True) == json.dumps(doc, sort_keys=True)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(valid_graphs())
def test_dump_rebuilds_random_valid_graphs(drawn: Drawn) -> None:
    result = run_sql(empty_document(), dump_sql(drawn.doc))
    assert result.document == drawn.doc


# --- hostile statements never raise anything but a clear error ----------------------------

WORDS = ["SELECT", "UPDATE", "INSERT INTO", "DELETE FROM", "nodes", "edges", "model",
         "blocks", "SET", "params", "id", "type", "parent", "=", "'x'", "json_set(params, "
         "'$.p', 2)", "WHERE", "VALUES", "(", ")", ",", ";", "*", "NULL", "1", "'Repeat'",
         "from_node", "to_node", "x", "y", "FROM", "ORDER BY", "LIMIT", "'blocks'", "'{'"]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12)
       | st.text(max_size=60))
def test_random_statements_give_a_result_or_a_clear_error(words: list[str] | str) -> None:
    script = words if isinstance(words, str) else " ".join(words)
    try:
        result = run_sql(GPT, script)
    except SqlError as exc:
        assert exc.message
        json.dumps(exc.to_json())
    else:
        json.dumps(result.to_json())
        if result.document is not None:
            assert inspect_graph(result.document)["valid"]


def test_the_schema_lists_every_column_and_examples_that_run() -> None:
    schema = sql_schema()
    assert set(schema["tables"]) == {"model", "nodes", "edges", "blocks"}
    names = [c["name"] for c in schema["tables"]["nodes"]["columns"]]
    got = run_sql(MLP, "SELECT * FROM nodes LIMIT 1").statements[0].columns
    assert names == got
    for example in schema["examples"]:
        run_sql(GPT, example["sql"])  # each architecture example runs on the GPT starter
