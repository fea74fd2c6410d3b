"""How long a run will take on a CPU, before it starts: from the model's forward FLOPs per
sample (the inspect report's `totals.flops`), the batch size and the steps.

A training step costs about three forward passes (the forward, and a backward of about
twice its work), plus the evaluations every `eval_interval` steps (`eval_batches` forward
passes each) and a fixed cost a step that dominates tiny models (the optimizer, the batch,
Python). The rates are measured, not guessed: tests/benchmarks/bench_estimate.py trains
each starter for a few dozen steps on the CPU and prints the ratio of this estimate to the
time taken. Measured on 2 cores shared with other work, the estimate for char_gpt (the
starter that takes minutes) was 0.5x to 3x the time taken, as the load on the cores varied;
the small starters take seconds whatever the estimate says, start-up and noise dominating.
A machine with more cores is faster, so the estimate errs long there: the safe side for a
warning.
"""

from __future__ import annotations

from .training import TrainConfig

# Sustained FLOPs a second of a training step on the CPU (float32, PyTorch's kernels).
CPU_FLOPS_PER_SECOND = 1e10
# The cost of a step that does not grow with the model, in seconds.
CPU_SECONDS_PER_STEP = 0.004
# Compiling and making the dataset, in a warm worker: once a run, in seconds.
CPU_SECONDS_PER_RUN = 1.0


def cpu_seconds(flops_per_sample: int, config: TrainConfig) -> float:
    """The estimated seconds `config`'s run takes on a CPU for a model of
    `flops_per_sample` forward FLOPs per sample."""
    forward = flops_per_sample * config.batch_size
    evaluations = config.steps // config.eval_interval + 1
    work = 3 * forward * config.steps + forward * config.eval_batches * evaluations
    return (CPU_SECONDS_PER_RUN + config.steps * CPU_SECONDS_PER_STEP
            + work / CPU_FLOPS_PER_SECOND)
