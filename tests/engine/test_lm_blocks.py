"""The blocks of today's language models, against small references written here from the
papers' definitions: grouped-query attention, RoPE, ALiBi, sliding windows, the gated MLP."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from compute.engine import compile_graph, inspect_graph, layers
from compute.engine.blocks.dense import gated_hidden_features
from compute.engine.training import capture_attention

from .graphs import chain, document, input_node, node
from .test_blocks import CASES, case_graph

B, T, D = 2, 7, 24


def rope_reference(x: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE on (B, T, hs), one pair at a time: feature i turns with feature i + hs/2 by the
    angle t·θ^(−2i/hs)."""
    y = torch.empty_like(x)
    hs = x.shape[-1]
    half = hs // 2
    for t in range(x.shape[1]):
        for i in range(half):
            angle = t * theta ** (-2 * i / hs)
            a, b = x[:, t, i], x[:, t, i + half]
            y[:, t, i] = a * math.cos(angle) - b * math.sin(angle)
            y[:, t, i + half] = b * math.cos(angle) + a * math.sin(angle)
    return y


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                        kv_heads: int, *, causal: bool = False, window: int | None = None,
                        slopes: list[float] | None = None, rope: float | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Head by head, position by position: (B, T, D) before the output projection, and the
    weights (B, heads, T, T). q is (B, T, D); k and v are (B, T, kv_heads·hs)."""
    b, t, d = q.shape
    hs = d // heads
    out = torch.empty_like(q)
    weights = torch.empty(b, heads, t, t, dtype=q.dtype)
    for h in range(heads):
        g = h // (heads // kv_heads)  # the key/value head of query head h
        qh, kh = q[..., h * hs:(h + 1) * hs], k[..., g * hs:(g + 1) * hs]
        vh = v[..., g * hs:(g + 1) * hs]
        if rope is not None:
            qh, kh = rope_reference(qh, rope), rope_reference(kh, rope)
        scores = qh @ kh.transpose(1, 2) / math.sqrt(hs)  # (B, T, T)
        for i in range(t):
            for j in range(t):
                if (causal and j > i) or (window is not None and abs(i - j) >= window):
                    scores[:, i, j] = float("-inf")
                elif slopes is not None:
                    scores[:, i, j] -= slopes[h] * abs(i - j)
        weights[:, h] = scores.softmax(-1)
        out[..., h * hs:(h + 1) * hs] = weights[:, h] @ vh
    return out, weights


def attention_model(**params: Any) -> torch.nn.Module:
    return compile_graph(chain([T, D], node("attn", "MultiHeadAttention", **params)),
                         seed=5).eval()


def projections(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    kv = attn.num_kv_heads * (D // attn.num_heads)
    return attn.qkv(x).split([D, kv, kv], dim=-1)


# Slopes from the ALiBi paper's rule, written out: 4 heads 2^-2 .. 2^-8; 6 heads: those of
# 4, then every other one of 8 (2^-1, 2^-3).
SLOPES_4 = [2**-2, 2**-4, 2**-6, 2**-8]
SLOPES_6 = [*SLOPES_4, 2**-1, 2**-3]

OPTIONS = [
    ({"num_heads": 4}, {}),
    ({"num_heads": 4, "causal": True}, {"causal": True}),
    ({"num_heads": 4, "num_kv_heads": 2, "causal": True, "position": "rope"},
     {"causal": True, "rope": 10000.0}),
    ({"num_heads": 4, "num_kv_heads": 1, "position": "rope", "rope_theta": 50.0},
     {"rope": 50.0}),
    ({"num_heads": 4, "position": "alibi", "causal": True},
     {"causal": True, "slopes": SLOPES_4}),
    ({"num_heads": 6, "num_kv_heads": 2, "position": "alibi"}, {"slopes": SLOPES_6}),
    ({"num_heads": 2, "window": 3, "causal": True}, {"causal": True, "window": 3}),
    ({"num_heads": 2, "window": 2}, {"window": 2}),
    ({"num_heads": 4, "num_kv_heads": 2, "window": 4, "causal": True, "position": "alibi"},
     {"causal": True, "window": 4, "slopes": SLOPES_4}),
]


@pytest.mark.parametrize(("params", "reference"), OPTIONS, ids=lambda p: str(p))
def test_attention_computes_what_the_reference_computes_and_shows_the_same_weights(
        params: dict[str, Any], reference: dict[str, Any]) -> None:
    model = attention_model(**params)
    attn = model.attn
    x = torch.randn(B, T, D, generator=torch.Generator().manual_seed(2))
    heads = params["num_heads"]
    with torch.no_grad():
        q, k, v = projections(attn, x)
        y, weights = attention_reference(q, k, v, heads, params.get("num_kv_heads", heads),
                                         **reference)
        expected = attn.proj(y)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    maps = capture_attention(model, x[:1])
    torch.testing.assert_close(maps["attn"], weights[0], rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the explicit path that captures computes the same output
        attn.capture_attention = True
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_alibi_slopes_follow_the_papers_rule_for_any_number_of_heads() -> None:
    assert layers.MultiHeadAttention.alibi_slopes(4) == SLOPES_4
    assert layers.MultiHeadAttention.alibi_slopes(6) == SLOPES_6
    assert layers.MultiHeadAttention.alibi_slopes(8) == [2.0**-i for i in range(1, 9)]
    assert layers.MultiHeadAttention.alibi_slopes(1) == [2**-8]


def test_grouped_query_attention_shrinks_keys_and_values_and_keeps_the_names() -> None:
    model = attention_model(num_heads=4, num_kv_heads=2, bias=False)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"attn.qkv.weight": (D + 2 * 2 * 6, D), "attn.proj.weight": (D, D)}
    single = attention_model(num_heads=4, num_kv_heads=1, position="alibi")
    assert single.state_dict().keys() == {"attn.qkv.weight", "attn.qkv.bias",
                                          "attn.proj.weight", "attn.proj.bias"}


def test_attention_left_at_its_defaults_is_built_as_before_the_options() -> None:
    report = inspect_graph(chain([T, D], node("attn", "MultiHeadAttention", num_heads=4,
                                              num_kv_heads=4)))
    assert report["valid"]
    model = attention_model(num_heads=4, num_kv_heads=4)
    assert model.attn.qkv.out_features == 3 * D
    assert repr(model.attn).startswith("MultiHeadAttention(\n  num_heads=4, causal=False, "
                                       "dropout=0.0\n")


def test_rotary_embedding_block_is_what_attention_does_to_queries_and_keys() -> None:
    heads, kv_heads, theta = 4, 2, 500.0
    model = attention_model(num_heads=heads, num_kv_heads=kv_heads, position="rope",
                            rope_theta=theta, causal=True)
    kv = kv_heads * (D // heads)
    rope_q = compile_graph(chain([T, D], node("rope", "RotaryEmbedding", num_heads=heads,
                                              theta=theta)))
    rope_k = compile_graph(chain([T, kv], node("rope", "RotaryEmbedding", num_heads=kv_heads,
                                               theta=theta)))
    x = torch.randn(B, T, D)
    with torch.no_grad():
        q, k, v = projections(model.attn, x)
        q_block, k_block = rope_q(q), rope_k(k)
        # The module's own function, on its (B, heads, T, hs) layout.
        q_inner = layers.RotaryEmbedding.rotate(q.view(B, T, heads, -1).transpose(1, 2), theta)
        assert torch.equal(q_block, q_inner.transpose(1, 2).reshape(B, T, D))
        k_inner = layers.RotaryEmbedding.rotate(k.view(B, T, kv_heads, -1).transpose(1, 2),
                                                theta)
        assert torch.equal(k_block, k_inner.transpose(1, 2).reshape(B, T, kv))
        y, _ = attention_reference(q_block, k_block, v, heads, kv_heads, causal=True)
        torch.testing.assert_close(model(x), model.attn.proj(y), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(q_block[..., :6], rope_reference(q[..., :6], theta))


def test_rotary_embedding_leaves_position_zero_and_every_norm_unchanged() -> None:
    model = compile_graph(chain([T, 8], node("rope", "RotaryEmbedding", num_heads=2)))
    x = torch.randn(B, T, 8)
    y = model(x)
    assert torch.equal(y[:, 0], x[:, 0])
    torch.testing.assert_close(y.view(B, T, 2, 4).norm(dim=-1), x.view(B, T, 2, 4).norm(dim=-1))
    assert sum(p.numel() for p in model.parameters()) == 0


def test_gated_mlp_is_the_graph_of_two_linears_an_activation_a_multiply_and_a_linear() -> None:
    for activation, block in (("silu", "SiLU"), ("gelu", "GELU")):
        fused = compile_graph(chain([T, D], node("mlp", "GatedMLP", activation=activation,
                                                 hidden_features=40))).eval()
        drawn = compile_graph(document(
            [input_node("x", [T, D]), node("gate", "Linear", out_features=40, bias=False),
             node("up", "Linear", out_features=40, bias=False), node("act", block),
             node("mul", "Multiply"), node("down", "Linear", out_features=D, bias=False),
             node("y", "Output")],
            [("x", "gate"), ("x", "up"), ("gate", "act"), ("act", "mul.a"), ("up", "mul.b"),
             ("mul", "down"), ("down", "y")])).eval()
        assert (sum(p.numel() for p in fused.parameters())
                == sum(p.numel() for p in drawn.parameters()) == 3 * D * 40)
        drawn.load_state_dict({k.removeprefix("mlp."): v for k, v in fused.state_dict().items()})
        x = torch.randn(B, T, D)
        with torch.no_grad():
            assert torch.equal(fused(x), drawn(x)), activation


def test_gated_mlp_hidden_width_follows_llamas_rule() -> None:
    assert gated_hidden_features(4096, 256) == 11008  # LLaMA 7B
    assert gated_hidden_features(512, 256) == 1536
    assert gated_hidden_features(96, 32) == 256  # 8·96/3 = 256 exactly
    report = inspect_graph(chain([4, 4096], node("mlp", "GatedMLP")))
    assert report["nodes"]["mlp"]["params"] == 3 * 4096 * 11008
    model = compile_graph(chain([4, 64], node("mlp", "GatedMLP", multiple_of=16)))
    assert (model.mlp.gate.out_features, model.mlp.down.in_features) == (176, 176)


def test_modules_with_weights_name_the_projections_that_write_into_the_residual() -> None:
    checked = set()
    for case in CASES:
        if case.type in ("Input", "Output", "Repeat", "Init"):
            continue
        module = compile_graph(case_graph(case)).get_submodule("block")
        if type(module).__module__ != layers.__name__ or not list(module.parameters()):
            continue
        names = type(module).residual_projections  # type: ignore[attr-defined]
        # A "*" part stands for every expert: the first one stands for them here.
        assert all(isinstance(module.get_submodule(n.replace("*", "0")), nn.Linear)
                   for n in names)
        checked.add((type(module).__name__, names))
    assert checked == {("MultiHeadAttention", ("proj",)), ("GatedMLP", ("down",)),
                       ("PositionalEmbedding", ()), ("MixtureOfExperts", ("experts.*.down",))}


def problem(doc: dict[str, Any]) -> tuple[str | None, str | None, str]:
    report = inspect_graph(doc)
    ((node_id, field, message),) = [(p["node"], p["field"], p["message"])
                                    for p in report["problems"]]
    return node_id, field, message


def test_key_value_heads_that_do_not_divide_the_heads_are_refused_with_the_choices() -> None:
    for kv in (3, 8):
        node_id, field, message = problem(chain([T, D], node(
            "attn", "MultiHeadAttention", num_heads=4, num_kv_heads=kv)))
        assert (node_id, field) == ("attn", "num_kv_heads")
        assert f"num_kv_heads {kv} does not divide num_heads 4" in message
        assert message.endswith("pick one of 1, 2, 4")


def test_rope_on_heads_of_an_odd_size_is_refused_with_the_heads_that_work() -> None:
    node_id, field, message = problem(chain([T, 12], node(
        "attn", "MultiHeadAttention", num_heads=4, position="rope")))
    assert (node_id, field) == ("attn", "num_heads")
    assert "heads of 3 features, an odd number" in message
    assert "(1, 2, 3, 6)" in message
    node_id, field, message = problem(chain([T, 9], node("rope", "RotaryEmbedding",
                                                         num_heads=3)))
    assert (node_id, field) == ("rope", "num_heads")
    assert "make the width 9 even" in message


def test_bad_option_values_are_refused_on_their_field() -> None:
    for params, field in (({"window": 0}, "window"), ({"position": "learned"}, "position"),
                          ({"num_kv_heads": 0}, "num_kv_heads"), ({"rope_theta": 1}, "rope_theta")):
        node_id, got, _ = problem(chain([T, D], node("attn", "MultiHeadAttention", **params)))
        assert (node_id, got) == ("attn", field), params
    node_id, field, _ = problem(chain([T, D], node("mlp", "GatedMLP", activation="relu")))
    assert (node_id, field) == ("mlp", "activation")
