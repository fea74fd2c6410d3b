"""Benchmark runs in the engine (compute/engine/benchmark.py): the settings, every figure of
every backend that runs here, failures reported not dropped, stopping, and per-node costs,
checked against a graph whose costs are known."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from compute.engine import benchmark as bench
from compute.engine import load_graph, load_starter
from compute.engine.benchmark import (
    BACKENDS,
    BenchmarkSettings,
    benchmark_events,
    machine_info,
    run_benchmark,
)

from .graphs import chain, node, repeat

FIGURES = ("latency_ms_median", "latency_ms_p95", "samples_per_s", "peak_memory_bytes",
           "flops_per_s", "max_abs_diff")


def settings(**given: Any) -> BenchmarkSettings:
    base: dict[str, Any] = {"batch_sizes": [1, 4], "backends": ["eager"], "warmup": 1,
                            "repeats": 3, "device": "cpu"}
    return BenchmarkSettings(**{**base, **given})


def problems(**given: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(ValidationError) as caught:
        BenchmarkSettings(**given)
    return [(p.field, p.message) for p in BenchmarkSettings.problems(caught.value)]


# Settings.


def test_defaults_are_the_issues() -> None:
    s = BenchmarkSettings()
    assert (s.batch_sizes, s.backends, s.warmup, s.repeats) == ([1, 8, 64], list(BACKENDS), 3, 20)
    assert (s.device, s.seed, s.per_node) == ("auto", 0, True)
    assert BenchmarkSettings.describe()["kind"] == "benchmark"


@pytest.mark.parametrize(("batch_sizes", "words"), [
    ([0], "at least 1 and at most 4,096, got 0"),
    ([1, 5000], "at least 1 and at most 4,096, got 5000"),
    ([8, 1, 8], "must not repeat a size, got 8 twice"),
    ([], "must list 1 to 8 batch sizes, got 0"),
    (list(range(1, 10)), "must list 1 to 8 batch sizes, got 9"),
    (["8"], "must hold whole numbers, got '8'"),
    ([True], "must hold whole numbers, got True"),
])
def test_bad_batch_sizes_are_refused_by_name(batch_sizes: list[Any], words: str) -> None:
    ((field, message),) = problems(batch_sizes=batch_sizes)
    assert field == "batch_sizes"
    assert message.startswith("batch_sizes ") and words in message


def test_bad_backends_and_counts_are_refused_by_name() -> None:
    ((field, message),) = problems(backends=["eager", "tpu"])
    assert field == "backends" and "got 'tpu'" in message and "onnxruntime" in message
    assert problems(backends=[]) == [("backends", "backends must name at least one backend")]
    assert "got eager twice" in problems(backends=["eager", "eager"])[0][1]
    assert problems(warmup=101)[0][1] == "warmup must be at least 0 and at most 100, got 101"
    assert problems(repeats=0)[0][0] == "repeats"
    assert problems(device="tpu")[0][0] == "device"


def test_machine_info_names_the_machine() -> None:
    info = machine_info("cpu")
    assert info["device"] == "cpu" and info["gpu"] is None and info["gpu_memory"] is None
    assert info["cores"] >= 1 and info["cpu"] and info["torch"] == torch.__version__
    assert info["onnxruntime"] and info["python"].startswith("3.")


# Every figure, on every backend that runs here.


@pytest.fixture(scope="module")
def mlp_run() -> tuple[list[dict[str, Any]], bench.BenchmarkResult]:
    graph = load_graph(load_starter("mlp"))
    events: list[dict[str, Any]] = []
    result = run_benchmark(graph, settings(backends=list(BACKENDS)), on_event=events.append)
    return events, result


def test_every_backend_that_runs_here_gives_every_figure(mlp_run: Any) -> None:
    events, result = mlp_run
    rows = {(r["backend"], r["batch"]): r for r in result.rows}
    assert set(rows) == {(b, n) for b in BACKENDS for n in (1, 4)}
    for backend in ("eager", "compile", "onnxruntime"):
        for batch in (1, 4):
            row = rows[backend, batch]
            if backend == "compile" and row["error"]:  # no C compiler: a reason, one sentence
                assert row["error"].count("\n") == 0 and len(row["error"]) <= 300
                continue
            assert row["error"] == "", row
            for figure in FIGURES:
                assert row[figure] is not None and row[figure] >= 0, (backend, figure)
            assert row["tokens_per_s"] is None  # the MLP takes no tokens
            assert row["latency_ms_p95"] >= row["latency_ms_median"] > 0
            assert row["samples_per_s"] == pytest.approx(
                batch / (row["latency_ms_median"] / 1e3))
            assert row["peak_memory_bytes"] > 1 << 20  # a process's resident set
            assert row["within_tolerance"] is True
            assert row["max_abs_diff"] < 1e-4
    assert rows["eager", 1]["max_abs_diff"] == 0.0
    # FLOP/s follow the inspected count: 2·(64·128 + 128·64 + 64·10) multiply-adds a sample.
    eager = rows["eager", 4]
    flops = 2 * (64 * 128 + 128 * 64 + 64 * 10) * 4
    assert eager["flops_per_s"] == pytest.approx(flops / (eager["latency_ms_median"] / 1e3),
                                                 rel=0.02)
    assert events[0]["type"] == "machine" and result.machine["device"] == "cpu"


def test_bf16_on_the_cpu_is_reported_not_dropped(mlp_run: Any) -> None:
    _, result = mlp_run
    for row in result.rows:
        if row["backend"] in ("eager_bf16", "compile_bf16"):
            assert "runs on a GPU worker only" in row["error"]
            assert row["latency_ms_median"] is None and row["within_tolerance"] is False


def test_events_come_in_order_with_throttled_progress(mlp_run: Any) -> None:
    events, _ = mlp_run
    assert [e["type"] for e in events].count("machine") == 1
    for i, event in enumerate(events):
        if event["type"] == "benchmark" and not event["error"]:
            # Its progress events come just before it, from 0 to all its repetitions.
            before = []
            j = i - 1
            while events[j]["type"] == "progress":
                before.insert(0, events[j])
                j -= 1
            assert before and before[0]["done"] == 0 and before[-1]["done"] == 4
            assert all((p["backend"], p["batch"], p["total"]) ==
                       (event["backend"], event["batch"], 4) for p in before)
    costs = [e for e in events if e["type"] == "node_costs"]
    assert [(c["backend"], c["batch"]) for c in costs] == [("eager", 1), ("eager", 4)]


def test_progress_is_at_most_every_tenth() -> None:
    graph = load_graph(load_starter("mlp"))
    events = list(benchmark_events(graph, settings(batch_sizes=[1], repeats=200,
                                                   per_node=False)))
    done = [e["done"] for e in events if e["type"] == "progress"]
    assert done[0] == 0 and done[-1] == 201
    assert len(done) <= 12


# Failures.


def test_a_failing_backend_is_reported_and_the_others_still_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: Any) -> Any:
        raise RuntimeError("this backend cannot lower aten.frobnicate\nlong trace follows")

    def fails_at_four(ctx: Any) -> Any:
        def run(args: tuple[torch.Tensor, ...]) -> Any:
            if args[0].shape[0] == 4:
                raise MemoryError("out of memory")
            return ctx.model(*args)
        return run

    # The test-only injection point: PREPARERS maps each backend to what prepares it.
    monkeypatch.setitem(bench.PREPARERS, "compile", broken)
    monkeypatch.setitem(bench.PREPARERS, "onnxruntime", fails_at_four)
    graph = load_graph(load_starter("mlp"))
    result = run_benchmark(graph, settings(backends=["compile", "onnxruntime", "eager"],
                                           per_node=False))
    rows = {(r["backend"], r["batch"]): r for r in result.rows}
    for batch in (1, 4):
        assert rows["compile", batch]["error"] == (
            "RuntimeError: this backend cannot lower aten.frobnicate")
        assert rows["compile", batch]["latency_ms_median"] is None
        assert rows["eager", batch]["error"] == "" and rows["eager", batch]["samples_per_s"]
    assert rows["onnxruntime", 1]["error"] == ""
    assert rows["onnxruntime", 4]["error"] == "MemoryError: out of memory"


def test_outputs_beyond_tolerance_are_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_a_bit(ctx: Any) -> Any:
        return lambda args: ctx.model(*args) + 0.5

    monkeypatch.setitem(bench.PREPARERS, "compile", off_by_a_bit)
    graph = load_graph(load_starter("mlp"))
    result = run_benchmark(graph, settings(backends=["compile"], batch_sizes=[2],
                                           per_node=False))
    (row,) = result.rows
    assert row["error"] == "" and row["max_abs_diff"] == pytest.approx(0.5)
    assert row["within_tolerance"] is False


def test_weights_that_do_not_fit_are_refused() -> None:
    graph = load_graph(load_starter("mlp"))
    with pytest.raises(ValueError, match="the weights do not fit this graph"):
        list(benchmark_events(graph, settings(), state_dict={"nope": torch.zeros(1)}))


def test_given_weights_are_the_ones_measured() -> None:
    graph = load_graph(chain([4], node("fc", "Linear", out_features=2)))
    weights = {"fc.weight": torch.zeros(2, 4), "fc.bias": torch.ones(2)}
    seen: list[torch.Tensor] = []

    def spy(ctx: Any) -> Any:
        seen.append(ctx.model(torch.randn(3, 4)))
        return lambda args: ctx.model(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(bench.PREPARERS, "eager", spy)
        run_benchmark(graph, settings(per_node=False), state_dict=weights)
    assert torch.equal(seen[0], torch.ones(3, 2))


# Stopping.


def test_should_stop_stops_between_repetitions() -> None:
    graph = load_graph(load_starter("mlp"))
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 5

    result = run_benchmark(graph, settings(repeats=1000), should_stop=should_stop)
    assert result.stopped and result.rows == [] and asked <= 7
    assert result.machine["device"] == "cpu"


# Per-node costs.


def test_node_costs_cover_every_node_and_shares_sum_to_one() -> None:
    graph = load_graph(load_starter("char_gpt"))
    result = run_benchmark(graph, settings(batch_sizes=[2], repeats=3))
    (costs,) = result.node_costs
    ids = {n["node"] for n in costs["nodes"]}
    top = {"wte", "wpe", "drop", "blocks", "ln_f", "head"}
    inner = {"ln1", "attn", "res1", "ln2", "fc", "gelu", "proj", "drop", "res2"}
    assert ids == top | {f"blocks.{c}.{i}" for c in range(4) for i in inner}
    assert math.fsum(n["share"] for n in costs["nodes"] if n["parent"] is None) == (
        pytest.approx(1.0))
    # The method says how, and what the hooks cost: "... hooks: 2.1 ms a pass against 2 ms
    # without (+5.0%)".
    assert re.search(r"forward hooks .* hooks: \S+ ms a pass against \S+ ms without "
                     r"\([+-]\d+\.\d%\)$", costs["method"]), costs["method"]
    (eager,) = result.rows
    assert eager["tokens_per_s"] == pytest.approx(eager["samples_per_s"] * 64)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a busy machine (a test run, other jobs) a thread pool wider
    than the cores that are free makes each product wait for its slowest thread, which says
    nothing about the product. The timing method is the same with any number of threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_known_costs_find_the_big_product_and_the_ratio() -> None:
    """Linear 1024→1024, 1024→256, 256→8 at batch 256: FLOPs in the ratio 4 : 1 : 1/128.
    The per-node cost must find the first as the costliest, and its ratio to the second
    within a factor of 3 of 4 (between 4/3 and 12): a 0.5 GFLOP product and one a quarter
    of its size are not timed exactly in proportion (cache, kernel choice), but close."""
    graph = load_graph(chain([1024], node("big", "Linear", out_features=1024),
                             node("mid", "Linear", out_features=256),
                             node("small", "Linear", out_features=8)))
    result = run_benchmark(graph, settings(batch_sizes=[256], warmup=3, repeats=15))
    (costs,) = result.node_costs
    by_id = {n["node"]: n for n in costs["nodes"]}
    assert max(by_id.values(), key=lambda n: n["ms"])["node"] == "big"
    assert by_id["big"]["flops"] == 4 * by_id["mid"]["flops"] == 2 * 256 * 1024 * 1024
    ratio = by_id["big"]["ms"] / by_id["mid"]["ms"]
    assert 4 / 3 <= ratio <= 12, ratio
    assert by_id["big"]["share"] > 0.5
    assert by_id["big"]["flops_per_s"] == pytest.approx(
        by_id["big"]["flops"] / (by_id["big"]["ms"] / 1e3))


def test_a_repeats_copies_are_separate_and_summed() -> None:
    graph = load_graph(chain([256], node("wide", "Linear", out_features=256),
                             repeat("r", 3, node("fc", "Linear", out_features=256),
                                    node("act", "ReLU"))))
    result = run_benchmark(graph, settings(batch_sizes=[64], repeats=5))
    (costs,) = result.node_costs
    by_id = {n["node"]: n for n in costs["nodes"]}
    copies = [by_id[f"r.{c}.{i}"] for c in range(3) for i in ("fc", "act")]
    assert all(n["parent"] == "r" and n["ms"] > 0 for n in copies)
    assert by_id["r"]["parent"] is None and by_id["r"]["type"] == "Repeat"
    assert by_id["r"]["ms"] == pytest.approx(math.fsum(n["ms"] for n in copies))
    assert by_id["r"]["flops"] == sum(n["flops"] for n in copies) == 3 * by_id["wide"]["flops"]
    assert by_id["r"]["share"] == pytest.approx(math.fsum(n["share"] for n in copies))


def test_the_schema_gives_the_forms_limits() -> None:
    props = BenchmarkSettings.settings_schema()["properties"]
    assert props["batch_sizes"]["items"] == {"type": "integer", "minimum": 1, "maximum": 4096}
    assert (props["batch_sizes"]["minItems"], props["batch_sizes"]["maxItems"]) == (1, 8)
    assert props["batch_sizes"]["uniqueItems"] and props["backends"]["uniqueItems"]
    assert props["backends"]["items"]["enum"] == list(BACKENDS)


def test_nested_repeats_are_named_by_path_and_summed_once() -> None:
    graph = load_graph(chain([16], repeat("outer", 2, node("fc", "Linear", out_features=16),
                                          repeat("inner", 2,
                                                 node("lin", "Linear", out_features=16)))))
    (costs,) = run_benchmark(graph, settings(batch_sizes=[4])).node_costs
    by_id = {n["node"]: n for n in costs["nodes"]}
    assert by_id["outer.1.inner.0.lin"]["parent"] == "outer.1.inner"
    assert by_id["outer.1.inner"]["parent"] == "outer"
    inner = by_id["outer.1.inner"]
    assert inner["ms"] == pytest.approx(by_id["outer.1.inner.0.lin"]["ms"]
                                        + by_id["outer.1.inner.1.lin"]["ms"])
    direct = [n for n in costs["nodes"] if n["parent"] == "outer"]
    assert len(direct) == 4  # fc and inner, in each of the two copies
    assert by_id["outer"]["ms"] == pytest.approx(math.fsum(n["ms"] for n in direct))
    assert by_id["outer"]["share"] == pytest.approx(1.0)
    assert by_id["outer"]["flops"] == 6 * 2 * 16 * 16 * 4


def test_node_costs_that_fail_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_hooks(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hooks refused")

    monkeypatch.setattr(bench, "_Hooks", broken_hooks)
    graph = load_graph(load_starter("mlp"))
    result = run_benchmark(graph, settings(batch_sizes=[2]))
    (row,) = result.rows
    assert row["error"] == "" and row["latency_ms_median"] > 0
    (costs,) = result.node_costs
    assert costs["method"] == "failed: RuntimeError: hooks refused" and costs["nodes"] == []
