"""Linear: the fully connected layer."""

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, Strict
from torch import nn

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
"""
    Params = LinearParams

    def construct(self, params: LinearParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, tuple(range(1, 9)), "…, features")
        return Ctor(nn.Linear, (x.spec.shape[-1], params.out_features), {"bias": params.bias})
