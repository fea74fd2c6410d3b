"""Linear, the fully connected layer, and the gated MLP built from three of them."""

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, Strict
from torch import nn

from .. import layers
from .base import Block, Bool, Ctor, Incoming, Int, WeightInit, need_float, need_rank, sole


class LinearParams(WeightInit):
    out_features: Annotated[Int, Field(ge=1)] = Field(
        default=64, description="Size of each output vector."
    )
    bias: Bool = Field(default=True, description="Learn an additive bias b.")
    tie_to: Annotated[str, Strict(), Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] | None = (
        Field(default=None, description="The id of an Embedding in this graph whose table "
              "becomes this layer's weight (weight tying, as GPT-2's output head does): "
              "out_features must be its num_embeddings and the input its embedding_dim. The "
              "shared table is counted once."))


class Linear(Block):
    type = "Linear"
    category = "Layers"
    summary = "y = x·Wᵀ + b over the last dimension: mixes features with learned weights."
    explanation = """
**Linear** (a fully connected or dense layer) maps each vector in the last dimension to a new
vector: `y = x Wᵀ + b`, with `W` of shape `[out_features, in_features]`. The input size is
taken from whatever arrives, so only `out_features` is yours to choose.

Parameters: `in·out` weights plus `out` biases. Cost: about `2·in·out` FLOPs per vector.

Use it to change the width of a representation, as the hidden layers of an MLP, or as the
final layer that turns features into class scores (logits). Stacking Linears without an
activation between them is still one linear map: put a `ReLU` or `GELU` between.

**Weight tying**: set `tie_to` to an `Embedding`'s id and this layer reads out with the
embedding's own table (`W = E`, shape `[vocabulary, width]`): a language model's head then
scores each next token by how well the final vector matches that token's embedding. It
saves `vocabulary·width` parameters, and the shared table is counted once.

**What to look for:** its parameter count is `in·out + out` and its FLOPs `2·in·out` per
vector (times `T` on a `[B, T, in]` sequence), so doubling `out_features` doubles both.
After training, a weight `std` far above the other layers' (SQL: `tensors`) can mean an
unstable layer.
"""
    Params = LinearParams

    def construct(self, params: LinearParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, tuple(range(1, 9)), "…, features")
        return Ctor(nn.Linear, (x.spec.shape[-1], params.out_features), {"bias": params.bias})


class GatedMLPParams(WeightInit):
    activation: Literal["silu", "gelu"] = Field(
        default="silu", description="Activation of the gate: 'silu' makes SwiGLU (Llama), "
        "'gelu' GeGLU.")
    hidden_features: Annotated[Int, Field(ge=1)] | None = Field(
        default=None, description="Width of the hidden layer. Empty: 8·D/3 rounded up to a "
        "multiple of multiple_of (Llama's rule).")
    multiple_of: Annotated[Int, Field(ge=1)] = Field(
        default=256, description="With hidden_features empty, the hidden width is rounded up "
        "to a multiple of this.")
    bias: Bool = Field(default=False, description="Biases in the three projections.")


def gated_hidden_features(width: int, multiple_of: int) -> int:
    """Llama's rule: two thirds of 4·D (as many parameters as a 4·D MLP with two matrices),
    rounded up to a multiple of `multiple_of`."""
    hidden = 2 * (4 * width) // 3
    return multiple_of * -(-hidden // multiple_of)


class GatedMLP(Block):
    type = "GatedMLP"
    id_stem = "mlp"
    category = "Layers"
    summary = "down(act(gate(x)) · up(x)): the SwiGLU / GeGLU MLP of Llama-style transformers."
    explanation = """
**GatedMLP** is the feed-forward part of Llama-style transformers. Two projections of the
input make a *gate* and a *value*; the gate goes through an activation and scales the value
element by element; a third projection brings the result back to the input's width `D`:

`y = down( act(gate(x)) ⊙ up(x) )`

With `activation` `"silu"` this is **SwiGLU** (Llama, Mistral), with `"gelu"` (exact, erf)
**GeGLU**. It usually trains better than `Linear → GELU → Linear` for the same parameters.
It is the same as drawing two `Linear`s from `x`, a `SiLU` on one, a `Multiply` and a
`Linear` back to `D`; this block is that in one node.

The hidden width `H` is `hidden_features`, or, left empty, Llama's rule: two thirds of
`4·D`, rounded up to a multiple of `multiple_of`:

`H = multiple_of · ⌈⌊8·D / 3⌋ / multiple_of⌉` (D = 512, multiple_of = 256: H = 1536)

Three matrices of `D·H`, so about as many parameters as a `4·D` MLP with two:
parameters `3·D·H` (plus `2·H + D` with bias). The shape is unchanged: `[B, …, D]`.

**What to look for:** parameters `3·D·H` and FLOPs `6·D·H` per vector (D = 8, H = 16: 384
and 768), whatever the activation. After training, the SQL `tensors` table lists `gate`,
`up` and `down` apart: a `std` far above the others' can mean an unstable projection.
"""
    Params = GatedMLPParams

    def construct(self, params: GatedMLPParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, tuple(range(1, 9)), "…, features")
        width = x.spec.shape[-1]
        hidden = params.hidden_features or gated_hidden_features(width, params.multiple_of)
        return Ctor(layers.GatedMLP, (width, hidden),
                    {"activation": params.activation, "bias": params.bias})
