"""Repeat: a nested graph run several times in sequence, each copy with its own weights.

The builder handles the nested graph itself (it is a graph, not a module recipe); this
block supplies the parameters, the ports and the explanation.
"""

from typing import Annotated

from pydantic import Field

from .base import Block, BlockParams, Int

MAX_TIMES = 1024


class RepeatParams(BlockParams):
    times: Annotated[Int, Field(ge=1, le=MAX_TIMES)] = Field(
        default=2, description="How many copies run one after the other."
    )


class Repeat(Block):
    type = "Repeat"
    id_stem = "blocks"
    category = "Structure"
    summary = "Runs the graph inside it `times` times in a row, each copy with its own weights."
    explanation = """
**Repeat** holds a small graph (one `Input`, one `Output`) and runs `times` copies of it one
after the other, each with its own weights. The shape that leaves must equal the shape that
enters, so the copies chain. This is how a transformer's stack of identical blocks is drawn
once and counted twelve times; its parameters and FLOPs are `times` × those of one copy.

**What to look for:** its parameters and FLOPs are exactly `times` × one copy's (the SQL
`nodes` table gives a nested node's per copy). After training, the `tensors` table names
each copy (`blocks.0.attn`, `blocks.1.attn`, …), so you can compare the copies' `std`.
"""
    Params = RepeatParams
    holds_graph = True
