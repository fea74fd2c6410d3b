"""Blocks that only rearrange or reduce: Flatten, Reshape, Mean."""

import math
from collections.abc import Mapping

from pydantic import Field, field_validator
from torch import nn

from .. import layers
from .base import Block, BlockParams, Ctor, Incoming, Int, Refusal, need_float, resolve_dim, sole


class FlattenParams(BlockParams):
    start_dim: Int = Field(
        default=1, description="First dimension to flatten, counted with the batch (as torch)."
    )
    end_dim: Int = Field(default=-1, description="Last dimension to flatten (−1: the last).")


class Flatten(Block):
    type = "Flatten"
    category = "Shape"
    summary = "Merges dimensions into one: [B, C, H, W] → [B, C·H·W]."
    explanation = """
**Flatten** merges the dimensions from `start_dim` to `end_dim` into one, keeping the values
in order. With the defaults a `[B, 16, 4, 4]` feature map becomes `[B, 256]`, ready for a
`Linear`. Dimensions are counted with the batch, as in `torch.nn.Flatten`, so `start_dim 1`
is the first dimension after `B`. No parameters.
"""
    Params = FlattenParams

    def construct(self, params: FlattenParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        start = resolve_dim(params.start_dim, x.spec, "start_dim")
        end = resolve_dim(params.end_dim, x.spec, "end_dim")
        if start > end:
            raise Refusal(f"start_dim {params.start_dim} comes after end_dim {params.end_dim}: "
                          "swap them", "start_dim")
        return Ctor(nn.Flatten, (params.start_dim, params.end_dim))


class ReshapeParams(BlockParams):
    shape: tuple[Int, ...] = Field(
        default=(-1,),
        min_length=1,
        description="New shape of each sample, without the batch; one entry may be −1.",
    )

    @field_validator("shape")
    @classmethod
    def _one_unknown(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d == 0 or d < -1 for d in shape):
            raise ValueError("every entry must be a positive size or −1")
        if shape.count(-1) > 1:
            raise ValueError("at most one entry may be −1")
        return shape


class Reshape(Block):
    type = "Reshape"
    category = "Shape"
    summary = "Gives each sample a new shape with the same number of elements."
    explanation = """
**Reshape** gives each sample a new `shape` (written without the batch dimension) holding the
same elements in the same order. One entry may be `−1` and is then worked out: `[8, −1]` turns
`[B, 64]` into `[B, 8, 8]`. Use it to turn a flat vector into an image or a sequence of
tokens, or to split a width into heads. No parameters.
"""
    Params = ReshapeParams

    def construct(self, params: ReshapeParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        total = math.prod(x.spec.shape)
        shape = params.shape
        known = math.prod(d for d in shape if d != -1)
        if -1 in shape:
            if total % known:
                raise Refusal(
                    f"cannot reshape {x.spec.text()} ({total} elements per sample) to "
                    f"{list(shape)}: {total} is not a multiple of {known}; the other entries must "
                    f"divide {total}", "shape")
            shape = tuple(total // known if d == -1 else d for d in shape)
        elif known != total:
            raise Refusal(
                f"cannot reshape {x.spec.text()} ({total} elements per sample) to {list(shape)} "
                f"({known} elements): the entries must multiply to {total}, or write -1 for one "
                "of them to have it worked out", "shape")
        return Ctor(layers.Reshape, (shape,))


class MeanParams(BlockParams):
    dim: Int = Field(
        default=1, description="Dimension to average over, counted with the batch."
    )


class Mean(Block):
    type = "Mean"
    category = "Shape"
    summary = "Averages over one dimension and removes it: [B, T, D] → [B, D]."
    explanation = """
**Mean** averages over dimension `dim` (counted with the batch) and removes it. With the
default `dim 1` a sequence of token vectors `[B, T, D]` becomes one vector per sample
`[B, D]`: the usual way to pool a transformer encoder before a classifier head.
"""
    Params = MeanParams

    def construct(self, params: MeanParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        resolve_dim(params.dim, x.spec)
        return Ctor(layers.Mean, (params.dim,))


