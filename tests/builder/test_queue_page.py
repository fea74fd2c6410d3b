"""The administrators' queue page (/admin/jobs/job/queue/), its actions and its live socket
(ws/admin/queue/): staff see every queue's waiting runs in start order, the running runs and
the workers, and act on them; nobody else gets anything from the page, the actions or the
socket; hostile values are refused with a 4xx that names them; hostile names stay text."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from builder.accounts.services import issue_token
from builder.asgi import application
from builder.graphs.models import Graph
from compute.jobs import queue
from compute.jobs.consumers import QueueConsumer
from compute.jobs.models import AdminAction, Job, Queue, Worker

pytestmark = pytest.mark.usefixtures("redis")

PAGE = "/admin/jobs/job/queue/"
SNAPSHOT = "/admin/jobs/job/queue/snapshot"
HOSTILE_GRAPH = '<img src=x onerror="alert(1)">'
HOSTILE_USER = "</script><script>alert(2)</script>"


def action(name: str) -> str:
    return f"/admin/jobs/job/queue/{name}"


def logged_in(user: User, password: str, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    assert client.login(username=user.username, password=password)
    return client


def staff_user(name: str, password: str, *perms: str) -> User:
    user = User.objects.create_user(name, f"{name}@example.com", password, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="jobs",
                                                        codename__in=perms))
    return user


@pytest.fixture
def staff(db: None, password: str) -> User:
    """Staff who may view and change runs (not a superuser)."""
    return staff_user("harbourmaster", password, "view_job", "change_job")


@pytest.fixture
def admin_client(staff: User, password: str) -> Client:
    return logged_in(staff, password)


@pytest.fixture
def graph(make_graph: Any) -> Graph:
    return Graph.objects.get(id=make_graph()["id"])


def queued(graph: Graph, *, queue_name: str = "cpu", priority: int = 0, owner: User | None = None,
           status: str = Job.Status.QUEUED, **fields: Any) -> Job:
    """A run row as the queue holds it (made directly: no worker is meant to take it)."""
    return Job.objects.create(owner=owner or graph.owner, graph=graph,
                              version=graph.versions.get(number=graph.head), dataset="digits",
                              queue=queue_name, priority=priority, time_limit=600,
                              total_steps=100, status=status, **fields)


def snapshot_in(page: bytes) -> dict[str, Any]:
    found = re.search(rb'<script id="queue-snapshot" type="application/json">(.*?)</script>',
                      page, re.S)
    assert found, "the page carries no snapshot"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def by_name(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in snapshot["queues"] if q["name"] == name)
    return found


# -- the page ------------------------------------------------------------------------------


def test_staff_see_the_waiting_runs_in_start_order_the_running_runs_and_the_workers(
        admin_client: Client, graph: Graph) -> None:
    low = queued(graph, priority=0)
    high = queued(graph, priority=5)
    later = queued(graph, priority=0)
    gpu = queued(graph, queue_name="gpu")
    going = queued(graph, status=Job.Status.RUNNING, worker="w1@host", step=30,
                   started_at=timezone.now())
    Worker.objects.create(hostname="w1@host", host="host", queues=["cpu"], pool="prefork",
                          device="NVIDIA H200", memory=141 * 2**30,
                          heartbeat_at=timezone.now())
    Worker.objects.create(hostname="w2@host", host="host", queues=["gpu"], pool="solo",
                          heartbeat_at=timezone.now() - timedelta(hours=1))

    page = admin_client.get(PAGE)

    assert page.status_code == 200
    assert b'src="/static/jobs/queue.js"' in page.content
    data = snapshot_in(page.content)
    cpu = by_name(data, "cpu")
    assert [row["id"] for row in cpu["waiting"]] == [high.id, low.id, later.id]
    assert [row["position"] for row in cpu["waiting"]] == [1, 2, 3]
    assert [row["id"] for row in cpu["running"]] == [going.id]
    assert [row["id"] for row in by_name(data, "gpu")["waiting"]] == [gpu.id]
    assert {q["name"] for q in data["queues"]} == {"cpu", "gpu", "fpga"}
    workers = {w["hostname"]: w for w in data["workers"]}
    assert workers["w1@host"]["runs"] == [going.id] and not workers["w1@host"]["lost"]
    assert workers["w2@host"]["lost"]
    # The same over HTTP, for the page while its socket is down.
    assert admin_client.get(SNAPSHOT).json()["queues"] == data["queues"]


def test_the_admin_index_and_the_runs_list_link_to_the_queue_page(admin_client: Client) -> None:
    for url in ("/admin/", "/admin/jobs/job/"):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert f'href="{PAGE}"'.encode() in page.content, url


def test_the_page_keeps_hostile_graph_names_and_usernames_as_text(
        admin_client: Client, make_graph: Any, mlp: dict[str, Any], password: str) -> None:
    graph = Graph.objects.get(id=make_graph(name=HOSTILE_GRAPH)["id"])
    villain = User.objects.create_user(HOSTILE_USER[:150], password=password)
    queued(graph, owner=villain)

    page = admin_client.get(PAGE)

    assert page.status_code == 200
    assert HOSTILE_GRAPH.encode() not in page.content
    assert b"<script>alert(2)" not in page.content
    row = by_name(snapshot_in(page.content), "cpu")["waiting"][0]
    assert (row["graph"], row["owner"]) == (HOSTILE_GRAPH, HOSTILE_USER)


# -- who may ---------------------------------------------------------------------------------


def test_nobody_but_staff_gets_the_page_the_snapshot_or_an_action(
        db: None, graph: Graph, user: User, password: str) -> None:
    job = queued(graph)
    anonymous = Client()
    ada = logged_in(user, password)  # a user, not staff
    for client in (anonymous, ada):
        for response in (client.get(PAGE), client.get(SNAPSHOT),
                         client.post(action("cancel"), {"job": job.id}),
                         client.post(action("pause"), {"queue": "cpu"})):
            assert response.status_code == 302
            assert response["Location"].startswith("/admin/login/")
    # Staff without the permissions on runs: refused outright.
    clerk = logged_in(staff_user("clerk", password), password)
    assert clerk.get(PAGE).status_code == 403
    assert clerk.get(SNAPSHOT).status_code == 403
    refused = clerk.post(action("cancel"), {"job": job.id})
    assert refused.status_code == 403 and "may not" in refused.json()["error"]
    # Staff who may only look: the page, but no action.
    viewer = logged_in(staff_user("viewer", password, "view_job"), password)
    assert viewer.get(PAGE).status_code == 200
    assert viewer.post(action("pause"), {"queue": "cpu"}).status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert not Queue.objects.filter(paused=True).exists()
    assert not AdminAction.objects.exists()


# -- actions ---------------------------------------------------------------------------------


def post(client: Client, name: str, **data: Any) -> dict[str, Any]:
    response = client.post(action(name), data)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def test_pausing_and_resuming_a_queue_shows_in_the_snapshot_and_is_recorded(
        admin_client: Client, staff: User) -> None:
    paused = post(admin_client, "pause", queue="gpu")
    assert "gpu queue is paused" in paused["message"]
    gpu = by_name(paused["snapshot"], "gpu")
    assert gpu["paused"] and gpu["paused_by"] == staff.username
    assert not by_name(paused["snapshot"], "cpu")["paused"]

    resumed = post(admin_client, "resume", queue="gpu")
    assert not by_name(resumed["snapshot"], "gpu")["paused"]
    recorded = list(AdminAction.objects.order_by("id").values_list("action", "queue", "actor"))
    assert [(q, actor) for _, q, actor in recorded] == [("gpu", staff.id), ("gpu", staff.id)]
    assert "pause" in recorded[0][0] and "resume" in recorded[1][0]


def test_priority_and_move_to_front_change_the_start_order(admin_client: Client,
                                                            graph: Graph) -> None:
    first, second, third = queued(graph), queued(graph), queued(graph)

    raised = post(admin_client, "priority", job=second.id, priority=3)
    assert [r["id"] for r in by_name(raised["snapshot"], "cpu")["waiting"]] == [
        second.id, first.id, third.id]
    fronted = post(admin_client, "front", job=third.id)
    assert by_name(fronted["snapshot"], "cpu")["waiting"][0]["id"] == third.id
    assert sorted(AdminAction.objects.values_list("job", flat=True)) == [second.id, third.id]


def test_cancel_requeue_and_drain_call_through(admin_client: Client, graph: Graph) -> None:
    waiting = queued(graph)
    failed = queued(graph, status=Job.Status.FAILED, error="out of memory")
    Worker.objects.create(hostname="w1@host", queues=["cpu"], heartbeat_at=timezone.now())

    assert "cancelled" in post(admin_client, "cancel", job=waiting.id)["message"]
    waiting.refresh_from_db()
    assert waiting.status == Job.Status.CANCELLED

    requeued = post(admin_client, "requeue", job=failed.id)
    new = Job.objects.get(retry_of=failed)
    assert requeued["message"] == f"run {failed.id} requeued as run {new.id}"
    assert new.status == Job.Status.QUEUED and new.version_id == failed.version_id
    assert new.id in [r["id"] for r in by_name(requeued["snapshot"], "cpu")["waiting"]]

    drained = post(admin_client, "drain", worker="w1@host")
    assert drained["snapshot"]["workers"][0]["draining"]


def test_an_action_the_queue_refuses_is_a_clear_error_not_a_500(admin_client: Client,
                                                                 graph: Graph) -> None:
    done = queued(graph, status=Job.Status.SUCCEEDED)
    going = queued(graph, status=Job.Status.RUNNING)
    for name, data in (("requeue", {"job": going.id}), ("priority", {"job": done.id,
                                                                     "priority": 1}),
                       ("cancel", {"job": done.id})):
        response = admin_client.post(action(name), data)
        assert response.status_code == 409, (name, response.content)
        assert str(data["job"]) in response.json()["error"]


@pytest.mark.parametrize(("name", "data", "status", "field"), [
    ("cancel", {"job": "12abc"}, 400, "job"),
    ("cancel", {"job": "-1"}, 400, "job"),
    ("cancel", {"job": "9" * 40}, 400, "job"),
    ("cancel", {}, 400, "job"),
    ("cancel", {"job": "999999"}, 404, "job"),
    ("priority", {"job": "JOB", "priority": "99999"}, 400, "priority"),  # past the column
    ("priority", {"job": "JOB", "priority": str(10**12)}, 400, "priority"),
    ("priority", {"job": "JOB", "priority": "1.5"}, 400, "priority"),
    ("priority", {"job": "JOB", "priority": "NaN"}, 400, "priority"),
    ("priority", {"job": "JOB"}, 400, "priority"),
    ("pause", {"queue": "tpu"}, 400, "queue"),
    ("pause", {"queue": "<script>"}, 400, "queue"),
    ("resume", {}, 400, "queue"),
    ("drain", {"worker": "x" * 500}, 400, "worker"),
])
def test_hostile_values_get_a_4xx_naming_the_field(admin_client: Client, graph: Graph,
                                                   name: str, data: dict[str, str], status: int,
                                                   field: str) -> None:
    job = queued(graph)
    data = {k: str(job.id) if v == "JOB" else v for k, v in data.items()}
    response = admin_client.post(action(name), data)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["field"] == field and body["error"]
    job.refresh_from_db()
    assert (job.status, job.priority) == (Job.Status.QUEUED, 0)
    assert not AdminAction.objects.exists()


def test_an_unknown_action_or_a_get_is_refused(admin_client: Client) -> None:
    unknown = admin_client.post(action("explode"), {"queue": "cpu"})
    assert unknown.status_code == 404 and "pause" in unknown.json()["error"]
    assert admin_client.get(action("pause")).status_code == 405


def test_an_action_without_the_csrf_token_is_refused(staff: User, password: str) -> None:
    client = logged_in(staff, password, enforce_csrf_checks=True)
    assert client.post(action("pause"), {"queue": "cpu"}).status_code == 403
    assert not Queue.objects.filter(paused=True).exists()


def test_the_runs_list_actions_cancel_requeue_and_move_to_front(admin_client: Client,
                                                                 graph: Graph) -> None:
    waiting, failed, done = (queued(graph), queued(graph, status=Job.Status.FAILED),
                             queued(graph, status=Job.Status.SUCCEEDED))
    url = "/admin/jobs/job/"
    page = admin_client.post(url, {"action": "requeue_runs",
                                   "_selected_action": [failed.id, done.id]}, follow=True)
    assert Job.objects.filter(retry_of=failed).count() == 1
    assert f"run {done.id}: " in page.content.decode().lower()  # why it was not requeued
    admin_client.post(url, {"action": "cancel_runs", "_selected_action": [waiting.id]})
    waiting.refresh_from_db()
    assert waiting.status == Job.Status.CANCELLED


def test_a_runs_page_lists_what_administrators_did_to_it(admin_client: Client, staff: User,
                                                         graph: Graph) -> None:
    job = queued(graph)
    post(admin_client, "priority", job=job.id, priority=2)
    post(admin_client, "cancel", job=job.id)

    page = admin_client.get(f"/admin/jobs/job/{job.id}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "administrators&#x27; actions" in text.lower()
    actors = re.findall(r'<td class="field-actor">\s*<p>(?:<a [^>]*>)?([^<]*)<', text)
    done = re.findall(r'<td class="field-action">\s*<p>([^<]*)<', text)
    assert actors == [staff.username, staff.username]
    assert len(done) == 2 and "cancel" in done[0] and "priority" in done[1]  # newest first


# -- the live socket -------------------------------------------------------------------------


def session_cookie(client: Client) -> tuple[bytes, bytes]:
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def opened(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/admin/queue/", headers=list(headers))
    connected, _ = await socket.connect(timeout=10)
    assert connected
    return socket


async def refused_with(socket: WebsocketCommunicator) -> int:
    assert (await socket.receive_json_from(timeout=10))["type"] == "error"
    closed = await socket.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    return int(closed["code"])


@pytest.mark.django_db(transaction=True)
def test_the_socket_refuses_anyone_but_staff(user: User, staff: User, password: str) -> None:
    ada = logged_in(user, password)
    clerk = logged_in(staff_user("clerk", password), password)
    # Even staff's own API token: the page is the admin's, which takes sessions only.
    _, raw = issue_token(user=staff, name="script")
    token = (b"authorization", f"Bearer {raw}".encode())

    async def test() -> None:
        assert await refused_with(await opened()) == 4401
        assert await refused_with(await opened(session_cookie(ada))) == 4403
        assert await refused_with(await opened(session_cookie(clerk))) == 4403
        assert await refused_with(await opened(token)) == 4403

    asyncio.run(test())


@pytest.mark.django_db(transaction=True)
def test_the_socket_sends_a_snapshot_then_one_per_burst_of_changes(
        staff: User, password: str, graph: Graph) -> None:
    client = logged_in(staff, password)
    job = queued(graph)

    async def test() -> None:
        socket = await opened(session_cookie(client))
        first = await socket.receive_json_from(timeout=10)
        assert first["type"] == "snapshot"
        assert by_name(first["snapshot"], "cpu")["waiting"][0]["id"] == job.id

        await sync_to_async(queue.pause_queue)("cpu", staff)  # notifies the group
        changed = await socket.receive_json_from(timeout=5)
        assert by_name(changed["snapshot"], "cpu")["paused"]

        # A burst of 30 changes: a snapshot or two, not 30.
        layer = get_channel_layer()
        for _ in range(30):
            await layer.group_send(queue.QUEUE_GROUP, {"type": "queue.changed"})
        got = 0
        while not await socket.receive_nothing(timeout=1):
            assert (await socket.receive_json_from())["type"] == "snapshot"
            got += 1
        assert 1 <= got <= 3
        await socket.disconnect()

    asyncio.run(test())


@pytest.mark.django_db(transaction=True)
def test_the_socket_closes_once_its_user_is_no_longer_staff(staff: User, password: str) -> None:
    client = logged_in(staff, password)

    async def test() -> None:
        socket = await opened(session_cookie(client))
        assert (await socket.receive_json_from(timeout=10))["type"] == "snapshot"
        await sync_to_async(User.objects.filter(id=staff.id).update)(is_staff=False)
        await get_channel_layer().group_send(queue.QUEUE_GROUP, {"type": "queue.changed"})
        assert await refused_with(socket) == 4403

    asyncio.run(test())


@pytest.mark.django_db(transaction=True)
def test_the_socket_sends_the_queue_again_unasked_so_a_silent_worker_turns_lost(
        staff: User, password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = logged_in(staff, password)
    monkeypatch.setattr(QueueConsumer, "REFRESH_SECONDS", 0.5)

    async def test() -> None:
        socket = await opened(session_cookie(client))
        assert (await socket.receive_json_from(timeout=10))["snapshot"]["workers"] == []
        # A worker row appears with no message to the group (as a heartbeat's age grows).
        await sync_to_async(Worker.objects.create)(
            hostname="quiet@host", queues=["cpu"],
            heartbeat_at=timezone.now() - timedelta(hours=1))
        again = await socket.receive_json_from(timeout=5)
        assert [(w["hostname"], w["lost"]) for w in again["snapshot"]["workers"]] == [
            ("quiet@host", True)]
        await socket.disconnect()

    asyncio.run(test())
