"""How long a run will take on a CPU, before it starts: from the model's forward FLOPs per
sample (the inspect report's `totals.flops`), the batch size and the steps.

A training step costs about three forward passes (the forward, and a backward of about
twice its work), plus the evaluations every `eval_interval` steps (`eval_batches` forward
passes each) and a fixed cost a step that dominates tiny models (the optimizer, the batch,
Python). The rates are measured, not guessed: tests/benchmarks/bench_estimate.py trains
each starter for a few dozen steps on the CPU and prints the ratio of this estimate to the
time taken. They were measured on 2 shared cores; a machine with more cores is faster, so
the estimate errs long there, which is the safe side for a warning.
"""

from __future__ import annotations

from .training import TrainConfig

# Sustained FLOPs a second of a training step on the CPU (float32, PyTorch's kernels).
CPU_FLOPS_PER_SECOND = 5e9
# The cost of a step that does not grow with the model, in seconds.
CPU_SECONDS_PER_STEP = 0.004
# Compiling, making the dataset and writing the exports: once a run, in seconds.
CPU_SECONDS_PER_RUN = 3.0


def cpu_seconds(flops_per_sample: int, config: TrainConfig) -> float:
    """The estimated seconds `config`'s run takes on a CPU for a model of
    `flops_per_sample` forward FLOPs per sample."""
    forward = flops_per_sample * config.batch_size
    evaluations = config.steps // config.eval_interval + 1
    work = 3 * forward * config.steps + forward * config.eval_batches * evaluations
    return (CPU_SECONDS_PER_RUN + config.steps * CPU_SECONDS_PER_STEP
            + work / CPU_FLOPS_PER_SECOND)
