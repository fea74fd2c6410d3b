"""The compute queue's rule, quotas and administrators' actions, on the database: the
order runs start in (fairness, priority, move to front), why a run waits (paused, no
worker, quota, runs ahead) as users see it in the API, each quota refused at submission
naming its limit (defaults, a group's, a user's over a group's, the most generous of
several groups), the claim skipping runs a quota holds, every action recorded and refused
to anyone not staff. No worker runs here (the real worker's tests are in
test_queue_on_a_worker.py); claims are made by calling the claim as a worker would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from builder.graphs import services as graph_services
from builder.graphs.models import Graph
from compute.engine import load_starter
from compute.jobs import queue, services
from compute.jobs.models import AdminAction, Job, Queue, Quota, Worker

pytestmark = pytest.mark.usefixtures("redis")
MLP_PARAMETERS = 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10  # 17,226


def make_user(name: str, *, staff: bool = False) -> User:
    return User.objects.create_user(name, f"{name}@example.com", "pw-" + name * 3,
                                    is_staff=staff)


@pytest.fixture
def admin(db: None) -> User:
    return make_user("root", staff=True)


def graph_of(owner: User) -> Graph:
    return graph_services.create_graph(owner=owner, document=load_starter("mlp"),
                                       name=f"{owner.username}'s")


def run(owner: User, *, queue_name: str = "cpu", status: str = "queued", priority: int = 0,
        started: Any = None, finished: Any = None, gpus: int = 1) -> Job:
    graph = Graph.objects.filter(owner=owner).first() or graph_of(owner)
    return Job.objects.create(
        owner=owner, graph=graph, version=graph.versions.get(number=1), dataset="digits",
        config={"steps": 10, "device": "cpu", "gpus": gpus}, queue=queue_name, time_limit=60,
        total_steps=10, status=status, priority=priority, started_at=started,
        finished_at=finished)


def live_worker(name: str = "w1@host", queues: list[str] | None = None,
                **extra: Any) -> Worker:
    return Worker.objects.create(**{
        "hostname": name, "host": "host", "queues": queues or ["cpu"], "pool": "prefork",
        "concurrency": 1, "device": "a CPU, 4 cores", "heartbeat_at": timezone.now(), **extra})


def ids(jobs: list[Job]) -> list[int]:
    return [job.id for job in jobs]


# The order


def test_one_users_many_runs_do_not_starve_the_others(db: None) -> None:
    a, b, c = make_user("ann"), make_user("ben"), make_user("cat")
    a1, a2, a3, a4 = (run(a) for _ in range(4))
    b1, c1 = run(b), run(c)
    # Nobody has a run going: the oldest run first, then the users who never started one,
    # then ann's others.
    assert ids(queue.start_order("cpu")) == ids([a1, b1, c1, a2, a3, a4])
    # ann's first starts: ben and cat go before ann's second.
    services.claim_next(queue="cpu", worker="w@h", pid=1)
    assert Job.objects.get(id=a1.id).status == "running"
    assert ids(queue.start_order("cpu")) == ids([b1, c1, a2, a3, a4])
    # Another queue's runs are another queue's: a run going on gpu changes nothing here.
    run(c, queue_name="gpu", status="running", started=timezone.now())
    assert ids(queue.start_order("cpu")) == ids([b1, c1, a2, a3, a4])


def test_between_users_with_nothing_going_the_one_who_started_last_longest_ago_goes_first(
        db: None) -> None:
    a, b, c = make_user("ann"), make_user("ben"), make_user("cat")
    now = timezone.now()
    run(a, status="succeeded", started=now - timedelta(minutes=1), finished=now)
    run(b, status="succeeded", started=now - timedelta(hours=2), finished=now)
    a1, b1, c1 = run(a), run(b), run(c)
    assert ids(queue.start_order("cpu")) == ids([c1, b1, a1])  # cat never started one


def test_priority_and_move_to_front_change_what_starts_next(admin: User) -> None:
    a, b = make_user("ann"), make_user("ben")
    a1, a2, b1 = run(a), run(a), run(b)
    assert ids(queue.start_order("cpu")) == ids([a1, b1, a2])
    queue.set_priority(a2, 5, admin)
    # a2 first; then ann has a run going (as the order counts), so ben's before her next.
    assert ids(queue.start_order("cpu")) == ids([a2, b1, a1])
    queue.move_to_front(b1, admin)
    assert Job.objects.get(id=b1.id).priority == 6
    assert ids(queue.start_order("cpu")) == ids([b1, a2, a1])
    queue.set_priority(b1, -1, admin)  # lowered: behind the runs at 0
    assert ids(queue.start_order("cpu")) == ids([a2, a1, b1])
    # What starts next is what the order says.
    assert services.claim_next(queue="cpu", worker="w@h", pid=1).id == a2.id  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [1001, -1001, "5", 2.5, True])
def test_a_priority_out_of_range_is_refused(admin: User, bad: Any) -> None:
    job = run(make_user("ann"))
    with pytest.raises(queue.QueueError) as caught:
        queue.set_priority(job, bad, admin)
    assert caught.value.status == 400
    assert "priority must be a whole number from -1000 to 1000" in str(caught.value)
    assert Job.objects.get(id=job.id).priority == 0 and not AdminAction.objects.exists()


def test_only_a_waiting_run_changes_its_priority(admin: User) -> None:
    job = run(make_user("ann"), status="running", started=timezone.now())
    for act in (lambda: queue.set_priority(job, 3, admin),
                lambda: queue.move_to_front(job, admin)):
        with pytest.raises(queue.QueueError) as caught:
            act()
        assert caught.value.status == 409 and "is running" in str(caught.value)


# Why a run waits, as its owner sees it


def test_users_see_their_position_and_why_they_wait(admin: User, api: APIClient,
                                                    user: User) -> None:
    other = make_user("ben")
    first, mine = run(other), run(user)
    body = api.get(f"/api/jobs/{mine.id}").json()
    assert (body["position"], body["waiting_reason"]) == (2, "no worker serves the cpu queue")
    live_worker()
    assert queue.wait_reason(first) == ""
    body = api.get(f"/api/jobs/{mine.id}").json()
    assert (body["position"], body["waiting_reason"]) == (2, "waiting for 1 run ahead")

    queue.pause_queue("cpu", admin)
    body = api.get(f"/api/jobs/{mine.id}").json()
    assert body["position"] == 2 and body["waiting_reason"] == "queue paused by an administrator"
    assert queue.wait_reason(first) == "queue paused by an administrator"
    with pytest.raises(services.QueueBlocked):
        services.claim_next(queue="cpu", worker="w1@host", pid=1)  # nothing starts
    assert not Job.objects.filter(status="running").exists()
    queue.resume_queue("cpu", admin)
    assert api.get(f"/api/jobs/{mine.id}").json()["waiting_reason"] == "waiting for 1 run ahead"

    Worker.objects.update(draining=True)
    assert queue.wait_reason(mine) == "every worker of the cpu queue is draining"
    Worker.objects.update(draining=False, heartbeat_at=timezone.now() - timedelta(hours=1))
    assert queue.wait_reason(mine) == "no worker serves the cpu queue"  # lost


def test_a_run_held_by_the_running_quota_waits_saying_so_and_others_go_first(
        admin: User) -> None:
    a, b = make_user("ann"), make_user("ben")
    Quota.objects.create(user=a, max_running=1)
    live_worker()
    run(a, status="running", started=timezone.now())
    a1, b1 = run(a), run(b)
    assert ids(queue.start_order("cpu")) == ids([b1, a1])
    assert queue.wait_reason(a1) == "your quota: at most 1 run going at once"
    assert services.claim_next(queue="cpu", worker="w1@host", pid=1).id == b1.id  # type: ignore[union-attr]
    # Only ann's run waits, and her quota holds it: the token goes back.
    with pytest.raises(services.QueueBlocked) as caught:
        services.claim_next(queue="cpu", worker="w1@host", pid=1)
    assert caught.value.reason == "your quota: at most 1 run going at once"
    assert Job.objects.get(id=a1.id).status == "queued"


def test_gpu_hours_used_up_hold_a_waiting_gpu_run_at_the_claim(settings: Any, db: None) -> None:
    settings.JOB_QUOTA_GPU_HOURS_PER_DAY = 1.0
    a = make_user("ann")
    now = timezone.now()
    run(a, queue_name="gpu", status="succeeded", started=now - timedelta(hours=3),
        finished=now - timedelta(hours=1, minutes=30))
    waiting = run(a, queue_name="gpu")
    live_worker(queues=["gpu"])
    assert queue.wait_reason(waiting) == ("your quota: at most 1 GPU-hours a day; you have "
                                          "used 1.5")
    with pytest.raises(services.QueueBlocked):
        services.claim_next(queue="gpu", worker="w1@host", pid=1)


def test_a_run_on_several_gpus_counts_its_time_once_per_gpu(settings: Any, db: None) -> None:
    settings.JOB_QUOTA_GPU_HOURS_PER_DAY = 2.0
    a = make_user("ann")
    now = timezone.now()
    run(a, queue_name="gpu", status="succeeded", started=now - timedelta(hours=2),
        finished=now - timedelta(hours=1, minutes=30), gpus=4)  # half an hour on 4 GPUs
    waiting = run(a, queue_name="gpu")
    live_worker(queues=["gpu"])
    assert queue.wait_reason(waiting) == ("your quota: at most 2 GPU-hours a day; you have "
                                          "used 2.0")


def test_a_worker_leaves_a_run_on_more_devices_than_it_has_to_one_that_has_them(
        db: None) -> None:
    a, b = make_user("ann"), make_user("ben")
    big = run(a, queue_name="gpu", gpus=2)
    small = run(b, queue_name="gpu")
    live_worker("one@host", ["gpu"], device="1 × NVIDIA H100 80GB HBM3", memory=80 * 2**30)
    live_worker("two@host", ["gpu"], device="2 × NVIDIA H100 80GB HBM3", memory=80 * 2**30)
    # The one-GPU worker passes the older two-GPU run and starts ben's.
    assert services.claim_next(queue="gpu", worker="one@host", pid=1).id == small.id  # type: ignore[union-attr]
    # With only the big run left it starts nothing, and its token comes back later.
    with pytest.raises(services.QueueBlocked, match="more devices than the 1 of the worker"):
        services.claim_next(queue="gpu", worker="one@host", pid=1)
    assert Job.objects.get(id=big.id).status == "queued"
    assert services.claim_next(queue="gpu", worker="two@host", pid=1).id == big.id  # type: ignore[union-attr]


# Quotas at submission


def new_graph(api: APIClient) -> int:
    response = api.post("/api/graphs", {"starter": "mlp"}, format="json")
    assert response.status_code == 201
    return int(response.json()["id"])


def post(api: APIClient, graph: int, **body: Any) -> Any:
    body.setdefault("config", {"device": "cuda"})  # queue gpu: nothing takes it here
    return api.post("/api/jobs", {"graph": graph, "dataset": "digits", **body},
                    format="json")


def refused(response: Any, status: int, limit: str, value: Any, message: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert (body["limit"], body["value"]) == (limit, value), body
    assert message in body["error"], body["error"]


def test_each_quota_is_refused_at_submission_naming_the_limit_its_value_and_the_figure(
        api: APIClient, user: User, settings: Any) -> None:
    graph = new_graph(api)
    settings.JOB_QUOTA_MAX_PARAMETERS = 10_000
    refused(post(api, graph), 400, "max_parameters", 10_000,
            f"your quota allows models of at most 10,000 parameters; this one has "
            f"{MLP_PARAMETERS:,}")
    settings.JOB_QUOTA_MAX_PARAMETERS = 0  # no limit
    settings.JOB_QUOTA_MAX_RUN_SECONDS = 600
    refused(post(api, graph, time_limit=900), 400, "max_run_seconds", 600,
            "your quota allows runs of at most 10 min (600 s); this one asks for 15 min "
            "(900 s)")
    made = post(api, graph)  # no time_limit: the longest it may have
    assert made.status_code == 201 and made.json()["time_limit"] == 600
    settings.JOB_MAX_QUEUED_PER_USER = 1
    refused(post(api, graph), 429, "max_queued", 1,
            "you have 1 runs waiting in the queue, the most allowed (your quota: 1 queued "
            "runs")
    settings.JOB_MAX_QUEUED_PER_USER = 5
    Job.objects.update(status="succeeded", started_at=timezone.now() - timedelta(hours=5),
                       finished_at=timezone.now() - timedelta(hours=1))  # 4 GPU-hours
    settings.JOB_QUOTA_GPU_HOURS_PER_DAY = 2.0
    refused(post(api, graph), 429, "gpu_hours_per_day", 2.0,
            "your quota allows 2 GPU-hours a day; your gpu runs have taken 4.00 in the "
            "last 24 hours")
    assert post(api, graph, config={"device": "cpu"}).status_code == 201  # not on the gpu
    settings.JOB_QUOTA_GPU_HOURS_PER_DAY = 0
    Quota.objects.create(user=user, gpu_hours_per_week=3.5)
    refused(post(api, graph), 429, "gpu_hours_per_week", 3.5,
            "your quota allows 3.5 GPU-hours a week; your gpu runs have taken 4.00 in the "
            "last 7 days")
    assert Job.objects.filter(status="queued").count() == 1  # nothing refused was queued


def test_a_groups_quota_holds_its_members_and_a_users_own_quota_wins_over_it(
        api: APIClient, user: User) -> None:
    graph = new_graph(api)
    students = Group.objects.create(name="students")
    user.groups.add(students)
    Quota.objects.create(group=students, max_parameters=1_000, max_run_seconds=60)
    refused(post(api, graph), 400, "max_parameters", 1_000, "at most 1,000 parameters")
    # Of several groups, the most generous value of each limit.
    staff = Group.objects.create(name="lab")
    user.groups.add(staff)
    Quota.objects.create(group=staff, max_parameters=100_000)
    made = post(api, graph)
    assert made.status_code == 201 and made.json()["time_limit"] == 60  # the students' still
    refused(post(api, graph, time_limit=120), 400, "max_run_seconds", 60,
            "runs of at most 1 min (60 s)")
    # The user's own quota wins over their groups'.
    Quota.objects.create(user=user, max_run_seconds=300, max_parameters=500)
    refused(post(api, graph, time_limit=120), 400, "max_parameters", 500,
            "at most 500 parameters")
    Quota.objects.filter(user=user).update(max_parameters=None)  # empty: the groups' again
    assert post(api, graph, time_limit=120).status_code == 201


# The administrators' actions


def test_someone_not_staff_can_do_nothing_to_the_queue(db: None) -> None:
    ann = make_user("ann")
    job, ended = run(ann), run(ann, status="failed")
    live_worker()
    for act in (lambda: queue.pause_queue("cpu", ann), lambda: queue.resume_queue("cpu", ann),
                lambda: queue.set_priority(job, 5, ann), lambda: queue.move_to_front(job, ann),
                lambda: queue.cancel(job, ann), lambda: queue.requeue(ended, ann),
                lambda: queue.drain_worker("w1@host", ann)):
        with pytest.raises(queue.QueueError) as caught:
            act()
        assert caught.value.status == 403
        assert str(caught.value) == "only staff may administer the compute queue"
    assert not AdminAction.objects.exists() and not Queue.objects.filter(paused=True).exists()
    assert Job.objects.get(id=job.id).status == "queued" and Job.objects.count() == 2
    assert not Worker.objects.get().draining


def test_every_action_is_recorded_and_shown_on_the_run_without_who(
        admin: User, api: APIClient, user: User) -> None:
    live_worker()
    job, other, ended = run(user), run(user), run(user, status="failed")
    queue.pause_queue("cpu", admin)
    queue.resume_queue("cpu", admin)
    queue.set_priority(job, 3, admin)
    queue.move_to_front(other, admin)
    queue.cancel(job, admin)
    new = queue.requeue(ended, admin)
    queue.drain_worker("w1@host", admin)
    log = list(AdminAction.objects.order_by("id").values_list(
        "actor__username", "action", "job_id", "queue", "worker"))
    assert log == [("root", "pause", None, "cpu", ""), ("root", "resume", None, "cpu", ""),
                   ("root", "priority", job.id, "cpu", ""),
                   ("root", "move_to_front", other.id, "cpu", ""),
                   ("root", "cancel", job.id, "cpu", ""),
                   ("root", "requeue", ended.id, "cpu", ""),
                   ("root", "drain", None, "", "w1@host")]
    body = api.get(f"/api/jobs/{job.id}").json()
    assert [(a["action"], a["detail"]) for a in body["admin_actions"]] == [
        ("priority", "priority set from 0 to 3 by an administrator"),
        ("cancel", "cancelled by an administrator")]
    assert body["status"] == "cancelled" and "root" not in str(body)
    assert api.get(f"/api/jobs/{ended.id}").json()["admin_actions"][0]["detail"] == (
        f"requeued by an administrator as run {new.id}")
    assert api.get(f"/api/jobs/{other.id}").json()["admin_actions"][0]["detail"] == (
        "moved to the front of the cpu queue by an administrator (priority 0 to 4)")


def test_requeue_makes_a_new_run_of_the_same_version_and_settings(admin: User,
                                                                  api: APIClient,
                                                                  user: User) -> None:
    ended = run(user, status="cancelled")
    Job.objects.filter(id=ended.id).update(attempts=2, step=7, error="cancelled at step 7",
                                           dataset_options={"noise": 0.1})
    ended.refresh_from_db()
    new = queue.requeue(ended, admin)
    assert new.id != ended.id and new.retry_of_id == ended.id
    same = ("graph_id", "version_id", "kind", "dataset", "dataset_options", "config", "queue",
            "time_limit", "total_steps", "owner_id", "upload_id")
    assert {f: getattr(new, f) for f in same} == {f: getattr(ended, f) for f in same}
    assert (new.status, new.attempts, new.step, new.error) == ("queued", 0, 0, "")
    body = api.get(f"/api/jobs/{new.id}").json()
    assert body["retry_of"] == ended.id and body["status"] == "queued"
    assert [e["status"] for e in api.get(f"/api/jobs/{new.id}/metrics").json()["events"]] == [
        "queued"]
    for job in (new, run(user, status="running", started=timezone.now()),
                run(user, status="succeeded")):
        with pytest.raises(queue.QueueError) as caught:
            queue.requeue(job, admin)
        assert caught.value.status == 409 and "only a failed or cancelled run" in str(
            caught.value)


def test_actions_on_what_is_not_there_or_not_so_are_refused_clearly(admin: User) -> None:
    with pytest.raises(queue.QueueError) as caught:
        queue.pause_queue("tpu", admin)
    assert caught.value.status == 404 and "no queue named 'tpu'; queues: cpu, gpu, fpga" in str(
        caught.value)
    with pytest.raises(queue.QueueError) as caught:
        queue.drain_worker("nobody@nowhere", admin)
    assert caught.value.status == 404
    with pytest.raises(queue.QueueError) as caught:
        queue.resume_queue("gpu", admin)
    assert caught.value.status == 409 and "not paused" in str(caught.value)
    queue.pause_queue("gpu", admin)
    with pytest.raises(queue.QueueError) as caught:
        queue.pause_queue("gpu", admin)
    assert caught.value.status == 409 and "already paused" in str(caught.value)
    ended = run(make_user("ann"), status="succeeded")
    with pytest.raises(queue.QueueError) as caught:
        queue.cancel(ended, admin)
    assert caught.value.status == 409
    assert AdminAction.objects.count() == 1  # the one pause that was done


def test_the_snapshot_shows_each_queue_in_start_order_and_the_workers(admin: User) -> None:
    a, b = make_user("ann"), make_user("ben")
    going = run(a, status="running", started=timezone.now())
    Job.objects.filter(id=going.id).update(worker="w1@host")
    a1, b1 = run(a), run(b)
    gpu = run(b, queue_name="gpu")
    live_worker("w1@host")
    live_worker("old@host", queues=["gpu"], memory=80 * 2**30)
    Worker.objects.filter(hostname="old@host").update(
        heartbeat_at=timezone.now() - timedelta(minutes=5))
    Worker.objects.create(hostname="gone@host", queues=["cpu"], heartbeat_at=timezone.now(),
                          stopped_at=timezone.now())
    queue.pause_queue("gpu", admin)
    snap = queue.snapshot()
    by_name = {q["name"]: q for q in snap["queues"]}
    assert list(by_name) == ["cpu", "gpu", "fpga"]
    cpu = by_name["cpu"]
    assert [r["id"] for r in cpu["waiting"]] == [b1.id, a1.id]
    assert [r["position"] for r in cpu["waiting"]] == [1, 2]
    assert cpu["waiting"][1]["reason"] == "waiting for 1 run ahead"
    assert cpu["waiting"][0]["owner"] == "ben" and cpu["waiting"][0]["graph"] == "ben's"
    assert [r["id"] for r in cpu["running"]] == [going.id] and not cpu["paused"]
    assert by_name["gpu"]["paused"] and by_name["gpu"]["paused_by"] == "root"
    assert by_name["gpu"]["waiting"][0]["id"] == gpu.id
    assert by_name["gpu"]["waiting"][0]["reason"] == "queue paused by an administrator"
    workers = {w["hostname"]: w for w in snap["workers"]}
    assert sorted(workers) == ["old@host", "w1@host"]  # the stopped one is left out
    assert workers["w1@host"]["runs"] == [going.id] and not workers["w1@host"]["lost"]
    assert workers["old@host"]["lost"] and workers["old@host"]["memory"] == 80 * 2**30
    import json

    json.dumps(snap)  # JSON as it is: the page's socket sends it


def test_a_run_whose_token_was_lost_gets_one_from_an_idle_workers_sweep(
        db: None, redis: Any, settings: Any) -> None:
    import redis as redis_client

    tokens = redis_client.Redis.from_url(redis.url)
    settings.JOB_QUEUE_RETRY_SECONDS, settings.JOB_SWEEP_SECONDS = 1, 1
    live_worker("w1@host", queues=["cpu", "gpu"])
    lost = run(make_user("ann"))  # a row with no token: as if its token died with a worker
    before = tokens.llen("cpu")
    assert services.top_up("w1@host") == []  # it has not waited long enough yet
    Job.objects.filter(id=lost.id).update(created_at=timezone.now() - timedelta(seconds=10))
    assert services.top_up("w1@host") == ["cpu"] and tokens.llen("cpu") == before + 1
    # Not while the worker is busy, the queue is paused or the run is held by a quota.
    busy = run(make_user("ben"), status="running", started=timezone.now() - timedelta(minutes=1))
    Job.objects.filter(id=busy.id).update(worker="w1@host")
    assert services.top_up("w1@host") == []
    Job.objects.filter(id=busy.id).update(worker="w2@host")
    Queue.objects.create(name="cpu", paused=True)
    assert services.top_up("w1@host") == []
    Queue.objects.filter(name="cpu").update(paused=False)
    Quota.objects.create(user=lost.owner, max_running=0)
    assert services.top_up("w1@host") == []
    assert tokens.llen("cpu") == before + 1


ADMIN_PAGES = ["/admin/jobs/job/", "/admin/jobs/queue/", "/admin/jobs/worker/",
               "/admin/jobs/quota/", "/admin/jobs/quota/add/", "/admin/jobs/adminaction/"]


def test_the_admin_lists_queues_workers_quotas_and_actions_for_staff_only(
        db: None, password: str) -> None:
    from django.test import Client

    User.objects.create_superuser("root", "root@example.com", password)
    ann = make_user("ann")
    ann.set_password(password)
    ann.save()
    live_worker()
    job = run(ann, status="failed")
    staff, someone = Client(), Client()
    assert staff.login(username="root", password=password)
    assert someone.login(username="ann", password=password)
    for page in ADMIN_PAGES:
        assert staff.get(page).status_code == 200, page
        assert someone.get(page).status_code == 302, page  # to the admin's login
    # The requeue action of the runs' changelist goes through queue.requeue (recorded).
    response = staff.post("/admin/jobs/job/", {"action": "requeue_runs",
                                               "_selected_action": [job.id]})
    assert response.status_code == 302
    assert Job.objects.get(retry_of=job).status == "queued"
    assert AdminAction.objects.get().action == "requeue"
    # The record cannot be edited or deleted, even by a superuser.
    record = AdminAction.objects.get()
    assert staff.post(f"/admin/jobs/adminaction/{record.id}/delete/",
                      {"post": "yes"}).status_code == 403
    assert AdminAction.objects.count() == 1
