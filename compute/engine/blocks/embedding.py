"""Embedding tables: token ids to vectors, and learned positions."""

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field
from torch import nn

from .. import layers
from .base import (
    SEQUENCE_FIX,
    Block,
    Ctor,
    Incoming,
    Int,
    Refusal,
    WeightInit,
    need_float,
    need_rank,
    sole,
)

Pos = Annotated[Int, Field(ge=1)]


class EmbeddingParams(WeightInit):
    num_embeddings: Pos = Field(default=256, description="Vocabulary size: ids run 0..n−1.")
    embedding_dim: Pos = Field(default=64, description="Length of each id's vector.")


class Embedding(Block):
    type = "Embedding"
    id_stem = "emb"
    category = "Embeddings"
    summary = "Looks up a learned vector for each integer id: [B, T] → [B, T, D]."
    explanation = """
**Embedding** is a table of `num_embeddings` learned vectors, each `embedding_dim` long. Every
integer id in the input (a token, a character, a category) is replaced by its row:
`[B, T]` ids become `[B, T, D]` vectors. Ids must lie in `0..num_embeddings − 1`.

It is how language models start: the vocabulary size is `num_embeddings`, the model width is
`embedding_dim`. Parameters: `num_embeddings · embedding_dim`. The input must be `int64`.

**What to look for:** parameters `num_embeddings · embedding_dim` but FLOPs 0, since a
lookup multiplies nothing. The vocabulary changes only its parameter count; `embedding_dim`
sets the width, and so the parameters and FLOPs, of every block after it.
"""
    Params = EmbeddingParams

    def construct(self, params: EmbeddingParams, inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        if x.spec.is_float:
            raise Refusal(
                f"Embedding expects integer ids (int64), but {x.source} gives "
                f"{x.spec.describe()}; set the Input's dtype to int64"
            )
        return Ctor(nn.Embedding, (params.num_embeddings, params.embedding_dim))


class PositionalEmbeddingParams(WeightInit):
    max_len: Pos = Field(default=256, description="Longest sequence the table covers.")


class PositionalEmbedding(Block):
    type = "PositionalEmbedding"
    id_stem = "pos"
    category = "Embeddings"
    summary = "Adds a learned vector for each position 0..T−1 to [B, T, D]."
    explanation = """
**PositionalEmbedding** keeps a learned table of `max_len` vectors and adds vector `t` to the
token at position `t`: `y[b, t] = x[b, t] + P[t]`. Attention by itself does not know word
order; this tells the model where each token sits. GPT-2 does exactly this.

The width `D` is taken from the input; sequences may be shorter than `max_len`, never
longer. Parameters: `max_len · D`.

**What to look for:** parameters `max_len · D` whatever the actual sequence length, so a
`max_len` far above `T` holds rows that training never uses; FLOPs 0, as adding a table is
not counted.
"""
    Params = PositionalEmbeddingParams

    def construct(self, params: PositionalEmbeddingParams,
                  inputs: Mapping[str, Incoming]) -> Ctor:
        x = sole(inputs)
        need_float(self, x)
        need_rank(self, x, (2,), "T, D", SEQUENCE_FIX if x.spec.rank == 1 else None)
        length, width = x.spec.shape
        if length > params.max_len:
            raise Refusal(
                f"the sequence from {x.source} has {length} positions, but max_len is "
                f"{params.max_len}; raise max_len to at least {length}", "max_len")
        return Ctor(layers.PositionalEmbedding, (params.max_len, width))
