"""`shipyard train`, through `cmd_train`, the function `shipyard` hands the words after `train`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from compute.cli import ProgressReporter, cmd_train
from compute.engine import load_starter


@pytest.fixture
def mlp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(load_starter("mlp")))
    return path


def test_train_prints_lines_without_a_terminal_and_a_summary_with_the_weights(
        mlp_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "100", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "\r" not in err  # not a terminal: lines, not a redrawn bar
    assert "step 50/100 " in err and "step 100/100 " in err
    assert "done after 100 steps in " in err and "val accuracy " in err
    assert f"weights: {out / 'model.safetensors'}" in err
    assert (out / "model.safetensors").is_file()
    assert (out / "checkpoints" / "step-000100.safetensors").is_file()


def test_train_prints_a_hostile_graph_name_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A name that would retitle the terminal, ring its bell and reverse the line after it.
    graph = load_starter("mlp") | {"name": "x\x1b]0;owned\x07\u202egnp.exe\r"}
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(graph))
    code = cmd_train([str(path), "--dataset", "digits", "--steps", "2",
                      "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert not any(c in err for c in "\x1b\x07\u202e\r")
    assert "training x\\x1b]0;owned\\x07\\u202egnp.exe\\r on " in err


def test_train_resumes_from_a_run_folder(mlp_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "run")
    assert cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "20", "--out", out]) == 0
    capsys.readouterr()
    assert cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "30", "--out", out,
                    "--resume", out]) == 0
    err = capsys.readouterr().err
    assert "steps 20→30" in err and "done after 30 steps" in err


def test_train_refuses_a_dataset_that_does_not_fit_with_every_reason(
        mlp_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_train([str(mlp_file), "--dataset", "spirals"]) == 1
    err = capsys.readouterr().err
    assert "error: spirals gives float32 [B, 2], but Input 'x' expects float32 [B, 64]" in err
    assert ("error: the model outputs 10 classes, but spirals has 3: make the last Linear "
            "('logits') 3 wide (out_features 3)") in err


def test_train_reads_a_csv_upload_and_reports_its_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = tmp_path / "tiny.json"
    graph.write_text(json.dumps({
        "format": "shipyard.graph/v1",
        "nodes": [{"id": "x", "type": "Input", "params": {"shape": [2]}},
                  {"id": "fc", "type": "Linear", "params": {"out_features": 2}},
                  {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": "fc"}, {"from": "fc", "to": "y"}]}))
    table = tmp_path / "points.csv"
    table.write_text("a,b,side\n" + "\n".join(f"{i},{-i},{'L' if i < 0 else 'R'}"
                                              for i in range(-20, 20)))
    assert cmd_train([str(graph), "--csv", str(table), "--steps", "30",
                    "--out", str(tmp_path / "run")]) == 0
    assert "val accuracy" in capsys.readouterr().err
    table.write_text("a,b,side\n1,2,L\n1,two,R\n" + "1,2,L\n" * 10)
    assert cmd_train([str(graph), "--csv", str(table)]) == 2
    assert "points.csv row 3, column 'b': 'two' is not a number" in capsys.readouterr().err


def test_train_says_what_is_wrong_with_its_arguments(
        mlp_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "0"]) == 2
    assert "steps must be at least 1 and at most 1,000,000,000, got 0" in capsys.readouterr().err
    assert cmd_train(["nowhere.json", "--dataset", "digits"]) == 2
    assert "no such file: nowhere.json" in capsys.readouterr().err
    assert cmd_train([str(mlp_file), "--dataset", "digits", "--modulus", "7"]) == 2
    assert "--modulus is not an option of digits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cmd_train([str(mlp_file), "--dataset", "mnist"])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_bar_is_redrawn_in_place() -> None:
    screen = Terminal()
    bar = ProgressReporter(100, screen)
    bar.on_metric(50, "train_loss", 0.5)
    bar.on_metric(50, "val_accuracy", 0.9)
    bar.on_sample(50, "hello")
    text = screen.getvalue()
    assert text.startswith("\r[############............] 50/100 loss 0.5000")
    assert "acc 90.0%" in text and "\nsample at step 50: 'hello'\n" in text


def test_train_starts_from_the_weights_it_is_given(mlp_file: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from compute.cli import UsageError
    from compute.engine import compile_graph

    given = compile_graph(load_starter("mlp"), seed=9).state_dict()
    save_file(given, str(tmp_path / "start.safetensors"))
    out = tmp_path / "run"
    code = cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "1", "--lr", "1e-12",
                      "--min-lr", "0", "--out", str(out),
                      "--weights", str(tmp_path / "start.safetensors")])
    assert code == 0, capsys.readouterr().err
    kept = load_file(str(out / "model.safetensors"))
    assert torch.allclose(kept["hidden1.weight"], given["hidden1.weight"], atol=1e-6)

    del given["logits.bias"]
    save_file(given, str(tmp_path / "short.safetensors"))
    with pytest.raises(UsageError, match="does not fit this graph"):
        cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "1", "--out", str(out),
                   "--weights", str(tmp_path / "short.safetensors")])


@pytest.mark.slow  # starts 2 processes: seconds
def test_train_on_two_processes_writes_the_weights_and_refuses_a_batch_they_cannot_split(
        mlp_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cmd_train([str(mlp_file), "--dataset", "digits", "--steps", "10", "--gpus", "2",
                      "--device", "cpu", "--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / "model.safetensors").is_file()
    assert "done after 10 steps in " in capsys.readouterr().err
    code = cmd_train([str(mlp_file), "--dataset", "digits", "--gpus", "2",
                      "--batch-size", "33"])
    assert code == 2
    assert "batch_size 33 does not split evenly across 2 GPUs" in capsys.readouterr().err
