"""Your own blocks through the API: My blocks, the node to insert, and the checks on save."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openapi_check import assert_conforms

from compute.engine import FORMAT


def block_document(width: int = 12, name: str = "Mlp") -> dict[str, Any]:
    """A graph usable as a block: Inputs a, b [8] → Add → Linear → Output hidden."""
    return {"format": FORMAT, "name": name, "nodes": [
        {"id": "a", "type": "Input", "params": {"shape": [8]}},
        {"id": "b", "type": "Input", "params": {"shape": [8]}},
        {"id": "s", "type": "Add"},
        {"id": "lin", "type": "Linear", "params": {"out_features": width}},
        {"id": "hidden", "type": "Output"}],
        "edges": [{"from": "a", "to": "s.a"}, {"from": "b", "to": "s.b"},
                  {"from": "s", "to": "lin"}, {"from": "lin", "to": "hidden"}]}


def using(node: dict[str, Any], node_id: str = "ffn") -> dict[str, Any]:
    """A model that feeds x into both ports of the block and returns its output."""
    return {"format": FORMAT, "name": "Uses it", "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [8]}},
        {**node, "id": node_id},
        {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": f"{node_id}.a"}, {"from": "x", "to": f"{node_id}.b"},
                  {"from": f"{node_id}.hidden", "to": "y"}]}


def insertable(api: Any, source: str, version: int | None = None) -> dict[str, Any]:
    query = {"source": source} | ({"version": version} if version else {})
    response = api.get("/api/blocks/custom", query)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def save(api: Any, graph: dict[str, Any], document: dict[str, Any]) -> Any:
    return api.post(f"/api/graphs/{graph['id']}/versions",
                    {"document": document, "base_version": graph["head"]}, format="json")


def problems(response: Any) -> list[tuple[str, str, str]]:
    return [(p["node"], p["field"], p["message"]) for p in response.json()["problems"]]


def test_my_blocks_lists_my_graphs_with_their_ports(api, other_api, make_graph) -> None:
    graph = make_graph(block_document())
    make_graph()  # the mlp starter: one Input, one Output, usable too
    other_api.post("/api/graphs", {"document": block_document(name="Bob's")}, format="json")
    listed = api.get("/api/blocks/mine").json()
    mine = next(b for b in listed if b["graph_id"] == graph["id"])
    assert len(listed) == 2
    assert mine["source"] == str(graph["id"]) and mine["version"] == 1
    assert mine["usable"] and mine["problem"] is None
    assert mine["inputs"] == [{"id": "a", "shape": ["B", 8], "dtype": "float32"},
                              {"id": "b", "shape": ["B", 8], "dtype": "float32"}]
    assert mine["outputs"] == [{"id": "hidden", "shape": ["B", 12], "dtype": "float32"}]


def test_the_node_to_insert_holds_a_copy_that_saves_and_runs(api, make_graph) -> None:
    graph = make_graph(block_document())
    found = insertable(api, str(graph["id"]))
    node = found["node"]
    assert node["params"] == {"source": str(graph["id"]), "version": 1, "name": "Mlp"}
    assert node["graph"]["nodes"] == block_document()["nodes"]
    assert found["latest"] == 1
    report = api.post("/api/inspect", using(node), format="json").json()
    assert report["valid"], report["problems"]
    assert report["nodes"]["ffn"]["outputs"]["hidden"]["shape"] == ["B", 12]
    response = api.post("/api/graphs", {"document": using(node)}, format="json")
    assert response.status_code == 201, response.content


def test_a_graph_i_cannot_read_is_refused_on_save(api, other_api, make_graph) -> None:
    theirs = other_api.post("/api/graphs", {"document": block_document()},
                            format="json").json()
    node = insertable(other_api, str(theirs["id"]))["node"]
    assert api.get("/api/blocks/custom", {"source": str(theirs["id"])}).status_code == 404
    response = api.post("/api/graphs", {"document": using(node)}, format="json")
    assert response.status_code == 400
    (found,) = problems(response)
    assert found[:2] == ("ffn", "source")
    assert f"you cannot read graph {theirs['id']}" in found[2]


def test_a_version_that_does_not_exist_is_refused(api, make_graph) -> None:
    graph = make_graph(block_document())
    node = insertable(api, str(graph["id"]))["node"]
    node["params"]["version"] = 5
    response = api.post("/api/graphs", {"document": using(node)}, format="json")
    assert response.status_code == 400
    assert problems(response) == [("ffn", "version", "'Mlp' (graph " + str(graph["id"])
                                   + ") has no version 5 you can use: update it to version 1")]


def test_a_copy_that_differs_from_its_version_is_refused(api, make_graph) -> None:
    graph = make_graph(block_document())
    node = insertable(api, str(graph["id"]))["node"]
    node["graph"]["nodes"][3]["params"]["out_features"] = 13
    response = api.post("/api/graphs", {"document": using(node)}, format="json")
    assert response.status_code == 400
    ((where, field, message),) = problems(response)
    assert (where, field) == ("ffn", "graph") and "update it" in message


def test_a_block_inside_a_repeat_is_checked_too(api, make_graph) -> None:
    graph = make_graph(block_document())
    node = insertable(api, str(graph["id"]))["node"]
    node["graph"]["nodes"][3]["params"]["out_features"] = 13
    body = {"nodes": [{"id": "h", "type": "Input"}, {**node, "id": "ffn"},
                      {"id": "o", "type": "Output"}],
            "edges": [{"from": "h", "to": "ffn.a"}, {"from": "h", "to": "ffn.b"},
                      {"from": "ffn", "to": "o"}]}
    node["graph"]["nodes"][3]["params"]["out_features"] = 8  # so that copies chain
    document = {"format": FORMAT, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [8]}},
        {"id": "blocks", "type": "Repeat", "params": {"times": 2}, "graph": body},
        {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": "blocks"}, {"from": "blocks", "to": "y"}]}
    response = api.post("/api/graphs", {"document": document}, format="json")
    assert response.status_code == 400
    assert [p[:2] for p in problems(response)] == [("blocks/ffn", "graph")]


def test_a_block_that_uses_the_graph_being_saved_is_refused(api, make_graph) -> None:
    graph = make_graph(block_document())
    node = insertable(api, str(graph["id"]))["node"]
    response = save(api, graph, using(node))  # the graph as a block of itself
    assert response.status_code == 400
    ((where, field, message),) = problems(response)
    assert (where, field) == ("ffn", "source")
    assert message.startswith(f"ffn uses 'Mlp' (graph {graph['id']}), the graph you are "
                              "saving")


def test_a_cycle_through_another_block_is_refused_with_its_chain(api, make_graph) -> None:
    model = make_graph(block_document(name="Model"))
    wrapper = make_graph(using(insertable(api, str(model["id"]))["node"], "inner")
                         | {"name": "Wrapper"})
    # The wrapper takes x and gives y: a block with ports x → y. Use it in Model itself.
    wrapped = insertable(api, str(wrapper["id"]))["node"]
    document = block_document(name="Model")
    document["nodes"].insert(4, {**wrapped, "id": "w"})
    document["nodes"].append({"id": "extra", "type": "Output"})
    document["edges"].append({"from": "lin", "to": "w.x"})
    document["edges"].append({"from": "w.y", "to": "extra"})
    document["nodes"][3]["params"]["out_features"] = 8
    response = save(api, model, document)
    assert response.status_code == 400
    ((where, _, message),) = problems(response)
    assert where == "w"
    assert message.startswith(
        f"w uses 'Wrapper' (graph {wrapper['id']}) which uses 'Model' (graph {model['id']}), "
        "the graph you are saving")


def test_a_shared_graph_is_a_block_for_whoever_has_the_link(api, other_api, make_graph) -> None:
    graph = make_graph(block_document())
    assert save(api, graph, block_document(width=16)).status_code == 201
    token = api.post(f"/api/graphs/{graph['id']}/share", {"version": 1},
                     format="json").json()["token"]
    found = insertable(other_api, f"share:{token}")
    assert found["version"] == found["latest"] == 1  # pinned: only that version
    assert other_api.get("/api/blocks/custom", {"source": f"share:{token}",
                                                "version": 2}).status_code == 404
    response = other_api.post("/api/graphs", {"document": using(found["node"])},
                              format="json")
    assert response.status_code == 201, response.content
    # The link shows version 1 only: version 2 through it is refused.
    newer = found["node"] | {"params": found["node"]["params"] | {"version": 2}}
    response = other_api.post("/api/graphs", {"document": using(newer)}, format="json")
    assert response.status_code == 400
    assert problems(response)[0][1] == "version"


def test_a_fork_keeps_the_blocks_its_author_could_use(api, other_api, make_graph) -> None:
    graph = make_graph(block_document())
    node = insertable(api, str(graph["id"]))["node"]
    using_it = api.post("/api/graphs", {"document": using(node)}, format="json").json()
    token = api.post(f"/api/graphs/{using_it['id']}/share", {}, format="json").json()["token"]
    assert other_api.post(f"/api/shared/{token}/fork").status_code == 201


@pytest.mark.parametrize("source", ["../1", "share:", "share:" + "a" * 80, "1 OR 1=1",
                                    "99999999999999999999", "-1"])
def test_hostile_sources_are_answered_never_with_a_500(api, source: str) -> None:
    response = api.get("/api/blocks/custom", {"source": source})
    assert response.status_code in (400, 404)


@pytest.mark.parametrize("params", [
    {"source": "999999999", "version": 1},
    {"source": "share:nosuchtoken", "version": 1},
    {"source": "12", "version": 2**40},
])
def test_hostile_nodes_in_a_saved_document_are_400s(api, params: dict[str, Any]) -> None:
    node = {"type": "Custom", "params": {**params, "name": "x"},
            "graph": copy.deepcopy({k: block_document()[k] for k in ("nodes", "edges")})}
    response = api.post("/api/graphs", {"document": using(node)}, format="json")
    assert response.status_code == 400
    assert problems(response)[0][0] == "ffn"


def test_the_block_endpoints_answer_what_the_schema_says(api, anon, openapi, make_graph) -> None:
    graph = make_graph(block_document())
    assert_conforms(openapi, "/api/blocks/mine", "get", api.get("/api/blocks/mine"))
    assert_conforms(openapi, "/api/blocks/custom", "get",
                    api.get("/api/blocks/custom", {"source": str(graph["id"])}))
    assert anon.get("/api/blocks/mine").status_code in (401, 403)
    assert anon.get("/api/blocks/custom", {"source": str(graph["id"])}).status_code in (401, 403)
