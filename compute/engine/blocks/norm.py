"""Normalization layers."""

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field
from torch import nn

from .base import Block, BlockParams, Bool, Ctor, Float, Incoming, need_float, need_rank, sole

Eps = Annotated[Float, Field(gt=0, le=1)]
Momentum = Annotated[Float, Field(ge=0, le=1)]


class BatchNormParams(BlockParams):
    eps: Eps = Field(default=1e-5, description="Added to the variance to avoid dividing by 0.")
    momentum: Momentum = Field(
        default=0.1, description="How fast the running mean and variance follow new batches."
    )


_BATCHNORM_TEXT = """
normalizes each channel with the mean and variance of the current batch, then scales and
shifts it with learned `γ` and `β`: `y = γ · (x − mean) / √(var + eps) + β`. During training it
also keeps running averages of mean and variance, which it uses instead at evaluation time.

It makes deep convolutional networks train faster and more stably. It depends on the batch:
with very small batches prefer `LayerNorm`.

**What to look for:** parameters `2·C` (`γ` and `β`) and FLOPs 0, as Shipyard counts matrix
products and convolutions only. After training, the SQL `tensors` table also lists its
buffers `running_mean` and `running_var` (kind `buffer`), where a variance near 0 marks a
channel that barely changes.
"""


class BatchNorm1d(Block):
    type = "BatchNorm1d"
    id_stem = "bn"
    category = "Normalization"
    summary = "Normalizes each feature over the batch, then scales and shifts it."
    explanation = "**BatchNorm1d** takes `[B, C]` or `[B, C, L]` and" + _BATCHNORM_TEXT
    Params = BatchNormParams

    def construct(self, params: BatchNormParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (1, 2), "C] or [B, C, L",
                  "use BatchNorm2d for [B, C, H, W]" if x.spec.rank == 3 else None)
        return Ctor(nn.BatchNorm1d, (x.spec.shape[0],), params.model_dump())


class BatchNorm2d(Block):
    type = "BatchNorm2d"
    id_stem = "bn"
    category = "Normalization"
    summary = "Normalizes each channel of an image over the batch, then scales and shifts it."
    explanation = "**BatchNorm2d** takes `[B, C, H, W]` and" + _BATCHNORM_TEXT
    Params = BatchNormParams

    def construct(self, params: BatchNormParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (3,), "C, H, W",
                  "use BatchNorm1d for [B, C] or [B, C, L]" if x.spec.rank in (1, 2) else None)
        return Ctor(nn.BatchNorm2d, (x.spec.shape[0],), params.model_dump())


class LayerNormParams(BlockParams):
    eps: Eps = Field(default=1e-5, description="Added to the variance to avoid dividing by 0.")
    elementwise_affine: Bool = Field(default=True, description="Learn a scale γ per feature.")
    bias: Bool = Field(default=True, description="Learn a shift β per feature (needs γ).")


class LayerNorm(Block):
    type = "LayerNorm"
    id_stem = "ln"
    category = "Normalization"
    summary = "Normalizes each vector over its last dimension, then scales and shifts it."
    explanation = """
**LayerNorm** normalizes every vector of the last dimension on its own:
`y = γ · (x − mean(x)) / √(var(x) + eps) + β`, with the mean and variance taken over that
vector's features, so it behaves the same for any batch size.

Transformers put one before attention and one before the MLP of every block ("pre-norm"),
plus a final one before the output head. Parameters: `2·D` (`γ` and `β`).

**What to look for:** parameters `2·D` whatever the sequence length (0 with
`elementwise_affine` off), and FLOPs 0, as Shipyard counts matrix products and convolutions
only. After training, `γ` (SQL: `tensors`, `param` `weight`) starts at 1: a `mean` far from
1 shows how much the layer rescales its features.
"""
    Params = LayerNormParams

    def construct(self, params: LayerNormParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, tuple(range(1, 9)), "…, features")
        kwargs = params.model_dump()
        if not params.elementwise_affine:
            kwargs["bias"] = False
        return Ctor(nn.LayerNorm, (x.spec.shape[-1],), kwargs)


class RMSNormParams(BlockParams):
    eps: Eps = Field(default=1e-5, description="Added inside the square root to avoid 0.")
    elementwise_affine: Bool = Field(default=True, description="Learn a scale γ per feature.")


class RMSNorm(Block):
    type = "RMSNorm"
    id_stem = "norm"
    category = "Normalization"
    summary = "Scales each vector to unit root-mean-square over its last dimension."
    explanation = """
**RMSNorm** divides every vector of the last dimension by its root mean square and scales it
with a learned `γ`: `y = γ · x / √(mean(x²) + eps)`. Unlike `LayerNorm` it does not subtract
the mean and has no `β`, which makes it a little cheaper; LLaMA-style models use it.

**What to look for:** parameters `D` (only `γ`), half a `LayerNorm`'s, and FLOPs 0, as
Shipyard counts matrix products and convolutions only. After training, `γ` (SQL: `tensors`)
starts at all ones: its `mean` and `std` show how much the layer rescales its features.
"""
    Params = RMSNormParams

    def construct(self, params: RMSNormParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, tuple(range(1, 9)), "…, features")
        return Ctor(nn.RMSNorm, (x.spec.shape[-1],), params.model_dump())
