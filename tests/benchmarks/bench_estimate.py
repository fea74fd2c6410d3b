"""How good the CPU estimate of a run is (compute/engine/estimate.py, the `cpu_seconds` of
POST /api/jobs/check): run by hand, never collected by pytest.

    .venv/bin/python tests/benchmarks/bench_estimate.py             # 40 steps each
    .venv/bin/python tests/benchmarks/bench_estimate.py --steps 100

Trains each starter on its dataset on the CPU, with the default settings but `--steps`
steps (and a shorter text sample), as a worker would (`train_graph`: compile, dataset,
training, evaluations), and prints the estimate, the time taken and their ratio. A ratio
above 1 is an estimate that errs long. Exit code 0 whatever the numbers (a report).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compute.engine import STARTER_DATASETS, Limits, analyze, load_graph, load_starter
from compute.engine.estimate import cpu_seconds
from compute.engine.training import TrainConfig, train_graph


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    # A worker is warm after its first run: warm this process up likewise, untimed.
    train_graph(load_starter("mlp"), "digits", TrainConfig(steps=2, device="cpu"))
    print(f"{'starter':24} {'FLOPs/sample':>13} {'estimate s':>11} {'actual s':>9} "
          f"{'ratio':>6}")
    for name, dataset in STARTER_DATASETS.items():
        document = load_starter(name)
        flops = analyze(load_graph(document), Limits.from_env(), flops=True).flops or 0
        config = TrainConfig(steps=args.steps, device="cpu", sample_length=20)
        estimate = cpu_seconds(flops, config)
        began = time.perf_counter()
        train_graph(document, dataset, config)
        actual = time.perf_counter() - began
        print(f"{name:24} {flops:>13,} {estimate:>11.1f} {actual:>9.1f} "
              f"{estimate / actual:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
