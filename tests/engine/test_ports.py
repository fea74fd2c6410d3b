"""Blocks with several output ports (Split): parsing, analysis, compiling and export."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compute.engine import (
    catalog,
    compile_graph,
    export_onnx,
    export_pytorch,
    inspect_graph,
    load_graph,
)
from compute.engine.benchmark import BenchmarkSettings, run_benchmark
from compute.engine.build import value_names
from compute.engine.export import compiled_info, pytorch_source
from compute.engine.graph import Endpoint

from .graphs import document, input_node, node, problems_of
from .test_parity import standalone


def qkv_graph(split_id: str = "qkv_split", **split: Any) -> dict[str, Any]:
    """x [T=4, D=8] → Linear to 3·8 → Split into q, k, v → q·k + v → Output: every port used,
    and each by a different block, so that a wrong wiring changes the numbers."""
    params = {"names": ["q", "k", "v"], **split}
    return document(
        [input_node("x", [4, 8]), node("proj", "Linear", out_features=24),
         node(split_id, "Split", **params), node("mix", "Multiply"), node("add", "Add"),
         node("y", "Output")],
        [("x", "proj"), ("proj", split_id), (f"{split_id}.q", "mix.a"),
         (f"{split_id}.k", "mix.b"), ("mix", "add.a"), (f"{split_id}.v", "add.b"),
         ("add", "y")])


def test_split_gives_one_spec_per_named_port() -> None:
    report = inspect_graph(qkv_graph(sizes=[4, 8, 12]))
    # q and k no longer match: the Multiply says so, naming each port it gets
    assert [(n, m[:60]) for n, _, m in problems_of(report)] == [
        ("mix", "Multiply cannot combine input a, [B, 4, 4] from qkv_split.q,")]
    outputs = report["nodes"]["qkv_split"]["outputs"]
    assert list(outputs) == ["q", "k", "v"]
    assert [o["shape"] for o in outputs.values()] == [["B", 4, 4], ["B", 4, 8], ["B", 4, 12]]


def test_split_into_equal_parts_by_default() -> None:
    report = inspect_graph(qkv_graph())
    shapes = [o["shape"] for o in report["nodes"]["qkv_split"]["outputs"].values()]
    assert shapes == [["B", 4, 8]] * 3


def test_split_counts_every_port_in_the_activations() -> None:
    report = inspect_graph(qkv_graph())
    # three [4, 8] float32 parts
    assert report["nodes"]["qkv_split"]["activation_bytes"] == 3 * 4 * 8 * 4
    assert report["nodes"]["qkv_split"]["params"] == 0


def test_split_along_a_middle_dimension() -> None:
    doc = document(
        [input_node("x", [6, 5]), node("s", "Split", dim=1, names=["head", "tail"],
                                       sizes=[2, 4]),
         node("y", "Output"), node("z", "Output")],
        [("x", "s"), ("s.head", "y"), ("s.tail", "z")])
    report = inspect_graph(doc)
    assert [o["shape"] for o in report["nodes"]["s"]["outputs"].values()] == [
        ["B", 2, 5], ["B", 4, 5]]


def test_sizes_that_do_not_add_up_are_refused_on_sizes() -> None:
    report = inspect_graph(qkv_graph(sizes=[8, 8, 4]))
    assert problems_of(report) == [(
        "qkv_split", "sizes",
        "sizes [8, 8, 4] add up to 20, but dimension -1 of [B, 4, 24] from proj is 24: make "
        "them add up to 24")]


def test_a_dimension_that_does_not_divide_is_refused() -> None:
    doc = document([input_node("x", [4, 24]), node("s", "Split", names=list("abcde")),
                    *(node(f"y{i}", "Output") for i in range(5))],
                   [("x", "s"), *((f"s.{p}", f"y{i}") for i, p in enumerate("abcde"))])
    assert problems_of(inspect_graph(doc)) == [(
        "s", "sizes", "dimension -1 of [B, 4, 24] from x is 24, which does not cut into 5 "
        "equal parts: give sizes that add up to 24, or feed a multiple of 5")]


@pytest.mark.parametrize(("params", "says"), [
    ({"names": ["q", "q"]}, "q is given twice"),
    ({"names": ["q"]}, "needs at least 2 entries"),
    ({"names": ["q", "k v"]}, "is not a port name"),
    ({"names": ["q", "class"]}, "is a Python keyword"),
    ({"names": ["q", "é"]}, "is not a port name"),
    ({"names": ["a", "b"], "sizes": [1, 2, 3]}, "give one size per name"),
    ({"names": ["a", "b"], "sizes": [0, 2]}, "every size must be at least 1"),
])
def test_bad_split_parameters_are_refused_in_words(params: dict[str, Any], says: str) -> None:
    doc = document([input_node("x", [4]), node("s", "Split", **params), node("y", "Output")],
                   [("x", "s.a"), ("s.a", "y")])
    doc["edges"][0]["to"] = "s"
    report = inspect_graph(doc)
    assert not report["valid"]
    assert any(n == "s" and says in message for n, _, message in problems_of(report)), \
        problems_of(report)


def test_an_edge_from_a_split_must_name_its_port_and_is_told_which_exist() -> None:
    doc = qkv_graph()
    doc["edges"][2]["from"] = "qkv_split"
    report = inspect_graph(doc)
    assert ("qkv_split", "edges[2].from",
            "Split has outputs q, k, v: write 'qkv_split.q' or 'qkv_split.k' or "
            "'qkv_split.v'") in problems_of(report)


def test_an_edge_from_a_port_the_split_does_not_have_lists_its_ports() -> None:
    doc = qkv_graph()
    doc["edges"][2]["from"] = "qkv_split.a"  # the defaults' port, not this node's
    report = inspect_graph(doc)
    assert ("qkv_split", "a", "Split has no output port 'a'; its outputs: q, k, v") in \
        problems_of(report)


def test_an_unused_port_is_warned_of_by_name() -> None:
    doc = document([input_node("x", [4]), node("s", "Split"), node("y", "Output")],
                   [("x", "s"), ("s.b", "y")])
    report = inspect_graph(doc)
    assert report["valid"]
    assert [w["message"] for w in report["warnings"]] == [
        "output a of s is not used: wire it onward"]


def test_ports_of_a_split_with_bad_names_still_count_as_wired() -> None:
    """Its names are reported once; the edges from it are not a second problem each."""
    doc = qkv_graph(names=["q", "k", "k"])
    report = inspect_graph(doc)
    assert [(n, f) for n, f, _ in problems_of(report)] == [("qkv_split", "names")]
    assert report["warnings"] == []  # nor are the defaults' ports a and b said to be idle


def test_value_names_never_take_another_nodes_id() -> None:
    # `s_q` is the natural name of s's port q, but a node has that id.
    doc = document(
        [input_node("x", [4]), node("s", "Split", names=["q", "k"]), node("s_q", "Add"),
         node("y", "Output")],
        [("x", "s"), ("s.q", "s_q.a"), ("s.k", "s_q.b"), ("s_q", "y")])
    graph = load_graph(doc)
    names = value_names(graph)
    assert sorted(names.values()) == ["s_k", "s_q", "s_q_2", "x"]
    model = compile_graph(graph, seed=0)
    fx_names = [n.name for n in model.graph.nodes]
    assert "s_q" in fx_names and "s_q_2" in fx_names  # the Add keeps its id
    getitems = [n for n in model.graph.nodes if n.target is operator.getitem]
    assert [(n.name, n.args[1]) for n in getitems] == [("s_q_2", 0), ("s_k", 1)]
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), x[:, :2] + x[:, 2:])


def test_value_names_step_past_builtins() -> None:
    doc = document(
        [input_node("x", [4]), node("_", "Split", names=["import__", "b"]),
         node("y", "Output"), node("z", "Output")],
        [("x", "_"), ("_.import__", "y"), ("_.b", "z")])
    names = value_names(load_graph(doc))
    assert sorted(names.values()) == ["__b", "__import___2", "x"]


def test_value_names_are_the_names_of_the_fx_nodes() -> None:
    # `fx_pytree` is a global of the code torch.fx writes: taken too.
    doc = document(
        [input_node("x", [4]), node("fx", "Split", names=["pytree", "b"]),
         node("y", "Output"), node("z", "Output")],
        [("x", "fx"), ("fx.pytree", "y"), ("fx.b", "z")])
    graph = load_graph(doc)
    names = value_names(graph)
    model = compile_graph(graph, seed=0)
    getitems = [n.name for n in model.graph.nodes if n.target is operator.getitem]
    ports = [names[Endpoint("fx", "pytree")], names[Endpoint("fx", "b")]]
    assert getitems == ports == ["fx_pytree_2", "fx_b"]


def test_compiled_split_wires_each_port_to_its_consumer() -> None:
    model = compile_graph(load_graph(qkv_graph(sizes=[8, 8, 8])), seed=3).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        h = model.proj(x)
        q, k, v = h[..., :8], h[..., 8:16], h[..., 16:]
        torch.testing.assert_close(model(x), q * k + v)


def test_standalone_file_unpacks_the_ports(tmp_path: Path) -> None:
    model = compile_graph(load_graph(qkv_graph()), seed=3).eval()
    source = pytorch_source(compiled_info(model))
    assert "qkv_split_q, qkv_split_k, qkv_split_v = self.qkv_split(proj)" in source
    assert "mix = self.mix(qkv_split_q, qkv_split_k)" in source
    twin = standalone(model, tmp_path)
    x = torch.randn(5, 4, 8)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-6, atol=1e-6)


def test_standalone_file_returns_a_port_straight_to_an_output(tmp_path: Path) -> None:
    doc = document(
        [input_node("x", [6]), node("s", "Split", names=["left", "right"], sizes=[2, 4]),
         node("y", "Output"), node("z", "Output")],
        [("x", "s"), ("s.left", "y"), ("s.right", "z")])
    model = compile_graph(load_graph(doc), seed=0)
    twin = standalone(model, tmp_path)
    x = torch.randn(3, 6)
    got = twin(x)
    assert got.keys() == {"y", "z"}
    torch.testing.assert_close(got["y"], x[:, :2])
    torch.testing.assert_close(got["z"], x[:, 2:])


def test_onnx_runtime_matches_the_compiled_split(tmp_path: Path) -> None:
    model = compile_graph(load_graph(qkv_graph()), seed=5).eval()
    path = export_onnx(model, tmp_path / "qkv.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 4, 8)
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert float(np.max(np.abs(got - expected))) <= 1e-5


def test_export_pytorch_of_a_split_needs_only_torch(tmp_path: Path) -> None:
    model = compile_graph(load_graph(qkv_graph()), seed=0)
    text = export_pytorch(model, tmp_path / "m.py", weights=False).read_text()
    assert "class Split(nn.Module):" in text
    assert "shipyard" not in text.split('"""', 2)[2]  # nothing after the docstring imports it


def test_catalog_says_split_ports_come_from_names() -> None:
    entry = next(b for b in catalog() if b["type"] == "Split")
    assert entry["outputs"] == ["a", "b"]
    assert entry["outputs_from"] == "names"
    assert entry["defaults"]["names"] == ["a", "b"]
    assert all(b["outputs_from"] is None for b in catalog() if b["type"] != "Split")


def test_benchmark_times_a_split_and_its_onnx_agrees_with_eager() -> None:
    settings = BenchmarkSettings(batch_sizes=[2], backends=["eager", "onnxruntime"], warmup=1,
                                 repeats=2, device="cpu")
    result = run_benchmark(load_graph(qkv_graph()), settings)
    assert [(r["backend"], r["error"], r["within_tolerance"]) for r in result.rows] == [
        ("eager", "", True), ("onnxruntime", "", True)]
    (costs,) = result.node_costs
    assert [n["node"] for n in costs["nodes"]] == ["proj", "qkv_split", "mix", "add"]


def test_gradients_reach_the_projection_through_every_port() -> None:
    model = compile_graph(load_graph(qkv_graph()), seed=0)
    model(torch.randn(2, 4, 8)).sum().backward()
    grad = model.proj.weight.grad
    assert grad is not None
    # rows 0..7 make q, 8..15 k, 16..23 v: each part's rows get a gradient
    assert all(bool(grad[rows].abs().sum() > 0) for rows in (slice(0, 8), slice(8, 16),
                                                              slice(16, 24)))
