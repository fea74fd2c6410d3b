"""JSON log lines (builder/logs.py) and `shipyard sweep`, the compose file's sweeper."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from builder.logs import JsonFormatter, RunIdFilter, current_run_id, job_context
from compute.cli import main
from compute.jobs.models import Job


def logger_to(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RunIdFilter())
    log = logging.getLogger(f"shipyard.test.{id(stream)}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def test_each_record_is_one_json_line_with_the_run_id_only_inside_a_run() -> None:
    stream = io.StringIO()
    log = logger_to(stream)
    log.info("before")
    with job_context(41):
        log.warning("two\nlines \"quoted\" %s", "ü")
        with job_context(42):  # a nested run (never in a worker, but it must not leak)
            log.info("inner")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    log.info("after")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    records = [json.loads(line) for line in lines]
    assert [r.get("run_id") for r in records] == [None, 41, 42, 41, None]
    assert records[1]["message"] == 'two\nlines "quoted" ü'
    assert records[1]["level"] == "WARNING" and records[1]["logger"] == log.name
    assert records[3]["exc"].startswith("Traceback") and "ValueError: boom" in records[3]["exc"]
    assert records[0]["time"].endswith("+00:00")
    assert current_run_id() is None


def test_a_thread_started_in_a_run_names_it_only_when_it_enters_the_context() -> None:
    stream = io.StringIO()
    log = logger_to(stream)

    def publisher() -> None:
        log.info("bare thread")
        with job_context(7):
            log.info("publisher")

    with job_context(7):
        thread = threading.Thread(target=publisher)
        thread.start()
        thread.join()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    # Why the Publisher enters job_context itself: a new thread starts with no context.
    assert [r.get("run_id") for r in records] == [None, 7]


@pytest.mark.django_db(transaction=True)  # the sweep closes its connection
def test_shipyard_sweep_once_hands_on_a_run_whose_worker_went_silent(
        api, make_graph, capsys) -> None:
    graph = make_graph()
    response = api.post("/api/jobs", {"graph": graph["id"], "dataset": "digits",
                                      "config": {"steps": 10}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(id=job_id).update(status=Job.Status.RUNNING, heartbeat_at=long_ago,
                                         started_at=long_ago, attempts=1, worker="gone@nowhere")
    assert main(["sweep", "--once"]) == 0
    job = Job.objects.get(id=job_id)
    assert job.status == Job.Status.QUEUED
    assert "gone@nowhere stopped answering" in job.error
    assert f"runs [{job_id}]" in capsys.readouterr().err


def test_shipyard_sweep_refuses_a_period_under_a_second(capsys) -> None:
    assert main(["sweep", "--every", "0"]) == 2
    assert "--every must be at least 1" in capsys.readouterr().err
