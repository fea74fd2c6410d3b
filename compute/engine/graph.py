"""The graph format (docs/graph-format.md): parsing and structural validation.

`parse_graph` reads a document (a dict, a JSON string or a path) and returns a `Graph` with
every structural problem it found: members, ids, types, parameters, ports, edges, cycles,
size limits. It never raises for a bad graph. Nodes whose parameters are invalid stay in the
graph with `params=None`, so that the rest can still be analysed (shapes on every edge that
can have one); `load_graph` in `compute.engine` is the strict door that lets only fully valid
graphs through.
"""

from __future__ import annotations

import heapq
import json
import keyword
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch.fx
from pydantic import ValidationError

from .blocks import NAME_PATTERN, Block, BlockParams, get_block, unknown_type_message
from .errors import Problem
from .limits import Limits

FORMAT = "shipyard.graph/v1"
ID_PATTERN = NAME_PATTERN
TOP_MEMBERS = {"format", "name", "description", "nodes", "edges", "layout", "meta"}
NESTED_MEMBERS = {"nodes", "edges", "layout"}
NODE_MEMBERS = {"id", "type", "params", "graph"}
EDGE_MEMBERS = {"from", "to"}
MAX_VALUE_DEPTH = 32  # levels of lists and objects in a free value such as meta
# Levels of the whole document, Repeats' nested graphs included (three levels each): far
# over what SHIPYARD_MAX_DEPTH lets through, far under what recursive code (`copy`, `json`)
# can take.
MAX_DOCUMENT_DEPTH = 200
_MAX_VALUE_PROBLEMS = 20  # then the rest of a hostile document is not worth listing

# Ids become attribute names of a torch.fx.GraphModule (`self.head`) and local names in
# generated code, so they may not be Python keywords nor shadow what the module already has:
# its class attributes and those set in `__init__` (`training`, `meta`, `_modules`, ...).
RESERVED_IDS = frozenset(keyword.kwlist) | {"self"} | frozenset(
    dir(torch.fx.GraphModule(torch.nn.Module(), torch.fx.Graph())))


# Node types that build no module: where data enters and leaves, and the graph's settings.
NO_MODULE = frozenset({"Input", "Output", "Init"})


@dataclass(frozen=True)
class Endpoint:
    node: str
    port: str

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"


@dataclass(frozen=True)
class Edge:
    src: Endpoint
    dst: Endpoint


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    params: BlockParams | None  # None where the parameters were invalid (see module doc)
    graph: Graph | None = None  # the nested graph of a Repeat or a Custom block

    @property
    def block(self) -> Block:
        block = get_block(self.type)
        assert block is not None, self.type
        return block

    @property
    def input_ports(self) -> tuple[str, ...]:
        """Its input ports, in the order its module's `forward` takes them."""
        return self.block.node_inputs(self.params, self.graph)

    @property
    def output_ports(self) -> tuple[str, ...]:
        """Its output ports, in the order of the tuple its module returns (one: a tensor)."""
        return self.block.node_outputs(self.params, self.graph)


@dataclass(frozen=True)
class Graph:
    """A parsed graph. Nodes are in topological order (ties keep the listed order)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    name: str | None = None
    description: str | None = None
    layout: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    # Cached on first use (a frozen graph never changes): cached_property writes the
    # instance's __dict__ itself, so it works on a frozen dataclass.
    @cached_property
    def _by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def incoming(self) -> Mapping[str, Mapping[str, Endpoint]]:
        """Node id -> its input port -> the output endpoint wired into it (a node with
        nothing wired in is absent): the one adjacency index that analysis, building and
        export read."""
        index: dict[str, dict[str, Endpoint]] = {}
        for e in self.edges:
            index.setdefault(e.dst.node, {})[e.dst.port] = e.src
        return index

    @cached_property
    def consumers(self) -> Mapping[str, tuple[str, ...]]:
        """Node id -> the nodes its outputs feed, in the edges' order (a node that feeds
        nothing is absent): the index `incoming` is, the other way round."""
        index: dict[str, list[str]] = {}
        for e in self.edges:
            index.setdefault(e.src.node, []).append(e.dst.node)
        return {node: tuple(dsts) for node, dsts in index.items()}

    @property
    def inputs(self) -> list[Node]:
        """Input nodes in the order they were listed: the order of forward's arguments."""
        listed = self.document.get("nodes", [])
        order = {n.get("id"): i for i, n in enumerate(listed) if isinstance(n, dict)}
        found = [n for n in self.nodes if n.type == "Input"]
        return sorted(found, key=lambda n: order.get(n.id, 0))

    @property
    def outputs(self) -> list[Node]:
        listed = self.document.get("nodes", [])
        order = {n.get("id"): i for i, n in enumerate(listed) if isinstance(n, dict)}
        found = [n for n in self.nodes if n.type == "Output"]
        return sorted(found, key=lambda n: order.get(n.id, 0))


def read_document(source: Any) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A dict from a dict, a JSON string or bytes, or a path to a JSON file."""
    if isinstance(source, Mapping):
        return dict(source), []
    text: str
    looks_like_json = isinstance(source, str) and source.lstrip().startswith("{")
    if isinstance(source, Path) or (isinstance(source, str) and not looks_like_json):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, [Problem(f"no such file: {path}")]
        except (OSError, UnicodeDecodeError) as exc:
            return None, [Problem(f"cannot read {path}: {exc}")]
    elif isinstance(source, bytes | bytearray):
        text = bytes(source).decode("utf-8", errors="replace")
    elif isinstance(source, str):
        text = source
    else:
        return None, [Problem(f"a graph is a JSON object, not {type(source).__name__}")]
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return None, [Problem(f"not valid JSON: {exc.msg} at {where}")]
    except RecursionError:
        return None, [Problem(f"the JSON nests too deep to read; values nest at most "
                              f"{MAX_VALUE_DEPTH} levels")]
    except ValueError:  # Python refuses integers of more than 4,300 digits
        return None, [Problem("not valid JSON: a number has more than 4,300 digits")]
    if not isinstance(document, dict):
        return None, [Problem(f"a graph is a JSON object, not a JSON {_json_kind(document)}")]
    return document, []


def parse_graph(source: Any, limits: Limits | None = None) -> tuple[Graph | None, list[Problem]]:
    """Parse and check structure. Returns the graph (None if unreadable) and every problem."""
    document, problems = read_document(source)
    if document is None:
        return None, problems
    problems, too_deep = _value_problems(document)
    if too_deep:  # nothing recursive (validation, JSON encoders, copies) may touch it
        return None, problems
    depth = document_depth(document)
    if depth > MAX_DOCUMENT_DEPTH:
        return None, [Problem(f"the document nests {depth:,} levels deep (Repeats inside "
                              f"Repeats); the limit is {MAX_DOCUMENT_DEPTH}")]
    limits = limits or Limits.from_env()
    counter = _Counter()
    graph = _parse(document, problems, kind=TOP, depth=0, limits=limits, counter=counter)
    if graph is not None:
        problems[:0] = _module_problems(graph, limits)
    if counter.nodes > limits.max_nodes:
        problems.insert(0, Problem(
            f"the graph has {counter.nodes:,} nodes (nested ones included); the limit is "
            f"{limits.max_nodes:,} (SHIPYARD_MAX_NODES)"))
    return graph, problems


def document_depth(value: Any) -> int:
    """How deep a JSON value nests: 0 for a number or a string, 1 for `[]` or `{"a": 1}`.

    Measured without recursion, so that a value too deep for anything recursive (`json`,
    `copy.deepcopy`, a validator) can be measured and refused first.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


# What `_value_problems` walks: the format's own structure (a graph, its list of nodes, a
# node), where depth does not count since Repeats nest at most SHIPYARD_MAX_DEPTH deep and
# `_parse` stops there, and free values (meta, params, layout, unknown members), whose depth
# counts from where they start.
_GRAPH, _NODES, _NODE, _FREE = "graph", "nodes", "node", "free"


def _value_problems(document: dict[str, Any]) -> tuple[list[Problem], bool]:
    """Free values nested over MAX_VALUE_DEPTH, and numbers that are not finite (`1e999`
    reads as infinity), each named by its path. Iterative, whatever the depth. Also says
    whether some value was too deep, in which case nothing else should read the document.

    Numbers in a node's `params` are left to its block's parameter model, which refuses
    non-finite ones on the parameter itself.
    """
    problems: list[Problem] = []
    too_deep = False
    # (value, its path, its kind, the path of the free value it is in, depth in that value,
    # whether it is in a node's params)
    stack: list[tuple[Any, str, str, str, int, bool]] = [(document, "", _GRAPH, "", 0, False)]
    while stack and len(problems) < _MAX_VALUE_PROBLEMS:
        value, path, kind, root, depth, in_params = stack.pop()
        if isinstance(value, float) and not math.isfinite(value) and not in_params:
            problems.append(Problem(
                f"{path} is {json.dumps(value)}: numbers must be finite (1e999 and larger "
                "read as Infinity)", field=path))
            continue
        if not isinstance(value, dict | list):
            continue
        expected = dict if kind in (_GRAPH, _NODE) else list if kind == _NODES else None
        if expected is None or not isinstance(value, expected):
            if kind != _FREE:
                kind, root, depth = _FREE, path, 0
            depth += 1
            if depth > MAX_VALUE_DEPTH:
                problems.append(Problem(
                    f"{root} nests deeper than {MAX_VALUE_DEPTH} levels (at {path}); values "
                    f"in a graph nest at most {MAX_VALUE_DEPTH} deep", field=root))
                too_deep = True
                continue
        items = value.items() if isinstance(value, dict) else enumerate(value)
        children = []
        for key, child in items:
            child_kind = _FREE
            if kind == _GRAPH and key == "nodes":
                child_kind = _NODES
            elif kind == _NODES:
                child_kind = _NODE
            elif kind == _NODE and key == "graph":
                child_kind = _GRAPH
            params = in_params or (kind == _NODE and key == "params")
            child_path = _step(path, key)
            if kind == _FREE:
                children.append((child, child_path, kind, root, depth, params))
            else:  # a free value starts here, or the structure goes on
                children.append((child, child_path, child_kind, child_path, 0, params))
        stack.extend(reversed(children))  # popped in the document's order
    return problems, too_deep


def _step(path: str, key: str | int) -> str:
    """`meta.a[0]`, `nodes[2].params`; a key that is not a plain name is quoted, and cut."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if ID_PATTERN.fullmatch(key):
        return f"{path}.{key}" if path else key
    shown = key if len(key) <= 40 else key[:40] + "…"
    return f"{path}[{json.dumps(shown)}]"


def module_count(graph: Graph) -> int:
    """The modules building this graph makes: one per block, and per copy of a Repeat its
    body's and one more, the copy itself (a module of its own, as costly to build and to
    export as a small block), so nested Repeats multiply. Inputs and Outputs make none."""
    return sum(_modules_of(node) for node in graph.nodes)


def _modules_of(node: Node) -> int:
    if node.type in NO_MODULE:
        return 0
    if node.graph is None:
        return 1
    return _times(node) * (module_count(node.graph) + 1)


def _times(node: Node) -> int:
    return getattr(node.params, "times", 1)  # a Custom block's graph runs once


def _module_problems(graph: Graph, limits: Limits) -> list[Problem]:
    """Over SHIPYARD_MAX_MODULES, one problem, on the node that builds the most: usually a
    Repeat, whose copies are what multiply."""
    total = module_count(graph)
    if total <= limits.max_modules:
        return []
    over = (f"the model would build {total:,} modules, Repeat copies included; the limit is "
            f"{limits.max_modules:,} (SHIPYARD_MAX_MODULES)")
    biggest = max(graph.nodes, key=_modules_of)
    if biggest.graph is None or biggest.type != "Repeat":
        return [Problem(over)]
    body = module_count(biggest.graph)
    return [Problem(f"its {_times(biggest):,} copies, each a module holding {body:,}, make "
                    f"{_modules_of(biggest):,}: {over}", biggest.id, "times")]


@dataclass
class _Counter:
    nodes: int = 0


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null", dict: "object"}.get(type(value), type(value).__name__)


# What a graph being parsed is: the document itself, a Repeat's body (one Input, one
# Output, the shape it takes is the shape it gives) or a Custom block's graph (Inputs and
# Outputs as its ports).
TOP, REPEAT_BODY, CUSTOM_BODY = "top", "Repeat", "Custom"


def _parse(doc: dict[str, Any], problems: list[Problem], *, kind: str, depth: int,
           limits: Limits, counter: _Counter) -> Graph | None:
    top = kind == TOP
    allowed = TOP_MEMBERS if top else NESTED_MEMBERS
    for key in doc:
        if key not in allowed:
            problems.append(Problem(
                f"unknown member {key!r}; a {'graph' if top else 'nested graph'} has "
                f"{', '.join(sorted(allowed))}", field=str(key)))
    if top:
        if "format" not in doc:
            problems.append(Problem(f'missing "format": write "format": "{FORMAT}"',
                                    field="format"))
        elif doc["format"] != FORMAT:
            problems.append(Problem(
                f"format is {doc['format']!r}, but this version of Shipyard reads {FORMAT!r}",
                field="format"))
        for key in ("name", "description"):
            if key in doc and not isinstance(doc[key], str):
                problems.append(Problem(f"{key} must be a string", field=key))
        if "meta" in doc and not isinstance(doc["meta"], dict):
            problems.append(Problem("meta must be an object", field="meta"))

    raw_nodes = doc.get("nodes")
    raw_edges = doc.get("edges")
    if not isinstance(raw_nodes, list):
        problems.append(Problem('"nodes" must be a list of nodes', field="nodes"))
        raw_nodes = []
    if not isinstance(raw_edges, list):
        problems.append(Problem('"edges" must be a list of edges', field="edges"))
        raw_edges = []

    nodes: dict[str, Node] = {}
    for index, raw in enumerate(raw_nodes):
        node = _parse_node(raw, index, nodes, problems, depth=depth, limits=limits,
                           counter=counter)
        if node is not None:
            nodes[node.id] = node

    edges = _parse_edges(raw_edges, nodes, problems)
    layout = _parse_layout(doc.get("layout"), nodes, problems)

    inputs = [n for n in nodes.values() if n.type == "Input"]
    outputs = [n for n in nodes.values() if n.type == "Output"]
    inits = [n for n in nodes.values() if n.type == "Init"]
    if kind == REPEAT_BODY and inits:
        problems.append(Problem(
            "an Init node sets how the whole model's weights start: put it on the top-level "
            "canvas, not inside a Repeat", inits[0].id))
    elif len(inits) > 1:
        problems.append(Problem(
            f"the graph has {len(inits)} Init nodes ({', '.join(n.id for n in inits)}); "
            "keep one", inits[1].id))
    if top:
        if not inputs:
            problems.append(Problem("the graph has no Input: add one for the data to enter"))
        if not outputs:
            problems.append(Problem("the graph has no Output: wire the result into an Output"))
        for n in inputs:
            if n.params is not None and n.params.shape is None:  # type: ignore[attr-defined]
                problems.append(Problem(
                    "an Input needs a shape, the size of one sample without the batch: "
                    "[64] for vectors, [3, 32, 32] for images", n.id, "shape"))
                nodes[n.id] = replace(n, params=None)  # so that analysis skips it
    elif kind == REPEAT_BODY:
        if len(inputs) != 1 or len(outputs) != 1:
            problems.append(Problem(
                f"a nested graph has exactly one Input and one Output, this one has "
                f"{len(inputs)} and {len(outputs)}"))
    elif not inputs or not outputs:
        problems.append(Problem(
            f"a block's graph needs at least one Input and one Output (its ports), this one "
            f"has {len(inputs)} and {len(outputs)}: add them to the original graph, save it, "
            "and update the block"))

    order = _topological_order(list(nodes), edges, problems)
    return Graph(
        nodes=tuple(nodes[i] for i in order),
        edges=tuple(edges),
        name=doc.get("name") if isinstance(doc.get("name"), str) else None,
        description=doc.get("description") if isinstance(doc.get("description"), str) else None,
        layout=layout,
        meta=doc["meta"] if isinstance(doc.get("meta"), dict) else {},
        document=doc,
    )


def _parse_node(raw: Any, index: int, seen: Mapping[str, Node], problems: list[Problem], *,
                depth: int, limits: Limits, counter: _Counter) -> Node | None:
    if not isinstance(raw, dict):
        problems.append(Problem(f"nodes[{index}] must be an object with an id and a type",
                                field=f"nodes[{index}]"))
        return None
    counter.nodes += 1
    node_id = raw.get("id")
    # fullmatch: `$` alone would let a trailing newline through (`"head\n"`).
    if not isinstance(node_id, str) or not ID_PATTERN.fullmatch(node_id):
        problems.append(Problem(
            f"nodes[{index}] has id {node_id!r}: an id starts with a letter or _, then letters, "
            "digits or _, at most 64 in all, in ASCII (it becomes a name in the generated code)",
            field="id"))
        return None
    if node_id in RESERVED_IDS:
        problems.append(Problem(
            f"{node_id!r} is reserved in Python or by torch modules; pick another id",
            node_id, "id"))
        return None
    if node_id in seen:
        problems.append(Problem(f"two nodes have the id {node_id!r}; ids must be unique",
                                node_id, "id"))
        return None
    for key in raw:
        if key not in NODE_MEMBERS:
            problems.append(Problem(
                f"unknown member {key!r}; a node has id, type, params and (Repeat and Custom "
                "only) graph",
                node_id, str(key)))
    type_name = raw.get("type")
    block = get_block(type_name) if isinstance(type_name, str) else None
    if block is None:
        problems.append(Problem(
            unknown_type_message(type_name) if isinstance(type_name, str)
            else "a node needs a type, such as Linear", node_id, "type"))
        return Node(node_id, str(type_name), None)

    raw_params = raw.get("params", {})
    params: BlockParams | None = None
    if not isinstance(raw_params, dict):
        problems.append(Problem("params must be an object of name: value", node_id, "params"))
    else:
        try:
            params = block.Params.model_validate(raw_params)
        except ValidationError as exc:
            problems.extend(_param_problems(block, node_id, exc))
        if params is not None and block.type == "Input" and params.shape is not None:  # type: ignore[attr-defined]
            for d in params.shape:  # type: ignore[attr-defined]
                if d > limits.max_dim:
                    problems.append(Problem(
                        f"dimension {d:,} exceeds the limit of {limits.max_dim:,} "
                        "(SHIPYARD_MAX_DIM)", node_id, "shape"))
                    params = None
                    break

    subgraph: Graph | None = None
    if block.holds_graph:
        raw_graph = raw.get("graph")
        if not isinstance(raw_graph, dict):
            problems.append(Problem(
                f"a {block.type} holds a nested graph: add \"graph\": {{\"nodes\": [...], "
                "\"edges\": [...]}", node_id, "graph"))
            params = None
        elif depth + 1 > limits.max_depth:
            problems.append(Problem(
                f"nesting is {depth + 1} deep; the limit is {limits.max_depth} "
                "(SHIPYARD_MAX_DEPTH)", node_id, "graph"))
            params = None
        else:
            inner: list[Problem] = []
            subgraph = _parse(raw_graph, inner, kind=block.type, depth=depth + 1,
                              limits=limits, counter=counter)
            problems.extend(p.nested_in(node_id) for p in inner)
            if inner:
                params = None
    elif "graph" in raw:
        problems.append(Problem(f"only a Repeat or a Custom block holds a nested graph, not "
                                f"a {block.type}",
                                node_id, "graph"))
    return Node(node_id, block.type, params, subgraph)


_PARAM_MESSAGES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "too_short": "needs at least {min_length} entries",
    "too_long": "takes at most {max_length} entries",
    "tuple_type": "must be a list",
    "finite_number": "must be a finite number",
}


def _param_problems(block: Block, node_id: str, exc: ValidationError) -> list[Problem]:
    fields = sorted(block.Params.model_fields, key=lambda f: f.startswith("init"))  # own first
    found: dict[str, Problem] = {}
    for err in exc.errors():
        loc = err.get("loc", ())
        name = str(loc[0]) if loc else "params"
        if name in found:  # a union reports once per member; the first says enough
            continue
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        value = err.get("input")
        if kind == "extra_forbidden":
            takes = f"it takes {', '.join(fields)}" if fields else "it takes no parameters"
            message = f"{block.type} has no parameter {name!r}; {takes}"
        elif kind == "missing":
            message = f"parameter {name!r} is missing"
        elif kind == "literal_error":
            message = f"{name} must be one of {ctx.get('expected', '')}, got {value!r}"
        elif kind in _PARAM_MESSAGES:
            message = f"{name} {_PARAM_MESSAGES[kind].format(**ctx)}, got {json.dumps(value)}"
        else:
            detail = str(err.get("msg", "is not valid"))
            detail = detail.removeprefix("Value error, ")
            got = json.dumps(value, default=str)
            message = f"{name}: {detail[0].lower() + detail[1:]}, got {got}"
        found[name] = Problem(message, node_id, name)
    return list(found.values())


def _parse_endpoint(text: Any, nodes: Mapping[str, Node], side: str, index: int,
                    problems: list[Problem]) -> Endpoint | None:
    where = f"edges[{index}].{side}"
    if not isinstance(text, str) or not text:
        problems.append(Problem(f'{where} must be "NODE" or "NODE.PORT"', field=where))
        return None
    node_id, _, port = text.partition(".")
    node = nodes.get(node_id)
    if node is None:
        problems.append(Problem(f"{where} names {node_id!r}, which is not a node of this graph",
                                field=where))
        return None
    block = get_block(node.type)
    if block is None:  # its unknown type is already reported; the edge still counts as wired
        return Endpoint(node_id, port or "?")
    ports = node.output_ports if side == "from" else node.input_ports
    kind = "output" if side == "from" else "input"
    if ((side == "from" and block.outputs_from is not None and node.params is None)
            or (block.ports_from_graph and (node.graph is None or not ports))):
        # What names its ports (its parameters, its nested graph) is wrong (already
        # reported): any port is taken, so that the edge still counts as wired.
        if not port:
            names = (f"entry of {block.outputs_from}" if block.outputs_from is not None
                     else f"{kind} of the graph it holds")
            problems.append(Problem(
                f"{block.type} has one {kind} per {names}: write '{node_id}.NAME' with one "
                "of them", node_id, where))
            return None
        return Endpoint(node_id, port)
    if not ports:
        what = "nothing leaves an Output" if side == "from" else "nothing enters an Input"
        kind_of = "an Output" if side == "from" else "an Input"
        problems.append(Problem(f"{where}: {node_id} is {kind_of}, and {what}", node_id))
        return None
    if not port:
        if len(ports) > 1:
            choices = " or ".join(f"'{node_id}.{p}'" for p in ports)
            problems.append(Problem(f"{block.type} has {kind}s {', '.join(ports)}: write {choices}",
                                    node_id, where))
            return None
        port = ports[0]
    elif port not in ports:
        problems.append(Problem(
            f"{block.type} has no {kind} port {port!r}; its {kind}s: {', '.join(ports)}",
            node_id, port))
        return None
    return Endpoint(node_id, port)


def _parse_edges(raw_edges: list[Any], nodes: Mapping[str, Node],
                 problems: list[Problem]) -> list[Edge]:
    edges: list[Edge] = []
    taken: dict[Endpoint, Endpoint] = {}
    for index, raw in enumerate(raw_edges):
        if not isinstance(raw, dict):
            problems.append(Problem(f'edges[{index}] must be {{"from": ..., "to": ...}}',
                                    field=f"edges[{index}]"))
            continue
        unknown = [k for k in raw if k not in EDGE_MEMBERS]
        for key in unknown:
            problems.append(Problem(f"edges[{index}] has unknown member {key!r}; an edge has "
                                    "from and to", field=f"edges[{index}]"))
        src = _parse_endpoint(raw.get("from"), nodes, "from", index, problems)
        dst = _parse_endpoint(raw.get("to"), nodes, "to", index, problems)
        if src is None or dst is None or unknown:
            continue
        if dst in taken and get_block(nodes[dst.node].type) is not None:
            problems.append(Problem(
                f"input {dst.port!r} already takes {taken[dst]}; an input port takes one edge "
                f"(remove one, or join them with Add or Concat)", dst.node, dst.port))
            continue
        taken[dst] = src
        if get_block(nodes[src.node].type) and get_block(nodes[dst.node].type):
            edges.append(Edge(src, dst))

    for node in nodes.values():
        block = get_block(node.type)
        if block is None:
            continue
        for port in node.input_ports:
            if Endpoint(node.id, port) not in taken:
                what = ("nothing is wired into this Output: wire the model's result into it"
                        if node.type == "Output" else
                        f"input {port!r} is not connected: wire another block's output into it")
                problems.append(Problem(what, node.id, port))
    return edges


def _parse_layout(raw: Any, nodes: Mapping[str, Node],
                  problems: list[Problem]) -> dict[str, tuple[float, float]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem("layout must be an object of node id: [x, y]", field="layout"))
        return {}
    layout: dict[str, tuple[float, float]] = {}
    for key, value in raw.items():
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))
        if not ok:
            problems.append(Problem(f"layout of {key!r} must be [x, y] numbers", field="layout"))
        elif key in nodes:
            layout[key] = (float(value[0]), float(value[1]))
        # Positions of nodes that are gone are harmless leftovers of the editor: ignored.
    return layout


def _topological_order(ids: list[str], edges: list[Edge], problems: list[Problem]) -> list[str]:
    """Kahn's algorithm, taking ready nodes in listed order. A cycle is reported once."""
    position = {node_id: i for i, node_id in enumerate(ids)}
    indegree = dict.fromkeys(ids, 0)
    after: dict[str, list[str]] = {i: [] for i in ids}
    for e in edges:
        indegree[e.dst.node] += 1
        after[e.src.node].append(e.dst.node)
    ready = [(position[i], i) for i in ids if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for nxt in after[node_id]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(ready, (position[nxt], nxt))
    if len(order) < len(ids):
        stuck = [i for i in ids if indegree[i] > 0]
        cycle = _find_cycle(stuck, edges)
        problems.append(Problem(
            "the edges form a cycle: " + " → ".join([*cycle, cycle[0]])
            + "; a model graph must be acyclic (to feed a value back, use Repeat)",
            cycle[0]))
        order.extend(stuck)  # keep every node; nothing past a cycle is analysed
    return order


def _find_cycle(stuck: list[str], edges: list[Edge]) -> list[str]:
    """Every stuck node has a stuck predecessor, so walking backwards must close a loop."""
    inside = set(stuck)
    before: dict[str, str] = {}
    for e in edges:
        if e.dst.node in inside and e.src.node in inside:
            before.setdefault(e.dst.node, e.src.node)
    path: list[str] = []
    seen_at: dict[str, int] = {}
    node = stuck[0]
    while node not in seen_at:
        seen_at[node] = len(path)
        path.append(node)
        node = before[node]
    return path[seen_at[node]:][::-1]

