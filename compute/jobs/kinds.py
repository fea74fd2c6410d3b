"""The kinds of run this server takes, each with its settings model (docs/runs.md).

A kind's settings model is the one definition of its settings: submission validates with
it (`settings_for`), GET /api/run-kinds serves its JSON Schema, and the editor renders its
form from that."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from compute.engine.benchmark import BenchmarkSettings
from compute.engine.settings import RunSettings
from compute.engine.training import TrainConfig
from fpga.settings import FpgaSettings

TRAIN = "train"
BENCHMARK = "benchmark"
FPGA = "fpga"
KINDS = (TRAIN, BENCHMARK, FPGA)  # in the order GET /api/run-kinds lists them


def train_settings() -> type[TrainConfig]:
    """`TrainConfig` with at most SHIPYARD_MAX_STEPS steps (and intervals counted in steps),
    in validation and in its schema alike."""
    return _capped(settings.JOB_MAX_STEPS)


@functools.cache
def _capped(max_steps: int) -> type[TrainConfig]:
    return TrainConfig.capped(max_steps)


def settings_for(kind: str) -> type[RunSettings]:
    """The settings model of a kind of run (one of KINDS), as this server validates it."""
    if kind == TRAIN:
        return train_settings()
    if kind == BENCHMARK:
        return BenchmarkSettings
    if kind == FPGA:
        return FpgaSettings
    raise ValueError(f"no kind of run {kind!r}; kinds: {', '.join(KINDS)}")


def run_kinds() -> list[dict[str, Any]]:
    """Each kind of run: `kind`, `title`, `description` and `settings_schema`."""
    return [settings_for(kind).describe() for kind in KINDS]
