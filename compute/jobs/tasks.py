"""Celery tasks: thin interfaces. The Job rows say what to do.

`run_job` is a queue's token (services.enqueue): the worker that takes it starts the
queue's next run by the rule (docs/queue.md), or hands the token back for later when runs
wait but none may start (the queue paused, the worker draining, quotas).

Delivery is at least once (acks_late, reject_on_worker_lost): a token may arrive twice or
when nothing waits, and then does nothing, because only one claim of a queued job wins.
The worker also runs the sweep every SHIPYARD_SWEEP_SECONDS, so that no job stays
"running" after its worker died, and beats its own heartbeat (its Worker row) then.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import connection

from builder.logs import job_context

from . import runner, services, workers

log = logging.getLogger(__name__)


@shared_task(bind=True, name=services.RUN_JOB, acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
def run_job(self, job_id: int, queue: str | None = None) -> None:
    """Start the next run of `queue` (job `job_id`'s queue when the token names none) and
    train it; nothing when no run waits there."""
    if queue is None:  # a token sent before tokens named their queue
        queue = services.Job.objects.filter(id=job_id).values_list("queue", flat=True).first()
        if queue is None:
            log.info("job %s: unknown, and the token names no queue", job_id)
            return
    try:
        job = services.claim_next(queue=queue, worker=self.request.hostname or "",
                                  pid=os.getpid(), hint=job_id)
    except services.QueueBlocked as exc:
        log.info("queue %s: nothing may start now (%s); the token comes back in %s s",
                 queue, exc.reason, settings.JOB_QUEUE_RETRY_SECONDS)
        raise self.retry(countdown=settings.JOB_QUEUE_RETRY_SECONDS) from None
    if job is None:
        log.info("queue %s: nothing waits (token of job %s)", queue, job_id)
        return
    try:
        with job_context(job.id):  # every log line of the run names it (builder/logs.py)
            log.info("job %s: started on queue %s (attempt %s)", job.id, queue, job.attempts)
            runner.run(job)
            log.info("job %s: ended %s", job.id,
                     services.Job.objects.filter(id=job.id).values_list("status", flat=True)
                     .first() or "(deleted)")
    finally:
        connection.close()


@shared_task(name="shipyard.sweep")
def sweep() -> list[int]:
    """Hand on or fail running jobs whose worker stopped answering."""
    return services.sweep()


# The sweep runs on a thread of the prefork parent. A pool child forked while that thread
# is inside SQLite would inherit SQLite's allocator mutex locked and hang at its first
# query: forks wait until the sweep is out of the database.
_sweep_lock = threading.Lock()
os.register_at_fork(before=_sweep_lock.acquire, after_in_parent=_sweep_lock.release,
                    after_in_child=_sweep_lock.release)


def _sweep_forever(stop: threading.Event, hostname: str) -> None:
    while not stop.wait(settings.JOB_SWEEP_SECONDS):
        with _sweep_lock:
            try:
                workers.beat(hostname)
                services.top_up(hostname)
            except Exception:
                log.exception("could not beat this worker's heartbeat or top up its queues")
            try:
                changed = services.sweep()
                if changed:
                    log.warning("sweep: jobs %s had lost their worker or time", changed)
            except Exception:  # the database may be away for a moment; next round, then
                log.exception("sweep failed")
            finally:
                connection.close()


_sweeper_stop = threading.Event()


@worker_ready.connect
def _start_sweeper(sender: Any = None, **kwargs: object) -> None:
    hostname = str(getattr(sender, "hostname", "") or "")
    with _sweep_lock:
        try:
            workers.register(sender)
        except Exception:
            log.exception("could not register this worker")
        finally:
            connection.close()
    threading.Thread(target=_sweep_forever, args=(_sweeper_stop, hostname),
                     name="shipyard-sweep", daemon=True).start()


@worker_shutting_down.connect
def _on_shutdown(sender: str = "", **kwargs: object) -> None:
    """Running jobs checkpoint and go back to the queue, so that a warm shutdown does not
    wait for a long run to end (the pool's children hear it through the database)."""
    _sweeper_stop.set()
    runner.SHUTTING_DOWN.set()
    try:
        services.release_jobs_of(sender)
    except Exception:
        log.exception("could not ask this worker's runs to requeue")
    try:
        workers.stopped(sender)
    except Exception:
        log.exception("could not mark this worker stopped")
