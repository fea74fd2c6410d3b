"""The trained digits MLP as an HLS project: compiled with g++, emulated in fixed point,
compared with PyTorch, archived; a failure in the tools is an FpgaError with their words.
One compiled project serves the module (the first compile takes 5-20 s)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fpga_graphs import chain, node, repeat

from compute.engine import compile_graph, load_graph, load_starter
from compute.engine.datasets import dataset_for
from compute.engine.training import TrainConfig, train
from fpga.compare import compare, sweep
from fpga.hls import (
    FpgaError,
    Project,
    archive,
    build_project,
    compiler_available,
    emulate,
    run_testbench,
)
from fpga.settings import FpgaSettings

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not compiler_available(), reason="g++ is not installed")]


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    graph = load_graph(load_starter("mlp"))
    model = compile_graph(graph)
    data = dataset_for(model, "digits")
    train(model, data, TrainConfig(steps=300))
    return {"graph": graph, "state": model.state_dict(), "x": data.x_val.numpy()}


@pytest.fixture(scope="module")
def built(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Project, list[str]]:
    said: list[str] = []
    project = build_project(trained["graph"], FpgaSettings(),
                            tmp_path_factory.mktemp("mlp"), trained["state"],
                            progress=said.append, timeout=300)
    return project, said


def test_the_emulated_mlp_agrees_with_pytorch_on_98_percent_of_digits(
        trained: dict[str, Any], built: tuple[Project, list[str]]) -> None:
    project, said = built
    assert said == ["converting", "writing the HLS project",
                    "compiling (first compile takes 5-20 s)"]
    result = compare(trained["graph"], FpgaSettings(), trained["x"], trained["state"],
                     project=project, timeout=300)
    assert result["samples"] == len(trained["x"]) > 300
    assert result["agreement"] >= 0.98
    assert 0 < result["mean_error"] <= result["max_error"] < 2  # fixed point, not float
    # hls4ml's trace, mapped back to the graph's node ids
    assert set(result["nodes"]) == {"hidden1", "act1", "hidden2", "act2", "logits"}
    assert result["nodes"]["logits"]["max_error"] == pytest.approx(result["max_error"])


def test_inputs_of_the_wrong_shape_are_refused_before_the_library_sees_them(
        trained: dict[str, Any], built: tuple[Project, list[str]]) -> None:
    project, _ = built
    with pytest.raises(ValueError, match=r"inputs must be \[N, 64\], got \[5, 10\]"):
        emulate(project, trained["x"][:5, :10])


def test_the_archive_holds_the_project_and_its_testbench_data(
        trained: dict[str, Any], built: tuple[Project, list[str]], tmp_path: Path) -> None:
    project, _ = built
    x = trained["x"][:20]
    expected = emulate(project, x)
    path = archive(project, tmp_path / "project.tar.gz", x, expected)
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        inputs = tar.extractfile("myproject/tb_data/tb_input_features.dat")
        assert inputs is not None
        assert np.loadtxt(inputs).shape == (20, 64)
    for needed in ("myproject/firmware/myproject.cpp", "myproject/build_prj.tcl",
                   "myproject/myproject_test.cpp", "myproject/tb_data/tb_output_predictions.dat",
                   "myproject/shipyard/graph.json", "myproject/shipyard/settings.json"):
        assert needed in names
    assert not any(n.endswith(".so") for n in names)


def test_the_projects_own_testbench_built_standalone_reproduces_the_emulation(
        trained: dict[str, Any], built: tuple[Project, list[str]]) -> None:
    project, _ = built
    x = trained["x"][:25]
    emulated = emulate(project, x)
    printed = run_testbench(project, x, emulated, timeout=120)
    # the testbench prints 6 significant digits: equal up to that
    np.testing.assert_allclose(printed, emulated, rtol=1e-5, atol=1e-4)


def test_a_failure_inside_the_tools_is_an_fpga_error_with_their_last_lines(
        trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine whose g++ is gone between the check and the compile: build_lib.sh fails.
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(FpgaError) as caught:
        build_project(trained["graph"], FpgaSettings(), tmp_path / "p", trained["state"],
                      timeout=120)
    error = caught.value
    assert error.message.startswith("build failed")
    assert any("g++" in line for line in error.log_tail), error.log_tail
    assert not any(line.startswith("Traceback") for line in error.log_tail)


def test_the_time_limit_stops_the_tools(trained: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(FpgaError, match="time limit"):
        build_project(trained["graph"], FpgaSettings(), tmp_path / "p", trained["state"],
                      timeout=0.5)


def test_the_cnn_starter_trained_on_digits_agrees_on_98_percent(tmp_path: Path) -> None:
    graph = load_graph(load_starter("cnn"))
    model = compile_graph(graph)
    data = dataset_for(model, "digits")
    train(model, data, TrainConfig(steps=300))
    result = compare(graph, FpgaSettings(), data.x_val.numpy(), model.state_dict(),
                     out_dir=tmp_path, per_node=False, timeout=300)
    assert result["agreement"] >= 0.98


def test_a_sweep_loses_agreement_as_bits_are_taken_away(trained: dict[str, Any]) -> None:
    settings = FpgaSettings(sweep_bits=[8, 16])
    rows = sweep(trained["graph"], settings, trained["x"][:200], trained["state"],
                 timeout=300)
    assert [(r["bits"], r["precision"]) for r in rows] == [(8, "ap_fixed<8,6>"),
                                                            (16, "ap_fixed<16,6>")]
    narrow, wide = rows
    assert narrow["agreement"] < 0.9 and wide["agreement"] >= 0.98
    assert narrow["mean_error"] > wide["mean_error"] and all(r["seconds"] > 0 for r in rows)


def test_blocks_inside_a_repeat_are_compared_node_by_node(tmp_path: Path) -> None:
    document = chain([16], repeat("blocks", 2, node("l", "Linear", out_features=16),
                                  node("r", "ReLU")),
                     node("head", "Linear", out_features=4))
    graph = load_graph(document)
    x = np.random.default_rng(0).normal(size=(20, 16)).astype(np.float32)
    result = compare(graph, FpgaSettings(), x, out_dir=tmp_path, timeout=300)
    nodes = result["nodes"]
    assert set(nodes) == {"blocks.0.l", "blocks.0.r", "blocks.1.l", "blocks.1.r", "blocks",
                          "head"}
    assert nodes["blocks"] == nodes["blocks.1.r"]  # the Repeat's output is its last block's
    assert all(0 <= n["mean_error"] <= n["max_error"] < 0.1 for n in nodes.values()), nodes
