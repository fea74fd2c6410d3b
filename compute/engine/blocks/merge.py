"""Blocks with two inputs, `a` and `b`: Add, Multiply, Concat."""

from collections.abc import Mapping

import torch
from pydantic import Field

from .. import layers
from .base import Block, BlockParams, Ctor, Incoming, Int, Refusal, resolve_dim


def _same_dtype(block: Block, a: Incoming, b: Incoming) -> None:
    if a.spec.dtype != b.spec.dtype:
        ids = [side for side, x in (("a", a), ("b", b)) if not x.spec.is_float]
        fix = (f"put an Embedding before {ids[0]} to turn its ids into vectors" if len(ids) == 1
               else "give both Inputs the same dtype")
        raise Refusal(
            f"{block.type} needs both inputs of one dtype, but a ({a.source}) is "
            f"{a.spec.describe()} and b ({b.source}) is {b.spec.describe()}: {fix}"
        )


def _match_fix(a: Incoming, b: Incoming) -> str:
    """How to make b's shape agree with a's, when a Linear on one side can do it."""
    if a.spec.rank == b.spec.rank and a.spec.shape[:-1] == b.spec.shape[:-1]:
        return (f"; a Linear with out_features {a.spec.shape[-1]} after {b.source} makes "
                f"b match a")
    return ""


class _Broadcasting(Block):
    category = "Merge"
    inputs = ("a", "b")
    module: type[torch.nn.Module]

    def construct(self, params: object, inputs: Mapping[str, Incoming]) -> Ctor:
        a, b = inputs["a"], inputs["b"]
        _same_dtype(self, a, b)
        try:
            torch.broadcast_shapes((1, *a.spec.shape), (1, *b.spec.shape))
        except RuntimeError:
            raise Refusal(
                f"{self.type} cannot combine input a, {a.spec.text()} from {a.source}, with "
                f"input b, {b.spec.text()} from {b.source}: the shapes must match, or be 1 "
                f"where they differ{_match_fix(a, b)}"
            ) from None
        return Ctor(self.module)


class Add(_Broadcasting):
    type = "Add"
    module = layers.Add
    summary = "a + b, element by element: the join of a residual connection."
    explanation = """
**Add** returns `a + b`, element by element; shapes broadcast as in PyTorch (equal, or 1 where
they differ). Its main use is the *residual connection*: `y = x + f(x)` lets a block learn a
small change to its input, which is what makes very deep ResNets and transformers trainable.
Wire the block's input to `a` and the block's result to `b`.

**What to look for:** no parameters and FLOPs 0 (element-wise sums are not counted). In a
residual connection the output's shape should equal both inputs': a different one means
broadcasting repeated one of them.
"""


class Multiply(_Broadcasting):
    type = "Multiply"
    module = layers.Multiply
    summary = "a · b, element by element: gating or scaling."
    explanation = """
**Multiply** returns `a · b`, element by element; shapes broadcast as in PyTorch. Use it for
gates (a `Sigmoid` output times a signal, as in gated MLPs and LSTMs) or to scale features.

**What to look for:** no parameters and FLOPs 0 (element-wise products are not counted,
unlike a `MatMul`); the output's shape is the broadcast of both, so a `[B, T, 1]` gate
scales whole vectors and a `[B, T, D]` one each feature.
"""


class ConcatParams(BlockParams):
    dim: Int = Field(
        default=-1, description="Dimension to join along, counted with the batch (−1: last)."
    )


class Concat(Block):
    type = "Concat"
    category = "Merge"
    summary = "Joins a and b along one dimension: [B, 32] + [B, 16] → [B, 48]."
    explanation = """
**Concat** joins `a` and `b` along `dim` (as in `torch.cat`; 0 would be the batch, so pick 1
or later, or count from the end with −1). All other dimensions must match. Use it to combine
two branches that see the data differently, as in Inception or U-Net skip connections.

**What to look for:** the size along `dim` is the sum of both inputs' (`[B, 32]` and
`[B, 16]` give `[B, 48]`), and so are the activation bytes; a `Linear` after it takes that
wider input, with more parameters.
"""
    Params = ConcatParams
    inputs = ("a", "b")

    def construct(self, params: ConcatParams, inputs: Mapping[str, Incoming]) -> Ctor:
        a, b = inputs["a"], inputs["b"]
        _same_dtype(self, a, b)
        if a.spec.rank != b.spec.rank:
            raise Refusal(
                f"Concat needs inputs with the same number of dimensions, but a is "
                f"{a.spec.text()} and b is {b.spec.text()}: add a Reshape or Flatten on one side"
            )
        dim = resolve_dim(params.dim, a.spec)
        differ = [i for i, (da, db) in enumerate(zip(a.spec.shape, b.spec.shape, strict=True),
                                                 start=1) if da != db]
        if differ and differ != [dim]:
            wrong = [i for i in differ if i != dim]
            fix = (f"to join along dimension {wrong[0]}, set dim to {wrong[0]}" if len(differ) == 1
                   else "make the other dimensions equal first, e.g. with a Linear or Reshape")
            raise Refusal(
                f"Concat along dim {params.dim} needs every other dimension equal, but a is "
                f"{a.spec.text()} and b is {b.spec.text()} (dimension "
                f"{', '.join(map(str, wrong))} differs): {fix}", "dim" if len(differ) == 1 else None
            )
        return Ctor(layers.Concat, (params.dim,))
