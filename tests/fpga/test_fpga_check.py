"""fpga_problems: what cannot go to an FPGA is named before any tool runs."""

from __future__ import annotations

from fpga_graphs import chain, node, repeat

from compute.engine import FORMAT, load_graph, load_starter
from fpga.check import fpga_problems, fpga_warnings
from fpga.settings import FpgaSettings


def test_the_digits_starters_can_go() -> None:
    for name in ("mlp", "cnn"):
        assert fpga_problems(load_graph(load_starter(name))) == []


def test_attention_is_refused_with_the_node_named() -> None:
    graph = load_graph(chain([4, 16], node("attn", "MultiHeadAttention", num_heads=2),
                             node("head", "Linear", out_features=3)))
    (problem,) = fpga_problems(graph)
    assert problem.node == "attn" and "MultiHeadAttention" in problem.message


def test_the_parts_of_attention_are_refused_and_a_scale_by_a_constant_goes() -> None:
    graph = load_graph(chain([4, 4], node("t", "Transpose"), node("mask", "CausalMask"),
                             node("s", "Scale"), node("c", "Scale", by="constant", factor=0.5),
                             node("cut", "Slice", start=1)))
    found = {(p.node, p.field) for p in fpga_problems(graph)}
    assert found == {("t", "type"), ("mask", "type"), ("s", "by"), ("cut", "type")}


def test_a_mixture_of_experts_is_refused_with_the_node_named() -> None:
    # hls4ml 1.3 stops in the routing, at "Unsupported function float" (tried by hand).
    graph = load_graph(chain([16], node("moe", "MixtureOfExperts", activation="relu"),
                             node("head", "Linear", out_features=3)))
    (problem,) = fpga_problems(graph)
    assert problem.node == "moe" and "top-k routing" in problem.message


def test_a_repeat_holding_attention_is_named_with_what_it_holds() -> None:
    graph = load_graph(chain([4, 16], repeat("blocks", 2, node("attn", "MultiHeadAttention",
                                                                num_heads=2))))
    found = {(p.node, p.message) for p in fpga_problems(graph)}
    assert any(n == "blocks/attn" for n, _ in found)
    assert any(n == "blocks" and "(attn)" in m for n, m in found)


def test_the_transformer_starter_names_its_embedding_and_attention() -> None:
    graph = load_graph(load_starter("transformer_classifier"))
    assert {p.node for p in fpga_problems(graph)} == {
        "tokens", "embed", "pos", "encoder", "encoder/attn", "encoder/gelu", "pool"}
    assert {w.node for w in fpga_warnings(graph)} == {"encoder/ln1", "encoder/ln2", "norm"}


def test_a_split_is_refused_with_the_node_named() -> None:
    graph = load_graph({"format": FORMAT, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [8]}},
        {"id": "halves", "type": "Split"}, {"id": "add", "type": "Add"},
        {"id": "y", "type": "Output"}], "edges": [
        {"from": "x", "to": "halves"}, {"from": "halves.a", "to": "add.a"},
        {"from": "halves.b", "to": "add.b"}, {"from": "add", "to": "y"}]})
    (problem,) = fpga_problems(graph)
    assert (problem.node, problem.field) == ("halves", "type")
    assert problem.message.startswith("Split (a block of several outputs) is not taken")


def test_lookup_table_blocks_are_warnings_not_problems() -> None:
    graph = load_graph(chain([16], node("l", "Linear", out_features=4), node("p", "Softmax")))
    assert fpga_problems(graph) == []
    (warning,) = fpga_warnings(graph)
    assert warning.node == "p" and "lookup" in warning.message


def test_an_override_naming_no_node_is_a_problem() -> None:
    graph = load_graph(load_starter("mlp"))
    settings = FpgaSettings(precision_overrides={"nowhere": "ap_fixed<8,4>"})
    (problem,) = fpga_problems(graph, settings)
    assert "nowhere" in problem.message and problem.field == "precision_overrides"


def test_an_override_of_a_repeat_is_a_problem_until_its_blocks_can_take_one() -> None:
    graph = load_graph(chain([16], repeat("blocks", 2, node("l", "Linear", out_features=16))))
    settings = FpgaSettings(precision_overrides={"blocks": "ap_fixed<8,4>"})
    (problem,) = fpga_problems(graph, settings)
    assert problem.node == "blocks" and "Repeat" in problem.message


def test_the_blocks_of_todays_language_models_are_refused_and_an_init_node_is_not() -> None:
    doc = chain([6, 8], node("mlp", "GatedMLP", hidden_features=16),
                node("rope", "RotaryEmbedding", num_heads=2))
    doc["nodes"].append(node("init", "Init", scheme="normal"))
    found = {(p.node, p.field) for p in fpga_problems(load_graph(doc))}
    assert found == {("mlp", "type"), ("rope", "type")}
