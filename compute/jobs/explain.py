"""What a training run's model does to the data (docs/runs.md, What flows on an edge; What
comes next): the values on every edge for the run's fixed validation example, and the next
characters a character model predicts after a prompt. Both read the run's final weights,
or while it runs its latest checkpoint (compute/engine/probe.py does the work).

A loaded model (built, its weights read; its dataset made again once the edges need the
example) is kept for the next request in a small LRU, keyed by the run and the weights
file with its modification time, so that a newer checkpoint is read again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from typing_extensions import TypedDict  # pydantic reads the schema from it (Python < 3.12)

from compute.engine import GraphError, compile_graph, compiled_info
from compute.engine.datasets import DATASETS, Dataset, DatasetError, dataset_for
from compute.engine.probe import (
    DivergedError,
    EdgeStats,
    NextChars,
    ProbeError,
    Vocabulary,
    edge_values,
    next_chars,
)
from compute.engine.training import example_tokens

from . import kinds, services, store
from .models import Job, Upload
from .services import WEIGHTS_FILE, JobError

CACHED_MODELS = 4  # loaded models kept, the most recently used
MAX_PROMPT = 10_000  # characters a prompt may have (the model reads its last T)


class ExampleBody(TypedDict):
    tokens: list[str] | None  # a text's characters (token ids for other tokens), or None
    weights: Literal["final", "checkpoint"]  # the run's final weights, or its latest checkpoint
    step: int  # the steps those weights had trained


class EdgesBody(TypedDict):
    example: ExampleBody
    edges: dict[str, EdgeStats]  # by the value's source, `node.port`


@dataclass
class Loaded:
    """A run's model, ready to probe. Its dataset, needed only for the fixed example, is
    made on the first request that needs it (a large text takes a while to read)."""

    model: torch.nn.Module
    make_data: Callable[[], Dataset]
    vocab: Vocabulary | None  # None: not a character model
    weights: Literal["final", "checkpoint"]
    step: int
    lock: threading.Lock = field(default_factory=threading.Lock)  # one forward at a time
    _example: tuple[torch.Tensor, list[str] | None] | None = None

    def example(self) -> tuple[torch.Tensor, list[str] | None]:
        """The fixed validation example (a batch of one) and its tokens; call with the
        lock held."""
        if self._example is None:
            data = self.make_data()
            self._example = data.x_val[:1].clone(), example_tokens(data)
        return self._example


_cache: OrderedDict[tuple[int, str, int], Loaded] = OrderedDict()
_cache_lock = threading.Lock()


def _weights_file(job: Job) -> tuple[Path, Literal["final", "checkpoint"]]:
    """The file with the run's weights: the final ones, or while it has none, the latest
    checkpoint. JobError 400 for a run that trains nothing, 409 for one with neither."""
    if job.kind != kinds.TRAIN:
        raise JobError(f"run {job.id} is a {job.kind} run: only a training run has a model "
                       "to look into")
    final = store.local(job, WEIGHTS_FILE) if "weights" in job.files else None
    if final is not None:
        return final, "final"
    checkpoint = store.pull_checkpoints(job)
    if checkpoint is not None:
        return checkpoint, "checkpoint"
    why = f"it is {job.status}" if not job.finished else f"it {job.status} without any"
    raise JobError(f"run {job.id} has no weights yet ({why}): they are there after its "
                   "first checkpoint", status=409)


def _read_state(path: Path, weights: str) -> tuple[dict[str, torch.Tensor], int | None]:
    """A weights file's state dict (a checkpoint's `model.` tensors) and, for a checkpoint,
    its step."""
    if weights == "final":
        return load_file(str(path)), None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        names = [k for k in f.keys() if k.startswith("model.")]  # noqa: SIM118 (not a dict)
        state = {k[6:]: f.get_tensor(k) for k in names}
    step = meta.get("step", "")
    return state, int(step) if step.isdigit() else None


def _load(job: Job, path: Path, weights: Literal["final", "checkpoint"]) -> Loaded:
    document = job.version.document
    seed = job.config.get("seed", 0) if isinstance(job.config, dict) else 0
    try:
        state, step = _read_state(path, weights)
        model = compile_graph(document, seed=0)
        model.load_state_dict(state)
    except FileNotFoundError:  # a checkpoint pruned as we read it: the next one is there
        raise JobError(f"run {job.id}'s checkpoint changed as it was read: ask again",
                       status=409) from None
    except (GraphError, RuntimeError, OSError, ValueError, SafetensorError) as exc:
        raise JobError(f"run {job.id}'s weights cannot be loaded into its model: "
                       f"{str(exc).splitlines()[0]}", status=409) from None
    model.eval()
    seed = seed if isinstance(seed, int) else 0
    upload = job.upload
    options = job.dataset_options if isinstance(job.dataset_options, dict) else {}

    def make_data() -> Dataset:
        try:
            if upload is not None:
                data: Dataset = services.load_upload(upload, document, seed)
                return data
            return dataset_for(model, job.dataset, seed=seed, **options)
        except (DatasetError, TypeError, ValueError) as exc:
            raise JobError(f"run {job.id}'s dataset cannot be made again: {exc}",
                           status=409) from None

    entry = DATASETS.get(job.dataset)
    text = (upload.kind == Upload.Kind.TEXT if upload is not None
            else entry is not None and entry.kind == "text")
    return Loaded(model, make_data, Vocabulary.text() if text else None, weights,
                  step if step is not None else job.step)


def loaded(job: Job) -> Loaded:
    """The run's model, from the cache when its weights file has not changed."""
    path, weights = _weights_file(job)
    try:
        key = (job.id, str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise JobError(f"run {job.id}'s checkpoint changed as it was read: ask again",
                       status=409) from None
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    made = _load(job, path, weights)
    with _cache_lock:
        for old in [k for k in _cache if k[0] == job.id]:
            del _cache[old]  # an older checkpoint of the same run
        _cache[key] = made
        while len(_cache) > CACHED_MODELS:
            _cache.popitem(last=False)
    return made


def edges_of(job: Job) -> EdgesBody:
    """The figures of every edge's value on the run's fixed validation example."""
    model = loaded(job)
    try:
        with model.lock:
            example, tokens = model.example()
            edges = edge_values(compiled_info(model.model).graph, model.model, example)
    except ProbeError as exc:
        raise JobError(str(exc)) from None
    return {"example": {"tokens": tokens, "weights": model.weights, "step": model.step},
            "edges": edges}


def next_of(job: Job, prompt: Any) -> NextChars:
    """The five likeliest next characters after `prompt`, and where each head looked.
    JobError 400 for a run of a model that is not a character model, or a bad prompt."""
    if not isinstance(prompt, str):
        raise JobError("the prompt must be a string", field="prompt")
    if len(prompt) > MAX_PROMPT:
        raise JobError(f"the prompt has {len(prompt):,} characters; the most is "
                       f"{MAX_PROMPT:,}", field="prompt")
    model = loaded(job)
    if model.vocab is None:
        raise JobError(f"run {job.id} did not train a character model on a text: there is "
                       "no next character to predict")
    try:
        with model.lock:
            return next_chars(model.model, model.vocab, prompt, k=5)
    except DivergedError as exc:  # the run's weights, not the prompt
        raise JobError(str(exc), status=409) from None
    except ProbeError as exc:
        raise JobError(str(exc), field="prompt") from None
