"""Engine benchmark (issue 2): run by hand, never collected by pytest, never run in CI.

    .venv/bin/python tests/benchmarks/bench_engine.py              # everything, on the CPU
    .venv/bin/python tests/benchmarks/bench_engine.py --device cuda
    .venv/bin/python tests/benchmarks/bench_engine.py --only inspect --profile

It prints, in one run:

(a) the training-step time of the compiled character GPT starter against a hand-written
    nanoGPT-style twin with the same architecture, sizes read from the starter, timed in
    interleaved rounds so that machine noise falls on both alike; target ratio <= 1.02
    (`--model llama`: the Llama-style starter against a hand-written Llama instead);
(b) warm `inspect_graph` time for a GPT-2-small-sized graph (12 layers, width 768,
    vocabulary 50304, context 1024): target < 50 ms without FLOPs, < 250 ms with them;
(c) warm `inspect_graph` time (with FLOPs) for a graph of about 2000 nodes: target < 1 s,
    plus `load_graph` and `compile_graph` times for it, for information.

and a results table at the end. The exit code is 0 whatever the timings (this is a report);
it is 1 only when something is invalid: a generated graph that does not validate, or a twin
whose parameter count differs from the compiled model's. `--profile` adds cProfile listings
(top functions by cumulative time) of the inspect paths.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import Invalid, Row, print_table

# Run as a script from anywhere: make the repository root importable.
ROOT = Path(__file__).resolve().parents[2]

FORMAT = "shipyard.graph/v1"
TARGET_STEP_RATIO = 1.02
TARGET_GPT2_SHAPES_S = 0.050
TARGET_GPT2_FLOPS_S = 0.250
TARGET_2000_S = 1.0


# ---------------------------------------------------------------------------------------
# Timing helpers


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], reps: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `reps` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def human(n: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g}"


# ---------------------------------------------------------------------------------------
# (a) compiled char GPT vs a nanoGPT-style twin


def starter_config(doc: dict[str, Any]) -> dict[str, Any]:
    """The char GPT's sizes, read from its graph document (so the twin follows the starter)."""
    top = {n["id"]: n for n in doc["nodes"]}
    blocks = next(n for n in doc["nodes"] if n["type"] == "Repeat")
    body = {n["id"]: n for n in blocks["graph"]["nodes"]}
    by_type = {n["type"]: n for n in blocks["graph"]["nodes"]}
    emb = next(n for n in doc["nodes"] if n["type"] == "Embedding")
    pos = next(n for n in doc["nodes"] if n["type"] == "PositionalEmbedding")
    tokens = next(n for n in doc["nodes"] if n["type"] == "Input")
    attn = by_type["MultiHeadAttention"]["params"]
    top_linears = [n for n in doc["nodes"] if n["type"] == "Linear"]
    body_linears = [n for n in blocks["graph"]["nodes"] if n["type"] == "Linear"]
    body_dropouts = [n for n in blocks["graph"]["nodes"] if n["type"] == "Dropout"]
    top_dropouts = [n for n in doc["nodes"] if n["type"] == "Dropout"]
    gelu = by_type.get("GELU", {}).get("params", {})
    cfg = {
        "vocab_size": emb["params"]["num_embeddings"],
        "n_embd": emb["params"]["embedding_dim"],
        "block_size": pos["params"]["max_len"],
        "seq_len": tokens["params"]["shape"][0],
        "n_layer": blocks["params"]["times"],
        "n_head": attn["num_heads"],
        "causal": attn.get("causal", False),
        "attn_dropout": attn.get("dropout", 0.0),
        "attn_bias": attn.get("bias", True),
        "n_hidden": body_linears[0]["params"]["out_features"],
        "mlp_bias": body_linears[0]["params"].get("bias", True),
        "resid_dropout": body_dropouts[0]["params"]["p"] if body_dropouts else 0.0,
        "embd_dropout": top_dropouts[0]["params"]["p"] if top_dropouts else 0.0,
        "head_out": top_linears[-1]["params"]["out_features"],
        "head_bias": top_linears[-1]["params"].get("bias", True),
        "gelu_approximate": gelu.get("approximate", "none"),
    }
    # The twin below hard-codes the starter's topology; fail loudly if the starter drifts.
    expected_body = {"x", "ln1", "attn", "res1", "ln2", "fc", "gelu", "proj", "drop", "res2", "y"}
    if set(body) != expected_body or not {"wte", "wpe", "drop", "ln_f", "head"} <= set(top):
        raise Invalid(f"char_gpt starter changed shape: body {sorted(body)}, top {sorted(top)}; "
                      "update the twin in tests/benchmarks/bench_engine.py")
    if len(top_dropouts) != 1 or len(body_dropouts) != 1 or len(body_linears) != 2:
        raise Invalid("char_gpt starter changed its dropout/linear layout; update the twin")
    return cfg


def make_twin(cfg: dict[str, Any]) -> Any:
    """A nanoGPT-style GPT with the starter's exact architecture.

    Differences from nanoGPT are the starter's: no dropout after the attention projection
    (the starter has none there; attention dropout is inside SDPA), and the head is not tied
    to the token embedding.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    class CausalSelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            assert cfg["n_embd"] % cfg["n_head"] == 0
            self.c_attn = nn.Linear(cfg["n_embd"], 3 * cfg["n_embd"], bias=cfg["attn_bias"])
            self.c_proj = nn.Linear(cfg["n_embd"], cfg["n_embd"], bias=cfg["attn_bias"])
            self.n_head = cfg["n_head"]
            self.n_embd = cfg["n_embd"]
            self.dropout = cfg["attn_dropout"]
            self.causal = cfg["causal"]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0,
                is_causal=self.causal)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_fc = nn.Linear(cfg["n_embd"], cfg["n_hidden"], bias=cfg["mlp_bias"])
            self.gelu = nn.GELU(approximate=cfg["gelu_approximate"])
            self.c_proj = nn.Linear(cfg["n_hidden"], cfg["n_embd"], bias=cfg["mlp_bias"])
            self.dropout = nn.Dropout(cfg["resid_dropout"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(cfg["n_embd"])
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(cfg["n_embd"])
            self.mlp = MLP()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlp(self.ln_2(x))
            return x

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(cfg["vocab_size"], cfg["n_embd"]),
                wpe=nn.Embedding(cfg["block_size"], cfg["n_embd"]),
                drop=nn.Dropout(cfg["embd_dropout"]),
                h=nn.ModuleList([Block() for _ in range(cfg["n_layer"])]),
                ln_f=nn.LayerNorm(cfg["n_embd"]),
            ))
            self.lm_head = nn.Linear(cfg["n_embd"], cfg["head_out"], bias=cfg["head_bias"])
            self.apply(self._init_weights)

        def _init_weights(self, module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            _, t = idx.size()
            pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
            tok_emb = self.transformer.wte(idx)
            pos_emb = self.transformer.wpe(pos)
            x = self.transformer.drop(tok_emb + pos_emb)
            for block in self.transformer.h:
                x = block(x)
            x = self.transformer.ln_f(x)
            return self.lm_head(x)

    return GPT()


def llama_pair() -> tuple[Any, Any, dict[str, Any]]:
    """The compiled Llama-style starter and a hand-written Llama of the same sizes: the twin
    of tests/engine/test_llama_twin.py (which checks it computes what the starter computes),
    its attention on F.scaled_dot_product_attention as a fast hand-written Llama has it."""
    import torch
    import torch.nn.functional as F

    from compute.engine import compile_graph, load_starter
    from tests.engine.test_llama_twin import STARTER, TwinAttention, TwinLlama, rotate_half

    class FastAttention(TwinAttention):
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
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.wo(y.transpose(1, 2).reshape(b, t, -1))

    compiled = compile_graph(load_starter("llama"), seed=0)
    torch.manual_seed(0)
    twin = TwinLlama(STARTER)
    for layer in twin.layers:
        layer.attention.__class__ = FastAttention
    cfg = {"vocab_size": STARTER.vocab, "head_out": STARTER.vocab, "seq_len": STARTER.seq,
           "block_size": STARTER.seq, **{k: getattr(STARTER, k) for k in (
               "dim", "layers", "heads", "kv_heads", "hidden")}}
    return compiled, twin, cfg


def bench_training(args: argparse.Namespace, rows: list[Row]) -> None:
    import torch
    import torch.nn.functional as F

    from compute.engine import compile_graph, load_starter

    device = torch.device(args.device)
    if args.model == "llama":
        compiled, twin, cfg = llama_pair()
        label = "Llama-style starter vs its hand-written twin"
    else:
        doc = load_starter("char_gpt")
        cfg = starter_config(doc)
        compiled = compile_graph(load_starter("char_gpt"), seed=0)
        torch.manual_seed(0)
        twin = make_twin(cfg)
        label = "char GPT vs nanoGPT-style twin"
    compiled, twin = compiled.to(device), twin.to(device)
    n_compiled = sum(p.numel() for p in compiled.parameters())
    n_twin = sum(p.numel() for p in twin.parameters())
    shapes_c = sorted(tuple(p.shape) for p in compiled.parameters())
    shapes_t = sorted(tuple(p.shape) for p in twin.parameters())
    print(f"\n== (a) training step: compiled {label} ({device}) ==")
    print(f"config from starter: {cfg}")
    print(f"parameters: compiled {n_compiled:,}  twin {n_twin:,}")
    # The Llama twin keeps Meta's separate wq, wk, wv where the block fuses them: counts only.
    if n_compiled != n_twin or (args.model == "gpt" and shapes_c != shapes_t):
        raise Invalid(f"twin differs from the compiled model: {n_twin:,} vs {n_compiled:,} "
                      "parameters (or different parameter shapes)")
    rows.append(Row(f"{args.model} parameters (compiled = twin)", f"{n_compiled:,}"))

    gen = torch.Generator().manual_seed(1)
    seq = min(args.seq or cfg["seq_len"], cfg["block_size"])
    x = torch.randint(0, cfg["vocab_size"], (args.batch, seq), generator=gen).to(device)
    y = torch.randint(0, cfg["head_out"], (args.batch, seq), generator=gen).to(device)

    def make_step(model: Any) -> Callable[[], float]:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

        def step() -> float:
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return 0.0

        return step

    steps = {"compiled": make_step(compiled), "twin": make_step(twin)}
    # Warm-up: allocator, kernels, AdamW state.
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    _sync(device)

    times: dict[str, list[float]] = {"compiled": [], "twin": []}
    round_ratios: list[float] = []
    t_start = time.perf_counter()
    for r in range(args.rounds):
        order = ("compiled", "twin") if r % 2 == 0 else ("twin", "compiled")  # ABBA...
        per_round: dict[str, list[float]] = {}
        for name in order:
            step = steps[name]
            got = per_round.setdefault(name, [])
            for _ in range(args.steps):
                _sync(device)
                t0 = time.perf_counter()
                step()
                _sync(device)
                got.append(time.perf_counter() - t0)
            times[name].extend(got)
        round_ratios.append(statistics.median(per_round["compiled"])
                            / statistics.median(per_round["twin"]))
    elapsed = time.perf_counter() - t_start

    med_c = statistics.median(times["compiled"])
    med_t = statistics.median(times["twin"])
    ratio = med_c / med_t
    paired = statistics.median(round_ratios)
    print(f"batch {args.batch}x{seq}, {args.rounds} rounds x {args.steps} steps per model, "
          f"{args.warmup} warm-up steps, timed part {elapsed:.1f} s")
    for name in ("compiled", "twin"):
        t = times[name]
        print(f"  {name:9s} median {ms(statistics.median(t))}  min {ms(min(t))}  "
              f"p90 {ms(sorted(t)[int(0.9 * (len(t) - 1))])}")
    print(f"  ratio compiled/twin: {ratio:.3f} (medians), {paired:.3f} (median of per-round "
          f"ratios; rounds range {min(round_ratios):.3f}..{max(round_ratios):.3f}); "
          f"target <= {TARGET_STEP_RATIO}")
    rows.append(Row(f"train step compiled ({device.type}, {args.batch}x{seq})", ms(med_c)))
    rows.append(Row(f"train step twin ({device.type}, {args.batch}x{seq})", ms(med_t)))
    rows.append(Row("train step ratio compiled/twin", f"{ratio:.3f} (paired {paired:.3f})",
                    f"<= {TARGET_STEP_RATIO}", ratio <= TARGET_STEP_RATIO))


# ---------------------------------------------------------------------------------------
# Graph generators


def gpt_doc(*, vocab: int, width: int, layers: int, heads: int, context: int,
            dropout: float = 0.1, name: str = "gpt2-small") -> dict[str, Any]:
    """A GPT graph document: the char GPT starter's topology at other sizes."""
    body_nodes = [
        {"id": "x", "type": "Input"},
        {"id": "ln1", "type": "LayerNorm"},
        {"id": "attn", "type": "MultiHeadAttention",
         "params": {"num_heads": heads, "causal": True, "dropout": dropout}},
        {"id": "res1", "type": "Add"},
        {"id": "ln2", "type": "LayerNorm"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 4 * width}},
        {"id": "gelu", "type": "GELU"},
        {"id": "proj", "type": "Linear", "params": {"out_features": width}},
        {"id": "drop", "type": "Dropout", "params": {"p": dropout}},
        {"id": "res2", "type": "Add"},
        {"id": "y", "type": "Output"},
    ]
    body_edges = [
        ("x", "ln1"), ("ln1", "attn"), ("x", "res1.a"), ("attn", "res1.b"), ("res1", "ln2"),
        ("ln2", "fc"), ("fc", "gelu"), ("gelu", "proj"), ("proj", "drop"), ("res1", "res2.a"),
        ("drop", "res2.b"), ("res2", "y"),
    ]
    nodes = [
        {"id": "tokens", "type": "Input", "params": {"shape": [context], "dtype": "int64"}},
        {"id": "wte", "type": "Embedding",
         "params": {"num_embeddings": vocab, "embedding_dim": width}},
        {"id": "wpe", "type": "PositionalEmbedding", "params": {"max_len": context}},
        {"id": "drop", "type": "Dropout", "params": {"p": dropout}},
        {"id": "blocks", "type": "Repeat", "params": {"times": layers},
         "graph": {"nodes": body_nodes,
                   "edges": [{"from": a, "to": b} for a, b in body_edges],
                   "layout": {n["id"]: [220 * i, 0] for i, n in enumerate(body_nodes)}}},
        {"id": "ln_f", "type": "LayerNorm"},
        {"id": "head", "type": "Linear", "params": {"out_features": vocab, "bias": False}},
        {"id": "logits", "type": "Output"},
    ]
    edges = [("tokens", "wte"), ("wte", "wpe"), ("wpe", "drop"), ("drop", "blocks"),
             ("blocks", "ln_f"), ("ln_f", "head"), ("head", "logits")]
    return {
        "format": FORMAT,
        "name": name,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in edges],
        "layout": {n["id"]: [220 * i, 0] for i, n in enumerate(nodes)},
    }


def gpt_expected(*, vocab: int, width: int, layers: int, heads: int,
                 context: int) -> tuple[int, int]:
    """Parameters, and forward FLOPs for one sample (matmuls only, 2·m·n·k, attention
    counted in full as FlopCounterMode does), worked out by hand."""
    d, t = width, context
    block = (2 * d) + (4 * d * d + 4 * d) + (2 * d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    params = vocab * d + t * d + layers * block + 2 * d + d * vocab
    per_layer = 2 * t * (d * 3 * d + d * d + d * 4 * d + 4 * d * d) + 2 * 2 * t * t * d
    flops = layers * per_layer + 2 * t * d * vocab
    return params, flops


def big_doc(total: int, *, width: int = 32, distinct: bool = False,
            name: str = "chain-2000") -> dict[str, Any]:
    """A long residual chain of pre-norm MLP units, 5 nodes each:
    ln → fc (hidden width varies) → act (ReLU/GELU/SiLU) → proj → add(prev, proj).

    Hidden widths cycle over 16 sizes (so repeated layers share measurements, as a user's
    real stacks would), or are all different with `distinct` (no two layers alike).
    Around them: Input, a stem Linear, Dropouts to make up the count, a head Linear, Output.
    """
    units = max(1, (total - 4) // 5)
    acts = ("ReLU", "GELU", "SiLU")
    nodes: list[dict[str, Any]] = [
        {"id": "x", "type": "Input", "params": {"shape": [width]}},
        {"id": "stem", "type": "Linear", "params": {"out_features": width}},
    ]
    edges: list[tuple[str, str]] = [("x", "stem")]
    prev = "stem"
    for i in range(units):
        hidden = width + (i if distinct else 8 * (i % 16))
        ln, fc, act, proj, add = (f"ln{i}", f"fc{i}", f"act{i}", f"proj{i}", f"add{i}")
        nodes += [
            {"id": ln, "type": "LayerNorm"},
            {"id": fc, "type": "Linear", "params": {"out_features": hidden}},
            {"id": act, "type": acts[i % len(acts)]},
            {"id": proj, "type": "Linear", "params": {"out_features": width}},
            {"id": add, "type": "Add"},
        ]
        edges += [(prev, ln), (ln, fc), (fc, act), (act, proj), (prev, f"{add}.a"),
                  (proj, f"{add}.b")]
        prev = add
    for i in range(max(0, total - 4 - 5 * units)):
        nodes.append({"id": f"pad{i}", "type": "Dropout", "params": {"p": 0.1}})
        edges.append((prev, f"pad{i}"))
        prev = f"pad{i}"
    nodes += [{"id": "head", "type": "Linear", "params": {"out_features": 10}},
              {"id": "y", "type": "Output"}]
    edges += [(prev, "head"), ("head", "y")]
    return {
        "format": FORMAT,
        "name": name,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in edges],
        "layout": {n["id"]: [220 * (k % 50), 160 * (k // 50)] for k, n in enumerate(nodes)},
    }


def count_nodes(doc: dict[str, Any]) -> int:
    return sum(1 + (count_nodes(n["graph"]) if "graph" in n else 0) for n in doc["nodes"])


def check_valid(doc: dict[str, Any], label: str) -> dict[str, Any]:
    from compute.engine import inspect_graph

    report = inspect_graph(copy.deepcopy(doc), flops=False)
    if not report["valid"]:
        raise Invalid(f"{label} is not a valid graph: {report['problems'][:5]}")
    return report


# ---------------------------------------------------------------------------------------
# (b) GPT-2-small inspect, (c) 2000-node graph


GPT2 = {"vocab": 50304, "width": 768, "layers": 12, "heads": 12, "context": 1024}


def bench_gpt2(args: argparse.Namespace, rows: list[Row]) -> dict[str, Any]:
    from compute.engine import inspect_graph, load_graph

    doc = gpt_doc(**GPT2)
    print(f"\n== (b) inspect_graph, GPT-2-small-sized graph ({count_nodes(doc)} nodes drawn, "
          f"{GPT2}) ==")
    check_valid(doc, "the GPT-2-small graph")
    exp_params, exp_flops = gpt_expected(**GPT2)
    res: dict[str, Any] = {}
    for flops, target in ((False, TARGET_GPT2_SHAPES_S), (True, TARGET_GPT2_FLOPS_S)):
        report: dict[str, Any] = {}

        def run(flops: bool = flops, report: dict[str, Any] = report) -> None:
            report.update(inspect_graph(doc, flops=flops))

        t = time_calls(run, args.reps, warmup=2)
        med = statistics.median(t)
        what = "with FLOPs" if flops else "shapes+params"
        print(f"  inspect_graph(flops={flops}): median {ms(med)}  min {ms(min(t))}  "
              f"max {ms(max(t))}  ({args.reps} reps); target < {ms(target)}")
        rows.append(Row(f"GPT-2-small inspect, {what} (median / min)",
                        f"{ms(med)} / {ms(min(t))}", f"< {ms(target)}", med < target))
        res[what] = report
    totals = res["with FLOPs"]["totals"]
    params, flops_total = totals["params"], totals["flops"]
    print(f"  parameters {params:,} ({human(params)}); expected by hand {exp_params:,}: "
          f"{'match' if params == exp_params else 'MISMATCH'}. GPT-2 small's 124 M ties the "
          f"head to wte; this graph does not, so + {50304 * 768:,} for the head")
    print(f"  forward FLOPs, one sample of 1024 tokens: {flops_total:,} ({human(flops_total)}); "
          f"matmul estimate by hand {exp_flops:,} ({human(exp_flops)})")
    if params != exp_params:
        raise Invalid(f"GPT-2-small parameters {params:,} != {exp_params:,} worked out by hand")
    rows.append(Row("GPT-2-small parameters", f"{params:,}", f"= {exp_params:,}", True))
    rows.append(Row("GPT-2-small forward FLOPs (1 x 1024 tokens)",
                    f"{human(flops_total)}FLOP", f"~{human(exp_flops)}FLOP"))
    t = time_calls(lambda: load_graph(copy.deepcopy(doc)), max(3, args.reps // 3), warmup=1)
    print(f"  load_graph (parse + validate + meta analysis, no FLOPs): median "
          f"{ms(statistics.median(t))}")
    rows.append(Row("GPT-2-small load_graph (info)", ms(statistics.median(t))))
    return doc


def bench_big(args: argparse.Namespace, rows: list[Row]) -> list[tuple[str, dict[str, Any]]]:
    import torch

    from compute.engine import compile_graph, example_inputs, inspect_graph, load_graph

    units = max(1, (args.nodes - 4) // 5)
    docs = []
    for distinct in (False, True):
        label = "all layers distinct" if distinct else "16 hidden widths"
        doc = big_doc(args.nodes, distinct=distinct)
        n = count_nodes(doc)
        print(f"\n== (c) {n}-node graph: residual chain of {units} pre-norm MLP units, {label} ==")
        check_valid(doc, f"the {n}-node graph ({label})")
        t = time_calls(lambda doc=doc: inspect_graph(doc, flops=True), args.big_reps, warmup=1)
        med = statistics.median(t)
        print(f"  inspect_graph(flops=True): median {ms(med)}  min {ms(min(t))}  "
              f"({args.big_reps} reps); target < {ms(TARGET_2000_S)}")
        rows.append(Row(f"{n}-node inspect with FLOPs, {label} (median / min)",
                        f"{ms(med)} / {ms(min(t))}", f"< {ms(TARGET_2000_S)}",
                        med < TARGET_2000_S))
        t = time_calls(lambda doc=doc: inspect_graph(doc, flops=False), args.big_reps, warmup=0)
        print(f"  inspect_graph(flops=False): median {ms(statistics.median(t))}")
        rows.append(Row(f"{n}-node inspect no FLOPs, {label} (info)", ms(statistics.median(t))))
        docs.append((label, doc))
        if distinct:
            continue
        t = time_calls(lambda doc=doc: load_graph(copy.deepcopy(doc)), args.big_reps, warmup=0)
        print(f"  load_graph: median {ms(statistics.median(t))}")
        rows.append(Row(f"{n}-node load_graph (info)", ms(statistics.median(t))))
        graph = load_graph(copy.deepcopy(doc))
        t = time_calls(lambda graph=graph: compile_graph(graph, seed=0), args.big_reps,
                       warmup=0)
        print(f"  compile_graph (from a loaded Graph): median {ms(statistics.median(t))}")
        rows.append(Row(f"{n}-node compile_graph (info)", ms(statistics.median(t))))
        model = compile_graph(graph, seed=0)
        (xin,) = example_inputs(graph, batch=2)
        with torch.no_grad():
            out = model(xin)
        print(f"  compiled model runs: output {tuple(out.shape)}")
    return docs


# ---------------------------------------------------------------------------------------
# Profiles


def profile(label: str, fn: Callable[[], Any], top: int) -> None:
    fn()  # warm
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    print(f"\n-- profile: {label} (one warm call, {ms(wall)} under cProfile) --")
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print("\n".join(lines[start:]))
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(top // 2)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print(f"-- same, by own time (top {top // 2}) --")
    print("\n".join(lines[start:]))


def run_profiles(gpt2: dict[str, Any], big: list[tuple[str, dict[str, Any]]], top: int) -> None:
    from compute.engine import inspect_graph

    print("\n== profiles (cProfile, sorted by cumulative time) ==")
    profile("GPT-2-small inspect_graph(flops=False)",
            lambda: inspect_graph(gpt2, flops=False), top)
    profile("GPT-2-small inspect_graph(flops=True)", lambda: inspect_graph(gpt2, flops=True), top)
    for label, doc in big:
        profile(f"{count_nodes(doc)}-node inspect_graph(flops=True), {label}",
                lambda doc=doc: inspect_graph(doc, flops=True), top)


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: the CPUs this process may use)")
    p.add_argument("--only", choices=("all", "train", "inspect"), default="all")
    p.add_argument("--model", choices=("gpt", "llama"), default="gpt",
                   help="the starter whose training step is timed against its twin")
    p.add_argument("--batch", type=int, default=32, help="training batch (default 32)")
    p.add_argument("--seq", type=int, default=0, help="sequence length (default: the starter's)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model per round")
    p.add_argument("--rounds", type=int, default=8, help="alternating rounds (ABBA...)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up steps per model")
    p.add_argument("--reps", type=int, default=15, help="GPT-2-small inspect repetitions")
    p.add_argument("--nodes", type=int, default=2000, help="size of the big graph")
    p.add_argument("--big-reps", type=int, default=5, help="big-graph repetitions")
    p.add_argument("--freeze-gc", action="store_true",
                   help="gc.freeze() after imports, as a long-lived worker may: without it every "
                        "other 2000-node inspect pays a full collection over torch's objects")
    p.add_argument("--profile", action="store_true", help="cProfile the inspect paths")
    p.add_argument("--top", type=int, default=30, help="profile lines to print")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda asked for, but torch sees no CUDA device", file=sys.stderr)
        return 1
    import compute.engine  # noqa: F401  (import cost stays out of every figure)

    if args.freeze_gc:
        gc.collect()
        gc.freeze()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(args.threads or cpus or 1)
    t_all = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpus} CPUs, "
          f"python {sys.version.split()[0]}{', gc frozen' if args.freeze_gc else ''}"
          + (f", {torch.cuda.get_device_name(args.device)}"
             if args.device.startswith("cuda") else ""))
    rows: list[Row] = []
    try:
        if args.only in ("all", "train"):
            bench_training(args, rows)
        if args.only in ("all", "inspect"):
            gpt2 = bench_gpt2(args, rows)
            big = bench_big(args, rows)
            if args.profile:
                run_profiles(gpt2, big, args.top)
    except Invalid as exc:
        if rows:
            print_table(rows)
        print(f"\nINVALID: {exc}", file=sys.stderr)
        return 1
    print_table(rows)
    print(f"\ntotal run time {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
