"""Where a training run's progress goes: the `Reporter` protocol, and `SilentReporter`, which
hears nothing (the base of every real reporter, and what a run's other processes use when
it trains on several devices)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Reporter(Protocol):
    """Where a run's progress goes; subclass `SilentReporter` and override what you need.

    `step` is the number of optimizer steps done when the report is made. `on_attention`
    gets one attention module's weights on a fixed validation example, per head:
    `maps[head][query][key]`, at most 64×64 (longer sequences are pooled, rows still sum
    to 1), and `tokens`, the example's tokens, one label per position (see
    `example_tokens`), when the map's positions are the example's. `on_sample` gets text
    a character model wrote. `should_stop` is asked before every step; returning True ends
    the run after the step in progress (with a checkpoint, when checkpoints are kept).
    """

    def on_metric(self, step: int, name: str, value: float) -> None: ...
    def on_attention(self, step: int, node: str, maps: list[list[list[float]]],
                     tokens: list[str] | None = None) -> None: ...
    def on_sample(self, step: int, text: str) -> None: ...
    def on_checkpoint(self, step: int, path: Path) -> None: ...
    def should_stop(self) -> bool: ...


class SilentReporter:
    """A reporter that hears nothing and never stops a run."""

    def on_metric(self, step: int, name: str, value: float) -> None:
        pass

    def on_attention(self, step: int, node: str, maps: list[list[list[float]]],
                     tokens: list[str] | None = None) -> None:
        pass

    def on_sample(self, step: int, text: str) -> None:
        pass

    def on_checkpoint(self, step: int, path: Path) -> None:
        pass

    def should_stop(self) -> bool:
        return False
