"""The training loop, on real tiny runs on the CPU."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from compute.engine import STARTER_DATASETS, STARTERS, compile_graph, load_starter
from compute.engine.datasets import check_fit, csv_dataset, dataset_for, make_dataset
from compute.engine.training import (
    SilentReporter,
    TrainConfig,
    capture_attention,
    example_tokens,
    load_checkpoint,
    make_optimizer,
    pool_map,
    tokens_fit,
    train,
    train_graph,
)

from ..graphs import chain, document, input_node, nested, node


class Recorder(SilentReporter):
    """Keeps everything; stops when `should_stop` has been asked `stop_on_ask` times."""

    def __init__(self, stop_on_ask: int | None = None) -> None:
        self.metrics: list[tuple[int, str, float]] = []
        self.attention: list[tuple[int, str, list]] = []
        self.tokens: list[list[str] | None] = []  # each attention map's, in order
        self.samples: list[tuple[int, str]] = []
        self.checkpoints: list[tuple[int, Path]] = []
        self.asked = 0
        self.stop_on_ask = stop_on_ask

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.metrics.append((step, name, value))

    def on_attention(self, step: int, node: str, maps: list,
                     tokens: list[str] | None = None) -> None:
        self.attention.append((step, node, maps))
        self.tokens.append(tokens)

    def on_sample(self, step: int, text: str) -> None:
        self.samples.append((step, text))

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.checkpoints.append((step, path))

    def should_stop(self) -> bool:
        self.asked += 1
        return self.stop_on_ask is not None and self.asked >= self.stop_on_ask

    def values(self, name: str) -> list[float]:
        return [v for _, n, v in self.metrics if n == name]

    def steps(self, name: str) -> list[int]:
        return [s for s, n, _ in self.metrics if n == name]


def test_the_mlp_starter_learns_digits_past_90_percent_with_the_defaults() -> None:
    model = compile_graph(load_starter("mlp"))
    recorder = Recorder()
    result = train(model, dataset_for(model, "digits"), TrainConfig(), recorder)
    assert result.metrics["val_accuracy"] > 0.9
    assert result.steps == 300 and not result.stopped
    assert recorder.steps("val_loss") == [50, 100, 150, 200, 250, 300]
    for name in ("train_loss", "lr", "grad_norm", "samples_per_s", "val_accuracy"):
        assert recorder.values(name), name
    assert recorder.values("lr")[-1] == pytest.approx(TrainConfig().min_lr)


@pytest.mark.slow
@pytest.mark.parametrize(("starter", "steps", "better_than"), [
    ("cnn", 300, 0.9),
    ("transformer_classifier", 300, 0.5),  # modadd: chance is 0.1
    ("resnet", 40, 0.5),  # the defaults reach 98.8% in 300 steps (94 s here): a shorter run
])
def test_the_other_classifier_starters_learn_their_dataset_with_the_defaults(
        starter: str, steps: int, better_than: float) -> None:
    model = compile_graph(load_starter(starter))
    data = dataset_for(model, STARTER_DATASETS[starter])
    result = train(model, data, TrainConfig(steps=steps))
    assert result.metrics["val_accuracy"] > better_than


@pytest.mark.slow
def test_the_char_gpt_starters_validation_loss_falls_over_its_whole_default_run() -> None:
    """On its dataset (tiny Shakespeare) with the default settings, the char GPT's
    validation loss is lower at every evaluation than at the one before: it learns, it does
    not learn the text by heart (on the 4 KB harbour text it rose after 50 steps)."""
    model = compile_graph(load_starter("char_gpt"))
    recorder = Recorder()
    config = TrainConfig(sample_length=0, attention_interval=0)
    train(model, dataset_for(model, STARTER_DATASETS["char_gpt"]), config, recorder)
    val = recorder.values("val_loss")
    assert len(val) == config.steps // config.eval_interval
    assert all(later < earlier for earlier, later in itertools.pairwise(val)), val
    assert val[-1] < 2.3  # 2.13 at step 250 in a run here; uniform guessing is 4.85


def test_every_starter_has_a_dataset_that_fits_it() -> None:
    for name in STARTERS:
        model = compile_graph(load_starter(name))
        assert check_fit(model, dataset_for(model, STARTER_DATASETS[name])) == [], name


def test_the_char_gpt_starter_loss_falls_on_the_text_and_it_writes_samples() -> None:
    model = compile_graph(load_starter("char_gpt"))
    recorder = Recorder()
    config = TrainConfig(steps=60, batch_size=16, eval_interval=30, log_interval=5,
                         eval_batches=2, sample_length=20)
    train(model, dataset_for(model, "harbour"), config, recorder)
    losses = recorder.values("train_loss")
    assert losses[0] > 4.0  # about ln(128) = 4.85 at the start: uniform over ASCII
    assert losses[-1] < losses[0] - 1.5
    assert recorder.values("val_loss")[-1] < 3.5
    assert [s for s, _ in recorder.samples] == [30, 60]
    assert all(len(text) == 20 and text.isascii() for _, text in recorder.samples)
    assert recorder.values("tokens_per_s")[-1] > 0


def test_the_llama_starter_loss_falls_on_the_text_in_a_few_steps() -> None:
    model = compile_graph(load_starter("llama"))
    assert 2_000_000 < sum(p.numel() for p in model.parameters()) < 5_000_000
    recorder = Recorder()
    config = TrainConfig(steps=8, batch_size=8, eval_interval=8, log_interval=2,
                         eval_batches=1, sample_length=10)
    train(model, dataset_for(model, "harbour"), config, recorder)
    losses = recorder.values("train_loss")
    assert losses[0] > 4.0  # about ln(128) = 4.85 at the start
    assert losses[-1] < losses[0] - 1.0
    assert recorder.values("val_loss")[-1] < 3.8
    assert sorted(n for _, n, _ in recorder.attention) == [f"blocks.{i}.attn" for i in range(4)]


def test_only_text_datasets_get_text_samples() -> None:
    model = compile_graph(load_starter("char_gpt"))
    recorder = Recorder()
    train(model, dataset_for(model, "copy"), TrainConfig(steps=2, batch_size=4), recorder)
    assert recorder.samples == [] and recorder.values("val_accuracy")


def test_a_csv_regression_trains_with_mean_squared_error() -> None:
    rows = "\n".join(f"{i / 50:.3f},{1 - i / 100:.3f},{2 * i / 50 - (1 - i / 100):.4f}"
                     for i in range(100))
    data = csv_dataset("a,b,y\n" + rows, task="regression")
    model = compile_graph(chain([2], node("fc", "Linear", out_features=1)))
    result = train(model, data, TrainConfig(steps=200, eval_interval=200, lr=0.05))
    assert result.metrics["val_loss"] < 1e-3 and "val_accuracy" not in result.metrics


# Attention maps.


def test_attention_maps_are_captured_per_copy_small_and_causal() -> None:
    model = compile_graph(load_starter("char_gpt"))
    maps = capture_attention(model, torch.randint(0, 128, (1, 64)))
    assert sorted(maps) == [f"blocks.{i}.attn" for i in range(4)]
    for weights in maps.values():
        assert weights.shape == (4, 64, 64)  # heads, query, key
        assert torch.allclose(weights.sum(-1), torch.ones(4, 64), atol=1e-5)
        assert torch.all(weights.triu(diagonal=1) == 0)
    assert model.training  # left as it was
    assert all(m.capture_attention is False and m.last_attention is None
               for m in model.modules() if hasattr(m, "capture_attention"))


def test_long_attention_maps_are_pooled_to_64_with_rows_that_still_sum_to_one() -> None:
    doc = load_starter("char_gpt")
    doc["nodes"][0]["params"]["shape"] = [128]
    doc["nodes"][2]["params"]["max_len"] = 128
    maps = capture_attention(compile_graph(doc), torch.randint(0, 128, (1, 128)))
    weights = maps["blocks.3.attn"]
    assert weights.shape == (4, 64, 64)
    assert torch.allclose(weights.sum(-1), torch.ones(4, 64), atol=1e-5)
    assert torch.all(weights.triu(diagonal=1) == 0)  # 2×2 blocks: the diagonal ones only
    uneven = pool_map(torch.softmax(torch.randn(2, 100, 100), -1))
    assert uneven.shape == (2, 64, 64)
    assert torch.allclose(uneven.sum(-1), torch.ones(2, 64), atol=1e-5)


def test_attention_snapshots_reach_the_reporter_on_schedule_as_lists() -> None:
    model = compile_graph(load_starter("transformer_classifier"))
    recorder = Recorder()
    train(model, dataset_for(model, "modadd"),
          TrainConfig(steps=4, batch_size=8, eval_interval=4, attention_interval=2), recorder)
    assert [(s, n) for s, n, _ in recorder.attention] == [
        (2, "encoder.0.attn"), (2, "encoder.1.attn"), (4, "encoder.0.attn"),
        (4, "encoder.1.attn")]
    heads = recorder.attention[0][2]
    assert isinstance(heads, list) and len(heads) == 4
    assert len(heads[0]) == 16 and len(heads[0][0]) == 16
    assert sum(heads[0][0]) == pytest.approx(1.0, abs=1e-5)


def head_from_parts(width: int) -> tuple[list[dict], list[tuple[str, str]]]:
    """One causal attention head from its parts, from `h` to `out`."""
    nodes = [node("q", "Linear", out_features=width), node("k", "Linear", out_features=width),
             node("v", "Linear", out_features=width), node("qs", "Scale"),
             node("scores", "MatMul", transpose_b=True), node("mask", "CausalMask"),
             node("weights", "Softmax", dim=-1), node("mix", "MatMul"),
             node("out", "Linear", out_features=width)]
    edges = [("h", "q"), ("h", "k"), ("h", "v"), ("q", "qs"), ("qs", "scores.a"),
             ("k", "scores.b"), ("scores", "mask"), ("mask", "weights"), ("weights", "mix.a"),
             ("v", "mix.b"), ("mix", "out")]
    return nodes, edges


def test_a_head_built_from_parts_shows_its_attention_like_the_block() -> None:
    head, wires = head_from_parts(16)
    doc = document(
        [input_node("tokens", [16], "int64"),
         node("h", "Embedding", num_embeddings=32, embedding_dim=16), *head,
         node("pool", "Mean", dim=1), node("logits", "Linear", out_features=10),
         node("y", "Output")],
        [("tokens", "h"), *wires, ("out", "pool"), ("pool", "logits"), ("logits", "y")])
    model = compile_graph(doc)
    recorder = Recorder()
    train(model, dataset_for(model, "modadd"),
          TrainConfig(steps=4, batch_size=8, eval_interval=4, attention_interval=2), recorder)
    assert [(s, n) for s, n, _ in recorder.attention] == [(2, "weights"), (4, "weights")]
    maps = torch.tensor(recorder.attention[-1][2])
    assert maps.shape == (1, 16, 16)  # one head: queries × keys
    assert torch.allclose(maps.sum(-1), torch.ones(1, 16), atol=1e-5)
    assert torch.all(maps.triu(diagonal=1) == 0)
    assert model.training and not model.weights._forward_hooks  # the capture left no trace


def test_a_head_from_parts_inside_a_repeat_is_captured_per_copy() -> None:
    head, wires = head_from_parts(8)
    body = nested([{"id": "h", "type": "Input"}, *head, node("res", "Add"), node("o", "Output")],
                  [*wires, ("h", "res.a"), ("out", "res.b"), ("res", "o")])
    doc = document([input_node("x", [5, 8]),
                    {"id": "blocks", "type": "Repeat", "params": {"times": 2}, "graph": body},
                    node("y", "Output")], [("x", "blocks"), ("blocks", "y")])
    maps = capture_attention(compile_graph(doc), torch.randn(1, 5, 8))
    assert sorted(maps) == ["blocks.0.weights", "blocks.1.weights"]
    assert all(m.shape == (1, 5, 5) for m in maps.values())


# Checkpoints, cancellation, determinism.


def dropout_mlp() -> dict:
    return chain([64], node("fc", "Linear", out_features=32), node("drop", "Dropout", p=0.3),
                 node("out", "Linear", out_features=10))


def test_a_run_resumed_from_a_checkpoint_continues_from_its_step_and_ends_the_same(
        tmp_path: Path) -> None:
    data = make_dataset("digits")
    config = TrainConfig(steps=20, batch_size=16, eval_interval=20, log_interval=5,
                         checkpoint_interval=10)
    whole, first = compile_graph(dropout_mlp(), seed=1), Recorder()
    train(whole, data, config, first, checkpoint_dir=tmp_path / "a")
    assert [s for s, _ in first.checkpoints] == [10, 20]
    resumed, second = compile_graph(dropout_mlp(), seed=99), Recorder()  # other weights
    result = train(resumed, data, config, second, checkpoint_dir=tmp_path / "b",
                   resume_from=tmp_path / "a" / "step-000010.safetensors")
    assert result.steps == 20
    assert second.steps("train_loss") == [15, 20]  # it went on from step 10
    assert second.values("train_loss") == first.values("train_loss")[2:]
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_checkpoint_holds_the_optimizer_state_and_the_step(tmp_path: Path) -> None:
    model = compile_graph(load_starter("mlp"))
    result = train(model, make_dataset("digits"), TrainConfig(steps=5, batch_size=8),
                   checkpoint_dir=tmp_path)
    assert result.checkpoint == tmp_path / "step-000005.safetensors"
    fresh = compile_graph(load_starter("mlp"), seed=5)
    optimizer = make_optimizer(fresh, TrainConfig())
    assert load_checkpoint(result.checkpoint, fresh, optimizer) == 5
    state = optimizer.state_dict()["state"]
    assert len(state) == len(list(fresh.parameters()))
    assert all(float(slots["step"]) == 5 for slots in state.values())
    with pytest.raises(ValueError, match="is of another model"):
        load_checkpoint(result.checkpoint, compile_graph(dropout_mlp()))


def test_a_run_stops_within_one_step_of_being_asked_and_keeps_a_checkpoint(
        tmp_path: Path) -> None:
    recorder = Recorder(stop_on_ask=4)  # asked before steps 1, 2, 3, 4: 3 steps run
    config = TrainConfig(steps=100, batch_size=8, log_interval=1)
    result = train(compile_graph(load_starter("mlp")), make_dataset("digits"), config,
                   recorder, checkpoint_dir=tmp_path)
    assert result.stopped and result.steps == 3
    assert recorder.steps("train_loss") == [1, 2, 3]
    assert recorder.checkpoints == [(3, tmp_path / "step-000003.safetensors")]


def test_the_same_seed_gives_the_same_run() -> None:
    config = TrainConfig(steps=10, batch_size=16, log_interval=1)
    runs = []
    for _ in range(2):
        recorder = Recorder()
        model = compile_graph(dropout_mlp())
        train(model, make_dataset("digits"), config, recorder)
        runs.append((recorder.values("train_loss"), model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())


def test_the_learning_rate_warms_up_then_decays_to_the_minimum() -> None:
    config = TrainConfig(steps=100, lr=1e-2, min_lr=1e-3, warmup_steps=10)
    assert config.lr_at(0) == pytest.approx(1e-3)
    assert config.lr_at(9) == pytest.approx(1e-2)
    assert config.lr_at(99) == pytest.approx(1e-3)
    assert 1e-3 < config.lr_at(50) < 1e-2
    assert problems(steps=0) == ["steps must be at least 1 and at most 1,000,000,000, got 0"]


def problems(**given: Any) -> list[str]:
    """What TrainConfig says of these settings, one sentence per wrong setting."""
    with pytest.raises(ValidationError) as caught:
        TrainConfig(**given)
    return [p.message for p in TrainConfig.problems(caught.value)]


@pytest.mark.parametrize(("name", "words"), [
    ("lr", "above 0 and at most 100"), ("min_lr", "at least 0 and at most 100"),
    ("weight_decay", "at least 0 and at most 10"), ("grad_clip", "above 0 and at most 1,000,000"),
    ("sample_temperature", "at least 0 and at most 100"), ("beta2", "at least 0 and below 1")])
def test_a_setting_that_is_not_a_finite_number_is_refused_with_its_range(
        name: str, words: str) -> None:
    for value in (float("inf"), float("nan")):
        assert problems(**{name: value}) == [f"{name} must be {words}, got {value}"]


def test_the_settings_are_strict_and_refuse_unknown_names() -> None:
    assert problems(steps=True, lr="0.1", stpes=3) == [
        "steps must be a whole number, got True", "lr must be a number, got '0.1'",
        "there is no setting 'stpes'; settings: " + ", ".join(TrainConfig.model_fields)]
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


def test_derived_defaults_follow_the_settings_they_come_from() -> None:
    config = TrainConfig(steps=10_000, lr=0.02, eval_interval=50)
    assert config.min_lr == 0.002
    assert config.checkpoint_interval == 50
    assert config.attention_interval == 200  # every 4th evaluation: at most 64 snapshots
    assert TrainConfig(steps=100).attention_interval == 50
    assert problems(lr=0.1, min_lr=0.5) == ["min_lr must be at most lr (0.1), got 0.5"]
    assert problems(steps=1000, attention_interval=1) == [
        "attention_interval 1 would keep 1000 attention snapshots; the most is 64 (raise it "
        "to at least 16)"]


def test_a_capped_config_takes_at_most_its_steps_in_every_interval() -> None:
    capped = TrainConfig.capped(500)
    assert capped(steps=500).steps == 500
    with pytest.raises(ValidationError) as caught:
        capped(steps=501, log_interval=600)
    assert [p.message for p in capped.problems(caught.value, prefix="config.")] == [
        "config.steps must be at least 1 and at most 500, got 501",
        "config.log_interval must be at least 1 and at most 500, got 600"]
    assert capped.model_json_schema()["properties"]["warmup_steps"]["maximum"] == 500


def test_train_graph_refuses_a_dataset_that_does_not_fit_before_training(
        tmp_path: Path) -> None:
    from compute.engine.datasets import FitError

    with pytest.raises(FitError) as caught:
        train_graph(load_starter("mlp"), "spirals", TrainConfig(steps=1), out_dir=tmp_path)
    assert caught.value.problems[-1] == ("the model outputs 10 classes, but spirals has 3: "
                                         "make the last Linear ('logits') 3 wide "
                                         "(out_features 3)")
    assert not (tmp_path / "model.safetensors").exists()


def test_the_engine_training_side_imports_no_django() -> None:
    code = ("import sys, compute.engine.training, compute.engine.datasets; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('django', 'celery', 'channels')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_loss_that_stays_nan_ends_the_run_naming_the_step_it_became_nan() -> None:
    from compute.engine.training import NONFINITE_STEPS, LossNotFinite

    model = compile_graph(load_starter("mlp"))
    recorder = Recorder()
    config = TrainConfig(steps=300, optimizer="sgd", lr=100.0, min_lr=10.0, warmup_steps=0,
                         grad_clip=None, log_interval=1)
    with pytest.raises(LossNotFinite) as raised:
        train(model, dataset_for(model, "digits"), config, recorder)
    losses = list(zip(recorder.steps("train_loss"), recorder.values("train_loss"),
                      strict=True))
    bad = [s for s, v in losses if not math.isfinite(v)]
    assert bad == list(range(bad[0], bad[0] + NONFINITE_STEPS))  # three in a row, then stop
    assert raised.value.step == bad[0] and losses[-1][0] == bad[-1]
    assert str(raised.value) == (f"the loss became NaN at step {bad[0]}: lower the learning "
                                 "rate or clip gradients")


def test_a_nan_loss_is_caught_at_the_next_log_step_naming_the_same_first_step() -> None:
    # The loop reads the loss once per log interval (no device sync a step): a diverged run
    # ends at the next one, and names the same step as when it reads every step.
    from compute.engine.training import LossNotFinite

    def raised(log_interval: int) -> tuple[int, list[int]]:
        model = compile_graph(load_starter("mlp"))
        recorder = Recorder()
        config = TrainConfig(steps=300, optimizer="sgd", lr=100.0, min_lr=10.0,
                             warmup_steps=0, grad_clip=None, log_interval=log_interval)
        with pytest.raises(LossNotFinite) as caught:
            train(model, dataset_for(model, "digits"), config, recorder)
        return caught.value.step, recorder.steps("train_loss")

    every_step, _ = raised(1)
    step, logged = raised(7)
    assert step == every_step
    assert logged[-1] % 7 == 0 and step + 2 <= logged[-1] < step + 2 + 7
    assert all(s % 7 == 0 for s in logged)


def test_an_infinite_loss_is_called_infinite() -> None:
    from compute.engine.training import LossNotFinite

    assert str(LossNotFinite(7, -math.inf)) == ("the loss became infinite at step 7: lower "
                                                "the learning rate or clip gradients")


# A mixture of experts' load-balancing loss.


def moe_mlp(aux_loss_weight: float = 0.01) -> dict:
    return chain([64], node("fc", "Linear", out_features=16),
                 node("moe", "MixtureOfExperts", num_experts=4, top_k=2,
                      aux_loss_weight=aux_loss_weight),
                 node("head", "Linear", out_features=10))


def test_a_mixture_of_experts_reports_its_weighted_load_balancing_loss_beside_the_loss(
        ) -> None:
    model = compile_graph(moe_mlp())
    recorder = Recorder()
    config = TrainConfig(steps=100, batch_size=32, log_interval=25, eval_interval=50)
    result = train(model, dataset_for(model, "digits"), config, recorder)
    assert recorder.steps("aux_loss") == recorder.steps("train_loss") == [25, 50, 75, 100]
    # 0.01 times a loss that is 1 when balanced and at most num_experts.
    assert all(0 < v <= 0.04 for v in recorder.values("aux_loss"))
    losses = recorder.values("train_loss")
    assert losses[-1] < losses[0] - 1.0 and result.metrics["val_accuracy"] > 0.6  # it learns
    assert model.moe.aux_loss is None  # the last evaluation ran it in eval mode


def test_train_loss_is_the_task_loss_alone_and_the_aux_loss_comes_on_top() -> None:
    from compute.engine.training import _batch, loss_of

    model = compile_graph(moe_mlp(aux_loss_weight=50.0), seed=4)
    data = dataset_for(model, "digits")
    config = TrainConfig(steps=1, batch_size=16, log_interval=1, eval_interval=1)
    x, y = _batch(data.x_train, data.y_train, 16, config.seed, 0)
    with torch.no_grad():
        task = loss_of("classes", model(x), y).item()
        balance = model.moe.aux_loss.item()
    recorder = Recorder()
    train(model, data, config, recorder)
    assert recorder.values("train_loss") == [pytest.approx(task)]
    assert recorder.values("aux_loss") == [pytest.approx(50.0 * balance)]


def test_the_aux_loss_is_added_to_the_loss_it_moves_the_router_and_what_feeds_it() -> None:
    def one_step(weight: float) -> dict[str, torch.Tensor]:
        model = compile_graph(moe_mlp(), seed=5)
        model.moe.aux_loss_weight = weight
        config = TrainConfig(steps=1, batch_size=16, grad_clip=None, warmup_steps=0)
        train(model, dataset_for(model, "digits"), config)
        return model.state_dict()

    without, heavy = one_step(0.0), one_step(10.0)
    changed = {k for k in without if not torch.equal(without[k], heavy[k])}
    # Not the experts nor the head: the balance depends on the router's probabilities only.
    assert changed == {"fc.weight", "fc.bias", "moe.router.weight"}


def test_a_text_models_attention_maps_carry_the_examples_characters_one_per_position() -> None:
    model = compile_graph(load_starter("char_gpt"))
    data = dataset_for(model, "harbour")
    recorder = Recorder()
    train(model, data, TrainConfig(steps=2, batch_size=4, eval_interval=2, sample_length=0),
          recorder)
    assert data.decode is not None
    characters = list(data.decode(data.x_val[0].tolist()))
    assert len(characters) == 64 and recorder.attention
    for (_, _, maps), tokens in zip(recorder.attention, recorder.tokens, strict=True):
        assert tokens == characters
        assert len(maps[0]) == len(tokens)  # one per query row (and key column)


def test_a_pooled_maps_tokens_are_every_position_of_the_example() -> None:
    doc = load_starter("char_gpt")
    doc["nodes"][0]["params"]["shape"] = [128]
    doc["nodes"][2]["params"]["max_len"] = 128
    model = compile_graph(doc)
    data = dataset_for(model, "harbour")
    recorder = Recorder()
    train(model, data, TrainConfig(steps=1, batch_size=2, eval_interval=1, sample_length=0),
          recorder)
    assert data.decode is not None
    for (_, _, maps), tokens in zip(recorder.attention, recorder.tokens, strict=True):
        assert len(maps[0]) == 64  # pooled: each cell covers two positions
        assert tokens == list(data.decode(data.x_val[0].tolist())) and len(tokens) == 128


def test_a_token_tasks_attention_maps_carry_the_token_ids() -> None:
    model = compile_graph(load_starter("transformer_classifier"))
    data = dataset_for(model, "modadd")
    recorder = Recorder()
    train(model, data, TrainConfig(steps=2, batch_size=8, eval_interval=2), recorder)
    ids = [str(i) for i in data.x_val[0].tolist()]
    assert recorder.tokens and all(tokens == ids for tokens in recorder.tokens)
    assert len(ids) == len(recorder.attention[0][2][0])


def test_maps_over_something_other_than_the_example_get_no_tokens() -> None:
    assert example_tokens(make_dataset("digits", seed=0)) is None  # images: no tokens
    assert tokens_fit(["a", "b", "c"], torch.ones(1, 3, 3)) == ["a", "b", "c"]
    assert tokens_fit(["a", "b", "c"], torch.ones(1, 2, 2)) is None  # not its positions
    assert tokens_fit(["a", "b", "c"], torch.ones(1, 3, 2)) is None  # not square
    assert tokens_fit(list("x" * 100), torch.ones(1, 64, 64)) is not None  # pooled
