"""The compute queue's administration on the real parts (Redis, a Celery worker process,
the database): three users take turns on a one-slot worker, a paused queue starts nothing
while its running run goes on and keeps the waiting runs' places (users see why they
wait), moving a run to the front changes what starts next, and a drained worker finishes
its run and takes no more. Each test starts its own workers and stops them at its end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import User
from realparts import Worker, wait_for
from rest_framework.test import APIClient

from builder.accounts.services import issue_token
from compute.jobs import queue
from compute.jobs.models import Job
from compute.jobs.models import Worker as WorkerRow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
QUICK = {"steps": 20, "device": "cpu"}  # well under a second once the worker is warm
LONGER = {"steps": 1000, "device": "cpu", "log_interval": 10}  # some seconds


def person(name: str, *, staff: bool = False) -> tuple[User, APIClient]:
    user = User.objects.create_user(name, f"{name}@example.com", "pw-" + name * 3,
                                    is_staff=staff)
    _, token = issue_token(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return user, client


def submit(api: APIClient, config: dict[str, Any]) -> int:
    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    response = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "config": config,
                                      "time_limit": 120}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def ended(job_ids: list[int], timeout: float = 120) -> list[Job]:
    def done() -> list[Job] | None:
        jobs = list(Job.objects.filter(id__in=job_ids).order_by("started_at", "id"))
        return jobs if all(job.finished for job in jobs) else None

    jobs: list[Job] = wait_for(done, timeout, f"runs {job_ids} to end")
    return jobs


def running(job_id: int, timeout: float = 60) -> Job:
    job: Job = wait_for(lambda: Job.objects.filter(id=job_id, status="running", step__gt=0)
                        .first(), timeout, f"run {job_id} to be running")
    return job


@contextmanager
def workers(start_worker: Callable[..., Worker]) -> Iterator[list[Worker]]:
    """The test's workers (append more); each is stopped at the end, however it ends."""
    started: list[Worker] = [start_worker()]
    try:
        yield started
    finally:
        Job.objects.filter(status__in=Job.ACTIVE).update(cancel_requested=True)
        for worker in started:
            worker.stop()


def test_three_users_take_turns_on_a_one_slot_worker(start_worker: Any) -> None:
    root, _ = person("root", staff=True)
    queue.pause_queue("cpu", root)  # everything waits first, so the order is the rule's
    (_, ann), (_, ben), (_, cat) = person("ann"), person("ben"), person("cat")
    with workers(start_worker) as [worker]:
        a1, a2, a3, a4 = (submit(ann, QUICK) for _ in range(4))
        b1, c1 = submit(ben, QUICK), submit(cat, QUICK)
        expected = [a1, b1, c1, a2, a3, a4]
        assert [job.id for job in queue.start_order("cpu")] == expected
        mine = ben.get(f"/api/jobs/{b1}").json()
        assert mine["position"] == 2
        assert mine["waiting_reason"] == "queue paused by an administrator"
        assert cat.get(f"/api/jobs/{c1}").json()["position"] == 3

        queue.resume_queue("cpu", root)
        jobs = ended(expected)
        assert [job.status for job in jobs] == ["succeeded"] * 6, worker.output()[-3000:]
        assert [job.id for job in jobs] == expected  # in the order they started
        assert {job.worker for job in jobs} == {worker.name}


def test_a_paused_queue_starts_nothing_its_run_goes_on_and_the_front_goes_first(
        start_worker: Any) -> None:
    root, _ = person("root", staff=True)
    (_, ann), (_, ben), (_, cat) = person("ann"), person("ben"), person("cat")
    with workers(start_worker) as [worker]:
        first = submit(ann, LONGER)
        at = running(first).step
        queue.pause_queue("cpu", root)
        second, third = submit(ben, QUICK), submit(cat, QUICK)
        assert ended([first])[0].status == "succeeded"  # it went on to its end
        # (It was running when the queue paused; on a loaded machine its last steps may
        # already have been done then, its heartbeat not yet beaten: hence >=.)
        assert Job.objects.get(id=first).step == 1000 >= at
        wait_for(lambda: WorkerRow.objects.filter(hostname=worker.name).exists(), 10,
                 "the worker's row")
        worker_log = len(worker.output())
        wait_for(lambda: "is paused" in worker.output()[worker_log:], 10,
                 "the worker to find the queue paused")  # a token came, and went back
        for job_id, api, place in ((second, ben, 1), (third, cat, 2)):
            body = api.get(f"/api/jobs/{job_id}").json()
            assert body["status"] == "queued" and body["position"] == place
            assert body["waiting_reason"] == "queue paused by an administrator"

        queue.move_to_front(Job.objects.get(id=third), root)
        assert cat.get(f"/api/jobs/{third}").json()["position"] == 1
        queue.resume_queue("cpu", root)
        jobs = ended([second, third])
        assert [job.id for job in jobs] == [third, second]  # started in that order
        assert [job.status for job in jobs] == ["succeeded"] * 2
        assert [a["action"] for a in cat.get(f"/api/jobs/{third}").json()[
            "admin_actions"]] == ["move_to_front"]


def test_a_drained_worker_finishes_its_run_and_takes_no_more(start_worker: Any) -> None:
    root, _ = person("root", staff=True)
    (_, ann), (_, ben) = person("ann"), person("ben")
    with workers(start_worker) as started:
        drained = started[0]
        first = submit(ann, LONGER)
        running(first)
        wait_for(lambda: WorkerRow.objects.filter(hostname=drained.name).exists(), 10,
                 "the worker's row")
        queue.drain_worker(drained.name, root)
        second = submit(ben, QUICK)
        done = ended([first])[0]
        assert (done.status, done.worker) == ("succeeded", drained.name)
        assert WorkerRow.objects.get(hostname=drained.name).draining
        for _ in range(3):  # it stays queued: the drained worker takes no more
            body = ben.get(f"/api/jobs/{second}").json()
            assert body["status"] == "queued"
            assert body["waiting_reason"] == "every worker of the cpu queue is draining"
            time.sleep(1)
        fresh = start_worker()
        started.append(fresh)
        done = ended([second])[0]
        assert (done.status, done.worker) == ("succeeded", fresh.name)
        snap = {w["hostname"]: w for w in queue.snapshot()["workers"]}
        assert snap[drained.name]["draining"] and not snap[fresh.name]["draining"]
