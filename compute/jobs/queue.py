"""STAND-IN for the compute queue's administration (branch queue-admin).

!!! This file is a naive placeholder written so that the admin's queue page could be built
!!! in parallel with the real module (branch queue-core), which REPLACES IT WHOLE at merge.
!!! Nothing else may rely on anything here beyond the interface below; no logic of the
!!! queue page lives here.

Interface (fixed between the two branches):
    QUEUES, QUEUE_GROUP, notify(), start_order(queue), wait_reason(job), snapshot(),
    pause_queue(name, actor), resume_queue(name, actor), set_priority(job, priority, actor),
    move_to_front(job, actor), requeue(job, actor), cancel(job, actor),
    drain_worker(hostname, actor), QueueError (.status 400/403/409).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from . import events, services
from .models import AdminAction, Job, Queue, Worker

log = logging.getLogger(__name__)

QUEUES = ("cpu", "gpu", "fpga")
QUEUE_GROUP = "queue-admin"


class QueueError(services.JobError):
    """An administrator's action that cannot be done (.status 400, 403 or 409)."""


def notify() -> None:
    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(QUEUE_GROUP,
                                                          {"type": "queue.changed"})
        except Exception:
            log.warning("could not tell the queue page that the queue changed", exc_info=True)

    transaction.on_commit(send)


def start_order(queue: str) -> list[Job]:
    return list(Job.objects.filter(status=Job.Status.QUEUED, queue=queue)
                .select_related("graph", "owner").order_by("-priority", "created_at", "id"))


def _paused(name: str) -> Queue | None:
    return Queue.objects.filter(name=name, paused=True).first()


def _live_workers() -> list[Worker]:
    since = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    return list(Worker.objects.filter(stopped_at__isnull=True, heartbeat_at__gte=since))


def wait_reason(job: Job) -> str:
    if job.status != Job.Status.QUEUED:
        return ""
    if _paused(job.queue):
        return "queue paused by an administrator"
    if not any(job.queue in w.queues and not w.draining for w in _live_workers()):
        return f"no worker serves the {job.queue} queue"
    return "waiting for a free worker"


def _row(job: Job, position: int | None, reason: str) -> dict[str, Any]:
    return {"id": job.id, "owner": job.owner.get_username(), "graph": job.graph.name,
            "graph_id": job.graph_id, "kind": job.kind, "priority": job.priority,
            "position": position, "reason": reason, "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "step": job.step, "total_steps": job.total_steps, "worker": job.worker,
            "status": job.status, "attempts": job.attempts}


def snapshot() -> dict[str, Any]:
    now = timezone.now()
    lost_before = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    queues = []
    for name in QUEUES:
        state = Queue.objects.filter(name=name).select_related("paused_by").first()
        waiting = start_order(name)
        reasons = {job.id: wait_reason(job) for job in waiting[:1]}
        running = (Job.objects.filter(status=Job.Status.RUNNING, queue=name)
                   .select_related("graph", "owner").order_by("started_at", "id"))
        queues.append({
            "name": name, "paused": bool(state and state.paused),
            "paused_by": state.paused_by.get_username() if state and state.paused
            and state.paused_by else None,
            "paused_at": state.paused_at.isoformat() if state and state.paused
            and state.paused_at else None,
            "waiting": [_row(job, i + 1, reasons.get(job.id) or wait_reason(job))
                        for i, job in enumerate(waiting)],
            "running": [_row(job, None, "") for job in running]})
    workers = []
    for worker in Worker.objects.filter(stopped_at__isnull=True):
        workers.append({
            "hostname": worker.hostname, "host": worker.host, "queues": worker.queues,
            "pool": worker.pool, "concurrency": worker.concurrency, "device": worker.device,
            "memory": worker.memory, "draining": worker.draining,
            "lost": worker.heartbeat_at is None or worker.heartbeat_at < lost_before,
            "heartbeat_at": worker.heartbeat_at.isoformat() if worker.heartbeat_at else None,
            "runs": list(Job.objects.filter(status=Job.Status.RUNNING, worker=worker.hostname)
                         .values_list("id", flat=True))})
    return {"at": now.isoformat(), "queues": queues, "workers": workers}


def _record(actor: Any, action: str, **where: Any) -> None:
    AdminAction.objects.create(actor=actor, action=action, **where)
    notify()


def _queue(name: str) -> str:
    if name not in QUEUES:
        raise QueueError(f"no queue named {name!r}; queues: {', '.join(QUEUES)}")
    return name


def pause_queue(name: str, actor: Any) -> None:
    _queue(name)
    with transaction.atomic():
        Queue.objects.update_or_create(name=name, defaults={
            "paused": True, "paused_by": actor, "paused_at": timezone.now()})
        _record(actor, "pause", queue=name)


def resume_queue(name: str, actor: Any) -> None:
    _queue(name)
    with transaction.atomic():
        Queue.objects.update_or_create(name=name, defaults={
            "paused": False, "paused_by": None, "paused_at": None})
        _record(actor, "resume", queue=name)


def _waiting(job: Job) -> None:
    if job.status != Job.Status.QUEUED:
        raise QueueError(f"run {job.id} is {job.status}, not waiting", status=409)


def set_priority(job: Job, priority: int, actor: Any) -> None:
    _waiting(job)
    if not -1000 <= priority <= 1000:
        raise QueueError(f"priority must be between -1000 and 1000, got {priority}")
    with transaction.atomic():
        Job.objects.filter(id=job.id).update(priority=priority)
        _record(actor, "priority", job=job, queue=job.queue,
                detail=f"{job.priority} → {priority}")


def move_to_front(job: Job, actor: Any) -> None:
    _waiting(job)
    top = (Job.objects.filter(status=Job.Status.QUEUED, queue=job.queue)
           .aggregate(m=Max("priority"))["m"] or 0)
    with transaction.atomic():
        Job.objects.filter(id=job.id).update(priority=min(top + 1, 1000))
        _record(actor, "front", job=job, queue=job.queue)


def requeue(job: Job, actor: Any) -> Job:
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        raise QueueError(f"run {job.id} is {job.status}: only a failed or cancelled run "
                         "can be requeued", status=409)
    with transaction.atomic():
        new = Job.objects.create(
            owner=job.owner, graph=job.graph, version=job.version, kind=job.kind,
            dataset=job.dataset, dataset_options=job.dataset_options, upload=job.upload,
            config=job.config, queue=job.queue, priority=job.priority, retry_of=job,
            weights_of=job.weights_of, time_limit=job.time_limit,
            total_steps=job.total_steps, published=job.published)
        events.store(new.id, [events.status_event(new)])
        _record(actor, "requeue", job=job, queue=job.queue, detail=f"as run {new.id}")
    services.enqueue(new)
    return new


def cancel(job: Job, actor: Any) -> Job:
    try:
        job = services.cancel_job(job)
    except services.JobError as exc:
        raise QueueError(str(exc), status=exc.status) from None
    _record(actor, "cancel", job=job, queue=job.queue)
    return job


def drain_worker(hostname: str, actor: Any) -> None:
    if not Worker.objects.filter(hostname=hostname, stopped_at__isnull=True).update(
            draining=True):
        raise QueueError(f"no worker named {hostname!r} is online")
    _record(actor, "drain", worker=hostname)
