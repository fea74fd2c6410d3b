"""Several devices (`gpus`, issue 18): run by hand, never collected by pytest.

    .venv/bin/python tests/benchmarks/bench_ddp.py                  # CPU: gloo, 2 processes
    .venv/bin/python tests/benchmarks/bench_ddp.py --device cuda    # every GPU there is
    .venv/bin/python tests/benchmarks/bench_ddp.py --device cuda --gpus 2 --steps 300

Trains the same starter with the same global batch on 1 device and on N, and prints, side
by side, the steps per second of each (timed from the second log interval on: the first
holds the processes' start and warm-up), the samples per second the run reported, and the
largest relative difference between the two loss curves (the tests' tolerance is 1e-5 on
the CPU; CUDA kernels are not bit-exact, so expect more there, and less agreement the
longer the run). The exit code is 0 whatever the timings; 1 when the N-device run fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # run as a script from anywhere
sys.path.insert(0, str(ROOT))

from compute.engine.reporting import SilentReporter  # noqa: E402 (after the path is set)


class Clock(SilentReporter):
    """A reporter that keeps each step's loss, the reported speed and when each log
    interval's metrics arrived."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}
        self.speed: list[float] = []
        self.arrived: list[tuple[int, float]] = []

    def on_metric(self, step: int, name: str, value: float) -> None:
        if name == "train_loss":
            self.losses[step] = value
            self.arrived.append((step, time.perf_counter()))
        elif name in ("samples_per_s", "tokens_per_s"):
            self.speed.append(value)

    def steps_per_s(self) -> float:
        (s0, t0), (s1, t1) = self.arrived[1], self.arrived[-1]
        return (s1 - s0) / max(t1 - t0, 1e-9)


def run(args: argparse.Namespace, gpus: int) -> Clock:
    from compute.engine import STARTER_DATASETS, compile_graph, load_starter
    from compute.engine.datasets import dataset_for
    from compute.engine.training import TrainConfig, train

    model = compile_graph(load_starter(args.starter), seed=0)
    data = dataset_for(model, STARTER_DATASETS[args.starter], seed=0)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, device=args.device,
                         gpus=gpus, log_interval=args.log_interval, eval_interval=args.steps,
                         attention_interval=0, sample_length=0, bf16=args.bf16)
    clock = Clock()
    train(model, data, config, clock)
    return clock


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--gpus", type=int, default=0,
                   help="devices of the second run (default: 2 on the CPU, every GPU)")
    p.add_argument("--starter", default="mlp", help="mlp (digits), char_gpt (shakespeare), …")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=0,
                   help="the global batch (default: 64 × devices)")
    p.add_argument("--log-interval", type=int, default=10)
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args(argv)
    import torch

    if not args.gpus:
        args.gpus = torch.cuda.device_count() if args.device == "cuda" else 2
    args.batch_size = args.batch_size or 64 * args.gpus
    print(f"{args.starter}, {args.steps} steps, global batch {args.batch_size}, "
          f"{args.device}{' bf16' if args.bf16 else ''}; torch {torch.__version__}")
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)} × {torch.cuda.device_count()}")
    one = run(args, 1)
    try:
        many = run(args, args.gpus)
    except Exception as exc:
        print(f"{args.gpus} devices: FAILED: {type(exc).__name__}: {exc}")
        return 1
    shared = sorted(one.losses.keys() & many.losses.keys())
    drift = max(abs(many.losses[s] - one.losses[s]) / max(abs(one.losses[s]), 1e-12)
                for s in shared)
    print(f"{'devices':>8} {'steps/s':>10} {'samples/s':>12} {'final loss':>11}")
    for n, clock in ((1, one), (args.gpus, many)):
        print(f"{n:>8} {clock.steps_per_s():>10.1f} {clock.speed[-1]:>12.0f} "
              f"{clock.losses[shared[-1]]:>11.5f}")
    print(f"speed-up {many.steps_per_s() / one.steps_per_s():.2f}×; largest relative loss "
          f"difference over {len(shared)} logged steps: {drift:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
