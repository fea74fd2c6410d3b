"""The channel layer: channels_redis's, with a Redis connection pool that queues.

channels_redis gives each process a pool of Redis connections that refuses a command
("Too many connections") when all of them are busy, which a burst of sockets joining
their groups at once (300 watchers opening a page together) reaches. Here a command waits
for a free connection instead, up to the host's `timeout` seconds.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class QueueingRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:  # a Sentinel set-up: channels_redis's own pool
            return super().create_pool(index)
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
