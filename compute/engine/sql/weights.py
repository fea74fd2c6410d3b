"""A trained model's weights as tables, and the weights a script leaves behind.

Map of this file: `TrainedModel` (what the core is given: weights, frozen names, the run's
dataset and settings); the columns of `tensors`, `heads` and `eval` (declared as tables.py
declares its own: name, SQL declaration, writable, what it holds); `tensor_layout` (what
the graph says about each state-dict entry: its node, its kind, what it is tied to);
`WeightTables` (create, fill, apply); the statistics and the attention measures.

The weights themselves never enter SQLite: `tensors` holds facts about them and the
actions asked (`frozen`, `scale`, `reinit`), which `apply` carries out when the script
ends, on the names of the model the script started from. An architecture change then
carries the weights onto the new graph by name: same name, same shape and dtype: kept bit
for bit; otherwise the tensor starts as `compile_graph(new graph, seed)` starts it.
No Django here.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from ..build import DTYPE_NAMES, Analysis, CheckedGraph, materialize
from ..datasets import Dataset, DatasetError, check_fit, dataset_for
from ..graph import Graph
from ..training import TrainConfig, attention_modules, capture_attention, evaluate

# |x| below this counts as zero in `zero_share`: far below any weight that matters in
# float32 (a GPT-2 weight is ~0.02), well above float32's rounding around zero.
NEAR_ZERO = 1e-6
STAT_CHUNK = 1 << 14  # values summed at a time by `statistics`: they stay in the CPU's cache


class WeightsError(ValueError):
    """Weights that do not belong to the graph, or actions on them that cannot be done
    (scaling an integer buffer, two scales for one tied tensor): a sentence for the user."""


@dataclass
class TrainedModel:
    """A model with trained weights, as the SQL dialect is given it."""

    state: dict[str, torch.Tensor]  # CPU tensors, names as compile_graph(document) makes
    frozen: frozenset[str] = frozenset()  # names fine-tuning keeps as they are
    # The run's dataset: a built-in name (made in the view that fits the graph, as
    # train_graph makes it), or a `Dataset` (an upload); None: `eval` and `heads` are empty.
    dataset: str | Dataset | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # the run's TrainConfig fields
    seed: int = 0  # the seed its weights started from: fresh tensors start as it did


Column = tuple[str, str, bool, str]  # name, SQL declaration, writable, what it holds

TENSOR_COLUMNS: tuple[Column, ...] = (
    ("name", "TEXT PRIMARY KEY", False,
     "the state-dict name (blocks.0.attn.qkv.weight), as the weights file has it"),
    ("node", "TEXT NOT NULL", False,
     "the module path of the node it belongs to, each Repeat copy on its own (blocks.0.attn): "
     "node LIKE 'blocks.0.%' is the first copy"),
    ("path", "TEXT NOT NULL", False,
     "that node's path in the nodes table (blocks/attn), the same for every Repeat copy: "
     "JOIN nodes USING (path)"),
    ("copy", "INTEGER", False, "which copy of its Repeat (0, 1, ...); NULL outside one"),
    ("param", "TEXT NOT NULL", False, "the name within its node (weight, qkv.bias)"),
    ("kind", "TEXT NOT NULL", False,
     "parameter (trained) or buffer (kept state, such as a BatchNorm's running mean: not "
     "trained, never frozen)"),
    ("shape", "TEXT NOT NULL", False, "its shape (JSON list)"),
    ("numel", "INTEGER NOT NULL", False, "how many values it holds"),
    ("dtype", "TEXT NOT NULL", False, "float32, bfloat16, int64, ..."),
    ("frozen", "INTEGER NOT NULL DEFAULT 0 CONSTRAINT frozen_is_0_or_1 CHECK (frozen IN (0, 1))",
     True, "1: fine-tuning keeps it as it is (set it; a tied tensor is frozen by any of its "
     "names; ignored for buffers)"),
    ("tied_to", "TEXT", False,
     "the name of the tensor whose storage it shares (a Linear tied to an Embedding); NULL: "
     "its own"),
    ("mean", "REAL", False, "mean of its values (NULL: empty, or a NaN among them)"),
    ("std", "REAL", False, "standard deviation of its values (population: divides by numel)"),
    ("min", "REAL", False, "smallest value"),
    ("max", "REAL", False, "largest value"),
    ("l2", "REAL", False, "L2 norm: the square root of the sum of squares"),
    ("zero_share", "REAL", False, f"share of values with |x| < {NEAR_ZERO:g}"),
    ("finite", "INTEGER NOT NULL", False, "1 when every value is finite (no NaN, no inf)"),
    ("scale", "REAL NOT NULL DEFAULT 1 CONSTRAINT scale_is_a_finite_number CHECK (scale "
              "BETWEEN -1e300 AND 1e300)", True,
     "multiply it by this when the script ends (SET scale = scale * 0.5 composes); floating-"
     "point tensors only"),
    ("reinit", "INTEGER NOT NULL DEFAULT 0 CONSTRAINT reinit_is_0_or_1 CHECK (reinit IN (0, 1))",
     True, "1: restart it as a fresh model of this graph starts it (then scale applies)"),
)

HEAD_COLUMNS: tuple[Column, ...] = (
    ("node", "TEXT NOT NULL", False, "module path of the attention node (blocks.0.attn)"),
    ("path", "TEXT NOT NULL", False, "its path in the nodes table (blocks/attn)"),
    ("copy", "INTEGER", False, "which copy of its Repeat; NULL outside one"),
    ("head", "INTEGER NOT NULL", False, "the head, from 0"),
    ("queries", "INTEGER NOT NULL", False, "positions of the example (T)"),
    ("entropy", "REAL", False,
     "entropy of a query's attention, in nats, averaged over queries (0: each looks at one "
     "key; ln T: evenly at all)"),
    ("peak", "REAL", False, "the largest weight of a query, averaged over queries"),
    ("mean_distance", "REAL", False,
     "how far it looks: Σ weight·|query − key|, averaged over queries"),
    ("self_share", "REAL", False, "weight on the key at the query's own position (mean)"),
    ("previous_share", "REAL", False,
     "weight on the key one position before the query (mean over queries 1..T-1)"),
    ("first_share", "REAL", False,
     "weight on the first key (mean over queries 1..T-1: an 'attention sink')"),
    ("top_offset", "INTEGER", False,
     "query − key of the key weighted most, the most common over queries (0: itself, "
     "1: the one before)"),
)

EVAL_COLUMNS: tuple[Column, ...] = (
    ("split", "TEXT NOT NULL", False, "val: the run's fixed validation batches"),
    ("dataset", "TEXT NOT NULL", False, "the dataset's name"),
    ("loss", "REAL", False, "the task's loss (cross-entropy, or MSE for values)"),
    ("accuracy", "REAL", False, "share of right answers (NULL for regression)"),
    ("batches", "INTEGER NOT NULL", False, "batches evaluated (the run's eval_batches at most)"),
    ("examples", "INTEGER NOT NULL", False, "samples evaluated"),
    ("ms", "REAL NOT NULL", False, "milliseconds it took"),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "tensors": TENSOR_COLUMNS, "heads": HEAD_COLUMNS, "eval": EVAL_COLUMNS}
TABLE_DOCS = {
    "tensors": "one row per tensor of the trained weights (state-dict entry): where it "
               "belongs, its statistics; set frozen, scale, reinit, which take effect when "
               "the script ends (statements after them still read the weights as they were)",
    "heads": "one row per attention head, measured on the run's fixed validation example; "
             "empty without a dataset",
    "eval": "loss and accuracy on the run's validation batches with the weights as they are, "
            "computed when first read; empty without a dataset",
}

_DDL = {table: "CREATE TABLE {} (\n  {}\n)".format(
    table, ",\n  ".join(f"{name} {decl}" for name, decl, _, _ in columns))
    for table, columns in COLUMNS.items()}


@dataclass(frozen=True)
class TensorInfo:
    """What the graph says about one state-dict entry."""

    name: str
    node: str  # module path of its node: blocks.0.attn
    path: str  # that node's path in the nodes table: blocks/attn
    copy: int | None  # its Repeat copy (the innermost), None outside one
    param: str  # the rest of the name: qkv.weight
    kind: str  # parameter | buffer
    shape: tuple[int, ...]
    dtype: str
    tied_to: str | None  # the name whose storage it shares


def tensor_layout(graph: CheckedGraph) -> dict[str, TensorInfo]:
    """Every state-dict entry of `compile_graph(graph)`, in state-dict order; built on the
    meta device (no memory, no compute)."""
    module = materialize(graph, graph.analysis, "meta")
    owners: dict[str, tuple[str, int | None]] = dict(_node_modules(graph, graph.analysis))
    ties = dict(_ties(graph, graph.analysis))
    first_name: dict[int, str] = {}  # a Parameter shared by several names: its first name
    shared: dict[str, str] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        first_name.setdefault(id(p), name)
        if first_name[id(p)] != name:
            shared[name] = first_name[id(p)]
    parameters = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    layout: dict[str, TensorInfo] = {}
    for name, t in module.state_dict(keep_vars=True).items():
        node = _owner_of(name, owners)
        path, copy = owners.get(node, (node.replace(".", "/"), None))
        tied = ties.get(name) or shared.get(name)
        layout[name] = TensorInfo(
            name, node, path, copy, name[len(node) + 1:] if node else name,
            "parameter" if name in parameters else "buffer", tuple(t.shape),
            dtype_name(t.dtype), tied)
    return layout


def _node_modules(graph: Graph, analysis: Analysis, module: str = "", path: str = "",
                  copy: int | None = None) -> Iterator[tuple[str, tuple[str, int | None]]]:
    """(module path, (nodes-table path, Repeat copy)) of every node that holds a module."""
    for node in graph.nodes:
        result = analysis.nodes.get(node.id)
        if result is None or node.type in ("Input", "Output", "Init"):
            continue
        if node.graph is not None and result.body is not None:
            if node.type == "Repeat":
                for i in range(result.times or 0):
                    yield from _node_modules(node.graph, result.body, f"{module}{node.id}.{i}.",
                                             f"{path}{node.id}/", i)
            else:
                yield from _node_modules(node.graph, result.body, f"{module}{node.id}.",
                                         f"{path}{node.id}/", copy)
            continue
        yield f"{module}{node.id}", (f"{path}{node.id}", copy)


def _ties(graph: Graph, analysis: Analysis, module: str = "") -> Iterator[tuple[str, str]]:
    """(tied name, the name it takes its weight from): a Linear's weight and its
    Embedding's, in the same (copy of a) graph."""
    for node in graph.nodes:
        result = analysis.nodes.get(node.id)
        if result is None:
            continue
        if node.graph is not None and result.body is not None:
            copies = range(result.times or 0) if node.type == "Repeat" else [None]
            for i in copies:
                inner = f"{module}{node.id}." + ("" if i is None else f"{i}.")
                yield from _ties(node.graph, result.body, inner)
        elif result.tied_to is not None:
            yield f"{module}{node.id}.weight", f"{module}{result.tied_to}.weight"


def _owner_of(name: str, owners: dict[str, Any]) -> str:
    """The longest node module path that `name` lies under."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in owners:
            return candidate
    return ".".join(parts[:-1])


def statistics(t: torch.Tensor) -> tuple[float | None, ...]:
    """mean, std (population), min, max, L2 norm, share of |x| < NEAR_ZERO, finite (0/1).

    Sums in float64, a cache-sized chunk at a time: exact enough for a 38M-value embedding
    (float32's one-pass norm is off in the third digit there) and several times faster
    than `var_mean` on it. NaN reads as None (SQLite has no NaN)."""
    n = t.numel()
    if n == 0:
        return (None,) * 6 + (1,)
    flat = t.detach().reshape(-1)
    if not flat.is_floating_point():
        flat = flat.double()  # integer and boolean buffers
    low, high = (float(v) for v in torch.aminmax(flat))
    total = squares = 0.0
    zeros = 0
    for part in flat.split(STAT_CHUNK):
        x = part.double()
        total += float(x.sum())
        squares += float(x.square().sum())
        zeros += int(torch.count_nonzero(x.abs() < NEAR_ZERO))
    mean = total / n
    values = [mean, max(squares / n - mean * mean, 0.0) ** 0.5, low, high, squares ** 0.5,
              zeros / n]
    finite = int(math.isfinite(low) and math.isfinite(high))  # a NaN spreads to both
    return (*(None if math.isnan(v) else v for v in values), finite)


def head_measures(weights: torch.Tensor) -> list[dict[str, float | int | None]]:
    """Per head of one module's attention on one example, `weights` (heads, T, T): the
    measures of the heads table (positional ones NULL when queries and keys differ)."""
    w = weights.double()
    heads, tq, tk = w.shape
    entropy = -(w * w.clamp_min(1e-300).log()).sum(-1).mean(-1)  # (heads,)
    peak = w.amax(-1).mean(-1)
    rows: list[dict[str, float | int | None]] = []
    square = tq == tk
    if square:
        offset = torch.arange(tq)[:, None] - torch.arange(tk)[None, :]  # query − key
        distance = (w * offset.abs()).sum(-1).mean(-1)
        own = w.diagonal(dim1=1, dim2=2).mean(-1)
        before = w.diagonal(offset=-1, dim1=1, dim2=2).mean(-1) if tq > 1 else None
        first = w[:, 1:, 0].mean(-1) if tq > 1 else None
        top = torch.mode(torch.arange(tq)[None, :] - w.argmax(-1), dim=-1).values
    for h in range(heads):
        row: dict[str, float | int | None] = {
            "head": h, "queries": tq, "entropy": float(entropy[h]), "peak": float(peak[h]),
            "mean_distance": None, "self_share": None, "previous_share": None,
            "first_share": None, "top_offset": None}
        if square:
            row |= {"mean_distance": float(distance[h]), "self_share": float(own[h]),
                    "previous_share": None if before is None else float(before[h]),
                    "first_share": None if first is None else float(first[h]),
                    "top_offset": int(top[h])}
        rows.append(row)
    return rows


class WeightTables:
    """The weight tables of one trained model over the graph it was trained as.

    The core calls `create` once, `fill` once per table before the first statement that
    reads it (an UPDATE of tensors reads it), and `apply` after the script. The model and
    the dataset are built once, when `heads` or `eval` first needs them."""

    TABLES = ("tensors", "heads", "eval")
    WRITABLE = {"tensors": frozenset({"frozen", "scale", "reinit"})}

    def __init__(self, graph: CheckedGraph, trained: TrainedModel) -> None:
        self.graph = graph
        self.trained = trained
        self.layout = tensor_layout(graph)
        self._check_weights()
        self.filled: set[str] = set()
        self._model: nn.Module | None = None
        self._data: Dataset | None = None

    def _check_weights(self) -> None:
        state, layout = self.trained.state, self.layout
        missing = [n for n in layout if n not in state]
        extra = [n for n in state if n not in layout]
        if missing or extra:
            said = []
            if missing:
                said.append(f"lack {_names(missing)}")
            if extra:
                said.append(f"have {_names(extra)}, which it has not")
            raise WeightsError("the weights are not of this graph: they " + " and ".join(said))
        wrong = [f"{n} is {list(state[n].shape)}, the graph makes it {list(info.shape)}"
                 for n, info in layout.items() if tuple(state[n].shape) != info.shape]
        if wrong:
            raise WeightsError("the weights are not of this graph: " + "; ".join(wrong[:3])
                               + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""))
        unknown = sorted(self.trained.frozen - layout.keys())
        if unknown:
            raise WeightsError(f"frozen names {_names(unknown)} are not among the weights")

    # Tables.

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The weight tables as `sql_schema` lists tables: {table: {doc, columns: [{name,
        type, writable, doc}]}}."""
        return {table: {"doc": TABLE_DOCS[table], "columns": [
            {"name": name, "type": decl.split(" ")[0], "writable": writable, "doc": doc}
            for name, decl, writable, doc in COLUMNS[table]]} for table in cls.TABLES}

    def create(self, conn: sqlite3.Connection) -> None:
        for table in self.TABLES:
            conn.execute(_DDL[table])
        conn.execute("CREATE INDEX tensors_node ON tensors(node)")

    def fill(self, conn: sqlite3.Connection, table: str) -> None:
        if table in self.filled:
            return
        rows: Iterable[tuple[Any, ...]]
        if table == "tensors":
            rows = self._tensor_rows()
        elif table == "heads":
            rows = self._head_rows()
        elif table == "eval":
            rows = self._eval_rows()
        else:
            raise KeyError(f"no weight table named {table!r}; there are {', '.join(self.TABLES)}")
        columns = COLUMNS[table]
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(c[0] for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})", list(rows))
        self.filled.add(table)

    def _frozen_groups(self) -> set[str]:
        """The frozen names, each tied name counted with the tensor it shares: one frozen
        name freezes the one parameter."""
        frozen = set(self.trained.frozen)
        for name, info in self.layout.items():
            if info.tied_to is not None and (name in frozen or info.tied_to in frozen):
                frozen |= {name, info.tied_to}
        return frozen

    def _frozen_rows(self) -> set[str]:
        """The names whose row says frozen = 1 before the script: parameters only."""
        return {n for n in self._frozen_groups() if self.layout[n].kind == "parameter"}

    def _tensor_rows(self) -> Iterator[tuple[Any, ...]]:
        frozen = self._frozen_rows()
        for name, info in self.layout.items():
            t = self.trained.state[name]
            yield (name, info.node, info.path, info.copy, info.param, info.kind,
                   json.dumps(list(info.shape)), t.numel(),
                   dtype_name(t.dtype), int(name in frozen), info.tied_to,
                   *statistics(t), 1.0, 0)

    def _head_rows(self) -> Iterator[tuple[Any, ...]]:
        if self.trained.dataset is None:
            return
        meta = materialize(self.graph, self.graph.analysis, "meta")
        if not attention_modules(meta):
            return  # no attention: no dataset to make
        data = self.dataset()
        maps = capture_attention(self.model(), data.x_val[:1], pool=False)
        owners = dict(_node_modules(self.graph, self.graph.analysis))
        for node, weights in maps.items():
            path, copy = owners.get(node, (node.replace(".", "/"), None))
            for m in head_measures(weights):
                yield (node, path, copy, m["head"], m["queries"], m["entropy"], m["peak"],
                       m["mean_distance"], m["self_share"], m["previous_share"],
                       m["first_share"], m["top_offset"])

    def _eval_rows(self) -> Iterator[tuple[Any, ...]]:
        if self.trained.dataset is None:
            return
        config = self.config()
        data = self.dataset()
        model = self.model()
        began = time.perf_counter()
        metrics = evaluate(model, data, config, torch.device("cpu"))
        ms = (time.perf_counter() - began) * 1000
        examples = min(len(data.x_val), config.eval_batches * config.batch_size)
        yield ("val", data.info.name, metrics["val_loss"], metrics.get("val_accuracy"),
               -(-examples // config.batch_size), examples, ms)

    # The model with these weights, and the run's dataset and settings.

    def config(self) -> TrainConfig:
        try:
            return TrainConfig.model_validate({"seed": self.trained.seed, **self.trained.config})
        except ValidationError as exc:
            raise WeightsError(f"the run's settings are not valid: {exc}") from None

    def dataset(self) -> Dataset:
        """The run's dataset as the run made it (same view, seed and options)."""
        if self._data is None:
            given = self.trained.dataset
            if given is None:
                raise WeightsError("this model has no dataset")
            if isinstance(given, Dataset):
                data = given
            else:
                try:
                    data = dataset_for(self.graph, given, seed=self.config().seed,
                                       **self.trained.dataset_options)
                except DatasetError as exc:
                    raise WeightsError(f"the run's dataset cannot be made: {exc}") from None
            problems = check_fit(self.graph, data)
            if problems:
                raise WeightsError("the dataset does not fit the graph: " + "; ".join(problems))
            self._data = data
        return self._data

    def model(self) -> nn.Module:
        """The graph's module with the trained weights, on the CPU, in eval mode."""
        if self._model is None:
            from .. import compile_graph  # the package imports this module's users

            model = compile_graph(self.graph, seed=self.trained.seed)
            model.load_state_dict(self.trained.state)
            self._model = model.eval()
        return self._model

    # After the script.

    def apply(self, conn: sqlite3.Connection, new_graph: CheckedGraph | None
              ) -> tuple[dict[str, torch.Tensor], frozenset[str], dict[str, Any]] | None:
        """The weights and frozen names the script leaves, and a summary of what became of
        each tensor; None when it touched neither the tensors nor the graph.

        First the actions set in `tensors` (on the names of the model the script began
        with): reinit, then scale, then frozen; a tied tensor is one tensor, whichever of
        its names the statement chose. Then, with `new_graph`, the weights are carried onto
        it by name: same shape and dtype: kept bit for bit (the very tensor objects, no
        copy); else started as `compile_graph(new_graph, seed)` starts them (a Repeat grown
        from 4 to 6 keeps copies 0-3, starts 4-5 fresh; a widened layer is listed under
        `reshaped`). Frozen names are kept where the tensor is kept.

        The summary (JSON): `tensors` (entries in the new state), `kept` (how many are the
        trained tensors, untouched), `reinitialized` [name], `scaled` [{name, by}], `new`
        [name] (no such tensor before: started fresh), `reshaped` [{name, was, now,
        was_dtype, now_dtype}] (started fresh), `removed` [name] (gone from the graph),
        `frozen` [name] (frozen in the result), `frozen_dropped` [name], `notes` [sentence].
        Raises WeightsError for an action that cannot be done."""
        actions = self._actions(conn)
        if actions is None and new_graph is None:
            return None
        summary: dict[str, Any] = {"tensors": 0, "kept": 0, "reinitialized": [],
                                   "scaled": [], "new": [], "reshaped": [], "removed": [],
                                   "frozen": [], "frozen_dropped": [], "notes": []}
        state, frozen = self._act(actions or {}, summary)
        if new_graph is not None:
            state, frozen = self._carry(state, frozen, new_graph, summary)
        else:
            summary["kept"] = sum(1 for n, t in state.items() if t is self.trained.state[n])
        summary["tensors"] = len(state)
        summary["frozen"] = [n for n in state if n in frozen]
        return state, frozenset(frozen), summary

    def _actions(self, conn: sqlite3.Connection) -> dict[str, tuple[int, float, int]] | None:
        """name -> (frozen, scale, reinit) as the script left them; None when unchanged."""
        if "tensors" not in self.filled:
            return None  # never read, so never written
        before = self._frozen_rows()
        actions = {name: (int(frozen), float(scale), int(reinit)) for name, frozen, scale, reinit
                   in conn.execute("SELECT name, frozen, scale, reinit FROM tensors")}
        if all((f, s, r) == (int(n in before), 1.0, 0) for n, (f, s, r) in actions.items()):
            return None
        return actions

    def _groups(self) -> dict[str, list[str]]:
        """Each tensor's owner -> every name it goes by (one, or several when tied)."""
        groups: dict[str, list[str]] = {}
        for name, info in self.layout.items():
            owner = info.tied_to if info.tied_to in self.layout else name
            groups.setdefault(owner, []).append(name)
        return groups

    def _act(self, actions: dict[str, tuple[int, float, int]], summary: dict[str, Any]
             ) -> tuple[dict[str, torch.Tensor], set[str]]:
        state = dict(self.trained.state)
        before = self._frozen_rows()
        frozen: set[str] = set()
        fresh: dict[str, torch.Tensor] = {}
        skipped: list[str] = []
        for owner, names in self._groups().items():
            asked = {n: actions.get(n, (int(n in before), 1.0, 0)) for n in names}
            # Frozen: what the names the script changed say (else as it was).
            changed = [n for n in names if asked[n][0] != int(n in before)]
            if any(asked[n][0] for n in (changed or names)):
                if self.layout[owner].kind == "parameter":
                    frozen.update(names)
                else:
                    skipped.extend(n for n in names if asked[n][0])
            scales = {asked[n][1] for n in names} - {1.0}
            if len(scales) > 1:
                raise WeightsError(
                    f"{' and '.join(names)} are one tensor (tied), but the script scales them "
                    f"by {' and by '.join(f'{s:g}' for s in sorted(scales))}: give them one scale")
            by = scales.pop() if scales else 1.0
            value = state[owner]
            if any(asked[n][2] for n in names):
                if not fresh:
                    fresh = self._fresh(self.graph)
                value = fresh[owner]
                summary["reinitialized"].extend(names)
            if by != 1.0:
                if not value.is_floating_point():
                    raise WeightsError(f"{owner} holds {self.layout[owner].dtype} values: only "
                                       "floating-point tensors can be scaled")
                scaled = value * by
                if not bool(torch.isfinite(scaled).all()) and bool(torch.isfinite(value).all()):
                    raise WeightsError(f"scaling {owner} by {by:g} overflows its "
                                       f"{self.layout[owner].dtype} values to infinity")
                value = scaled
                summary["scaled"].extend({"name": n, "by": by} for n in names)
            if value is not state[owner]:  # one tensor again under each of its names
                for n in names:
                    state[n] = value
        if skipped:
            summary["notes"].append(
                f"not frozen: {_names(skipped)} (buffers: they are not trained, so there is "
                "nothing to freeze)")
        return state, frozen

    def _fresh(self, graph: CheckedGraph) -> dict[str, torch.Tensor]:
        from .. import compile_graph

        return compile_graph(graph, seed=self.trained.seed).state_dict()

    def _carry(self, state: dict[str, torch.Tensor], frozen: set[str], new_graph: CheckedGraph,
               summary: dict[str, Any]) -> tuple[dict[str, torch.Tensor], set[str]]:
        layout = tensor_layout(new_graph)
        old = self.layout

        def fits(name: str) -> bool:
            # The graph's tensor is the same: the same shape, and the dtype the graph gave
            # it (weights stored in another dtype, half-precision ones, still fit).
            info = layout[name]
            return (name in state and tuple(state[name].shape) == info.shape
                    and old[name].dtype == info.dtype)

        fresh = self._fresh(new_graph) if not all(fits(n) for n in layout) else {}
        carried: dict[str, torch.Tensor] = {}
        for name, info in layout.items():
            if fits(name):
                carried[name] = state[name]
                summary["kept"] += int(state[name] is self.trained.state.get(name))
                continue
            carried[name] = fresh[name]
            if name not in state:
                summary["new"].append(name)
            else:
                summary["reshaped"].append({
                    "name": name, "was": list(state[name].shape), "now": list(info.shape),
                    "was_dtype": old[name].dtype, "now_dtype": info.dtype})
        summary["removed"] = [n for n in state if n not in layout]
        # A tied name takes its tensor's values: one parameter, whatever the weights said.
        for name, info in layout.items():
            owner = info.tied_to
            if owner is None or owner not in carried:
                continue
            if carried[name] is not carried[owner] and not torch.equal(carried[name],
                                                                       carried[owner]):
                summary["notes"].append(f"{name} is tied to {owner}: it takes its values")
            carried[name] = carried[owner]
        kept_frozen = {n for n in frozen if n in layout and fits(n)
                       and layout[n].kind == "parameter"}
        for name, info in layout.items():  # one frozen name freezes its tied tensor
            if info.tied_to is not None and (name in kept_frozen or info.tied_to in kept_frozen):
                kept_frozen |= {name, info.tied_to}
        summary["frozen_dropped"] = sorted(frozen - kept_frozen)
        if summary["frozen_dropped"]:
            summary["notes"].append(
                f"no longer frozen: {_names(summary['frozen_dropped'])} (gone from the graph, "
                "or started fresh: a tensor that starts fresh is left to train)")
        return carried, kept_frozen


def dtype_name(dtype: torch.dtype) -> str:
    return DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


__all__ = [
    "COLUMNS",
    "EVAL_COLUMNS",
    "HEAD_COLUMNS",
    "NEAR_ZERO",
    "TABLE_DOCS",
    "TENSOR_COLUMNS",
    "TensorInfo",
    "TrainedModel",
    "WeightTables",
    "WeightsError",
    "head_measures",
    "statistics",
    "tensor_layout",
]
