"""Multi-head self-attention."""

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field

from .. import layers
from .base import (
    SEQUENCE_FIX,
    Block,
    Bool,
    Ctor,
    Float,
    Incoming,
    Int,
    Refusal,
    TensorSpec,
    WeightInit,
    need_float,
    need_rank,
    sole,
)


class MultiHeadAttentionParams(WeightInit):
    num_heads: Annotated[Int, Field(ge=1)] = Field(
        default=4, description="Number of heads; must divide the width D."
    )
    causal: Bool = Field(
        default=False, description="Each position sees only itself and earlier ones (GPT)."
    )
    dropout: Annotated[Float, Field(ge=0, lt=1)] = Field(
        default=0.0, description="Dropout on the attention weights while training."
    )
    bias: Bool = Field(default=True, description="Biases in the projections.")


class MultiHeadAttention(Block):
    type = "MultiHeadAttention"
    id_stem = "attn"
    category = "Attention"
    summary = "Each position gathers information from the others, weighted by relevance."
    explanation = """
**MultiHeadAttention** lets every position of a `[B, T, D]` sequence look at every other
one. A fused projection makes a query `q`, a key `k` and a value `v` for each position; each
of the `num_heads` heads works on a `D / num_heads` slice and computes

`Attention(q, k, v) = softmax(q kᵀ / √d) v`

so a position's output is an average of the values, weighted by how well its query matches
each key. The heads' results are joined and mixed by an output projection.

With `causal` on, a position sees only itself and earlier positions: what a GPT needs to
predict the next token. Parameters: `4·D² + 4·D` with bias (the same as
`torch.nn.MultiheadAttention`). Cost grows with `T²`: doubling the context quadruples the
attention work. During a run Shipyard can show each head's weights as a heatmap.
"""
    Params = MultiHeadAttentionParams

    def shows_attention(self, params: MultiHeadAttentionParams, output: TensorSpec) -> bool:
        return True

    def construct(self, params: MultiHeadAttentionParams,
                  inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (2,), "T, D", SEQUENCE_FIX if x.spec.rank == 1 else None)
        width = x.spec.shape[1]
        if width % params.num_heads:
            raise Refusal(
                f"the width {width} of {x.source} does not split into {params.num_heads} heads; "
                f"pick a num_heads that divides {width}", "num_heads")
        return Ctor(
            layers.MultiHeadAttention,
            (width, params.num_heads),
            {"causal": params.causal, "dropout": params.dropout, "bias": params.bias},
        )
