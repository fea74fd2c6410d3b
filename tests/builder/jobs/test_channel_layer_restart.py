"""The channel layer outlives a restart of Redis: a socket that opens after Redis came back
joins its group and gets what is sent (before, each connection left idle in the process's
pool failed its next command with "Connection closed by server", so the next WebSockets
opened were closed at once), and a receive waiting when Redis went down goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from realparts import RedisServer

from builder.channel_layer import QueueingRedisChannelLayer
from compute.serve import free_port


def test_groups_work_at_once_after_redis_restarts(tmp_path: Path) -> None:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    # The production host options (builder/settings.py), on a server of the test's own.
    layer = QueueingRedisChannelLayer(hosts=[{"address": server.url, "socket_timeout": None,
                                              "max_connections": 100, "timeout": 30}])

    async def scenario() -> None:
        first = await layer.new_channel()
        await layer.group_add("before", first)
        await layer.group_send("before", {"type": "job.events", "n": 1})
        assert (await asyncio.wait_for(layer.receive(first), 10))["n"] == 1
        # Several idle connections in the pool, as a web process serving many sockets has.
        others = [await layer.new_channel() for _ in range(5)]
        await asyncio.gather(*(layer.group_add("before", c) for c in others))
        waiting = asyncio.ensure_future(layer.receive(first))
        await asyncio.sleep(0.2)  # blocked in BZPOPMIN when Redis goes

        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)  # same port, its append-only file

        for i in range(5):  # every command at first try: no stale connection surfaces
            channel = await layer.new_channel()
            await layer.group_add(f"after-{i}", channel)
            await layer.group_send(f"after-{i}", {"type": "job.events", "n": i})
            assert (await asyncio.wait_for(layer.receive(channel), 10))["n"] == i
        await layer.group_send("before", {"type": "job.events", "n": 99})
        assert (await asyncio.wait_for(waiting, 10))["n"] == 99
        await layer.flush()
        await layer.close_pools()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
