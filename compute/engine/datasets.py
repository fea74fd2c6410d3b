"""Datasets that ship with Shipyard (nothing is downloaded, ever), user uploads, and the
check that a dataset fits a graph.

Every dataset yields `x` of one sample shape and dtype, and `y` for one of three tasks:

- classification: `y` int64 [B], a class index; the model's Output is [B, classes]
- regression: `y` float32 [B, k]; the Output is [B, k]
- sequence: `y` int64 [B, T], a token per position (next character, copied or sorted
  token...); the Output is [B, T, vocab]
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import torch

from .blocks import TensorSpec
from .build import DTYPES
from .graph import Graph

Task = Literal["classification", "regression", "sequence"]

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 1_000
TEXT_VOCAB = 128  # ASCII: a character's id is its code point; anything else becomes '?'
VAL_FRACTION = 0.2


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    task: Task
    classes: int | None = None  # classification
    vocab: int | None = None  # sequence targets (and integer inputs)
    targets: int | None = None  # regression


@dataclass
class Dataset:
    info: DatasetInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    decode: Callable[[list[int]], str] | None = field(default=None, repr=False)

    @property
    def spec(self) -> TensorSpec:
        """What one sample of `x` is."""
        dtype = next(k for k, v in DTYPES.items() if v == self.x_train.dtype)
        return TensorSpec(tuple(self.x_train.shape[1:]), dtype)

    def describe(self) -> str:
        return f"{self.info.name} gives {self.spec.describe()}"


class DatasetError(ValueError):
    """A dataset that cannot be made or read, in words."""


Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _split(x: torch.Tensor, y: torch.Tensor, seed: int) -> Split:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(x) * VAL_FRACTION))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


# Built-in datasets. Each takes the graph's Input spec (or None) so that it can give the
# view that fits: digits as [64] or [1, 8, 8], sequences as long as the model reads.


def _digits(spec: TensorSpec | None, seed: int, **_: object) -> Dataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    if spec is not None and spec.shape == (1, 8, 8):
        x = x.reshape(-1, 1, 8, 8)
    elif spec is not None and spec.shape == (8, 8):
        x = x.reshape(-1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    info = DatasetInfo("digits", "8×8 handwritten digits (1797 images, 10 classes)",
                       "classification", classes=10)
    return Dataset(info, *_split(x, y, seed))


def _moons(spec: TensorSpec | None, seed: int, **_: object) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    n = 1000
    t = torch.rand(n, generator=gen) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.cat([upper, lower]) + 0.1 * torch.randn(2 * n, 2, generator=gen)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    info = DatasetInfo("moons", "Two interleaved half circles (2-D points, 2 classes)",
                       "classification", classes=2)
    return Dataset(info, *_split(x, y, seed))


def _spirals(spec: TensorSpec | None, seed: int, **_: object) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    n, arms = 600, 3
    xs, ys = [], []
    for arm in range(arms):
        r = torch.linspace(0.05, 1.0, n)
        angle = r * 4 + arm * 2 * math.pi / arms + 0.2 * torch.randn(n, generator=gen)
        xs.append(torch.stack([r * torch.sin(angle), r * torch.cos(angle)], 1))
        ys.append(torch.full((n,), arm))
    info = DatasetInfo("spirals", "Three interleaved spirals (2-D points, 3 classes)",
                       "classification", classes=3)
    return Dataset(info, *_split(torch.cat(xs), torch.cat(ys).long(), seed))


def _sequence_length(spec: TensorSpec | None, default: int = 16) -> int:
    if spec is not None and len(spec.shape) == 1:
        return spec.shape[0]
    return default


def _token_task(name: str, title: str, transform: Callable[[torch.Tensor], torch.Tensor]
                ) -> Callable[..., Dataset]:
    def make(spec: TensorSpec | None, seed: int, vocab: int = 16, samples: int = 4000,
             **_: object) -> Dataset:
        length = _sequence_length(spec)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randint(0, vocab, (samples, length), generator=gen)
        info = DatasetInfo(name, title.format(vocab=vocab), "sequence", vocab=vocab)
        return Dataset(info, *_split(x, transform(x), seed))

    return make


def _modadd(spec: TensorSpec | None, seed: int, modulus: int = 10, samples: int = 4000,
            **_: object) -> Dataset:
    length = _sequence_length(spec)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, modulus, (samples, length), generator=gen)
    y = x.sum(dim=1) % modulus
    info = DatasetInfo("modadd", f"Sum of the tokens modulo {modulus} ({modulus} classes)",
                       "classification", classes=modulus, vocab=modulus)
    return Dataset(info, *_split(x, y, seed))


def encode_text(text: str) -> torch.Tensor:
    return torch.tensor([ord(c) if ord(c) < TEXT_VOCAB else ord("?") for c in text],
                        dtype=torch.int64)


def decode_text(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids)


def text_dataset(text: str, spec: TensorSpec | None = None, *, name: str = "text",
                 title: str = "Uploaded text", seed: int = 0) -> Dataset:
    """Next-character prediction: windows of T characters, targets shifted by one."""
    length = _sequence_length(spec, default=64)
    ids = encode_text(text)
    if len(ids) < 4 * (length + 1):
        raise DatasetError(f"the text has {len(ids)} characters; a model reading {length} "
                           f"at a time needs at least {4 * (length + 1)}")
    cut = int(len(ids) * (1 - VAL_FRACTION))
    def windows(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.arange(0, len(part) - length - 1, max(1, length // 4))
        x = torch.stack([part[s:s + length] for s in starts])
        y = torch.stack([part[s + 1:s + length + 1] for s in starts])
        return x, y

    x_train, y_train = windows(ids[:cut])
    x_val, y_val = windows(ids[cut - length:])  # validation windows overlap the cut
    info = DatasetInfo(name, title, "sequence", vocab=TEXT_VOCAB)
    return Dataset(info, x_train, y_train, x_val, y_val, decode=decode_text)


def _corpus(spec: TensorSpec | None, seed: int, **_: object) -> Dataset:
    text = resources.files(__package__).joinpath("data/harbour.txt").read_text("utf-8")
    return text_dataset(text, spec, name="harbour",
                        title="The Harbour Log: a small English text (next character)",
                        seed=seed)


BUILTIN: dict[str, tuple[str, Callable[..., Dataset]]] = {
    "digits": ("8×8 handwritten digits, 10 classes", _digits),
    "moons": ("two half circles, 2-D points, 2 classes", _moons),
    "spirals": ("three spirals, 2-D points, 3 classes", _spirals),
    "copy": ("give back each token (sequence)",
             _token_task("copy", "Copy the tokens ({vocab} symbols)", lambda x: x.clone())),
    "reverse": ("give back the tokens reversed (sequence)",
                _token_task("reverse", "Reverse the tokens ({vocab} symbols)",
                            lambda x: x.flip(1))),
    "sort": ("give back the tokens sorted (sequence)",
             _token_task("sort", "Sort the tokens ({vocab} symbols)",
                         lambda x: x.sort(dim=1).values)),
    "modadd": ("sum of the tokens modulo a chosen modulus (classification)", _modadd),
    "harbour": ("a small English text for character models (next character)", _corpus),
}


def dataset_names() -> list[str]:
    return list(BUILTIN)


def make_dataset(name: str, spec: TensorSpec | None = None, *, seed: int = 0,
                 **options: int) -> Dataset:
    """A built-in dataset, in the view that fits `spec` (a graph Input's spec) where it can."""
    if name not in BUILTIN:
        raise DatasetError(f"no dataset named {name!r}; datasets: {', '.join(BUILTIN)}")
    return BUILTIN[name][1](spec, seed, **options)


# Uploads.


def csv_dataset(text: str, *, target: str, task: Task = "classification",
                name: str = "upload.csv", seed: int = 0) -> Dataset:
    """A CSV with a header row: numeric feature columns and one `target` column (class
    labels, any text, for classification; a number for regression)."""
    if len(text.encode()) > MAX_UPLOAD_BYTES:
        raise DatasetError(f"{name} is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise DatasetError(f"{name} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if len(header) > MAX_CSV_COLUMNS:
        raise DatasetError(f"{name} has {len(header)} columns; the limit is {MAX_CSV_COLUMNS}")
    if len(rows) - 1 > MAX_CSV_ROWS:
        raise DatasetError(f"{name} has {len(rows) - 1:,} rows; the limit is {MAX_CSV_ROWS:,}")
    if target not in header:
        raise DatasetError(f"{name} has no column {target!r}; its columns: {', '.join(header)}")
    t = header.index(target)
    features, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DatasetError(f"{name} line {line} has {len(row)} values; the header has "
                               f"{len(header)}")
        values = []
        for column, cell in enumerate(row):
            if column == t:
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise DatasetError(f"{name} line {line}, column {header[column]!r}: {cell!r} "
                                   "is not a number") from None
        features.append(values)
        labels.append(row[t].strip())
    x = torch.tensor(features, dtype=torch.float32)
    if task == "classification":
        classes = sorted(set(labels))
        y = torch.tensor([classes.index(v) for v in labels], dtype=torch.int64)
        info = DatasetInfo(name, f"{name}: {len(classes)} classes", task, classes=len(classes))
    else:
        try:
            y = torch.tensor([[float(v)] for v in labels], dtype=torch.float32)
        except ValueError:
            raise DatasetError(f"{name}: the target {target!r} must be numbers for "
                               "regression") from None
        info = DatasetInfo(name, f"{name}: regression on {target}", task, targets=1)
    return Dataset(info, *_split(x, y, seed))


# Does it fit?


def check_fit(graph: Graph, output_spec: TensorSpec, dataset: Dataset) -> list[str]:
    """Every way `dataset` cannot train `graph`, in words; empty when it fits.

    `output_spec` is the spec of the graph's one Output (from the inspection report)."""
    problems = []
    inputs, outputs = graph.inputs, graph.outputs
    if len(inputs) != 1:
        problems.append(f"a dataset feeds one Input, but the model has {len(inputs)}")
    if len(outputs) != 1:
        problems.append(f"training needs one Output, but the model has {len(outputs)}")
    if problems:
        return problems
    node = inputs[0]
    wanted = TensorSpec(tuple(node.params.shape), node.params.dtype)  # type: ignore[union-attr]
    if dataset.spec != wanted:
        problems.append(f"{dataset.describe()}, but Input '{node.id}' expects "
                        f"{wanted.describe()}")
    out, info = output_spec, dataset.info
    if info.task == "classification" and out.shape != (info.classes,):
        problems.append(f"{info.name} has {info.classes} classes, so the Output should be "
                        f"[B, {info.classes}], but '{outputs[0].id}' gets {out.text()}")
    if info.task == "regression" and out.shape != (info.targets,):
        problems.append(f"{info.name} has {info.targets} target(s), so the Output should be "
                        f"[B, {info.targets}], but '{outputs[0].id}' gets {out.text()}")
    if info.task == "sequence":
        length = dataset.y_train.shape[1]
        if len(out.shape) != 2 or out.shape[0] != length or out.shape[1] < (info.vocab or 0):
            problems.append(f"{info.name} predicts one of {info.vocab} tokens at each of "
                            f"{length} positions, so the Output should be [B, {length}, "
                            f"{info.vocab}] or wider, but '{outputs[0].id}' gets {out.text()}")
    if wanted.dtype == "int64" and info.vocab:
        for n in graph.nodes:
            if n.type == "Embedding" and n.params.num_embeddings < info.vocab:  # type: ignore[union-attr]
                problems.append(f"{info.name} uses ids up to {info.vocab - 1}, but Embedding "
                                f"'{n.id}' has only {n.params.num_embeddings} rows")  # type: ignore[union-attr]
    return problems
