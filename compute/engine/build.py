"""From a parsed graph to facts (`analyze`) and to a runnable module (`materialize`).

`analyze` walks the graph in topological order and, for every node, asks its block for the
module recipe, builds the module on the meta device and runs it on meta tensors of batch
one: output shapes, parameter counts and FLOPs come from the very modules that will run,
without allocating anything. A `Repeat` body is analysed once and counted `times`.

`materialize` then builds the same recipes for real and wires them into a `torch.fx` graph
whose node names are the graph's ids. A block with several output ports (Split) returns a
tuple in port order; each port is an `operator.getitem` node named by `value_names`, the
scheme the standalone export uses for its local names too.
"""

from __future__ import annotations

import builtins
import contextlib
import keyword
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field, fields

import torch
import torch.fx
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import layers
from .blocks import Block, Ctor, Incoming, Refusal, TensorSpec
from .errors import GraphError, Problem
from .graph import RESERVED_IDS, Endpoint, Graph, Node
from .limits import Limits

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


@dataclass
class NodeResult:
    """What the analysis learned about one node. Figures are for a batch of one."""

    id: str
    type: str
    status: str = "ok"  # ok | error | skipped (an upstream node failed)
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)
    params: int = 0
    trainable_params: int = 0
    flops: int | None = None
    activation_bytes: int = 0
    attention: bool = False  # a run shows its weights as attention maps (Block.shows_attention)
    ctor: Ctor | None = None
    times: int | None = None  # Repeat: how many copies
    body: Analysis | None = None  # Repeat: the analysis of one copy
    init: InitSpec | None = None  # how its weights start, where not PyTorch's default
    tied_to: str | None = None  # a Linear: the Embedding whose table is its weight


@dataclass(frozen=True)
class InitSpec:
    """The arguments of `layers.init_weights` for one module: its matrices start from
    N(0, std²), those of the submodules named in `residual` ("" for the module itself)
    from N(0, residual_std²), its biases at 0."""

    std: float
    residual_std: float | None = None
    residual: tuple[str, ...] = ()

    def kwargs(self) -> dict[str, object]:
        given: dict[str, object] = {"std": self.std}
        if self.residual:
            given |= {"residual_std": self.residual_std, "residual": self.residual}
        return given


@dataclass
class Analysis:
    nodes: dict[str, NodeResult]
    problems: list[Problem]
    warnings: list[Problem]
    params: int = 0
    trainable_params: int = 0
    flops: int | None = None
    activation_bytes: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True, kw_only=True)
class CheckedGraph(Graph):
    """A graph that passed every check (what `load_graph` returns), with the analysis that
    checked it (shapes and parameters, no FLOPs): `compile_graph` builds from it without
    analysing it again."""

    analysis: Analysis = field(repr=False, compare=False)


def check(graph: Graph, limits: Limits) -> CheckedGraph:
    """`graph` with its analysis; raises `GraphError` listing every problem the analysis met."""
    analysis = analyze(graph, limits, flops=False)
    if analysis.problems:
        raise GraphError(analysis.problems)
    return CheckedGraph(**{f.name: getattr(graph, f.name) for f in fields(Graph)},
                        analysis=analysis)


@dataclass(frozen=True)
class _Measured:
    """What one meta run of a module told us: one spec per output port."""

    specs: tuple[TensorSpec, ...]
    params: int
    trainable_params: int
    flops: int | None


@dataclass
class _Budget:
    """State shared across nested graphs during one analysis: running totals, to stop at the
    first node over a limit, and the measurements already made.

    A module made from the same recipe and fed the same specs always measures the same, so
    each distinct (recipe, inputs) pair is run on the meta device once: a stack of identical
    layers costs one layer. The figures still come from a real run of the real module.
    """

    limits: Limits
    params: int = 0
    over_params: bool = False
    measured: dict[Hashable, _Measured] = field(default_factory=dict)


class _Measurements:
    """The measurements of every analysis in this process, the latest MAX kept: an editor
    inspects the same graph again and again as it is drawn (every edit, the save, the page
    that shows it), and most of its blocks have not changed since the last time. A key
    holds all a measurement depends on (the recipe with its values' types, the input
    specs, whether FLOPs are counted, the dimension limit); a refusal is never kept."""

    MAX = 4096

    def __init__(self) -> None:
        self.kept: OrderedDict[Hashable, _Measured] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> _Measured | None:
        with self.lock:
            found = self.kept.get(key)
            if found is not None:
                self.kept.move_to_end(key)
            return found

    def put(self, key: Hashable, measured: _Measured) -> None:
        with self.lock:
            self.kept[key] = measured
            self.kept.move_to_end(key)
            while len(self.kept) > self.MAX:
                self.kept.popitem(last=False)


_MEASUREMENTS = _Measurements()


def analyze(graph: Graph, limits: Limits, *, flops: bool = True) -> Analysis:
    budget = _Budget(limits)
    counter = FlopCounterMode(display=False) if flops else None
    with torch.no_grad(), counter if counter is not None else contextlib.nullcontext():
        analysis = _analyze(graph, budget, counter, feeds=None)
    plan_init(graph, analysis)
    if analysis.activation_bytes > limits.max_activation_bytes:
        analysis.problems.append(Problem(
            f"one sample's forward pass keeps about {human_bytes(analysis.activation_bytes)} of "
            f"activations; the limit is {human_bytes(limits.max_activation_bytes)} "
            "(SHIPYARD_MAX_ACTIVATION_BYTES)"))
    return analysis


def _analyze(graph: Graph, budget: _Budget, counter: FlopCounterMode | None,
             feeds: Mapping[str, Incoming] | None) -> Analysis:
    """`feeds` is what enters a nested graph's Inputs, by Input id; None at the top level."""
    results: dict[str, NodeResult] = {}
    problems: list[Problem] = []
    specs: dict[Endpoint, TensorSpec] = {}  # only specs travel: tensors are made to measure
    incoming_of = graph.incoming

    for node in graph.nodes:
        result = NodeResult(node.id, node.type)
        results[node.id] = result
        wired = incoming_of.get(node.id, {})
        if node.params is None and node.type != "Output":
            result.status = "error"  # its parameters are wrong: already reported
            continue
        if node.type != "Input" and len(wired) < len(node.input_ports):
            result.status = "error"  # an input not connected: already reported on this node
            continue
        if any(src not in specs for src in wired.values()):
            result.status = "skipped"
            continue
        incoming = {port: Incoming(specs[src], _source(src, graph)) for port, src in wired.items()}
        result.inputs = {port: inc.spec for port, inc in incoming.items()}
        outs: tuple[TensorSpec, ...]  # one per output port, in port order
        try:
            if node.type == "Input":
                outs = (_input_spec(node, None if feeds is None else feeds.get(node.id)),)
                result.flops = 0 if counter is not None else None
            elif node.type in ("Output", "Init"):
                result.flops = 0 if counter is not None else None
                continue
            elif node.type == "Repeat":
                outs = (_analyze_repeat(node, result, incoming, budget, counter, problems),)
            elif node.type == "Custom":
                outs = _analyze_custom(node, result, incoming, budget, counter, problems)
            else:
                outs = _analyze_block(node, result, incoming, budget, counter)
        except Refusal as refusal:
            problems.append(Problem(refusal.message, node.id, refusal.field))
            result.status = "error"
            continue
        except _BodyFailed:
            result.status = "error"  # its nested problems are listed, each by its path
            continue
        too_big = [(d, spec) for spec in outs for d in spec.shape if d > budget.limits.max_dim]
        if too_big:
            d, spec = max(too_big, key=lambda found: found[0])
            problems.append(Problem(
                f"its output {spec.text()} has a dimension of {d:,}; the limit is "
                f"{budget.limits.max_dim:,} (SHIPYARD_MAX_DIM)", node.id))
            result.status = "error"
            continue
        ports = node.output_ports
        result.outputs = dict(zip(ports, outs, strict=True))
        for port, spec in result.outputs.items():
            specs[Endpoint(node.id, port)] = spec
        if node.graph is None:  # a nested graph's are counted inside it
            result.activation_bytes = sum(spec.numel * DTYPES[spec.dtype].itemsize
                                          for spec in outs)

    _tie_weights(graph, results, problems)
    analysis = Analysis(results, problems, _unused_warnings(graph))
    for r in results.values():
        analysis.params += r.params
        analysis.trainable_params += r.trainable_params
        analysis.activation_bytes += r.activation_bytes
    if counter is not None:
        analysis.flops = sum(r.flops or 0 for r in results.values())
    return analysis


def _input_spec(node: Node, feed: Incoming | None) -> TensorSpec:
    shape = node.params.shape  # type: ignore[union-attr]
    dtype = node.params.dtype  # type: ignore[union-attr]
    if feed is None:
        return TensorSpec(tuple(shape), dtype)
    if shape is not None and tuple(shape) != feed.spec.shape:
        raise Refusal(
            f"this Input says [B, {', '.join(map(str, shape))}], but {feed.source} feeds "
            f"{feed.spec.describe()}; leave the shape empty inside a Repeat, and feed a block "
            "from My blocks what its Input takes", "shape")
    return feed.spec


def _analyze_block(node: Node, result: NodeResult, incoming: dict[str, Incoming],
                   budget: _Budget, counter: FlopCounterMode | None
                   ) -> tuple[TensorSpec, ...]:
    """One spec per output port, in port order."""
    block = node.block
    ctor = block.construct(node.params, incoming)
    specs = tuple(incoming[port].spec for port in node.input_ports)
    key = _measure_key(ctor, specs)
    shared = (key, counter is not None, budget.limits.max_dim)
    measured = None
    if key is not None:
        measured = budget.measured.get(key) or _MEASUREMENTS.get(shared)
    if measured is None:
        ports = node.output_ports
        measured = _measure(block, ctor, incoming, specs, ports, budget.limits, counter)
        if key is not None:
            budget.measured[key] = measured
            _MEASUREMENTS.put(shared, measured)
    result.params = measured.params
    result.trainable_params = measured.trainable_params
    result.flops = measured.flops
    result.attention = block.shows_attention(node.params, measured.specs[0])
    _charge(node, result.params, budget)
    result.ctor = ctor
    return measured.specs


def _measure_key(ctor: Ctor, specs: tuple[TensorSpec, ...]) -> Hashable | None:
    """What a measurement depends on, hashable; None when a value of the recipe is not.
    Each value goes with its type: 1, 1.0 and True are equal in Python, not as recipes."""
    key = (ctor.cls, _typed(ctor.args), _typed(tuple(sorted(ctor.kwargs.items()))), specs)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _typed(value: object) -> object:
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_typed(v) for v in value))
    return (type(value), value)


def _measure(block: Block, ctor: Ctor, incoming: dict[str, Incoming],
             specs: tuple[TensorSpec, ...], ports: tuple[str, ...], limits: Limits,
             counter: FlopCounterMode | None) -> _Measured:
    """Build the module on the meta device and run it once, on meta tensors of batch one.
    A module of one port returns a tensor; one of several, a tuple of tensors in port order.
    """
    what = f"{block.type} cannot be built"
    params = trainable = 0
    try:
        with torch.device("meta"):
            module = ctor.build()
        module.eval()
        for p in module.parameters():
            if any(d > limits.max_dim for d in p.shape):
                raise Refusal(
                    f"a weight of shape {list(p.shape)} has a dimension over the limit of "
                    f"{limits.max_dim:,} (SHIPYARD_MAX_DIM)")
            params += p.numel()
            if p.requires_grad:
                trainable += p.numel()
        what = f"{block.type} cannot run on " + ", ".join(
            f"{inc.spec.describe()} from {inc.source}" for inc in incoming.values())
        args = [torch.empty((1, *s.shape), dtype=DTYPES[s.dtype], device="meta") for s in specs]
        before = counter.get_total_flops() if counter is not None else 0
        out = module(*args)
        flops = counter.get_total_flops() - before if counter is not None else None
    except Refusal:
        raise
    except Exception as exc:  # a block's own failure, reported against its node
        raise Refusal(f"{what}: {_first_line(exc)}") from None
    if len(ports) == 1:
        if not isinstance(out, torch.Tensor):
            raise Refusal(f"{block.type} gave {type(out).__name__}, not a tensor")
        outs: tuple[torch.Tensor, ...] = (out,)
    else:
        if not (isinstance(out, tuple) and all(isinstance(t, torch.Tensor) for t in out)):
            raise Refusal(f"{block.type} gave {type(out).__name__}, not a tuple of tensors "
                          f"for its outputs {', '.join(ports)}")
        if len(out) != len(ports):
            raise Refusal(f"{block.type} gave {len(out)} tensors for its {len(ports)} outputs "
                          f"{', '.join(ports)}")
        outs = out
    found = tuple(TensorSpec(tuple(t.shape[1:]), DTYPE_NAMES.get(t.dtype, str(t.dtype)))
                  for t in outs)
    return _Measured(found, params, trainable, flops)


def _analyze_repeat(node: Node, result: NodeResult, incoming: dict[str, Incoming],
                    budget: _Budget, counter: FlopCounterMode | None,
                    problems: list[Problem]) -> TensorSpec:
    assert node.graph is not None
    times: int = node.params.times  # type: ignore[union-attr]
    feed = incoming["in"]
    before_params = budget.params
    (entry,) = node.graph.inputs
    body = _analyze(node.graph, budget, counter, feeds={entry.id: feed})
    # The body was charged once; its other copies cost the same.
    budget.params = before_params
    result.times, result.body = times, body
    problems.extend(p.nested_in(node.id) for p in body.problems)
    if body.problems:
        raise _BodyFailed
    result.params = body.params * times
    result.trainable_params = body.trainable_params * times
    result.activation_bytes = body.activation_bytes * times
    result.flops = None if body.flops is None else body.flops * times
    _charge(node, result.params, budget)
    (out_node,) = node.graph.outputs
    body_out = body.nodes[out_node.id].inputs["in"]
    if body_out != feed.spec:
        raise Refusal(
            f"the nested graph must give back what it takes, so that copies can chain: it "
            f"takes {feed.spec.describe()} but gives {body_out.describe()}: change the blocks "
            f"inside so that its Output gets {feed.spec.text()}")
    return feed.spec


def _analyze_custom(node: Node, result: NodeResult, incoming: dict[str, Incoming],
                    budget: _Budget, counter: FlopCounterMode | None,
                    problems: list[Problem]) -> tuple[TensorSpec, ...]:
    """A block from My blocks: its graph analysed once, fed by its input ports (one per
    nested Input, same id); one spec per nested Output, in listed order."""
    assert node.graph is not None
    feeds = {entry.id: incoming[entry.id] for entry in node.graph.inputs}
    for entry in node.graph.inputs:
        wanted = entry.params.dtype if entry.params is not None else None  # type: ignore[attr-defined]
        if wanted is not None and feeds[entry.id].spec.dtype != wanted:
            raise Refusal(
                f"input {entry.id!r} takes {wanted}, but {feeds[entry.id].source} gives "
                f"{feeds[entry.id].spec.describe()}: wire a {wanted} value into it", entry.id)
    before_params = budget.params
    body = _analyze(node.graph, budget, counter, feeds=feeds)
    budget.params = before_params  # charged below, as one node
    result.times, result.body = 1, body
    problems.extend(p.nested_in(node.id) for p in body.problems)
    if body.problems:
        raise _BodyFailed
    result.params = body.params
    result.trainable_params = body.trainable_params
    result.activation_bytes = body.activation_bytes
    result.flops = body.flops
    _charge(node, result.params, budget)
    return tuple(body.nodes[out.id].inputs["in"] for out in node.graph.outputs)


class _BodyFailed(Exception):
    """A Repeat whose nested graph has problems: they are reported, each on its own node,
    and the Repeat adds none of its own (one mistake is one problem)."""


def _charge(node: Node, params: int, budget: _Budget) -> None:
    budget.params += params
    if budget.params > budget.limits.max_params and not budget.over_params:
        budget.over_params = True
        raise Refusal(
            f"with this node the model has {budget.params:,} parameters; the limit is "
            f"{budget.limits.max_params:,} (SHIPYARD_MAX_PARAMS)")


def _source(src: Endpoint, graph: Graph) -> str:
    """`node`, or `node.port` where the node has several outputs."""
    node = graph.node(src.node)
    return src.node if len(node.output_ports) == 1 else str(src)


def _unused_warnings(graph: Graph) -> list[Problem]:
    used = {src for ports in graph.incoming.values() for src in ports.values()}
    used_nodes = {src.node for src in used}
    warnings = []
    for n in graph.nodes:
        if n.type in ("Output", "Init"):
            continue
        if n.id not in used_nodes:
            warnings.append(Problem(
                f"the output of {n.id} is not used: wire it onward or delete the node", n.id))
            continue
        if n.params is None:
            continue  # its ports are not known: its parameters are wrong (a problem already)
        ports = n.output_ports
        idle = [p for p in ports if len(ports) > 1 and Endpoint(n.id, p) not in used]
        if idle:
            warnings.append(Problem(
                f"output{'s' if len(idle) > 1 else ''} {', '.join(idle)} of {n.id} "
                f"{'are' if len(idle) > 1 else 'is'} not used: wire "
                f"{'them' if len(idle) > 1 else 'it'} onward", n.id))
    return warnings


# Weight tying and initialization: facts about a node that depend on other nodes.


def _tie_weights(graph: Graph, results: dict[str, NodeResult],
                 problems: list[Problem]) -> None:
    """Check every Linear's `tie_to` against the Embedding it names, in the same graph, and
    count the shared table once: it is the Embedding's."""
    for node in graph.nodes:
        target = getattr(node.params, "tie_to", None) if node.type == "Linear" else None
        result = results[node.id]
        if target is None or result.status != "ok" or result.ctor is None:
            continue
        other = next((n for n in graph.nodes if n.id == target), None)
        if other is None or other.type != "Embedding":
            what = "no node" if other is None else f"a {other.type}"
            problems.append(Problem(
                f"tie_to names {target!r}, but that is {what} in this graph: name an "
                "Embedding of the same graph, whose table this Linear's weight becomes",
                node.id, "tie_to"))
            result.status = "error"
            continue
        embedded = results[target]
        if embedded.ctor is None:
            continue  # the Embedding has its own problem, reported on it
        vocabulary, width = embedded.ctor.args[:2]
        in_features, out_features = result.ctor.args[:2]
        if (in_features, out_features) != (width, vocabulary):
            problems.append(Problem(
                f"a weight tied to {target} must be [{vocabulary}, {width}] (its "
                f"num_embeddings × embedding_dim), but this Linear's is [{out_features}, "
                f"{in_features}]: set out_features to {vocabulary} and feed it vectors of "
                f"width {width}", node.id, "tie_to"))
            result.status = "error"
            continue
        result.tied_to = target
        result.params -= vocabulary * width
        result.trainable_params -= vocabulary * width


GPT2_STD = 0.02


def plan_init(graph: Graph, analysis: Analysis) -> None:
    """Decide how each module's weights start (`NodeResult.init`), from its `init` parameter
    and the graph's Init node. The GPT-2 scheme gives the projections that write into the
    residual stream std/√N, N counting them over the whole model, Repeat copies included."""
    default = next((n.params for n in graph.nodes if n.type == "Init" and n.params), None)
    counted: list[int] = []  # N, counted once and only when a node asks for the scheme

    def residual_count() -> int:
        if not counted:
            counted.append(_count_residual(graph, analysis))
        return counted[0]

    def visit(g: Graph, a: Analysis) -> None:
        for node in g.nodes:
            result = a.nodes.get(node.id)
            if result is None:
                continue
            if result.body is not None and node.graph is not None:
                visit(node.graph, result.body)
                continue
            scheme = getattr(node.params, "init", None)
            if result.ctor is None or scheme is None:
                continue
            std = node.params.init_std  # type: ignore[union-attr]
            if scheme == "graph":
                if default is None:
                    continue
                scheme, std = default.scheme, default.std  # type: ignore[attr-defined]
            if scheme == "pytorch":
                continue
            if scheme == "normal":
                result.init = InitSpec(std)
                continue
            residual = _residual_parts(node, g, result)
            result.init = InitSpec(
                std, std / max(residual_count(), 1) ** 0.5 if residual else None, residual)

    visit(graph, analysis)


def _residual_parts(node: Node, graph: Graph, result: NodeResult) -> tuple[str, ...]:
    """The submodules of this node's module that write into the residual stream: those its
    module class names, or the module itself for a Linear whose result an Add takes
    (through Dropouts)."""
    assert result.ctor is not None
    named = getattr(result.ctor.cls, "residual_projections", ())
    if named:
        return tuple(named)
    if node.type == "Linear" and _feeds_add(node.id, graph):
        return ("",)
    return ()


def _feeds_add(node_id: str, graph: Graph) -> bool:
    todo, seen = [node_id], set()
    while todo:
        current = todo.pop()
        for dst in graph.consumers.get(current, ()):
            kind = graph.node(dst).type
            if kind == "Add":
                return True
            if kind == "Dropout" and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return False


def _count_residual(graph: Graph, analysis: Analysis) -> int:
    count = 0
    for node in graph.nodes:
        result = analysis.nodes.get(node.id)
        if result is None:
            continue
        if result.body is not None and node.graph is not None:
            count += (result.times or 1) * _count_residual(node.graph, result.body)
        elif result.ctor is not None:
            count += len(_residual_parts(node, graph, result))
    return count


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


# Building for real.


def class_name(text: str | None, fallback: str) -> str:
    """`tiny-gpt` -> `TinyGpt`: a Python class name from a human title, made of ASCII
    letters and digits only, whatever the title holds."""
    words = re.findall(r"[A-Za-z0-9]+", text or "")
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name or not name[0].isalpha() or keyword.iskeyword(name):  # `none` -> `ModelNone`
        name = fallback + name
    return name


# Names the code made from a graph may not give a port's value: besides the graph's own ids,
# what a module or a generated file already binds (keywords, builtins, `self`, the modules
# and layer classes it imports, the globals of torch.fx's generated code).
_TAKEN_NAMES = (
    RESERVED_IDS | set(keyword.kwlist) | set(dir(builtins))
    | {name for name, obj in vars(layers).items() if isinstance(obj, type)}
    | {"math", "torch", "F", "nn", "operator"}
    | {"inf", "nan", "NoneType", "device", "fx_pytree", "pytree"})


def value_names(graph: Graph) -> dict[Endpoint, str]:
    """The Python name of every value the graph's nodes give: a node id for a node of one
    output, and `node_port` for each port of a node of several (a Split's `qkv_q`).

    Node ids and port names are identifiers, but `node_port` could still be another node's id
    (`qkv` port `q` against a node `qkv_q`), or a builtin: a taken name gets `_2`, `_3`, ...
    until it is free. Every id of the graph is taken from the start, so a port's name never
    takes an id, whatever the order of the nodes. The fx graph of `materialize` and the
    standalone file of `export_pytorch` both use these names.
    """
    taken = {n.id for n in graph.nodes} | _TAKEN_NAMES
    names: dict[Endpoint, str] = {}
    for node in graph.nodes:
        if node.type == "Output":
            continue
        ports = node.output_ports
        if len(ports) == 1:
            names[Endpoint(node.id, ports[0])] = node.id
            continue
        for port in ports:
            wanted = candidate = f"{node.id}_{port}"
            n = 2
            while candidate in taken:
                candidate, n = f"{wanted}_{n}", n + 1
            taken.add(candidate)
            names[Endpoint(node.id, port)] = candidate
    return names


def materialize(graph: Graph, analysis: Analysis, device: torch.device | str,
                name: str | None = None, *, as_block: bool = False) -> torch.fx.GraphModule:
    """Build every module for real (in topological order) and wire them with torch.fx.

    The model returns a tensor for one Output, a dict keyed by Output id for several; the
    graph of a block from My blocks (`as_block`) returns a tuple in Output order instead,
    like every block of several output ports."""
    root = nn.Module()
    fx_graph = torch.fx.Graph()
    env: dict[Endpoint, torch.fx.Node] = {}
    incoming_of = graph.incoming
    names = value_names(graph)
    for node in graph.nodes:
        if node.type == "Input":
            env[Endpoint(node.id, "out")] = fx_graph.placeholder(node.id)
            continue
        if node.type in ("Output", "Init"):
            continue
        result = analysis.nodes[node.id]
        module: nn.Module
        if node.type == "Repeat":
            assert node.graph is not None and result.body is not None and result.times
            body_name = class_name(node.id, "Block")
            module = nn.Sequential(*(
                materialize(node.graph, result.body, device, body_name)
                for _ in range(result.times)))
        elif node.type == "Custom":
            assert node.graph is not None and result.body is not None
            module = materialize(node.graph, result.body, device,
                                 class_name(node.params.name, "Block"),  # type: ignore[union-attr]
                                 as_block=True)
        else:
            assert result.ctor is not None, node.id
            with torch.device(device):
                module = result.ctor.build()
                if result.init is not None:
                    layers.init_weights(module, **result.init.kwargs())  # type: ignore[arg-type]
        root.add_module(node.id, module)
        wired = incoming_of[node.id]
        args = tuple(env[wired[port]] for port in node.input_ports)
        call = fx_graph.call_module(node.id, args)
        ports = node.output_ports
        if len(ports) == 1:
            env[Endpoint(node.id, ports[0])] = call
            continue
        for i, port in enumerate(ports):
            endpoint = Endpoint(node.id, port)
            env[endpoint] = fx_graph.create_node(
                "call_function", operator.getitem, (call, i), name=names[endpoint])
    for node in graph.nodes:
        tied = analysis.nodes[node.id].tied_to
        if tied is not None:
            root.get_submodule(node.id).weight = root.get_submodule(tied).weight
    outputs = graph.outputs
    if len(outputs) == 1:
        fx_graph.output(env[incoming_of[outputs[0].id]["in"]])
    elif as_block:
        fx_graph.output(tuple(env[incoming_of[o.id]["in"]] for o in outputs))
    else:
        fx_graph.output({o.id: env[incoming_of[o.id]["in"]] for o in outputs})
    return torch.fx.GraphModule(root, fx_graph, class_name=name or class_name(graph.name, "Model"))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Same seed, same weights; the caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
