"""What a model does to the data: the values on its edges for one example, and the next
characters a character model predicts after a prompt (compute/engine/probe.py)."""

from __future__ import annotations

import math

import pytest
import torch

from compute.engine import CheckedGraph, compile_graph, load_graph, load_starter
from compute.engine.datasets import dataset_for, make_dataset
from compute.engine.probe import (
    BINS,
    MAX_COUNTED,
    DivergedError,
    ProbeError,
    Vocabulary,
    edge_values,
    next_chars,
    summarize,
)
from compute.engine.training import capture_attention

from .graphs import chain, document, input_node, node
from .test_ports import qkv_graph


def mlp(bias: float | None = None) -> tuple[CheckedGraph, torch.fx.GraphModule]:
    graph = load_graph(chain([8], node("hidden", "Linear", out_features=16),
                             node("act", "ReLU"), node("logits", "Linear", out_features=3)))
    model = compile_graph(graph, seed=0)
    if bias is not None:
        hidden = model.get_submodule("hidden")
        assert isinstance(hidden, torch.nn.Linear)
        torch.nn.init.constant_(hidden.bias, bias)
    return graph, model


def test_a_dead_relu_gives_only_zeros() -> None:
    graph, model = mlp(bias=-100.0)  # every pre-activation far below 0
    stats = edge_values(graph, model, torch.randn(1, 8))
    assert stats["act.out"]["zeros"] == 1.0
    assert stats["act.out"]["histogram"] == {"edges": [0.0, 0.0], "counts": [16]}
    assert stats["hidden.out"]["zeros"] == 0.0


def test_a_live_relu_zeros_about_half() -> None:
    graph, model = mlp()
    stats = edge_values(graph, model, torch.randn(1, 8, generator=torch.Generator().manual_seed(1)))
    assert 0.0 < stats["act.out"]["zeros"] < 1.0


def test_every_edge_matches_what_torch_computes() -> None:
    graph, model = mlp()
    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(3))
    stats = edge_values(graph, model, x)
    assert list(stats) == ["x.out", "hidden.out", "act.out", "logits.out"]
    hidden = model.get_submodule("hidden")(x)
    values = {"x.out": x, "hidden.out": hidden, "act.out": hidden.relu(),
              "logits.out": model(x)}
    for key, tensor in values.items():
        got = stats[key]
        assert got["shape"] == list(tensor.shape)
        assert got["mean"] == pytest.approx(tensor.mean().item(), abs=1e-6)
        assert got["std"] == pytest.approx(tensor.std(correction=0).item(), abs=1e-6)
        assert got["zeros"] == pytest.approx((tensor == 0).float().mean().item())
        counts, edges = torch.histogram(tensor.detach().flatten().double(), bins=BINS)
        assert got["histogram"]["counts"] == counts.long().tolist()
        assert got["histogram"]["edges"] == pytest.approx(edges.tolist())
        assert sum(got["histogram"]["counts"]) == tensor.numel()


def test_every_port_of_a_split_is_its_own_edge() -> None:
    graph = load_graph(qkv_graph())
    model = compile_graph(graph, seed=0)
    x = torch.randn(1, 4, 8)
    stats = edge_values(graph, model, x)
    q, k, v = model.get_submodule("proj")(x).split(8, dim=-1)
    for port, value in zip("qkv", (q, k, v), strict=True):
        assert stats[f"qkv_split.{port}"]["shape"] == [1, 4, 8]
        assert stats[f"qkv_split.{port}"]["mean"] == pytest.approx(value.mean().item())


def test_summary_leaves_out_values_that_are_not_finite() -> None:
    got = summarize(torch.tensor([1.0, float("nan"), 3.0, float("inf")]))
    assert (got["mean"], got["std"], got["nonfinite"]) == (2.0, 1.0, 2)
    assert summarize(torch.tensor([float("nan")]))["mean"] is None


def test_values_near_float32s_largest_give_finite_figures() -> None:
    # A model about to diverge: its float32 range (6e38) is more than float32 holds.
    got = summarize(torch.tensor([-3e38, 1.0, 3e38]))
    edges = got["histogram"]["edges"]
    largest = float(torch.tensor(3e38))  # as float32 has it
    assert all(math.isfinite(e) for e in edges) and edges[0] == -largest
    assert edges[-1] == largest
    assert sum(got["histogram"]["counts"]) == 3
    assert got["std"] is not None and math.isfinite(got["std"])


def test_a_huge_value_is_summarized_from_a_sample_of_it() -> None:
    t = torch.zeros(MAX_COUNTED * 3 + 5)
    t[::2] = 1.0  # half ones, evenly spread
    got = summarize(t)
    assert got["counted"] <= MAX_COUNTED and got["shape"] == [MAX_COUNTED * 3 + 5]
    assert got["zeros"] == pytest.approx(0.5, abs=0.01)
    assert summarize(torch.ones(10))["counted"] == 10


def test_a_model_of_two_inputs_takes_one_tensor_each() -> None:
    graph = load_graph(document(
        [input_node("a", [3]), input_node("b", [3]), node("sum", "Add"), node("y", "Output")],
        [("a", "sum.a"), ("b", "sum.b"), ("sum", "y")]))
    model = compile_graph(graph, seed=0)
    with pytest.raises(ProbeError, match="2 Inputs"):
        edge_values(graph, model, torch.ones(1, 3))
    stats = edge_values(graph, model, {"a": torch.ones(1, 3), "b": torch.ones(1, 3)})
    assert stats["sum.out"]["mean"] == 2.0


# What comes next.


@pytest.fixture(scope="module")
def gpt() -> tuple[torch.fx.GraphModule, object]:
    model = compile_graph(load_starter("char_gpt"), seed=0)
    return model, dataset_for(model, "shakespeare")


def test_next_chars_match_a_direct_forward_pass(gpt) -> None:
    model, data = gpt
    answer = next_chars(model, data, "ROMEO:\nWhat", k=5)
    ids = torch.tensor([[ord(c) for c in "ROMEO:\nWhat"]])
    probs = model.eval()(ids)[0, -1].softmax(-1)
    p, index = probs.topk(5)
    assert [t["char"] for t in answer["top"]] == [chr(int(i)) for i in index]
    assert [t["p"] for t in answer["top"]] == pytest.approx(p.tolist(), abs=1e-5)
    assert sum(t["p"] for t in answer["top"]) <= 1.0
    assert answer["prompt_used"] == "ROMEO:\nWhat" and not answer["truncated"]


def test_next_chars_heads_are_the_last_rows_of_the_attention_maps(gpt) -> None:
    model, data = gpt
    answer = next_chars(model, data, "to be or not")
    maps = capture_attention(model, torch.tensor([[ord(c) for c in "to be or not"]]),
                             pool=False)
    assert len(answer["heads"]) == sum(m.shape[0] for m in maps.values())
    first = answer["heads"][0]
    assert first["tokens"] == list("to be or not")
    expected = maps[first["module"]][first["head"], -1]
    assert first["weights"] == pytest.approx(expected.tolist(), abs=1e-4)
    assert sum(first["weights"]) == pytest.approx(1.0, abs=1e-3)


def test_a_prompt_longer_than_the_context_keeps_its_end(gpt) -> None:
    model, data = gpt
    prompt = "abcdefghij" * 20  # 200 characters; the starter reads 64
    answer = next_chars(model, data, prompt)
    assert answer["truncated"] and answer["context"] == 64
    assert answer["prompt_used"] == prompt[-64:]
    assert len(answer["heads"][0]["weights"]) == 64


def test_characters_the_model_does_not_know_are_named(gpt) -> None:
    model, data = gpt
    with pytest.raises(ProbeError, match="'é', '€'"):
        next_chars(model, data, "caf€é")
    with pytest.raises(ProbeError, match="empty"):
        next_chars(model, data, "")


def test_every_text_dataset_has_the_text_vocabulary() -> None:
    text = Vocabulary.text()
    for name in ("shakespeare", "harbour"):
        found = Vocabulary.of(make_dataset(name))
        assert found is not None and found.chars() == text.chars()
    assert Vocabulary.of(make_dataset("modadd")) is None


def test_next_chars_refuses_a_model_that_is_not_a_text_model() -> None:
    _, model = mlp()
    vocab = Vocabulary.of(make_dataset("shakespeare"))
    assert vocab is not None
    with pytest.raises(ProbeError, match="sequence of characters"):
        next_chars(model, vocab, "hello")
    with pytest.raises(ProbeError, match="not a text"):
        next_chars(model, make_dataset("digits"), "hello")


def test_a_model_that_reads_exactly_t_characters_asks_for_that_many() -> None:
    # Its Linear mixes the T positions' embeddings together, so it cannot read fewer.
    graph = chain([8], node("emb", "Embedding", num_embeddings=128, embedding_dim=4),
                  node("flat", "Reshape", shape=[32]),
                  node("mix", "Linear", out_features=8 * 128),
                  node("back", "Reshape", shape=[8, 128]), dtype="int64")
    model = compile_graph(load_graph(graph), seed=0)
    vocab = Vocabulary.text()
    assert len(next_chars(model, vocab, "abcdefgh")["top"]) == 5
    with pytest.raises(ProbeError, match="reads exactly 8 characters and cannot read the 2 "
                                         "of the prompt: type at least 8"):
        next_chars(model, vocab, "hi")
    assert model.training, "the model is left as it was found"


def test_a_model_whose_weights_diverged_says_so_instead_of_predicting() -> None:
    model = compile_graph(load_starter("char_gpt"), seed=0)
    with torch.no_grad():
        model.get_submodule("head").weight.fill_(float("nan"))  # type: ignore[operator]
    with pytest.raises(DivergedError, match="weights diverged"):
        next_chars(model, Vocabulary.text(), "hello")
