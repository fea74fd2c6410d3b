"""SQL over saved graphs through the API (docs/sql.md): a SELECT answers rows and changes
nothing; a change is saved as a new version with the script as its message, on the same
terms as a save (409 on a stale base, the engine's problems for an invalid result, nothing
stored then); a version with initial weights answers the weight tables and a change keeps
its weights; a share link reads but never writes; another user's graph is not found; and
no body, however hostile, gets anything but a 400."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from openapi_check import assert_conforms
from rest_framework.test import APIClient
from safetensors.torch import load

from builder.graphs import services
from builder.graphs.models import Graph, GraphVersion
from compute.engine import compile_graph, load_starter

WIDER = "UPDATE nodes SET params = json_set(params, '$.out_features', 32) WHERE id = 'hidden1'"
LINEARS = "SELECT id, type FROM nodes WHERE type = 'Linear' ORDER BY id"


def run(api: APIClient, graph: int, sql: Any, **body: Any) -> Any:
    return api.post(f"/api/graphs/{graph}/sql", {"sql": sql, **body}, format="json")


def node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in document["nodes"] if n["id"] == node_id)
    return found


def head(graph: int) -> int:
    return Graph.objects.get(id=graph).head


def test_a_select_answers_its_rows_and_saves_nothing(api, make_graph, openapi):
    graph = make_graph()["id"]
    response = run(api, graph, LINEARS)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == ["id", "type"]
    assert body["rows"] == [["hidden1", "Linear"], ["hidden2", "Linear"], ["logits", "Linear"]]
    assert body["statements"][0]["kind"] == "select" and body["truncated"] is False
    assert body["change"] is None and body["document"] is None
    assert body["version"] is None and body["created"] is False
    assert head(graph) == 1
    assert_conforms(openapi, "/api/graphs/{graph_id}/sql", "post", response)


def test_a_change_is_saved_as_a_new_version_with_the_statement_as_its_message(
        api, make_graph, openapi):
    graph = make_graph()["id"]
    response = run(api, graph, WIDER)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] is True and body["version"]["number"] == 2
    assert body["version"]["message"] == WIDER
    assert body["change"]["nodes"]["changed"] == ["hidden1"]
    assert node(body["document"], "hidden1")["params"]["out_features"] == 32
    saved = api.get(f"/api/graphs/{graph}/versions/2").json()
    assert saved["document"] == body["document"] and saved["author"] == "ada"
    assert head(graph) == 2
    assert_conforms(openapi, "/api/graphs/{graph_id}/sql", "post", response)


def test_a_long_script_is_cut_to_fit_the_message(api, make_graph):
    graph = make_graph()["id"]
    script = WIDER + ";\n" + ";\n".join(["SELECT count(*) FROM nodes"] * 40)
    body = run(api, graph, script).json()
    message = body["version"]["message"]
    assert len(message) == 500 and message.endswith("…") and message.startswith(WIDER)


def test_an_invalid_change_is_refused_with_the_engines_problems_and_nothing_is_saved(
        api, make_graph, openapi):
    graph = make_graph()["id"]
    response = run(api, graph, "UPDATE nodes SET params = json_set(params, '$.out_features', 0)"
                               " WHERE id = 'hidden1'")
    assert response.status_code == 400
    body = response.json()
    assert any(p["node"] == "hidden1" for p in body["problems"]), body
    assert body["statement"] is not None or body["problems"]
    assert head(graph) == 1 and GraphVersion.objects.filter(graph_id=graph).count() == 1
    assert_conforms(openapi, "/api/graphs/{graph_id}/sql", "post", response)


def test_a_script_is_all_or_nothing(api, make_graph):
    graph = make_graph()["id"]
    response = run(api, graph, f"{WIDER}; SELECT * FROM no_such_table")
    assert response.status_code == 400
    body = response.json()
    assert body["statement"] == 1 and "no_such_table" in body["error"]
    assert "nodes" in body["error"]  # the tables there are
    assert head(graph) == 1


def test_bad_sql_gets_sqlites_message(api, make_graph):
    graph = make_graph()["id"]
    response = run(api, graph, "SELEC id FROM nodes")
    assert response.status_code == 400
    assert "syntax error" in response.json()["error"]


@pytest.mark.parametrize("statement", [
    "ATTACH DATABASE '/tmp/x.db' AS x",
    "PRAGMA table_info(nodes)",
    "SELECT load_extension('/tmp/x.so')",
    "CREATE TABLE t (a)",
])
def test_what_the_dialect_does_not_allow_is_refused(api, make_graph, statement):
    graph = make_graph()["id"]
    response = run(api, graph, statement)
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert head(graph) == 1


def test_a_change_based_on_a_stale_version_is_a_conflict(api, make_graph, changed, mlp):
    graph = make_graph()["id"]
    saved = api.post(f"/api/graphs/{graph}/versions",
                     {"document": changed(mlp), "base_version": 1}, format="json")
    assert saved.status_code == 201
    response = run(api, graph, WIDER, document=mlp, base_version=1)
    assert response.status_code == 409
    assert response.json()["current_version"]["number"] == 2
    response = run(api, graph, WIDER, version=1)  # run on version 1, saved on top of it
    assert response.status_code == 409
    assert head(graph) == 2
    # A SELECT on an old version is fine.
    old = run(api, graph, "SELECT params_count FROM nodes WHERE id = 'hidden1'", version=1)
    assert old.status_code == 200 and old.json()["rows"] == [[64 * 128 + 128]]


def test_a_script_runs_on_the_editors_unsaved_document(api, make_graph, mlp):
    graph = make_graph()["id"]
    edited = copy.deepcopy(mlp)
    node(edited, "hidden2")["params"]["out_features"] = 48
    response = run(api, graph, WIDER, document=edited, base_version=1)
    assert response.status_code == 200, response.content
    document = api.get(f"/api/graphs/{graph}/versions/2").json()["document"]
    assert node(document, "hidden1")["params"]["out_features"] == 32
    assert node(document, "hidden2")["params"]["out_features"] == 48  # the unsaved edit
    select = run(api, graph, "SELECT json_extract(params, '$.out_features') FROM nodes "
                             "WHERE id = 'hidden2'", document=edited)
    assert select.json()["rows"] == [[48]] and head(graph) == 2


def test_a_change_to_a_document_needs_its_base_version(api, make_graph, mlp):
    graph = make_graph()["id"]
    response = run(api, graph, WIDER, document=mlp)
    assert response.status_code == 400
    assert "base_version" in response.json()["fields"]
    assert head(graph) == 1


def test_another_users_graph_is_not_found(api, other_api, make_graph):
    graph = make_graph()["id"]
    for sql in (LINEARS, WIDER):
        response = run(other_api, graph, sql)
        assert response.status_code == 404
        assert response.json() == {"error": "no such graph"}
    assert run(api, 999_999, LINEARS).status_code == 404
    assert run(api, graph, LINEARS, version=7).status_code == 404
    assert head(graph) == 1


def test_a_share_link_reads_but_never_changes(api, anon, make_graph, changed, mlp, openapi):
    graph = make_graph()["id"]
    pinned = api.post(f"/api/graphs/{graph}/share", {"version": 1}, format="json").json()
    latest = api.post(f"/api/graphs/{graph}/share", {}, format="json").json()
    api.post(f"/api/graphs/{graph}/versions", {"document": changed(mlp, 96), "base_version": 1},
             format="json")
    width = "SELECT json_extract(params, '$.out_features') FROM nodes WHERE id = 'hidden1'"
    response = anon.post(f"/api/shared/{pinned['token']}/sql", {"sql": width}, format="json")
    assert response.status_code == 200 and response.json()["rows"] == [[128]]
    assert_conforms(openapi, "/api/shared/{token}/sql", "post", response)
    response = anon.post(f"/api/shared/{latest['token']}/sql", {"sql": width}, format="json")
    assert response.json()["rows"] == [[96]]
    for client in (anon, api):  # even its owner changes the graph on its own page
        refused = client.post(f"/api/shared/{latest['token']}/sql",
                              {"sql": f"SELECT 1; {WIDER}"}, format="json")
        assert refused.status_code == 403
        assert "this is a shared link, read-only: fork it to change" in refused.json()["error"]
        assert_conforms(openapi, "/api/shared/{token}/sql", "post", refused)
    assert head(graph) == 2
    api.delete(f"/api/graphs/{graph}/share/{latest['id']}")
    gone = anon.post(f"/api/shared/{latest['token']}/sql", {"sql": width}, format="json")
    assert gone.status_code == 404


def test_a_document_without_a_graph_is_changed_and_nothing_is_saved(api, mlp, openapi):
    before = Graph.objects.count()
    response = api.post("/api/sql", {"sql": WIDER, "document": mlp}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert node(body["document"], "hidden1")["params"]["out_features"] == 32
    assert body["change"]["nodes"]["changed"] == ["hidden1"]
    assert Graph.objects.count() == before
    assert_conforms(openapi, "/api/sql", "post", response)


def test_the_dialects_schema_lists_its_tables_and_examples(anon, openapi):
    plain = anon.get("/api/sql/schema")
    assert plain.status_code == 200
    tables = plain.json()["tables"]
    assert {"nodes", "edges", "blocks"} <= set(tables) and "tensors" not in tables
    assert_conforms(openapi, "/api/sql/schema", "get", plain)
    trained = anon.get("/api/sql/schema", {"trained": "1"}).json()
    assert {"tensors", "heads", "eval"} <= set(trained["tables"])
    assert trained["examples"]
    assert anon.get("/api/sql/schema", {"trained": "yes"}).status_code == 400


@pytest.mark.parametrize(("body", "field"), [
    ({}, "sql"),
    ({"sql": 5}, "sql"),
    ({"sql": None}, "sql"),
    ({"sql": ["SELECT 1"]}, "sql"),
    ({"sql": {"q": "SELECT 1"}}, "sql"),
    ({"sql": ""}, "sql"),
    ({"sql": "SELECT 1", "version": "two"}, "version"),
    ({"sql": "SELECT 1", "version": 2**40}, "version"),
    ({"sql": "SELECT 1", "document": []}, "document"),
    ({"sql": "SELECT 1", "document": "{}"}, "document"),
    ({"sql": "SELECT 1", "base_version": -1}, "base_version"),
])
def test_a_body_that_is_not_a_scripts_is_a_400_naming_its_field(api, make_graph, body, field):
    graph = make_graph()["id"]
    response = api.post(f"/api/graphs/{graph}/sql", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert head(graph) == 1


@pytest.mark.parametrize("sql", [
    "SELECT 1" + " " * 200_000,
    "x" * 300_000,
    ";".join(["SELECT 1"] * 5000),
    "SELECT \x00",
    "SELECT zeroblob(2000000000)",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "SELECT randomblob(1000000000)",
    "UPDATE nodes SET params = 'not json'",
    "DELETE FROM nodes",
    "INSERT INTO nodes (id, type) VALUES ('x', 'Linear')",
    "UPDATE nodes SET flops = 1",
])
def test_a_hostile_script_is_a_400_and_changes_nothing(api, make_graph, sql):
    graph = make_graph()["id"]
    response = run(api, graph, sql)
    assert response.status_code == 400, response.content
    assert isinstance(response.json()["error"], str)
    assert head(graph) == 1


def test_a_body_that_is_not_an_object_is_a_400(api, make_graph):
    graph = make_graph()["id"]
    bodies: tuple[Any, ...] = ([], "SELECT 1", 5)
    for body in bodies:
        response = api.post(f"/api/graphs/{graph}/sql", body, format="json")
        assert response.status_code == 400 and "error" in response.json()
    assert api.post("/api/sql", {"sql": "SELECT 1"}, format="json").status_code == 400


# Versions with initial weights: an imported or derived model's.


def weighted_graph(user: Any, frozen: tuple[str, ...] = ()) -> tuple[Graph, dict[str, Any]]:
    """A graph of `user`'s whose first version starts from stored weights (as a derived
    model's): the mlp's seeded ones, `frozen` kept by fine-tuning."""
    mlp = load_starter("mlp")
    state = compile_graph(mlp, seed=5).state_dict()
    graph = services.create_derived_graph(
        owner=user, name="weighted", document=mlp,
        weights=services.NewWeights(state=state, frozen=frozen, lineage={
            "run": None, "graph": None, "version": None, "statements": ["-- made here"],
            "dataset": "digits", "dataset_options": {}, "config": {"seed": 3}}))
    return graph, state


def stored(graph: int, number: int) -> tuple[dict[str, torch.Tensor], list[str], dict[str, Any]]:
    version = GraphVersion.objects.select_related("initial_weights").get(graph_id=graph,
                                                                         number=number)
    row = version.initial_weights
    assert row is not None
    return load(bytes(row.data)), row.frozen, row.lineage


def test_a_version_with_weights_answers_the_weight_tables(api, user):
    graph, state = weighted_graph(user, frozen=("hidden1.weight",))
    response = run(api, graph.id, "SELECT name, frozen FROM tensors ORDER BY name")
    assert response.status_code == 200, response.content
    rows = dict(map(tuple, response.json()["rows"]))
    assert set(rows) == set(state)
    assert rows["hidden1.weight"] == 1 and rows["logits.weight"] == 0
    plain = run(api, graph.id, "SELECT count(*) FROM tensors",
                document=load_starter("char_gpt"))  # an edit the weights do not fit
    assert plain.status_code == 400 and "tensors" in plain.json()["error"]


def test_freezing_tensors_saves_a_version_with_the_weights_and_their_lineage(api, user):
    graph, state = weighted_graph(user, frozen=("hidden1.weight",))
    script = "UPDATE tensors SET frozen = 1 WHERE name LIKE 'hidden2.%'"
    response = run(api, graph.id, script)
    assert response.status_code == 200, response.content
    version = response.json()["version"]
    assert version["number"] == 2 and version["initial_weights"] is True
    weights, frozen, lineage = stored(graph.id, 2)
    assert sorted(frozen) == ["hidden1.weight", "hidden2.bias", "hidden2.weight"]
    assert lineage["statements"] == ["-- made here", script]
    assert lineage["dataset"] == "digits"
    for name, tensor in state.items():
        assert torch.equal(weights[name], tensor), name
    _, frozen, _ = stored(graph.id, 1)
    assert frozen == ["hidden1.weight"]  # version 1 keeps its own


def test_a_grown_layer_keeps_every_weight_that_still_fits(api, user):
    graph, state = weighted_graph(user)
    response = run(api, graph.id, "UPDATE nodes SET params = json_set(params, "
                                  "'$.out_features', 32) WHERE id = 'hidden2'")
    assert response.status_code == 200, response.content
    weights, _, _ = stored(graph.id, 2)
    assert torch.equal(weights["hidden1.weight"], state["hidden1.weight"])
    assert weights["hidden2.weight"].shape == (32, 128)
    assert weights["logits.weight"].shape == (10, 32)


def test_a_node_inserted_between_two_others_comes_back_with_its_edges(api, make_graph,
                                                                       openapi):
    graph = make_graph()["id"]
    response = run(api, graph, "INSERT INTO nodes (id, type, params) VALUES ('drop', "
                               "'Dropout', '{\"p\": 0.1}'); "
                               "UPDATE edges SET to_node = 'drop' WHERE from_node = 'act1'; "
                               "INSERT INTO edges (from_node, to_node) VALUES ('drop', 'hidden2')")
    assert response.status_code == 200, response.content
    change = response.json()["change"]
    assert change["nodes"]["added"] == ["drop"]
    assert {"from": "act1", "to": "drop"} in change["edges"]["added"]
    assert change["edges"]["removed"] == [{"from": "act1", "to": "hidden2"}]
    assert_conforms(openapi, "/api/graphs/{graph_id}/sql", "post", response)
    assert response.json()["version"]["number"] == 2


def test_a_share_link_of_a_model_with_weights_reads_them_and_freezes_nothing(api, anon,
                                                                             user):
    graph, _ = weighted_graph(user)
    token = api.post(f"/api/graphs/{graph.id}/share", {}, format="json").json()["token"]
    read = anon.post(f"/api/shared/{token}/sql",
                     {"sql": "SELECT count(*) FROM tensors WHERE frozen = 0"}, format="json")
    assert read.status_code == 200 and read.json()["rows"] == [[6]]
    refused = anon.post(f"/api/shared/{token}/sql",
                        {"sql": "UPDATE tensors SET frozen = 1"}, format="json")
    assert refused.status_code == 403
    assert "fork it to change" in refused.json()["error"]
    assert head(graph.id) == 1
