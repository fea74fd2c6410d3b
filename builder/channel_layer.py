"""The channel layer: channels_redis's, with a Redis connection pool that queues and that
outlives a restart of Redis.

channels_redis gives each process a pool of Redis connections that refuses a command
("Too many connections") when all of them are busy, which a burst of sockets joining
their groups at once (300 watchers opening a page together) reaches. Here a command waits
for a free connection instead, up to the host's `timeout` seconds.

When Redis restarts, every idle connection in the pool is dead, and redis-py's asyncio
connections do not retry by default: each of them failed the next command sent on it, so
the next WebSocket to open (or a group_send) failed with "Connection closed by server"
once per stale connection. Here a command that meets a closed connection is sent again on
a fresh one (a few times, with a short backoff, while Redis is starting).
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

RETRIES = 5  # with the backoff below, about 3 s of a Redis that is not answering yet


class QueueingRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:  # a Sentinel set-up: channels_redis's own pool
            return super().create_pool(index)
        host.setdefault("retry", Retry(ExponentialBackoff(cap=1.0, base=0.1), RETRIES))
        host.setdefault("retry_on_error", [RedisConnectionError])
        return BlockingConnectionPool.from_url(host.pop("address"), **host)
