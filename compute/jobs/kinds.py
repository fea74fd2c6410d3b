"""The kinds of run this server takes, each with its settings model (docs/runs.md).

A kind's settings model is the one definition of its settings: submission validates with
it, GET /api/run-kinds serves its JSON Schema, and the editor renders its form from that.
Benchmark and FPGA runs will add theirs here."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from compute.engine.training import TrainConfig


def train_settings() -> type[TrainConfig]:
    """`TrainConfig` with at most SHIPYARD_MAX_STEPS steps (and intervals counted in steps),
    in validation and in its schema alike."""
    return _capped(settings.JOB_MAX_STEPS)


@functools.cache
def _capped(max_steps: int) -> type[TrainConfig]:
    return TrainConfig.capped(max_steps)


def run_kinds() -> list[dict[str, Any]]:
    """Each kind of run: `kind`, `title`, `description` and `settings_schema`."""
    return [train_settings().describe()]
