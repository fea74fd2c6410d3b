"""The compiled model: an fx.GraphModule named by node ids, seeded, with the documented calling
convention, and figures in the report that match it."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
import torch
from torch import nn

from compute.engine import (
    CheckedGraph,
    GraphError,
    Limits,
    compile_graph,
    compiled_info,
    example_inputs,
    inspect_graph,
    load_graph,
    load_starter,
)
from compute.engine.graph import Endpoint, parse_graph

from .graphs import chain, document, input_node, node, repeat


def test_same_graph_and_seed_give_identical_weights() -> None:
    first = compile_graph(load_starter("char_gpt"), seed=7).state_dict()
    second = compile_graph(load_starter("char_gpt"), seed=7).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_different_seeds_give_different_weights() -> None:
    first = compile_graph(load_starter("mlp"), seed=0).state_dict()
    second = compile_graph(load_starter("mlp"), seed=1).state_dict()
    assert not torch.equal(first["hidden1.weight"], second["hidden1.weight"])


def test_compiling_leaves_the_callers_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    compile_graph(load_starter("mlp"), seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_generated_code_calls_submodules_by_node_id() -> None:
    model = compile_graph(load_starter("mlp"))
    assert "def forward(self, x):" in model.code
    assert "hidden1 = self.hidden1(x)" in model.code
    assert "logits = self.logits(act2)" in model.code
    assert isinstance(model.hidden1, nn.Linear)


def test_state_dict_keys_are_node_ids_and_repeat_copies_are_numbered() -> None:
    keys = set(compile_graph(load_starter("char_gpt")).state_dict())
    assert {"wte.weight", "wpe.weight", "head.weight", "ln_f.weight"} <= keys
    for i in range(4):
        assert f"blocks.{i}.attn.qkv.weight" in keys
        assert f"blocks.{i}.fc.bias" in keys
    assert "blocks.4.attn.qkv.weight" not in keys


def test_repeat_copies_have_their_own_weights() -> None:
    model = compile_graph(chain([8], repeat("stack", 3, node("lin", "Linear", out_features=8))))
    w0, w1 = model.stack[0].lin.weight, model.stack[1].lin.weight
    assert w0.data_ptr() != w1.data_ptr()
    assert not torch.equal(w0, w1)
    assert "lin = self.lin(x)" in model.stack[0].code


def test_repeat_runs_its_copies_in_sequence() -> None:
    model = compile_graph(chain([8], repeat("stack", 3, node("lin", "Linear", out_features=8))))
    x = torch.randn(2, 8)
    expected = model.stack[2].lin(model.stack[1].lin(model.stack[0].lin(x)))
    torch.testing.assert_close(model(x), expected)


def test_one_output_returns_a_tensor() -> None:
    out = compile_graph(load_starter("mlp"))(torch.randn(3, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (3, 10)


def test_several_outputs_return_a_dict_by_output_id() -> None:
    doc = document(
        [input_node("x", [8]), node("h", "Linear", out_features=4), node("logits", "Output"),
         node("features", "Output")],
        [("x", "h"), ("h", "logits"), ("x", "features")])
    x = torch.randn(2, 8)
    out = compile_graph(doc)(x)
    assert isinstance(out, dict) and list(out) == ["logits", "features"]
    assert out["logits"].shape == (2, 4)
    assert torch.equal(out["features"], x)


def two_input_document() -> dict[str, Any]:
    # `second` is listed first and so comes first, whatever the topological order says.
    return document(
        [input_node("second", [4]), node("scale", "Linear", out_features=4),
         input_node("first", [4]), node("diff", "Concat"), node("y", "Output")],
        [("first", "scale"), ("second", "diff.a"), ("scale", "diff.b"), ("diff", "y")])


def two_input_model() -> torch.nn.Module:
    return compile_graph(two_input_document())


def test_multiple_inputs_are_positional_in_listed_order() -> None:
    model = two_input_model()
    assert "def forward(self, second, first):" in model.code
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    out = model(a, b)
    assert torch.equal(out[:, :4], a)
    torch.testing.assert_close(out[:, 4:], model.scale(b))


def test_multiple_inputs_accept_keywords() -> None:
    model = two_input_model()
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    assert torch.equal(model(first=b, second=a), model(a, b))


def test_load_graph_returns_the_analysis_as_a_field_and_compile_builds_from_it() -> None:
    graph = load_graph(load_starter("mlp"))
    assert isinstance(graph, CheckedGraph)
    assert "analysis" in {f.name for f in fields(graph)}
    assert graph.analysis.nodes["hidden1"].outputs["out"].shape == (128,)
    # The same analysis object: compile_graph does not analyse a checked graph again.
    assert compiled_info(compile_graph(graph)).analysis is graph.analysis


def test_load_graph_checks_a_graph_made_by_hand() -> None:
    # Parsing is fine (a known block, valid parameters); the shapes are not.
    doc = chain([64], node("hidden", "Linear", out_features=8), dtype="int64")
    graph, problems = parse_graph(doc, Limits())
    assert graph is not None and problems == []
    with pytest.raises(GraphError, match="Linear expects a float input"):
        load_graph(graph)


def test_the_adjacency_index_names_every_wired_port_once_and_is_kept() -> None:
    graph = load_graph(two_input_document())
    assert graph.incoming == {
        "scale": {"in": Endpoint("first", "out")},
        "diff": {"a": Endpoint("second", "out"), "b": Endpoint("scale", "out")},
        "y": {"in": Endpoint("diff", "out")},
    }
    assert graph.incoming is graph.incoming


def test_example_inputs_fit_every_input_and_stay_inside_the_vocabulary() -> None:
    graph = load_graph(load_starter("char_gpt"))
    (tokens,) = example_inputs(graph, batch=5)
    assert tokens.shape == (5, 64) and tokens.dtype == torch.int64
    assert int(tokens.min()) >= 0 and int(tokens.max()) < 128


def test_compiled_model_trains_one_step() -> None:
    model = compile_graph(load_starter("cnn")).train()
    x, target = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    loss = nn.functional.cross_entropy(model(x), target)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "transformer_classifier", "char_gpt",
                                  "llama"])
def test_report_matches_the_compiled_model(name: str) -> None:
    report = inspect_graph(load_starter(name))
    model = compile_graph(load_starter(name)).eval()
    assert report["totals"]["params"] == sum(p.numel() for p in model.parameters())
    args = example_inputs(load_graph(load_starter(name)), batch=3)
    with torch.no_grad():
        out = model(*args)
    (output_id,) = [k for k, v in report["nodes"].items() if v["type"] == "Output"]
    assert ["B", *out.shape[1:]] == report["nodes"][output_id]["inputs"]["in"]["shape"]


def test_linear_flops_for_a_batch_of_one_are_two_times_in_times_out() -> None:
    report = inspect_graph(chain([64], node("hidden", "Linear", out_features=128)))
    assert report["nodes"]["hidden"]["flops"] == 2 * 64 * 128
    assert report["totals"]["flops"] == 2 * 64 * 128


def test_repeat_counts_params_and_flops_times_its_copies() -> None:
    doc = chain([16], repeat("stack", 5, node("lin", "Linear", out_features=16)))
    entry = inspect_graph(doc)["nodes"]["stack"]
    assert entry["times"] == 5
    assert entry["params"] == 5 * (16 * 16 + 16)
    assert entry["flops"] == 5 * 2 * 16 * 16
    assert entry["body"]["nodes"]["lin"]["params"] == 16 * 16 + 16


def test_inspect_without_flops_leaves_them_out() -> None:
    report = inspect_graph(load_starter("mlp"), flops=False)
    assert report["totals"]["flops"] is None
    assert report["valid"]


# MultiHeadAttention's explicit path, used to show attention maps.


def attention_model(causal: bool) -> torch.nn.Module:
    doc = chain([6, 16], node("attn", "MultiHeadAttention", num_heads=4, causal=causal))
    return compile_graph(doc, seed=3).eval()


@pytest.mark.parametrize("causal", [False, True])
def test_captured_attention_gives_the_same_output_as_the_fast_path(causal: bool) -> None:
    model = attention_model(causal)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        fast = model(x)
        model.attn.capture_attention = True
        explicit = model(x)
    torch.testing.assert_close(explicit, fast, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_captured_attention_weights_are_probabilities_per_head(causal: bool) -> None:
    model = attention_model(causal)
    model.attn.capture_attention = True
    with torch.no_grad():
        model(torch.randn(3, 6, 16))
    weights = model.attn.last_attention
    assert weights is not None and weights.shape == (3, 4, 6, 6)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(3, 4, 6))
    upper = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    if causal:
        assert torch.all(weights[..., upper] == 0)
    else:
        assert torch.all(weights[..., upper] > 0)


def test_causal_attention_ignores_later_positions() -> None:
    model = attention_model(causal=True)
    x = torch.randn(1, 6, 16)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :4], model(changed)[:, :4])
