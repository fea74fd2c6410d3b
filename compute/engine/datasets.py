"""Datasets that ship with Shipyard (nothing is downloaded, ever), user uploads, and the
check that a dataset fits a graph.

Map of this file: the `Dataset` a training run reads; the built-in makers (digits, 2-D
points, token tasks, text); `DATASETS`, the registry as plain data; uploads (`csv_dataset`,
`text_dataset`); `dataset_for` (the view that fits a graph) and `check_fit`.

Every dataset yields `x` of one sample spec and `y` for one task kind:

- classification: `y` int64 [B], a class index; the model's Output is [B, classes]
- regression: `y` float32 [B, k]; the Output is [B, k]
- next_token: `y` int64 [B, T], the token each position must predict, or `IGNORE` (-100,
  cross-entropy's default ignore index) where nothing is asked; the Output is
  [B, T, vocab] (or wider than vocab)

The token tasks (copy, reverse, sort, modadd) use symbols `0..k-1` plus two more ids:
`SEP = k` (shown `=`) and `PAD = k + 1` (shown `.`), so their vocabulary is k + 2. A problem
is n symbols (for modadd, the two numbers a and b), its answer is n symbols (one for
modadd: (a + b) mod p). A model reading T tokens sees them in one of two views, picked by
its Output:

- next_token (Output [B, T, V], e.g. char_gpt): the model reads
  `problem = answer[:-1]` then PAD, and is asked for the answer at the positions after `=`
  (position n predicts answer[0], ...). Everything else is IGNORE. This is how a causal
  model (minGPT's sort demo) learns it: it writes the answer one token after another.
- classification (Output [B, classes], e.g. transformer_classifier): the model reads
  `problem =` then PAD, and the class is the first token of the answer: copy gives the
  first symbol, reverse the last, sort the smallest, modadd (a + b) mod p.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, TypedDict

import torch
from torch import nn

from .blocks import TensorSpec
from .build import DTYPES, Analysis
from .graph import Graph

Task = Literal["classification", "regression", "next_token"]
TASKS: tuple[Task, ...] = ("classification", "regression", "next_token")
# What a dataset's samples are: characters of a text, symbol tokens, images, points in the
# plane, or rows of a table. The editor shows text samples for text.
Kind = Literal["text", "tokens", "image", "points", "table"]
KINDS: tuple[Kind, ...] = ("text", "tokens", "image", "points", "table")

IGNORE = -100  # a target position that asks nothing (F.cross_entropy's ignore_index)
VAL_FRACTION = 0.2  # the share of a dataset held out for validation

# Uploads: refused beyond these, with a sentence that says which limit.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 1_000
MAX_CSV_CLASSES = 1_000
MIN_CSV_ROWS = 10  # fewer cannot be split into training and validation sensibly
TEXT_VOCAB = 128  # ASCII: a character's id is its code point; anything else becomes '?'
MAX_TEXT_WINDOW_TOKENS = 4_000_000  # windows × length kept in memory for a text dataset

# Token tasks: what a caller may ask for.
MAX_SYMBOLS = 1_000
DEFAULT_PROBLEM_LENGTH = 8


class DatasetError(ValueError):
    """A dataset that cannot be made or read, in words."""


class FitError(DatasetError):
    """A dataset that does not fit a graph; `problems` holds one sentence per mismatch."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str  # one line for people: what it is, in this view
    task: Task
    classes: int | None = None  # classification
    vocab: int | None = None  # token ids in x (integer inputs) and in next_token targets
    targets: int | None = None  # regression: values per sample


@dataclass
class Dataset:
    """Tensors in memory, split once: `x_*` [N, *spec.shape], `y_*` as the task says."""

    info: DatasetInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    decode: Callable[[list[int]], str] | None = field(default=None, repr=False)
    text: bool = False  # characters of a text: samples of generated text make sense
    # What the dataset's manifest says about it (compute/engine/manifest.py): the classes'
    # names in index order, every step from the bytes to the tensors, and the split rule
    # (empty: `split_rule(seed)`, the shuffled split of `_split`).
    labels: tuple[str, ...] | None = None
    preprocessing: tuple[str, ...] = ()
    split: str = ""

    @property
    def spec(self) -> TensorSpec:
        """What one sample of `x` is."""
        return TensorSpec(tuple(self.x_train.shape[1:]), _dtype_name(self.x_train.dtype))

    @property
    def target_spec(self) -> TensorSpec:
        """What one sample of `y` is."""
        return TensorSpec(tuple(self.y_train.shape[1:]), _dtype_name(self.y_train.dtype))

    def describe(self) -> str:
        return f"{self.info.name} gives {self.spec.describe()}"


def _dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def split_rule(seed: int) -> str:
    """`_split` in words."""
    return (f"samples shuffled (torch.randperm, seed {seed}); the first "
            f"{VAL_FRACTION:.0%} of the shuffled order (at least one) validate, the rest train")


def _split(x: torch.Tensor, y: torch.Tensor, seed: int) -> Split:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(x) * VAL_FRACTION))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


@dataclass(frozen=True)
class View:
    """What the graph wants, where known: one sample of its Input and of its Output."""

    input: TensorSpec | None = None
    output: TensorSpec | None = None

    @property
    def length(self) -> int | None:
        """Tokens the model reads, for a model that reads a sequence of token ids."""
        if self.input is not None and self.input.rank == 1 and not self.input.is_float:
            return self.input.shape[0]
        return None

    @property
    def wants(self) -> Task | None:
        """The token view the Output asks for: [C] classes, or [T, V] a token per position."""
        if self.output is None:
            return None
        return {1: "classification", 2: "next_token"}.get(self.output.rank)  # type: ignore[return-value]


def _check_option(name: str, value: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DatasetError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


# Built-in datasets: each maker takes the View and a seed, and its own options.


def _digits(view: View, seed: int) -> Dataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0  # pixels 0..16 -> 0..1
    steps = ["read scikit-learn's digits.csv.gz (load_digits): 64 pixel values 0..16 and "
             "the digit, per row", "pixels scaled to 0..1 (divided by 16), as float32"]
    if view.input is not None and view.input.shape in ((1, 8, 8), (8, 8)):
        x = x.reshape(-1, *view.input.shape)
        steps.append(f"each image reshaped to {list(view.input.shape)}")
    y = torch.tensor(bunch.target, dtype=torch.int64)
    info = DatasetInfo("digits", "8×8 handwritten digits (1797 images, 10 classes)",
                       "classification", classes=10)
    return Dataset(info, *_split(x, y, seed), labels=tuple(str(d) for d in range(10)),
                   preprocessing=(*steps, "the class is the digit 0..9"))


def _moons(view: View, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    n = 1000
    t = torch.rand(n, generator=gen) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.cat([upper, lower]) + 0.1 * torch.randn(2 * n, 2, generator=gen)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    info = DatasetInfo("moons", "Two interleaved half circles (2000 2-D points, 2 classes)",
                       "classification", classes=2)
    return Dataset(info, *_split(x, y, seed), labels=("upper", "lower"), preprocessing=(
        f"generated (seed {seed}): 1000 points on an upper half circle (class 0) and 1000 "
        "on a lower one shifted by (1, 0.5) (class 1), angles uniform in 0..pi",
        "gaussian noise of std 0.1 added to both coordinates; not rescaled"))


def _circles(view: View, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    n = 1000
    angle = torch.rand(2 * n, generator=gen) * 2 * math.pi
    radius = torch.cat([torch.full((n,), 1.0), torch.full((n,), 0.5)])
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    x = x + 0.08 * torch.randn(2 * n, 2, generator=gen)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    info = DatasetInfo("circles", "A ring around a smaller ring (2000 2-D points, 2 classes)",
                       "classification", classes=2)
    return Dataset(info, *_split(x, y, seed), labels=("outer", "inner"), preprocessing=(
        f"generated (seed {seed}): 1000 points on a circle of radius 1 (class 0) and 1000 "
        "on one of radius 0.5 (class 1), angles uniform",
        "gaussian noise of std 0.08 added to both coordinates; not rescaled"))


def _spirals(view: View, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    n, arms = 600, 3
    xs, ys = [], []
    for arm in range(arms):
        r = torch.linspace(0.05, 1.0, n)
        angle = r * 4 + arm * 2 * math.pi / arms + 0.2 * torch.randn(n, generator=gen)
        xs.append(torch.stack([r * torch.sin(angle), r * torch.cos(angle)], 1))
        ys.append(torch.full((n,), arm))
    info = DatasetInfo("spirals", "Three interleaved spirals (1800 2-D points, 3 classes)",
                       "classification", classes=3)
    return Dataset(info, *_split(torch.cat(xs), torch.cat(ys).long(), seed),
                   labels=("arm 0", "arm 1", "arm 2"), preprocessing=(
                       f"generated (seed {seed}): 600 points on each of 3 spiral arms "
                       "(the class is the arm), radius 0.05..1, angle noise of std 0.2",
                       "not rescaled"))


SYMBOL_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def token_decoder(symbols: int) -> Callable[[list[int]], str]:
    """Shows a token task's ids: symbols as 0-9a-zA-Z (or <id> past 62), `=` and `.`
    (a partial, not a closure: a dataset pickles for a multi-GPU run's processes)."""
    return functools.partial(_decode_tokens, symbols)


def _decode_tokens(symbols: int, ids: list[int]) -> str:
    def one(i: int) -> str:
        if i == symbols:
            return "="
        if i == symbols + 1:
            return "."
        if 0 <= i < len(SYMBOL_CHARS) and symbols <= len(SYMBOL_CHARS):
            return SYMBOL_CHARS[i]
        return f"<{i}>"

    return "".join(one(i) for i in ids)


def _token_dataset(name: str, title: str, problems: torch.Tensor, answers: torch.Tensor,
                   symbols: int, view: View, default: Task, seed: int, made: str) -> Dataset:
    """Lay problems [N, n] and answers [N, A] out as the view asks (see the module doc)."""
    task = view.wants or default
    n, a = problems.shape[1], answers.shape[1]
    sep, pad = symbols, symbols + 1
    need = n + 1 if task == "classification" else n + a
    length = view.length or need
    if length < need:
        raise DatasetError(
            f"{name} with problems of {n} symbols needs {need} positions, but the model reads "
            f"{length} tokens; ask for shorter problems (length)")
    x = torch.full((len(problems), length), pad, dtype=torch.int64)
    x[:, :n] = problems
    x[:, n] = sep
    decode = token_decoder(symbols)
    steps = [f"generated: {made}, symbol ids 0..{symbols - 1}; answers of {a} symbol(s)"]
    if task == "classification":
        y = answers[:, 0].clone()
        info = DatasetInfo(name, title, "classification", classes=symbols, vocab=symbols + 2)
        steps += [f"each sample is the problem, '=' (id {sep}), then '.' (PAD, id {pad}) up "
                  f"to {length} tokens", "the class is the answer's first symbol"]
        labels = tuple(decode([i]) for i in range(symbols))
    else:
        x[:, n + 1:n + a] = answers[:, :-1]
        y = torch.full((len(problems), length), IGNORE, dtype=torch.int64)
        y[:, n:n + a] = answers
        info = DatasetInfo(name, title, "next_token", vocab=symbols + 2)
        steps += [f"each sample is the problem, '=' (id {sep}), the answer but its last "
                  f"symbol, then '.' (PAD, id {pad}) up to {length} tokens",
                  f"targets: the answer at the positions from '=' on; {IGNORE} (asks "
                  "nothing) everywhere else"]
        labels = None
    return Dataset(info, *_split(x, y, seed), decode=decode, labels=labels,
                   preprocessing=tuple(steps))


def _problem_length(view: View, length: int | None, answer_is_problem: bool) -> int:
    """The default: 8 symbols, fewer when the model reads too few tokens for 8."""
    if length is not None:
        return _check_option("length", length, 1, 4096)
    if view.length is None:
        return DEFAULT_PROBLEM_LENGTH
    room = view.length // 2 if answer_is_problem and view.wants != "classification" else (
        view.length - 1)
    return max(1, min(DEFAULT_PROBLEM_LENGTH, room))


def _symbol_task(name: str, what: str, answer: Callable[[torch.Tensor], torch.Tensor]
                 ) -> Callable[..., Dataset]:
    def make(view: View, seed: int, symbols: int = 10, length: int | None = None,
             samples: int = 5000) -> Dataset:
        _check_option("symbols", symbols, 2, MAX_SYMBOLS)
        _check_option("samples", samples, 10, 1_000_000)
        n = _problem_length(view, length, answer_is_problem=True)
        gen = torch.Generator().manual_seed(seed)
        problems = torch.randint(0, symbols, (samples, n), generator=gen)
        title = f"{what} {n} symbols of {symbols}"
        return _token_dataset(name, title, problems, answer(problems), symbols, view,
                              "next_token", seed, made=f"{samples} problems of {n} random "
                              f"symbols (seed {seed})")

    return make


def _modadd(view: View, seed: int, modulus: int = 10) -> Dataset:
    _check_option("modulus", modulus, 2, MAX_SYMBOLS)
    a, b = torch.meshgrid(torch.arange(modulus), torch.arange(modulus), indexing="ij")
    problems = torch.stack([a.flatten(), b.flatten()], 1)  # every pair once
    answers = (problems.sum(1, keepdim=True)) % modulus
    title = f"a + b mod {modulus}: every pair, held-out pairs for validation"
    return _token_dataset("modadd", title, problems, answers, modulus, view,
                          "classification", seed, made=f"every pair (a, b) of 0..{modulus - 1} "
                          "once as a problem")


def encode_text(text: str) -> torch.Tensor:
    """ASCII ids; any other character becomes '?'."""
    return torch.tensor([ord(c) if ord(c) < TEXT_VOCAB else ord("?") for c in text],
                        dtype=torch.int64)


def decode_text(ids: list[int]) -> str:
    return "".join(chr(i) if 0 <= i < TEXT_VOCAB else "?" for i in ids)


def text_dataset(text: str, view: View | None = None, *, name: str = "text",
                 title: str = "uploaded text (next character)", seed: int = 0) -> Dataset:
    """Next-character prediction: windows of T characters, targets shifted by one. The
    last part of the text is held out for validation (a later passage, not shuffled in)."""
    if len(text.encode("utf-8")) > MAX_UPLOAD_BYTES:
        raise DatasetError(f"{name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    view = view or View()
    length = view.length or 64
    ids = encode_text(text)
    cut = int(len(ids) * (1 - VAL_FRACTION))
    need = math.ceil((length + 2) / VAL_FRACTION)
    if len(ids) < need:
        raise DatasetError(f"{name} has {len(ids):,} characters; a model reading {length} at "
                           f"a time needs at least {need:,}")
    stride = max(1, math.ceil(len(ids) * length / MAX_TEXT_WINDOW_TOKENS))

    def windows(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.arange(0, len(part) - length, stride)
        index = starts[:, None] + torch.arange(length)
        return part[index], part[index + 1]

    x_train, y_train = windows(ids[:cut])
    x_val, y_val = windows(ids[cut:])
    del seed  # the split is by position, not random: nothing to seed
    info = DatasetInfo(name, title, "next_token", vocab=TEXT_VOCAB)
    steps = (f"each character becomes its ASCII code point as its id (vocabulary "
             f"{TEXT_VOCAB}); any other character becomes '?' (id {ord('?')})",
             f"cut into windows of {length} characters starting every {stride} "
             f"character(s); each position's target is the character after it")
    split = (f"by position, not shuffled: characters 0..{cut - 1:,} (the first "
             f"{1 - VAL_FRACTION:.0%}, {cut:,} characters) train, the last {len(ids) - cut:,} "
             "validate; windows are cut within each side")
    return Dataset(info, x_train, y_train, x_val, y_val, decode=decode_text, text=True,
                   preprocessing=steps, split=split)


def _corpus(name: str, file: str, title: str) -> Callable[..., Dataset]:
    def make(view: View, seed: int) -> Dataset:
        text = resources.files(__package__).joinpath(f"data/{file}").read_text("utf-8")
        return text_dataset(text, view, name=name, seed=seed, title=title)

    return make


# The registry, as plain data: what the API lists and the CLI offers.


class DatasetListing(TypedDict):
    """A registry entry as the API lists it (its `Dataset` schema)."""

    name: str
    kind: Kind
    description: str
    tasks: list[Task]
    gives: str
    options: dict[str, str]
    source: str
    licence: str


GENERATED = "generated by Shipyard (compute/engine/datasets.py)"
PROJECT_LICENCE = "Apache-2.0"  # the project's own (LICENSE)
SHAKESPEARE_SOURCE = "https://github.com/karpathy/char-rnn/tree/master/data/tinyshakespeare"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: Kind
    description: str
    tasks: tuple[Task, ...]  # the kinds it can serve; the graph's Output picks among several
    gives: str  # what it gives, in words: shapes, dtypes, classes or vocabulary
    make: Callable[..., Dataset] = field(repr=False)
    options: dict[str, str] = field(default_factory=dict)  # keyword option: what it does
    # Where it comes from and under which licence, for its manifest (manifest.py).
    source: str = GENERATED
    citation: str = ""
    licence: str = PROJECT_LICENCE
    file: str = ""  # the packaged file it reads (data/...), whose bytes its manifest hashes

    def to_dict(self) -> DatasetListing:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "tasks": list(self.tasks), "gives": self.gives, "options": dict(self.options),
                "source": self.source, "licence": self.licence}


_SYMBOL_OPTIONS = {"symbols": "how many different symbols (default 10; vocabulary symbols+2)",
                   "length": "symbols per problem (default 8, fewer if the model reads less)",
                   "samples": "how many problems (default 5000)"}
_TOKEN_GIVES = ("int64 [B, T] tokens (T: the model's Input), vocabulary symbols+2; as "
                "next_token: int64 [B, T] targets; as classification: int64 [B], symbols classes")

DATASETS: dict[str, DatasetEntry] = {e.name: e for e in [
    DatasetEntry("digits", "image", "8×8 handwritten digits from scikit-learn (1797 images)",
                 ("classification",),
                 "float32 [B, 64] or [B, 1, 8, 8] (whichever the model's Input takes), "
                 "pixels 0..1; 10 classes", _digits,
                 source="https://archive.ics.uci.edu/dataset/80/optical+recognition+of+"
                        "handwritten+digits",
                 citation="Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of "
                          "Handwritten Digits. UCI Machine Learning Repository. "
                          "https://doi.org/10.24432/C50P49 (the copy bundled with "
                          "scikit-learn, sklearn.datasets.load_digits)",
                 licence="CC-BY-4.0"),
    DatasetEntry("moons", "points", "two interleaved half circles", ("classification",),
                 "float32 [B, 2]; 2 classes", _moons),
    DatasetEntry("circles", "points", "a ring around a smaller ring", ("classification",),
                 "float32 [B, 2]; 2 classes", _circles),
    DatasetEntry("spirals", "points", "three interleaved spirals", ("classification",),
                 "float32 [B, 2]; 3 classes", _spirals),
    DatasetEntry("copy", "tokens", "give the problem's symbols back",
                 ("next_token", "classification"),
                 _TOKEN_GIVES, _symbol_task("copy", "copy", lambda p: p.clone()),
                 _SYMBOL_OPTIONS),
    DatasetEntry("reverse", "tokens", "give the symbols back reversed",
                 ("next_token", "classification"),
                 _TOKEN_GIVES, _symbol_task("reverse", "reverse", lambda p: p.flip(1)),
                 _SYMBOL_OPTIONS),
    DatasetEntry("sort", "tokens", "give the symbols back sorted", ("next_token", "classification"),
                 _TOKEN_GIVES,
                 _symbol_task("sort", "sort", lambda p: p.sort(dim=1).values),
                 _SYMBOL_OPTIONS),
    DatasetEntry("modadd", "tokens", "tokens a, b, '=': the answer is (a + b) mod p",
                 ("classification", "next_token"),
                 "int64 [B, T] tokens, vocabulary p+2; as classification: int64 [B], "
                 "p classes; as next_token: int64 [B, T] targets", _modadd,
                 {"modulus": "p (default 10)"}),
    DatasetEntry("harbour", "text", "The Harbour Log: 4 KB of original English prose",
                 ("next_token",),
                 "int64 [B, T] characters (ASCII ids, vocabulary 128); int64 [B, T] "
                 "next characters",
                 _corpus("harbour", "harbour.txt",
                         "The Harbour Log, a small English text (next character)"),
                 source="written for Shipyard (compute/engine/data/harbour.txt)",
                 file="harbour.txt"),
    DatasetEntry("shakespeare", "text",
                 "tiny Shakespeare: 40,000 lines of the plays (public domain, 1.1 MB)",
                 ("next_token",),
                 "int64 [B, T] characters (ASCII ids, vocabulary 128); int64 [B, T] "
                 "next characters",
                 _corpus("shakespeare", "shakespeare.txt",
                         "tiny Shakespeare, the plays (next character)"),
                 source=SHAKESPEARE_SOURCE,
                 citation="Andrej Karpathy (2015), char-rnn: data/tinyshakespeare/input.txt, "
                          "about 40,000 lines of Shakespeare's plays",
                 licence="Public domain (the plays' text)", file="shakespeare.txt"),
    DatasetEntry("sonnets", "text", "eleven of Shakespeare's sonnets (public domain, 7 KB)",
                 ("next_token",),
                 "int64 [B, T] characters (ASCII ids, vocabulary 128); int64 [B, T] "
                 "next characters",
                 _corpus("sonnets", "sonnets.txt",
                         "Shakespeare's sonnets, a few of them (next character)"),
                 source="Shakespeare's Sonnets, first printed in 1609 "
                        "(compute/engine/data/sonnets.txt)",
                 citation="William Shakespeare (1609), Sonnets",
                 licence="Public domain", file="sonnets.txt"),
]}


def dataset_names() -> list[str]:
    return list(DATASETS)


def make_dataset(name: str, input: TensorSpec | None = None, output: TensorSpec | None = None,
                 *, seed: int = 0, **options: Any) -> Dataset:
    """A built-in dataset in the view that fits a model whose Input takes `input` and whose
    Output gives `output` (one sample each), where it can; either may be left out."""
    entry = DATASETS.get(name)
    if entry is None:
        raise DatasetError(f"no dataset named {name!r}; datasets: {', '.join(DATASETS)}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        takes = ", ".join(entry.options) or "no options"
        raise DatasetError(f"{name} has no option {unknown[0]!r}; it takes {takes}")
    return entry.make(View(input, output), seed, **options)


# Graphs: what they take and give, and whether a dataset fits.


GraphLike = Graph | nn.Module | dict[str, Any] | str


def _graph_analysis(source: GraphLike) -> tuple[Graph, Analysis]:
    from . import load_graph  # the package imports this module's users, not this module
    from .export import compiled_info

    if isinstance(source, nn.Module):
        info = compiled_info(source)
        return info.graph, info.analysis
    graph = load_graph(source)
    return graph, graph.analysis


def graph_view(source: GraphLike) -> View:
    """The graph's Input and Output, when it has one of each."""
    graph, analysis = _graph_analysis(source)
    view_in = view_out = None
    if len(graph.inputs) == 1:
        params = graph.inputs[0].params
        view_in = TensorSpec(tuple(params.shape), params.dtype)  # type: ignore[union-attr]
    if len(graph.outputs) == 1:
        result = analysis.nodes.get(graph.outputs[0].id)
        if result is not None and "in" in result.inputs:
            view_out = result.inputs["in"]
    return View(view_in, view_out)


def dataset_for(source: GraphLike, name: str, *, seed: int = 0, **options: Any) -> Dataset:
    """The built-in dataset `name` in the view that fits the graph (a Graph, a graph
    document or path, or a module from `compile_graph`)."""
    view = graph_view(source)
    return make_dataset(name, view.input, view.output, seed=seed, **options)


def check_fit(graph: GraphLike, dataset: Dataset) -> list[str]:
    """Every way `dataset` cannot train `graph`, one sentence each; empty when it fits."""
    graph, analysis = _graph_analysis(graph)
    inputs, outputs = graph.inputs, graph.outputs
    problems = []
    if len(inputs) != 1:
        problems.append(f"a dataset feeds one Input, but the model has {len(inputs)}")
    if len(outputs) != 1:
        problems.append(f"training needs one Output, but the model has {len(outputs)}")
    if problems:
        return problems
    node, info, name = inputs[0], dataset.info, dataset.info.name
    wanted = TensorSpec(tuple(node.params.shape), node.params.dtype)  # type: ignore[union-attr]
    if dataset.spec != wanted:
        problems.append(f"{dataset.describe()}, but Input '{node.id}' expects "
                        f"{wanted.describe()}")
    out_id = outputs[0].id
    out = analysis.nodes[out_id].inputs.get("in")
    if out is None:
        return [*problems, f"Output '{out_id}' receives nothing"]
    gets = f"Output '{out_id}' gives {out.text()}"
    if info.task == "classification":
        if out.rank != 1:
            problems.append(f"{name} has {info.classes} classes, so the model should output "
                            f"[B, {info.classes}], but {gets}")
        elif out.shape[0] != info.classes:
            problems.append(f"the model outputs {out.shape[0]} classes, but {name} has "
                            f"{info.classes}: {_widen(graph, out_id, info.classes)}")
    elif info.task == "regression":
        if out.rank != 1:
            problems.append(f"{name} has {info.targets} target value(s), so the model should "
                            f"output [B, {info.targets}], but {gets}")
        elif out.shape[0] != info.targets:
            problems.append(f"the model outputs {out.shape[0]} values, but {name} has "
                            f"{info.targets} target value(s): "
                            f"{_widen(graph, out_id, info.targets)}")
    else:
        length, vocab = dataset.target_spec.shape[0], info.vocab or 0
        if out.rank != 2:
            problems.append(f"{name} asks for a token at each of {length} positions, so the "
                            f"model should output [B, {length}, {vocab}], but {gets}")
        else:
            if out.shape[0] != length:
                problems.append(f"the model outputs {out.shape[0]} positions, but {name} has "
                                f"targets for {length}")
            if out.shape[1] < vocab:
                problems.append(f"the model outputs scores for {out.shape[1]} tokens, but "
                                f"{name} uses a vocabulary of {vocab}")
    if not out.is_float:
        problems.append(f"training needs float scores, but {gets} as {out.dtype}")
    if not wanted.is_float and info.vocab:
        for n in graph.nodes:
            rows = getattr(n.params, "num_embeddings", None)
            if n.type == "Embedding" and rows is not None and rows < info.vocab:
                problems.append(f"{name} uses token ids up to {info.vocab - 1}, but Embedding "
                                f"'{n.id}' has only {rows} rows")
    return problems


def _widen(graph: Graph, out_id: str, width: int | None) -> str:
    """How to make the Output `width` wide: the fix clause of a width mismatch."""
    feeder = graph.incoming.get(out_id, {}).get("in")
    if feeder is not None and graph.node(feeder.node).type == "Linear":
        return f"make the last Linear ('{feeder.node}') {width} wide (out_features {width})"
    return f"end the model with a Linear {width} wide (out_features {width})"


# Uploads.


def _csv_rows(text: str, name: str) -> list[tuple[int, list[str]]]:
    """The rows that are not blank, each with its line number in the file."""
    rows = []
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append((reader.line_num, row))
            if len(rows) > MAX_CSV_ROWS + 1:  # + the header
                raise DatasetError(f"{name} has more than {MAX_CSV_ROWS:,} rows; the limit "
                                   f"is {MAX_CSV_ROWS:,}")
    return rows


def _listed(names: list[str], most: int = 20) -> str:
    """Names for a sentence, at most `most` of them (a CSV may have a thousand columns)."""
    shown = ", ".join(repr(n[:60]) for n in names[:most])
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_dataset(text: str, *, target: str | None = None, task: Task = "classification",
                name: str = "upload.csv", seed: int = 0) -> Dataset:
    """A CSV with a header row, numeric feature columns and one `target` column (the last
    one unless named): class labels (any text) for classification, a number for regression.
    Features are used as they are (not rescaled): what is drawn is what runs."""
    if task not in ("classification", "regression"):
        raise DatasetError(f"a CSV trains classification or regression, not {task}")
    if len(text.encode("utf-8")) > MAX_UPLOAD_BYTES:
        raise DatasetError(f"{name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    try:
        rows = _csv_rows(text, name)
    except csv.Error as exc:
        raise DatasetError(f"{name} is not a readable CSV: {exc}") from None
    if not rows:
        raise DatasetError(f"{name} is empty; it needs a header row, then one row per sample")
    header = [h.strip() for h in rows[0][1]]
    if len(header) > MAX_CSV_COLUMNS:
        raise DatasetError(f"{name} has {len(header):,} columns; the limit is "
                           f"{MAX_CSV_COLUMNS:,}")
    if len(header) < 2:
        raise DatasetError(f"{name}'s header has {len(header)} column; it needs at least one "
                           "feature column and the target column, separated by commas")
    if all(_is_number(h) for h in header):
        raise DatasetError(f"{name}'s first row ({','.join(header[:5])}...) is numbers; the "
                           "first row must be a header that names the columns")
    for column, h in enumerate(header, start=1):
        if not h:
            raise DatasetError(f"{name}'s header has an empty name in column {column}")
        if header.index(h) != column - 1:
            raise DatasetError(f"{name}'s header names column {h!r} twice")
    target = header[-1] if target is None else target
    if target not in header:
        raise DatasetError(f"{name} has no column {target!r}; its columns: {', '.join(header)}")
    t = header.index(target)
    data = rows[1:]
    if len(data) < MIN_CSV_ROWS:
        raise DatasetError(f"{name} has {len(data)} data rows; training needs at least "
                           f"{MIN_CSV_ROWS}")
    features, labels = [], []
    for line, row in data:
        if len(row) != len(header):
            raise DatasetError(f"{name} row {line} has {len(row)} values; the header has "
                               f"{len(header)}")
        values = []
        for column, cell in enumerate(row):
            if column == t:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise DatasetError(f"{name} row {line}, column {header[column]!r}: {cell!r} "
                                   "is not a number") from None
            if not math.isfinite(value):
                raise DatasetError(f"{name} row {line}, column {header[column]!r}: {cell!r} "
                                   "is not a finite number")
            values.append(value)
        features.append(values)
        labels.append(row[t].strip())
    x = torch.tensor(features, dtype=torch.float32)
    if task == "classification":
        classes = sorted(set(labels))
        if len(classes) > MAX_CSV_CLASSES:
            raise DatasetError(f"{name}'s column {target!r} has {len(classes):,} different "
                               f"labels; the limit is {MAX_CSV_CLASSES:,} classes (is it a "
                               "number to predict? then train regression)")
        index = {label: i for i, label in enumerate(classes)}
        y = torch.tensor([index[v] for v in labels], dtype=torch.int64)
        info = DatasetInfo(name, f"{name}: {len(classes)} classes of {target}", task,
                           classes=len(classes))
        names: tuple[str, ...] | None = tuple(classes)
        made = (f"target column {_listed([target])}: labels as text with surrounding spaces "
                "removed, classes numbered 0.. in sorted order of the labels")
    else:
        targets = []
        for (line, _), label in zip(data, labels, strict=True):
            if not _is_number(label) or not math.isfinite(float(label)):
                raise DatasetError(f"{name} row {line}, column {target!r}: {label!r} is not a "
                                   "number, and regression predicts numbers")
            targets.append([float(label)])
        y = torch.tensor(targets, dtype=torch.float32)
        info = DatasetInfo(name, f"{name}: regression on {target}", task, targets=1)
        names, made = None, f"target column {_listed([target])}: read as a float32 number"
    steps = ("parsed as CSV (Python's csv module); the first row is the header; blank rows "
             "skipped",
             f"{len(header) - 1} feature column(s) ({_listed([h for h in header if h != target])}"
             ") read as float32 numbers, not rescaled", made)
    return Dataset(info, *_split(x, y, seed), labels=names, preprocessing=steps)
