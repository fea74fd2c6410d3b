"""Every block in the catalog: the shape it infers and the parameters it holds, checked
against the `torch.nn` module a PyTorch user would write by hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from compute.engine import REGISTRY, compile_graph, inspect_graph

from .graphs import chain, document, input_node, node, repeat


@dataclass(frozen=True)
class Case:
    """One block under test: what enters it, what must leave, and its torch.nn twin."""

    type: str
    params: dict[str, Any]
    inputs: dict[str, tuple[list[int], str]]  # port -> (shape without B, dtype)
    out_shape: list[int]
    reference: Callable[[], nn.Module] | None = None  # None: no parameters at all
    params_count: int | None = None  # where the twin's names differ, the count to expect
    layers: list[dict[str, Any]] = field(default_factory=list)  # Repeat: its body

    @property
    def id(self) -> str:
        return f"{self.type}({', '.join(f'{k}={v}' for k, v in self.params.items())})"


def f32(*shape: int) -> tuple[list[int], str]:
    return list(shape), "float32"


CASES = [
    Case("Input", {}, {}, [5, 7]),
    Case("Output", {}, {}, [5, 7]),
    Case("Init", {"scheme": "normal", "std": 0.1}, {}, [5, 7]),
    Case("Linear", {"out_features": 32}, {"in": f32(10, 16)}, [10, 32],
         lambda: nn.Linear(16, 32)),
    Case("Linear", {"out_features": 3, "bias": False}, {"in": f32(16)}, [3],
         lambda: nn.Linear(16, 3, bias=False)),
    # Router D·E, then per expert up D·H + H and down H·D + D (H = 4·D unless given).
    Case("MixtureOfExperts", {"num_experts": 4, "top_k": 2}, {"in": f32(10, 16)}, [10, 16],
         params_count=16 * 4 + 4 * (16 * 64 + 64 + 64 * 16 + 16)),
    Case("MixtureOfExperts", {"num_experts": 3, "top_k": 1, "hidden_features": 8,
                              "bias": False}, {"in": f32(16)}, [16],
         params_count=16 * 3 + 3 * (2 * 16 * 8)),
    Case("Conv1d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, {"in": f32(4, 20)},
         [8, 20], lambda: nn.Conv1d(4, 8, 3, padding=1)),
    Case("Conv1d", {"out_channels": 6, "kernel_size": 5, "stride": 2, "bias": False},
         {"in": f32(2, 21)}, [6, 9], lambda: nn.Conv1d(2, 6, 5, stride=2, bias=False)),
    Case("Conv2d", {"out_channels": 8, "kernel_size": 3, "stride": 2}, {"in": f32(3, 16, 16)},
         [8, 7, 7], lambda: nn.Conv2d(3, 8, 3, stride=2)),
    Case("Conv2d", {"out_channels": 4, "kernel_size": [3, 1], "padding": "same"},
         {"in": f32(2, 9, 5)}, [4, 9, 5], lambda: nn.Conv2d(2, 4, (3, 1), padding="same")),
    Case("MaxPool2d", {}, {"in": f32(3, 8, 8)}, [3, 4, 4]),
    Case("AvgPool2d", {"kernel_size": 3, "stride": 1, "padding": 1}, {"in": f32(3, 8, 6)},
         [3, 8, 6]),
    Case("AdaptiveAvgPool2d", {"output_size": [2, 3]}, {"in": f32(3, 8, 8)}, [3, 2, 3]),
    Case("AdaptiveAvgPool2d", {}, {"in": f32(5, 7, 7)}, [5, 1, 1]),
    Case("BatchNorm1d", {}, {"in": f32(6)}, [6], lambda: nn.BatchNorm1d(6)),
    Case("BatchNorm1d", {"eps": 1e-3, "momentum": 0.2}, {"in": f32(6, 10)}, [6, 10],
         lambda: nn.BatchNorm1d(6)),
    Case("BatchNorm2d", {}, {"in": f32(4, 5, 5)}, [4, 5, 5], lambda: nn.BatchNorm2d(4)),
    Case("LayerNorm", {}, {"in": f32(5, 12)}, [5, 12], lambda: nn.LayerNorm(12)),
    Case("LayerNorm", {"bias": False}, {"in": f32(12)}, [12],
         lambda: nn.LayerNorm(12, bias=False)),
    Case("LayerNorm", {"elementwise_affine": False}, {"in": f32(12)}, [12],
         lambda: nn.LayerNorm(12, elementwise_affine=False)),
    Case("RMSNorm", {}, {"in": f32(5, 12)}, [5, 12], lambda: nn.RMSNorm(12)),
    Case("RMSNorm", {"elementwise_affine": False}, {"in": f32(12)}, [12],
         lambda: nn.RMSNorm(12, elementwise_affine=False)),
    Case("ReLU", {}, {"in": f32(3, 4)}, [3, 4]),
    Case("GELU", {"approximate": "tanh"}, {"in": f32(3, 4)}, [3, 4]),
    Case("SiLU", {}, {"in": f32(3, 4)}, [3, 4]),
    Case("Tanh", {}, {"in": f32(3, 4)}, [3, 4]),
    Case("Sigmoid", {}, {"in": f32(3, 4)}, [3, 4]),
    Case("Softmax", {"dim": 1}, {"in": f32(3, 4)}, [3, 4]),
    Case("Dropout", {"p": 0.5}, {"in": f32(3, 4)}, [3, 4]),
    Case("Flatten", {}, {"in": f32(2, 3, 4)}, [24]),
    Case("Flatten", {"start_dim": 2}, {"in": f32(2, 3, 4)}, [2, 12]),
    Case("Reshape", {"shape": [4, -1]}, {"in": f32(24)}, [4, 6]),
    Case("Mean", {}, {"in": f32(5, 12)}, [12]),
    Case("Split", {"names": ["q", "k", "v"]}, {"in": f32(5, 12)}, [5, 4]),
    Case("Split", {"dim": 1, "sizes": [1, 4]}, {"in": f32(5, 12)}, [1, 12]),
    Case("Embedding", {"num_embeddings": 100, "embedding_dim": 16}, {"in": ([7], "int64")},
         [7, 16], lambda: nn.Embedding(100, 16)),
    Case("PositionalEmbedding", {"max_len": 32}, {"in": f32(10, 16)}, [10, 16],
         params_count=32 * 16),
    Case("MultiHeadAttention", {"num_heads": 4}, {"in": f32(10, 32)}, [10, 32],
         lambda: nn.MultiheadAttention(32, 4), params_count=4 * 32 * 32 + 4 * 32),
    Case("MultiHeadAttention", {"num_heads": 2, "bias": False, "causal": True},
         {"in": f32(6, 8)}, [6, 8], lambda: nn.MultiheadAttention(8, 2, bias=False),
         params_count=4 * 8 * 8),
    Case("MatMul", {}, {"a": f32(5, 3), "b": f32(3, 7)}, [5, 7]),
    Case("MatMul", {"transpose_b": True}, {"a": f32(2, 6, 4), "b": f32(1, 6, 4)}, [2, 6, 6]),
    Case("MatMul", {"transpose_a": True}, {"a": f32(3, 5), "b": f32(3, 2)}, [5, 2]),
    Case("Transpose", {}, {"in": f32(6, 2, 4)}, [2, 6, 4]),
    Case("Transpose", {"dim0": -1, "dim1": 1}, {"in": f32(3, 5)}, [5, 3]),
    Case("Permute", {}, {"in": f32(6, 2, 4)}, [2, 6, 4]),
    Case("Permute", {"dims": [2, 3, 1]}, {"in": f32(3, 8, 6)}, [8, 6, 3]),
    Case("Scale", {}, {"in": f32(4, 16)}, [4, 16]),
    Case("Scale", {"by": "constant", "factor": -0.5}, {"in": f32(4)}, [4]),
    Case("CausalMask", {}, {"in": f32(5, 5)}, [5, 5]),
    Case("CausalMask", {"fill": -1e4}, {"in": f32(2, 3, 3)}, [2, 3, 3]),
    Case("Slice", {"dim": -1, "end": 4}, {"in": f32(3, 12)}, [3, 4]),
    Case("Slice", {"start": -3, "step": 2}, {"in": f32(7, 2)}, [2, 2]),
    # Grouped-query: q is D = 32 wide, k and v 2 heads of 8 each; proj is D × D.
    Case("MultiHeadAttention", {"num_heads": 4, "num_kv_heads": 2, "position": "rope"},
         {"in": f32(10, 32)}, [10, 32],
         params_count=32 * (32 + 2 * 2 * 8) + (32 + 2 * 2 * 8) + 32 * 32 + 32),
    Case("MultiHeadAttention", {"num_heads": 4, "num_kv_heads": 1, "bias": False,
                                "position": "alibi", "window": 3, "causal": True},
         {"in": f32(6, 16)}, [6, 16], params_count=16 * (16 + 2 * 4) + 16 * 16),
    Case("RotaryEmbedding", {"num_heads": 2}, {"in": f32(5, 12)}, [5, 12]),
    Case("GatedMLP", {}, {"in": f32(5, 12)}, [5, 12], params_count=3 * 12 * 256),
    Case("GatedMLP", {"hidden_features": 20, "bias": True, "activation": "gelu"},
         {"in": f32(12)}, [12], params_count=3 * 12 * 20 + 2 * 20 + 12),
    Case("Add", {}, {"a": f32(4, 8), "b": f32(1, 8)}, [4, 8]),
    Case("Multiply", {}, {"a": f32(4, 8), "b": f32(4, 8)}, [4, 8]),
    Case("Concat", {}, {"a": f32(4, 8), "b": f32(4, 3)}, [4, 11]),
    Case("Concat", {"dim": 1}, {"a": f32(4, 8), "b": f32(2, 8)}, [6, 8]),
    Case("Repeat", {"times": 3}, {"in": f32(5, 16)}, [5, 16],
         params_count=3 * (16 * 16 + 16),
         layers=[node("lin", "Linear", out_features=16), node("act", "ReLU")]),
    Case("Custom", {"source": "12", "version": 2, "name": "Mlp"}, {"in": f32(5, 16)}, [5, 8],
         params_count=16 * 8 + 8,
         layers=[node("lin", "Linear", out_features=8), node("act", "ReLU")]),
]


def case_graph(case: Case) -> dict[str, Any]:
    """The block alone between Inputs (`x_PORT`, one per port) and an Output `y`, which
    takes its first output port where it has several."""
    if case.type in ("Input", "Output"):
        return chain(case.out_shape)
    if case.type == "Init":  # no ports: it stands beside the graph it sets
        doc = chain(case.out_shape)
        doc["nodes"].append(node("init", "Init", **case.params))
        return doc
    inputs = [input_node(f"x_{port}", shape, dtype)
              for port, (shape, dtype) in case.inputs.items()]
    if case.type == "Repeat":
        block = repeat("block", case.params["times"], *case.layers)
    elif case.type == "Custom":  # its one port is its graph's Input, named like Repeat's
        block = repeat("block", 1, *case.layers)
        block.update(type="Custom", params=case.params)
    else:
        block = node("block", case.type, **case.params)
    block_ports = REGISTRY[case.type].inputs
    edges = [(f"x_{port}", f"block.{port}" if len(block_ports) > 1 else "block")
             for port in case.inputs]
    names = block.get("params", {}).get("names", REGISTRY[case.type].outputs) or ("y",)
    out = "block" if len(names) == 1 else f"block.{names[0]}"
    return document([*inputs, block, node("y", "Output")], [*edges, (out, "y")])


def test_every_block_in_the_catalog_has_a_test_case() -> None:
    missing = sorted(set(REGISTRY) - {case.type for case in CASES})
    assert not missing, f"blocks without a test case in CASES: {', '.join(missing)}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_block_infers_its_output_shape(case: Case) -> None:
    report = inspect_graph(case_graph(case))
    assert report["valid"], report["problems"]
    entry = report["nodes"]["y"]
    assert entry["inputs"]["in"]["shape"] == ["B", *case.out_shape]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_compiled_block_gives_the_reported_shape_for_any_batch(case: Case) -> None:
    model = compile_graph(case_graph(case)).eval()
    batch = 3
    args = []
    for shape, dtype in (case.inputs.values() if case.inputs else [f32(*case.out_shape)]):
        if dtype == "int64":
            args.append(torch.randint(0, 5, (batch, *shape)))
        else:
            args.append(torch.randn(batch, *shape))
    with torch.no_grad():
        out = model(*args)
    assert list(out.shape) == [batch, *case.out_shape]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_block_parameter_count_matches_its_torch_nn_twin(case: Case) -> None:
    report = inspect_graph(case_graph(case))
    counted = report["nodes"].get("block", report["nodes"]["y"])["params"]
    if case.params_count is not None:
        expected = case.params_count
    elif case.reference is not None:
        expected = sum(p.numel() for p in case.reference().parameters())
    else:
        expected = 0
    assert counted == expected
    if case.reference is not None:
        assert counted == sum(p.numel() for p in case.reference().parameters())
    assert report["totals"]["params"] == counted


@pytest.mark.parametrize("case", [c for c in CASES if c.reference is not None
                                  and c.type != "MultiHeadAttention"], ids=lambda c: c.id)
def test_block_weights_have_the_shapes_of_its_torch_nn_twin(case: Case) -> None:
    built = compile_graph(case_graph(case)).get_submodule("block")
    twin = case.reference()  # type: ignore[misc]
    ours = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert ours == theirs


def test_linear_infers_in_features_from_the_last_dimension() -> None:
    model = compile_graph(chain([7, 48], node("hidden", "Linear", out_features=5)))
    assert model.hidden.in_features == 48
    assert model.hidden.out_features == 5


def test_conv2d_infers_in_channels() -> None:
    model = compile_graph(chain([3, 8, 8], node("conv", "Conv2d", out_channels=6)))
    assert model.conv.in_channels == 3


def test_multi_head_attention_weights_are_a_fused_qkv_and_an_output_projection() -> None:
    model = compile_graph(chain([4, 24], node("attn", "MultiHeadAttention", num_heads=3)))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"attn.qkv.weight": (72, 24), "attn.qkv.bias": (72,),
                      "attn.proj.weight": (24, 24), "attn.proj.bias": (24,)}


def test_positional_embedding_adds_one_learned_vector_per_position() -> None:
    model = compile_graph(chain([5, 4], node("pos", "PositionalEmbedding", max_len=9)))
    x = torch.zeros(2, 5, 4)
    with torch.no_grad():
        out = model(x)
    torch.testing.assert_close(out, model.pos.weight[:5].expand(2, 5, 4))


def test_positional_embedding_accepts_a_sequence_as_long_as_max_len_and_no_longer() -> None:
    assert inspect_graph(chain([8, 4], node("pos", "PositionalEmbedding", max_len=8)))["valid"]
    report = inspect_graph(chain([9, 4], node("pos", "PositionalEmbedding", max_len=8)))
    (problem,) = report["problems"]
    assert problem["node"] == "pos" and problem["field"] == "max_len"
    assert "9 positions" in problem["message"] and "max_len is 8" in problem["message"]


def test_flatten_counts_start_dim_with_the_batch_like_torch() -> None:
    model = compile_graph(chain([2, 3, 4], node("flat", "Flatten", start_dim=1)))
    x = torch.randn(5, 2, 3, 4)
    torch.testing.assert_close(model(x), nn.Flatten(1)(x), rtol=0, atol=0)


def test_softmax_rows_sum_to_one_along_its_dim() -> None:
    model = compile_graph(chain([3, 4], node("sm", "Softmax", dim=1)))
    out = model(torch.randn(2, 3, 4))
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2, 4))


def test_concat_and_add_compute_what_torch_computes() -> None:
    doc = document(
        [input_node("a", [4]), input_node("b", [4]), node("cat", "Concat"), node("sum", "Add"),
         node("prod", "Multiply"), node("c", "Output"), node("s", "Output"), node("p", "Output")],
        [("a", "cat.a"), ("b", "cat.b"), ("a", "sum.a"), ("b", "sum.b"), ("a", "prod.a"),
         ("b", "prod.b"), ("cat", "c"), ("sum", "s"), ("prod", "p")])
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    out = compile_graph(doc)(a, b)
    assert torch.equal(out["c"], torch.cat((a, b), dim=-1))
    assert torch.equal(out["s"], a + b)
    assert torch.equal(out["p"], a * b)


def test_reshape_works_out_the_minus_one_entry() -> None:
    report = inspect_graph(chain([64], node("r", "Reshape", shape=[8, -1])))
    assert report["nodes"]["r"]["outputs"]["out"]["shape"] == ["B", 8, 8]


def test_dropout_is_off_in_eval_mode() -> None:
    model = compile_graph(chain([100], node("drop", "Dropout", p=0.5))).eval()
    x = torch.randn(2, 100)
    assert torch.equal(model(x), x)
