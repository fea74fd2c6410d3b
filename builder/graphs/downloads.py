"""Downloads of a saved version: its JSON at once; a PyTorch or ONNX file once a child
process has made it within the export budget (compute.exports). The view turns the outcome
into a response."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from compute import exports

from .models import GraphVersion, InitialWeights

FORMATS = {"json": (".json", "application/json"), "pytorch": (".py", "text/x-python"),
           "onnx": (".onnx", "application/onnx"),
           "weights": (".safetensors", "application/octet-stream")}


@dataclass(frozen=True)
class File:
    """What to send: the file an export made (`path`), or `text` itself."""

    filename: str
    content_type: str
    path: Path | None = None
    text: str | bytes = ""


Outcome = File | exports.Pending | exports.Failed


def file_stem(title: str, number: int) -> str:
    """"My model!", 3 -> "my-model-v3": a file name from the graph's title."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", title).strip("-").lower() or "model"
    return f"{stem}-v{number}"


def export_budget() -> exports.Budget:
    return exports.Budget(seconds=settings.EXPORT_SECONDS, memory_mb=settings.EXPORT_MEMORY_MB,
                          processes=settings.EXPORT_PROCESSES)


def download(version: GraphVersion, fmt: str, title: str) -> Outcome:
    """The file of `version` as `fmt` (json, pytorch, onnx, weights), named after `title`;
    Pending while it is being made (waiting up to SHIPYARD_EXPORT_WAIT_SECONDS), Failed when
    it cannot be made within its budget. The ONNX file holds the version's initial weights
    where it has some (an imported model's), else seeded ones; `weights` is those initial
    weights, as safetensors."""
    suffix, content_type = FORMATS[fmt]
    filename = f"{file_stem(title, version.number)}{suffix}"
    if fmt == "json":
        return File(filename, content_type, text=version.document_json)
    if fmt == "weights":
        if version.initial_weights is None:
            return exports.Failed(f"version {version.number} has no initial weights: its runs "
                                  "start from seeded ones", {"reason": "invalid"})
        return File(filename, content_type, text=bytes(version.initial_weights.data))
    weights = None
    if version.initial_weights_id is not None:
        def weights() -> bytes | None:  # read only when an export starts
            row = InitialWeights.objects.filter(id=version.initial_weights_id).first()
            return None if row is None else bytes(row.data)
    outcome = exports.fetch(root=settings.EXPORTS_DIR, version=version.id, fmt=fmt,
                            document=version.document_json, budget=export_budget(),
                            wait=settings.EXPORT_WAIT_SECONDS, weights=weights)
    if isinstance(outcome, exports.Ready):
        return File(filename, content_type, path=outcome.path)
    return outcome
