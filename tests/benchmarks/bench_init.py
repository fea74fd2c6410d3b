"""Initialization benchmark (issue 15): run by hand, never collected by pytest, never in CI.

    .venv/bin/python tests/benchmarks/bench_init.py                 # 3 seeds, 600 steps, CPU
    .venv/bin/python tests/benchmarks/bench_init.py --steps 2000 --seeds 5 --device cuda

Trains three models of the character GPT starter's architecture on its dataset (harbour),
each seed on the same batches, with exactly nanoGPT's recipe (its shakespeare_char config:
AdamW with betas (0.9, 0.99), weight decay 0.1 on matrices only, learning rate 1e-3 with a
linear warm-up of 100 steps then a cosine decay to 1e-4, gradients clipped at 1.0), and
prints each one's validation loss at the end:

- drawn, PyTorch's defaults: the starter without its Init node (what every drawn GPT got
  before the `init` choice existed: an Embedding starts at std 1);
- drawn, GPT-2's scheme: the starter as shipped (Init node, scheme gpt2);
- nanoGPT's twin: the hand-written nanoGPT-style model of bench_engine.py, started exactly as
  nanoGPT starts (N(0, 0.02²), biases 0, `c_proj` weights N(0, (0.02/√(2·layers))²)).

The target: the drawn GPT with GPT-2's scheme reaches the twin's validation loss (the mean
over seeds within the seeds' spread). The exit code is 0 whatever the losses (this is a
report); 1 only when the twin and the starter disagree on parameter count.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import make_twin, starter_config  # noqa: E402
from report import Invalid, Row, print_table  # noqa: E402

RECIPE = {"lr": 1e-3, "min_lr": 1e-4, "warmup": 100, "betas": (0.9, 0.99),
          "weight_decay": 0.1, "grad_clip": 1.0}


def nanogpt_twin(cfg: dict[str, Any]) -> Any:
    """bench_engine's twin plus the last step of nanoGPT's init: the residual projections."""
    import torch

    model = make_twin(cfg)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg["n_layer"]))
    return model


def lr_at(step: int, steps: int) -> float:
    if step < RECIPE["warmup"]:
        return RECIPE["lr"] * (step + 1) / RECIPE["warmup"]
    progress = (step - RECIPE["warmup"]) / max(1, steps - RECIPE["warmup"])
    return RECIPE["min_lr"] + 0.5 * (1 + math.cos(math.pi * progress)) * (
        RECIPE["lr"] - RECIPE["min_lr"])


def train(model: Any, data: Any, *, steps: int, batch: int, seed: int, device: Any) -> float:
    import torch
    import torch.nn.functional as F

    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": RECIPE["weight_decay"]},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=RECIPE["lr"], betas=RECIPE["betas"])
    gen = torch.Generator().manual_seed(seed)  # the same batches for every model of a seed
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps)
        index = torch.randint(0, len(data.x_train), (batch,), generator=gen)
        x, y = data.x_train[index].to(device), data.y_train[index].to(device)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["grad_clip"])
        opt.step()
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data.x_val), 256):
            x = data.x_val[start:start + 256].to(device)
            y = data.y_val[start:start + 256].to(device)
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    return total / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    import torch

    from compute.engine import compile_graph, load_starter
    from compute.engine.datasets import dataset_for

    torch.set_num_threads(max(1, torch.get_num_threads()))
    shipped = load_starter("char_gpt")
    plain = copy.deepcopy(shipped)
    plain["nodes"] = [n for n in plain["nodes"] if n["type"] != "Init"]
    plain["layout"] = {k: v for k, v in plain.get("layout", {}).items() if k != "init"}
    cfg = starter_config(shipped)
    data = dataset_for(shipped, "harbour")
    device = torch.device(args.device)
    print(f"recipe: nanoGPT shakespeare_char ({RECIPE}), {args.steps} steps of batch "
          f"{args.batch}, {args.seeds} seeds, on {device}; dataset harbour: "
          f"{len(data.x_train):,} training windows, {len(data.x_val):,} validation windows")

    losses: dict[str, list[float]] = {"drawn, PyTorch defaults": [], "drawn, GPT-2 scheme": [],
                                      "nanoGPT twin": []}
    for seed in range(args.seeds):
        models = {
            "drawn, PyTorch defaults": compile_graph(plain, seed=seed),
            "drawn, GPT-2 scheme": compile_graph(shipped, seed=seed),
        }
        torch.manual_seed(seed)
        models["nanoGPT twin"] = nanogpt_twin(cfg)
        counts = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
        if len(set(counts.values())) != 1:
            raise Invalid(f"parameter counts differ: {counts}")
        for label, model in models.items():
            loss = train(model, data, steps=args.steps, batch=args.batch, seed=seed,
                         device=device)
            losses[label].append(loss)
            print(f"seed {seed}  {label:<24} val loss {loss:.4f}", flush=True)

    rows = []
    twin = statistics.fmean(losses["nanoGPT twin"])
    for label, values in losses.items():
        mean = statistics.fmean(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(Row(f"val loss: {label}", f"{mean:.4f} ± {spread:.4f}",
                        f"{mean / twin:.3f} × twin"))
    print_table(rows)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Invalid as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        sys.exit(1)
