"""Input and Output: where tensors enter and leave the model.

The builder treats both specially (an Input is an argument of `forward`, an Output a
returned value); they are blocks so that the catalog and the editor see them like any other.
"""

from typing import Annotated, Literal

from pydantic import Field

from .base import Block, BlockParams, Int

Dim = Annotated[Int, Field(ge=1)]


class InputParams(BlockParams):
    shape: tuple[Dim, ...] | None = Field(
        default=None,
        min_length=1,
        examples=[[64]],  # what the editor gives a new Input of the top graph
        description="Shape of one sample, without the batch dimension: [64] takes [B, 64]. "
        "Required at the top level; inside a Repeat it comes from outside.",
    )
    dtype: Literal["float32", "int64"] = Field(
        default="float32",
        description="float32 for features and images, int64 for token ids and class indices.",
    )


class Input(Block):
    type = "Input"
    id_stem = "x"
    category = "Inputs & outputs"
    summary = "A tensor fed to the model; becomes an argument of forward()."
    explanation = """
An **Input** is where data enters the model. Its `shape` is the shape of one sample without
the batch dimension: `[3, 32, 32]` accepts images of shape `[B, 3, 32, 32]`. Use `int64` for
token ids or class indices that feed an `Embedding`, `float32` for everything else.

In the generated PyTorch code each Input is an argument of `forward`, named by its id and in
the order the Inputs are listed: `model(tokens)`.

**What to look for:** its activation bytes are one sample's size, the product of `shape`
times 4 bytes for float32 or 8 for int64 (`[3, 32, 32]` reads 12,288), and its parameters
and FLOPs read 0.
"""
    Params = InputParams
    inputs = ()


class Output(Block):
    type = "Output"
    id_stem = "out"
    category = "Inputs & outputs"
    summary = "A value the model returns, under this node's id."
    explanation = """
An **Output** marks a value the model returns. Wire the tensor you want back into it. A model
with one Output returns that tensor; with several, a dict keyed by the Outputs' ids, so
`{"logits": ..., "features": ...}`.

**What to look for:** the shape arriving here is what the model returns: a classifier's
should read `[B, classes]`, a language model's `[B, T, vocabulary]`, one score per class or
token; it adds no parameters, FLOPs or bytes.
"""
    outputs = ()
