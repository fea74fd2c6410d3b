"""The compute queue for administrators (staff only; docs/queue.md): what waits and what
runs on which worker (`snapshot`), and the actions: pause and resume a queue, change a
waiting run's priority or move it to the front, cancel, requeue a failed or cancelled
run, drain a worker. Each action is refused to anyone not staff (QueueError, 403),
recorded as an AdminAction (who, what, when, on what) and announced to the queue page
(`notify`).

The order runs start in and why they wait are rule.py's (THE RULE)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compute.celery_app import app as celery_app

from . import events, rule, services
from .models import AdminAction, Job, Queue, Worker
from .services import JobError

log = logging.getLogger(__name__)

QUEUES = rule.QUEUES
QUEUE_GROUP = events.QUEUE_GROUP  # Channels group; each message {"type": "queue.changed"}
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
SHOW_LOST_FOR = timedelta(days=1)  # a lost worker leaves the page after this long
Status = Job.Status


class QueueError(JobError):
    """An administrator's action that cannot be done: 400 (bad value), 403 (not staff),
    404 (no such queue or worker), 409 (not in a state for it), 503 (Redis away)."""


def notify() -> None:
    """Tell the queue page to read the queue again (never raises; logged)."""
    events.notify_queue()


def start_order(queue: str) -> list[Job]:
    """The queue's waiting runs in the order they will start, by THE RULE (rule.py)."""
    return rule.start_order(_queue_name(queue))


def wait_reason(job: Job) -> str:
    """Why a queued run waits, in words ("" when it is next and nothing holds it; always
    "" for a run not queued): "queue paused by an administrator", "no worker serves the
    gpu queue", "your quota: at most 2 runs going at once", "waiting for 3 runs ahead"."""
    if job.status != Status.QUEUED:
        return ""
    return rule.waiting_info([job]).get(job.id, (0, ""))[1]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _row(job: Job, position: int | None, reason: str) -> dict[str, Any]:
    return {"id": job.id, "owner": job.owner.get_username(), "graph": job.graph.name,
            "graph_id": job.graph_id, "kind": job.kind, "priority": job.priority,
            "position": position, "reason": reason, "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at), "step": job.step,
            "total_steps": job.total_steps, "worker": job.worker, "status": job.status,
            "attempts": job.attempts}


def snapshot() -> dict[str, Any]:
    """Everything the queue page shows, JSON-ready (times ISO 8601):

    {"at", "queues": [{"name", "paused", "paused_by", "paused_at", "waiting": [row, ...
    in start order], "running": [row, ...]}], "workers": [{"hostname", "host", "queues",
    "pool", "concurrency", "device", "memory", "draining", "lost", "heartbeat_at",
    "runs": [job ids]}]}; a row is {"id", "owner", "graph", "graph_id", "kind",
    "priority", "position", "reason", "created_at", "started_at", "step", "total_steps",
    "worker", "status", "attempts"}. Workers stopped, or lost for more than a day, are
    left out."""
    now = timezone.now()
    plan = rule.plan(QUEUES, related=True)
    states = {q.name: q for q in Queue.objects.select_related("paused_by")}
    running = list(Job.objects.filter(status=Status.RUNNING).select_related("owner", "graph")
                   .order_by("started_at", "id"))
    queues = []
    for name in QUEUES:
        state = states.get(name)
        paused = bool(state and state.paused)
        queues.append({
            "name": name, "paused": paused,
            "paused_by": (state.paused_by.get_username() if paused and state and
                          state.paused_by else None),
            "paused_at": _iso(state.paused_at) if paused and state else None,
            "waiting": [_row(job, plan.position[job.id], plan.reason[job.id])
                        for job in plan.order[name]],
            "running": [_row(job, None, "") for job in running if job.queue == name]})
    timeout = timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    workers = []
    for worker in Worker.objects.filter(stopped_at__isnull=True,
                                        heartbeat_at__gte=now - SHOW_LOST_FOR):
        workers.append({
            "hostname": worker.hostname, "host": worker.host, "queues": worker.queues,
            "pool": worker.pool, "concurrency": worker.concurrency, "device": worker.device,
            "memory": worker.memory, "draining": worker.draining,
            "lost": worker.heartbeat_at is None or worker.heartbeat_at < now - timeout,
            "heartbeat_at": _iso(worker.heartbeat_at),
            "runs": [job.id for job in running if job.worker == worker.hostname]})
    return {"at": now.isoformat(), "queues": queues, "workers": workers}


# Actions


def _staff(actor: Any) -> None:
    if not (getattr(actor, "is_authenticated", False) and getattr(actor, "is_active", False)
            and getattr(actor, "is_staff", False)):
        raise QueueError("only staff may administer the compute queue", status=403)


def _queue_name(name: str) -> str:
    if name not in QUEUES:
        raise QueueError(f"no queue named {str(name)[:40]!r}; queues: {', '.join(QUEUES)}",
                         status=404)
    return name


def _record(actor: Any, action: str, *, job: Job | None = None, queue: str = "",
            worker: str = "", detail: str = "") -> AdminAction:
    return AdminAction.objects.create(actor=actor, action=action, job=job, queue=queue,
                                      worker=worker[:200], detail=detail[:300])


def pause_queue(name: str, actor: Any) -> None:
    """Nothing new starts in the queue; runs going go on; waiting runs keep their places
    (and say why they wait)."""
    _staff(actor)
    name = _queue_name(name)
    with transaction.atomic():
        Queue.objects.get_or_create(name=name)
        if not Queue.objects.filter(name=name, paused=False).update(
                paused=True, paused_by=actor, paused_at=timezone.now()):
            raise QueueError(f"the {name} queue is already paused", status=409)
        _record(actor, "pause", queue=name, detail=f"paused the {name} queue")
    notify()


def resume_queue(name: str, actor: Any) -> None:
    """Runs start in the queue again, in their order (within SHIPYARD_QUEUE_RETRY_SECONDS:
    the tokens held back come again)."""
    _staff(actor)
    name = _queue_name(name)
    with transaction.atomic():
        if not Queue.objects.filter(name=name, paused=True).update(
                paused=False, paused_by=None, paused_at=None):
            raise QueueError(f"the {name} queue is not paused", status=409)
        _record(actor, "resume", queue=name, detail=f"resumed the {name} queue")
    notify()


def _waiting(job: Job, what: str) -> None:
    job.refresh_from_db()
    if job.status != Status.QUEUED:
        raise QueueError(f"run {job.id} is {job.status}: only a waiting run's {what} can "
                         "change", status=409)


def set_priority(job: Job, priority: int, actor: Any) -> None:
    """A waiting run's priority (higher starts sooner; 0 is everyone's), from
    PRIORITY_MIN to PRIORITY_MAX."""
    _staff(actor)
    if isinstance(priority, bool) or not isinstance(priority, int) or not (
            PRIORITY_MIN <= priority <= PRIORITY_MAX):
        raise QueueError(f"priority must be a whole number from {PRIORITY_MIN} to "
                         f"{PRIORITY_MAX}, got {str(priority)[:40]}", field="priority")
    _set_priority(job, priority, actor, "priority",
                  lambda old: f"priority set from {old} to {priority} by an administrator")


def move_to_front(job: Job, actor: Any) -> None:
    """A waiting run starts next in its queue (unless a quota holds it): its priority is
    set above every other waiting run's of that queue."""
    _staff(actor)
    _waiting(job, "place")
    others = (Job.objects.filter(queue=job.queue, status=Status.QUEUED).exclude(id=job.id)
              .order_by("-priority").values_list("priority", flat=True).first())
    priority = job.priority if others is None else max(job.priority, others + 1)
    if priority > PRIORITY_MAX:
        raise QueueError(f"run {job.id} cannot go higher: priorities go up to "
                         f"{PRIORITY_MAX}; lower the others first", status=409)
    _set_priority(job, priority, actor, "move_to_front",
                  lambda old: f"moved to the front of the {job.queue} queue by an "
                              f"administrator (priority {old} to {priority})")


def _set_priority(job: Job, priority: int, actor: Any, action: str, detail: Any) -> None:
    with transaction.atomic():
        _waiting(job, "priority")
        old = job.priority
        if not Job.objects.filter(id=job.id, status=Status.QUEUED).update(priority=priority):
            raise QueueError(f"run {job.id} is no longer waiting", status=409)
        job.priority = priority
        _record(actor, action, job=job, queue=job.queue, detail=detail(old))
    notify()


def cancel(job: Job, actor: Any) -> Job:
    """Cancel a run (services.cancel_job): a waiting one at once, a running one within
    seconds. 409 when it already ended."""
    _staff(actor)
    try:
        job = services.cancel_job(job)
    except JobError as exc:
        raise QueueError(str(exc), status=exc.status) from None
    _record(actor, "cancel", job=job, queue=job.queue, detail="cancelled by an administrator")
    notify()
    return job


def requeue(job: Job, actor: Any) -> Job:
    """A failed or cancelled run again, as a new run (`retry_of` the old one) of the same
    version, kind, dataset and options, settings and time limit, at the end of its queue's
    order (priority 0). The owner's quotas do not stop it: an administrator asked."""
    _staff(actor)
    job.refresh_from_db()
    if job.status not in (Status.FAILED, Status.CANCELLED):
        raise QueueError(f"run {job.id} is {job.status}: only a failed or cancelled run can "
                         "be requeued", status=409)
    with transaction.atomic():
        new = Job.objects.create(
            owner_id=job.owner_id, graph_id=job.graph_id, version_id=job.version_id,
            kind=job.kind, dataset=job.dataset, dataset_options=job.dataset_options,
            upload_id=job.upload_id, config=job.config, queue=job.queue,
            time_limit=job.time_limit, total_steps=job.total_steps, published=job.published,
            retry_of=job, weights_of_id=job.weights_of_id)
        events.store(new.id, [events.status_event(new)])
        _record(actor, "requeue", job=job, queue=job.queue,
                detail=f"requeued by an administrator as run {new.id}")
    new.refresh_from_db()
    try:
        services.enqueue(new)
    except Exception as exc:  # the broker is unreachable
        reason = f"the run queue (Redis) could not be reached: {exc}"
        services.fail_queued(new, reason)
        raise QueueError(reason, status=503) from None
    notify()
    return new


def drain_worker(hostname: str, actor: Any) -> None:
    """The worker finishes the runs it has and takes no more: it stops consuming its
    queues (Celery's cancel_consumer) and any token it still holds goes back (its row's
    `draining`, checked at every claim). It serves again when it restarts."""
    _staff(actor)
    with transaction.atomic():
        worker = Worker.objects.filter(hostname=hostname).first()
        if worker is None:
            raise QueueError(f"no worker named {str(hostname)[:200]!r}", status=404)
        if worker.draining:
            raise QueueError(f"the worker {worker.hostname} is already draining", status=409)
        Worker.objects.filter(id=worker.id).update(draining=True)
        _record(actor, "drain", worker=worker.hostname,
                detail=f"drained {worker.hostname} (queues {', '.join(worker.queues)})")
    for name in worker.queues:
        try:
            celery_app.control.cancel_consumer(name, destination=[worker.hostname],
                                               reply=False)
        except Exception:  # Redis away: the flag alone keeps it from starting runs
            log.warning("could not tell %s to stop consuming %s", worker.hostname, name,
                        exc_info=True)
    notify()
