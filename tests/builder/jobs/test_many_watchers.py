"""Many watchers at once: 300 WebSockets opened together on one run all connect (the
channel layer queues for a Redis connection instead of failing when its pool is busy),
and all of them receive the run's events."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from builder.asgi import application
from compute.jobs import events

pytestmark = [pytest.mark.usefixtures("redis"), pytest.mark.django_db(transaction=True),
              pytest.mark.slow]

WATCHERS = 300


def test_300_websockets_opened_at_once_all_connect_and_stream(api: APIClient) -> None:
    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    job = api.post("/api/jobs", {"graph": graph, "dataset": "digits",
                                 "config": {"device": "cuda"}}, format="json").json()["id"]
    auth = (b"authorization", api._credentials["HTTP_AUTHORIZATION"].encode())

    async def watch() -> WebsocketCommunicator:
        socket = WebsocketCommunicator(application, f"/ws/jobs/{job}/", headers=[auth])
        connected, code = await socket.connect(timeout=60)
        assert connected, code
        first = await socket.receive_json_from(timeout=60)
        assert first["type"] == "state", first
        return socket

    async def test() -> None:
        began = time.monotonic()
        sockets = await asyncio.gather(*(watch() for _ in range(WATCHERS)))
        assert time.monotonic() - began < 60
        event = {"type": "metric", "seq": 2, "step": 1, "time": 0.0, "name": "loss",
                 "value": 1.0}
        await get_channel_layer().group_send(events.group_name(job),
                                             {"type": "job.events", "events": [event]})
        received = await asyncio.gather(*(s.receive_json_from(timeout=30) for s in sockets))
        assert received == [event] * WATCHERS
        await asyncio.gather(*(s.disconnect() for s in sockets))

    asyncio.run(test())
