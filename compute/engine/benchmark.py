"""TEMPORARY STAND-IN, written on branch bench-runs only so that the runs' side (compute/jobs)
can be built and tested before the real engine lands. The real module (branch bench-engine)
replaces this file whole at merge: nothing else may live here.

It follows the fixed interface crudely: eager timing only, every other backend an error
row, per-node costs as one row for the whole model.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field

from .build import CheckedGraph, materialize, seeded
from .export import example_inputs
from .settings import RunSettings

Backend = Literal["eager", "compile", "onnxruntime", "eager_bf16", "compile_bf16"]
BACKENDS: tuple[Backend, ...] = ("eager", "compile", "onnxruntime", "eager_bf16",
                                 "compile_bf16")


class BenchmarkSettings(RunSettings):
    """How to benchmark (stand-in)."""

    kind: ClassVar[str] = "benchmark"
    title: ClassVar[str] = "Benchmark"
    summary: ClassVar[str] = "Time the graph's forward pass on every backend (stand-in)."

    batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default=[1, 8, 64], min_length=1, max_length=8, title="Batch sizes",
        description="Stand-in.")
    backends: list[Backend] = Field(default=list(BACKENDS), min_length=1, max_length=5,
                                    title="Backends", description="Stand-in.")
    warmup: int = Field(default=3, ge=0, le=1000, title="Warm-up", description="Stand-in.")
    repeats: int = Field(default=20, ge=1, le=10_000, title="Repeats",
                         description="Stand-in.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", title="Device",
                                                   description="Stand-in.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, title="Seed", description="Stand-in.")
    per_node: bool = Field(default=True, title="Per-node cost", description="Stand-in.")


@dataclass
class BenchmarkResult:
    machine: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    node_costs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "rows": self.rows, "node_costs": self.node_costs}


def _row(backend: str, batch: int, error: str = "", **figures: Any) -> dict[str, Any]:
    keys = ("latency_ms_median", "latency_ms_p95", "samples_per_s", "tokens_per_s",
            "peak_memory_bytes", "flops_per_s", "max_abs_diff")
    return {"type": "benchmark", "backend": backend, "batch": batch, "error": error,
            **{k: figures.get(k) for k in keys}, "within_tolerance": not error}


def benchmark_events(graph: CheckedGraph, settings: BenchmarkSettings, *,
                     state_dict: dict[str, torch.Tensor] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    stop = should_stop or (lambda: False)
    device = torch.device("cuda" if settings.device == "cuda" or (
        settings.device == "auto" and torch.cuda.is_available()) else "cpu")
    yield {"type": "machine", "cpu": platform.processor() or platform.machine(),
           "cores": torch.get_num_threads(), "gpu": None, "gpu_memory": None,
           "device": str(device), "torch": torch.__version__, "onnxruntime": None,
           "python": platform.python_version()}
    with seeded(settings.seed):
        module = materialize(graph, graph.analysis, device)
    if state_dict is not None:
        module.load_state_dict(state_dict)
    module.eval()
    for backend in settings.backends:
        for batch in settings.batch_sizes:
            if stop():
                return
            if backend != "eager":
                yield _row(backend, batch, error=f"{backend} is not in the stand-in")
                continue
            inputs = example_inputs(graph, batch, seed=settings.seed, device=device)
            times = []
            total = settings.warmup + settings.repeats
            with torch.no_grad():
                for i in range(total):
                    if stop():
                        return
                    start = time.perf_counter()
                    module(*inputs)
                    if i >= settings.warmup:
                        times.append((time.perf_counter() - start) * 1000)
                    yield {"type": "progress", "backend": backend, "batch": batch,
                           "done": i + 1, "total": total}
            median = statistics.median(times)
            yield _row(backend, batch, latency_ms_median=median,
                       latency_ms_p95=sorted(times)[int(0.95 * (len(times) - 1))],
                       samples_per_s=batch / median * 1000, max_abs_diff=0.0)
    if settings.per_node and not stop():
        yield {"type": "node_costs", "backend": "eager", "batch": settings.batch_sizes[0],
               "method": "stand-in: the whole model as one node",
               "nodes": [{"node": n.id, "parent": None, "type": n.type, "ms": 0.0,
                          "share": 1 / len(graph.nodes), "flops": 0, "flops_per_s": None}
                         for n in graph.nodes]}


def run_benchmark(graph: CheckedGraph, settings: BenchmarkSettings, *,
                  state_dict: dict[str, torch.Tensor] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  on_event: Callable[[dict[str, Any]], None] | None = None) -> BenchmarkResult:
    result = BenchmarkResult()
    for event in benchmark_events(graph, settings, state_dict=state_dict,
                                  should_stop=should_stop):
        if on_event is not None:
            on_event(event)
        kind = event["type"]
        body = {k: v for k, v in event.items() if k != "type"}
        if kind == "machine":
            result.machine = body
        elif kind == "benchmark":
            result.rows.append(body)
        elif kind == "node_costs":
            result.node_costs.append(body)
    return result
