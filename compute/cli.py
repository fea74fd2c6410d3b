"""The `shipyard` command line.

    shipyard inspect model.json [--format table]    shapes, parameters, FLOPs, problems
    shipyard export model.json --format onnx|pytorch -o OUT
    shipyard blocks [TYPE]                           the block catalog as JSON
    shipyard new STARTER [-o model.json]             write a built-in starter graph
    shipyard import model.onnx -o model.json         an ONNX file as a graph and its weights
    shipyard train model.json --dataset digits       train from a terminal
    shipyard sql model.json "SELECT ..."             query or change a model in SQL
    shipyard up                                      the whole app on this machine
    shipyard worker [--queues cpu,gpu,fpga]          a Celery worker that runs jobs

Exit status: 0 success, 1 an invalid graph (every problem is printed), 2 bad usage or an
unreadable file. No traceback reaches the user unless SHIPYARD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or an unreadable file: exit 2 with the message."""


def _print_problems(problems: Sequence[Any]) -> None:
    for p in problems:
        print(f"error: {terminal_safe(str(p))}", file=sys.stderr)


def terminal_safe(text: str) -> str:
    """`text` as a terminal may show it: control characters (escape sequences that would
    retitle the window, move the cursor or hide the line) and bidirectional overrides are
    written as escapes (`\\x1b`, `\\u202e`), never sent raw. A graph's name is the user's
    own words, and a shared graph is someone else's."""
    return "".join(c if c.isprintable() and not 0x202A <= ord(c) <= 0x202E
                   and not 0x2066 <= ord(c) <= 0x2069 else repr(c)[1:-1] for c in text)


def _read_graph_source(path: str) -> Any:
    if path == "-":
        return sys.stdin.read()
    if not Path(path).is_file():
        raise UsageError(f"no such file: {path}")
    return Path(path)


def cmd_inspect(args: argparse.Namespace) -> int:
    from compute.engine import inspect_graph, render_table

    report = inspect_graph(_read_graph_source(args.file), flops=not args.no_flops)
    if args.format == "table":
        print(render_table(report))
    else:
        print(json.dumps(report, indent=2))
    return EXIT_OK if report["valid"] else EXIT_INVALID


def cmd_export(args: argparse.Namespace) -> int:
    from compute.engine import GraphError, compile_graph, export_onnx, export_pytorch

    source = _read_graph_source(args.file)
    try:
        module = compile_graph(source, seed=args.seed)
    except GraphError as exc:
        _print_problems(exc.problems)
        return EXIT_INVALID
    out = Path(args.output)
    if not out.parent.exists():
        raise UsageError(f"no such folder: {out.parent}")
    if args.weights:
        _load_weights(module, args.weights)
    if args.format == "onnx":
        export_onnx(module, out)
        print(f"wrote {out}", file=sys.stderr)
    else:
        export_pytorch(module, out)
        print(f"wrote {out} and its weights {out.with_suffix('.pt')}", file=sys.stderr)
    return EXIT_OK


def _load_weights(module: Any, path: str) -> None:
    """Weights from a Shipyard run (safetensors) or a `torch.save`d state dict."""
    import torch

    if not Path(path).is_file():
        raise UsageError(f"no such file: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, weights_only=True, map_location="cpu")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"{path} does not fit this graph: {str(exc).splitlines()[0]}") from None


def cmd_import(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from compute.engine.onnx_import import OnnxImportError, import_onnx

    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"no such file: {source}")
    out = Path(args.output)
    weights = out.with_suffix(".safetensors")
    if not out.parent.exists():
        raise UsageError(f"no such folder: {out.parent}")
    for path in (out, weights):
        if path.exists() and not args.force:
            raise UsageError(f"{path} exists; pass --force to overwrite it")
    try:
        imported = import_onnx(source.read_bytes(), name=args.name or source.stem)
    except OnnxImportError as exc:
        _print_problems(exc.problems)
        return EXIT_INVALID
    out.write_text(json.dumps(imported.document, indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    save_file({k: v.contiguous() for k, v in imported.weights.items()}, str(weights))
    print(f"wrote {out} and its weights {weights}", file=sys.stderr)
    return EXIT_OK


def _frozen_names(path: str) -> list[str]:
    """The names `shipyard sql --write` froze in a safetensors file's metadata (fine-tuning
    keeps those tensors as they are); none for another kind of weights file."""
    return _frozen_in(path) if path.endswith(".safetensors") else []


def _frozen_in(path: str) -> list[str]:
    """The frozen names in the metadata of the safetensors file at `path`."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            names = json.loads((f.metadata() or {}).get("shipyard.frozen", "[]"))
    except Exception as exc:  # safetensors raises its own error types
        raise UsageError(f"{path} is not a safetensors file: {exc}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{path}: its shipyard.frozen metadata is not a list of names")
    return names


def _initial_weights(path: str, graph: Any) -> Any:
    """Weights to start training from, checked to fit the graph's model (a usage error
    naming the first mismatch otherwise)."""
    from compute.engine import compile_graph

    module = compile_graph(graph)
    _load_weights(module, path)
    return module.state_dict()


def cmd_blocks(args: argparse.Namespace) -> int:
    from compute.engine import catalog

    blocks = catalog()
    if args.markdown:
        from compute.engine.reference import blocks_markdown

        sys.stdout.write(blocks_markdown())
        return EXIT_OK
    if args.type:
        found = [b for b in blocks if b["type"] == args.type]
        if not found:
            from compute.engine.blocks import unknown_type_message

            raise UsageError(unknown_type_message(args.type))
        print(json.dumps(found[0], indent=2, ensure_ascii=False))
    else:
        print(json.dumps(blocks, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    from compute.engine.starters import STARTERS, load_starter

    if args.starter is None:
        width = max(map(len, STARTERS))
        for name, title in STARTERS.items():
            print(f"{name.ljust(width)}  {title}")
        return EXIT_OK
    if args.starter not in STARTERS:
        raise UsageError(f"no starter named {args.starter!r}; starters: {', '.join(STARTERS)}")
    text = json.dumps(load_starter(args.starter), indent=2, ensure_ascii=False) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        if out.exists() and not args.force:
            raise UsageError(f"{out} exists; pass --force to overwrite it")
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


class ProgressReporter:
    """A progress bar redrawn in place on a terminal; plain lines, now and then, otherwise
    (a log file or a CI job gets no carriage returns). A `Reporter` by its methods, not a
    subclass of `SilentReporter`: importing the engine at the top of this module would load
    torch for every `shipyard --help`."""

    WIDTH = 24

    def __init__(self, total: int, stream: Any, *, start: int = 0) -> None:
        self.total, self.stream, self.start = total, stream, start
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.values: dict[str, float] = {}
        self.began = time.perf_counter()
        self.every = max(1, total // 10)  # lines when not a terminal
        self.printed_at = -1
        self.stop_requested = False

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.values[name] = value
        if self.tty:
            done = int(self.WIDTH * step / self.total)
            bar = "#" * done + "." * (self.WIDTH - done)
            self.stream.write(f"\r[{bar}] {step}/{self.total} {self.line(step)}\x1b[K")
            self.stream.flush()
        elif name == "val_loss" or (step % self.every == 0 and step != self.printed_at
                                    and name == "train_loss"):
            self.printed_at = step
            self.stream.write(f"step {step}/{self.total} {self.line(step)}\n")
            self.stream.flush()

    def on_attention(self, step: int, node: str, maps: list[list[list[float]]],
                     tokens: list[str] | None = None) -> None:
        pass

    def on_sample(self, step: int, text: str) -> None:
        prefix = "\n" if self.tty else ""
        self.stream.write(f"{prefix}sample at step {step}: {text!r}\n")

    def on_checkpoint(self, step: int, path: Path) -> None:
        if self.stop_requested:
            self.stream.write(f"\nstopped at step {step}; resume with --resume {path}\n")

    def should_stop(self) -> bool:
        return self.stop_requested

    def line(self, step: int) -> str:
        v, parts = self.values, []
        for key, label in (("train_loss", "loss"), ("aux_loss", "aux"), ("val_loss", "val"),
                           ("val_accuracy", "acc")):
            if key in v:
                parts.append(f"{label} {v[key]:.1%}" if key == "val_accuracy"
                             else f"{label} {v[key]:.4f}")
        for key, label in (("samples_per_s", "samples/s"), ("tokens_per_s", "tokens/s")):
            if key in v:
                parts.append(f"{v[key]:,.0f} {label}")
        done = step - self.start
        if done > 0 and step < self.total:
            left = (time.perf_counter() - self.began) / done * (self.total - step)
            parts.append(f"ETA {left:.0f}s")
        return "  ".join(parts)


def _train_parser() -> argparse.ArgumentParser:
    from compute.engine.datasets import DATASETS
    from compute.engine.training import TrainConfig

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="shipyard train",
        description="Train a graph on a dataset that ships with Shipyard, or on a CSV or "
                    "text file. The weights land in OUT/model.safetensors.",
        epilog="datasets: " + "; ".join(f"{e.name}: {e.description}"
                                        for e in DATASETS.values()))
    p.add_argument("file", help="a graph JSON file")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=list(DATASETS), help="a built-in dataset")
    source.add_argument("--csv", metavar="FILE", help="a CSV: header row, numeric features, "
                        "a target column")
    source.add_argument("--text", metavar="FILE", help="a text file, for a character model")
    p.add_argument("--target", help="--csv: the target column (default: the last)")
    p.add_argument("--regression", action="store_true",
                   help="--csv: predict the target as a number (default: classes)")
    p.add_argument("--modulus", type=int, help="modadd: p (default 10)")
    p.add_argument("--symbols", type=int, help="copy, reverse, sort: symbols (default 10)")
    p.add_argument("--length", type=int, help="copy, reverse, sort: symbols per problem")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--beta1", type=float, default=d.beta1, help="AdamW's beta1")
    p.add_argument("--beta2", type=float, default=d.beta2,
                   help="AdamW's beta2 (nanoGPT's small-model recipes use 0.99)")
    p.add_argument("--min-lr", type=float, help="where the cosine decay ends "
                   "(default: lr / 10)")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="0: no clipping")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--eval-interval", type=int, default=d.eval_interval)
    p.add_argument("--eval-batches", type=int, default=d.eval_batches)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA only)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--gpus", type=int, default=d.gpus,
                   help="devices that train together, one process each (the CPU: processes)")
    p.add_argument("--checkpoint-interval", type=int, default=0,
                   help="steps between checkpoints (0: the last step only)")
    p.add_argument("--sample-length", type=int, default=d.sample_length,
                   help="characters a character model writes at each evaluation")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue from a checkpoint (a file, or a run folder: its latest)")
    p.add_argument("--out", help="folder for the weights and checkpoints "
                   "(default: FILE's name + -run, in the current folder)")
    p.add_argument("--weights", help="start from these weights (.safetensors, such as those "
                   "`shipyard import` writes) instead of seeded ones")
    return p


def cmd_train(argv: list[str]) -> int:
    """`shipyard train ...`: parse `argv` (the words after `train`: it parses its own
    arguments and --help), train, print a summary. Exit status as the rest of the command
    line: 0 done (or stopped with Ctrl-C, resumable), 1 the graph is invalid or the dataset
    does not fit it, 2 bad usage or input."""
    from pydantic import ValidationError

    from compute.engine import GraphError, load_graph
    from compute.engine.datasets import (
        DATASETS,
        Dataset,
        DatasetError,
        FitError,
        csv_dataset,
        graph_view,
        text_dataset,
    )
    from compute.engine.training import TrainConfig, latest_checkpoint, pick_device, train_graph

    args = _train_parser().parse_args(argv)
    err = sys.stderr

    def fail(message: str, code: int = 2) -> int:
        print(f"shipyard train: {message}", file=err)
        return code

    if not Path(args.file).is_file():
        return fail(f"no such file: {args.file}")
    try:
        graph = load_graph(Path(args.file))
    except GraphError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=err)
        return 1
    options = {k: v for k in ("modulus", "symbols", "length")
               if (v := getattr(args, k)) is not None}
    try:
        given = {"min_lr": args.min_lr} if args.min_lr is not None else {}
        config = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
            beta1=args.beta1, beta2=args.beta2, warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay, grad_clip=args.grad_clip or None, seed=args.seed,
            eval_interval=args.eval_interval, eval_batches=args.eval_batches,
            device=args.device, bf16=args.bf16, compile=args.compile, gpus=args.gpus,
            attention_interval=0,
            checkpoint_interval=args.checkpoint_interval, sample_length=args.sample_length,
            **given)
        pick_device(config.device)
        data: str | Dataset = args.dataset
        if args.csv or args.text:
            path = Path(args.csv or args.text)
            if not path.is_file():
                return fail(f"no such file: {path}")
            text = path.read_text(encoding="utf-8", errors="replace")
            if args.csv:
                data = csv_dataset(text, target=args.target, name=path.name, seed=args.seed,
                                   task="regression" if args.regression else "classification")
            else:
                data = text_dataset(text, graph_view(graph), name=path.name,
                                    title=f"{path.name} (next character)")
        elif options and args.dataset:
            takes = DATASETS[args.dataset].options
            for key in options:
                if key not in takes:
                    return fail(f"--{key} is not an option of {args.dataset}")
    except ValidationError as exc:  # the settings: each problem names its setting
        return fail("; ".join(p.message for p in TrainConfig.problems(exc)))
    except (DatasetError, ValueError, OSError) as exc:
        return fail(str(exc))
    out = Path(args.out or Path(args.file).with_suffix("").name + "-run")
    resume = None
    if args.resume:
        resume = Path(args.resume)
        if resume.is_dir():
            resume = latest_checkpoint(resume / "checkpoints") or latest_checkpoint(resume)
            if resume is None:
                return fail(f"no checkpoint in {args.resume}")
        elif not resume.is_file():
            return fail(f"no such checkpoint: {args.resume}")
    start = 0
    if resume is not None:
        from safetensors import safe_open

        with safe_open(str(resume), framework="pt") as f:
            start = int((f.metadata() or {}).get("step", 0))
    progress = ProgressReporter(config.steps, err, start=start)
    initial = _initial_weights(args.weights, graph) if args.weights else None
    frozen = _frozen_names(args.weights) if args.weights else []

    def on_interrupt(signum: int, frame: Any) -> None:
        if progress.stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        progress.stop_requested = True

    previous = signal.signal(signal.SIGINT, on_interrupt)
    name = terminal_safe(graph.name or Path(args.file).name)
    title = data.info.title if isinstance(data, Dataset) else args.dataset
    print(f"training {name} on {title}: steps {start}→{config.steps}, batch "
          f"{config.batch_size}, {config.optimizer} lr {config.lr:g}, device "
          f"{pick_device(config.device)} (Ctrl-C stops and keeps a checkpoint)", file=err)
    if frozen:
        print(f"{len(frozen)} tensors frozen (from {args.weights}): they stay as they are",
              file=err)
    try:
        result = train_graph(graph, data, config, progress, out_dir=out, resume_from=resume,
                             dataset_options=options, initial_weights=initial,
                             frozen=frozen)
    except FitError as exc:
        for sentence in exc.problems:
            print(f"error: {sentence}", file=err)
        return 1
    except (DatasetError, ValueError) as exc:
        return fail(str(exc))
    finally:
        signal.signal(signal.SIGINT, previous)
    m = result.metrics
    summary = [f"{label} {m[key]:.4f}" for key, label in
               (("train_loss", "train loss"), ("val_loss", "val loss")) if key in m]
    if "val_accuracy" in m:
        summary.append(f"val accuracy {m['val_accuracy']:.1%}")
    verb = "stopped" if result.stopped else "done"
    print(f"\n{verb} after {result.steps} steps in {result.seconds:.1f} s: "
          f"{', '.join(summary) or 'no metrics yet'}", file=err)
    print(f"weights: {result.weights}", file=err)
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint} (continue with --resume {out})", file=err)
    print(f"export: shipyard export {args.file} --format onnx --weights {result.weights} "
          "-o model.onnx", file=err)
    return 0


SQL_HISTORY = Path.home() / ".shipyard_sql_history"


def _cell(value: Any, width: int = 60) -> str:
    text = "NULL" if value is None else str(value)
    text = terminal_safe(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as an aligned text table, numbers to the right."""
    cells = [[_cell(c) for c in columns]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    numeric = [bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows)
               for i in range(len(columns))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(row, widths, numeric, strict=True)).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def _sql_summary(result: Any, written: str | None) -> list[str]:
    from compute.engine.report import _count

    lines = []
    for s in result.statements:
        if s.columns:
            lines.append(render_rows(s.columns, s.rows))
            lines.append(f"({len(s.rows)} row{'s' if len(s.rows) != 1 else ''}"
                         + (", cut at the row limit" if s.truncated else "") + ")")
        else:
            lines.append(f"{s.kind.upper()}: {s.changed} row{'s' if s.changed != 1 else ''}")
    change = result.change
    if change is not None:
        n, e = change["nodes"], change["edges"]
        parts = [f"{len(n[k])} node{'s' if len(n[k]) != 1 else ''} {k}" for k in
                 ("added", "removed", "changed") if n[k]]
        parts += [f"{len(e[k])} edge{'s' if len(e[k]) != 1 else ''} {k}" for k in
                  ("added", "removed") if e[k]]
        parts += [f"{field} changed" for field in change["model"]]
        if change.get("totals"):
            parts.append(f"now {_count(change['totals']['params'])} params, "
                         f"{_count(change['totals']['flops'])}FLOPs per sample")
        weights = change.get("weights")
        if weights:
            counts = {k: (len(v) if isinstance(v, list) else v) for k, v in weights.items()
                      if k not in ("tensors", "notes")}
            parts.append(f"weights: {weights.get('tensors', '?')} tensors, " + ", ".join(
                f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n) + "".join(
                f"; {note}" for note in weights.get("notes", [])))
        lines.append("changed: " + "; ".join(parts) if parts else "changed")
        lines.append(f"written to {written}" if written else
                     "not written: pass --write to save the change")
    return lines


class _SqlSession:
    """One model being queried: its document (and weights), changed statement by statement,
    written back after each change when asked."""

    def __init__(self, args: argparse.Namespace) -> None:
        from compute.engine.sql import empty_document

        self.args = args
        self.path = Path(args.file)
        if args.new:
            if self.path.exists() and not args.force:
                raise UsageError(f"{self.path} exists; pass --force to start it afresh")
            self.document: dict[str, Any] = empty_document()
        else:
            if not self.path.is_file():
                raise UsageError(f"no such file: {self.path} (pass --new to start an empty "
                                 "model there)")
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise UsageError(f"{self.path} is not a JSON file: {exc}") from None
            if not isinstance(loaded, dict):
                raise UsageError(f"{self.path} holds no graph (a JSON object)")
            self.document = loaded
        self.trained = self._trained() if args.weights else None

    def _trained(self) -> Any:
        from safetensors.torch import load_file

        from compute.engine.sql import TrainedModel

        path = Path(self.args.weights)
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise UsageError(f"{path} is not a safetensors file: {exc}") from None
        return TrainedModel(state=state, frozen=frozenset(_frozen_in(str(path))),
                            dataset=self.args.dataset)

    def run(self, script: str) -> int:
        from compute.engine.sql import SqlError, run_sql

        try:
            result = run_sql(self.document, script, trained=self.trained)
        except SqlError as exc:
            self._print_error(exc)
            return EXIT_INVALID
        written = None
        if result.changed:
            if result.document is not None:
                self.document = result.document
            if result.state is not None and self.trained is not None:
                self.trained.state = result.state
                self.trained.frozen = result.frozen or frozenset()
            if self.args.write:
                written = self._write()
        if self.args.json:
            print(json.dumps(result.to_json(), indent=2, default=str))
        else:
            print("\n".join(_sql_summary(result, written)))
        return EXIT_OK

    def _write(self) -> str:
        from safetensors.torch import save_file

        from compute.engine.training import unshared

        self.path.write_text(json.dumps(self.document, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        if self.trained is None:
            return str(self.path)
        save_file({k: v.contiguous() for k, v in unshared(self.trained.state).items()},
                  self.args.weights,
                  metadata={"shipyard.frozen": json.dumps(sorted(self.trained.frozen))})
        return f"{self.path} and {self.args.weights}"

    @staticmethod
    def _print_error(exc: Any) -> None:
        print(f"error: {terminal_safe(exc.message)}", file=sys.stderr)
        if exc.sql is not None and exc.position is not None:
            start = exc.sql.rfind("\n", 0, exc.position) + 1
            end = exc.sql.find("\n", exc.position)
            line = exc.sql[start:end if end != -1 else None]
            print(f"  {terminal_safe(line)}\n  {' ' * (exc.position - start)}^",
                  file=sys.stderr)
        for p in exc.problems[:20]:
            where = p.get("node") or "graph"
            print(f"  - {terminal_safe(where)}: {terminal_safe(p['message'])}",
                  file=sys.stderr)


def _sql_prompt(session: _SqlSession) -> int:
    """Statements typed one after another, each run when its `;` is typed (or at a blank
    line), with history across sessions."""
    import sqlite3

    try:
        import readline
    except ImportError:  # not on every platform; the prompt works without history
        readline = None  # type: ignore[assignment]
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(SQL_HISTORY)
    print("Shipyard SQL: tables model, nodes, edges, blocks"
          + (", tensors, heads, eval" if session.trained else "")
          + ". End a statement with ; (Ctrl-D quits).", file=sys.stderr)
    buffer = ""
    try:
        while True:
            try:
                line = input("sql> " if not buffer else "...> ")
            except EOFError:
                print(file=sys.stderr)
                break
            buffer += line + "\n"
            if sqlite3.complete_statement(buffer) or (not line.strip() and buffer.strip()):
                if buffer.strip():
                    if readline is not None:  # one entry per statement, however typed
                        readline.add_history(" ".join(buffer.split()))
                    session.run(buffer)
                buffer = ""
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(SQL_HISTORY)
    return EXIT_OK


def _sql_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shipyard sql",
        description="Runs SQL (SQLite's) over the model's tables: model, nodes, edges, blocks, "
        "and with --weights tensors, heads and eval. A script runs as one transaction; a "
        "change is validated as a saved graph is. See docs/sql.md.")
    p.add_argument("file", help="a graph JSON file")
    p.add_argument("statement", nargs="?", help="the statements to run (default: -f, "
                   "standard input, or a prompt on a terminal)")
    p.add_argument("-f", "--file", dest="script_file", metavar="SCRIPT",
                   help="run the statements in this file (- for standard input)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--write", action="store_true",
                   help="save changes to FILE (and to --weights)")
    p.add_argument("--dump", action="store_true",
                   help="print statements that rebuild the model on an empty one")
    p.add_argument("--new", action="store_true",
                   help="start from an empty model (FILE is written with --write)")
    p.add_argument("--force", action="store_true", help="with --new: replace FILE")
    p.add_argument("--weights", help="the model's trained weights (.safetensors): adds the "
                   "tensors, heads and eval tables; --write saves changed weights there")
    p.add_argument("--dataset", help="the dataset eval and heads read (default: none)")
    return p


def cmd_sql(args: argparse.Namespace) -> int:
    from compute.engine.sql import dump_sql

    session = _SqlSession(args)
    if args.dump:
        print(dump_sql(session.document), end="")
        return EXIT_OK
    if args.script_file is not None:
        source = Path(args.script_file)
        if args.script_file != "-" and not source.is_file():
            raise UsageError(f"no such file: {source}")
        script = sys.stdin.read() if args.script_file == "-" else source.read_text("utf-8")
        return session.run(script)
    if args.statement is not None:
        return session.run(args.statement)
    if not sys.stdin.isatty():
        return session.run(sys.stdin.read())
    return _sql_prompt(session)


def cmd_up(args: argparse.Namespace) -> int:
    from compute.serve import serve

    return serve(host=args.host, port=args.port)


def cmd_worker(args: argparse.Namespace) -> int:
    from compute.serve import default_queues, parse_queues, run_worker

    try:
        queues = parse_queues(args.queues) if args.queues is not None else default_queues()
        return run_worker(queues, concurrency=args.concurrency, loglevel=args.loglevel,
                          name=args.name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _django() -> None:
    """Django set up for a command; once: a second django.setup() would configure logging
    again, onto whatever sys.stderr is by then (a caller's capture, closed later)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "builder.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def cmd_worker_health(args: argparse.Namespace) -> int:
    """Exit 0 when the worker is up and beating its heartbeat, 1 (saying why) when not."""
    import socket

    from compute.serve import parse_queues

    try:
        queues = parse_queues(args.queues)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    name = args.name or f"shipyard-{'+'.join(queues)}@{socket.gethostname()}"
    _django()
    from compute.jobs.workers import health

    try:
        problem = health(name)
    except Exception as exc:  # the database is away: the worker cannot work either
        problem = f"could not read the workers from the database: {type(exc).__name__}"
    if problem:
        print(f"shipyard: unhealthy: {problem}", file=sys.stderr)
        return 1
    print(f"{name}: ok")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """The sweep every worker runs, on its own: hands on or fails runs whose worker is
    gone or whose time is up (useful where no worker may be left to do it)."""
    import time

    if args.every is not None and args.every < 1:
        raise UsageError("--every must be at least 1 second")
    _django()
    from django.conf import settings
    from django.db import connection

    import compute.celery_app  # noqa: F401  (a run handed on is queued through this app)
    from compute.jobs import services

    every = args.every or settings.JOB_SWEEP_SECONDS
    while True:
        try:
            changed = services.sweep()
            if changed:
                print(f"shipyard: sweep: runs {changed} had lost their worker or time",
                      file=sys.stderr, flush=True)
        except Exception as exc:  # the database may be away for a moment
            if args.once:
                raise
            print(f"shipyard: sweep failed: {type(exc).__name__}: {exc}", file=sys.stderr,
                  flush=True)
        finally:
            connection.close()
        if args.once:
            return 0
        time.sleep(every)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shipyard", description="Shipyard: draw a model as a graph, inspect it, run it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="report shapes, parameters, FLOPs and problems")
    p.add_argument("file", help="a graph JSON file, or - for standard input")
    p.add_argument("--format", choices=["json", "table"], default="json")
    p.add_argument("--no-flops", action="store_true", help="skip FLOP counting (faster)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("export", help="write the model as ONNX or as a PyTorch file")
    p.add_argument("file", help="a graph JSON file, or - for standard input")
    p.add_argument("--format", choices=["onnx", "pytorch"], required=True)
    p.add_argument("-o", "--output", required=True, help="the file to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--weights", help="trained weights to export (.safetensors or torch.save)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="read an ONNX model as a graph, its weights beside it",
                       description="Writes the graph JSON to OUTPUT and the file's weights "
                       "beside it as OUTPUT with .safetensors (load them with export or train "
                       "--weights). Operators that map onto no block are listed, and nothing "
                       "is written.")
    p.add_argument("file", help="an ONNX model (.onnx), weights inside the file")
    p.add_argument("-o", "--output", required=True, help="the graph JSON file to write")
    p.add_argument("--name", help="the graph's name (default: the file's name)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("blocks", help="print the block catalog as JSON")
    p.add_argument("type", nargs="?", help="print only this block type")
    p.add_argument("--markdown", action="store_true",
                   help="print the reference for people (docs/blocks.md) instead")
    p.set_defaults(func=cmd_blocks)

    p = sub.add_parser("new", help="write a built-in starter graph (list them without a name)")
    p.add_argument("starter", nargs="?")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_new)

    # Listed for the help text only: main() hands `train ...` to the training loop.
    sub.add_parser("train", help="train a graph on a dataset, from the terminal")

    # Listed for the help text only: main() parses `sql ...` with its own parser, which
    # takes the statement before or after the options.
    sub.add_parser("sql", help="query or change a model in SQL (a prompt without a statement)")

    p = sub.add_parser("up", help="run the whole app on this machine (Ctrl-C stops it)")
    p.add_argument("--host", default=os.environ.get("SHIPYARD_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("SHIPYARD_PORT", "8000")))
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run a Celery worker that trains queued runs",
                       description="Runs jobs from Redis (REDIS_URL) and records them in the "
                       "database (DATABASE_URL; share it with the web app).")
    p.add_argument("--queues", help="comma-separated, of cpu, gpu, fpga "
                   "(default: cpu, and gpu when CUDA is available)")
    p.add_argument("--concurrency", type=int,
                   help="runs at a time (default 1; a gpu worker always runs one)")
    p.add_argument("--loglevel", default="info", type=str.lower,
                   choices=["debug", "info", "warning", "error", "critical"])
    p.add_argument("--name", help="the Celery node name (default: shipyard-QUEUES@HOST)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("worker-health", help="exit 0 if a worker on this machine is healthy",
                       description="Checks the worker's row in the database: registered, "
                       "not stopped, heartbeat within SHIPYARD_HEARTBEAT_TIMEOUT. For a "
                       "container's health check.")
    p.add_argument("--queues", default="cpu",
                   help="the queues the worker serves, as given to `shipyard worker` (its "
                   "default name is made from them and this machine's name)")
    p.add_argument("--name", help="the worker's Celery node name, if it was given one")
    p.set_defaults(func=cmd_worker_health)

    p = sub.add_parser("sweep", help="hand on runs whose worker is gone, every few seconds",
                       description="What every worker does every SHIPYARD_SWEEP_SECONDS, "
                       "as a process of its own.")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--every", type=int, help="seconds between passes "
                   "(default SHIPYARD_SWEEP_SECONDS)")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["train"]:
            return cmd_train(argv[1:])
        if argv[:1] == ["sql"]:
            return cmd_sql(_sql_parser().parse_intermixed_args(argv[1:]))
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"shipyard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("SHIPYARD_DEBUG"):
            raise
        print(f"shipyard: internal error: {type(exc).__name__}: {exc}\n"
              "(run again with SHIPYARD_DEBUG=1 for the traceback, and please report it)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
