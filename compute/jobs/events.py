"""What a run reports, as the messages clients receive: typed dicts with a sequence number.
`Event` lists the types; each is a `TypedDict` below, and the OpenAPI document's `JobEvent`
(a `oneOf` on `type`) is generated from them (compute.jobs.schema). A new kind of event is
one more TypedDict in that union, and a choice of `models.JobEvent.Type`.

Over the WebSocket and from `GET /api/jobs/{id}/metrics?since=SEQ` alike, each event is
one JSON object:

    {"type": "status", "seq": 7, "step": 0, "time": 1.7e9, "status": "running", ...}
    {"type": "metric", "seq": 8, "step": 10, "time": ..., "name": "train_loss", "value": 2.3}
    {"type": "metric", "seq": 9, "step": 20, "time": ..., "name": "train_loss", "value": null,
     "nonfinite": "nan"}
    {"type": "attention", "seq": 9, "step": 50, "time": ..., "node": "blocks.0.attn",
     "heads": 4, "rows": 32, "cols": 32, "scale": [[0.9, ...], ...], "data": "<base64>",
     "tokens": ["T", "h", "e", " ", ...]}
    {"type": "sample", "seq": 10, "step": 50, "time": ..., "text": "the harbour ..."}

JSON has no NaN or infinity: a metric that is not a finite number has `value` null and
`nonfinite` "nan", "inf" or "-inf" (and so in the run's latest `metrics`, see
`latest_metrics`).

Attention maps travel compactly: per head, rows × cols bytes, row-major, each byte
`round(255 * weight / scale[head][row])` (a row's largest weight is 255); the weight is
`byte / 255 * scale[head][row]`.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, NotRequired, cast, get_args, get_type_hints

import torch
from django.db import IntegrityError, transaction
from django.db.models import F
from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic reads the schema from it (Python < 3.12)

from .models import Job, JobEvent

log = logging.getLogger(__name__)

NonFinite = Literal["nan", "inf", "-inf"]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]  # Job.Status


class _Numbered(TypedDict):
    # Annotated, not attribute docstrings: these are inherited, and pydantic reads the
    # docstrings of the class it describes only. A new event has seq 0 until `store`
    # numbers it; clients only ever see numbered ones.
    seq: Annotated[int, Field(description="1, 2, 3, ... within the run.")]
    step: Annotated[int, Field(description="Optimizer steps done when reported (training); "
                                           "rows measured (a benchmark).")]
    time: Annotated[float, Field(description="Unix seconds.")]


@with_config(ConfigDict(use_attribute_docstrings=True))
class StatusEvent(_Numbered):
    """The run's status changed (queued, running, ended), or it started again."""

    type: Literal["status"]
    status: RunStatus
    """The run's new status."""
    total: int
    """The run's total_steps."""
    attempts: int
    device: str
    worker: str
    error: str
    """The run's error then."""


@with_config(ConfigDict(use_attribute_docstrings=True))
class MetricEvent(_Numbered):
    """A measurement at a step."""

    type: Literal["metric"]
    name: str
    """train_loss, val_loss, val_accuracy, lr, grad_norm, samples_per_s, tokens_per_s, and
    aux_loss for a model with a MixtureOfExperts."""
    value: float | None
    """Null for a value that is not a finite number (see nonfinite)."""
    nonfinite: NotRequired[NonFinite]
    """Only when the value is not a finite number (JSON has none): what it is."""


@with_config(ConfigDict(use_attribute_docstrings=True))
class AttentionEvent(_Numbered):
    """An attention module's weights on a sample, per head: a MultiHeadAttention's, or a
    Softmax block's over square scores (attention built from parts; one head for [T, T])."""

    type: Literal["attention"]
    node: str
    """The module's path, e.g. blocks.0.attn: the node's id, inside each Repeat copy."""
    heads: int
    rows: int
    cols: int
    scale: list[list[float]]
    """scale[head][row], the row's largest weight."""
    data: str
    """base64 of heads x rows x cols bytes; weight = byte / 255 x scale[head][row]."""
    tokens: NotRequired[list[str]]
    """The example's tokens, one per position (a text's characters; other token inputs'
    ids), on both axes; only when known. More than rows when the map is pooled: cell i
    covers positions floor(i x len / rows) to ceil((i + 1) x len / rows) - 1."""


@with_config(ConfigDict(use_attribute_docstrings=True))
class SampleEvent(_Numbered):
    """Text the model wrote (runs on text)."""

    type: Literal["sample"]
    text: str


class ProgressEvent(_Numbered):
    """How far a benchmark is: "onnxruntime, batch 64: 40/100"."""

    type: Literal["progress"]
    backend: Annotated[str, Field(description="eager, compile, onnxruntime, eager_bf16 or "
                                              "compile_bf16.")]
    batch: int
    done: Annotated[int, Field(description="Repetitions done (warm-up ones included).")]
    total: int


class BenchmarkRow(TypedDict):
    """One backend at one batch size, measured; or why that backend cannot run the model
    (`error`, its figures null). A benchmark run's `result.rows` holds these."""

    backend: Annotated[str, Field(description="eager, compile, onnxruntime, eager_bf16 or "
                                              "compile_bf16.")]
    batch: int
    error: Annotated[str, Field(description="Empty when it ran; else the reason, one "
                                            "sentence.")]
    latency_ms_median: float | None
    latency_ms_p95: float | None
    samples_per_s: float | None
    tokens_per_s: Annotated[float | None, Field(description="Token models only.")]
    peak_memory_bytes: Annotated[int | None, Field(description="CUDA: max_memory_allocated; "
                                                              "CPU: the peak RSS.")]
    flops_per_s: Annotated[float | None, Field(description="The inspected FLOP count over "
                                                           "the median latency.")]
    max_abs_diff: Annotated[float | None, Field(description="Largest output difference to "
                                                            "eager on the same inputs (null "
                                                            "when it is not a finite number).")]
    within_tolerance: Annotated[bool, Field(description="False: flagged, not ranked "
                                                        "(docs/benchmarks.md).")]


class BenchmarkEvent(_Numbered, BenchmarkRow):
    """One backend at one batch size, measured; or why that backend cannot run the model
    (`error`, its figures null)."""

    type: Literal["benchmark"]


class NodeCost(TypedDict):
    node: Annotated[str, Field(description="The graph node's id; inside a Repeat, "
                                           "'<repeat id>.<copy>.<inner id>' per copy.")]
    parent: Annotated[str | None, Field(description="The Repeat holding it, if any.")]
    type: str
    ms: float
    share: Annotated[float, Field(description="Of the forward time, 0 to 1.")]
    flops: int
    flops_per_s: float | None


class NodeCostsRow(TypedDict):
    """Where the forward time goes, per graph node (eager, at one batch size). A benchmark
    run's `result.node_costs` holds these."""

    backend: str
    batch: int
    method: Annotated[str, Field(description="How it was measured (docs/benchmarks.md).")]
    nodes: list[NodeCost]


class NodeCostsEvent(_Numbered, NodeCostsRow):
    """Where the forward time goes, per graph node (eager, at one batch size)."""

    type: Literal["node_costs"]


@with_config(ConfigDict(use_attribute_docstrings=True))
class Machine(TypedDict):
    """Where a benchmark ran, as its worker saw it."""

    cpu: str
    """The CPU's model name."""
    cores: int
    gpu: str | None
    """The GPU's name; null without one."""
    gpu_memory: int | None
    """Bytes; null without a GPU."""
    device: str
    """What it measured on: cpu, or cuda:0."""
    torch: str
    """PyTorch's version."""
    onnxruntime: str | None
    """ONNX Runtime's version; null when it is not installed."""
    python: str


@with_config(ConfigDict(use_attribute_docstrings=True))
class BenchmarkResult(TypedDict):
    """What a benchmark run measured (a run's `result`), filled in as it goes: the machine
    as soon as it starts, the rows and per-node costs as they land."""

    kind: NotRequired[Literal["benchmark"]]
    """Set on results stored since FPGA runs came (older ones have none)."""
    machine: Machine
    rows: list[BenchmarkRow]
    """One per backend and batch size measured so far, in the order they were measured."""
    node_costs: list[NodeCostsRow]
    settings: dict[str, Any]
    """The settings it ran with, complete (its config)."""


@with_config(ConfigDict(use_attribute_docstrings=True))
class StageEvent(_Numbered):
    """An FPGA run's stage began ("compiling (first compile takes 5-20 s)"), or ended with
    its time."""

    type: Literal["stage"]
    stage: str
    """converting, writing, compiling, emulating, tracing, testbench, sweep, rtl, vitis."""
    text: str
    """What it does, in words."""
    seconds: float | None
    """Null when it begins; how long it took when it ends."""


class NodeError(TypedDict):
    node: Annotated[str, Field(description="The graph node's id; inside a Repeat, "
                                           "'<repeat id>.<copy>.<inner id>' per copy.")]
    max_error: float
    mean_error: float


@with_config(ConfigDict(use_attribute_docstrings=True))
class Comparison(TypedDict):
    """The fixed-point emulation against the float PyTorch model on the same inputs."""

    precision: str
    samples: int
    inputs: str
    """Where the inputs came from, in words: a dataset's validation split, or seeded random
    values."""
    agreement: float | None
    """Top-class agreement, 0 to 1 (models that output scores); null otherwise."""
    max_error: float | None
    mean_error: float | None
    nodes: list[NodeError]
    """Per node (hls4ml's tracing), where a layer maps to a node."""


class ComparisonEvent(_Numbered, Comparison):
    """The fixed-point emulation against the float PyTorch model."""

    type: Literal["comparison"]


class SweepRow(TypedDict):
    """One precision of an FPGA run's sweep."""

    bits: int
    precision: str
    agreement: float | None
    max_error: float | None
    mean_error: float | None
    seconds: Annotated[float, Field(description="Converting, compiling and emulating it.")]


class SweepEvent(_Numbered, SweepRow):
    """One precision of an FPGA run's sweep, measured."""

    type: Literal["sweep"]


@with_config(ConfigDict(use_attribute_docstrings=True))
class ToolReport(TypedDict):
    """What a tool step of an FPGA run found (Verilator, Yosys, Vitis HLS), or why it did
    not run (`error`)."""

    tool: str
    """verilator, yosys or vitis_hls."""
    ran: bool
    error: str
    """Empty when it ran; else why not, in words (a missing tool, its own message)."""
    figures: dict[str, Any]
    """What it reported: bit_exact, max_diff (Verilator); luts, ffs, pipeline_depth (Yosys);
    latency, interval, resources (Vitis HLS)."""


class ToolEvent(_Numbered, ToolReport):
    """A tool step of an FPGA run ended."""

    type: Literal["tool"]


@with_config(ConfigDict(use_attribute_docstrings=True))
class FpgaResult(TypedDict):
    """What an FPGA run found (a run's `result`), filled in as it goes."""

    kind: Literal["fpga"]
    settings: dict[str, Any]
    """The settings it ran with, complete (its config)."""
    warnings: list[dict[str, Any]]
    """Blocks computed approximately on the FPGA (lookup tables), as problems naming their
    node."""
    stages: dict[str, float]
    """Seconds each stage took."""
    comparison: Comparison | None
    sweep: list[SweepRow]
    tools: list[ToolReport]
    log_tail: list[str]
    """When the tools failed: the last lines of their log."""


def machine(info: Mapping[str, Any]) -> Machine:
    """The machine as the engine reports it (its `machine` event), its members only."""
    return cast(Machine, {name: info[name] for name in get_type_hints(Machine)})


Event = (StatusEvent | MetricEvent | AttentionEvent | SampleEvent | ProgressEvent
         | BenchmarkEvent | NodeCostsEvent | StageEvent | ComparisonEvent | SweepEvent
         | ToolEvent)
RunResult = BenchmarkResult | FpgaResult

# By their `type`, in the order of `Event`: what the schema and the API's filter list.
EVENT_TYPES: dict[str, type] = {
    get_args(get_type_hints(kind)["type"])[0]: kind for kind in get_args(Event)}


class EventsMessage(TypedDict):
    """What goes to a job's WebSocket group (consumers.JobConsumer.job_events)."""

    type: Literal["job.events"]
    events: list[Event]


def group_name(job_id: int) -> str:
    return f"job-{job_id}"


def status_event(job: Job) -> StatusEvent:
    return {"type": "status", "seq": 0, "step": job.step, "time": time.time(),
            "status": cast(RunStatus, job.status),  # one of Job.Status (a test checks)
            "total": job.total_steps, "attempts": job.attempts, "device": job.device,
            "worker": job.worker, "error": job.error}


def nonfinite(value: float) -> NonFinite | Literal[""]:
    """"nan", "inf" or "-inf" for a value JSON cannot hold; "" for a finite one."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return ""


def metric_event(step: int, name: str, value: float) -> MetricEvent:
    event: MetricEvent = {"type": "metric", "seq": 0, "step": step, "time": time.time(),
                          "name": name, "value": value}
    flag = nonfinite(value)
    if flag:
        event["value"] = None
        event["nonfinite"] = flag
    return event


def stored_metrics(metrics: Mapping[str, float | str]) -> dict[str, float | str]:
    """The latest metrics as the Job row keeps them (JSON): a value that is not finite as
    its word, "nan", "inf" or "-inf" (the database refuses NaN in JSON). Idempotent."""
    return {name: value if isinstance(value, str) else nonfinite(value) or value
            for name, value in metrics.items()}


def latest_metrics(stored: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    """A Job row's metrics as the API gives them: the values (null when not finite), and the
    flags of those that are not finite ("nan", "inf" or "-inf")."""
    values = {k: None if isinstance(v, str) else v for k, v in stored.items()}
    flags = {k: v for k, v in stored.items() if isinstance(v, str)}
    return values, flags


def sample_event(step: int, text: str) -> SampleEvent:
    """A model's sample. It may write any character it knows, NUL too, which PostgreSQL's
    JSON cannot store (the batch would be refused, again and again, until the run stops as
    unstorable): a NUL is shown as ␀ (U+2400)."""
    return {"type": "sample", "seq": 0, "step": step, "time": time.time(),
            "text": text.replace("\x00", "\u2400")}


def progress_event(step: int, progress: Mapping[str, Any]) -> ProgressEvent:
    """A benchmark's progress as the engine reports it (compute.engine.benchmark), numbered
    by `store`; `step` is the rows measured so far."""
    return {"type": "progress", "seq": 0, "step": step, "time": time.time(),
            "backend": progress["backend"], "batch": progress["batch"],
            "done": progress["done"], "total": progress["total"]}


def benchmark_row(row: Mapping[str, Any]) -> BenchmarkRow:
    """A measured row as the engine reports it, its members only, each figure that is not a
    finite number null (JSON has none; such a difference is out of tolerance anyway)."""
    return cast(BenchmarkRow, {name: _finite(row[name]) for name in _BENCHMARK_ROW})


def benchmark_event(step: int, row: Mapping[str, Any]) -> BenchmarkEvent:
    return cast(BenchmarkEvent, {"type": "benchmark", "seq": 0, "step": step,
                                 "time": time.time(), **benchmark_row(row)})


def node_costs_row(costs: Mapping[str, Any]) -> NodeCostsRow:
    """Per-node costs as the engine reports them, their members only, figures that are not
    finite numbers null."""
    return {"backend": costs["backend"], "batch": costs["batch"], "method": costs["method"],
            "nodes": [cast(NodeCost, {name: _finite(node[name]) for name in _NODE_COST})
                      for node in costs["nodes"]]}


def node_costs_event(step: int, costs: Mapping[str, Any]) -> NodeCostsEvent:
    return cast(NodeCostsEvent, {"type": "node_costs", "seq": 0, "step": step,
                                 "time": time.time(), **node_costs_row(costs)})


def stage_event(step: int, stage: str, text: str, seconds: float | None) -> StageEvent:
    return {"type": "stage", "seq": 0, "step": step, "time": time.time(), "stage": stage,
            "text": text, "seconds": seconds}


def comparison_event(step: int, comparison: Comparison) -> ComparisonEvent:
    return cast(ComparisonEvent, {"type": "comparison", "seq": 0, "step": step,
                                  "time": time.time(), **comparison})


def sweep_event(step: int, row: SweepRow) -> SweepEvent:
    return cast(SweepEvent, {"type": "sweep", "seq": 0, "step": step, "time": time.time(),
                             **row})


def tool_event(step: int, report: ToolReport) -> ToolEvent:
    return cast(ToolEvent, {"type": "tool", "seq": 0, "step": step, "time": time.time(),
                            **report})


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


_BENCHMARK_ROW = tuple(get_type_hints(BenchmarkRow))
_NODE_COST = tuple(get_type_hints(NodeCost))


def attention_event(step: int, node: str, maps: torch.Tensor,
                    tokens: list[str] | None = None) -> AttentionEvent:
    """`maps`: (heads, rows, cols) weights in [0, 1], at most 64 × 64 (the loop pools);
    `tokens`: the example's, one per position, when the map is over them."""
    heads, rows, cols = maps.shape
    scale = maps.amax(2, keepdim=True).clamp_min(1e-12)  # per row: rows differ in spread
    quantized = (maps / scale * 255).round().to(torch.uint8)
    event: AttentionEvent = {
        "type": "attention", "seq": 0, "step": step, "time": time.time(), "node": node,
        "heads": heads, "rows": rows, "cols": cols,
        "scale": [[float(f"{s:.4g}") for s in head] for head in scale[..., 0].tolist()],
        "data": base64.b64encode(quantized.numpy().tobytes()).decode("ascii")}
    if tokens is not None:
        event["tokens"] = list(tokens)
    return event


def decode_attention(event: AttentionEvent) -> torch.Tensor:
    """The (heads, rows, cols) weights an attention event carries (to the byte's precision)."""
    raw = torch.frombuffer(bytearray(base64.b64decode(event["data"])), dtype=torch.uint8)
    maps = raw.float().reshape(event["heads"], event["rows"], event["cols"]) / 255
    return maps * torch.tensor(event["scale"])[:, :, None]


_COLUMNS = {"type", "seq", "step", "time", "name", "value"}
# Stored whole in `data`: read back as they were written.
_WHOLE = {JobEvent.Type.PROGRESS, JobEvent.Type.BENCHMARK, JobEvent.Type.NODE_COSTS,
          JobEvent.Type.STAGE, JobEvent.Type.COMPARISON, JobEvent.Type.SWEEP,
          JobEvent.Type.TOOL}


def _row(job_id: int, seq: int, event: Event) -> JobEvent:
    name, value = "", None
    if event["type"] == "metric":
        name, value = event["name"], event["value"]
    elif event["type"] == "attention":
        name = event["node"]
    data = {k: v for k, v in event.items() if k not in _COLUMNS | {"node"}} or None
    return JobEvent(job_id=job_id, seq=seq, type=event["type"], step=event["step"],
                    time=event["time"], name=name, value=value, data=data)


def to_event(row: JobEvent) -> Event:
    """A stored event as clients receive it (the inverse of `_row`)."""
    data: dict[str, Any] = row.data or {}
    seq, step, at = row.seq, row.step, row.time
    if row.type == JobEvent.Type.STATUS:
        return {"type": "status", "seq": seq, "step": step, "time": at,
                "status": data["status"], "total": data["total"],
                "attempts": data["attempts"], "device": data["device"],
                "worker": data["worker"], "error": data["error"]}
    if row.type == JobEvent.Type.METRIC:
        metric: MetricEvent = {"type": "metric", "seq": seq, "step": step, "time": at,
                               "name": row.name, "value": row.value}
        if "nonfinite" in data:
            metric["nonfinite"] = data["nonfinite"]
        return metric
    if row.type == JobEvent.Type.ATTENTION:
        attention: AttentionEvent = {
            "type": "attention", "seq": seq, "step": step, "time": at, "node": row.name,
            "heads": data["heads"], "rows": data["rows"], "cols": data["cols"],
            "scale": data["scale"], "data": data["data"]}
        if "tokens" in data:  # older events have none
            attention["tokens"] = data["tokens"]
        return attention
    if row.type == JobEvent.Type.SAMPLE:
        return {"type": "sample", "seq": seq, "step": step, "time": at, "text": data["text"]}
    if row.type in _WHOLE:
        return cast(Event, {"type": row.type, "seq": seq, "step": step, "time": at, **data})
    raise ValueError(f"event {row.job_id}#{row.seq} has an unknown type {row.type!r}")


def store(job_id: int, events: list[Event]) -> list[Event]:
    """Number `events` after the job's latest and store them, in one transaction. Returns
    them with their `seq`. Safe against a concurrent writer: the job's counter is bumped in
    the database, and a clash on the unique (job, seq) pair is retried."""
    if not events:
        return []
    for attempt in range(5):
        try:
            with transaction.atomic():
                Job.objects.filter(id=job_id).update(last_seq=F("last_seq") + len(events))
                last = Job.objects.filter(id=job_id).values_list("last_seq", flat=True).get()
                first = last - len(events) + 1
                numbered = [e.copy() for e in events]
                for i, e in enumerate(numbered):
                    e["seq"] = first + i
                JobEvent.objects.bulk_create(
                    [_row(job_id, e["seq"], e) for e in numbered])
                return numbered
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def broadcast(job_id: int, events: Iterable[Event]) -> bool:
    """Send stored events to the job's WebSocket group; False (logged) when the channel
    layer cannot be reached. The events are in the database either way: clients backfill."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    events = list(events)
    if not events:
        return True
    try:
        layer = get_channel_layer()
        message: EventsMessage = {"type": "job.events", "events": events}
        async_to_sync(layer.group_send)(group_name(job_id), message)
    except Exception:  # Redis down or restarting: the events wait in the database
        log.warning("could not send %d events of job %s to its watchers", len(events),
                    job_id, exc_info=True)
        return False
    return True


def record_status(job: Job) -> Event:
    """Store and send the job's current status as an event (and tell the administrators'
    queue page that the queue changed)."""
    [event] = store(job.id, [status_event(job)])
    broadcast(job.id, [event])
    notify_queue()
    return event


# The administrators' queue page (compute.jobs.queue) listens on this group: each message
# {"type": "queue.changed"} says "read the queue again". Here, not in queue.py, so that
# every status change can send it without an import cycle.
QUEUE_GROUP = "queue-admin"


class QueueChangedMessage(TypedDict):
    type: Literal["queue.changed"]


def notify_queue() -> None:
    """Send {"type": "queue.changed"} to QUEUE_GROUP; never raises (logged)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    try:
        message: QueueChangedMessage = {"type": "queue.changed"}
        async_to_sync(get_channel_layer().group_send)(QUEUE_GROUP, message)
    except Exception:  # Redis away: the page catches up at its next message or reload
        log.warning("could not tell the queue page that the queue changed", exc_info=True)
