"""Your own blocks: saved graphs used as `Custom` nodes in other graphs.

A Custom node carries a pinned copy of one saved version (its nested `graph`), so the engine
never reads the database. This module is what the database adds: which graphs a user may use
as blocks (their own, and those shared with them through a link whose token they have), the
node to insert for one of them, and the check made on every save that each Custom node of
the document names a version its saver can read, holds exactly that version's nodes and
edges, and does not, through the blocks it uses, contain the graph being saved.

Custom nodes are looked for at any depth of Repeats, but not inside another Custom node's
copy: a copy that equals a stored version holds what was checked when that version was
saved (by whoever saved it). The cycle check does follow them, through the stored versions.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from compute.engine import Problem, inspect_graph

from .models import Graph, GraphVersion, ShareLink, hash_token

SHARE_PREFIX = "share:"
# Stored versions read by one cycle check, at most: blocks rarely nest more than a few
# deep, and a hostile chain must not make a save read the whole database.
MAX_VERSIONS_WALKED = 200
MAX_NAME = 100  # Custom's `name` parameter


@dataclass(frozen=True)
class Source:
    """A readable block: the graph, the versions the reader may use, and how the node
    names it (`source`)."""

    graph: Graph
    source: str
    pinned: int | None = None  # a share link pinned to one version: only that one

    def allows(self, number: int) -> bool:
        return self.pinned is None or self.pinned == number


def readable_source(user: AbstractBaseUser, source: Any) -> Source | None:
    """The graph a Custom node's `source` names, if `user` may use it: their own graph by
    id, or any graph through a live share link. None otherwise, whatever the reason (no
    such graph, another user's, a revoked link): the caller cannot tell them apart."""
    if not isinstance(source, str):
        return None
    if source.startswith(SHARE_PREFIX):
        token = source[len(SHARE_PREFIX):]
        link = (ShareLink.objects.select_related("graph", "version")
                .filter(token_hash=hash_token(token), revoked_at__isnull=True).first())
        if link is None:
            return None
        return Source(link.graph, source, link.version.number if link.version else None)
    graph_id = _graph_id(source)
    if graph_id is None or not getattr(user, "is_authenticated", False):
        return None
    graph = Graph.objects.filter(id=graph_id, owner=user).first()
    return Source(graph, source) if graph is not None else None


def _graph_id(source: str) -> int | None:
    """A graph's id from its text; None for anything that is not one (ids fit 32 bits)."""
    if not source.isdigit() or not source.isascii() or len(source) > 9:
        return None
    return int(source)


def _graph_of_source(source: Any) -> int | None:
    """The graph a source names, for the cycle check, whoever owns it."""
    if not isinstance(source, str):
        return None
    if source.startswith(SHARE_PREFIX):
        found = (ShareLink.objects.filter(token_hash=hash_token(source[len(SHARE_PREFIX):]))
                 .values_list("graph_id", flat=True).first())
        return found
    return _graph_id(source)


def custom_nodes(document: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, node) of every Custom node of a document, inside Repeats too, not inside
    other Custom nodes. Paths are written like the engine's problems (`blocks/ffn`)."""
    nodes = document.get("nodes") if isinstance(document, dict) else None
    for raw in nodes if isinstance(nodes, list) else []:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            continue
        here = f"{path}{raw['id']}"
        if raw.get("type") == "Custom":
            yield here, raw
        elif isinstance(raw.get("graph"), dict):
            yield from custom_nodes(raw["graph"], here + "/")


def _all_custom_nodes(document: Any) -> Iterator[dict[str, Any]]:
    """Every Custom node of a document, copies included (for the cycle walk)."""
    stack = [document]
    while stack:
        current = stack.pop()
        nodes = current.get("nodes") if isinstance(current, dict) else None
        for raw in nodes if isinstance(nodes, list) else []:
            if not isinstance(raw, dict):
                continue
            if raw.get("type") == "Custom":
                yield raw
            if isinstance(raw.get("graph"), dict):
                stack.append(raw["graph"])


def _params(node: dict[str, Any]) -> dict[str, Any]:
    params = node.get("params")
    return params if isinstance(params, dict) else {}


def _label(node: dict[str, Any]) -> str:
    params = _params(node)
    name = params.get("name")
    shown = repr(name) if isinstance(name, str) and name else "a block"
    return f"{shown} (graph {params.get('source')})"


def _signature(node: dict[str, Any]) -> tuple[Any, ...]:
    params, copy = _params(node), node.get("graph")
    copy = copy if isinstance(copy, dict) else {}
    return (params.get("source"), params.get("version"), _canonical(copy.get("nodes")),
            _canonical(copy.get("edges")))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def block_problems(document: dict[str, Any], *, user: AbstractBaseUser,
                   graph_id: int | None, accepted: tuple[dict[str, Any], ...] = ()
                   ) -> list[Problem]:
    """What is wrong with the Custom nodes of a document `user` saves as (a version of) the
    graph `graph_id` (None: a new graph). The document is valid for the engine already.

    Nodes equal to one in an `accepted` document (the version this save replaces, the one a
    fork copies) were checked when that was saved, and are not checked for access again:
    a fork of a shared graph keeps the blocks its author could use.
    """
    trusted = {_signature(node) for doc in accepted for _, node in custom_nodes(doc)}
    problems: list[Problem] = []
    for path, node in custom_nodes(document):
        params = _params(node)
        if _signature(node) not in trusted:
            found = _access_problem(user, node, params)
            if found is not None:
                problems.append(Problem(found[0], path, found[1]))
                continue
        if graph_id is not None:
            chain = _cycle(node, graph_id, path)
            if chain is not None:
                problems.append(Problem(chain, path, "source"))
    return problems


def _access_problem(user: AbstractBaseUser, node: dict[str, Any],
                    params: dict[str, Any]) -> tuple[str, str] | None:
    """What keeps `user` from using this node, and the field at fault; None if nothing."""
    source = readable_source(user, params.get("source"))
    label = _label(node)
    if source is None:
        return (f"you cannot read graph {params.get('source')!s}: it is not one of yours, nor "
                "a live share link; remove this block, or use one from My blocks"), "source"
    number = params.get("version")
    version = (GraphVersion.objects.filter(graph=source.graph, number=number).first()
               if isinstance(number, int) and not isinstance(number, bool)
               and 1 <= number < 2**31 else None)
    if version is None or not source.allows(number):  # type: ignore[arg-type]
        latest = source.pinned or source.graph.head
        return (f"{label} has no version {number} you can use: update it to version "
                f"{latest}"), "version"
    copy = node.get("graph") if isinstance(node.get("graph"), dict) else {}
    stored = version.document
    if (_canonical(copy.get("nodes")) != _canonical(stored.get("nodes"))  # type: ignore[union-attr]
            or _canonical(copy.get("edges")) != _canonical(stored.get("edges"))):  # type: ignore[union-attr]
        return (f"the graph inside this block differs from version {number} of {label}: a "
                "block holds a copy of the version it is pinned to; update it (insert it "
                "again from My blocks) instead of editing the copy"), "graph"
    return None


def _cycle(node: dict[str, Any], graph_id: int, path: str) -> str | None:
    """The chain by which `node` contains the graph `graph_id`, in words; None if it does
    not. Walks the stored versions its sources name, breadth first, each version once."""
    start = (node, [_label(node)])
    queue = [start]
    seen: set[tuple[int, Any]] = set()
    walked = 0
    while queue:
        current, chain = queue.pop(0)
        params = _params(current)
        target = _graph_of_source(params.get("source"))
        if target is None:
            continue
        if target == graph_id:
            return (f"{path} uses {' which uses '.join(chain)}, the graph you are saving: a "
                    "block cannot contain the graph it is used in, directly or not; remove it")
        key = (target, params.get("version"))
        if key in seen:
            continue
        seen.add(key)
        walked += 1
        if walked > MAX_VERSIONS_WALKED:
            return (f"the blocks this one uses nest more than {MAX_VERSIONS_WALKED} versions "
                    "deep; use a block that uses fewer")
        number = params.get("version")
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number < 2**31:
            continue
        version = GraphVersion.objects.filter(graph_id=target, number=number).first()
        if version is None:
            continue
        queue += [(inner, [*chain, _label(inner)])
                  for inner in _all_custom_nodes(version.document)]
    return None


# What My blocks shows.


# Versions never change, so what their reports say of their ports is kept, by version id
# (the most recent few hundred, a few KiB each; never the documents themselves).
_PORTS: OrderedDict[int, dict[str, Any]] = OrderedDict()
_PORTS_KEPT = 512


def ports_of(version: GraphVersion) -> dict[str, Any]:
    """A stored version's ports as a block, whether it can be one, and its parameters."""
    found = _PORTS.get(version.id)
    if found is None:
        found = _PORTS[version.id] = _ports(version.document)
        if len(_PORTS) > _PORTS_KEPT:
            _PORTS.popitem(last=False)
    else:
        _PORTS.move_to_end(version.id)
    return found


def _ports(document: dict[str, Any]) -> dict[str, Any]:
    report = inspect_graph(document, flops=False)
    nodes = report["nodes"]
    listed = [n for n in document.get("nodes", []) if isinstance(n, dict)]

    def port(node_id: str, side: str, key: str) -> dict[str, Any]:
        spec = nodes.get(node_id, {}).get(side, {}).get(key)
        return {"id": node_id, "shape": spec["shape"] if spec else None,
                "dtype": spec["dtype"] if spec else None}

    inputs = [port(n["id"], "outputs", "out") for n in listed if n.get("type") == "Input"]
    outputs = [port(n["id"], "inputs", "in") for n in listed if n.get("type") == "Output"]
    problem = None
    if not report["valid"]:
        problem = "the graph is not valid: open it and fix its problems"
    elif not inputs or not outputs:
        problem = "a block needs at least one Input and one Output"
    return {"inputs": inputs, "outputs": outputs, "usable": problem is None,
            "problem": problem, "params": report["totals"]["params"]
            if report["totals"] else 0}


def block_title(graph: Graph) -> str:
    """The name shown on the node: the graph's title, printable and cut to fit."""
    name = "".join(ch for ch in graph.name if ch.isprintable()).strip()
    return name[:MAX_NAME]


def my_blocks(user: AbstractBaseUser) -> list[dict[str, Any]]:
    """`user`'s graphs as blocks, latest version each, newest first."""
    found = []
    for graph in Graph.objects.filter(owner=user).order_by("-updated_at", "-id"):
        version = graph.versions.filter(number=graph.head).first()
        if version is None:
            continue
        found.append({"source": str(graph.id), "graph_id": graph.id, "name": graph.name,
                      "version": version.number,
                      "versions": list(graph.versions.order_by("number")
                                       .values_list("number", flat=True)),
                      **ports_of(version)})
    return found


class NotReadable(Exception):
    """A source that is not the user's nor a live link, or a version they may not use."""


def block_node(user: AbstractBaseUser, source: str, number: int | None) -> dict[str, Any]:
    """The Custom node to insert for version `number` (default: the latest the source
    allows) of a readable source, with its ports; NotReadable otherwise."""
    found = readable_source(user, source)
    if found is None:
        raise NotReadable(f"you cannot read graph {source}: use one of your graphs or the "
                          "token of a live share link")
    number = number if number is not None else (found.pinned or found.graph.head)
    version = found.graph.versions.filter(number=number).first()
    if version is None or not found.allows(number):
        raise NotReadable(f"{found.graph.name} has no version {number} you can use")
    stored = version.document
    node = {"type": "Custom",
            "params": {"source": source, "version": number, "name": block_title(found.graph)},
            "graph": {"nodes": stored.get("nodes", []), "edges": stored.get("edges", []),
                      "layout": stored.get("layout", {})}}
    return {"node": node, "name": found.graph.name, "version": number,
            "latest": found.pinned or found.graph.head, **ports_of(version)}
