"""A drawn GPT-2 is a GPT-2: the same parameter count and the same outputs as a plain PyTorch
GPT-2 written here by hand (in the layout of OpenAI's checkpoints as Hugging Face names
them: `c_attn`, `c_proj`, `c_fc`, a head tied to `wte`), once the compiled model's weights
are loaded into it; and both start the same way under GPT-2's scheme."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compute.engine import compile_graph, inspect_graph

from .graphs import document, input_node, node


@dataclass(frozen=True)
class Config:
    vocab: int = 96
    dim: int = 64
    layers: int = 3
    heads: int = 4
    context: int = 24
    eps: float = 1e-5


class TwinAttention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.heads = c.heads
        self.c_attn = nn.Linear(c.dim, 3 * c.dim)
        self.c_proj = nn.Linear(c.dim, c.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = scores.softmax(-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))


class TwinBlock(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.dim, eps=c.eps)
        self.attn = TwinAttention(c)
        self.ln_2 = nn.LayerNorm(c.dim, eps=c.eps)
        self.c_fc = nn.Linear(c.dim, 4 * c.dim)
        self.c_proj = nn.Linear(4 * c.dim, c.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class TwinGPT2(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.wte = nn.Embedding(c.vocab, c.dim)
        self.wpe = nn.Embedding(c.context, c.dim)
        self.h = nn.ModuleList(TwinBlock(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.dim, eps=c.eps)
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # GPT-2 ties its head to the token table
        for name, p in self.named_parameters():  # GPT-2's initialization
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * c.layers) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt2_graph(c: Config) -> dict[str, Any]:
    """The GPT-2 above as a user draws it."""
    body = {
        "nodes": [{"id": "x", "type": "Input"}, node("ln1", "LayerNorm", eps=c.eps),
                  node("attn", "MultiHeadAttention", num_heads=c.heads, causal=True),
                  node("res1", "Add"), node("ln2", "LayerNorm", eps=c.eps),
                  node("fc", "Linear", out_features=4 * c.dim),
                  node("gelu", "GELU", approximate="tanh"),
                  node("proj", "Linear", out_features=c.dim), node("res2", "Add"),
                  node("y", "Output")],
        "edges": [{"from": a, "to": b} for a, b in [
            ("x", "ln1"), ("ln1", "attn"), ("x", "res1.a"), ("attn", "res1.b"),
            ("res1", "ln2"), ("ln2", "fc"), ("fc", "gelu"), ("gelu", "proj"),
            ("res1", "res2.a"), ("proj", "res2.b"), ("res2", "y")]],
    }
    return document(
        [input_node("tokens", [c.context], "int64"),
         node("wte", "Embedding", num_embeddings=c.vocab, embedding_dim=c.dim),
         node("wpe", "PositionalEmbedding", max_len=c.context),
         {"id": "blocks", "type": "Repeat", "params": {"times": c.layers}, "graph": body},
         node("ln_f", "LayerNorm", eps=c.eps),
         node("head", "Linear", out_features=c.vocab, bias=False, tie_to="wte"),
         node("logits", "Output"), node("init", "Init", scheme="gpt2")],
        [("tokens", "wte"), ("wte", "wpe"), ("wpe", "blocks"), ("blocks", "ln_f"),
         ("ln_f", "head"), ("head", "logits")], name="tiny gpt-2")


def twin_state(ours: dict[str, torch.Tensor], c: Config) -> dict[str, torch.Tensor]:
    theirs = {"wte.weight": ours["wte.weight"], "wpe.weight": ours["wpe.weight"],
              "ln_f.weight": ours["ln_f.weight"], "ln_f.bias": ours["ln_f.bias"],
              "lm_head.weight": ours["head.weight"]}
    names = {"ln1": "ln_1", "attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj",
             "ln2": "ln_2", "fc": "c_fc", "proj": "c_proj"}
    for i in range(c.layers):
        for mine, twin in names.items():
            for kind in ("weight", "bias"):
                theirs[f"h.{i}.{twin}.{kind}"] = ours[f"blocks.{i}.{mine}.{kind}"]
    assert set(theirs) == set(TwinGPT2(c).state_dict())
    return theirs


def test_drawn_gpt2_matches_a_hand_written_gpt2() -> None:
    c = Config()
    model = compile_graph(gpt2_graph(c), seed=3).eval()
    twin = TwinGPT2(c).eval()
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in twin.parameters())
    assert inspect_graph(gpt2_graph(c))["totals"]["params"] == count  # the table once
    tokens = torch.randint(0, c.vocab, (3, c.context))
    with torch.no_grad():
        assert not torch.allclose(twin(tokens), model(tokens), atol=1e-3)
    twin.load_state_dict(twin_state(model.state_dict(), c))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), twin(tokens), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["wte.weight", "blocks.1.attn.qkv.weight",
                                  "blocks.1.attn.proj.weight", "blocks.2.proj.weight",
                                  "blocks.0.fc.bias"])
def test_drawn_gpt2_starts_as_gpt2_does(name: str) -> None:
    c = Config(dim=128, layers=4)
    model = dict(compile_graph(gpt2_graph(c), seed=0).named_parameters())
    twin_names = {"wte.weight": "wte.weight", "blocks.1.attn.qkv.weight": "h.1.attn.c_attn.weight",
                  "blocks.1.attn.proj.weight": "h.1.attn.c_proj.weight",
                  "blocks.2.proj.weight": "h.2.c_proj.weight", "blocks.0.fc.bias": "h.0.c_fc.bias"}
    torch.manual_seed(0)
    twin = dict(TwinGPT2(c).named_parameters())
    ours, theirs = model[name], twin[twin_names[name]]
    assert ours.shape == theirs.shape
    assert ours.std().item() == pytest.approx(theirs.std().item(), rel=0.1, abs=1e-6)
    assert ours.mean().item() == pytest.approx(0.0, abs=3e-3)
