"""Small graph documents for the engine's tests, written the way a user writes them."""

from __future__ import annotations

import itertools
from typing import Any

from compute.engine import FORMAT

Node = dict[str, Any]


def document(nodes: list[Node], edges: list[tuple[str, str]], **members: Any) -> dict[str, Any]:
    """A top-level graph; edges as ("from", "to") pairs."""
    return {"format": FORMAT, "nodes": nodes,
            "edges": [{"from": a, "to": b} for a, b in edges], **members}


def nested(nodes: list[Node], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}


def node(node_id: str, type_: str, **params: Any) -> Node:
    entry: Node = {"id": node_id, "type": type_}
    if params:
        entry["params"] = params
    return entry


def input_node(node_id: str = "x", shape: list[int] | None = None,
               dtype: str = "float32") -> Node:
    params: dict[str, Any] = {"dtype": dtype}
    if shape is not None:
        params["shape"] = shape
    return {"id": node_id, "type": "Input", "params": params}


def chain(shape: list[int], *layers: Node, dtype: str = "float32") -> dict[str, Any]:
    """Input `x` → layers in order → Output `y`."""
    nodes = [input_node("x", shape, dtype), *layers, node("y", "Output")]
    ids = [n["id"] for n in nodes]
    return document(nodes, list(itertools.pairwise(ids)))


def repeat(node_id: str, times: int, *layers: Node) -> Node:
    """A Repeat whose body is Input `x` → layers → Output `y`."""
    nodes = [input_node("x"), *layers, node("y", "Output")]
    nodes[0] = {"id": "x", "type": "Input"}
    ids = [n["id"] for n in nodes]
    return {"id": node_id, "type": "Repeat", "params": {"times": times},
            "graph": nested(nodes, list(itertools.pairwise(ids)))}


def problems_of(report: dict[str, Any]) -> list[tuple[str | None, str | None, str]]:
    return [(p["node"], p["field"], p["message"]) for p in report["problems"]]
