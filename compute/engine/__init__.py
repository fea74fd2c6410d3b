"""Shipyard's engine: graph files in, PyTorch modules, reports and exports out.

Pure PyTorch: importing it loads no Django, Celery or Channels module.

    from compute.engine import load_graph, compile_graph, inspect_graph
    graph = load_graph("model.json")       # GraphError lists every problem
    model = compile_graph(graph, seed=0)   # a torch.fx.GraphModule named by node ids
    report = inspect_graph(graph)          # shapes, parameters, FLOPs per node
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.fx

from .blocks import REGISTRY, TensorSpec, catalog
from .build import CheckedGraph, analyze, check, materialize, seeded
from .errors import GraphError, Problem
from .export import (
    CompiledInfo,
    compiled_info,
    example_inputs,
    export_onnx,
    export_pytorch,
    pytorch_source,
)
from .graph import (
    FORMAT,
    ID_PATTERN,
    MAX_VALUE_DEPTH,
    RESERVED_IDS,
    Graph,
    document_depth,
    module_count,
    parse_graph,
)
from .limits import Limits
from .report import build_report, render_table
from .starters import STARTER_DATASETS, STARTERS, load_starter, starter_names

GraphSource = Graph | dict[str, Any] | str | Path


def load_graph(source: GraphSource, *, limits: Limits | None = None) -> CheckedGraph:
    """Read and fully validate a graph (a dict, a JSON string, a path to a JSON file, or a
    `Graph` made by hand): a `CheckedGraph`, a `Graph` whose `analysis` holds every node's
    shapes and parameters.

    Raises `GraphError` carrying every problem found: structure, parameters, and the shapes
    and dtypes met when the model is built on the meta device.
    """
    if isinstance(source, CheckedGraph):
        return source
    limits = limits or Limits.from_env()
    if isinstance(source, Graph):
        return check(source, limits)
    graph, problems = parse_graph(source, limits)
    if problems or graph is None:
        raise GraphError(problems)
    return check(graph, limits)


def compile_graph(source: GraphSource, *, seed: int = 0, device: torch.device | str = "cpu",
                  limits: Limits | None = None) -> torch.fx.GraphModule:
    """Build the model for real: a `torch.fx.GraphModule` whose submodules and generated code
    use the node ids. The same graph and seed always give the same initial weights. A model
    with one Output returns a tensor; with several, a dict keyed by Output id."""
    graph = load_graph(source, limits=limits)
    with seeded(seed):
        module = materialize(graph, graph.analysis, device)
    module.meta["shipyard"] = CompiledInfo(graph, graph.analysis, seed)
    return module


def weight_shapes(source: GraphSource, *, limits: Limits | None = None
                  ) -> dict[str, tuple[int, ...]]:
    """The name and shape of every entry of the state dict `compile_graph` makes for a
    graph: what a weights file must hold to load into it. Built on the meta device (no
    memory, no compute)."""
    graph = load_graph(source, limits=limits)
    module = materialize(graph, graph.analysis, "meta")
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


def pytorch_code(source: GraphSource, *, limits: Limits | None = None) -> str:
    """The PyTorch file `export_pytorch` writes for the compiled graph (seed 0), made from
    the analysis alone: no module is built, so it costs what an inspection costs. Raises
    `GraphError` for a graph that is not valid."""
    graph = load_graph(source, limits=limits)
    return pytorch_source(CompiledInfo(graph, graph.analysis, 0))


def inspect_graph(source: GraphSource, *, flops: bool = True,
                  limits: Limits | None = None) -> dict[str, Any]:
    """The report of a graph, valid or not; never raises for a bad graph.

    `valid`, then per node (`nodes`, nested under a Repeat's `body`): status, input and
    output shapes with a leading "B", parameters, forward FLOPs for a batch of one; `totals`;
    `problems` (each with node, field, message) and `warnings`.
    """
    limits = limits or Limits.from_env()
    graph: Graph | None
    problems: list[Problem] = []
    if isinstance(source, Graph):
        graph = source
    else:
        graph, problems = parse_graph(source, limits)
    analysis = analyze(graph, limits, flops=flops) if graph is not None else None
    return build_report(graph, analysis, problems)


def block_catalog() -> dict[str, Any]:
    """What an editor needs to draw graphs the engine accepts (GET /api/blocks): the pattern
    a node id must match in full, the ids refused as reserved, and every block."""
    return {"id_pattern": ID_PATTERN.pattern, "reserved_ids": sorted(RESERVED_IDS),
            "blocks": catalog()}


__all__ = [
    "FORMAT",
    "MAX_VALUE_DEPTH",
    "REGISTRY",
    "STARTERS",
    "STARTER_DATASETS",
    "CheckedGraph",
    "CompiledInfo",
    "Graph",
    "GraphError",
    "Limits",
    "Problem",
    "TensorSpec",
    "block_catalog",
    "catalog",
    "compile_graph",
    "compiled_info",
    "document_depth",
    "example_inputs",
    "export_onnx",
    "export_pytorch",
    "inspect_graph",
    "load_graph",
    "load_starter",
    "module_count",
    "pytorch_code",
    "render_table",
    "starter_names",
    "weight_shapes",
]
