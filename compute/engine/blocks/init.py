"""Init: how a graph's weights start, for every block that does not choose for itself.

It is a block without ports, so that the choice is drawn on the canvas, kept in the graph
file like every other fact about the model, and written into the generated PyTorch.
"""

from typing import Annotated, Literal

from pydantic import Field

from .base import Block, BlockParams, Float


class InitParams(BlockParams):
    scheme: Literal["pytorch", "normal", "gpt2"] = Field(
        default="gpt2",
        description="pytorch = each layer's own default; normal = matrices from N(0, std²), "
        "biases 0; gpt2 = normal, and std/√(2·layers) for the projections that write into "
        "the residual stream (GPT-2's scheme with std 0.02).")
    std: Annotated[Float, Field(gt=0, le=10)] = Field(
        default=0.02, description="Standard deviation of the normal and gpt2 schemes.")


class Init(Block):
    type = "Init"
    id_stem = "init"
    category = "Model settings"
    summary = "How the weights start, for every block whose init is 'graph'."
    explanation = """
**Init** sets how the weights of the whole graph start. It has no ports: drop one anywhere on
the top-level canvas. Every block with weights (`Linear`, `Conv1d`, `Conv2d`, `Embedding`,
`PositionalEmbedding`, `MultiHeadAttention`, ...) has an `init` parameter; where it is
`graph` (the default) the block follows this node, and without an Init node it keeps
PyTorch's own default.

- `pytorch`: each layer's default (a `Linear` draws from a uniform of width `1/√in`, an
  `Embedding` from `N(0, 1)`).
- `normal`: every weight matrix from `N(0, std²)`, every bias 0; norms keep ones and zeros.
- `gpt2`: as `normal`, but the projections that write into the residual stream (the output
  projection of attention, the last layer of an MLP, any `Linear` whose result is added to
  the stream by an `Add`) start with `std / √N`, where `N` counts those projections in the
  whole model, Repeat copies included: two per transformer layer, so `0.02 / √(2·layers)`
  as in GPT-2 and nanoGPT. Each residual branch then adds a little, and the stream's
  variance does not grow with depth.

Why it matters: a deep network trained from a poor start learns slower or not at all. A
drawn GPT with PyTorch's defaults (embeddings of std 1) ends measurably behind the same GPT
started with GPT-2's scheme.

**What to look for:** it changes no parameter count, shape or FLOPs, only where training
starts: with `gpt2` a language model's first loss should read close to `ln(vocabulary)`,
what guessing every token equally gives (4.85 for the char GPT starter's 128 ids); one far
above it means too large starting weights.
"""
    Params = InitParams
    inputs = ()
    outputs = ()
