"""Real parts for the runs' tests: a Redis server of their own and a Celery worker in a
process of its own, on the test database (a file for SQLite, so that the worker sees what
the tests write; the tests that need the worker use `transactional_db` for the same
reason).

`redis` (session, from tests/builder/conftest.py): a redis-server of the tests' own.
`worker` (module): a worker process on
queue cpu with a fast heartbeat and sweep; `start_worker(**env)` makes more, for the tests
that kill one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from realparts import RedisServer, Worker, start_worker_process


@pytest.fixture(scope="module")
def start_worker(redis: RedisServer, django_db_setup: None, django_db_blocker: Any,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Worker]]:
    """start_worker(queues="cpu", **env) -> Worker; every worker it started is stopped
    afterwards."""
    started: list[Worker] = []
    folder = tmp_path_factory.mktemp("workers")

    def start(queues: str = "cpu", **env: str) -> Worker:
        worker = start_worker_process(redis, folder, queues, **env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope="module")
def worker(start_worker: Callable[..., Worker]) -> Worker:
    return start_worker()


