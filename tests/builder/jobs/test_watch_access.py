"""A live stream lasts only as long as the access it was opened with: revoking the share
link, unpublishing the run, revoking the API token or deleting the graph closes the sockets
that relied on it (4403) within a moment, through the real Redis channel layer, and leaves
the others open."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from builder.accounts.models import ApiToken
from builder.asgi import application
from compute.jobs import events

pytestmark = [pytest.mark.usefixtures("redis"), pytest.mark.django_db(transaction=True)]


def bearer(client: APIClient) -> tuple[bytes, bytes]:
    return (b"authorization", client._credentials["HTTP_AUTHORIZATION"].encode())


def published_run(api: APIClient) -> tuple[int, int, str]:
    """A queued run (queue gpu: no worker takes it), published, and a share link of its
    graph: (graph id, job id, link token)."""
    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    job = api.post("/api/jobs", {"graph": graph, "dataset": "digits",
                                 "config": {"device": "cuda"}}, format="json").json()["id"]
    assert api.patch(f"/api/jobs/{job}", {"published": True}, format="json").status_code == 200
    token = api.post(f"/api/graphs/{graph}/share", {}, format="json").json()["token"]
    return graph, job, token


async def open_socket(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await socket.connect(timeout=10)
    assert connected
    assert (await socket.receive_json_from(timeout=10))["type"] == "state"
    return socket


async def closes_with_4403(socket: WebsocketCommunicator, within: float) -> bool:
    error = await socket.receive_json_from(timeout=within)
    assert error["type"] == "error" and "no longer watch this run" in error["error"]
    closed = await socket.receive_output(timeout=within)
    return bool(closed == {"type": "websocket.close", "code": 4403})


async def still_stream(job: int, *sockets: WebsocketCommunicator) -> bool:
    """They stay open, and the run's next event still reaches each of them."""
    for socket in sockets:
        if not await socket.receive_nothing(timeout=1):
            return False
    event = {"type": "metric", "seq": 99, "step": 1, "time": 0.0, "name": "loss", "value": 1.0}
    await get_channel_layer().group_send(events.group_name(job),
                                         {"type": "job.events", "events": [event]})
    return all([await socket.receive_json_from(timeout=5) == event for socket in sockets])


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def test_revoking_the_share_link_closes_the_sockets_watching_through_it(
        api: APIClient) -> None:
    graph, job, token = published_run(api)
    other = api.post(f"/api/graphs/{graph}/share", {}, format="json").json()["token"]
    link = api.get(f"/api/graphs/{graph}/share").json()
    revoked = next(item["id"] for item in link if token.startswith(item["prefix"]))

    async def test() -> None:
        through_link = await open_socket(f"/ws/jobs/{job}/?share={token}")
        through_other = await open_socket(f"/ws/jobs/{job}/?share={other}")
        owner = await open_socket(f"/ws/jobs/{job}/", bearer(api))
        response = await sync_to_async(api.delete)(f"/api/graphs/{graph}/share/{revoked}")
        assert response.status_code == 204
        assert await closes_with_4403(through_link, within=2)
        assert await still_stream(job, through_other, owner)
        await through_other.disconnect()
        await owner.disconnect()

    run(test)


def test_unpublishing_a_run_closes_its_share_link_watchers_but_not_its_owner(
        api: APIClient) -> None:
    _, job, token = published_run(api)

    async def test() -> None:
        watcher = await open_socket(f"/ws/jobs/{job}/?share={token}")
        owner = await open_socket(f"/ws/jobs/{job}/", bearer(api))
        response = await sync_to_async(api.patch)(f"/api/jobs/{job}", {"published": False},
                                                  format="json")
        assert response.status_code == 200
        assert await closes_with_4403(watcher, within=2)
        assert await still_stream(job, owner)
        await owner.disconnect()

    run(test)


def test_revoking_an_api_token_closes_the_sockets_it_opened(api: APIClient,
                                                            user: User) -> None:
    _, job, _ = published_run(api)
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION="Bearer " + api.post(
        "/api/auth/token", {"username": "ada", "password": "a-long-harbour-crane-42"},
        format="json").json()["token"])
    first = ApiToken.objects.get(user=user, name="tests")

    async def test() -> None:
        revoked = await open_socket(f"/ws/jobs/{job}/", bearer(api))
        kept = await open_socket(f"/ws/jobs/{job}/", bearer(second))
        response = await sync_to_async(second.delete)(f"/api/auth/tokens/{first.id}")
        assert response.status_code == 204
        assert await closes_with_4403(revoked, within=2)
        assert await still_stream(job, kept)
        await kept.disconnect()

    run(test)


def test_deleting_the_graph_closes_its_runs_sockets(api: APIClient) -> None:
    graph, job, token = published_run(api)

    async def test() -> None:
        owner = await open_socket(f"/ws/jobs/{job}/", bearer(api))
        watcher = await open_socket(f"/ws/jobs/{job}/?share={token}")
        assert (await sync_to_async(api.delete)(f"/api/graphs/{graph}")).status_code == 204
        assert await closes_with_4403(owner, within=2)
        assert await closes_with_4403(watcher, within=2)

    run(test)


def test_a_lost_signal_is_caught_by_the_periodic_check(api: APIClient, user: User,
                                                       settings: Any) -> None:
    """Revoked behind the services' back (as if the message had been lost with Redis)."""
    settings.SHIPYARD_WS_RECHECK_SECONDS = 1
    _, job, token = published_run(api)

    async def test() -> None:
        by_token = await open_socket(f"/ws/jobs/{job}/", bearer(api))
        watcher = await open_socket(f"/ws/jobs/{job}/?share={token}")
        await sync_to_async(ApiToken.objects.filter(user=user).update)(
            revoked_at=timezone.now())
        assert await closes_with_4403(by_token, within=3)
        assert await still_stream(job, watcher)  # the link still shows the published run
        await watcher.disconnect()

    run(test)
