"""Limits: a graph that asks for too much is refused in words, quickly, before anything is
allocated."""

from __future__ import annotations

import time

import pytest

from compute.engine import (
    GraphError,
    Limits,
    compile_graph,
    inspect_graph,
    load_graph,
    load_starter,
    starter_names,
)
from compute.engine.graph import module_count, parse_graph

from .graphs import chain, node, repeat


def test_a_trillion_parameters_are_refused_quickly_with_the_figure_and_the_limit() -> None:
    doc = chain([1_000_000], node("huge", "Linear", out_features=1_000_000))
    start = time.perf_counter()
    report = inspect_graph(doc)
    with pytest.raises(GraphError) as caught:
        load_graph(doc)
    elapsed = time.perf_counter() - start
    print(f"refusing 10^12 parameters took {elapsed * 1000:.1f} ms")
    assert elapsed < 5
    (problem,) = report["problems"]
    assert problem["node"] == "huge"
    assert "1,000,001,000,000 parameters" in problem["message"]
    assert "the limit is 2,000,000,000 (SHIPYARD_MAX_PARAMS)" in problem["message"]
    assert "1,000,001,000,000" in str(caught.value)


def test_parameters_multiplied_by_a_repeat_count_against_the_limit() -> None:
    layer = node("lin", "Linear", out_features=4096)
    doc = chain([4096], repeat("stack", 1024, layer))  # 1024 × 16.8M ≈ 17 G
    start = time.perf_counter()
    report = inspect_graph(doc)
    print(f"refusing a 17 G Repeat took {(time.perf_counter() - start) * 1000:.1f} ms")
    assert time.perf_counter() - start < 5
    (problem,) = report["problems"]
    assert problem["node"] == "stack"
    assert f"{1024 * (4096 * 4096 + 4096):,} parameters" in problem["message"]


def test_a_model_just_under_the_parameter_limit_is_accepted() -> None:
    doc = chain([100], node("lin", "Linear", out_features=10))
    assert inspect_graph(doc, limits=Limits(max_params=1010))["valid"]
    report = inspect_graph(doc, limits=Limits(max_params=1009))
    assert "the limit is 1,009" in report["problems"][0]["message"]


def test_too_many_nodes_counts_nested_ones() -> None:
    doc = chain([8], repeat("stack", 2, node("a", "ReLU"), node("b", "ReLU")))
    # x, stack, y at the top and x, a, b, y inside: 7 nodes.
    assert inspect_graph(doc, limits=Limits(max_nodes=7))["valid"]
    report = inspect_graph(doc, limits=Limits(max_nodes=6))
    assert report["problems"][0]["message"] == (
        "the graph has 7 nodes (nested ones included); the limit is 6 (SHIPYARD_MAX_NODES)")
    with pytest.raises(GraphError):
        load_graph(doc, limits=Limits(max_nodes=6))


def test_repeats_nested_deeper_than_max_depth_are_refused_on_the_deepest_repeat() -> None:
    doc = chain([8], repeat("outer", 2, repeat("inner", 2, node("act", "ReLU"))))
    assert inspect_graph(doc, limits=Limits(max_depth=2))["valid"]
    report = inspect_graph(doc, limits=Limits(max_depth=1))
    problems = [(p["node"], p["field"], p["message"]) for p in report["problems"]]
    assert ("outer/inner", "graph", "nesting is 2 deep; the limit is 1 (SHIPYARD_MAX_DEPTH)") \
        in problems


def test_nested_repeats_building_millions_of_modules_are_refused_quickly_on_the_outer_one(
        ) -> None:
    # The probe's graph: 1024 × 1024 × 256 copies of a ReLU, each Repeat within its limits.
    doc = chain([1], repeat("outer", 1024, repeat("middle", 1024,
                                                  repeat("inner", 256, node("act", "ReLU")))))
    start = time.perf_counter()
    report = inspect_graph(doc)
    assert [(p["node"], p["field"], p["message"]) for p in report["problems"]] == [(
        "outer", "times",
        "its 1,024 copies, each a module holding 525,312, make 537,920,512: the model would "
        "build 537,920,512 modules, Repeat copies included; the limit is 5,000 "
        "(SHIPYARD_MAX_MODULES)")]
    with pytest.raises(GraphError) as caught:
        compile_graph(doc)
    elapsed = time.perf_counter() - start
    print(f"refusing 538 M modules took {elapsed * 1000:.1f} ms")
    assert elapsed < 5
    assert str(caught.value.problems[0]) == f"outer (times): {report['problems'][0]['message']}"


def test_every_copy_counts_against_max_modules_and_the_limit_itself_is_allowed() -> None:
    doc = chain([8], node("pre", "ReLU"), repeat("stack", 3, node("a", "ReLU"), node("b", "Tanh")))
    graph, _ = parse_graph(doc, Limits())
    assert graph is not None and module_count(graph) == 1 + 3 * (1 + 2)  # a copy holds a, b
    assert inspect_graph(doc, limits=Limits(max_modules=10))["valid"]
    report = inspect_graph(doc, limits=Limits(max_modules=9))
    assert [(p["node"], p["message"]) for p in report["problems"]] == [(
        "stack", "its 3 copies, each a module holding 2, make 9: the model would build 10 "
        "modules, Repeat copies included; the limit is 9 (SHIPYARD_MAX_MODULES)")]


def test_a_flat_graph_over_max_modules_is_refused_as_a_whole() -> None:
    doc = chain([8], node("a", "ReLU"), node("b", "ReLU"), node("c", "ReLU"))
    report = inspect_graph(doc, limits=Limits(max_modules=2))
    assert [(p["node"], p["message"]) for p in report["problems"]] == [(
        None, "the model would build 3 modules, Repeat copies included; the limit is 2 "
        "(SHIPYARD_MAX_MODULES)")]


@pytest.mark.parametrize("name", starter_names())
def test_every_starter_is_within_the_default_module_limit(name: str) -> None:
    graph, problems = parse_graph(load_starter(name), Limits())
    assert graph is not None and problems == []
    assert module_count(graph) <= Limits().max_modules


def test_the_largest_chain_the_node_limit_allows_is_within_the_module_limit() -> None:
    # The editor benchmark's graph (tests/benchmarks/bench_editor.py): Linear, ReLU and
    # LayerNorm in one chain; 2,000 nodes there, here as many as SHIPYARD_MAX_NODES allows.
    kinds = ["Linear", "ReLU", "LayerNorm"]
    layers = [node(f"n{i}", kinds[i % 3]) for i in range(Limits().max_nodes - 2)]
    report = inspect_graph(chain([64], *layers), flops=False)
    assert report["valid"], report["problems"][:3]


def test_an_input_dimension_over_max_dim_is_refused_on_its_shape() -> None:
    report = inspect_graph(chain([3, 100], node("act", "ReLU")), limits=Limits(max_dim=50))
    (problem,) = report["problems"]
    assert (problem["node"], problem["field"]) == ("x", "shape")
    assert problem["message"] == "dimension 100 exceeds the limit of 50 (SHIPYARD_MAX_DIM)"


def test_a_weight_dimension_over_max_dim_is_refused() -> None:
    report = inspect_graph(chain([8], node("wide", "Linear", out_features=100)),
                           limits=Limits(max_dim=50))
    (problem,) = report["problems"]
    assert problem["node"] == "wide"
    assert "over the limit of 50 (SHIPYARD_MAX_DIM)" in problem["message"]


def test_a_graph_inspected_before_under_a_higher_limit_is_still_refused() -> None:
    """Measurements are kept between inspections (an editor inspects the same graph on
    every edit): one made under a higher dimension limit does not pass a lower one, and
    one made without FLOPs does not answer for one with them."""
    doc = chain([8], node("wide", "Linear", out_features=100))
    first = inspect_graph(doc, flops=False)
    assert first["valid"] and first["nodes"]["wide"]["flops"] is None
    counted = inspect_graph(doc)
    assert counted["nodes"]["wide"]["flops"] == 2 * 8 * 100
    again = inspect_graph(doc, limits=Limits(max_dim=50))
    assert not again["valid"]
    assert "over the limit of 50 (SHIPYARD_MAX_DIM)" in again["problems"][0]["message"]
    assert inspect_graph(doc) == counted


def test_an_output_dimension_over_max_dim_is_refused() -> None:
    report = inspect_graph(chain([8, 8], node("flat", "Flatten")), limits=Limits(max_dim=50))
    (problem,) = report["problems"]
    assert problem["node"] == "flat"
    assert problem["message"] == (
        "its output [B, 64] has a dimension of 64; the limit is 50 (SHIPYARD_MAX_DIM)")


def test_activations_over_the_limit_are_refused_with_both_sizes() -> None:
    doc = chain([1024], node("a", "ReLU"), node("b", "ReLU"))
    report = inspect_graph(doc, limits=Limits(max_activation_bytes=4096))
    (problem,) = report["problems"]
    assert "activations; the limit is 4.0 KiB (SHIPYARD_MAX_ACTIVATION_BYTES)" in \
        problem["message"]


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_MAX_NODES", "3")
    monkeypatch.setenv("SHIPYARD_MAX_PARAMS", "1e6")
    monkeypatch.setenv("SHIPYARD_MAX_MODULES", "40")
    limits = Limits.from_env()
    assert limits.max_nodes == 3 and limits.max_params == 1_000_000
    assert limits.max_modules == 40
    report = inspect_graph(chain([8], node("a", "ReLU"), node("b", "ReLU")))
    assert "SHIPYARD_MAX_NODES" in report["problems"][0]["message"]


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_bad_limit_setting_fails_loudly(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SHIPYARD_MAX_DEPTH", value)
    with pytest.raises(ValueError, match="SHIPYARD_MAX_DEPTH"):
        Limits.from_env()
