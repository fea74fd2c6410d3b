"""Blocks that only rearrange, cut or reduce: Flatten, Reshape, Mean, Split."""

import math
from collections.abc import Mapping

from pydantic import Field, field_validator, model_validator
from torch import nn

from .. import layers
from .base import (
    Block,
    BlockParams,
    Ctor,
    Incoming,
    Int,
    Refusal,
    need_float,
    port_name,
    resolve_dim,
    sole,
)


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

**What to look for:** the element count, and so the activation bytes, stay the same, but the
width it gives is the `in` of the `Linear` after it: `[16, 4, 4]` gives 256, and a `Linear`
from it to 10 classes has 2,570 parameters.
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

**What to look for:** the product of the shape's entries is the same before and after, so
the activation bytes do not change; no parameters and FLOPs 0.
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

**What to look for:** dimension `dim` disappears from the shape, and the activation bytes
shrink by its size (`[B, T, D]` → `[B, D]`: `T` times fewer); no parameters and FLOPs 0.
"""
    Params = MeanParams

    def construct(self, params: MeanParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        resolve_dim(params.dim, x.spec)
        return Ctor(layers.Mean, (params.dim,))




class SplitParams(BlockParams):
    dim: Int = Field(
        default=-1, description="Dimension to cut along, counted with the batch (−1: last)."
    )
    names: tuple[str, ...] = Field(
        default=("a", "b"),
        min_length=2,
        max_length=8,
        description="The output ports, one per part, in order: names like node ids (q, k, v).",
    )
    sizes: tuple[Int, ...] | None = Field(
        default=None,
        description="The size of each part along dim, one per name; empty: equal parts.",
    )

    @field_validator("names")
    @classmethod
    def _port_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            port_name(name)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"each part needs its own name; {', '.join(twice)} is given twice")
        return names

    @field_validator("sizes")
    @classmethod
    def _positive(cls, sizes: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if sizes is not None and any(s < 1 for s in sizes):
            raise ValueError("every size must be at least 1")
        return sizes

    @model_validator(mode="after")
    def _one_size_per_name(self) -> "SplitParams":
        if self.sizes is not None and len(self.sizes) != len(self.names):
            raise ValueError(f"sizes has {len(self.sizes)} entries for {len(self.names)} names: "
                             "give one size per name, or leave sizes empty for equal parts")
        return self


class Split(Block):
    type = "Split"
    category = "Shape"
    id_stem = "split"
    summary = "Cuts a tensor along one dimension into named parts: [B, T, 3D] → q, k, v."
    explanation = """
**Split** cuts its input along dimension `dim` (counted with the batch, `−1` the last) into
parts, one per entry of `names`, and each part leaves by its own output port of that name.
With `names [q, k, v]` and no `sizes`, a fused projection `[B, T, 3·D]` becomes three
`[B, T, D]` tensors: queries, keys and values, as attention makes them. Without `sizes` the
parts are equal (the dimension must divide by their number); with `sizes`, part *i* is
`sizes[i]` wide and the sizes add up to the dimension. An edge from a Split names its port
(`qkv.q`). No parameters: the parts are views of the input, as `torch.split` gives them.

**What to look for:** each output port has its own shape, and their sizes along `dim` add up
to the input's, as do their activation bytes; no parameters and FLOPs 0.
"""
    Params = SplitParams
    outputs = SplitParams.model_fields["names"].default
    outputs_from = "names"

    def construct(self, params: SplitParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        axis = resolve_dim(params.dim, x.spec)
        size = x.spec.shape[axis - 1]
        parts = len(params.names)
        if params.sizes is None:
            if size % parts:
                raise Refusal(
                    f"dimension {params.dim} of {x.spec.text()} from {x.source} is {size}, "
                    f"which does not cut into {parts} equal parts: give sizes that add up to "
                    f"{size}, or feed a multiple of {parts}", "sizes")
            sizes = (size // parts,) * parts
        else:
            sizes = params.sizes
            if sum(sizes) != size:
                raise Refusal(
                    f"sizes {list(sizes)} add up to {sum(sizes)}, but dimension {params.dim} of "
                    f"{x.spec.text()} from {x.source} is {size}: make them add up to {size}",
                    "sizes")
        return Ctor(layers.Split, (sizes, params.dim))
