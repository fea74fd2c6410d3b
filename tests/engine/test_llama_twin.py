"""A drawn Llama-style model is a Llama: the same parameter count and the same outputs as a
plain PyTorch Llama written here by hand (in the layout of Meta's reference code, with the
rotary embedding in the "rotate half" layout of Hugging Face's), once the compiled model's
weights are loaded into it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compute.engine import compile_graph, load_starter

from .graphs import document, input_node, node


@dataclass(frozen=True)
class Config:
    vocab: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    hidden: int  # of the gated MLP
    seq: int
    theta: float = 10000.0
    eps: float = 1e-5
    tied: bool = False  # the output head reads with the token embedding's table


class TwinRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class TwinAttention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.heads, self.kv_heads, self.hs = c.heads, c.kv_heads, c.dim // c.heads
        self.wq = nn.Linear(c.dim, c.heads * self.hs, bias=False)
        self.wk = nn.Linear(c.dim, c.kv_heads * self.hs, bias=False)
        self.wv = nn.Linear(c.dim, c.kv_heads * self.hs, bias=False)
        self.wo = nn.Linear(c.heads * self.hs, c.dim, bias=False)
        inv_freq = 1.0 / (c.theta ** (torch.arange(0, self.hs, 2).float() / self.hs))
        freqs = torch.outer(torch.arange(c.seq).float(), inv_freq)  # (T, hs/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, hs)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.heads, self.hs).transpose(1, 2)
        k = self.wk(x).view(b, t, self.kv_heads, self.hs).transpose(1, 2)
        v = self.wv(x).view(b, t, self.kv_heads, self.hs).transpose(1, 2)
        cos, sin = self.cos[:t], self.sin[:t]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.hs)
        future = torch.ones(t, t, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
        y = scores.softmax(-1) @ v  # (B, heads, T, hs)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))


class TwinFeedForward(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.w1 = nn.Linear(c.dim, c.hidden, bias=False)
        self.w2 = nn.Linear(c.hidden, c.dim, bias=False)
        self.w3 = nn.Linear(c.dim, c.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TwinBlock(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.attention_norm = TwinRMSNorm(c.dim, c.eps)
        self.attention = TwinAttention(c)
        self.ffn_norm = TwinRMSNorm(c.dim, c.eps)
        self.feed_forward = TwinFeedForward(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x))
        return h + self.feed_forward(self.ffn_norm(h))


class TwinLlama(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.tok_embeddings = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(TwinBlock(c) for _ in range(c.layers))
        self.norm = TwinRMSNorm(c.dim, c.eps)
        self.output = nn.Linear(c.dim, c.vocab, bias=False)
        if c.tied:
            self.output.weight = self.tok_embeddings.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.output(self.norm(h))


def llama_graph(c: Config) -> dict[str, Any]:
    """The Llama above as a user draws it."""
    body = {
        "nodes": [{"id": "x", "type": "Input"}, node("norm1", "RMSNorm", eps=c.eps),
                  node("attn", "MultiHeadAttention", num_heads=c.heads,
                       num_kv_heads=c.kv_heads, position="rope", rope_theta=c.theta,
                       causal=True, bias=False),
                  node("res1", "Add"), node("norm2", "RMSNorm", eps=c.eps),
                  node("mlp", "GatedMLP", activation="silu", hidden_features=c.hidden),
                  node("res2", "Add"), node("y", "Output")],
        "edges": [{"from": a, "to": b} for a, b in [
            ("x", "norm1"), ("norm1", "attn"), ("x", "res1.a"), ("attn", "res1.b"),
            ("res1", "norm2"), ("norm2", "mlp"), ("res1", "res2.a"), ("mlp", "res2.b"),
            ("res2", "y")]],
    }
    return document(
        [input_node("tokens", [c.seq], "int64"),
         node("wte", "Embedding", num_embeddings=c.vocab, embedding_dim=c.dim),
         {"id": "blocks", "type": "Repeat", "params": {"times": c.layers}, "graph": body},
         node("norm_f", "RMSNorm", eps=c.eps),
         node("head", "Linear", out_features=c.vocab, bias=False,
              **({"tie_to": "wte"} if c.tied else {})),
         node("logits", "Output")],
        [("tokens", "wte"), ("wte", "blocks"), ("blocks", "norm_f"), ("norm_f", "head"),
         ("head", "logits")], name="tiny llama")


def twin_state(ours: dict[str, torch.Tensor], c: Config) -> dict[str, torch.Tensor]:
    """Our state dict under the twin's names; the fused qkv split into wq, wk, wv."""
    kv = c.kv_heads * (c.dim // c.heads)
    theirs = {"tok_embeddings.weight": ours["wte.weight"], "norm.weight": ours["norm_f.weight"],
              "output.weight": ours["head.weight"]}
    for i in range(c.layers):
        p, q = f"blocks.{i}.", f"layers.{i}."
        wq, wk, wv = ours[p + "attn.qkv.weight"].split([c.dim, kv, kv])
        theirs |= {
            q + "attention_norm.weight": ours[p + "norm1.weight"],
            q + "attention.wq.weight": wq, q + "attention.wk.weight": wk,
            q + "attention.wv.weight": wv,
            q + "attention.wo.weight": ours[p + "attn.proj.weight"],
            q + "ffn_norm.weight": ours[p + "norm2.weight"],
            q + "feed_forward.w1.weight": ours[p + "mlp.gate.weight"],
            q + "feed_forward.w3.weight": ours[p + "mlp.up.weight"],
            q + "feed_forward.w2.weight": ours[p + "mlp.down.weight"],
        }
    assert len(theirs) == len(ours) + 2 * c.layers  # every tensor used, qkv as three
    return theirs


SMALL = Config(vocab=50, dim=64, layers=2, heads=4, kv_heads=2, hidden=96, seq=16, theta=500.0)
TIED = Config(vocab=50, dim=64, layers=2, heads=4, kv_heads=1, hidden=96, seq=16, tied=True)
# The shipped starter: D 256, 8 heads sharing 2 key/value heads, hidden 768 by Llama's rule.
STARTER = Config(vocab=128, dim=256, layers=4, heads=8, kv_heads=2, hidden=768, seq=64)


@pytest.mark.parametrize(("config", "doc"), [(SMALL, llama_graph(SMALL)),
                                             (TIED, llama_graph(TIED)),
                                             (STARTER, load_starter("llama"))],
                         ids=["small", "tied-multi-query", "starter"])
def test_drawn_llama_matches_a_hand_written_llama(config: Config, doc: dict[str, Any]) -> None:
    model = compile_graph(doc, seed=4).eval()
    twin = TwinLlama(config).eval()
    assert (sum(p.numel() for p in model.parameters())
            == sum(p.numel() for p in twin.parameters()))
    with torch.no_grad():  # the twin's own initialization is not ours: no accidental match
        tokens = torch.randint(0, config.vocab, (3, config.seq))
        assert not torch.allclose(twin(tokens), model(tokens), atol=1e-3)
    twin.load_state_dict(twin_state(model.state_dict(), config))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), twin(tokens), rtol=1e-5, atol=1e-5)
