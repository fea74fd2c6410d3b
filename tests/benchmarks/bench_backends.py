"""Backends benchmark (issue 13): run by hand, never collected by pytest, never run in CI.

    .venv/bin/python tests/benchmarks/bench_backends.py              # on the CPU
    .venv/bin/python tests/benchmarks/bench_backends.py --device cuda --repeats 50
    .venv/bin/python tests/benchmarks/bench_backends.py --only overhead --repeats 100

It prints, in one run:

(a) for the character GPT and the CNN starters: eager, torch.compile and ONNX Runtime (and,
    on CUDA, eager and compiled bf16) latency and throughput at batch 1 and 64, as a
    benchmark run measures them (compute.engine.benchmark.run_benchmark), with each
    backend's ratio to eager;
(b) the overhead of a benchmark run's own machinery: run_benchmark's eager median against a
    bare timing loop of the same model on the same inputs in the same process (perf_counter
    around each forward pass, nothing else), in interleaved rounds so that machine noise
    falls on both alike (the median of the rounds' ratios); target <= 3%.

On a machine shared with other work, pass --threads 1: a thread pool wider than the free
cores makes every figure mostly noise.

and a results table at the end. The exit code is 0 whatever the timings (this is a report);
it is 1 only when something is invalid: a backend of (a) whose outputs are off beyond the
tolerance, or eager failing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from report import Invalid, Row, print_table

# Run as a script from anywhere: make the repository root importable.
ROOT = Path(__file__).resolve().parents[2]

STARTERS = ("char_gpt", "cnn")
BATCHES = [1, 64]
TARGET_OVERHEAD = 0.03


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds of (b), per starter and batch size")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: all)")
    parser.add_argument("--only", default="all", choices=["all", "backends", "overhead"])
    return parser.parse_args(argv)


def fmt(x: float | None, unit: str = "", digits: int = 3) -> str:
    if x is None:
        return "-"
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.{digits}g}{suffix}{unit}"
    return f"{x:.{digits}g}{unit}"


def bench_backends(args: argparse.Namespace, rows: list[Row]) -> None:
    from compute.engine import load_graph, load_starter
    from compute.engine.benchmark import BenchmarkSettings, run_benchmark

    backends = ["eager", "compile", "onnxruntime"]
    if args.device == "cuda":
        backends += ["eager_bf16", "compile_bf16"]
    table = []
    for name in STARTERS:
        graph = load_graph(load_starter(name))
        settings = BenchmarkSettings(batch_sizes=BATCHES, backends=backends, warmup=args.warmup,
                                     repeats=args.repeats, device=args.device, per_node=False)
        t0 = time.perf_counter()
        result = run_benchmark(graph, settings)
        print(f"{name}: benchmarked in {time.perf_counter() - t0:.1f} s")
        eager = {r["batch"]: r for r in result.rows if r["backend"] == "eager"}
        for r in result.rows:
            if r["backend"] == "eager" and r["error"]:
                raise Invalid(f"{name}: eager failed: {r['error']}")
            if r["error"]:
                table.append((name, r["backend"], r["batch"], "-", "-", "-", "-", "-", "-",
                              r["error"][:60]))
                continue
            if not r["within_tolerance"]:
                raise Invalid(f"{name}: {r['backend']} at batch {r['batch']} is off by "
                              f"{r['max_abs_diff']:.3g}")
            ratio = r["latency_ms_median"] / eager[r["batch"]]["latency_ms_median"]
            table.append((name, r["backend"], r["batch"], f"{r['latency_ms_median']:.3f}",
                          f"{r['latency_ms_p95']:.3f}", fmt(r["samples_per_s"]),
                          fmt(r["tokens_per_s"]), f"{ratio:.2f}", fmt(r["max_abs_diff"]),
                          ""))
            rows.append(Row(f"{name} {r['backend']} b{r['batch']} median",
                            f"{r['latency_ms_median']:.3f} ms", note=f"x{ratio:.2f} of eager"))
    head = ("model", "backend", "batch", "median ms", "p95 ms", "samples/s", "tokens/s",
            "vs eager", "max diff", "error")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    print("\n== backends ==")
    for line in (head, *table):
        print("  ".join(f"{x!s:<{w}}" for x, w in zip(line, widths, strict=True)).rstrip())


def bare_median(model: Any, inputs: tuple[Any, ...], device: Any, warmup: int,
                repeats: int) -> float:
    """The plainest timing loop there is: perf_counter around each forward pass."""
    import torch

    cuda = device.type == "cuda"
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(*inputs)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_overhead(args: argparse.Namespace, rows: list[Row]) -> None:
    import torch

    from compute.engine import compile_graph, example_inputs, load_graph, load_starter
    from compute.engine.benchmark import BenchmarkSettings, run_benchmark

    device = torch.device(args.device)
    print("\n== machinery overhead (run_benchmark eager median / bare loop median) ==")
    for name in STARTERS:
        graph = load_graph(load_starter(name))
        model = compile_graph(graph, seed=0, device=device).eval()
        for batch in BATCHES:
            inputs = example_inputs(graph, batch, seed=0, device=device)
            settings = BenchmarkSettings(batch_sizes=[batch], backends=["eager"],
                                         warmup=args.warmup, repeats=args.repeats,
                                         device=args.device, per_node=False)
            bare, machinery = [], []
            for i in range(args.rounds):  # alternate which goes first, against drift
                (row,) = run_benchmark(graph, settings).rows if i % 2 else [None]
                bare.append(bare_median(model, inputs, device, args.warmup, args.repeats))
                if row is None:
                    (row,) = run_benchmark(graph, settings).rows
                machinery.append(row["latency_ms_median"] / 1e3)
            b, m = statistics.median(bare), statistics.median(machinery)
            # Per round, the two ran back to back: the median of the rounds' ratios is
            # the figure least moved by a noisy machine.
            overhead = statistics.median(x / y for x, y in zip(machinery, bare, strict=True)) - 1
            print(f"{name:<9} batch {batch:>3}: bare {b * 1e3:8.3f} ms   run_benchmark "
                  f"{m * 1e3:8.3f} ms   overhead {overhead:+.1%}   (rounds: bare "
                  f"{' '.join(f'{x * 1e3:.3f}' for x in bare)}; run "
                  f"{' '.join(f'{x * 1e3:.3f}' for x in machinery)})")
            rows.append(Row(f"{name} b{batch} machinery overhead", f"{overhead:+.1%}",
                            f"<= {TARGET_OVERHEAD:.0%}", overhead <= TARGET_OVERHEAD))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda asked for, but torch sees no CUDA device", file=sys.stderr)
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(args.threads or cpus or 1)
    from compute.engine.benchmark import machine_info

    info = machine_info(args.device)
    print(f"{info['cpu']}, {info['cores']} cores, {torch.get_num_threads()} threads"
          + (f", {info['gpu']}" if info["gpu"] else "")
          + f"; torch {info['torch']}, onnxruntime {info['onnxruntime']}, "
          f"python {info['python']}; load average {os.getloadavg()[0]:.1f}; "
          f"warm-up {args.warmup}, repeats {args.repeats}")
    t_all = time.perf_counter()
    rows: list[Row] = []
    try:
        if args.only in ("all", "backends"):
            bench_backends(args, rows)
        if args.only in ("all", "overhead"):
            bench_overhead(args, rows)
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
