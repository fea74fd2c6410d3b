"""What a run publishes about itself: its dataset manifest (Croissant JSON-LD, made by
compute/engine/manifest.py and recorded on the Job when the data is loaded) and its model
card (Markdown: the architecture, parameters, training settings, final metrics, the
dataset manifest summed up, intended use and limits).

Every user string in the card (the graph's name, an upload's name, source and licence)
is one line with Markdown's special characters backslash-escaped: it reads as the text it
is in any Markdown renderer, and never becomes markup, HTML or a Markdown link (a renderer
that links bare web addresses, as GitHub's does, may link an http(s) source)."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import Any

from compute.engine import inspect_graph, load_graph
from compute.engine.datasets import Dataset
from compute.engine.graph import Graph
from compute.engine.manifest import (
    NOT_DECLARED,
    ManifestError,
    builtin_manifest,
    dataset_manifest,
    write_croissant,
)

from . import store
from .models import Job, Upload

log = logging.getLogger(__name__)
METADATA_KEY = "shipyard.dataset"  # the manifest's key in exported ONNX and safetensors

INTENDED_USE = (
    "A small model built and trained in Shipyard to learn how neural networks work: to "
    "look at what it does to its data, not to make decisions about people or anything that "
    "matters.",
    "It learned only from the dataset above, for a few hundred or thousand steps: it "
    "knows nothing else, repeats the patterns (and the mistakes and biases) of that data, "
    "and its metrics hold for data like its validation split only.",
    "A text model writes text that looks like its training text; it does not know facts "
    "and its output is not true because it reads well.",
)


def upload_manifest(upload: Upload, dataset: Dataset, *, seed: int = 0) -> dict[str, Any]:
    """The manifest of a run's upload, hashing the file's exact bytes."""
    content = store.upload_path(upload).read_bytes()
    csv = upload.kind == Upload.Kind.CSV
    read = (("read as UTF-8",) if csv else
            ("read as UTF-8; bytes that are not UTF-8 become U+FFFD (then '?')",))
    return dataset_manifest(
        dataset, name=upload.name, description=f"An upload: {upload.summary}.",
        source=upload.source, licence=upload.licence, content=content,
        file_name=upload.name, encoding_format="text/csv" if csv else "text/plain",
        seed=seed, read_steps=read)


def job_manifest(job: Job, dataset: Dataset, *, seed: int) -> dict[str, Any]:
    """The manifest of the data a training run loaded (`dataset`)."""
    if job.upload is not None:
        return upload_manifest(job.upload, dataset, seed=seed)
    return builtin_manifest(job.dataset, dataset, seed=seed,
                            options=job.dataset_options or None)


def record_manifest(job: Job, dataset: Dataset, *, seed: int) -> dict[str, Any]:
    """Make a run's manifest, have mlcroissant check and write it, and keep it on the run's
    row. One mlcroissant refuses is kept as made, its problems logged (the description of
    the data is worth more than none); one that cannot be made is logged and the run goes
    on without one (the data itself was read)."""
    try:
        made = job_manifest(job, dataset, seed=seed)
    except Exception:
        log.exception("job %s: no dataset manifest", job.id)
        return {}
    try:
        manifest = write_croissant(made)
    except ManifestError as exc:
        log.error("job %s: %s; it is kept as made", job.id, exc)
        manifest = made
    job.manifest = manifest
    Job.objects.filter(id=job.id).update(manifest=manifest)
    return manifest


def manifest_json(job: Job) -> str:
    """The manifest as exports embed it (compact JSON), or "" when there is none."""
    return json.dumps(job.manifest, ensure_ascii=False, separators=(",", ":")) \
        if job.manifest else ""


def manifest_filename(job: Job) -> str:
    return f"shipyard-run-{job.id}-dataset.croissant.json"


_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|<>&~])")
_SPACE = re.compile(r"\s+")


def text(value: Any, most: int = 300) -> str:
    """A user's (or a manifest's) string as Markdown that shows it as it is: one line,
    at most `most` characters, control characters gone, special characters escaped."""
    line = "".join(c if c.isprintable() else " " for c in str(value))
    line = _SPACE.sub(" ", line).strip()
    if len(line) > most:
        line = line[:most - 1] + "…"
    return _SPECIAL.sub(r"\\\1", line)


def _blocks(graph: Graph) -> list[str]:
    """Each block type and how many, as drawn; a Repeat names what it repeats."""
    counts = Counter(n.type for n in graph.nodes)
    lines = [f"{count} × {kind}" for kind, count in sorted(counts.items())]
    for node in graph.nodes:
        if node.graph is not None:
            times = getattr(node.params, "times", None)
            inner = Counter(n.type for n in node.graph.nodes)
            what = ", ".join(f"{c} × {k}" for k, c in sorted(inner.items()))
            lines.append(f"{node.type} '{text(node.id)}'"
                         f"{f' (×{times})' if times else ''} holds: {what}")
    return lines


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return text(value)


def _architecture(job: Job) -> list[str]:
    document = job.version.document
    lines = [f"- Graph: **{text(job.graph.name)}**, version {job.version.number}"]
    try:
        graph = load_graph(document)
        report = inspect_graph(graph, flops=False)
    except Exception as exc:  # a version that no longer builds: the card says so
        return [*lines, f"- The graph could not be read again: {text(exc)}"]
    lines += [f"- Blocks: {'; '.join(_blocks(graph))}"]
    totals = report.get("totals") or {}
    if totals.get("params") is not None:
        lines.append(f"- Parameters: {totals['params']:,} "
                     f"({totals.get('trainable_params') or 0:,} trainable)")
    return lines


TASKS = {"classification": "classification (one class per sample)",
         "regression": "regression (numbers per sample)",
         "next_token": "next token (the token after each position; a text's next character)"}
TRAINING_KEYS = ("steps", "batch_size", "lr", "min_lr", "warmup_steps", "optimizer",
                 "weight_decay", "beta1", "beta2", "seed", "device")


def _training(job: Job) -> list[str]:
    config = job.config or {}
    lines = [f"- Status: {job.status} at step {job.step:,} of {job.total_steps:,}"]
    task = (job.manifest or {}).get("shipyard:task")
    if task:
        lines.append(f"- Task: {TASKS.get(task, text(task))}")
    if job.device:
        lines.append(f"- Device: {text(job.device)}")
    settings = [f"{key} {_number(config[key])}" for key in TRAINING_KEYS if key in config]
    if settings:
        lines.append(f"- Settings: {', '.join(settings)}")
    if job.weights_of_id:
        lines.append(f"- Started from the weights of run {job.weights_of_id}")
    if job.error:
        lines.append(f"- Ended with: {text(job.error)}")
    return lines


def _metrics(job: Job) -> list[str]:
    lines = []
    for name, value in sorted((job.metrics or {}).items()):
        shown = value.get("value") if isinstance(value, dict) else value
        lines.append(f"- {text(name)}: {_number(shown)}")
    return lines or ["- None recorded."]


def _dataset(job: Job) -> list[str]:
    m = job.manifest
    if not m:
        return ["- This run recorded no dataset manifest (it ended before its data was "
                "loaded, or it trains nothing)."]
    licence = m.get("license") or NOT_DECLARED
    lines = [f"- Name: {text(m.get('name', ''))}",
             f"- Description: {text(m.get('description', ''), 500)}",
             f"- Source: {text(m.get('shipyard:source') or NOT_DECLARED, 500)}",
             f"- Licence: {text(licence, 200)}"]
    if m.get("citeAs") and m.get("citeAs") != m.get("shipyard:source"):
        lines.append(f"- Cite as: {text(m['citeAs'], 500)}")
    size = m.get("shipyard:sizeBytes")
    if isinstance(size, int):
        lines.append(f"- Size: {size:,} bytes")
    count = f"{m.get('shipyard:samples', 0):,} samples"
    if isinstance(m.get("shipyard:characters"), int):
        count = f"{m['shipyard:characters']:,} characters, {count}"
    lines.append(f"- Contents: {count}")
    vocab = m.get("shipyard:vocabulary")
    if isinstance(vocab, list):
        shown = " ".join(repr(v) for v in vocab[:40]) + (" …" if len(vocab) > 40 else "")
        lines.append(f"- Vocabulary ({text(m.get('shipyard:vocabularyOf', ''))}, "
                     f"{len(vocab)}): {text(shown, 600)}")
    lines.append(f"- SHA-256: `{text(m.get('shipyard:sha256', ''), 64)}` "
                 f"({text(m.get('shipyard:sha256Of', ''))})")
    split = m.get("shipyard:split") or {}
    lines.append(f"- Split: {text(split.get('rule', ''), 500)}; train "
                 f"{_number(split.get('train', 0))}, validation "
                 f"{_number(split.get('validation', 0))} {text(split.get('unit', ''))}")
    lines.append("")
    lines.append("Preprocessing, in order:")
    lines.append("")
    lines += [f"- {text(step, 600)}" for step in m.get("shipyard:preprocessing", [])]
    lines.append("")
    lines.append(f"The whole manifest (MLCommons Croissant, JSON-LD): GET "
                 f"/api/jobs/{job.id}/manifest.")
    return lines


def model_card(job: Job) -> str:
    """The run's model card, as Markdown."""
    parts = [f"# Model card: {text(job.graph.name)}, run {job.id}", "",
             "## Architecture", "", *_architecture(job), "",
             "## Training", "", *_training(job), "",
             "## Final metrics", "", *_metrics(job), "",
             "## Dataset", "", *_dataset(job), "",
             "## Intended use and limits", ""]
    for paragraph in INTENDED_USE:
        parts += [paragraph, ""]
    return "\n".join(parts).rstrip() + "\n"
