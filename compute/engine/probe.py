"""What a trained model does to the data: the values on every edge for one example
(`edge_values`), and what a character model predicts after a prompt (`next_chars`).

`edge_values` runs the compiled `torch.fx` module node by node (an fx `Interpreter`) and
keeps, for every value a node gives, its shape and a summary: a histogram, mean, standard
deviation and the share of exact zeros (a dead ReLU gives only zeros). Values are keyed as
edges name their source: `node.port` (`hidden.out`, `qkv.k`).

`next_chars` reads the last `T` characters of a prompt (T: the model's Input), and gives
the likeliest next characters and, per attention module and head, the weights the last
position gave the prompt's positions. Both are one forward pass of one example, in eval
mode, without gradients. No Django here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch import nn
from typing_extensions import TypedDict  # pydantic reads the schema from it (Python < 3.12)

from .datasets import TEXT_VOCAB, Dataset, decode_text
from .export import compiled_info
from .graph import Endpoint, Graph
from .training import capture_attention

BINS = 30  # a histogram's bins
MAX_COUNTED = 1 << 22  # values a summary reads; of a larger tensor, a seeded random sample
MAX_TOP = 20  # the most next characters `next_chars` lists
MAX_HEAD_ROWS = 256  # the most (module, head) rows `next_chars` gives


class ProbeError(ValueError):
    """A model or an input that a probe cannot read, in one sentence for the user."""


class DivergedError(ProbeError):
    """The model's weights give scores that are not numbers (NaN, infinity): no input fixes
    that."""


class Histogram(TypedDict):
    edges: list[float]  # BINS + 1 bin edges, ascending; [v, v] for a constant
    counts: list[int]  # values in each bin (the last bin includes its right edge)


class EdgeStats(TypedDict):
    shape: list[int]  # the whole tensor's, the batch of one first
    dtype: str
    histogram: Histogram  # of the finite values
    mean: float | None  # None when no value is finite
    std: float | None  # population standard deviation (correction 0)
    zeros: float  # share of exact zeros among the values counted, 0 to 1
    nonfinite: int  # NaN and ±inf values counted, left out of the figures above
    counted: int  # values the figures are from: all, or a random MAX_COUNTED of them


def summarize(t: torch.Tensor, bins: int = BINS) -> EdgeStats:
    """The figures of one tensor (any dtype): shape, histogram, mean, std, zeros. A tensor
    of more than MAX_COUNTED values is summarized from MAX_COUNTED of them drawn at random
    (seeded: the same ones every time; at random, not every k-th, which a periodic layout
    such as channels would bias)."""
    values = t.detach().reshape(-1)
    if values.numel() > MAX_COUNTED:
        pick = torch.randint(values.numel(), (MAX_COUNTED,),
                             generator=torch.Generator().manual_seed(0))
        values = values[pick.to(values.device)]
    values = values.cpu()
    values = values.double() if values.dtype != torch.float32 else values
    count = values.numel()
    finite = values[torch.isfinite(values)]
    zeros = float((values == 0).sum()) / count if count else 0.0
    histogram: Histogram = {"edges": [], "counts": []}
    mean = std = None
    if finite.numel():
        lo, hi = float(finite.min()), float(finite.max())
        mean = float(finite.mean(dtype=torch.float64))
        std = float(finite.double().std(correction=0))
        if lo == hi:
            histogram = {"edges": [lo, hi], "counts": [finite.numel()]}
        else:
            # In float64: float32's hi - lo overflows for values near its largest (a
            # model about to diverge), and the bin edges became inf and NaN.
            counts, edges = torch.histogram(finite.double(), bins=bins, range=(lo, hi))
            histogram = {"edges": [float(e) for e in edges],
                         "counts": [int(c) for c in counts]}
    return {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
            "histogram": histogram, "mean": mean, "std": std, "zeros": zeros,
            "nonfinite": count - finite.numel(), "counted": count}


def _endpoints(graph: Graph, module: torch.fx.GraphModule) -> dict[str, Endpoint]:
    """fx node name → the graph's output port it computes (`materialize` names them: a
    placeholder or a call_module by node id, a port of several outputs by getitem)."""
    ports = {n.id: n.output_ports for n in graph.nodes if n.type not in ("Output", "Init")}
    calls = {n.name: n.target for n in module.graph.nodes}
    found: dict[str, Endpoint] = {}
    for fx_node in module.graph.nodes:
        if fx_node.op in ("placeholder", "call_module") and fx_node.target in ports:
            node_id = str(fx_node.target)
            if len(ports[node_id]) == 1:
                found[fx_node.name] = Endpoint(node_id, ports[node_id][0])
        elif fx_node.op == "call_function" and len(fx_node.args) == 2:
            source, index = fx_node.args
            owner = calls.get(getattr(source, "name", ""))
            if owner in ports and isinstance(index, int) and index < len(ports[str(owner)]):
                found[fx_node.name] = Endpoint(str(owner), ports[str(owner)][index])
    return found


class _Keeper(torch.fx.Interpreter):
    """Runs the module and summarizes each value that is an edge's, as it is made (so
    that no value outlives the node that reads it last, as in a plain forward)."""

    def __init__(self, module: torch.fx.GraphModule, wanted: Mapping[str, Endpoint]) -> None:
        super().__init__(module)
        self.wanted = wanted
        self.kept: dict[str, EdgeStats] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        out = super().run_node(n)
        endpoint = self.wanted.get(n.name)
        if endpoint is not None and isinstance(out, torch.Tensor):
            self.kept[str(endpoint)] = summarize(out)
        return out


@torch.no_grad()
def edge_values(graph: Graph, model: nn.Module, example: torch.Tensor | Mapping[str, Any]
                ) -> dict[str, EdgeStats]:
    """{`node.port`: figures} for the value every top-level node gives on `example` (a
    batch of one: a tensor for a model of one Input, or {Input id: tensor}), in eval mode.
    A Repeat's or a block's inside is one value, what it gives."""
    if not isinstance(model, torch.fx.GraphModule):
        raise ProbeError("this model was not made by compile_graph")
    wanted = _endpoints(graph, model)
    inputs = [n.id for n in graph.inputs]
    if isinstance(example, torch.Tensor):
        if len(inputs) != 1:
            raise ProbeError(f"the model has {len(inputs)} Inputs: give one tensor each")
        args = [example]
    else:
        missing = [i for i in inputs if i not in example]
        if missing:
            raise ProbeError(f"no value for Input {missing[0]!r}")
        args = [example[i] for i in inputs]
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    keeper = _Keeper(model, wanted)
    try:
        keeper.run(*[a.to(device) for a in args])
    finally:
        model.train(was_training)
    order = {str(e): i for i, e in enumerate(wanted.values())}
    return dict(sorted(keeper.kept.items(), key=lambda kv: order[kv[0]]))


# What comes next.


@dataclass(frozen=True)
class Vocabulary:
    """A character model's tokens: ids 0..size-1, each one character."""

    size: int
    decode: Callable[[list[int]], str]

    @classmethod
    def text(cls) -> Vocabulary:
        """The characters of every text dataset (`datasets.text_dataset`): known without
        making one, which for a large text takes a while."""
        return cls(TEXT_VOCAB, decode_text)

    @classmethod
    def of(cls, data: Dataset) -> Vocabulary | None:
        """A text dataset's vocabulary; None for any other dataset."""
        if not data.text or data.decode is None or not data.info.vocab:
            return None
        return cls(data.info.vocab, data.decode)

    def chars(self) -> list[str]:
        return [self.decode([i]) for i in range(self.size)]

    def encode(self, text: str) -> list[int]:
        """Ids of `text`; ProbeError naming the characters that are not in it."""
        index: dict[str, int] = {}
        for i, c in enumerate(self.chars()):
            index.setdefault(c, i)
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ProbeError(f"the prompt has characters the model does not know: "
                             f"{shown}{more} (it knows {self.size} characters)")
        return [index[c] for c in text]


def context_length(model: nn.Module) -> int:
    """T: how many token ids the model's one Input takes; ProbeError for a model that does
    not read a sequence of ids."""
    graph = compiled_info(model).graph
    if len(graph.inputs) != 1:
        raise ProbeError("a next-character model has one Input")
    params = graph.inputs[0].params
    shape, dtype = getattr(params, "shape", None), getattr(params, "dtype", "")
    if not shape or len(shape) != 1 or dtype not in ("int64", "int32"):
        raise ProbeError("this model does not read a sequence of characters (its Input "
                         "is not [T] integer ids)")
    return int(shape[0])


class NextTop(TypedDict):
    char: str
    p: float


class NextHead(TypedDict):
    module: str  # the attention module's path (`blocks.0.attn`)
    head: int
    weights: list[float]  # what the last position gave each position of prompt_used
    tokens: list[str]  # prompt_used's characters, one per weight


class NextChars(TypedDict):
    prompt_used: str  # the characters the model read
    truncated: bool  # the prompt was longer than the model's context: its end was kept
    context: int  # T, the most characters the model reads
    top: list[NextTop]
    heads: list[NextHead]


@torch.no_grad()
def next_chars(model: nn.Module, vocab: Vocabulary | Dataset, prompt: str, k: int = 5
               ) -> NextChars:
    """The `k` likeliest characters after `prompt` (the last T of it), with their
    probabilities, and per attention module and head the weights of the last position
    over the positions read. ProbeError for an empty prompt, characters the model does not
    know, or a model that does not predict characters."""
    if isinstance(vocab, Dataset):
        found = Vocabulary.of(vocab)
        if found is None:
            raise ProbeError(f"{vocab.info.name} is not a text: only a character model "
                             "predicts the next character")
        vocab = found
    if not prompt:
        raise ProbeError("the prompt is empty: type at least one character")
    k = max(1, min(k, MAX_TOP, vocab.size))
    window = context_length(model)
    used = prompt[-window:]
    ids = vocab.encode(used)
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = torch.tensor([ids], dtype=torch.int64, device=device)
    was_training = model.training
    model.eval()
    try:
        out = model(x)
        maps = capture_attention(model, x, pool=False)
    except RuntimeError as exc:  # e.g. a model whose layers mix exactly T positions
        if len(ids) < window:
            raise ProbeError(f"this model reads exactly {window} characters and cannot read "
                             f"the {len(ids)} of the prompt: type at least {window}") from None
        raise ProbeError(f"the model could not read the prompt: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != (1, len(ids)):
        raise ProbeError("this model does not give a score per character at each position "
                         "([B, T, vocabulary])")
    if out.shape[-1] < vocab.size:
        raise ProbeError(f"the model scores {out.shape[-1]} characters, fewer than the "
                         f"{vocab.size} of its text")
    probs = out[0, -1].float().softmax(-1)[: vocab.size].cpu()
    if not bool(torch.isfinite(probs).all()):  # a score NaN or +inf (-inf is p = 0)
        raise DivergedError("the model's scores for the next character are not numbers "
                            "(NaN or infinity): its weights diverged, so it predicts nothing")
    p, index = probs.topk(k)
    top: list[NextTop] = [{"char": vocab.decode([int(i)]), "p": round(float(q), 6)}
                          for q, i in zip(p, index, strict=True)]
    tokens = [vocab.decode([i]) for i in ids]
    heads: list[NextHead] = []
    for path, weights in maps.items():
        if weights.shape[-1] != len(ids) or weights.shape[-2] != len(ids):
            continue  # not over the prompt's positions
        for h in range(weights.shape[0]):
            if len(heads) == MAX_HEAD_ROWS:
                break
            row = weights[h, -1].tolist()
            heads.append({"module": path, "head": h, "tokens": tokens,
                          "weights": [round(w, 5) if math.isfinite(w) else 0.0 for w in row]})
    return {"prompt_used": used, "truncated": len(used) < len(prompt), "context": window,
            "top": top, "heads": heads}


__all__ = [
    "BINS",
    "DivergedError",
    "EdgeStats",
    "NextChars",
    "ProbeError",
    "Vocabulary",
    "context_length",
    "edge_values",
    "next_chars",
    "summarize",
]
