"""The FPGA emulation against the float PyTorch model: error and top-class agreement,
overall, per node (hls4ml's tracing) and against bit width (`sweep`)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compute.engine import compile_graph
from compute.engine.build import CheckedGraph

from .hls import Progress, Project, build_project, emulate, fold, hls_name, node_modules, trace
from .settings import FpgaSettings, with_bits


def float_outputs(graph: CheckedGraph, settings: FpgaSettings, inputs: np.ndarray,
                  state_dict: Mapping[str, torch.Tensor] | None = None,
                  *, per_node: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The float model's outputs, and (per_node) every node's output by its label: a
    top-level node's id, or `<repeat>.<copy>.<inner id>` for a block inside a Repeat."""
    module = compile_graph(graph, seed=settings.seed)
    if state_dict is not None:
        module.load_state_dict(dict(state_dict))
    module = fold(module.eval())
    seen: dict[str, np.ndarray] = {}
    hooks = []
    if per_node:
        for label, part in node_modules(module).items():
            def keep(_m: Any, _i: Any, out: Any, label: str = label) -> None:
                if isinstance(out, torch.Tensor):
                    seen[label] = out.detach().float().numpy()
            hooks.append(part.register_forward_hook(keep))
    with torch.no_grad():
        out = module(torch.as_tensor(inputs, dtype=torch.float32))
    for hook in hooks:
        hook.remove()
    return out.detach().float().numpy(), seen


def errors(reference: np.ndarray, emulated: np.ndarray) -> dict[str, float]:
    """max and mean absolute error, and (for scores) top-class agreement."""
    diff = np.abs(reference.astype(np.float64) - emulated.astype(np.float64))
    found = {"max_error": float(diff.max()), "mean_error": float(diff.mean())}
    if reference.ndim >= 2 and reference.shape[-1] > 1:
        found["agreement"] = float((reference.argmax(-1) == emulated.argmax(-1)).mean())
    return found


def _channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if x.ndim >= 3 else x


def compare(graph: CheckedGraph, settings: FpgaSettings, inputs: np.ndarray | torch.Tensor,
            state_dict: Mapping[str, torch.Tensor] | None = None, *,
            project: Project | None = None, out_dir: str | Path | None = None,
            per_node: bool = True, progress: Progress | None = None,
            timeout: float = 600.0) -> dict[str, Any]:
    """Float PyTorch against the emulation on `inputs` ([N, *input shape]).

    Returns {"max_error", "mean_error", "agreement" (top-class, for scores), "samples",
    "nodes": {node id: {"max_error", "mean_error"}}} (nodes: where tracing maps a layer to a
    node of the graph with the same number of values). Builds the project in `out_dir` (a
    temporary folder when None) unless `project` is given."""
    x = np.asarray(inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor)
                   else inputs, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="shipyard-fpga-") as scratch:
        if project is None:
            project = build_project(graph, settings, out_dir or scratch, state_dict,
                                    progress=progress, timeout=timeout)
        reference, float_nodes = float_outputs(graph, settings, x, state_dict,
                                               per_node=per_node)
        emulated = emulate(project, x, progress=progress, timeout=timeout)
        result: dict[str, Any] = {**errors(reference, emulated), "samples": len(x),
                                  "nodes": {}}
        if per_node:
            result["nodes"] = node_errors(project, x, float_nodes, progress=progress,
                                          timeout=timeout)
    return result


def node_errors(project: Project, inputs: np.ndarray, float_nodes: Mapping[str, np.ndarray],
                *, progress: Progress | None = None, timeout: float = 600.0
                ) -> dict[str, dict[str, float]]:
    """Each node's fixed-point output (hls4ml's tracing) against the float model's
    (`float_outputs(per_node=True)`): {label: {max_error, mean_error}}, labels as there
    (a block inside a Repeat as `<repeat>.<copy>.<inner id>`; the Repeat itself compared
    at its last block's output), for the nodes whose layer holds the same number of
    values."""
    traced = trace(project, inputs, progress=progress, timeout=timeout)
    found: dict[str, dict[str, float]] = {}
    count = len(inputs)
    for label, ours in float_nodes.items():
        fixed = traced.get(hls_name(label))
        if fixed is None:  # a Repeat: hls4ml has its blocks, the last one gives its output
            inner = {hls_name(other) for other in float_nodes if other.startswith(f"{label}.")}
            last = [name for name in traced if name in inner][-1:]
            fixed = traced[last[0]] if last else None
        if fixed is None:
            continue
        # hls4ml keeps images channels last inside: try that layout first
        for candidate in (_channels_last(ours), ours):
            if candidate.size == fixed.size:
                diff = np.abs(candidate.reshape(count, -1) - fixed.reshape(count, -1))
                found[label] = {"max_error": float(diff.max()),
                                "mean_error": float(diff.mean())}
                break
    return found


def sweep(graph: CheckedGraph, settings: FpgaSettings, inputs: np.ndarray | torch.Tensor,
          state_dict: Mapping[str, torch.Tensor] | None = None, *,
          out_dir: str | Path | None = None, progress: Progress | None = None,
          timeout: float = 600.0,
          on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """One row per width of `settings.sweep_bits`: {bits, precision, agreement, max_error,
    mean_error, seconds} (seconds: convert, compile and emulate together). Each width is a
    project of its own (in `out_dir/<bits>` when given, removed once measured); `on_row`
    hears each row as it is measured. `timeout` is for the whole sweep."""
    x = np.asarray(inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor)
                   else inputs, dtype=np.float32)
    reference, _ = float_outputs(graph, settings, x, state_dict)
    rows = []
    with tempfile.TemporaryDirectory(prefix="shipyard-fpga-sweep-") as scratch:
        base = Path(out_dir or scratch)
        deadline = time.monotonic() + timeout
        for bits in settings.sweep_bits:
            precision = with_bits(settings.precision, bits)
            if progress is not None:
                progress(f"sweep: {precision}")
            began = time.perf_counter()
            project = build_project(graph, settings, base / str(bits), state_dict,
                                    precision=precision,
                                    timeout=max(1.0, deadline - time.monotonic()))
            emulated = emulate(project, x, timeout=max(1.0, deadline - time.monotonic()))
            shutil.rmtree(project.path, ignore_errors=True)
            found = errors(reference, emulated)
            row = {"bits": bits, "precision": precision, "agreement": found.get("agreement"),
                   "max_error": found["max_error"], "mean_error": found["mean_error"],
                   "seconds": time.perf_counter() - began}
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


__all__ = ["compare", "errors", "float_outputs", "node_errors", "sweep"]
