"""A run's outcome is written even when the database ended the worker's connection while
it trained (PostgreSQL restarted): before, the task's thread, whose connection had sat idle
since the claim, failed to write it ("terminating connection due to administrator
command") and the run stayed `running` until the sweep found it a minute later.

Only PostgreSQL ends connections; on SQLite (the default test database) the test is
skipped. Run it with DATABASE_URL=postgres://…"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, connections

from builder.graphs.services import create_graph
from compute.engine import load_starter
from compute.jobs import services
from compute.jobs.lifecycle import Publisher
from compute.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_ended_after_its_connection_was_ended_is_recorded(django_user_model: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL ends a client's connection (a restart)")
    user = django_user_model.objects.create_user("restart", password="a-long-pass-1")
    graph = create_graph(owner=user, document=load_starter("mlp"), name="g", message="")
    job = Job.objects.create(owner=user, graph=graph, version=graph.versions.first(),
                             dataset="digits", config={}, time_limit=600, total_steps=10,
                             status=Job.Status.RUNNING, attempts=1)
    publisher = Publisher(job, heartbeat=False)
    publisher.start()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    # What a restart does to every connection: the server ends it.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    publisher.close()
    assert services.finish_job(job, Job.Status.SUCCEEDED, step=10)
    assert Job.objects.get(id=job.id).status == Job.Status.SUCCEEDED
