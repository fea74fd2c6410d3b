"""From a parsed graph to facts (`analyze`) and to a runnable module (`materialize`).

`analyze` walks the graph in topological order and, for every node, asks its block for the
module recipe, builds the module on the meta device and runs it on meta tensors of batch
one: output shapes, parameter counts and FLOPs come from the very modules that will run,
without allocating anything. A `Repeat` body is analysed once and counted `times`.

`materialize` then builds the same recipes for real and wires them into a `torch.fx` graph
whose node names are the graph's ids.
"""

from __future__ import annotations

import contextlib
import keyword
import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field, fields

import torch
import torch.fx
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .blocks import Block, Ctor, Incoming, Refusal, TensorSpec
from .errors import GraphError, Problem
from .graph import Endpoint, Graph, Node
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
    """What one meta run of a module told us."""

    spec: TensorSpec
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


def analyze(graph: Graph, limits: Limits, *, flops: bool = True) -> Analysis:
    budget = _Budget(limits)
    counter = FlopCounterMode(display=False) if flops else None
    with torch.no_grad(), counter if counter is not None else contextlib.nullcontext():
        analysis = _analyze(graph, budget, counter, feed=None)
    if analysis.activation_bytes > limits.max_activation_bytes:
        analysis.problems.append(Problem(
            f"one sample's forward pass keeps about {human_bytes(analysis.activation_bytes)} of "
            f"activations; the limit is {human_bytes(limits.max_activation_bytes)} "
            "(SHIPYARD_MAX_ACTIVATION_BYTES)"))
    return analysis


def _analyze(graph: Graph, budget: _Budget, counter: FlopCounterMode | None,
             feed: Incoming | None) -> Analysis:
    """`feed` is what enters a nested graph's Input; None at the top level."""
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
        if node.type != "Input" and len(wired) < len(node.block.inputs):
            result.status = "error"  # an input not connected: already reported on this node
            continue
        if any(src not in specs for src in wired.values()):
            result.status = "skipped"
            continue
        incoming = {port: Incoming(specs[src], _source(src, graph)) for port, src in wired.items()}
        result.inputs = {port: inc.spec for port, inc in incoming.items()}
        try:
            if node.type == "Input":
                spec = _input_spec(node, feed)
                result.flops = 0 if counter is not None else None
            elif node.type == "Output":
                result.flops = 0 if counter is not None else None
                continue
            elif node.type == "Repeat":
                spec = _analyze_repeat(node, result, incoming, budget, counter, problems)
            else:
                spec = _analyze_block(node, result, incoming, budget, counter)
        except Refusal as refusal:
            problems.append(Problem(refusal.message, node.id, refusal.field))
            result.status = "error"
            continue
        except _BodyFailed:
            result.status = "error"  # its nested problems are listed, each by its path
            continue
        too_big = [d for d in spec.shape if d > budget.limits.max_dim]
        if too_big:
            problems.append(Problem(
                f"its output {spec.text()} has a dimension of {max(too_big):,}; the limit is "
                f"{budget.limits.max_dim:,} (SHIPYARD_MAX_DIM)", node.id))
            result.status = "error"
            continue
        endpoint = Endpoint(node.id, node.block.outputs[0])
        specs[endpoint] = spec
        result.outputs = {endpoint.port: spec}
        if node.type != "Repeat":
            result.activation_bytes = spec.numel * DTYPES[spec.dtype].itemsize

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
            f"{feed.spec.describe()}; leave the shape empty inside a Repeat", "shape")
    return feed.spec


def _analyze_block(node: Node, result: NodeResult, incoming: dict[str, Incoming],
                   budget: _Budget, counter: FlopCounterMode | None) -> TensorSpec:
    block = node.block
    ctor = block.construct(node.params, incoming)
    specs = tuple(incoming[port].spec for port in block.inputs)
    key = _measure_key(ctor, specs)
    measured = budget.measured.get(key) if key is not None else None
    if measured is None:
        measured = _measure(block, ctor, incoming, specs, budget.limits, counter)
        if key is not None:
            budget.measured[key] = measured
    result.params = measured.params
    result.trainable_params = measured.trainable_params
    result.flops = measured.flops
    result.attention = block.shows_attention(node.params, measured.spec)
    _charge(node, result.params, budget)
    result.ctor = ctor
    return measured.spec


def _measure_key(ctor: Ctor, specs: tuple[TensorSpec, ...]) -> Hashable | None:
    key = (ctor.cls, ctor.args, tuple(sorted(ctor.kwargs.items())), specs)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _measure(block: Block, ctor: Ctor, incoming: dict[str, Incoming],
             specs: tuple[TensorSpec, ...], limits: Limits,
             counter: FlopCounterMode | None) -> _Measured:
    """Build the module on the meta device and run it once, on meta tensors of batch one."""
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
    if not isinstance(out, torch.Tensor):
        raise Refusal(f"{block.type} gave {type(out).__name__}, not a tensor")
    spec = TensorSpec(tuple(out.shape[1:]), DTYPE_NAMES.get(out.dtype, str(out.dtype)))
    return _Measured(spec, params, trainable, flops)


def _analyze_repeat(node: Node, result: NodeResult, incoming: dict[str, Incoming],
                    budget: _Budget, counter: FlopCounterMode | None,
                    problems: list[Problem]) -> TensorSpec:
    assert node.graph is not None
    times: int = node.params.times  # type: ignore[union-attr]
    feed = incoming["in"]
    before_params = budget.params
    body = _analyze(node.graph, budget, counter, feed=feed)
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
    return src.node if len(graph.node(src.node).block.outputs) == 1 else str(src)


def _unused_warnings(graph: Graph) -> list[Problem]:
    used = {src.node for ports in graph.incoming.values() for src in ports.values()}
    return [
        Problem(f"the output of {n.id} is not used: wire it onward or delete the node", n.id)
        for n in graph.nodes if n.type != "Output" and n.id not in used
    ]


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


def materialize(graph: Graph, analysis: Analysis, device: torch.device | str,
                name: str | None = None) -> torch.fx.GraphModule:
    """Build every module for real (in topological order) and wire them with torch.fx."""
    root = nn.Module()
    fx_graph = torch.fx.Graph()
    env: dict[Endpoint, torch.fx.Node] = {}
    incoming_of = graph.incoming
    for node in graph.nodes:
        if node.type == "Input":
            env[Endpoint(node.id, "out")] = fx_graph.placeholder(node.id)
            continue
        if node.type == "Output":
            continue
        result = analysis.nodes[node.id]
        module: nn.Module
        if node.type == "Repeat":
            assert node.graph is not None and result.body is not None and result.times
            body_name = class_name(node.id, "Block")
            module = nn.Sequential(*(
                materialize(node.graph, result.body, device, body_name)
                for _ in range(result.times)))
        else:
            assert result.ctor is not None, node.id
            with torch.device(device):
                module = result.ctor.build()
        root.add_module(node.id, module)
        wired = incoming_of[node.id]
        args = tuple(env[wired[port]] for port in node.block.inputs)
        env[Endpoint(node.id, node.block.outputs[0])] = fx_graph.call_module(node.id, args)
    outputs = graph.outputs
    if len(outputs) == 1:
        fx_graph.output(env[incoming_of[outputs[0].id]["in"]])
    else:
        fx_graph.output({o.id: env[incoming_of[o.id]["in"]] for o in outputs})
    return torch.fx.GraphModule(root, fx_graph, class_name=name or class_name(graph.name, "Model"))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Same seed, same weights; the caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
