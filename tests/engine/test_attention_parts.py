"""Attention from its parts: MatMul, Transpose, Permute, Scale, CausalMask, Slice (and
Softmax over a chosen dimension) compute what the torch operations compute, refuse what
cannot work in words naming the field, export to PyTorch and ONNX, and, wired as one
attention head, give exactly what a MultiHeadAttention block with one head gives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compute.engine import compile_graph, example_inputs, export_onnx, inspect_graph, load_graph

from .graphs import chain, document, input_node, node
from .test_parity import standalone

# Values against torch.


def run_chain(shape: list[int], layer: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return compile_graph(chain(shape, layer)).eval()(x)


def run_pair(a_shape: list[int], b_shape: list[int], layer: dict[str, Any],
             a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    doc = document([input_node("a", a_shape), input_node("b", b_shape), layer,
                    node("y", "Output")],
                   [("a", f"{layer['id']}.a"), ("b", f"{layer['id']}.b"), (layer["id"], "y")])
    with torch.no_grad():
        return compile_graph(doc).eval()(a, b)


def test_matmul_is_torch_matmul_over_the_last_two_dimensions_with_broadcast_batches() -> None:
    a, b = torch.randn(3, 2, 5, 4), torch.randn(3, 1, 6, 4)
    got = run_pair([2, 5, 4], [1, 6, 4], node("mm", "MatMul", transpose_b=True), a, b)
    torch.testing.assert_close(got, torch.matmul(a, b.transpose(-2, -1)), rtol=0, atol=0)
    a, b = torch.randn(2, 4, 5), torch.randn(2, 4, 3)
    got = run_pair([4, 5], [4, 3], node("mm", "MatMul", transpose_a=True), a, b)
    torch.testing.assert_close(got, torch.matmul(a.transpose(1, 2), b), rtol=0, atol=0)


def test_transpose_and_permute_move_what_torch_moves_and_keep_the_batch_first() -> None:
    x = torch.randn(2, 6, 3, 4)
    got = run_chain([6, 3, 4], node("t", "Transpose", dim0=1, dim1=-1), x)
    assert torch.equal(got, x.transpose(1, 3))
    got = run_chain([6, 3, 4], node("p", "Permute", dims=[3, 1, 2]), x)
    assert torch.equal(got, x.permute(0, 3, 1, 2))


def test_scale_divides_by_the_square_root_of_a_dimension_or_multiplies_by_a_constant() -> None:
    x = torch.randn(2, 5, 16)
    assert torch.equal(run_chain([5, 16], node("s", "Scale"), x), x / 4.0)
    assert torch.equal(run_chain([5, 16], node("s", "Scale", dim=1), x), x / math.sqrt(5))
    got = run_chain([5, 16], node("s", "Scale", by="constant", factor=0.3), x)
    assert torch.equal(got, x * 0.3)


def test_causal_mask_hides_the_future_and_a_softmax_after_it_gives_it_no_weight() -> None:
    scores = torch.randn(2, 3, 5, 5)
    masked = run_chain([3, 5, 5], node("m", "CausalMask"), scores)
    future = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert torch.all(masked[..., future] == float("-inf"))
    assert torch.equal(masked[..., ~future], scores[..., ~future])
    weights = masked.softmax(-1)
    assert torch.all(weights.triu(1) == 0)
    filled = run_chain([3, 5, 5], node("m", "CausalMask", fill=-7.5), scores)
    assert torch.all(filled[..., future] == -7.5)


@pytest.mark.parametrize(("dim", "start", "end", "step"), [
    (1, 0, None, 1), (1, 2, 5, 1), (-1, -3, None, 1), (2, 1, -1, 2), (1, -10, 3, 3)])
def test_slice_follows_python_slicing_with_negative_indices(
        dim: int, start: int, end: int | None, step: int) -> None:
    x = torch.randn(2, 7, 6)
    got = run_chain([7, 6], node("s", "Slice", dim=dim, start=start, end=end, step=step), x)
    index = [slice(None)] * 3
    index[dim] = slice(start, end, step)
    assert torch.equal(got, x[tuple(index)])


def test_softmax_dim_works_on_four_dimensional_scores() -> None:
    scores = torch.randn(2, 3, 5, 5)
    for dim in (-1, 3, 2):
        got = run_chain([3, 5, 5], node("sm", "Softmax", dim=dim), scores)
        torch.testing.assert_close(got, scores.softmax(dim), rtol=0, atol=0)
    report = inspect_graph(chain([3, 5, 5], node("sm", "Softmax", dim=0)))
    (problem,) = report["problems"]
    assert problem["field"] == "dim" and "batch" in problem["message"]


# Refusals, each naming what to change.


def problem_of(doc: dict[str, Any]) -> dict[str, Any]:
    report = inspect_graph(doc)
    (problem,) = report["problems"]
    return problem


def test_matmul_refuses_mismatched_inner_sizes_naming_both_shapes() -> None:
    doc = document([input_node("q", [6, 8]), input_node("k", [6, 8]), node("mm", "MatMul"),
                    node("y", "Output")], [("q", "mm.a"), ("k", "mm.b"), ("mm", "y")])
    problem = problem_of(doc)
    assert problem["node"] == "mm" and problem["field"] == "transpose_b"
    assert "[B, 6, 8]" in problem["message"] and "inner sizes 8 and 6" in problem["message"]
    assert "turn transpose_b on" in problem["message"]
    doc["nodes"][0]["params"]["shape"] = [4, 5]
    problem = problem_of(doc)
    assert problem["field"] is None and "[B, 4, 5]" in problem["message"]
    assert "[B, 6, 8]" in problem["message"]


def test_matmul_refuses_vectors_and_inputs_whose_batch_would_not_line_up() -> None:
    def pair(a: list[int], b: list[int]) -> dict[str, Any]:
        return document([input_node("a", a), input_node("b", b), node("mm", "MatMul"),
                         node("y", "Output")], [("a", "mm.a"), ("b", "mm.b"), ("mm", "y")])

    assert "one vector per sample" in problem_of(pair([8], [8, 3]))["message"]
    assert "same number of dimensions" in problem_of(pair([2, 4, 8], [8, 3]))["message"]
    assert "sizes 2 and 3 differ" in problem_of(pair([2, 4, 8], [3, 8, 3]))["message"]


def test_transpose_and_permute_refuse_to_move_the_batch() -> None:
    problem = problem_of(chain([4, 5], node("t", "Transpose", dim0=0, dim1=1)))
    assert problem["field"] == "dim0" and "batch" in problem["message"]
    problem = problem_of(chain([4, 5], node("t", "Transpose", dim0=2, dim1=-1)))
    assert problem["field"] == "dim1" and "same dimension" in problem["message"]
    problem = problem_of(chain([4, 5, 6], node("p", "Permute", dims=[0, 2, 1, 3])))
    assert problem["field"] == "dims" and "write [2, 1, 3]" in problem["message"]
    problem = problem_of(chain([4, 5, 6], node("p", "Permute", dims=[2, 0, 1])))
    assert problem["field"] == "dims" and "batch" in problem["message"]
    problem = problem_of(chain([4, 5, 6], node("p", "Permute", dims=[2, 1])))
    assert problem["field"] == "dims" and "each of 1..3 once" in problem["message"]


def test_scale_causal_mask_and_slice_refuse_in_words() -> None:
    problem = problem_of(chain([4, 5], node("s", "Scale", dim=3)))
    assert problem["field"] == "dim" and "out of range" in problem["message"]
    problem = problem_of(chain([4, 5], node("m", "CausalMask")))
    assert "square" in problem["message"] and "[B, 4, 5]" in problem["message"]
    problem = problem_of(chain([4, 5], node("s", "Slice", start=3, end=1)))
    assert problem["field"] == "start" and "keeps nothing" in problem["message"]
    problem = problem_of(chain([4, 5], node("s", "Slice", dim=-1, start=9)))
    assert problem["field"] == "start" and "of size 5" in problem["message"]
    report = inspect_graph(chain([4, 5], node("s", "Slice", step=0)))
    assert [p["field"] for p in report["problems"]] == ["step"]


# One attention head from parts, against the block.

T, D = 6, 8


def head_from_parts(*, causal: bool = True) -> dict[str, Any]:
    """x → q, k, v → q/√d · kᵀ → (CausalMask) → Softmax → · v → out."""
    nodes = [input_node("x", [T, D]), node("q", "Linear", out_features=D),
             node("k", "Linear", out_features=D), node("v", "Linear", out_features=D),
             node("qs", "Scale"), node("scores", "MatMul", transpose_b=True),
             node("weights", "Softmax", dim=-1), node("mix", "MatMul"),
             node("out", "Linear", out_features=D), node("y", "Output")]
    edges = [("x", "q"), ("x", "k"), ("x", "v"), ("q", "qs"), ("qs", "scores.a"),
             ("k", "scores.b"), ("weights", "mix.a"), ("v", "mix.b"), ("mix", "out"),
             ("out", "y")]
    if causal:
        nodes.insert(6, node("mask", "CausalMask"))
        edges += [("scores", "mask"), ("mask", "weights")]
    else:
        edges.append(("scores", "weights"))
    return document(nodes, edges, name="one head")


def copy_attention_weights(parts: torch.nn.Module, block: torch.nn.Module) -> None:
    """The block's fused qkv rows are q, k and v in that order; proj is the output."""
    with torch.no_grad():
        for i, name in enumerate(("q", "k", "v")):
            linear = parts.get_submodule(name)
            linear.weight.copy_(block.qkv.weight[i * D:(i + 1) * D])
            linear.bias.copy_(block.qkv.bias[i * D:(i + 1) * D])
        parts.out.weight.copy_(block.proj.weight)
        parts.out.bias.copy_(block.proj.bias)


@pytest.mark.parametrize("causal", [True, False])
def test_one_head_from_parts_gives_what_multi_head_attention_with_one_head_gives(
        causal: bool) -> None:
    parts = compile_graph(head_from_parts(causal=causal), seed=3).eval()
    block_graph = chain([T, D], node("attn", "MultiHeadAttention", num_heads=1, causal=causal))
    block = compile_graph(block_graph, seed=4).eval()
    copy_attention_weights(parts, block.attn)
    assert sum(p.numel() for p in parts.parameters()) == sum(
        p.numel() for p in block.parameters())
    x = torch.randn(5, T, D)
    with torch.no_grad():
        torch.testing.assert_close(parts(x), block(x), rtol=1e-5, atol=1e-6)
        block.attn.capture_attention = True  # the block's explicit path, weights kept
        expected = block(x)
        weights = block.attn.last_attention
    outputs = {}

    def keep(module: torch.nn.Module, args: Any, out: torch.Tensor) -> None:
        outputs["weights"] = out

    parts.weights.register_forward_hook(keep)
    with torch.no_grad():
        torch.testing.assert_close(parts(x), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(outputs["weights"], weights[:, 0], rtol=1e-5, atol=1e-6)


def heads_from_parts(heads: int) -> dict[str, Any]:
    """Multi-head attention from parts: Reshape to [T, h, hs], Transpose to [h, T, hs],
    the head as above on every head at once, Transpose back and Reshape to [T, D]."""
    hs = D // heads
    nodes = [input_node("x", [T, D])]
    edges: list[tuple[str, str]] = []
    for name in ("q", "k", "v"):
        nodes += [node(name, "Linear", out_features=D),
                  node(f"{name}_split", "Reshape", shape=[T, heads, hs]),
                  node(f"{name}_heads", "Transpose", dim0=1, dim1=2)]
        edges += [("x", name), (name, f"{name}_split"), (f"{name}_split", f"{name}_heads")]
    nodes += [node("qs", "Scale"), node("scores", "MatMul", transpose_b=True),
              node("mask", "CausalMask"), node("weights", "Softmax", dim=-1),
              node("mix", "MatMul"), node("merge", "Permute", dims=[2, 1, 3]),
              node("join", "Reshape", shape=[T, D]), node("out", "Linear", out_features=D),
              node("y", "Output")]
    edges += [("q_heads", "qs"), ("qs", "scores.a"), ("k_heads", "scores.b"),
              ("scores", "mask"), ("mask", "weights"), ("weights", "mix.a"),
              ("v_heads", "mix.b"), ("mix", "merge"), ("merge", "join"), ("join", "out"),
              ("out", "y")]
    return document(nodes, edges, name="heads from parts")


def test_multi_head_attention_from_parts_gives_what_the_block_gives() -> None:
    parts = compile_graph(heads_from_parts(4), seed=5).eval()
    block = compile_graph(chain([T, D], node("attn", "MultiHeadAttention", num_heads=4,
                                             causal=True)), seed=6).eval()
    copy_attention_weights(parts, block.attn)
    x = torch.randn(3, T, D)
    with torch.no_grad():
        torch.testing.assert_close(parts(x), block(x), rtol=1e-5, atol=1e-6)
    report = inspect_graph(heads_from_parts(4))
    assert report["nodes"]["weights"]["outputs"]["out"]["shape"] == ["B", 4, T, T]


def test_the_report_marks_the_nodes_whose_attention_a_run_shows() -> None:
    report = inspect_graph(heads_from_parts(2))
    assert [n for n, e in report["nodes"].items() if e["attention"]] == ["weights"]
    block = inspect_graph(chain([T, D], node("attn", "MultiHeadAttention", num_heads=2)))
    assert block["nodes"]["attn"]["attention"] is True
    # Not attention: probabilities over classes, or a softmax down the columns.
    for doc in (chain([10], node("sm", "Softmax")), chain([T, T], node("sm", "Softmax", dim=1)),
                chain([T, D], node("sm", "Softmax"))):
        assert inspect_graph(doc)["nodes"]["sm"]["attention"] is False


# Export: compiled vs standalone PyTorch file vs ONNX Runtime at another batch size.


def every_part() -> dict[str, Any]:
    """Every part in one graph, on a 2-head causal attention with a slice and a fill."""
    doc = heads_from_parts(2)
    doc["nodes"][-1:-1] = [node("last", "Slice", dim=1, start=-2), node("tail", "Output"),
                           node("halved", "Scale", by="constant", factor=0.5),
                           node("soft", "CausalMask", fill=-100.0), node("shown", "Output")]
    doc["edges"] += [{"from": "out", "to": "last"}, {"from": "last", "to": "tail"},
                     {"from": "scores", "to": "halved"}, {"from": "halved", "to": "soft"},
                     {"from": "soft", "to": "shown"}]
    return doc


def test_attention_parts_export_to_pytorch_and_onnx_computing_the_same(
        tmp_path: Path) -> None:
    model = compile_graph(every_part(), seed=2).eval()
    twin = standalone(model, tmp_path)
    source = (tmp_path / "model.py").read_text()
    assert "import math" in source and "import torch.nn.functional" not in source
    args = example_inputs(load_graph(every_part()), batch=5, seed=1)
    with torch.no_grad():
        expected = model(*args)
        got = twin(*args)
    assert got.keys() == expected.keys() == {"y", "tail", "shown"}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-6)
    path = export_onnx(model, tmp_path / "parts.onnx")  # traced at batch 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"x": args[0].numpy()})
    names = [o.name for o in session.get_outputs()]
    assert sorted(names) == ["shown", "tail", "y"]
    for name, value in zip(names, outputs, strict=True):
        assert value.shape[0] == 5
        assert float(np.max(np.abs(value - expected[name].numpy()))) <= 1e-4, name


def test_the_walk_through_in_the_block_reference_is_a_graph_that_works() -> None:
    from compute.engine.reference import GUIDES

    text = GUIDES["Attention parts"]
    doc = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    report = inspect_graph(doc)
    assert report["valid"], report["problems"]
    assert report["nodes"]["weights"]["attention"] is True
    assert report["nodes"]["y"]["inputs"]["in"]["shape"] == ["B", 16, 32]
