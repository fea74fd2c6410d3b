"""FPGA measurements (issue 14): run by hand, never collected by pytest, never run in CI.

    .venv/bin/python tests/benchmarks/bench_fpga.py
    .venv/bin/python tests/benchmarks/bench_fpga.py --bits 6 8 10 12 16 18 --modes ,AP_RND,AP_SAT

It trains the starter MLP on digits (300 steps, as the tests do) and the starter CNN, then
prints, in one run:

(a) for the MLP, per total bit width (integer bits 6, each rounding/overflow mode given):
    top-class agreement with PyTorch, max and mean absolute error of the 10 scores on the
    validation digits, and the seconds of each stage (convert, compile, emulate);
(b) the CNN at ap_fixed<16,6>: the same figures;
(c) with --rtl, the MLP's Verilog path (da4ml, Verilator, Yosys) where the tools are.

The exit code is 0 whatever the figures (this is a report); 1 only when the tools fail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from compute.engine import compile_graph, load_graph, load_starter  # noqa: E402
from compute.engine.datasets import dataset_for  # noqa: E402
from compute.engine.training import TrainConfig, train  # noqa: E402
from fpga.compare import errors, float_outputs  # noqa: E402
from fpga.hls import FpgaError, build_project, emulate  # noqa: E402
from fpga.settings import FpgaSettings  # noqa: E402


def trained(starter: str, steps: int) -> tuple[Any, dict[str, Any], Any]:
    graph = load_graph(load_starter(starter))
    model = compile_graph(graph)
    data = dataset_for(model, "digits")
    train(model, data, TrainConfig(steps=steps))
    return graph, model.state_dict(), data.x_val.numpy()


def measure(graph: Any, state: dict[str, Any], x: Any, precision: str) -> dict[str, Any]:
    settings = FpgaSettings(precision=precision)
    reference, _ = float_outputs(graph, settings, x, state)
    with tempfile.TemporaryDirectory() as folder:
        project = build_project(graph, settings, folder, state, timeout=600)
        began = time.perf_counter()
        emulated = emulate(project, x, timeout=600)
        emulate_s = time.perf_counter() - began
    return {**errors(reference, emulated), "convert": project.seconds.get("convert", 0.0),
            "compile": project.seconds.get("compile", 0.0), "emulate": emulate_s}


def line(label: str, found: dict[str, Any]) -> str:
    return (f"{label:<34} {found['agreement']:>8.1%} {found['max_error']:>9.3g} "
            f"{found['mean_error']:>9.3g} {found['convert']:>8.1f} {found['compile']:>8.1f} "
            f"{found['emulate']:>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bits", type=int, nargs="+", default=[6, 8, 10, 12, 16, 18])
    parser.add_argument("--modes", nargs="+", default=["", ",AP_RND,AP_SAT"],
                        help="rounding/overflow suffixes of ap_fixed<W,6...>")
    parser.add_argument("--rtl", action="store_true")
    args = parser.parse_args()
    header = (f"{'precision':<34} {'agree':>8} {'max err':>9} {'mean err':>9} "
              f"{'convert':>8} {'compile':>8} {'emulate':>8}")
    try:
        graph, state, x = trained("mlp", 300)
        print(f"(a) starter MLP, 300 steps on digits, {len(x)} validation digits")
        print(header)
        for mode in args.modes:
            for bits in args.bits:
                precision = f"ap_fixed<{bits},6{mode}>"
                print(line(precision, measure(graph, state, x, precision)), flush=True)
        cnn, cnn_state, cnn_x = trained("cnn", 300)
        print(f"\n(b) starter CNN, 300 steps on digits, {len(cnn_x)} validation digits")
        print(header)
        print(line("ap_fixed<16,6>", measure(cnn, cnn_state, cnn_x, "ap_fixed<16,6>")))
        if args.rtl:
            from fpga.rtl import build_rtl

            print("\n(c) the MLP's Verilog path")
            settings = FpgaSettings(rtl=True)
            with tempfile.TemporaryDirectory() as folder:
                project = build_project(graph, settings, Path(folder) / "hls", state)
                emulated = emulate(project, x[:100])
                found = build_rtl(graph, settings, Path(folder) / "rtl", x[:100], state,
                                  emulated, timeout=1800)
            for key in ("verilator", "yosys", "seconds"):
                print(f"{key}: {found.get(key)}")
    except FpgaError as exc:
        print(f"the tools failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
