"""SQL dialect benchmark (issue 16): run by hand, never collected by pytest, never in CI.

    .venv/bin/python tests/benchmarks/bench_sql.py [--repeat 30]

On a GPT-2-small-size graph (12 layers, width 768, 50 257 tokens, 1 024 positions: 124 M
parameters), measured side by side in one run:

- a SELECT on a model already open (its inspection remembered), and on one seen for the
  first time (the inspection included), against the 20 ms target;
- an UPDATE that changes the architecture (the Repeat's count, a new value each time, so no
  inspection is reused) and answers with the new inspection, against the 100 ms target and
  beside a plain `inspect_graph` of the same graph (the ratio is what SQL adds);
- `SELECT * FROM eval` on the char GPT starter after a short training run (loss and
  accuracy on its dataset's validation batches, now), against the 2 s target.

Prints medians and 90th percentiles; exit code 0 whatever the times (this is a report).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Row, percentile, print_table  # noqa: E402


def timed(fn: Callable[[int], object], repeat: int) -> list[float]:
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} ms (p90 {percentile(samples, 90):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-eval", action="store_true", help="skip the trained model")
    args = parser.parse_args()

    from compute.engine import inspect_graph
    from compute.engine.sql import core, run_sql
    from tests.engine.test_gpt2_twin import Config, gpt2_graph

    doc = gpt2_graph(Config(vocab=50257, dim=768, layers=12, heads=12, context=1024))
    inspect_graph(doc)  # warm torch up: the first inspection of a process pays for imports
    select = "SELECT id, type, params_count FROM nodes ORDER BY flops DESC LIMIT 5"
    run_sql(doc, select)

    warm = timed(lambda i: run_sql(doc, select), args.repeat)

    def cold(i: int) -> None:
        core._REPORTS.clear()
        run_sql(doc, select)

    cold_samples = timed(cold, args.repeat)

    def grow(i: int) -> None:
        result = run_sql(doc, "UPDATE nodes SET params = json_set(params, '$.times', "
                              f"{13 + i}) WHERE id = 'blocks'")
        assert result.change is not None and result.change["totals"]["params"] > 0

    update = timed(grow, args.repeat)
    plain = timed(lambda i: inspect_graph(doc), args.repeat)
    ratio = statistics.median(update) / statistics.median(plain)
    print(f"graph: {inspect_graph(doc)['totals']['params']:,} parameters")
    rows = [
        Row("SELECT, model open", summary(warm), "< 20 ms", statistics.median(warm) < 20),
        Row("SELECT, model seen first", summary(cold_samples), "< 20 ms",
            statistics.median(cold_samples) < 20),
        Row("UPDATE times + new inspection", summary(update), "< 100 ms",
            statistics.median(update) < 100),
        Row("plain inspect_graph, same graph", summary(plain)),
        Row("UPDATE / plain inspection", f"{ratio:.2f}x"),
    ]
    rows += [] if args.no_eval else eval_rows(args.repeat)
    print_table(rows)
    return 0


def eval_rows(repeat: int) -> list[Row]:
    """`eval` on the char GPT starter trained for a few steps on its dataset."""
    import tempfile

    from safetensors.torch import load_file

    from compute.engine import STARTER_DATASETS, load_starter
    from compute.engine.sql import TrainedModel, run_sql
    from compute.engine.training import TrainConfig, train_graph

    doc = load_starter("char_gpt")
    dataset = STARTER_DATASETS["char_gpt"]
    config = TrainConfig(steps=20, seed=0)
    with tempfile.TemporaryDirectory() as out:
        train_graph(doc, dataset, config, out_dir=Path(out))
        state = load_file(str(Path(out) / "model.safetensors"))
    trained = TrainedModel(state=state, dataset=dataset, config=config.model_dump())
    run_sql(doc, "SELECT * FROM eval", trained=trained)  # warm
    samples = timed(lambda i: run_sql(doc, "SELECT loss, accuracy FROM eval", trained=trained),
                    max(3, repeat // 6))
    return [Row("eval, char GPT (CPU)", summary(samples), "< 2000 ms",
                statistics.median(samples) < 2000)]


if __name__ == "__main__":
    sys.exit(main())
