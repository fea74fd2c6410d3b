"""The `shipyard` command line.

    shipyard inspect model.json [--format table]    shapes, parameters, FLOPs, problems
    shipyard export model.json --format onnx|pytorch -o OUT
    shipyard blocks [TYPE]                           the block catalog as JSON
    shipyard new STARTER [-o model.json]             write a built-in starter graph
    shipyard train model.json --dataset digits       train from a terminal
    shipyard up                                      the whole app on this machine
    shipyard worker [--queues cpu,gpu,fpga]          a Celery worker that runs jobs

Exit status: 0 success, 1 an invalid graph (every problem is printed), 2 bad usage or an
unreadable file. No traceback reaches the user unless SHIPYARD_DEBUG=1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or an unreadable file: exit 2 with the message."""


def _print_problems(problems: Sequence[Any]) -> None:
    for p in problems:
        print(f"error: {p}", file=sys.stderr)


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


def cmd_train(argv: list[str]) -> int:
    """`shipyard train ...`: the training loop parses its own arguments (and --help)."""
    from compute.engine.training import run_cli

    return run_cli(argv)


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["train"]:
            return cmd_train(argv[1:])
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
