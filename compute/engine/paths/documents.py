"""A small builder for the graph documents of a path's solutions.

A path grows one canvas step by step: each step's solution is the previous one plus a few
nodes and edges, so a path file keeps one `Canvas` and takes a `snapshot()` after each step.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from ..graph import FORMAT

COLUMN = 220  # the editor's spacing between blocks in a row, as in the starters


class Sketch:
    """A graph document being drawn: nodes, edges and positions, in the order added."""

    def __init__(self, name: str | None = None, description: str | None = None) -> None:
        self.name = name
        self.description = description
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, str]] = []
        self.layout: dict[str, list[float]] = {}

    def add(self, node_id: str, node_type: str, at: tuple[float, float], *,
            graph: Sketch | None = None, **params: Any) -> Sketch:
        node: dict[str, Any] = {"id": node_id, "type": node_type}
        if params:
            node["params"] = params
        if graph is not None:
            node["graph"] = graph.body()
        self.nodes.append(node)
        self.layout[node_id] = [at[0] * COLUMN, at[1] * COLUMN / 2]
        return self

    def wire(self, src: str, dst: str) -> Sketch:
        self.edges.append({"from": src, "to": dst})
        return self

    def chain(self, *ids: str) -> Sketch:
        for src, dst in itertools.pairwise(ids):
            self.wire(src, dst)
        return self

    def unwire(self, dst: str) -> Sketch:
        """Take away what feeds `dst` (an id, or `id.port`)."""
        self.edges = [e for e in self.edges if e["to"] != dst]
        return self

    def remove(self, *ids: str) -> Sketch:
        gone = set(ids)
        self.nodes = [n for n in self.nodes if n["id"] not in gone]
        self.edges = [e for e in self.edges if e["from"].split(".")[0] not in gone
                      and e["to"].split(".")[0] not in gone]
        for node_id in ids:
            self.layout.pop(node_id, None)
        return self

    def set(self, node_id: str, **params: Any) -> Sketch:
        """Change parameters of a node already drawn."""
        for node in self.nodes:
            if node["id"] == node_id:
                node["params"] = {**node.get("params", {}), **params}
        return self

    def move(self, node_id: str, at: tuple[float, float]) -> Sketch:
        self.layout[node_id] = [at[0] * COLUMN, at[1] * COLUMN / 2]
        return self

    def body(self) -> dict[str, Any]:
        return copy.deepcopy({"nodes": self.nodes, "edges": self.edges, "layout": self.layout})

    def snapshot(self) -> dict[str, Any]:
        """The full document as it stands now (a copy: later steps do not change it)."""
        document: dict[str, Any] = {"format": FORMAT}
        if self.name is not None:
            document["name"] = self.name
        if self.description is not None:
            document["description"] = self.description
        document.update(self.body())
        return document
