"""The parts of attention, to build it yourself: MatMul, Transpose, Permute, Scale,
CausalMask, Slice. None holds weights; each is one line of PyTorch in its module."""

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from .. import layers
from .base import (
    Block,
    BlockParams,
    Bool,
    Ctor,
    Float,
    Incoming,
    Int,
    Refusal,
    need_float,
    resolve_dim,
    sole,
)

CATEGORY = "Attention parts"


class MatMulParams(BlockParams):
    transpose_a: Bool = Field(
        default=False, description="Swap the last two dimensions of a first (use aᵀ)."
    )
    transpose_b: Bool = Field(
        default=False, description="Swap the last two dimensions of b first (use bᵀ): "
        "q·kᵀ in attention."
    )


def _matrix(side: str, incoming: Incoming, transposed: bool) -> tuple[int, int]:
    """The (rows, cols) of one side as it enters the product."""
    if incoming.spec.rank < 2:
        raise Refusal(
            f"MatMul multiplies matrices, but {side} ({incoming.source}) gives "
            f"{incoming.spec.text()}, one vector per sample: give it at least two dimensions "
            "after the batch, e.g. [B, T, D] (a Reshape can add a dimension of size 1)")
    rows, cols = incoming.spec.shape[-2:]
    return (cols, rows) if transposed else (rows, cols)


class MatMul(Block):
    type = "MatMul"
    id_stem = "matmul"
    category = CATEGORY
    inputs = ("a", "b")
    summary = "Batched matrix product a·b over the last two dimensions (q·kᵀ, weights·v)."
    explanation = """
**MatMul** multiplies `a` by `b` as matrices over their last two dimensions, for every
sample and every other leading dimension (as `torch.matmul`): `[B, n, k] · [B, k, m] →
[B, n, m]`, and `[B, h, n, k] · [B, h, k, m] → [B, h, n, m]`. The inner sizes (`k`) must
agree. `transpose_a` / `transpose_b` swap a side's last two dimensions first.

In attention it is used twice: the scores `q · kᵀ` (`q` into `a`, `k` into `b`,
`transpose_b` on: `[B, T, d] · [B, d, T] → [B, T, T]`, how well each query matches each
key), and the output `weights · v` (`[B, T, T] · [B, T, d] → [B, T, d]`). Both inputs must
have the same number of dimensions, so that the batch lines up; the dimensions between the
batch and the last two must be equal or 1. No parameters.

**What to look for:** no parameters, but FLOPs `2·n·k·m` per product (per head with heads):
the scores `q · kᵀ` cost `2·T²·d` and take `T·T·4` bytes per head, both growing with `T²`.
"""
    Params = MatMulParams

    def construct(self, params: MatMulParams, inputs: Mapping[str, Incoming]) -> Ctor:
        a, b = inputs["a"], inputs["b"]
        need_float(self, a)
        need_float(self, b)
        if a.spec.dtype != b.spec.dtype:
            raise Refusal(
                f"MatMul needs both inputs of one dtype, but a ({a.source}) is "
                f"{a.spec.describe()} and b ({b.source}) is {b.spec.describe()}: give both "
                "Inputs the same dtype")
        n, k = _matrix("a", a, params.transpose_a)
        k_b, m = _matrix("b", b, params.transpose_b)
        if a.spec.rank != b.spec.rank:
            raise Refusal(
                f"MatMul needs a and b with the same number of dimensions, so that the batch "
                f"lines up, but a ({a.source}) is {a.spec.text()} and b ({b.source}) is "
                f"{b.spec.text()}: add a Reshape on one side")
        for i, (da, db) in enumerate(zip(a.spec.shape[:-2], b.spec.shape[:-2], strict=True),
                                     start=1):
            if da != db and 1 not in (da, db):
                raise Refusal(
                    f"MatMul pairs the matrices of a ({a.source}, {a.spec.text()}) and b "
                    f"({b.source}, {b.spec.text()}) along dimension {i}, but its sizes {da} "
                    f"and {db} differ: they must be equal, or 1 on one side")
        if k != k_b:
            a_side = "aᵀ" if params.transpose_a else "a"
            b_side = "bᵀ" if params.transpose_b else "b"
            field, fix = None, "a Linear before one side can change its size"
            if m == k:  # b the other way round fits
                field = "transpose_b"
            elif n == k_b:
                field = "transpose_a"
            if field is not None:
                fix = f"turn {field} {'off' if getattr(params, field) else 'on'}"
            raise Refusal(
                f"MatMul cannot multiply {a_side}, {n} × {k} matrices (a is {a.spec.text()} "
                f"from {a.source}), by {b_side}, {k_b} × {m} (b is {b.spec.text()} from "
                f"{b.source}): the inner sizes {k} and {k_b} must be equal; {fix}", field)
        return Ctor(layers.MatMul, (),
                    {"transpose_a": params.transpose_a, "transpose_b": params.transpose_b})


class TransposeParams(BlockParams):
    dim0: Int = Field(
        default=1, description="One dimension to swap, counted with the batch (1: the first "
        "after B; −1: the last)."
    )
    dim1: Int = Field(
        default=2, description="The other dimension to swap, counted the same way."
    )


class Transpose(Block):
    type = "Transpose"
    category = CATEGORY
    summary = "Swaps two dimensions: [B, T, h, d] → [B, h, T, d] with dims 1 and 2."
    explanation = """
**Transpose** swaps dimensions `dim0` and `dim1`, as `torch.transpose`. Dimensions are
counted with the batch, like `Softmax` and `Concat`: 1 is the first after `B`, −1 the last;
the batch itself (0) cannot move. With the defaults `[B, T, h, d]` becomes `[B, h, T, d]`:
how multi-head attention puts the heads beside the batch, so that one `MatMul` works on every
head at once. To reorder more than two dimensions, use `Permute`. No parameters.

**What to look for:** the output shape is the input's with the sizes at `dim0` and `dim1`
swapped; no parameters, FLOPs 0, and the same activation bytes as its input.
"""
    Params = TransposeParams

    def construct(self, params: TransposeParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        first = resolve_dim(params.dim0, x.spec, "dim0")
        second = resolve_dim(params.dim1, x.spec, "dim1")
        if first == second:
            raise Refusal(
                f"dim0 {params.dim0} and dim1 {params.dim1} are the same dimension of "
                f"{x.spec.text()}, so nothing would move: pick two different ones", "dim1")
        return Ctor(layers.Transpose, (params.dim0, params.dim1))


class PermuteParams(BlockParams):
    dims: tuple[Int, ...] = Field(
        default=(2, 1, 3), min_length=1,
        description="The dimensions after the batch in their new order, numbered 1..rank "
        "(the batch, 0, stays first and is not written): [2, 1, 3] turns [B, T, h, d] into "
        "[B, h, T, d]."
    )


class Permute(Block):
    type = "Permute"
    category = CATEGORY
    summary = "Reorders the dimensions after the batch: dims [2, 1, 3] swaps the first two."
    explanation = """
**Permute** reorders the dimensions of each sample, as `torch.permute`. `dims` lists the
dimensions after the batch in their new order, numbered from 1 as everywhere else (0 is the
batch): the batch always stays first and is not written. `[2, 1, 3]` turns `[B, T, h, d]`
into `[B, h, T, d]`, and `[2, 3, 1]` turns `[B, C, H, W]` into `[B, H, W, C]`. Writing
`[0, 2, 1, 3]` as in PyTorch is refused with the fix: leave the 0 out. No parameters.

**What to look for:** the output shape lists the input's sizes in the order of `dims`; no
parameters, FLOPs 0, and the same activation bytes as its input.
"""
    Params = PermuteParams

    def construct(self, params: PermuteParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        rank = x.spec.rank
        dims = params.dims
        if 0 in dims:
            fix = (f"leave the 0 out and write {list(dims[1:])}" if dims[0] == 0
                   else f"leave the 0 out: list only 1..{rank} in their new order")
            raise Refusal(
                f"dims {list(dims)} names the batch dimension 0, which always stays first "
                f"and is not written: {fix}", "dims")
        if sorted(dims) != list(range(1, rank + 1)):
            raise Refusal(
                f"dims {list(dims)} is not an order of the dimensions of {x.spec.text()}: "
                f"list each of 1..{rank} once (e.g. {list(range(rank, 0, -1))} reverses "
                "them)", "dims")
        return Ctor(layers.Permute, (dims,))


class ScaleParams(BlockParams):
    by: Literal["constant", "inverse_sqrt_dim"] = Field(
        default="inverse_sqrt_dim", description="constant: multiply by factor; "
        "inverse_sqrt_dim: divide by √d, d the size of dimension dim (attention's 1/√d)."
    )
    factor: Float = Field(default=1.0, description="The constant to multiply by (by constant "
                          "only).")
    dim: Int = Field(
        default=-1, description="The dimension whose size is d, counted with the batch "
        "(by inverse_sqrt_dim only; −1: the last)."
    )


class Scale(Block):
    type = "Scale"
    category = CATEGORY
    summary = "Multiplies by a constant, or by 1/√d: the scaling of attention scores."
    explanation = """
**Scale** multiplies every element by a number: by `factor` (with `by` constant), or by
`1/√d`, where `d` is the size of dimension `dim` of its input (with `by` inverse_sqrt_dim).

Attention divides its scores `q · kᵀ` by `√d`, `d` the size of a query vector (the head
size), so that they do not grow with `d` and the softmax after them does not saturate.
The scores are `[B, T, T]`, so `d` is not one of their sizes: put `Scale` on `q` before the
`MatMul` (`q / √d · kᵀ` is the same number), where `d` is its last dimension, or put it after
the `MatMul` with `by` constant and `factor` `1/√d` written out. No parameters.

**What to look for:** no parameters, FLOPs 0, the shape unchanged; with `inverse_sqrt_dim`
the factor is `1/√d` of the size `d` at `dim` in its input's shape: 0.125 for `d = 64`.
"""
    Params = ScaleParams

    def construct(self, params: ScaleParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        if params.by == "constant":
            return Ctor(layers.Scale, (params.factor,))
        resolve_dim(params.dim, x.spec)
        return Ctor(layers.Scale, (), {"dim": params.dim})


class CausalMaskParams(BlockParams):
    fill: Float | None = Field(
        default=None, description="The value put above the diagonal; null: −∞, which a "
        "Softmax after it turns into a weight of exactly 0."
    )


class CausalMask(Block):
    type = "CausalMask"
    id_stem = "mask"
    category = CATEGORY
    summary = "Hides the future: −∞ above the diagonal of [.., T, T] scores."
    explanation = """
**CausalMask** takes attention scores `[B, T, T]` (or `[B, h, T, T]`: rows are query
positions, columns key positions) and sets every entry above the diagonal, where a query
would look at a later position, to `−∞` (or to `fill`). A `Softmax` over the last
dimension after it gives those entries a weight of exactly 0, so each position attends only
to itself and the positions before it: what a GPT needs to learn to predict the next token
without seeing it. The last two dimensions must be equal. No parameters.

**What to look for:** no parameters, FLOPs 0, the shape unchanged. During a run the heatmap
of the `Softmax` after it must be empty above the diagonal: a position that attends to a
later one means the mask is missing or in the wrong place.
"""
    Params = CausalMaskParams

    def construct(self, params: CausalMaskParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        shape = x.spec.shape
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise Refusal(
                f"CausalMask takes square scores [B, …, T, T] (queries × keys), but {x.source} "
                f"gives {x.spec.text()}: feed it the product q·kᵀ (a MatMul with transpose_b "
                "on)")
        return Ctor(layers.CausalMask, (), {"fill": params.fill})


class SliceParams(BlockParams):
    dim: Int = Field(
        default=1, description="The dimension to cut, counted with the batch (1: the first "
        "after B; −1: the last)."
    )
    start: Int = Field(
        default=0, description="First index kept; negative counts from the end (as Python)."
    )
    end: Int | None = Field(
        default=None, description="Index to stop before; negative counts from the end; null: "
        "to the end."
    )
    step: Annotated[Int, Field(ge=1)] = Field(default=1, description="Keep every step-th "
                                              "index (1: all).")


class Slice(Block):
    type = "Slice"
    category = CATEGORY
    summary = "Keeps part of one dimension: x[:, start:end:step] along dim."
    explanation = """
**Slice** keeps the indices `start`, `start + step`, … before `end` along dimension `dim`,
as Python's `x[start:end:step]`: negative indices count from the end, and `end` null runs
to the end. `dim` is counted with the batch (1 is the first after `B`, −1 the last). With
`dim −1, start 0, end 16` a `[B, T, 48]` tensor becomes `[B, T, 16]`: the queries of a fused
`q, k, v` projection, say; `start −1` keeps the last position of a sequence. A slice that
keeps nothing is refused. No parameters.

**What to look for:** the output's size along `dim` is the number of indices kept, and the
activation bytes shrink in proportion (`[B, T, 48]` sliced 0 to 16 gives `[B, T, 16]`, a
third); no parameters and FLOPs 0.
"""
    Params = SliceParams

    def construct(self, params: SliceParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        dim = resolve_dim(params.dim, x.spec)
        size = x.spec.shape[dim - 1]
        kept = range(size)[params.start:params.end:params.step]
        if not kept:
            end = "the end" if params.end is None else str(params.end)
            raise Refusal(
                f"Slice from {params.start} to {end} with step {params.step} keeps nothing of "
                f"dimension {params.dim}, of size {size}, in {x.spec.text()}: pick a start "
                f"before the end, both within −{size}..{size}", "start")
        return Ctor(layers.Slice, (),
                    {"dim": dim, "start": params.start, "end": params.end, "step": params.step})
