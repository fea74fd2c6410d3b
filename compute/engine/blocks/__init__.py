"""The block catalog: every block type, listed explicitly.

To add a block, write its class in the module of its kind and add it to `_BLOCKS`.
"""

from __future__ import annotations

import difflib
from typing import Any

from .activation import GELU, Dropout, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .attention import MultiHeadAttention, RotaryEmbedding
from .base import (
    INIT_SCHEMES,
    NAME_PATTERN,
    Block,
    BlockParams,
    Ctor,
    Incoming,
    Refusal,
    TensorSpec,
    WeightInit,
)
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, MaxPool2d
from .custom import Custom
from .dense import GatedMLP, Linear
from .embedding import Embedding, PositionalEmbedding
from .init import Init
from .io import Input, Output
from .merge import Add, Concat, Multiply
from .moe import MixtureOfExperts
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from .parts import CausalMask, MatMul, Permute, Scale, Slice, Transpose
from .repeat import Repeat
from .shape import Flatten, Mean, Reshape, Split

_BLOCKS: tuple[Block, ...] = (
    Input(),
    Output(),
    Linear(),
    MixtureOfExperts(),
    GatedMLP(),
    Conv1d(),
    Conv2d(),
    MaxPool2d(),
    AvgPool2d(),
    AdaptiveAvgPool2d(),
    BatchNorm1d(),
    BatchNorm2d(),
    LayerNorm(),
    RMSNorm(),
    ReLU(),
    GELU(),
    SiLU(),
    Tanh(),
    Sigmoid(),
    Softmax(),
    Dropout(),
    Flatten(),
    Reshape(),
    Mean(),
    Split(),
    Embedding(),
    PositionalEmbedding(),
    MultiHeadAttention(),
    MatMul(),
    Transpose(),
    Permute(),
    Scale(),
    CausalMask(),
    Slice(),
    RotaryEmbedding(),
    Add(),
    Multiply(),
    Concat(),
    Repeat(),
    Custom(),
    Init(),
)

REGISTRY: dict[str, Block] = {block.type: block for block in _BLOCKS}


def get_block(type_name: str) -> Block | None:
    return REGISTRY.get(type_name)


def unknown_type_message(type_name: str) -> str:
    """A sentence for a type that is not in the catalog, with the nearest names."""
    close = difflib.get_close_matches(type_name, REGISTRY, n=3, cutoff=0.6)
    if not close:
        close = [t for t in REGISTRY if t.lower() == str(type_name).lower()]
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else (
        "known types: " + ", ".join(REGISTRY)
    )
    return f"unknown block type {type_name!r}; {hint}"


def catalog() -> list[dict[str, Any]]:
    """Every block as data: type, category, ports, parameter JSON Schema, explanation."""
    return [block.describe() for block in _BLOCKS]


__all__ = [
    "INIT_SCHEMES",
    "NAME_PATTERN",
    "REGISTRY",
    "Block",
    "BlockParams",
    "Ctor",
    "Incoming",
    "Refusal",
    "TensorSpec",
    "WeightInit",
    "catalog",
    "get_block",
    "unknown_type_message",
]
