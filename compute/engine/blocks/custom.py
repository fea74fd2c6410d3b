"""Custom: a saved graph used as a block ("My blocks"), pinned to one of its versions.

The node carries a copy of that version's nodes and edges as its nested `graph`, so a graph
file stays self-contained: the engine, the CLI and the exports read the copy and need no
database. The builder checks the copy against the stored version when a graph is saved.
The node's ports are its nested graph's Inputs and Outputs, by id and in listed order.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from .base import Block, BlockParams, Int

# A graph's id (a number) or a share link's token, after `share:`.
SOURCE_PATTERN = r"^(share:)?[A-Za-z0-9_-]{1,64}$"
MAX_NAME = 100


class CustomParams(BlockParams):
    source: Annotated[str, StringConstraints(strict=True, pattern=SOURCE_PATTERN)] = Field(
        description="The saved graph this block is: its id, or `share:` and the token of a "
        "share link to it.")
    version: Annotated[Int, Field(ge=1)] = Field(
        description="The version of that graph the block is pinned to.")
    name: Annotated[str, StringConstraints(strict=True, max_length=MAX_NAME)] = Field(
        default="", description="The title shown on the node, and the exported class's name.")


class Custom(Block):
    type = "Custom"
    id_stem = "myblock"
    category = "My blocks"
    summary = "A graph you saved (or one shared with you), used as one block."
    explanation = """
A **Custom** block is a saved graph used inside another, pinned to one of its versions:
its Inputs are the block's input ports and its Outputs its output ports, by id. The node
holds a copy of that version, so the file runs anywhere; a newer version of the original
changes nothing until you update the block. Its parameters and FLOPs are those of the graph
inside, and the exported PyTorch has one class per such block, reused by every node using it.

**What to look for:** its parameters and FLOPs are those of the graph inside, and each node
using the block has its own weights, so two such nodes count them twice.
"""
    Params = CustomParams
    holds_graph = True
    ports_from_graph = True
    inputs = ()
    outputs = ()

    def node_inputs(self, params: BlockParams | None, graph: Any) -> tuple[str, ...]:
        return tuple(n.id for n in graph.inputs) if graph is not None else ()

    def node_outputs(self, params: BlockParams | None, graph: Any) -> tuple[str, ...]:
        return tuple(n.id for n in graph.outputs) if graph is not None else ()
