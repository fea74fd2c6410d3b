"""What a path's checks read: a user's canvas as the engine inspects it, and small predicates.

A check never looks at ids or positions. `Canvas` parses the document and runs the engine's
analysis (the same work as `inspect_graph`, so the same bounds), then flattens Repeats and
Custom blocks into one set of nodes named by path (`blocks/attn`), where following an edge
into a nested graph, or out of it, is one more step upstream. Predicates find nodes by type,
follow edges back to what feeds them, and compare shapes; a predicate that is not satisfied
raises `Unmet` with one sentence and, where it applies, the node at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..build import analyze
from ..graph import Graph, Node, parse_graph
from ..limits import Limits
from ..report import build_report

Shape = tuple[int | str, ...]  # a report's shape: ("B", 32, 64)
T = TypeVar("T")


class Unmet(Exception):
    """A check that does not pass: one sentence, and the node (its path) at fault."""

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


@dataclass
class Item:
    """One node of the flattened canvas."""

    path: str  # "wte", or "blocks/attn" inside the Repeat "blocks"
    node: Node
    entry: dict[str, Any]  # its entry in the inspection report (shapes, status)
    container: str | None  # the path of the Repeat or Custom it is inside
    feeds: dict[str, tuple[str, str]] = field(default_factory=dict)  # port -> (path, port)
    raw: dict[str, Any] = field(default_factory=dict)  # its params as written, unchecked

    @property
    def type(self) -> str:
        return self.node.type

    def param(self, name: str) -> Any:
        """A block parameter, or None when the node's parameters are invalid."""
        return getattr(self.node.params, name, None)

    def written(self, name: str, default: str) -> str | None:
        """A text parameter as the document has it, valid or not (None if not a text):
        what a node whose parameters are invalid (an Input without a shape) says."""
        valid = self.node.params is not None
        value = self.param(name) if valid else self.raw.get(name, default)
        return value if isinstance(value, str) else None

    def out_shape(self, port: str = "out") -> Shape | None:
        spec = self.entry.get("outputs", {}).get(port)
        return tuple(spec["shape"]) if spec else None

    def in_shape(self, port: str = "in") -> Shape | None:
        spec = self.entry.get("inputs", {}).get(port)
        return tuple(spec["shape"]) if spec else None

    def out_dtype(self, port: str = "out") -> str | None:
        spec = self.entry.get("outputs", {}).get(port)
        return spec["dtype"] if spec else None

    @property
    def name(self) -> str:
        return f"{self.type} '{self.path}'"


def shape_text(shape: Shape | None) -> str:
    return "no shape" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


class Canvas:
    """A document as checks see it. Never raises for a bad document: what cannot be read
    has no nodes, and `problems` says why."""

    def __init__(self, document: Any, limits: Limits | None = None) -> None:
        limits = limits or Limits.from_env()
        self.items: dict[str, Item] = {}
        self.children: dict[str, list[Item]] = {}
        self.graph: Graph | None = None
        self.valid = False
        self.problems: list[str] = []
        self.problem_on: dict[str, str] = {}
        self._upstream: dict[str, frozenset[str]] = {}
        self._downstream: dict[str, frozenset[str]] = {}
        self._consumers: dict[str, list[Item]] | None = None
        self._first_output: dict[str, Item] = {}  # container path -> its first Output
        # (edge's start: node path and output port, types seen through) -> what it gives
        self._sources: dict[tuple[tuple[str, str], frozenset[str]], Item | None] = {}
        if not isinstance(document, dict):
            self.problems = ["a graph document is a JSON object"]
            return
        graph, problems = parse_graph(document, limits)
        nodes_at_limit = any("SHIPYARD_MAX_NODES" in p.message or "SHIPYARD_MAX_MODULES"
                             in p.message for p in problems)
        if graph is None or nodes_at_limit:
            self.problems = [p.message for p in problems] or ["the document cannot be read"]
            return
        self.graph = graph
        analysis = analyze(graph, limits, flops=False)
        report = build_report(graph, analysis, problems)
        self.valid = bool(report["valid"])
        self.problems = [p["message"] for p in report["problems"]]
        self.problem_on = {p["node"]: p["message"] for p in reversed(report["problems"])
                           if p["node"]}
        self._flatten(graph, report["nodes"], prefix="", container=None)

    def _flatten(self, graph: Graph, entries: dict[str, Any], prefix: str,
                 container: str | None) -> None:
        listed = graph.document.get("nodes")
        raw = {n.get("id"): n.get("params") for n in listed if isinstance(n, dict)
               } if isinstance(listed, list) else {}
        for node in graph.nodes:
            path = prefix + node.id
            entry = entries.get(node.id, {})
            params = raw.get(node.id)
            item = Item(path, node, entry, container,
                        raw=params if isinstance(params, dict) else {})
            item.feeds = {port: (prefix + src.node, src.port)
                          for port, src in graph.incoming.get(node.id, {}).items()}
            self.items[path] = item
            if container is not None:
                self.children.setdefault(container, []).append(item)
                if node.type == "Output":
                    self._first_output.setdefault(container, item)
            if node.graph is not None:
                self._flatten(node.graph, entry.get("body", {}).get("nodes", {}),
                              prefix=path + "/", container=path)

    # Finding nodes.

    def of_type(self, *types: str, top: bool = False) -> list[Item]:
        return [i for i in self.items.values()
                if i.type in types and (not top or i.container is None)]

    def source(self, item: Item, port: str = "in", *, through: Iterable[str] = ()
               ) -> Item | None:
        """What feeds `item`'s port: the node whose output arrives there, seen through
        nested graphs' edges (into a Repeat, out of it) and through the types in `through`
        (such as Dropout). None when nothing is wired in."""
        return self._resolve(item.feeds.get(port), frozenset(through))

    def _resolve(self, at: tuple[str, str] | None, skip: frozenset[str]) -> Item | None:
        """The node an edge starting at `at` (a node's path and output port) really comes
        from. Every point walked past keeps the answer: walks that share a long chain (of
        Repeats, or of Dropouts seen through) follow it once in all, not once each."""
        walked: list[tuple[tuple[str, str], frozenset[str]]] = []
        found: Item | None = None
        for _ in range(len(self.items) + 1):  # each step moves to another node: bounded
            if at is None:
                break
            key = (at, skip)
            if key in self._sources:
                found = self._sources[key]
                break
            walked.append(key)
            src = self.items.get(at[0])
            if src is None:
                break
            if src.node.graph is not None:  # out of a Repeat or Custom: its Output's feed
                at = self._output_feed(src, at[1])
                continue
            if src.type == "Input" and src.container is not None:  # into a nested graph
                outer = self.items[src.container]
                at = outer.feeds.get(src.node.id if outer.type == "Custom" else "in")
                continue
            if src.type in skip:
                at = src.feeds.get("in")
                continue
            found = src
            break
        for key in walked:
            self._sources[key] = found
        return found

    def _output_feed(self, holder: Item, port: str) -> tuple[str, str] | None:
        """What feeds the Output inside `holder` that gives its `port`: a Custom's Output
        of that name, else the first Output in the body."""
        named = self.items.get(f"{holder.path}/{port}") if holder.type == "Custom" else None
        if named is None or named.type != "Output" or named.container != holder.path:
            named = self._first_output.get(holder.path)
        return named.feeds.get("in") if named is not None else None

    def _children(self, item: Item) -> list[Item]:
        return self.children.get(item.path, [])

    def upstream(self, item: Item) -> frozenset[str]:
        """The paths of every node whose output reaches `item`, through nested graphs."""
        cached = self._upstream.get(item.path)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = [item]
        while stack:
            current = stack.pop()
            for port in current.feeds:
                src = self.source(current, port)
                if src is not None and src.path not in seen:
                    seen.add(src.path)
                    stack.append(src)
            if current.node.graph is not None:  # what a Repeat gives depends on its body
                for child in self._children(current):
                    if child.path not in seen:
                        seen.add(child.path)
                        stack.append(child)
        found = frozenset(seen)
        self._upstream[item.path] = found
        return found

    def consumers(self, item: Item) -> list[Item]:
        """The nodes that read `item`'s output directly, through nested graphs."""
        if self._consumers is None:  # built once: each node's resolved sources, reversed
            self._consumers = {}
            for node in self.items.values():
                for port in node.feeds:
                    src = self.source(node, port)
                    if src is not None:
                        self._consumers.setdefault(src.path, []).append(node)
        return self._consumers.get(item.path, [])

    def downstream(self, item: Item) -> frozenset[str]:
        """The paths of every node that `item`'s output reaches, through nested graphs."""
        cached = self._downstream.get(item.path)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = [item]
        while stack:
            for later in self.consumers(stack.pop()):
                if later.path not in seen:
                    seen.add(later.path)
                    stack.append(later)
        found = frozenset(seen)
        self._downstream[item.path] = found
        return found

    def feeds_into(self, earlier: Item, later: Item) -> bool:
        """Whether `earlier`'s output reaches `later` (cached per `earlier`: ask with the
        same `earlier` and many `later`s, or use `upstream` the other way round)."""
        return later.path in self.downstream(earlier)

    def fixed(self, item: Item) -> None:
        """Unmet when the node's parameters are invalid, with the engine's reason."""
        if item.node.params is None:
            problem = self.problem_on.get(item.path, "its parameters are invalid")
            raise Unmet(f"The {item.name} needs a fix first: {problem.rstrip('.')}.",
                        item.path)

    def why_no_shape(self, item: Item) -> str:
        """The clause that says why a node has no shape: its own problem, or a hint."""
        problem = self.problem_on.get(item.path)
        if problem:
            return f"fix it first ({problem.rstrip('.')})"
        return "connect its input and fix the problems shown before it"


Predicate = Callable[[Canvas], object]  # raises Unmet; what it returns is not used


def first(items: Iterable[Item], *tests: Callable[[Item], bool]) -> Item | None:
    """The first item that passes every test, in the order of the document."""
    for item in items:
        if all(test(item) for test in tests):
            return item
    return None


def require(condition: bool, message: str, node: Item | str | None = None) -> None:
    if not condition:
        raise Unmet(message, node.path if isinstance(node, Item) else node)


def shaped(c: Canvas, item: Item) -> Shape:
    """The node's output shape, or Unmet saying why it has none."""
    return need(item.out_shape(),
                f"The {item.name} has no shape yet: {c.why_no_shape(item)}.", item)


def need(value: T | None, message: str, node: Item | str | None = None) -> T:
    """`value`, or Unmet(message) when it is None."""
    if value is None:
        raise Unmet(message, node.path if isinstance(node, Item) else node)
    return value
