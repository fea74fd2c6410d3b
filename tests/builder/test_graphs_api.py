"""Graphs through the REST API: create, list, open, rename, save versions, restore, delete."""

from __future__ import annotations

import copy
import json
from typing import Any

from rest_framework.test import APIClient

from builder.graphs.models import Graph, GraphVersion
from compute.engine import load_starter


def save(api: APIClient, graph_id: int, document: dict[str, Any], base: int,
         message: str = "") -> Any:
    return api.post(f"/api/graphs/{graph_id}/versions",
                    {"document": document, "base_version": base, "message": message},
                    format="json")


def test_create_from_a_document_stores_version_one(api, user, mlp):
    response = api.post("/api/graphs", {"document": mlp, "message": "first"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == mlp["name"]
    assert body["head"] == 1
    assert body["forked_from"] is None
    assert body["version"]["number"] == 1
    assert body["version"]["author"] == "ada"
    assert body["version"]["message"] == "first"
    assert body["version"]["document"] == mlp
    assert Graph.objects.get(id=body["id"]).owner == user


def test_create_takes_a_name_over_the_documents_own(api, mlp):
    response = api.post("/api/graphs", {"document": mlp, "name": "My net"}, format="json")
    assert response.json()["name"] == "My net"


def test_create_from_a_starter(api):
    response = api.post("/api/graphs", {"starter": "char_gpt"}, format="json")
    assert response.status_code == 201
    assert response.json()["version"]["document"] == load_starter("char_gpt")


def test_create_from_an_unknown_starter_is_refused(api):
    response = api.post("/api/graphs", {"starter": "nope"}, format="json")
    assert response.status_code == 400
    assert "char_gpt" in response.json()["error"]


def test_create_needs_exactly_one_of_document_and_starter(api, mlp):
    assert api.post("/api/graphs", {}, format="json").status_code == 400
    both = api.post("/api/graphs", {"document": mlp, "starter": "mlp"}, format="json")
    assert both.status_code == 400
    assert "error" in both.json()


def test_the_stored_document_is_exactly_the_one_sent(api):
    # Key order, unusual spacing in strings, and optional members all survive.
    text = ('{"document": {"nodes": [{"type": "Input", "id": "x", "params": {"shape": [4]}},'
            ' {"id": "y", "type": "Output"}], "format": "shipyard.graph/v1",'
            ' "edges": [{"to": "y", "from": "x"}], "meta": {"zoom": 1.5, "note": "é  ü"},'
            ' "layout": {"x": [0, 0], "y": [200, 0]}}}')
    response = api.post("/api/graphs", text, content_type="application/json")
    assert response.status_code == 201, response.content
    version = GraphVersion.objects.get(graph_id=response.json()["id"])
    assert list(json.loads(version.document_json)) == ["nodes", "format", "edges", "meta",
                                                        "layout"]
    assert version.document == json.loads(text)["document"]


def test_list_shows_only_my_graphs_newest_first(api, other_api, make_graph):
    first = make_graph(name="first")
    second = make_graph(name="second")
    other_api.post("/api/graphs", {"starter": "mlp"}, format="json")
    response = api.get("/api/graphs")
    assert response.status_code == 200
    assert [g["id"] for g in response.json()] == [second["id"], first["id"]]


def test_open_returns_the_latest_version_with_its_document(changed, api, make_graph, mlp):
    graph = make_graph()
    save(api, graph["id"], changed(mlp), base=1)
    body = api.get(f"/api/graphs/{graph['id']}").json()
    assert body["head"] == 2
    assert body["version"]["number"] == 2
    assert body["version"]["document"] == changed(mlp)


def test_rename_changes_the_title_and_makes_no_version(api, make_graph):
    graph = make_graph()
    response = api.patch(f"/api/graphs/{graph['id']}", {"name": "Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["head"] == 1
    assert api.get("/api/graphs").json()[0]["name"] == "Renamed"
    assert len(api.get(f"/api/graphs/{graph['id']}/versions").json()) == 1


def test_rename_refuses_an_empty_name(api, make_graph):
    graph = make_graph()
    response = api.patch(f"/api/graphs/{graph['id']}", {"name": ""}, format="json")
    assert response.status_code == 400


def test_delete_removes_the_graph_and_its_versions(api, make_graph):
    graph = make_graph()
    assert api.delete(f"/api/graphs/{graph['id']}").status_code == 204
    assert api.get(f"/api/graphs/{graph['id']}").status_code == 404
    assert not GraphVersion.objects.filter(graph_id=graph["id"]).exists()


def test_each_save_is_a_new_version_with_author_time_and_message(changed, api, make_graph, mlp):
    graph = make_graph()
    response = save(api, graph["id"], changed(mlp), base=1, message="wider")
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert body["version"]["number"] == 2
    assert body["version"]["author"] == "ada"
    assert body["version"]["message"] == "wider"
    assert body["version"]["created_at"]
    versions = api.get(f"/api/graphs/{graph['id']}/versions").json()
    assert [v["number"] for v in versions] == [2, 1]
    assert "document" not in versions[0]


def test_saving_an_identical_graph_makes_no_new_version(api, make_graph, mlp):
    graph = make_graph()
    response = save(api, graph["id"], copy.deepcopy(mlp), base=1)
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert response.json()["version"]["number"] == 1
    assert GraphVersion.objects.filter(graph_id=graph["id"]).count() == 1


def test_identical_means_same_content_whatever_the_key_order(api, make_graph, mlp):
    graph = make_graph()
    reordered = dict(reversed(list(copy.deepcopy(mlp).items())))
    assert save(api, graph["id"], reordered, base=1).json()["created"] is False


def test_a_stale_save_gets_409_with_the_current_version(changed, api, make_graph, mlp):
    graph = make_graph()
    assert save(api, graph["id"], changed(mlp, 96), base=1).status_code == 201
    stale = save(api, graph["id"], changed(mlp, 80), base=1)
    assert stale.status_code == 409
    body = stale.json()
    assert "error" in body
    assert body["current_version"]["number"] == 2
    # Nothing was overwritten.
    latest = api.get(f"/api/graphs/{graph['id']}").json()["version"]
    assert latest["document"] == changed(mlp, 96)


def test_a_save_based_on_a_future_version_is_a_conflict_too(changed, api, make_graph, mlp):
    graph = make_graph()
    assert save(api, graph["id"], changed(mlp), base=7).status_code == 409


def test_open_any_version(changed, api, make_graph, mlp):
    graph = make_graph()
    save(api, graph["id"], changed(mlp), base=1)
    first = api.get(f"/api/graphs/{graph['id']}/versions/1")
    assert first.status_code == 200
    assert first.json()["document"] == mlp
    assert api.get(f"/api/graphs/{graph['id']}/versions/3").status_code == 404


def test_restore_makes_a_new_version_and_keeps_history(changed, api, make_graph, mlp):
    graph = make_graph()
    save(api, graph["id"], changed(mlp), base=1)
    response = api.post(f"/api/graphs/{graph['id']}/versions/1/restore", {}, format="json")
    assert response.status_code == 201, response.content
    version = response.json()["version"]
    assert version["number"] == 3
    assert version["restored_from"] == 1
    assert api.get(f"/api/graphs/{graph['id']}").json()["version"]["document"] == mlp
    assert api.get(f"/api/graphs/{graph['id']}/versions/2").json()["document"] == changed(mlp)
    assert [v["number"] for v in api.get(f"/api/graphs/{graph['id']}/versions").json()] == [
        3, 2, 1]


def test_restoring_the_latest_version_makes_no_new_version(api, make_graph):
    graph = make_graph()
    response = api.post(f"/api/graphs/{graph['id']}/versions/1/restore", {}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] is False


def test_restore_with_a_stale_base_gets_409(changed, api, make_graph, mlp):
    graph = make_graph()
    save(api, graph["id"], changed(mlp), base=1)
    response = api.post(f"/api/graphs/{graph['id']}/versions/1/restore", {"base_version": 1},
                        format="json")
    assert response.status_code == 409
    assert response.json()["current_version"]["number"] == 2


def test_restore_of_a_missing_version_is_404(api, make_graph):
    graph = make_graph()
    response = api.post(f"/api/graphs/{graph['id']}/versions/9/restore", {}, format="json")
    assert response.status_code == 404


def test_an_invalid_graph_is_refused_with_the_engines_problems_by_node(api, mlp):
    bad = copy.deepcopy(mlp)
    bad["nodes"][1]["params"] = {"out_features": -3}
    response = api.post("/api/graphs", {"document": bad}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]
    assert any(p["node"] == bad["nodes"][1]["id"] for p in body["problems"])
    assert all({"node", "field", "message"} <= set(p) for p in body["problems"])
    assert not Graph.objects.exists()


def test_an_unknown_block_type_is_refused_by_node(api, mlp):
    bad = copy.deepcopy(mlp)
    bad["nodes"][1]["type"] = "Teleporter"
    response = api.post("/api/graphs", {"document": bad}, format="json")
    assert response.status_code == 400
    problem = next(p for p in response.json()["problems"] if p["node"] == bad["nodes"][1]["id"])
    assert "Teleporter" in problem["message"]


def test_an_invalid_save_makes_no_version(api, make_graph, mlp):
    graph = make_graph()
    bad = copy.deepcopy(mlp)
    bad["format"] = "shipyard.graph/v0"
    response = save(api, graph["id"], bad, base=1)
    assert response.status_code == 400
    assert response.json()["problems"]
    assert GraphVersion.objects.filter(graph_id=graph["id"]).count() == 1


def test_malformed_json_is_400(api):
    response = api.post("/api/graphs", '{"document": {', content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_wrong_types_are_400_with_the_fields_at_fault(api, make_graph, mlp):
    assert api.post("/api/graphs", {"document": [1, 2]}, format="json").status_code == 400
    assert api.post("/api/graphs", {"document": "text"}, format="json").status_code == 400
    assert api.post("/api/graphs", [mlp], format="json").status_code == 400
    graph = make_graph()
    response = save(api, graph["id"], mlp, base="latest")  # type: ignore[arg-type]
    assert response.status_code == 400
    assert "base_version" in json.dumps(response.json())


def test_a_body_that_is_not_json_is_refused(api):
    response = api.post("/api/graphs", "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json() == {
        "error": 'Unsupported media type "application/x-www-form-urlencoded" in request.'}


def test_a_huge_body_is_413_before_parsing(api, settings):
    body = b'{"document": {"format": "shipyard.graph/v1", "name": "' + b"x" * (
        settings.SHIPYARD_MAX_REQUEST_BYTES + 10) + b'"}}'
    response = api.post("/api/graphs", body, content_type="application/json")
    assert response.status_code == 413
    assert "error" in response.json()


def test_a_document_over_the_graph_byte_limit_is_413(api, mlp, settings):
    settings.SHIPYARD_MAX_GRAPH_BYTES = 2048
    big = copy.deepcopy(mlp)
    big["description"] = "y" * 4000
    response = api.post("/api/graphs", {"document": big}, format="json")
    assert response.status_code == 413
    assert "SHIPYARD_MAX_GRAPH_BYTES" in response.json()["error"]


def test_a_graph_over_the_node_limit_is_refused_before_it_is_built(api, mlp, monkeypatch):
    monkeypatch.setenv("SHIPYARD_MAX_NODES", "5")  # the engine's limit; mlp has 7 nodes
    response = api.post("/api/graphs", {"document": mlp}, format="json")
    assert response.status_code == 400
    assert "SHIPYARD_MAX_NODES" in json.dumps(response.json()["problems"])
    assert not Graph.objects.exists()


def test_djangos_own_body_limit_is_a_json_413_too(api, settings):
    # Belt and braces: should a body get past the size middleware, Django's
    # DATA_UPLOAD_MAX_MEMORY_SIZE still answers 413 in the API's format.
    settings.SHIPYARD_MAX_REQUEST_BYTES = 10 * 1024 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = b'{"document": {"format": "shipyard.graph/v1", "name": "' + b"x" * 4096 + b'"}}'
    response = api.post("/api/graphs", body, content_type="application/json")
    assert response.status_code == 413
    assert "error" in response.json()
