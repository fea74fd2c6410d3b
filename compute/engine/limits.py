"""Limits on what a graph may ask for, checked before anything is built for real.

Each limit is a setting: pass a `Limits` to the engine's functions, or set the environment
variable named in its field's comment. A bad value fails loudly at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


def env_int(name: str, default: int) -> int:
    """A whole number of at least 1 from the environment variable `name`; `default` when
    it is unset or empty; ValueError naming the variable otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(float(raw)) if "e" in raw.lower() else int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Limits:
    max_nodes: int = 5_000  # SHIPYARD_MAX_NODES: nodes drawn, nested ones included
    max_depth: int = 8  # SHIPYARD_MAX_DEPTH: Repeats inside Repeats
    max_modules: int = 5_000  # SHIPYARD_MAX_MODULES: modules built, Repeat copies counted
    max_dim: int = 1 << 24  # SHIPYARD_MAX_DIM: any one dimension of a tensor or weight
    max_params: int = 2_000_000_000  # SHIPYARD_MAX_PARAMS: parameters of the whole model
    max_activation_bytes: int = 8 << 30  # SHIPYARD_MAX_ACTIVATION_BYTES: per sample, forward

    @classmethod
    def from_env(cls) -> Limits:
        return cls(**{f.name: env_int(ENV_NAMES[f.name], f.default) for f in fields(cls)})  # type: ignore[arg-type]


ENV_NAMES = {
    "max_nodes": "SHIPYARD_MAX_NODES",
    "max_depth": "SHIPYARD_MAX_DEPTH",
    "max_modules": "SHIPYARD_MAX_MODULES",
    "max_dim": "SHIPYARD_MAX_DIM",
    "max_params": "SHIPYARD_MAX_PARAMS",
    "max_activation_bytes": "SHIPYARD_MAX_ACTIVATION_BYTES",
}


@dataclass(frozen=True)
class OnnxLimits:
    """Limits on an ONNX file offered for import, checked before it is parsed or mapped."""

    max_onnx_bytes: int = 64 << 20  # SHIPYARD_MAX_ONNX_BYTES: size of the file
    max_onnx_nodes: int = 20_000  # SHIPYARD_MAX_ONNX_NODES: nodes, nested graphs' included

    @classmethod
    def from_env(cls) -> OnnxLimits:
        return cls(max_onnx_bytes=env_int("SHIPYARD_MAX_ONNX_BYTES", cls.max_onnx_bytes),
                   max_onnx_nodes=env_int("SHIPYARD_MAX_ONNX_NODES", cls.max_onnx_nodes))
