"""Element-wise activations, softmax and dropout."""

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field
from torch import nn

from .base import (
    Block,
    BlockParams,
    Ctor,
    Float,
    Incoming,
    Int,
    TensorSpec,
    need_float,
    resolve_dim,
    sole,
)


class _Elementwise(Block):
    """A parameter-free function applied to every element; the shape is unchanged."""

    category = "Activations"
    module: type[nn.Module]

    def construct(self, params: Any, inputs: Mapping[str, Incoming]) -> Ctor:
        need_float(self, sole(inputs))
        return Ctor(self.module)


class ReLU(_Elementwise):
    type = "ReLU"
    module = nn.ReLU
    summary = "max(0, x): keeps positives, zeroes negatives."
    explanation = """
**ReLU** (rectified linear unit) computes `max(0, x)` for every element. It is the default
non-linearity between layers of MLPs and CNNs: cheap, and its gradient does not vanish for
positive inputs. No parameters; the shape is unchanged.

**What to look for:** it has no parameters and its FLOPs read 0 (Shipyard counts matrix
products and convolutions). Often about half of what it gives is exactly 0; a share far
above that after training means dead units, which give 0 for every input and no longer
learn.
"""


class GELUParams(BlockParams):
    approximate: Literal["none", "tanh"] = Field(
        default="none", description="'tanh' uses the faster approximation GPT-2 used."
    )


class GELU(_Elementwise):
    type = "GELU"
    module = nn.GELU
    summary = "x·Φ(x): a smooth ReLU, the usual choice in transformers."
    explanation = """
**GELU** computes `x · Φ(x)`, where `Φ` is the standard normal distribution function: close to
0 for negative inputs and close to `x` for positive ones, with a smooth bend in between. BERT
and GPT use it inside the MLP of each transformer block. No parameters.

**What to look for:** no parameters and FLOPs 0, like every activation here. Unlike
`ReLU`'s, its outputs are rarely exactly 0 (negative inputs give small negative values, down
to about −0.17), so a share of zeros does not show dead units.
"""
    Params = GELUParams

    def construct(self, params: GELUParams, inputs: Mapping[str, Incoming]) -> Ctor:
        need_float(self, sole(inputs))
        return Ctor(nn.GELU, (), {"approximate": params.approximate})


class SiLU(_Elementwise):
    type = "SiLU"
    module = nn.SiLU
    summary = "x·sigmoid(x) (swish): smooth, used in LLaMA-style MLPs and EfficientNets."
    explanation = """
**SiLU** (also called swish) computes `x · σ(x)`, with `σ(x) = 1 / (1 + e^(−x))`. Smooth like
GELU and nearly as cheap as ReLU. No parameters.

**What to look for:** no parameters and FLOPs 0, like every activation here. Its output is
never below about −0.28 (at `x ≈ −1.28`) and, unlike `ReLU`'s, rarely exactly 0, so a share
of zeros does not show dead units.
"""


class Tanh(_Elementwise):
    type = "Tanh"
    module = nn.Tanh
    summary = "Squashes every element into (−1, 1)."
    explanation = """
**Tanh** computes `(eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)`, squashing every element into `(−1, 1)` around 0.
Classic in RNNs and small MLPs; in deep networks it saturates, so ReLU or GELU train faster.

**What to look for:** no parameters and FLOPs 0. Outputs piled up near −1 and 1 mean it
saturates, where its gradient is almost 0 and the layers before it learn slowly.
"""


class Sigmoid(_Elementwise):
    type = "Sigmoid"
    module = nn.Sigmoid
    summary = "Squashes every element into (0, 1): a probability or a gate."
    explanation = """
**Sigmoid** computes `σ(x) = 1 / (1 + e^(−x))`, mapping every element into `(0, 1)`. Use it to
turn a score into a probability for yes/no outputs, or as a gate that scales another signal.

**What to look for:** no parameters and FLOPs 0. Outputs piled up near 0 and 1 mean it
saturates, where its gradient (0.25 at most, at `x = 0`) is almost 0 and the layers before
it learn slowly.
"""


class SoftmaxParams(BlockParams):
    dim: Int = Field(
        default=-1, description="Dimension that sums to 1, counted with the batch (−1: last)."
    )


class Softmax(Block):
    type = "Softmax"
    category = "Activations"
    summary = "Turns scores into probabilities that sum to 1 along one dimension."
    explanation = """
**Softmax** computes `exp(xᵢ) / Σⱼ exp(xⱼ)` along `dim`, turning any scores into positive
numbers that sum to 1: a probability distribution over classes or tokens. `dim` is counted
with the batch, as in `torch.softmax`: −1 (the default) is the last dimension, whatever the
rank, and 0, the batch, is refused.

In attention built from parts it turns the scores `[B, T, T]`, or `[B, h, T, T]` with
heads, into weights over the keys: keep `dim` −1 (or 3 on `[B, h, T, T]`), so that each
query's row sums to 1. A Softmax over the last dimension of such square scores is shown
during a run like a `MultiHeadAttention` block's weights, as a heatmap per head.

Do not put it before a cross-entropy loss: the loss applies it itself, on the raw scores
(logits), more accurately. Use it when you want the model to output probabilities.

**What to look for:** no parameters and FLOPs 0. Over square `[…, T, T]` scores, a run shows
its output as one heatmap per head and the SQL `heads` table measures it: a low `entropy`
(in nats, at most `ln T`) marks a focused head.
"""
    Params = SoftmaxParams

    def construct(self, params: SoftmaxParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        resolve_dim(params.dim, x.spec)
        return Ctor(nn.Softmax, (), {"dim": params.dim})

    def shows_attention(self, params: SoftmaxParams, output: TensorSpec) -> bool:
        return attention_shaped(output.shape, params.dim)


def attention_shaped(shape: tuple[int, ...], dim: int) -> bool:
    """Whether a softmax along `dim` (counted with the batch) giving `shape` (without it)
    gives attention weights a run can show: [T, T] or [h, T, T] per sample, rows (queries)
    summing to 1 over the last dimension (keys)."""
    return (len(shape) in (2, 3) and shape[-1] == shape[-2]
            and dim % (len(shape) + 1) == len(shape))


class DropoutParams(BlockParams):
    p: Annotated[Float, Field(ge=0, lt=1)] = Field(
        default=0.1, description="Probability that an element is zeroed during training."
    )


class Dropout(Block):
    type = "Dropout"
    id_stem = "drop"
    category = "Regularization"
    summary = "While training, zeroes random elements (and rescales the rest)."
    explanation = """
**Dropout** zeroes each element with probability `p` during training and multiplies the
survivors by `1 / (1 − p)`, so the expected value is unchanged. At evaluation it does
nothing. It keeps the network from relying on any single feature, which reduces overfitting
on small datasets. No parameters; the shape is unchanged.

**What to look for:** no parameters, FLOPs 0, the shape unchanged. It acts only in training,
so the training loss may read above the validation loss; a validation loss that rises while
the training loss falls (overfitting) says a larger `p` may help.
"""
    Params = DropoutParams

    def construct(self, params: DropoutParams, inputs: Mapping[str, Incoming]) -> Ctor:
        need_float(self, sole(inputs))  # on ids it would fail only once training starts
        return Ctor(nn.Dropout, (), {"p": params.p})
