"""Several devices (`gpus`), on the CPU: gloo between 2 spawned processes, the MLP on
digits. Each data-parallel run starts its processes (seconds each), so the runs are few.

The tolerance: two processes average their halves' gradients where one process averages
the whole batch, so the float sums differ in their last bits; over these steps the losses
stay within a relative 1e-5 of one process's (docs/runs.md says so too)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from compute.engine import compile_graph, load_starter
from compute.engine.datasets import Dataset, dataset_for
from compute.engine.distributed import check_gpus
from compute.engine.training import LossNotFinite, TrainConfig, train

from .test_loop import Recorder

TOLERANCE = 1e-5  # relative, on each step's train_loss
SETTINGS: dict = {"steps": 200, "batch_size": 32, "log_interval": 1, "eval_interval": 10,
                  "attention_interval": 0, "checkpoint_interval": 10, "device": "cpu"}


class StopAfter(Recorder):
    """Stops once it has heard the train loss of step `step` (a data-parallel run goes on
    a few steps more while the stop reaches its processes)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.after = step

    def should_stop(self) -> bool:
        return any(n == "train_loss" and s >= self.after for s, n, _ in self.metrics)


def losses(recorder: Recorder) -> dict[int, float]:
    return dict(zip(recorder.steps("train_loss"), recorder.values("train_loss"), strict=True))


def assert_same_curve(got: dict[int, float], want: dict[int, float], steps: range) -> None:
    for step in steps:
        assert got[step] == pytest.approx(want[step], rel=TOLERANCE), step


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return dataset_for(compile_graph(load_starter("mlp")), "digits")


@pytest.fixture(scope="module")
def one_process(digits: Dataset, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[Recorder, Path]:
    """30 steps in one process, with checkpoints at 10, 20 and 30."""
    folder = tmp_path_factory.mktemp("one")
    recorder = StopAfter(30)
    result = train(compile_graph(load_starter("mlp")), digits, TrainConfig(**SETTINGS),
                   recorder, checkpoint_dir=folder)
    assert result.steps == 30
    return recorder, folder


@pytest.mark.slow  # starts 2 processes: seconds
def test_two_processes_follow_one_and_their_checkpoint_resumes_on_one(
        digits: Dataset, one_process: tuple[Recorder, Path], tmp_path: Path) -> None:
    single, _ = one_process
    recorder = StopAfter(15)
    result = train(compile_graph(load_starter("mlp")), digits,
                   TrainConfig(**SETTINGS, gpus=2), recorder, checkpoint_dir=tmp_path)

    # The stop reached both processes: the run ended early, with a checkpoint.
    assert result.stopped and 15 <= result.steps < 200
    assert (tmp_path / f"step-{result.steps:06d}.safetensors").is_file()
    # Rank 0 alone reported: every step's loss once, every evaluation once.
    assert recorder.steps("train_loss") == list(range(1, result.steps + 1))
    assert recorder.steps("val_loss") == list(range(10, result.steps + 1, 10))
    assert_same_curve(losses(recorder), losses(single), range(1, min(result.steps, 30) + 1))
    # The unwrapped module's names, as one process writes them.
    names = [k for k in load_file(str(tmp_path / "step-000010.safetensors"))
             if k.startswith("model.")]
    assert names and not any(k.startswith("model.module.") for k in names)

    # 2 -> 1: its checkpoint at step 10 goes on in one process as the one-process run did.
    resumed = StopAfter(30)
    train(compile_graph(load_starter("mlp")), digits, TrainConfig(**SETTINGS), resumed,
          resume_from=tmp_path / "step-000010.safetensors")
    assert recorder.steps("train_loss")[0] == 1 and resumed.steps("train_loss")[0] == 11
    assert_same_curve(losses(resumed), losses(single), range(11, 31))


@pytest.mark.slow  # starts 2 processes: seconds
def test_a_one_process_checkpoint_resumes_on_two(
        digits: Dataset, one_process: tuple[Recorder, Path], tmp_path: Path) -> None:
    single, folder = one_process
    model = compile_graph(load_starter("mlp"))
    recorder = StopAfter(20)
    result = train(model, digits, TrainConfig(**SETTINGS, gpus=2), recorder,
                   checkpoint_dir=tmp_path, resume_from=folder / "step-000010.safetensors")
    assert result.stopped and recorder.steps("train_loss")[0] == 11
    assert_same_curve(losses(recorder), losses(single), range(11, min(result.steps, 30) + 1))
    # The model given holds the weights rank 0 ended with, as its last checkpoint has them.
    saved = load_file(str(result.checkpoint))
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[f"model.{name}"]), name


@pytest.mark.slow  # starts 2 processes: seconds
def test_a_diverging_run_fails_with_its_reason_from_the_training_processes(
        digits: Dataset) -> None:
    config = TrainConfig(steps=20, batch_size=32, lr=100, optimizer="sgd", grad_clip=None,
                         warmup_steps=0, device="cpu", gpus=2)
    with pytest.raises(LossNotFinite, match="the loss became NaN at step"):
        train(compile_graph(load_starter("mlp")), digits, config)


def test_a_batch_that_does_not_split_evenly_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"batch_size 30 does not split evenly across "
                       r"4 GPUs .*give a multiple of 4, such as 28"):
        TrainConfig(batch_size=30, gpus=4)
    assert TrainConfig(batch_size=32, gpus=4).gpus == 4
    with pytest.raises(ValidationError, match="gpus"):
        TrainConfig(gpus=0)


def test_more_gpus_than_the_machine_has_is_refused() -> None:
    have = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"{have + 1} GPUs were asked for, but this machine "
                       f"has {have} CUDA device"):
        check_gpus(torch.device("cuda"), have + 1)
    check_gpus(torch.device("cpu"), 8)  # on the CPU: processes, as many as asked


@pytest.mark.slow  # starts 2 processes: seconds
def test_a_text_model_on_two_processes_writes_samples_and_attention_maps_once(
        tmp_path: Path) -> None:
    model = compile_graph(load_starter("char_gpt"))
    recorder = Recorder()
    config = TrainConfig(steps=4, batch_size=8, eval_interval=2, log_interval=2,
                         eval_batches=1, sample_length=10, attention_interval=2,
                         device="cpu", gpus=2)
    result = train(model, dataset_for(model, "harbour"), config, recorder,
                   checkpoint_dir=tmp_path)
    assert result.steps == 4 and not result.stopped
    assert [s for s, _ in recorder.samples] == [2, 4]
    assert all(len(text) == 10 for _, text in recorder.samples)
    nodes = {n for _, n, _ in recorder.attention}
    assert nodes and sorted(s for s, _, _ in recorder.attention) == sorted(
        [2] * len(nodes) + [4] * len(nodes))
    assert all(tokens is not None and len(tokens) for tokens in recorder.tokens)
    assert [s for s, _ in recorder.checkpoints] == [2, 4]


class KillsRank1(Recorder):
    """SIGKILLs the second training process (as the system does when memory runs out) once
    the run has begun."""

    def on_metric(self, step: int, name: str, value: float) -> None:
        super().on_metric(step, name, value)
        for child in multiprocessing.active_children():
            if child.name == "shipyard-rank-1" and child.pid:
                os.kill(child.pid, signal.SIGKILL)


@pytest.mark.slow  # starts 2 processes: seconds
def test_a_killed_training_process_fails_the_run_saying_so_and_ends_the_others(
        digits: Dataset) -> None:
    config = TrainConfig(steps=100_000, batch_size=32, log_interval=1, eval_interval=100_000,
                         attention_interval=0, device="cpu", gpus=2)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="training process shipyard-rank-1 was killed "
                       r"\(SIGKILL\); the machine may be out of memory"):
        train(compile_graph(load_starter("mlp")), digits, config, KillsRank1())
    assert time.monotonic() - began < 60
    assert not [c for c in multiprocessing.active_children()
                if c.name.startswith("shipyard-rank")]
