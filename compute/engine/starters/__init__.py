"""Built-in starter graphs: valid graph files to begin from (see the JSON files beside this)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# name -> one line for menus, in the order the editor offers them.
STARTERS = {
    "mlp": "MLP for 8×8 digit images (64 pixels in, 10 classes out)",
    "cnn": "Small CNN for 8×8 digit images: two convolutions, pooling, a linear head",
    "resnet": "ResNet-style CNN: residual blocks with batch norm and Add",
    "transformer_classifier": "Transformer encoder that classifies a sequence of tokens",
    "char_gpt": "Character-level GPT: embeddings, 4 pre-norm transformer blocks, linear head",
    "llama": "Llama-style character model: RMSNorm, rotary grouped-query attention, SwiGLU",
}


# name -> the built-in dataset it trains on with the default settings (TrainConfig()).
STARTER_DATASETS = {
    "mlp": "digits",
    "cnn": "digits",
    "resnet": "digits",
    "transformer_classifier": "modadd",
    # 1.1 MB of text: the default run's validation loss falls to its end (the 4 KB harbour
    # text is learnt by heart within 50 steps, and its validation loss rises after).
    "char_gpt": "shakespeare",
    "llama": "harbour",
}


def starter_names() -> list[str]:
    return list(STARTERS)


@cache
def _text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")


def load_starter(name: str) -> dict[str, Any]:
    """A fresh copy of a starter's graph document."""
    if name not in STARTERS:
        raise KeyError(f"no starter named {name!r}; starters: {', '.join(STARTERS)}")
    document: dict[str, Any] = json.loads(_text(name))
    return document
