"""Real parts for the runs' tests: a Redis server of their own and a Celery worker in a
process of its own, on the test database (a file for SQLite, so that the worker sees what
the tests write; the tests that need the worker use `transactional_db` for the same
reason).

`redis` (session, from tests/builder/conftest.py): a redis-server of the tests' own.
`worker` (module): a worker process on
queue cpu with a fast heartbeat and sweep; `start_worker(**env)` makes more, for the tests
that kill one.
`s3` (session): an S3-compatible server (moto's server mode) on a free port, with a bucket;
`s3_store` points this process's store at it for one test (`remote_store` is either that or
a file store in another folder than SHIPYARD_HOME).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from realparts import RedisServer, S3Server, Worker, point_store_at, start_worker_process

from compute.serve import free_port


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




@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    server = S3Server(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3: S3Server, settings: Any, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The store is `s3`'s bucket, under a prefix of the test's own."""
    import uuid

    point_store_at(settings, monkeypatch, s3.env(prefix=f"t-{uuid.uuid4().hex[:8]}"))
    return s3


@pytest.fixture(params=["dir", "s3"])
def remote_store(request: pytest.FixtureRequest, settings: Any,
                 monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """A store that is not SHIPYARD_HOME: a folder elsewhere, or the S3 bucket."""
    if request.param == "s3":
        request.getfixturevalue("s3_store")
    else:
        point_store_at(settings, monkeypatch, {"SHIPYARD_STORAGE": "filesystem",
                                               "SHIPYARD_STORE_DIR": str(tmp_path / "store")})
    return str(request.param)
