"""Small graph documents by hand for the fpga tests (tests/fpga is not a package: it would
hide the fpga library, so the tests import this module by its own name)."""

from __future__ import annotations

import itertools


def node(node_id: str, type_: str, **params: object) -> dict[str, object]:
    return {"id": node_id, "type": type_, "params": params}


def chain(shape: list[int], *layers: dict[str, object]) -> dict[str, object]:
    """Input of `shape`, the layers one after another, an Output."""
    nodes = [{"id": "x", "type": "Input", "params": {"shape": shape}}, *layers,
             {"id": "y", "type": "Output"}]
    ids = [n["id"] for n in nodes]
    return {"format": "shipyard.graph/v1", "nodes": nodes,
            "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]}


def repeat(node_id: str, times: int, *layers: dict[str, object]) -> dict[str, object]:
    """A Repeat of the layers, `times` copies."""
    body = chain([], *layers)
    body["nodes"][0] = {"id": "x", "type": "Input"}  # type: ignore[index]
    del body["format"]
    return {"id": node_id, "type": "Repeat", "params": {"times": times}, "graph": body}
