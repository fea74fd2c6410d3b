"""Imported once, by the server that export processes fork from (see compute.exports): it
builds and exports a small model, so that what torch loads and sets up on first use (about
2 s for a first compile, 2 s more for a first ONNX export) is done before any export forks,
not again in each one."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from .engine import compile_graph, export_onnx, export_pytorch, load_starter


def _warm() -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(Exception):
        module = compile_graph(load_starter("mlp"), seed=0)
        export_pytorch(module, Path(tmp) / "model.py", weights=False)
        export_onnx(module, Path(tmp) / "model.onnx")


_warm()
