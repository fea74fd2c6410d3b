"""The workers as the queue page shows them: each worker process writes its Worker row
when it is ready (register), beats its heartbeat with every sweep (beat) and marks it
stopped when it shuts down (stopped). A worker whose heartbeat is older than
SHIPYARD_HEARTBEAT_TIMEOUT is lost."""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from .models import Worker


def cpu_model() -> str:
    """The CPU's model name (Linux), or the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def device_of(queues: list[str]) -> tuple[str, int | None]:
    """What the worker computes on: the GPU's name and memory (bytes, each GPU's) for a
    worker of the gpu queue that has one, "4 × name" when it has 4, else the CPU's model
    and cores. A worker not serving gpu never touches CUDA (its forked pool children could
    not use it after). `devices` reads the count back."""
    if "gpu" in queues:
        try:
            import torch

            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                count = torch.cuda.device_count()
                name = props.name if count == 1 else f"{count} × {props.name}"
                return name, int(props.total_memory)
        except Exception:  # no driver: it is described by its CPU
            pass
    return f"{cpu_model()}, {os.cpu_count() or 1} cores", None


_GPUS = re.compile(r"(\d+) × ")
_CORES = re.compile(r", (\d+) cores$")


def devices(worker: Worker) -> int:
    """How many devices a run may ask for (`gpus`) on `worker`: its GPUs (a worker with GPU
    memory), else its CPU cores (processes, on the CPU), as `device_of` wrote them."""
    found = (_GPUS.match(worker.device) if worker.memory is not None
             else _CORES.search(worker.device))
    return int(found.group(1)) if found else 1


def most_devices(queue: str) -> int:
    """The most devices (`devices`) a registered worker serving `queue` has: one that has
    not stopped, lost or not (a lost one may come back); 0 when none serves it."""
    rows = Worker.objects.filter(stopped_at__isnull=True).only("queues", "device", "memory")
    return max((devices(w) for w in rows if queue in (w.queues or [])), default=0)


def _queues_of(consumer: Any) -> list[str]:
    try:
        return [q.name for q in consumer.task_consumer.queues]
    except AttributeError:
        return sorted(consumer.app.amqp.queues.consume_from or ["cpu"])


def register(consumer: Any) -> Worker:
    """Write the row of the worker whose Celery consumer is `consumer` (at worker_ready):
    a worker that starts again under the same name starts afresh (not draining)."""
    controller = getattr(consumer, "controller", None)
    pool = getattr(controller, "pool", None)
    pool_name = type(pool).__module__.rsplit(".", 1)[-1] if pool is not None else ""
    queues = _queues_of(consumer)
    device, memory = device_of(queues)
    now = timezone.now()
    hostname = str(consumer.hostname)
    _registered[hostname] = {
        "host": socket.gethostname(), "queues": queues, "pool": pool_name,
        "concurrency": int(getattr(controller, "concurrency", 1) or 1), "device": device[:200],
        "memory": memory}
    worker, _ = Worker.objects.update_or_create(hostname=hostname, defaults={
        **_registered[hostname], "heartbeat_at": now, "draining": False, "stopped_at": None,
        "started_at": now})
    _notify()
    return worker


# What this process registered, by worker name: a row deleted meanwhile is written again.
_registered: dict[str, dict[str, Any]] = {}


def beat(hostname: str) -> None:
    """This worker is alive (its row written again if it was deleted)."""
    now = timezone.now()
    lost = not Worker.objects.filter(
        hostname=hostname, heartbeat_at__gte=now - timedelta(
            seconds=settings.JOB_HEARTBEAT_TIMEOUT)).exists()
    if not Worker.objects.filter(hostname=hostname).update(heartbeat_at=now,
                                                           stopped_at=None):
        known = _registered.get(hostname) or {"host": socket.gethostname(),
                                               "queues": ["cpu"],
                                               "device": device_of([])[0][:200]}
        Worker.objects.create(hostname=hostname, heartbeat_at=now, **known)
    if lost:
        _notify()  # back from lost (or new): the page shows it


def stopped(hostname: str) -> None:
    Worker.objects.filter(hostname=hostname).update(stopped_at=timezone.now())
    _notify()


def _notify() -> None:
    from .events import notify_queue

    notify_queue()


def health(hostname: str) -> str:
    """Why the worker named `hostname` is not healthy, or "" when it is: its row says it
    is running and its heartbeat is fresh. The heartbeat comes from the worker's sweep
    thread, which beats while a run trains (a solo pool cannot answer a Celery ping then)."""
    worker = Worker.objects.filter(hostname=hostname).first()
    if worker is None:
        return f"no worker named {hostname} has registered"
    if worker.stopped_at is not None:
        return f"the worker {hostname} stopped at {worker.stopped_at:%Y-%m-%d %H:%M:%S} UTC"
    timeout = settings.JOB_HEARTBEAT_TIMEOUT
    if worker.heartbeat_at is None or (
            timezone.now() - worker.heartbeat_at > timedelta(seconds=timeout)):
        return f"the worker {hostname} has not beaten its heartbeat for over {timeout} s"
    return ""
