"""What a run reports, as the messages clients receive: typed dicts with a sequence number.

Over the WebSocket and from `GET /api/jobs/{id}/metrics?since=SEQ` alike, each event is
one JSON object:

    {"type": "status", "seq": 7, "step": 0, "time": 1.7e9, "status": "running", ...}
    {"type": "metric", "seq": 8, "step": 10, "time": ..., "name": "train_loss", "value": 2.3}
    {"type": "metric", "seq": 9, "step": 20, "time": ..., "name": "train_loss", "value": null,
     "nonfinite": "nan"}
    {"type": "attention", "seq": 9, "step": 50, "time": ..., "node": "blocks.0.attn",
     "heads": 4, "rows": 32, "cols": 32, "scale": [[0.9, ...], ...], "data": "<base64>"}
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
from typing import Any

import torch
from django.db import IntegrityError, transaction
from django.db.models import F

from .models import Job, JobEvent

log = logging.getLogger(__name__)

Event = dict[str, Any]


def group_name(job_id: int) -> str:
    return f"job-{job_id}"


def status_event(job: Job) -> Event:
    return {"type": "status", "step": job.step, "time": time.time(), "status": job.status,
            "total": job.total_steps, "attempts": job.attempts, "device": job.device,
            "worker": job.worker, "error": job.error}


def nonfinite(value: float) -> str:
    """"nan", "inf" or "-inf" for a value JSON cannot hold; "" for a finite one."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return ""


def metric_event(step: int, name: str, value: float) -> Event:
    event: Event = {"type": "metric", "step": step, "time": time.time(), "name": name,
                    "value": value}
    flag = nonfinite(value)
    if flag:
        event.update(value=None, nonfinite=flag)
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


def sample_event(step: int, text: str) -> Event:
    return {"type": "sample", "step": step, "time": time.time(), "text": text}


def attention_event(step: int, node: str, maps: torch.Tensor) -> Event:
    """`maps`: (heads, rows, cols) weights in [0, 1], at most 64 × 64 (the loop pools)."""
    heads, rows, cols = maps.shape
    scale = maps.amax(2, keepdim=True).clamp_min(1e-12)  # per row: rows differ in spread
    quantized = (maps / scale * 255).round().to(torch.uint8)
    return {"type": "attention", "step": step, "time": time.time(), "node": node,
            "heads": heads, "rows": rows, "cols": cols,
            "scale": [[float(f"{s:.4g}") for s in head] for head in scale[..., 0].tolist()],
            "data": base64.b64encode(quantized.numpy().tobytes()).decode("ascii")}


def decode_attention(event: Event) -> torch.Tensor:
    """The (heads, rows, cols) weights an attention event carries (to the byte's precision)."""
    raw = torch.frombuffer(bytearray(base64.b64decode(event["data"])), dtype=torch.uint8)
    maps = raw.float().reshape(event["heads"], event["rows"], event["cols"]) / 255
    return maps * torch.tensor(event["scale"])[:, :, None]


_COLUMNS = {"type", "seq", "step", "time", "name", "value"}


def _row(job_id: int, seq: int, event: Event) -> JobEvent:
    name = event.get("name", event.get("node", ""))
    value = event.get("value")
    data = {k: v for k, v in event.items() if k not in _COLUMNS | {"node"}} or None
    return JobEvent(job_id=job_id, seq=seq, type=event["type"], step=event["step"],
                    time=event["time"], name=name, value=value, data=data)


def to_event(row: JobEvent) -> Event:
    event: Event = {"type": row.type, "seq": row.seq, "step": row.step, "time": row.time}
    if row.type == JobEvent.Type.METRIC:
        event.update(name=row.name, value=row.value)
    elif row.type == JobEvent.Type.ATTENTION:
        event["node"] = row.name
    event.update(row.data or {})
    return event


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
                numbered = [{**e, "seq": first + i} for i, e in enumerate(events)]
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
        async_to_sync(layer.group_send)(group_name(job_id),
                                        {"type": "job.events", "events": events})
    except Exception:  # Redis down or restarting: the events wait in the database
        log.warning("could not send %d events of job %s to its watchers", len(events),
                    job_id, exc_info=True)
        return False
    return True


def record_status(job: Job) -> Event:
    """Store and send the job's current status as an event."""
    [event] = store(job.id, [status_event(job)])
    broadcast(job.id, [event])
    return event
