"""Convolutions and pooling over images ([B, C, H, W]) and sequences ([B, C, L])."""

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from .base import (
    Block,
    BlockParams,
    Bool,
    Ctor,
    Incoming,
    Int,
    Refusal,
    WeightInit,
    need_float,
    need_rank,
    sole,
)

Pos = Annotated[Int, Field(ge=1)]
NonNeg = Annotated[Int, Field(ge=0)]
Pair = tuple[Pos, Pos]
PadPair = tuple[NonNeg, NonNeg]


class Conv1dParams(WeightInit):
    out_channels: Pos = Field(default=16, description="Number of filters, i.e. output channels.")
    kernel_size: Pos = Field(default=3, description="Length of each filter.")
    stride: Pos = Field(default=1, description="Step between filter positions.")
    padding: NonNeg | Literal["same", "valid"] = Field(
        default=0,
        description="Zeros added at both ends; 'same' keeps the length (stride 1 only).",
    )
    bias: Bool = Field(default=True, description="Learn one bias per output channel.")


class Conv2dParams(WeightInit):
    out_channels: Pos = Field(default=16, description="Number of filters, i.e. output channels.")
    kernel_size: Pos | Pair = Field(default=3, description="Filter size: k or [kh, kw].")
    stride: Pos | Pair = Field(default=1, description="Step between filter positions.")
    padding: NonNeg | PadPair | Literal["same", "valid"] = Field(
        default=0,
        description="Zeros added on each side: p or [ph, pw]; 'same' keeps H and W (stride 1).",
    )
    bias: Bool = Field(default=True, description="Learn one bias per output channel.")


def _conv(block: Block, cls: type[nn.Module], params: Conv1dParams | Conv2dParams,
          x: Incoming, layout: str, rank: int) -> Ctor:
    need_float(block, x)
    sibling = {(2, 3): "use Conv2d for [B, C, H, W]", (3, 2): "use Conv1d for [B, C, L]"}
    need_rank(block, x, (rank,), layout, sibling.get((rank, x.spec.rank)))
    if params.padding == "same" and params.stride not in (1, (1, 1)):
        raise Refusal("padding 'same' works only with stride 1: set stride to 1, or padding to "
                      "a number", "padding")
    return Ctor(
        cls,
        (x.spec.shape[0], params.out_channels, params.kernel_size),
        {"stride": params.stride, "padding": params.padding, "bias": params.bias},
    )


class Conv1d(Block):
    type = "Conv1d"
    id_stem = "conv"
    category = "Convolution"
    summary = "Slides learned filters along a sequence: [B, C, L] → [B, out_channels, L']."
    explanation = """
**Conv1d** slides `out_channels` learned filters, each `kernel_size` long and spanning all
input channels, along the last dimension of a `[B, C, L]` input. Each output value is a
weighted sum of a window: `y[o, t] = b[o] + Σ_c Σ_k W[o, c, k] · x[c, t·stride + k − padding]`.

Output length: `L' = ⌊(L + 2·padding − kernel_size) / stride⌋ + 1`.
Parameters: `out·C·k` weights plus `out` biases.

Use it for audio, time series or character sequences, where nearby positions matter and the
same pattern can appear anywhere.

**What to look for:** its parameters (`out·C·k + out`) do not depend on the length, but its
FLOPs, `2·out·C·k` per output position, grow with `L'`: doubling the sequence doubles the
FLOPs and the activation bytes, not the parameters.
"""
    Params = Conv1dParams

    def construct(self, params: Conv1dParams, inputs: Mapping[str, Incoming]) -> Ctor:
        return _conv(self, nn.Conv1d, params, sole(inputs), "C, L", 2)


class Conv2d(Block):
    type = "Conv2d"
    id_stem = "conv"
    category = "Convolution"
    summary = "Slides learned filters over an image: [B, C, H, W] → [B, out_channels, H', W']."
    explanation = """
**Conv2d** slides `out_channels` learned filters of size `kernel_size × kernel_size` (spanning
all input channels) over a `[B, C, H, W]` image. Each output pixel is a weighted sum of the
window under the filter, plus a bias.

Output size: `H' = ⌊(H + 2·padding − kernel_size) / stride⌋ + 1`, and the same for `W`.
Parameters: `out·C·k·k` weights plus `out` biases, however large the image: weights are
shared across positions, which is why convolutions suit images.

Typical use: `Conv2d → BatchNorm2d → ReLU`, with `padding = kernel_size // 2` to keep the size
and a pooling layer or `stride 2` to halve it.

**What to look for:** its parameters stay the same whatever the image size, but its FLOPs,
`2·out·C·k·k` per output pixel, grow with `H'·W'`: the first convolutions, on the largest
images, often have few parameters and most of the FLOPs and activation bytes.
"""
    Params = Conv2dParams

    def construct(self, params: Conv2dParams, inputs: Mapping[str, Incoming]) -> Ctor:
        return _conv(self, nn.Conv2d, params, sole(inputs), "C, H, W", 3)


class Pool2dParams(BlockParams):
    kernel_size: Pos | Pair = Field(default=2, description="Window size: k or [kh, kw].")
    stride: Pos | Pair | None = Field(
        default=None, description="Step between windows; empty means the kernel size."
    )
    padding: NonNeg | PadPair = Field(
        default=0, description="Padding on each side; at most half the kernel size."
    )


def _pool(block: Block, cls: type[nn.Module], params: Pool2dParams, x: Incoming) -> Ctor:
    need_float(block, x)
    need_rank(block, x, (3,), "C, H, W")
    return Ctor(cls, (params.kernel_size,), {"stride": params.stride, "padding": params.padding})


class MaxPool2d(Block):
    type = "MaxPool2d"
    id_stem = "pool"
    category = "Pooling"
    summary = "Keeps the largest value of each window: shrinks H and W, no parameters."
    explanation = """
**MaxPool2d** splits each channel of a `[B, C, H, W]` input into windows of `kernel_size` and
keeps the largest value of each. With the default (`kernel_size 2`, stride equal to it) the
image shrinks by half in each direction. It has no parameters.

Use it after a convolution to reduce resolution while keeping the strongest responses, which
also makes the network tolerant of small shifts.

**What to look for:** no parameters and 0 FLOPs (Shipyard counts matrix products and
convolutions), and with the defaults its activation bytes are a quarter of its input's,
since `H` and `W` both halve.
"""
    Params = Pool2dParams

    def construct(self, params: Pool2dParams, inputs: Mapping[str, Incoming]) -> Ctor:
        return _pool(self, nn.MaxPool2d, params, sole(inputs))


class AvgPool2d(Block):
    type = "AvgPool2d"
    id_stem = "pool"
    category = "Pooling"
    summary = "Averages each window: shrinks H and W, no parameters."
    explanation = """
**AvgPool2d** splits each channel of a `[B, C, H, W]` input into windows of `kernel_size` and
keeps the mean of each. Like max pooling it halves the resolution by default and has no
parameters, but it keeps a smoother summary of the window.

**What to look for:** no parameters and 0 FLOPs (Shipyard counts matrix products and
convolutions), and with the defaults its activation bytes are a quarter of its input's,
since `H` and `W` both halve.
"""
    Params = Pool2dParams

    def construct(self, params: Pool2dParams, inputs: Mapping[str, Incoming]) -> Ctor:
        return _pool(self, nn.AvgPool2d, params, sole(inputs))


class AdaptivePoolParams(BlockParams):
    output_size: Pos | Pair = Field(
        default=1, description="Size of the result: s or [h, w]. 1 averages each channel whole."
    )


class AdaptiveAvgPool2d(Block):
    type = "AdaptiveAvgPool2d"
    id_stem = "pool"
    category = "Pooling"
    summary = "Averages down to a fixed size, whatever the input size: [B, C, h, w]."
    explanation = """
**AdaptiveAvgPool2d** averages a `[B, C, H, W]` input down to `[B, C, h, w]` with
`output_size = [h, w]`, choosing the windows itself. With `output_size 1` it is *global
average pooling*: one number per channel, which a `Flatten` and a `Linear` then turn into
class scores. That is how ResNets end.

**What to look for:** its output is `[B, C, h, w]` whatever size enters, so its activation
bytes are only `C·h·w·4` (4 bytes per channel with `output_size 1`); no parameters and 0
FLOPs.
"""
    Params = AdaptivePoolParams

    def construct(self, params: AdaptivePoolParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (3,), "C, H, W")
        return Ctor(nn.AdaptiveAvgPool2d, (params.output_size,))
