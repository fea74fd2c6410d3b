"""Multi-head self-attention, and rotary position embeddings on their own."""

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from .. import layers
from .base import (
    SEQUENCE_FIX,
    Block,
    BlockParams,
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
    num_kv_heads: Annotated[Int, Field(ge=1)] | None = Field(
        default=None, description="Key/value heads, shared by groups of query heads; must "
        "divide num_heads. Empty: num_heads (plain multi-head); 1: multi-query.")
    position: Literal["none", "rope", "alibi"] = Field(
        default="none", description="How attention knows where tokens are: 'rope' rotates "
        "queries and keys, 'alibi' penalizes distant keys; 'none' leaves it to the input.")
    rope_theta: Annotated[Float, Field(gt=1)] = Field(
        default=10000.0, description="RoPE's base θ (used with position 'rope'): larger "
        "turns slower, for longer contexts.")
    window: Annotated[Int, Field(ge=1)] | None = Field(
        default=None, description="Sliding window: with causal, each position sees the "
        "window positions ending at itself; without, those less than window away on each "
        "side. Empty: no window.")


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

**Grouped-query attention** (`num_kv_heads`, as in Llama 2/3 and Mistral): fewer key/value
heads than query heads; query heads `g·i … g·i + g − 1` (with `g = num_heads / num_kv_heads`)
share key/value head `i`. `num_kv_heads = 1` is multi-query attention. It shrinks the keys
and values a model keeps while generating, at little cost in quality. With head size
`hs = D / num_heads`, the fused projection has `D + 2·num_kv_heads·hs` outputs, so the
parameters are `2·D² + 2·D·num_kv_heads·hs` (plus `2·D + 2·num_kv_heads·hs` biases).

**Position** (`position`): attention alone ignores order. `"rope"` (rotary embeddings, as in
Llama) turns each head's query and key at position `t` by angles `t·θ^(−2i/hs)`, pairing
feature `i` with feature `i + hs/2` (the "rotate half" layout of Llama's Hugging Face code),
so `q·k` depends on how far apart two tokens are; the head size must be even. `"alibi"`
adds `−m_h·|i − j|` to head `h`'s scores, with slopes `m_h = 2^(−8h/n)` for `n` heads
(for `n` not a power of 2, the ALiBi paper's rule: the slopes of the power of 2 below `n`,
then every other slope of the one above). Neither has weights.

**Sliding window** (`window = w`, as in Mistral): with `causal`, position `i` sees positions
`i − w + 1 … i`; without `causal`, every position `j` with `|i − j| < w` (`2w − 1` of them).
Stacked layers still pass information further, `w` positions a layer.

**What to look for:** parameters `4·D² + 4·D` whatever the context, but FLOPs
`8·T·D² + 4·T²·D` per sample (plain heads: projections, then scores and weighted sum), so
the `T²` part takes over once `T` passes `2·D`. During a run each head's heatmap shows where
each position looks, and in the SQL `heads` table a low `entropy` marks a focused head.
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
        _need_heads(width, params.num_heads, x.source)
        heads, kv_heads = params.num_heads, params.num_kv_heads
        if kv_heads is not None and (kv_heads > heads or heads % kv_heads):
            raise Refusal(
                f"num_kv_heads {kv_heads} does not divide num_heads {heads}: each key/value "
                f"head serves an equal group of query heads, so pick one of "
                f"{', '.join(map(str, _divisors(heads)))}", "num_kv_heads")
        if params.position == "rope":
            _need_even_heads(width, heads, x.source, "num_heads")
        kwargs: dict[str, Any] = {"causal": params.causal, "dropout": params.dropout,
                                  "bias": params.bias}
        # Options left at their defaults stay out of the recipe, so generated code and
        # existing graphs read as they did before the options existed.
        if kv_heads is not None and kv_heads != heads:
            kwargs["num_kv_heads"] = kv_heads
        if params.position != "none":
            kwargs["position"] = params.position
        if params.position == "rope":
            kwargs["rope_theta"] = params.rope_theta
        if params.window is not None:
            kwargs["window"] = params.window
        return Ctor(layers.MultiHeadAttention, (width, heads), kwargs)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _need_heads(width: int, heads: int, source: str) -> None:
    if width % heads:
        raise Refusal(f"the width {width} of {source} does not split into {heads} heads; "
                      f"pick a num_heads that divides {width}", "num_heads")


def _need_even_heads(width: int, heads: int, source: str, field: str) -> None:
    """RoPE turns features in pairs, so a head must have an even number of them."""
    if (width // heads) % 2:
        even = [h for h in _divisors(width) if (width // h) % 2 == 0]
        fix = (f"pick a num_heads that leaves an even head size ({', '.join(map(str, even))})"
               if even else f"make the width {width} even, e.g. with a Linear before it")
        raise Refusal(
            f"rotary embeddings turn pairs of features, but the width {width} of {source} in "
            f"{heads} heads gives heads of {width // heads} features, an odd number: {fix}",
            field)


class RotaryEmbeddingParams(BlockParams):
    num_heads: Annotated[Int, Field(ge=1)] = Field(
        default=4, description="Heads the width D splits into; each is rotated on its own.")
    theta: Annotated[Float, Field(gt=1)] = Field(
        default=10000.0, description="Base θ of the angles: larger turns slower, for longer "
        "contexts.")


class RotaryEmbedding(Block):
    type = "RotaryEmbedding"
    id_stem = "rope"
    category = "Attention"
    summary = "Rotates each head's features by angles that grow with the position (RoPE)."
    explanation = """
**RotaryEmbedding** (RoPE) tells attention where tokens are by rotating vectors rather than
adding to them. The `[B, T, D]` input is split into `num_heads` heads of `hs = D / num_heads`
features; in each head, feature `i` and feature `i + hs/2` form a pair that is turned by the
angle `t · θ^(−2i/hs)` at position `t`:

`y_i = x_i·cos(t·ω_i) − x_{i+hs/2}·sin(t·ω_i)`

`y_{i+hs/2} = x_{i+hs/2}·cos(t·ω_i) + x_i·sin(t·ω_i)`

with `ω_i = θ^(−2i/hs)` (the "rotate half" layout of Llama's Hugging Face code). Turned
this way, the dot product of a query at `t` with a key at `s` depends only on `t − s`.

This is exactly what `MultiHeadAttention` with `position: "rope"` does to its queries and
keys; use this block to build attention from its parts, with the same `num_heads` as the
attention that follows (for keys of grouped-query attention, its `num_kv_heads`). No
parameters; the head size must be even.

**What to look for:** no parameters, FLOPs 0, the shape unchanged; its effect shows only in
the attention after it, where the SQL `heads` table's `mean_distance` and `top_offset` say
how far back each head looks.
"""
    Params = RotaryEmbeddingParams

    def construct(self, params: RotaryEmbeddingParams,
                  inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (2,), "T, D", SEQUENCE_FIX if x.spec.rank == 1 else None)
        width = x.spec.shape[1]
        _need_heads(width, params.num_heads, x.source)
        _need_even_heads(width, params.num_heads, x.source, "num_heads")
        return Ctor(layers.RotaryEmbedding, (params.num_heads,), {"theta": params.theta})
