"""Benchmark runs: a graph timed on every backend at several batch sizes, and the cost of
each of its nodes (docs/benchmarks.md says what each figure means and how it is measured).

Map of this file: `BenchmarkSettings`; `machine_info`; the backends (`PREPARERS`: each turns
the eager model into a callable, or raises the reason it cannot); the timing loop; the
per-node costs (`node_costs`); `benchmark_events`, the generator a worker and a script
drive, and `run_benchmark`, which collects its events into a `BenchmarkResult`.

Events are plain dicts whose keys are those of compute.jobs.events' ProgressEvent,
BenchmarkEvent and NodeCostsEvent (without seq, step and time, which the job adds). No
Django here.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import torch
from pydantic import Field, field_validator
from torch import nn

from .build import DTYPES, Analysis, CheckedGraph, analyze
from .export import example_inputs, export_onnx
from .graph import NO_MODULE
from .limits import Limits
from .settings import RunSettings, basic, refuse
from .training import pick_device

Backend = Literal["eager", "compile", "onnxruntime", "eager_bf16", "compile_bf16"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
GPU_ONLY = ("eager_bf16", "compile_bf16")
MAX_BATCH = 4096
MAX_BATCH_SIZES = 8  # torch.compile keeps one specialisation per batch size (its limit is 8)

# A backend's outputs are within tolerance when the largest absolute difference to eager is
# at most this fraction of the largest absolute eager output (and of 1, for outputs near 0):
# float32 backends only reorder sums (1e-3 is far above their rounding); bfloat16 keeps
# 8 bits of mantissa, so a few layers drift by a few percent.
TOLERANCE: dict[str, float] = {"eager": 0.0, "compile": 1e-3, "onnxruntime": 1e-3,
                               "eager_bf16": 5e-2, "compile_bf16": 5e-2}
PROGRESS_SECONDS = 0.2  # a progress event at most this often ...
PROGRESS_FRACTION = 0.1  # ... and at most every tenth of the repetitions
ERROR_CHARS = 300  # an error sentence is cut to this length

Outputs = list[torch.Tensor]
Runner = Callable[[tuple[torch.Tensor, ...]], Any]


def _batch_sizes_ok(value: Any) -> Any:
    if not isinstance(value, list):
        return value  # the type check names it
    if not 1 <= len(value) <= MAX_BATCH_SIZES:
        raise refuse("batch_sizes", f"must list 1 to {MAX_BATCH_SIZES} batch sizes, got "
                     f"{len(value)}")
    for size in value:
        if type(size) is not int:
            raise refuse("batch_sizes", f"must hold whole numbers, got {size!r}")
        if not 1 <= size <= MAX_BATCH:
            raise refuse("batch_sizes", f"must each be at least 1 and at most {MAX_BATCH:,}, "
                         f"got {size}")
    if len(set(value)) != len(value):
        twice = sorted({s for s in value if value.count(s) > 1})
        raise refuse("batch_sizes", f"must not repeat a size, got {twice[0]} twice")
    return value


def _backends_ok(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    if not value:
        raise refuse("backends", "must name at least one backend")
    for name in value:
        if name not in BACKENDS:
            shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:40] + "…"
            raise refuse("backends", f"must each be one of {', '.join(BACKENDS)}, got {shown}")
    if len(set(value)) != len(value):
        twice = next(b for b in value if value.count(b) > 1)
        raise refuse("backends", f"must not repeat a backend, got {twice} twice")
    return value


class BenchmarkSettings(RunSettings):
    """How to benchmark. The defaults measure a starter on every backend in under a minute
    on a CPU (torch.compile's first compilation is most of it)."""

    kind: ClassVar[str] = "benchmark"
    title: ClassVar[str] = "Benchmark"
    summary: ClassVar[str] = ("Time the graph on each backend (eager, torch.compile, ONNX "
                              "Runtime, bf16 on a GPU) at several batch sizes: latency, "
                              "throughput, memory, FLOP/s, output agreement, and the cost of "
                              "each node.")

    batch_sizes: list[int] = Field(
        default=[1, 8, 64], title="Batch sizes",
        json_schema_extra={**basic(), "minItems": 1, "maxItems": MAX_BATCH_SIZES,
                           "uniqueItems": True,
                           "items": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH}},
        description=f"1 to {MAX_BATCH_SIZES} sizes, each at least 1 and at most "
        f"{MAX_BATCH:,}, none twice.")
    backends: list[Backend] = Field(
        default=list(BACKENDS), title="Backends",
        json_schema_extra={**basic(), "minItems": 1, "uniqueItems": True},
        description="eager, compile (torch.compile), onnxruntime; eager_bf16 and "
        "compile_bf16 (bf16 autocast) run on a GPU worker only.")
    warmup: int = Field(default=3, ge=0, le=100, title="Warm-up repetitions",
                        description="Untimed forward passes before the measured ones.")
    repeats: int = Field(default=20, ge=1, le=1000, title="Measured repetitions",
                         json_schema_extra=basic(),
                         description="Timed forward passes; latency is their median and "
                         "95th percentile.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", title="Device", json_schema_extra=basic(),
        description="auto: cuda when there is one. Also picks the run's queue.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, title="Seed",
                      description="The random inputs and (without trained weights) the "
                      "initial weights.")
    per_node: bool = Field(default=True, title="Per-node cost",
                           description="Also time each node (eager, with module hooks) at "
                           "each batch size.")

    _check_batch_sizes = field_validator("batch_sizes", mode="before")(_batch_sizes_ok)
    _check_backends = field_validator("backends", mode="before")(_backends_ok)


# The machine.


def machine_info(device: torch.device | str) -> dict[str, Any]:
    """What the figures were measured on: CPU model and logical cores, the GPU and its
    memory (when the device is cuda), and the library versions."""
    device = torch.device(device)
    gpu = gpu_memory = None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        gpu, gpu_memory = props.name, int(props.total_memory)
    try:
        import onnxruntime
        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {"cpu": _cpu_model(), "cores": os.cpu_count() or 1, "gpu": gpu,
            "gpu_memory": gpu_memory, "device": device.type, "torch": torch.__version__,
            "onnxruntime": ort_version, "python": platform.python_version()}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


# Peak memory.


class _PeakMemory:
    """The peak memory of one measurement. CUDA: `max_memory_allocated`, its counter reset
    at the start. CPU: the process's peak resident set (Linux: VmHWM, reset at the start by
    writing 5 to /proc/self/clear_refs; elsewhere the lifetime peak, ru_maxrss)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")

    def peak(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


# Backends: each makes a runner from the eager model, or raises why it cannot.


@dataclass
class _Context:
    graph: CheckedGraph
    model: nn.Module  # the eager model, in eval mode, on `device`
    device: torch.device
    workdir: Path


class BackendUnavailable(Exception):
    """A backend cannot run here (bf16 on a CPU); the message says why, in one sentence."""


def _eager(ctx: _Context) -> Runner:
    return lambda args: ctx.model(*args)


def _compiled(ctx: _Context) -> Runner:
    _reset_dynamo()
    return _runner(torch.compile(ctx.model, dynamic=False))


def _onnxruntime(ctx: _Context) -> Runner:
    import onnxruntime as ort

    path = ctx.workdir / "model.onnx"
    model = ctx.model
    if ctx.device.type != "cpu":  # export from a CPU copy: export_onnx feeds CPU inputs
        model = _cpu_copy(ctx)
    export_onnx(model, path)
    providers = ["CPUExecutionProvider"]
    if ctx.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=providers)
    names = [i.name for i in session.get_inputs()]

    def run(args: tuple[torch.Tensor, ...]) -> Any:
        feed = {n: a.detach().cpu().numpy() for n, a in zip(names, args, strict=True)}
        return [torch.from_numpy(o) for o in session.run(None, feed)]

    return run


def _eager_bf16(ctx: _Context) -> Runner:
    _need_gpu(ctx, "eager_bf16")
    return _autocast(ctx.device, lambda args: ctx.model(*args))


def _compiled_bf16(ctx: _Context) -> Runner:
    _need_gpu(ctx, "compile_bf16")
    _reset_dynamo()
    return _autocast(ctx.device, _runner(torch.compile(ctx.model, dynamic=False)))


def _need_gpu(ctx: _Context, name: str) -> None:
    if ctx.device.type != "cuda":
        raise BackendUnavailable(f"{name} runs on a GPU worker only (bf16 autocast needs "
                                 "CUDA); this run is on the CPU.")


def _runner(fn: Callable[..., Any]) -> Runner:
    return lambda args: fn(*args)


def _autocast(device: torch.device, run: Runner) -> Runner:
    def autocast_run(args: tuple[torch.Tensor, ...]) -> Any:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return run(args)

    return autocast_run


def _reset_dynamo() -> None:
    """Forget earlier compilations, so that each compiled backend starts with room for one
    specialisation per batch size (and compile_bf16 does not run on compile's cache)."""
    torch._dynamo.reset()


def _cpu_copy(ctx: _Context) -> nn.Module:
    from . import compile_graph

    copy = compile_graph(ctx.graph)
    copy.load_state_dict({k: v.cpu() for k, v in ctx.model.state_dict().items()})
    return copy.eval()


# Tests replace an entry to make a backend fail (tests/engine/test_benchmark.py).
PREPARERS: dict[str, Callable[[_Context], Runner]] = {
    "eager": _eager,
    "compile": _compiled,
    "onnxruntime": _onnxruntime,
    "eager_bf16": _eager_bf16,
    "compile_bf16": _compiled_bf16,
}


# Outputs and errors.


def _tensors(out: Any) -> Outputs:
    """A model's output as a list of tensors: a tensor, a dict keyed by Output id (in
    graph order), or ONNX Runtime's list."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return list(out.values())
    return list(out)


def _max_abs_diff(got: Outputs, want: Outputs) -> float:
    if len(got) != len(want):
        return float("inf")
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        g, w = g.detach().float().cpu(), w.detach().float().cpu()
        if g.shape != w.shape:
            return float("inf")
        if g.numel():
            diff = (g - w).abs().nan_to_num(nan=float("inf"))
            worst = max(worst, float(diff.max()))
    return worst


def _within(backend: str, diff: float, want: Outputs) -> bool:
    scale = max([1.0, *(float(w.detach().float().abs().max()) for w in want if w.numel())])
    return diff <= TOLERANCE[backend] * scale


def one_sentence(exc: BaseException) -> str:
    """An exception as one sentence: its first line (or its type), at most ERROR_CHARS."""
    if isinstance(exc, BackendUnavailable):
        text = str(exc)
    else:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 1] + "…"


# Timing.


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, -(-len(ordered) * q // 100) - 1))
    return ordered[int(index)]


class Stopped(Exception):
    """should_stop() said so: the benchmark ends here."""


@dataclass
class _Progress:
    backend: str
    batch: int
    total: int
    last_done: int = -1
    last_time: float = 0.0

    def event(self, done: int) -> dict[str, Any] | None:
        """A progress event for `done`, or None when the last one was too recent."""
        now = time.perf_counter()
        step = max(1, int(self.total * PROGRESS_FRACTION))
        if (self.last_done >= 0 and done < self.total
                and (done - self.last_done < step or now - self.last_time < PROGRESS_SECONDS)):
            return None
        self.last_done, self.last_time = done, now
        return {"type": "progress", "backend": self.backend, "batch": self.batch,
                "done": done, "total": self.total}


def _timed(run: Callable[[], Any], device: torch.device, warmup: int, repeats: int,
           progress: _Progress, should_stop: Callable[[], bool],
           ) -> Generator[dict[str, Any], None, list[float]]:
    """Yields progress events; returns the seconds of each measured repetition.

    Between two passes it does as little as it can (a stop check, a comparison), so that
    the machinery disturbs the caches the next pass finds as little as possible: the
    progress clock is read only once a tenth of the repetitions more is done."""
    times: list[float] = []
    cuda = device.type == "cuda"
    clock, sync = time.perf_counter, torch.cuda.synchronize
    step = max(1, int(progress.total * PROGRESS_FRACTION))
    total = warmup + repeats
    due = min(step, total)
    for done in range(1, total + 1):
        if should_stop():
            raise Stopped
        if cuda:
            sync(device)
        t0 = clock()
        run()
        if cuda:
            sync(device)
        times.append(clock() - t0)
        if done >= due:
            event = progress.event(done)
            if event is not None:
                yield event
                due = min(done + step, total)
    return times[warmup:]


# Per-node costs.


@dataclass
class _NodeSlot:
    node: str  # the path: "fc", or "blocks.0.attn" inside a Repeat
    parent: str | None
    type: str
    flops: int  # for a batch of one
    children: list[_NodeSlot] = field(default_factory=list)  # a Repeat's copies' nodes


def _slots(analysis: Analysis, graph: Any, prefix: str = "",
           parent: str | None = None) -> list[_NodeSlot]:
    """Every node that runs (not Input, Output nor Init), as modules are named: Repeat copies are
    `<repeat>.<copy>.<inner>`, nested Repeats alike."""
    found = []
    for node in graph.nodes:
        if node.type in NO_MODULE:
            continue
        result = analysis.nodes[node.id]
        path = prefix + node.id
        slot = _NodeSlot(path, parent, node.type, int(result.flops or 0))
        found.append(slot)
        if node.type == "Repeat" and result.body is not None and result.times:
            for copy in range(result.times):
                slot.children += _slots(result.body, node.graph, f"{path}.{copy}.", path)
        elif node.type == "Custom" and result.body is not None:  # its graph, as a module
            slot.children += _slots(result.body, node.graph, f"{path}.", path)
    return found


def _flatten(slots: list[_NodeSlot]) -> Iterator[_NodeSlot]:
    for slot in slots:
        yield slot
        yield from _flatten(slot.children)


class _Hooks:
    """Forward pre- and post-hooks on each node's module (not on a Repeat's Sequential: its
    time is the sum of its copies' nodes), attached for a pass and detached after it. CPU:
    perf_counter; CUDA: events, read after the pass, so that timing adds no synchronisation
    inside it."""

    def __init__(self, model: nn.Module, leaves: list[_NodeSlot], device: torch.device):
        named = dict(model.named_modules())
        self.modules = [(slot.node, named[slot.node]) for slot in leaves]
        self.cuda = device.type == "cuda"
        self.starts: dict[str, Any] = {}
        self.ends: dict[str, Any] = {}
        self.handles: list[Any] = []

    def attach(self) -> None:
        self.starts.clear()
        self.ends.clear()
        for name, module in self.modules:
            self.handles.append(module.register_forward_pre_hook(self._pre(name)))
            self.handles.append(module.register_forward_hook(self._post(name)))

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _stamp(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _pre(self, name: str) -> Callable[..., None]:
        def pre(module: nn.Module, args: Any) -> None:
            self.starts[name] = self._stamp()
        return pre

    def _post(self, name: str) -> Callable[..., None]:
        def post(module: nn.Module, args: Any, out: Any) -> None:
            self.ends[name] = self._stamp()
        return post

    def read(self) -> dict[str, float]:
        """Seconds per node in the last hooked pass."""
        if self.cuda:
            torch.cuda.synchronize()
            return {n: self.starts[n].elapsed_time(self.ends[n]) / 1e3 for n in self.ends}
        return {n: self.ends[n] - self.starts[n] for n in self.ends}


def _node_costs(model: nn.Module, slots: list[_NodeSlot], args: tuple[torch.Tensor, ...],
                batch: int, device: torch.device, warmup: int, repeats: int,
                should_stop: Callable[[], bool]) -> dict[str, Any]:
    """The node_costs event of one batch size: each node's median time over `repeats`
    hooked passes, its share of the time in nodes, its FLOPs and FLOP/s. Each hooked pass
    follows a pass without hooks, so that their medians give the hooks' overhead."""
    leaves = [s for s in _flatten(slots) if not s.children]
    hooks = _Hooks(model, leaves, device)
    per_node: dict[str, list[float]] = {s.node: [] for s in leaves}
    bare: list[float] = []
    hooked: list[float] = []

    def timed_pass() -> float:
        _sync(device)
        t0 = time.perf_counter()
        model(*args)
        _sync(device)
        return time.perf_counter() - t0

    with torch.no_grad():
        for i in range(warmup + repeats):
            if should_stop():
                raise Stopped
            plain = timed_pass()
            hooks.attach()
            try:
                with_hooks = timed_pass()
            finally:
                hooks.detach()
            seconds = hooks.read()
            if i >= warmup:
                bare.append(plain)
                hooked.append(with_hooks)
                for name, s in seconds.items():
                    per_node[name].append(s)
    ms = {name: statistics.median(s) * 1e3 if s else 0.0 for name, s in per_node.items()}

    def total_ms(slot: _NodeSlot) -> float:
        if slot.children:
            return sum(total_ms(c) for c in slot.children if c.parent == slot.node)
        return ms[slot.node]

    def total_flops(slot: _NodeSlot) -> int:
        if slot.children:
            return sum(total_flops(c) for c in slot.children if c.parent == slot.node)
        return slot.flops * batch

    in_nodes = sum(total_ms(s) for s in slots) or 1.0
    rows = []
    for slot in _flatten(slots):
        node_ms, flops = total_ms(slot), total_flops(slot)
        rows.append({"node": slot.node, "parent": slot.parent, "type": slot.type,
                     "ms": node_ms, "share": node_ms / in_nodes, "flops": flops,
                     "flops_per_s": flops / (node_ms / 1e3) if node_ms > 0 else None})
    with_hooks_ms, bare_ms = statistics.median(hooked) * 1e3, statistics.median(bare) * 1e3
    overhead = with_hooks_ms / bare_ms - 1 if bare_ms > 0 else 0.0
    clock = "CUDA events" if device.type == "cuda" else "perf_counter"
    method = (f"forward hooks (pre and post) on each node's module, {clock}; median of "
              f"{repeats} passes after {warmup} warm-up; share of the time in nodes; hooks: "
              f"{with_hooks_ms:.3g} ms a pass against {bare_ms:.3g} ms without "
              f"({overhead:+.1%})")
    return {"type": "node_costs", "backend": "eager", "batch": batch, "method": method,
            "nodes": rows}


# The benchmark.


def _row(backend: str, batch: int, error: str = "", **figures: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "type": "benchmark", "backend": backend, "batch": batch, "error": error,
        "latency_ms_median": None, "latency_ms_p95": None, "samples_per_s": None,
        "tokens_per_s": None, "peak_memory_bytes": None, "flops_per_s": None,
        "max_abs_diff": None, "within_tolerance": False}
    row.update(figures)
    return row


def _tokens_per_sample(graph: CheckedGraph) -> int | None:
    """Token models (an integer Input): the tokens in one sample."""
    for node in graph.inputs:
        params = node.params
        if not DTYPES[params.dtype].is_floating_point:  # type: ignore[union-attr]
            return math.prod(params.shape)  # type: ignore[union-attr]
    return None


def benchmark_events(graph: CheckedGraph, settings: BenchmarkSettings, *,
                     state_dict: dict[str, torch.Tensor] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    """Benchmark `graph` (with `state_dict`'s weights, else seeded initial ones) as
    `settings` say, yielding plain dicts as it goes:

    one {"type": "machine", **machine_info}; then per backend, per batch size: progress
    events ({"type": "progress", "backend", "batch", "done", "total"}, at most every tenth
    of the repetitions and every 0.2 s), then one {"type": "benchmark", ...} row (its
    `error` set and figures None when the backend cannot run); with `per_node`, after each
    eager row, a {"type": "node_costs", ...} event for that batch size (its `method`
    "failed: <reason>" and no nodes when the hooked passes fail).

    `should_stop` is asked before every repetition; when it says True the generator ends
    (the measurement in progress is dropped). A `state_dict` that does not fit the graph
    raises (ValueError) before anything is measured.
    """
    stop = should_stop or (lambda: False)
    device = pick_device(settings.device)
    from . import compile_graph

    model = compile_graph(graph, seed=settings.seed, device=device)
    if state_dict is not None:
        try:
            model.load_state_dict({k: v.to(device) for k, v in state_dict.items()})
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ValueError(f"the weights do not fit this graph: {one_sentence(exc)}") from None
    model.eval()
    yield {"type": "machine", **machine_info(device)}

    analysis = analyze(graph, Limits(max_params=sys.maxsize, max_dim=sys.maxsize,
                                     max_activation_bytes=sys.maxsize), flops=True)
    flops_per_sample = analysis.flops
    tokens = _tokens_per_sample(graph)
    slots = _slots(analysis, graph) if settings.per_node else []
    inputs = {b: example_inputs(graph, b, seed=settings.seed, device=device)
              for b in settings.batch_sizes}
    references: dict[int, Outputs | None] = {}
    memory = _PeakMemory(device)
    total = settings.warmup + settings.repeats

    def reference(batch: int) -> Outputs | None:
        if batch not in references:
            try:
                with torch.no_grad():
                    references[batch] = [t.detach().cpu() for t in
                                         _tensors(model(*inputs[batch]))]
            except Exception:
                references[batch] = None
        return references[batch]

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as workdir:
        for backend in settings.backends:
            if stop():
                return
            ctx = _Context(graph, model, device, Path(workdir))
            try:
                runner: Runner | None = PREPARERS[backend](ctx)
                prepare_error = ""
            except Exception as exc:
                runner, prepare_error = None, one_sentence(exc)
            for batch in settings.batch_sizes:
                if runner is None:
                    yield _row(backend, batch, prepare_error)
                    continue
                progress = _Progress(backend, batch, total)
                first = progress.event(0)
                assert first is not None
                yield first
                args = inputs[batch]
                run = runner
                try:
                    with torch.no_grad():
                        out = _tensors(run(args))  # compiles, exports; not timed
                        want = reference(batch)
                        diff = 0.0 if backend == "eager" else (
                            _max_abs_diff(out, want) if want is not None else None)
                        del out
                        memory.start()
                        times = yield from _timed(functools.partial(run, args), device,
                                                  settings.warmup, settings.repeats,
                                                  progress, stop)
                        peak = memory.peak()
                except Stopped:
                    return
                except Exception as exc:
                    yield _row(backend, batch, one_sentence(exc))
                    continue
                median, p95 = statistics.median(times), _percentile(times, 95)
                within = (diff is not None and want is not None
                          and _within(backend, diff, want))
                yield _row(
                    backend, batch,
                    latency_ms_median=median * 1e3, latency_ms_p95=p95 * 1e3,
                    samples_per_s=batch / median,
                    tokens_per_s=batch * tokens / median if tokens else None,
                    peak_memory_bytes=None if backend == "onnxruntime" and device.type == "cuda"
                    else peak,
                    flops_per_s=(flops_per_sample * batch / median
                                 if flops_per_sample is not None else None),
                    max_abs_diff=diff, within_tolerance=within)
                if backend == "eager" and slots:
                    try:
                        costs = _node_costs(model, slots, args, batch, device,
                                            settings.warmup, settings.repeats, stop)
                    except Stopped:
                        return
                    except Exception as exc:  # the row above stands; say why none follow
                        costs = {"type": "node_costs", "backend": "eager", "batch": batch,
                                 "method": f"failed: {one_sentence(exc)}", "nodes": []}
                    yield costs


@dataclass
class BenchmarkResult:
    machine: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)  # benchmark events
    node_costs: list[dict[str, Any]] = field(default_factory=list)  # node_costs events
    stopped: bool = False  # should_stop ended it early

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "rows": self.rows, "node_costs": self.node_costs}


def run_benchmark(graph: CheckedGraph, settings: BenchmarkSettings, *,
                  state_dict: dict[str, torch.Tensor] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  on_event: Callable[[dict[str, Any]], None] | None = None) -> BenchmarkResult:
    """Drive `benchmark_events` to its end, handing every event to `on_event`, and collect
    the machine, the rows and the node costs."""
    result = BenchmarkResult(machine={})
    stop = should_stop or (lambda: False)
    asked = False

    def stop_asked() -> bool:
        nonlocal asked
        asked = asked or stop()
        return asked

    for event in benchmark_events(graph, settings, state_dict=state_dict,
                                  should_stop=stop_asked):
        if on_event is not None:
            on_event(event)
        kind = event["type"]
        if kind == "machine":
            result.machine = {k: v for k, v in event.items() if k != "type"}
        elif kind == "benchmark":
            result.rows.append(event)
        elif kind == "node_costs":
            result.node_costs.append(event)
    result.stopped = asked
    return result


__all__ = ["BACKENDS", "GPU_ONLY", "PREPARERS", "TOLERANCE", "BackendUnavailable",
           "BenchmarkResult", "BenchmarkSettings", "benchmark_events", "machine_info",
           "one_sentence", "run_benchmark"]
