"""The training loop and datasets, on real tiny runs on the CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from compute.engine import TensorSpec, compile_graph, inspect_graph, load_graph, load_starter
from compute.engine.datasets import (
    BUILTIN,
    DatasetError,
    check_fit,
    csv_dataset,
    make_dataset,
)
from compute.engine.training import (
    SilentReporter,
    TrainConfig,
    capture_attention,
    train,
)

from ..graphs import chain, node


def input_spec(doc: dict) -> TensorSpec:
    graph = load_graph(doc)
    params = graph.inputs[0].params
    return TensorSpec(tuple(params.shape), params.dtype)


def output_spec(doc: dict) -> TensorSpec:
    report = inspect_graph(doc, flops=False)
    (out,) = [n for n in report["nodes"].values() if n["type"] == "Output"]
    return TensorSpec(tuple(out["inputs"]["in"]["shape"][1:]), out["inputs"]["in"]["dtype"])


class Recorder(SilentReporter):
    def __init__(self, stop_after: int | None = None) -> None:
        self.metrics: list[tuple[int, str, float]] = []
        self.attention: list[tuple[int, str, list]] = []
        self.samples: list[tuple[int, str]] = []
        self.stop_after = stop_after
        self.steps_seen = 0

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.metrics.append((step, name, value))
        self.steps_seen = step

    def on_attention(self, step: int, node: str, maps: list) -> None:
        self.attention.append((step, node, maps))

    def on_sample(self, step: int, text: str) -> None:
        self.samples.append((step, text))

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.steps_seen >= self.stop_after

    def values(self, name: str) -> list[float]:
        return [v for _, n, v in self.metrics if n == name]


def test_the_mlp_starter_learns_digits_past_90_percent() -> None:
    doc = load_starter("mlp")
    data = make_dataset("digits", input_spec(doc))
    result = train(compile_graph(doc), data, TrainConfig(steps=300, eval_interval=100))
    assert result.metrics["val_accuracy"] > 0.9
    assert result.steps == 300 and not result.stopped


def test_the_char_gpt_loss_falls_and_it_writes_samples() -> None:
    doc = load_starter("char_gpt")
    data = make_dataset("harbour", input_spec(doc))
    assert check_fit(load_graph(doc), output_spec(doc), data) == []
    recorder = Recorder()
    config = TrainConfig(steps=60, batch_size=16, eval_interval=30, log_interval=5,
                         sample_length=20)
    train(compile_graph(doc), data, config, recorder)
    losses = recorder.values("train_loss")
    assert losses[-1] < losses[0] - 1.0  # from ~4.9 (uniform over 128) to well below
    assert [s for s, _ in recorder.samples] == [30, 60]
    assert all(len(text) == 20 and text.isascii() for _, text in recorder.samples)
    assert recorder.values("tokens_per_s")[-1] > 0


def test_attention_maps_are_captured_per_copy_small_and_causal() -> None:
    model = compile_graph(load_starter("char_gpt"))
    example = torch.randint(0, 128, (1, 64))
    maps = capture_attention(model, example)
    assert sorted(maps) == [f"blocks.{i}.attn" for i in range(4)]
    for weights in maps.values():
        assert weights.shape == (4, 64, 64)  # heads, query, key
        assert torch.allclose(weights.sum(-1), torch.ones(4, 64), atol=1e-5)
        assert torch.all(weights.triu(diagonal=1) == 0)
    assert model.training  # left as it was
    assert all(m.capture_attention is False for m in model.modules()
               if hasattr(m, "capture_attention"))


def test_attention_snapshots_reach_the_reporter_during_training() -> None:
    doc = load_starter("transformer_classifier")
    data = make_dataset("modadd", input_spec(doc))
    recorder = Recorder()
    train(compile_graph(doc), data, TrainConfig(steps=4, batch_size=8, eval_interval=4,
                                                 attention_interval=2), recorder)
    assert [(s, n) for s, n, _ in recorder.attention] == [
        (2, "encoder.0.attn"), (2, "encoder.1.attn"), (4, "encoder.0.attn"),
        (4, "encoder.1.attn")]
    heads = recorder.attention[0][2]
    assert len(heads) == 4 and len(heads[0]) == 16 and len(heads[0][0]) == 16


def test_large_attention_maps_are_pooled_to_64() -> None:
    doc = load_starter("char_gpt")
    doc["nodes"][0]["params"]["shape"] = [128]
    doc["nodes"][2]["params"]["max_len"] = 128
    maps = capture_attention(compile_graph(doc), torch.randint(0, 128, (1, 128)))
    assert maps["blocks.0.attn"].shape == (4, 64, 64)


def dropout_mlp() -> dict:
    return chain([64], node("fc", "Linear", out_features=32), node("drop", "Dropout", p=0.3),
                 node("out", "Linear", out_features=10))


def test_a_run_resumed_from_a_checkpoint_ends_exactly_where_an_unbroken_run_does(
        tmp_path: Path) -> None:
    data = make_dataset("digits")
    config = TrainConfig(steps=20, batch_size=16, eval_interval=20, checkpoint_interval=10)
    whole = compile_graph(dropout_mlp(), seed=1)
    train(whole, data, config, checkpoint_dir=tmp_path / "a")
    resumed = compile_graph(dropout_mlp(), seed=99)  # other weights: all must come back
    result = train(resumed, data, config, checkpoint_dir=tmp_path / "b",
                   resume_from=tmp_path / "a" / "step-000010.safetensors")
    assert result.steps == 20
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_run_stops_when_the_reporter_says_so() -> None:
    recorder = Recorder(stop_after=3)
    config = TrainConfig(steps=100, batch_size=8, log_interval=1)
    result = train(compile_graph(load_starter("mlp")), make_dataset("digits"), config,
                   recorder)
    assert result.stopped and result.steps == 3


@pytest.mark.parametrize("name", list(BUILTIN))
def test_each_dataset_gives_what_it_declares(name: str) -> None:
    data = make_dataset(name)
    task = data.info.task
    assert len(data.x_train) > len(data.x_val) > 0
    assert data.x_train.shape[1:] == data.x_val.shape[1:]
    if task == "classification":
        assert data.y_train.dtype == torch.int64 and data.y_train.dim() == 1
        assert int(data.y_train.max()) < data.info.classes
    if task == "sequence":
        assert data.y_train.shape == data.x_train.shape
        assert int(data.y_train.max()) < data.info.vocab


def test_digits_take_the_image_view_when_the_model_wants_images() -> None:
    data = make_dataset("digits", TensorSpec((1, 8, 8)))
    assert data.spec == TensorSpec((1, 8, 8), "float32")


def test_a_dataset_that_does_not_fit_says_exactly_what_differs() -> None:
    doc = chain([3, 32, 32], node("flat", "Flatten"), node("fc", "Linear", out_features=10))
    problems = check_fit(load_graph(doc), output_spec(doc), make_dataset("digits"))
    assert problems == ["digits gives float32 [B, 64], but Input 'x' expects "
                        "float32 [B, 3, 32, 32]"]
    doc = load_starter("mlp")
    problems = check_fit(load_graph(doc), output_spec(doc), make_dataset("moons"))
    assert "moons has 2 classes, so the Output should be [B, 2], but 'y' gets [B, 10]" in (
        problems)


def test_a_csv_upload_trains_and_bad_csvs_are_refused_with_the_place() -> None:
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'big' if i % 7 > 3 else 'small'}"
                            for i in range(200)]
    data = csv_dataset("\n".join(rows), target="label")
    assert data.info.classes == 2 and data.spec == TensorSpec((2,), "float32")
    with pytest.raises(DatasetError, match="line 3, column 'b': 'x' is not a number"):
        csv_dataset("a,b,label\n1,2,yes\n1,x,no\n", target="label")
    with pytest.raises(DatasetError, match="no column 'kind'; its columns: a, b, label"):
        csv_dataset("a,b,label\n1,2,yes\n", target="kind")
    with pytest.raises(DatasetError, match="line 2 has 2 values; the header has 3"):
        csv_dataset("a,b,label\n1,2\n", target="label")


def test_shipyard_train_runs_from_the_terminal_and_refuses_a_misfit(tmp_path: Path) -> None:
    import json

    model = tmp_path / "mlp.json"
    model.write_text(json.dumps(load_starter("mlp")))
    run = subprocess.run([sys.executable, "-m", "compute.cli", "train", str(model),
                          "--dataset", "digits", "--steps", "100", "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "val_accuracy" in run.stderr and "done in" in run.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()
    misfit = subprocess.run([sys.executable, "-m", "compute.cli", "train", str(model),
                             "--dataset", "spirals"], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert misfit.returncode == 1
    assert "spirals gives float32 [B, 2], but Input 'x' expects float32 [B, 64]" in (
        misfit.stderr)
