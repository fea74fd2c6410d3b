"""Celery tasks: thin interfaces that take a job id. The Job row says what to do.

Delivery is at least once (acks_late, reject_on_worker_lost): a task may arrive twice or
after its job ended, and then does nothing, because only one claim of a queued job wins.
The worker also runs the sweep every SHIPYARD_SWEEP_SECONDS, so that no job stays
"running" after its worker died.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import connection

from . import runner, services

log = logging.getLogger(__name__)


@shared_task(bind=True, name=services.RUN_JOB, acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
def run_job(self, job_id: int) -> None:
    """Claim job `job_id` and train it; nothing when another worker has it or it ended."""
    try:
        job = services.claim_job(job_id=job_id, worker=self.request.hostname or "",
                                 pid=os.getpid())
    except services.OwnerBusy:
        # Its owner has the most runs allowed running: wait in the queue a little.
        raise self.retry(countdown=5) from None
    if job is None:
        log.info("job %s: nothing to do (taken, finished or unknown)", job_id)
        return
    try:
        runner.run(job)
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


def _sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(settings.JOB_SWEEP_SECONDS):
        with _sweep_lock:
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
def _start_sweeper(**kwargs: object) -> None:
    threading.Thread(target=_sweep_forever, args=(_sweeper_stop,), name="shipyard-sweep",
                     daemon=True).start()


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
