"""A graph as an HLS project (hls4ml's PyTorch frontend), compiled with g++ and emulated
bit-accurately in fixed point.

    project = build_project(graph, FpgaSettings(), "out/", state_dict, progress=print)
    outputs = emulate(project, inputs)        # np.ndarray, what the FPGA would compute
    archive(project, "project.tar.gz", inputs, expected)

hls4ml loads the library it builds into its own process, and g++ can take long on a big
model: conversion, compilation, emulation and tracing each run in a subprocess
(`fpga._worker`) with a time limit. Its output (hls4ml's messages, the compiler's errors) is
kept in the project's `shipyard/tools.log`; a failure raises `FpgaError` with the log's last
lines, never a Python traceback.

Layout of `out_dir`: the hls4ml project itself (firmware/, build_prj.tcl, the testbench
myproject_test.cpp, tb_data/, hls4ml_config.yml), and `shipyard/` with what made it (the
graph document, the settings, the weights, manifest.json) and the log.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx

from compute.engine.build import CheckedGraph

from .settings import FpgaSettings

Progress = Callable[[str], None]
STAGE = "@@shipyard-fpga "  # the worker's progress lines in the log start with this
TAIL_LINES = 20  # log lines an FpgaError keeps
MAX_SAMPLES = 100_000  # inputs one emulation takes (the library runs them one by one)
DEFAULT_TIMEOUT = 600.0
PROJECT_NAME = "myproject"
STAGE_WORDS = {
    "converting": "converting",
    "writing": "writing the HLS project",
    "compiling": "compiling (first compile takes 5-20 s)",
    "emulating": "emulating",
    "tracing": "compiling with tracing and emulating layer by layer",
    "generating": "generating Verilog with da4ml",
    "simulating": "simulating the Verilog with Verilator (building it takes 10 s to minutes)",
    "synthesizing": "synthesizing with Yosys (its first run on a machine prepares it: about "
                    "a minute more)",
}


class FpgaError(RuntimeError):
    """A failure inside the tools (hls4ml, g++, the emulation) or a time limit: `message`
    in words, `log_tail` the tool's own last lines."""

    def __init__(self, message: str, log_tail: list[str] | None = None):
        self.message = message
        self.log_tail = list(log_tail or [])
        text = message if not self.log_tail else message + "\n" + "\n".join(self.log_tail)
        super().__init__(text)


class FpgaStopped(FpgaError):
    """The tools were stopped because the caller asked (`stop_when`): a cancel, a
    shutdown."""


_STOP: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "fpga_stop", default=None)


@contextlib.contextmanager
def stop_when(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Within this block, every tool subprocess is killed (raising `FpgaStopped`) as soon
    as `should_stop()` is true: asked ten times a second while a tool runs."""
    token = _STOP.set(should_stop)
    try:
        yield
    finally:
        _STOP.reset(token)


def stop_asked() -> bool:
    """Whether the caller's `stop_when` check says stop now (a tool's wait loop asks)."""
    stop = _STOP.get()
    return stop is not None and stop()


@dataclass
class Project:
    """A written and compiled HLS project."""

    path: Path  # the hls4ml project folder
    settings: FpgaSettings
    input_shape: tuple[int, ...]  # one sample, as the graph's Input gives it
    output_shape: tuple[int, ...]  # one sample, as the graph's Output takes it
    layers: list[str] = field(default_factory=list)  # hls4ml's layers (named by node ids)
    library: Path | None = None  # the compiled emulation library
    seconds: dict[str, float] = field(default_factory=dict)  # convert, compile (wall)

    @property
    def log(self) -> Path:
        return self.path / "shipyard" / "tools.log"

    @classmethod
    def open(cls, path: str | Path) -> Project:
        """A project `build_project` wrote (its manifest)."""
        folder = Path(path)
        manifest = json.loads((folder / "shipyard" / "manifest.json").read_text())
        settings = FpgaSettings.model_validate_json(
            (folder / "shipyard" / "settings.json").read_text())
        return cls(folder, settings, tuple(manifest["input_shape"]),
                   tuple(manifest["output_shape"]), list(manifest["layers"]),
                   Path(manifest["library"]), dict(manifest["seconds"]))


def compiler_available() -> bool:
    """Whether this machine can compile an emulation (g++ on the PATH)."""
    return shutil.which("g++") is not None


def fold(module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """`module` without its inference no-ops (Dropout, nn.Identity): hls4ml rejects
    nn.Identity and loses the wiring after a Dropout. Changes `module` in place."""
    changed = False
    for node in list(module.graph.nodes):
        if node.op != "call_module":
            continue
        target = module.get_submodule(str(node.target))
        if isinstance(target, (torch.nn.Identity, torch.nn.Dropout)):
            node.replace_all_uses_with(node.args[0])
            module.graph.erase_node(node)
            changed = True
    if changed:
        module.graph.eliminate_dead_code()
        module.delete_all_unused_submodules()
        module.recompile()
    return module


def node_modules(module: torch.fx.GraphModule) -> dict[str, torch.nn.Module]:
    """The modules that compute the graph's nodes, by label: a top-level node by its id, a
    block inside a Repeat as `<repeat id>.<copy>.<inner id>` (its module path). hls4ml's
    tracer walks into a Repeat and names each layer by that path with dots as underscores
    (`hls_name`)."""
    found: dict[str, torch.nn.Module] = {}
    for node in module.graph.nodes:
        if node.op != "call_module":
            continue
        top = module.get_submodule(str(node.target))
        found[node.name] = top
        for path, child in top.named_modules():
            if path and not any(True for _ in child.children()):
                found[f"{node.target}.{path}"] = child
    return found


def hls_name(label: str) -> str:
    """hls4ml's name of the layer that computes the node `label` (see `node_modules`)."""
    return label.replace(".", "_")


def layer_names(module: torch.fx.GraphModule) -> list[str]:
    """hls4ml's names of the layers of `module`: its nodes' (blocks inside a Repeat
    included) and its functions' (Add, Concat ...)."""
    names = [hls_name(label) for label in node_modules(module)]
    return names + [n.name for n in module.graph.nodes if n.op == "call_function"]


def hls_config(settings: FpgaSettings, layers: list[str], *, trace: bool = False,
               precision: str | None = None) -> dict[str, Any]:
    """hls4ml's configuration for these settings: the precision for every layer (a node's
    override for its own), the reuse factor and strategy; `trace` records every layer."""
    default = precision or settings.precision
    per_layer: dict[str, Any] = {}
    for name in layers:
        entry: dict[str, Any] = {"Precision": settings.precision_overrides.get(name, default),
                                 "ReuseFactor": settings.reuse_factor,
                                 "Strategy": settings.strategy}
        if trace:
            entry["Trace"] = True
        per_layer[name] = entry
    return {"Model": {"Precision": default, "ReuseFactor": settings.reuse_factor,
                      "Strategy": settings.strategy, "ChannelsLastConversion": "full",
                      "TransposeOutputs": True, "TraceOutput": trace},
            "LayerName": per_layer}


def _shape(graph: CheckedGraph) -> tuple[tuple[int, ...], tuple[int, ...]]:
    (inp,) = graph.inputs
    (out,) = graph.outputs
    in_spec = next(iter(graph.analysis.nodes[inp.id].outputs.values()))
    out_spec = next(iter(graph.analysis.nodes[out.id].inputs.values()))
    return tuple(in_spec.shape), tuple(out_spec.shape)


def save_model(own: Path, graph: CheckedGraph, settings: FpgaSettings,
               state_dict: Mapping[str, torch.Tensor] | None) -> None:
    """What the subprocess (fpga._worker) rebuilds the model from, in `own`: the graph
    document, the settings and the weights (`state_dict`, or the seeded initial ones)."""
    from safetensors.torch import save_file

    from compute.engine import compile_graph
    from compute.engine.training import unshared

    if state_dict is None:
        state_dict = compile_graph(graph, seed=settings.seed).state_dict()
    save_file(unshared(state_dict), str(own / "weights.safetensors"))
    (own / "graph.json").write_text(json.dumps(dict(graph.document)))
    (own / "settings.json").write_text(settings.model_dump_json())


def build_project(graph: CheckedGraph, settings: FpgaSettings, out_dir: str | Path,
                  state_dict: Mapping[str, torch.Tensor] | None = None, *,
                  progress: Progress | None = None, timeout: float = DEFAULT_TIMEOUT,
                  precision: str | None = None) -> Project:
    """Convert `graph` (its compiled module, with `state_dict` or seeded initial weights)
    with hls4ml, write the project to `out_dir` and compile its emulation with g++.
    `precision` replaces the settings' (a sweep's widths). Call `fpga_problems` first: a
    graph it refuses fails here with the converter's own message. Raises `FpgaError`."""


    if not graph.document:
        raise ValueError("build_project needs a graph read from its document (load_graph of "
                         "a dict, JSON or file), not one made by hand")
    folder = Path(out_dir)
    own = folder / "shipyard"
    own.mkdir(parents=True, exist_ok=True)
    in_shape, out_shape = _shape(graph)
    save_model(own, graph, settings, state_dict)
    job = {"action": "build", "project": str(folder.resolve()), "precision": precision,
           "input_shape": list(in_shape), "output_shape": list(out_shape)}
    _run_worker(job, own, progress, timeout, fresh_log=True)
    return Project.open(folder)


def emulate(project: Project, inputs: np.ndarray | torch.Tensor, *,
            progress: Progress | None = None, timeout: float = DEFAULT_TIMEOUT) -> np.ndarray:
    """The compiled project's outputs for `inputs` ([N, *input_shape]): the fixed-point
    arithmetic the FPGA does, bit for bit. Returns [N, *output_shape] float32."""
    own = project.path / "shipyard"
    x = _as_inputs(project, inputs)
    np.save(own / "inputs.npy", x)
    _run_worker({"action": "emulate", "project": str(project.path.resolve())}, own,
                progress, timeout)
    return np.load(own / "outputs.npy").reshape(len(x), *project.output_shape)


def trace(project: Project, inputs: np.ndarray | torch.Tensor, *,
          progress: Progress | None = None, timeout: float = DEFAULT_TIMEOUT
          ) -> dict[str, np.ndarray]:
    """Every layer's fixed-point output for `inputs` (hls4ml's tracing, which compiles the
    project once more with tracing on, in shipyard/trace): layer name → [N, ...] as hls4ml
    lays it out (channels last)."""
    own = project.path / "shipyard"
    x = _as_inputs(project, inputs)
    np.save(own / "inputs.npy", x)
    _run_worker({"action": "trace", "project": str(project.path.resolve())}, own,
                progress, timeout)
    with np.load(own / "trace.npz") as found:
        return {name: found[name] for name in found.files}


def _as_inputs(project: Project, inputs: np.ndarray | torch.Tensor) -> np.ndarray:
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else inputs
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 0 or not 1 <= len(x) <= MAX_SAMPLES:
        raise ValueError(f"inputs must hold 1 to {MAX_SAMPLES:,} samples, got {x.shape}")
    if x.shape[1:] != project.input_shape:
        raise ValueError(f"inputs must be [N, {', '.join(map(str, project.input_shape))}], "
                         f"got {list(x.shape)}")
    return x


def write_testbench(project: Project, inputs: np.ndarray | torch.Tensor,
                    expected: np.ndarray | torch.Tensor) -> None:
    """Put `inputs` and the `expected` outputs in the project's tb_data, where its C++
    testbench (myproject_test.cpp) reads them: one sample a line, values by spaces."""
    x = _as_inputs(project, inputs)
    y = expected.detach().cpu().numpy() if isinstance(expected, torch.Tensor) else expected
    tb = project.path / "tb_data"
    tb.mkdir(exist_ok=True)
    np.savetxt(tb / "tb_input_features.dat", x.reshape(len(x), -1), fmt="%.8g")
    np.savetxt(tb / "tb_output_predictions.dat", np.asarray(y, np.float32).reshape(len(x), -1),
               fmt="%.8g")


def run_testbench(project: Project, inputs: np.ndarray | torch.Tensor,
                  expected: np.ndarray | torch.Tensor, *,
                  timeout: float = DEFAULT_TIMEOUT) -> np.ndarray:
    """Build the project's own C++ testbench (myproject_test.cpp) standalone with g++ and
    run it on `inputs` (written to tb_data with `expected`): its outputs, [N, *output_shape],
    as it prints them (6 significant digits). Raises `FpgaError` with the compiler's or the
    testbench's last lines."""
    write_testbench(project, inputs, expected)
    results = project.path / "tb_data" / "csim_results.log"
    results.unlink(missing_ok=True)
    built = project.path / "shipyard" / "testbench"
    steps = [["g++", "-O2", "-std=c++14", "-Ifirmware", "-Ifirmware/ap_types",
              '-DWEIGHTS_DIR="firmware/weights"', f"{PROJECT_NAME}_test.cpp",
              f"firmware/{PROJECT_NAME}.cpp", "-o", str(built)], [str(built)]]
    deadline = time.monotonic() + timeout
    for step in steps:
        try:
            done = subprocess.run(step, cwd=project.path, capture_output=True, text=True,
                                  timeout=max(1.0, deadline - time.monotonic()),
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise FpgaError(f"the testbench took longer than the time limit ({timeout:g} s)"
                            ) from exc
        except OSError as exc:
            raise FpgaError(f"the testbench could not start: {exc.strerror}") from exc
        if done.returncode != 0:
            lines = [line[:300] for line in (done.stdout + done.stderr).splitlines()
                     if line.strip()]
            raise FpgaError(f"the testbench {'build' if step is steps[0] else 'run'} failed "
                            f"(exit status {done.returncode})", lines[-TAIL_LINES:])
    count = len(np.asarray(inputs))
    return np.loadtxt(results, dtype=np.float32, ndmin=2).reshape(count, *project.output_shape)


def archive(project: Project, path: str | Path, inputs: np.ndarray | torch.Tensor | None = None,
            expected: np.ndarray | torch.Tensor | None = None) -> Path:
    """The project as a .tar.gz (under one folder named after the project), with its
    testbench data when `inputs` and `expected` are given; without the built library and
    the tracing copy."""
    if inputs is not None and expected is not None:
        write_testbench(project, inputs, expected)
    target = Path(path)
    skip = {project.path / "shipyard" / "trace", project.path / "shipyard" / "testbench"}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if info.name.endswith((".so", ".o")) or info.issym() or info.islnk():
            return None
        return info

    with tarfile.open(target, "w:gz") as tar:
        for item in sorted(project.path.iterdir()):
            if item in skip:
                continue
            if item.name == "shipyard":
                for part in sorted(item.iterdir()):
                    if part not in skip and part.name != "inputs.npy":
                        tar.add(part, f"{PROJECT_NAME}/shipyard/{part.name}", filter=keep)
                continue
            tar.add(item, f"{PROJECT_NAME}/{item.name}", filter=keep)
    return target


def _run_worker(job: dict[str, Any], own: Path, progress: Progress | None, timeout: float,
                *, fresh_log: bool = False) -> None:
    (own / "job.json").write_text(json.dumps(job))
    log_path = own / "tools.log"
    for stale in ("error.txt", "done"):
        (own / stale).unlink(missing_ok=True)
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"  # the tools' lines reach the log before a kill
    with open(log_path, "w" if fresh_log else "a") as log:
        log.write(f"{STAGE}job {job['action']}\n")
        log.flush()
        start = log.tell()
        proc = subprocess.Popen([sys.executable, "-m", "fpga._worker", str(own / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    seen = start
    try:
        while True:
            try:
                code = proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                code = None
            seen = _report(log_path, seen, progress)
            if code is not None:
                break
            if stop_asked():
                _kill(proc)
                raise FpgaStopped("the FPGA tools were stopped (asked by the caller)")
            if time.monotonic() > deadline:
                _kill(proc)
                raise FpgaError(f"the FPGA tools took longer than the time limit "
                                f"({timeout:g} s) and were stopped", _tail(log_path, start))
    except BaseException:
        _kill(proc)
        raise
    if code != 0 or not (own / "done").exists():
        said = (own / "error.txt").read_text().strip() if (own / "error.txt").exists() else ""
        message = said or f"the FPGA tools stopped with exit status {code}"
        raise FpgaError(message, _tail(log_path, start))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _report(log_path: Path, seen: int, progress: Progress | None) -> int:
    with open(log_path, "rb") as log:
        log.seek(seen)
        chunk = log.read()
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].decode("utf-8", "replace").splitlines():
        if line.startswith(STAGE) and progress is not None:
            stage = line[len(STAGE):].strip()
            if stage in STAGE_WORDS:
                progress(STAGE_WORDS[stage])
    return seen + end


def _tail(log_path: Path, start: int, lines: int = TAIL_LINES) -> list[str]:
    """The log's last lines since `start`, without the progress marks, Python's traceback
    frames or blank lines: what the tools themselves said."""
    with open(log_path, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
    kept = [line.rstrip() for line in text.splitlines()
            if line.strip() and not line.startswith(STAGE)
            and not line.startswith(("Traceback", "  File ", "    "))]
    return [line[:300] for line in kept[-lines:]]


__all__ = ["FpgaError", "FpgaStopped", "Progress", "Project", "archive", "build_project",
           "compiler_available", "emulate", "fold", "hls_config", "hls_name", "layer_names",
           "node_modules", "run_testbench", "stop_when", "trace", "write_testbench"]
