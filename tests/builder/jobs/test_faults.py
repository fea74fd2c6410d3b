"""Runs survive the faults a worker meets: a pool child SIGKILLed mid-run, the whole worker
SIGKILLed, a worker lost with no attempts left, and Redis restarting under a run.

Each test starts its own workers (`start_worker`) and stops them at its end, so that no
other worker (with other settings) sweeps or claims its run; none uses the shared `worker`.

The test that kills a pool child gives its worker a sweep that never runs, so that what
hands the run on is the redelivered task finding the dead process, not the sweep.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from realparts import RedisServer, Worker, point_this_process_at, wait_for
from rest_framework.test import APIClient
from test_runs import all_events, finished, new_graph, submit

from compute.engine.training import latest_checkpoint
from compute.jobs.models import Job

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# A character GPT run long enough to kill mid-way (0.1-0.8 s a step here, depending on the
# load): a checkpoint and a train_loss point every 5 steps, so a resumed attempt's first
# point is 5 steps past the checkpoint it read.
EVERY = 5


def start_run(api: APIClient, steps: int) -> int:
    config = {"steps": steps, "batch_size": 8, "checkpoint_interval": EVERY,
              "log_interval": EVERY, "eval_interval": 1000}
    job = submit(api, new_graph(api, "char_gpt"), "harbour", config=config)
    return int(job["id"])


def checkpoint_step(job_id: int) -> int:
    """The step of the run's latest checkpoint on disk, or 0 when it has none."""
    path = latest_checkpoint(Job.objects.get(id=job_id).folder / "checkpoints")
    return 0 if path is None else int(path.name.split("-")[1].split(".")[0])


def running_past(job_id: int, step: int, timeout: float = 90) -> Job:
    """Wait until the run is running, past `step` (as its heartbeat says), with a
    checkpoint on disk."""
    def there() -> Job | None:
        job = Job.objects.get(id=job_id)
        ok = job.status == Job.Status.RUNNING and job.step >= step and checkpoint_step(job_id)
        return job if ok else None

    job: Job = wait_for(there, timeout, f"run {job_id} to pass step {step} with a checkpoint")
    return job


def statuses(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "status"]


def assert_events_complete(api: APIClient, job_id: int) -> list[dict[str, Any]]:
    """Every event of the run, from the REST endpoint: numbered 1 to last_seq, none
    missing, none twice."""
    events = all_events(api, job_id)
    last_seq = Job.objects.get(id=job_id).last_seq
    assert [e["seq"] for e in events] == list(range(1, last_seq + 1))
    return events


def assert_resumed_from_a_checkpoint(events: list[dict[str, Any]], seen: int,
                                     steps: int) -> None:
    """`seen`: a checkpoint step seen on disk before the kill (a later one may have landed
    before the kill too). train(resume_from=...) restores the checkpoint and starts its
    loop at that step, so after the requeue the run reports train_loss only for the steps
    after the checkpoint: never for steps 5..`seen` again, and then every point to the
    end."""
    requeue = [e["seq"] for e in statuses(events) if e["status"] == "queued"][-1]
    after = [e["step"] for e in events if e["type"] == "metric"
             and e["name"] == "train_loss" and e["seq"] > requeue]
    assert after, "the second attempt reported no train_loss"
    assert after[0] > seen, (after, seen)
    assert after == list(range(after[0], steps + 1, EVERY)), after


@contextmanager
def ends_cleanly(api: APIClient, job_id: int, workers: list[Worker]) -> Iterator[None]:
    """Leave the run ended (cancel it and wait) and stop the workers (those in the list
    when the test ends), however the test ends: the tables are flushed after each test."""
    try:
        yield
    finally:
        if Job.objects.filter(id=job_id, status__in=Job.ACTIVE).exists():
            api.post(f"/api/jobs/{job_id}/cancel")
            with suppress(AssertionError):
                finished(api, job_id, timeout=30)
        for worker in workers:
            worker.stop()


def test_a_sigkilled_pool_child_hands_its_run_on_at_once_and_it_resumes_from_its_checkpoint(
        api: APIClient, start_worker: Any) -> None:
    steps = 40
    # No sweep at all (and a heartbeat timeout beyond the test): only the claim of the
    # redelivered task, which finds the recorded pid dead on its own node, hands the run
    # on.
    worker = start_worker(SHIPYARD_HEARTBEAT_TIMEOUT="600", SHIPYARD_SWEEP_SECONDS="3600")
    job_id = start_run(api, steps)
    with ends_cleanly(api, job_id, [worker]):
        job = running_past(job_id, 10)
        seen = checkpoint_step(job_id)
        pid = job.worker_pid
        assert pid in worker.children() and job.worker == worker.name
        os.kill(pid, signal.SIGKILL)

        done = finished(api, job_id, timeout=120)
        assert done["status"] == "succeeded", (done["error"], worker.output()[-3000:])
        assert done["attempts"] == 2 and done["step"] == done["total_steps"] == steps
        assert done["worker"] == worker.name

        events = assert_events_complete(api, job_id)
        status = statuses(events)
        assert [e["status"] for e in status] == ["queued", "running", "queued", "running",
                                                 "succeeded"]
        assert [e["attempts"] for e in status] == [0, 1, 1, 2, 2]
        assert status[2]["error"] == (f"the worker process {pid} on {worker.name} died; "
                                      "trying again from the last checkpoint")
        assert status[3]["worker"] == worker.name
        assert_resumed_from_a_checkpoint(events, seen, steps)


TIMEOUT = 15  # the rescuer's heartbeat timeout: longer than an export (see the module doc)


def test_a_sigkilled_worker_is_noticed_by_the_sweep_and_its_run_resumes_on_another(
        api: APIClient, start_worker: Any) -> None:
    steps = 40
    doomed = start_worker()
    job_id = start_run(api, steps)
    workers = [doomed]
    with ends_cleanly(api, job_id, workers):
        job = running_past(job_id, 10)
        seen = checkpoint_step(job_id)
        assert job.worker == doomed.name
        os.killpg(doomed.proc.pid, signal.SIGKILL)  # the main process and its pool child
        doomed.proc.wait(timeout=10)
        killed = time.monotonic()

        # The run's task died unacknowledged with the worker (Redis gives it back only
        # after the visibility timeout, hours): the rescuer's sweep hands the run on once
        # its heartbeat is SHIPYARD_HEARTBEAT_TIMEOUT old.
        rescuer = start_worker(SHIPYARD_HEARTBEAT_TIMEOUT=str(TIMEOUT))
        workers.append(rescuer)
        wait_for(lambda: Job.objects.get(id=job_id).attempts == 2, TIMEOUT + 30,
                 "the sweep to hand the run on")
        handed_on = time.monotonic() - killed
        done = finished(api, job_id, timeout=120)
        assert done["status"] == "succeeded", (done["error"], rescuer.output()[-3000:])
        assert done["attempts"] == 2 and done["step"] == steps
        assert done["worker"] == rescuer.name

        events = assert_events_complete(api, job_id)
        status = statuses(events)
        assert [e["status"] for e in status] == ["queued", "running", "queued", "running",
                                                 "succeeded"]
        assert status[2]["error"] == (f"the worker {doomed.name} stopped answering (no "
                                      f"heartbeat for {TIMEOUT} s); trying again from the "
                                      "last checkpoint")
        # Not before the timeout (the heartbeat was at most ~1 s old at the kill), and soon
        # after it: the sweep runs every second once the rescuer is up.
        assert TIMEOUT - 1.5 < handed_on < TIMEOUT + 1 + 10, handed_on
        assert_resumed_from_a_checkpoint(events, seen, steps)


def test_a_lost_run_with_no_attempts_left_fails_with_the_reason_and_is_not_stuck(
        api: APIClient, start_worker: Any) -> None:
    # `lose_job` reads SHIPYARD_JOB_MAX_ATTEMPTS in the process that finds the run lost:
    # here the sweep of the worker that is alive, not the dead one's. Both get 1, and no
    # other worker runs meanwhile (one with 2 would requeue the run instead).
    doomed = start_worker(SHIPYARD_JOB_MAX_ATTEMPTS="1")
    job_id = start_run(api, 40)
    workers = [doomed]
    with ends_cleanly(api, job_id, workers):
        running_past(job_id, 5)
        os.killpg(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(timeout=10)
        sweeper = start_worker(SHIPYARD_JOB_MAX_ATTEMPTS="1")
        workers.append(sweeper)

        done = finished(api, job_id, timeout=6 + 1 + 30)
        assert done["status"] == "failed", done
        assert done["attempts"] == 1
        assert done["error"] == (f"the worker {doomed.name} stopped answering (no heartbeat "
                                 "for 6 s); gave up after 1 attempts")

        # And it stays so: no later sweep or claim brings it back.
        time.sleep(3)
        state = Job.objects.get(id=job_id)
        assert state.status == Job.Status.FAILED and state.attempts == 1
        events = assert_events_complete(api, job_id)
        assert [e["status"] for e in statuses(events)] == ["queued", "running", "failed"]
        assert statuses(events)[-1]["error"] == done["error"]


def test_a_run_survives_redis_restarting_and_keeps_every_event(
        api: APIClient, start_worker: Any, redis: RedisServer) -> None:
    steps = 60  # 6-50 s, then an export of 5-10 s: running for longer than the outage
    worker = start_worker(SHIPYARD_HEARTBEAT_TIMEOUT="60")  # the default: no sweep here
    job_id = start_run(api, steps)
    with ends_cleanly(api, job_id, [worker]):
        running_past(job_id, 5)
        try:
            redis.stop()
            time.sleep(2)
            # Still running while Redis is away: heartbeats and events go to the database.
            assert Job.objects.get(id=job_id).status == Job.Status.RUNNING
        finally:
            if redis.proc is None:
                redis.start()  # the same port and append-only folder
            # This process's channel layer and Celery producer hold connections to the old
            # server: start them afresh for the tests after this one.
            point_this_process_at(redis.url)

        done = finished(api, job_id, timeout=120)
        assert done["status"] == "succeeded", (done["error"], worker.output()[-3000:])
        assert done["attempts"] == 1 and done["step"] == steps

        events = assert_events_complete(api, job_id)
        assert [e["status"] for e in statuses(events)] == ["queued", "running", "succeeded"]
        losses = [e["step"] for e in events if e["type"] == "metric"
                  and e["name"] == "train_loss"]
        assert losses == list(range(EVERY, steps + 1, EVERY))


def test_a_run_whose_export_outlasts_the_heartbeat_timeout_succeeds_on_its_first_attempt(
        api: APIClient, start_worker: Any) -> None:
    # The character GPT's ONNX export takes 5-10 s here, well past a 2 s timeout (and the
    # ~1 s between a last beat and the next sweep).
    worker = start_worker(SHIPYARD_HEARTBEAT_TIMEOUT="2")
    job_id = start_run(api, 10)
    with ends_cleanly(api, job_id, [worker]):
        done = finished(api, job_id, timeout=120)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 1


def test_a_run_cancelled_while_its_worker_is_dead_ends_cancelled_when_handed_on(
        api: APIClient, start_worker: Any) -> None:
    # The cancel lands on a run whose worker is gone: nobody hears it until the sweep hands
    # the run on. The hand-over must honour it, not start a second attempt.
    doomed = start_worker()
    job_id = start_run(api, 400)
    workers = [doomed]
    with ends_cleanly(api, job_id, workers):
        running_past(job_id, 5)
        os.killpg(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(timeout=10)
        response = api.post(f"/api/jobs/{job_id}/cancel")
        assert response.status_code == 200
        assert response.json()["status"] == "running" and response.json()["cancel_requested"]
        step = Job.objects.get(id=job_id).step

        rescuer = start_worker()
        workers.append(rescuer)
        done = finished(api, job_id, timeout=6 + 1 + 30)
        assert done["status"] == "cancelled", (done, rescuer.output()[-3000:])
        assert done["attempts"] == 1 and done["step"] == step
        assert done["error"] == f"cancelled at step {step}; the last checkpoint is kept"
        time.sleep(3)  # and no later claim or sweep starts it again
        state = Job.objects.get(id=job_id)
        assert state.status == Job.Status.CANCELLED and state.attempts == 1
        events = assert_events_complete(api, job_id)
        assert [e["status"] for e in statuses(events)] == ["queued", "running", "cancelled"]
