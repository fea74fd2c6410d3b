"""Placeholder until the weight tables land (tensors, heads, eval)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..build import CheckedGraph


@dataclass
class TrainedModel:
    state: dict[str, torch.Tensor]
    frozen: frozenset[str] = frozenset()
    dataset: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


class WeightTables:
    TABLES: ClassVar[tuple[str, ...]] = ("tensors", "heads", "eval")
    WRITABLE: ClassVar[dict[str, frozenset[str]]] = {
        "tensors": frozenset({"frozen", "scale", "reinit"})}

    def __init__(self, graph: CheckedGraph, trained: TrainedModel) -> None:
        raise NotImplementedError

    def create(self, conn: sqlite3.Connection) -> None:
        raise NotImplementedError

    def fill(self, conn: sqlite3.Connection, table: str) -> None:
        raise NotImplementedError

    def apply(self, conn: sqlite3.Connection, new_graph: CheckedGraph | None
              ) -> tuple[dict[str, torch.Tensor], frozenset[str], dict[str, Any]] | None:
        raise NotImplementedError
