"""What an operator's tools see of a real worker: its health check (the containers' probe,
`shipyard worker-health`) and its log lines as JSON, each naming the run it was written
for (SHIPYARD_LOG_FORMAT=json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from realparts import Worker, database_url, finished
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def worker_health(name: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONPATH": str(ROOT),
           "DJANGO_SETTINGS_MODULE": "builder.settings"}
    return subprocess.run([sys.executable, "-m", "compute.cli", "worker-health", "--name", name],
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_json_logging_worker_names_the_run_on_its_lines_and_passes_its_health_check(
        api: APIClient, start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(SHIPYARD_LOG_FORMAT="json", LOG_LEVEL="INFO")
    healthy = worker_health(worker.name)
    assert healthy.returncode == 0, healthy.stderr
    assert worker.name in healthy.stdout

    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    job = api.post("/api/jobs", {"graph": graph, "dataset": "digits",
                                 "config": {"steps": 30}}, format="json").json()
    done = finished(api, job["id"])
    assert done["status"] == "succeeded", done["error"]

    # The row says succeeded a moment before the worker writes its last line: read again
    # until the line is there.
    deadline = time.monotonic() + 30
    while True:
        lines: list[dict[str, Any]] = []
        for raw in worker.output().splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))  # every JSON line parses, one object a line
        ours = [line for line in lines if line["logger"].startswith("compute.jobs")]
        started = [line for line in ours
                   if line["message"].startswith(f"job {job['id']}: started")]
        ended = [line for line in ours if line["message"] == f"job {job['id']}: ended succeeded"]
        if (started and ended) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert started and ended, worker.output()[-3000:]
    assert started[0]["run_id"] == job["id"] and ended[0]["run_id"] == job["id"]
    assert {"time", "level", "logger", "message", "pid"} <= started[0].keys()
    # Lines written outside a run (the worker's own) name none.
    assert all("run_id" not in line or line["run_id"] == job["id"] for line in lines)

    worker.stop()
    stopped = worker_health(worker.name)
    assert stopped.returncode == 1
    assert "stopped" in stopped.stderr and "Traceback" not in stopped.stderr


def test_the_health_check_of_a_worker_that_never_started_fails_naming_it() -> None:
    result = worker_health("shipyard-gpu@nowhere")
    assert result.returncode == 1
    assert "no worker named shipyard-gpu@nowhere" in result.stderr
