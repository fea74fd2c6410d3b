"""The `shipyard` command line, run as a user runs it: a subprocess, exit codes, output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compute.engine import load_starter


def shipyard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compute.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def mlp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(load_starter("mlp")))
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    doc = load_starter("mlp")
    doc["nodes"][1]["params"]["out_features"] = 0
    doc["nodes"][3]["type"] = "Linaer"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    return path


def test_inspect_prints_a_json_report_and_exits_0_for_a_valid_graph(mlp_file: Path) -> None:
    run = shipyard("inspect", str(mlp_file))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["valid"] is True
    assert report["nodes"]["logits"]["outputs"]["out"]["shape"] == ["B", 10]
    assert report["nodes"]["hidden1"]["params"] == 64 * 128 + 128
    assert report["nodes"]["hidden1"]["flops"] == 2 * 64 * 128
    assert report["totals"]["params"] == sum(n["params"] for n in report["nodes"].values())


def test_inspect_lists_every_problem_and_exits_1_for_an_invalid_graph(broken_file: Path) -> None:
    run = shipyard("inspect", str(broken_file))
    assert run.returncode == 1
    report = json.loads(run.stdout)
    by_node = {p["node"]: p for p in report["problems"]}
    assert by_node["hidden1"]["field"] == "out_features"
    assert "at least 1" in by_node["hidden1"]["message"]
    assert "did you mean 'Linear'" in by_node["hidden2"]["message"]
    assert "Traceback" not in run.stderr


def test_inspect_table_shows_shapes_with_a_leading_batch(mlp_file: Path) -> None:
    run = shipyard("inspect", str(mlp_file), "--format", "table")
    assert run.returncode == 0
    assert "[B, 10]" in run.stdout
    assert run.stdout.strip().endswith("valid")


def test_inspect_reads_standard_input() -> None:
    run = shipyard("inspect", "-", stdin=json.dumps(load_starter("cnn")))
    assert run.returncode == 0
    assert json.loads(run.stdout)["valid"]


def test_inspect_of_malformed_json_names_the_position_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": "shipyard.graph/v1", "nodes": [}')
    run = shipyard("inspect", str(path))
    assert run.returncode == 1
    assert "line 1" in json.loads(run.stdout)["problems"][0]["message"]
    assert "Traceback" not in run.stderr


def test_a_missing_file_is_a_usage_error() -> None:
    run = shipyard("inspect", "no-such-model.json")
    assert run.returncode == 2
    assert "no such file" in run.stderr
    assert "Traceback" not in run.stderr


def test_export_pytorch_writes_a_standalone_module(mlp_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    run = shipyard("export", str(mlp_file), "--format", "pytorch", "-o", str(out))
    assert run.returncode == 0, run.stderr
    source = out.read_text()
    assert (tmp_path / "model.pt").is_file()  # the current weights, beside the code
    assert 'torch.load("model.pt", weights_only=True)' in source
    assert "class DigitsMlp(nn.Module):" in source
    assert "hidden1 = self.hidden1(x)  # [B, 128]" in source
    assert "compute" not in source  # needs only torch
    check = subprocess.run(
        [sys.executable, "-c", f"import runpy, torch; ns = runpy.run_path({str(out)!r}); "
         "m = ns['DigitsMlp'](); m.load_state_dict(torch.load("
         f"{str(tmp_path / 'model.pt')!r}, weights_only=True)); "
         "print(tuple(m(torch.randn(3, 64)).shape))"],
        capture_output=True, text=True)
    assert check.stdout.strip() == "(3, 10)", check.stderr


def test_export_pytorch_of_a_hostile_document_writes_a_file_that_runs_nothing_else(
        tmp_path: Path) -> None:
    doc = load_starter("mlp")
    doc["name"] = 'tiny""";__import__("builtins").print("INJECTED");"""'
    graph = tmp_path / "hostile.json"
    graph.write_text(json.dumps(doc))
    out = tmp_path / 'm"); print("INJECTED'  # the weights' name is written into the file too
    out.mkdir()
    out = out / 'model"\u2028.py'
    run = shipyard("export", str(graph), "--format", "pytorch", "-o", str(out))
    assert run.returncode == 0, run.stderr
    check = subprocess.run(
        [sys.executable, "-c", f"import runpy; ns = runpy.run_path({str(out)!r}); "
         "print(sorted(k for k in ns if k.startswith('Tiny')))"],
        capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout == "['TinyImportBuiltinsPrintINJECTED']\n"


def test_export_onnx_writes_a_checked_model(mlp_file: Path, tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "model.onnx"
    run = shipyard("export", str(mlp_file), "--format", "onnx", "-o", str(out))
    assert run.returncode == 0, run.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["x"]


def test_export_of_an_invalid_graph_prints_problems_and_exits_1(broken_file: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    run = shipyard("export", str(broken_file), "--format", "pytorch", "-o", str(out))
    assert run.returncode == 1
    assert "hidden1 (out_features)" in run.stderr
    assert not out.exists()


def test_import_writes_the_graph_and_weights_that_export_back_to_the_same_numbers(
        mlp_file: Path, tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    first = tmp_path / "first.onnx"
    assert shipyard("export", str(mlp_file), "--format", "onnx", "-o", str(first),
                    "--seed", "5").returncode == 0
    graph = tmp_path / "imported.json"
    run = shipyard("import", str(first), "-o", str(graph))
    assert run.returncode == 0, run.stderr
    assert json.loads(graph.read_text())["name"] == "first"
    weights = tmp_path / "imported.safetensors"
    again = tmp_path / "again.onnx"
    run = shipyard("export", str(graph), "--format", "onnx", "-o", str(again),
                   "--weights", str(weights))
    assert run.returncode == 0, run.stderr
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    outputs = [ort.InferenceSession(str(p)).run(None, {"x": x})[0] for p in (first, again)]
    assert np.abs(outputs[0] - outputs[1]).max() <= 1e-5


def test_import_of_a_file_with_unmapped_operators_lists_them_and_writes_nothing(
        tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Neg", ["x"], ["a"]), helper.make_node("Abs", ["a"], ["y"])],
        "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])
    source = tmp_path / "odd.onnx"
    save_model(model, str(source))
    out = tmp_path / "odd.json"
    run = shipyard("import", str(source), "-o", str(out))
    assert run.returncode == 1
    assert "1 × Abs, 1 × Neg have no Shipyard block" in run.stderr
    assert not out.exists() and not out.with_suffix(".safetensors").exists()


def test_import_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    run = shipyard("import", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "m.json"))
    assert run.returncode == 2 and "no such file" in run.stderr


def test_blocks_prints_the_catalog() -> None:
    run = shipyard("blocks")
    assert run.returncode == 0
    types = {b["type"] for b in json.loads(run.stdout)}
    assert {"Linear", "MultiHeadAttention", "Repeat", "Input", "Output"} <= types


def test_blocks_with_an_unknown_type_suggests_the_nearest() -> None:
    run = shipyard("blocks", "Layernorm")
    assert run.returncode == 2
    assert "LayerNorm" in run.stderr


def test_new_writes_a_starter_that_inspects_clean(tmp_path: Path) -> None:
    out = tmp_path / "gpt.json"
    assert shipyard("new", "char_gpt", "-o", str(out)).returncode == 0
    assert shipyard("inspect", str(out)).returncode == 0
    again = shipyard("new", "char_gpt", "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
