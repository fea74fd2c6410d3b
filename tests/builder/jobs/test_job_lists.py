"""A page of runs costs a fixed number of queries however many runs it holds, and each
queued run on it still has its place in its queue. The rows are written directly: no worker
and no broker are needed to list them."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from builder.graphs import services as graph_services
from builder.graphs.models import Graph
from compute.engine import load_starter
from compute.jobs.models import Job
from compute.jobs.queue import start_order

PAGE = 200  # what GET /api/jobs lists at most
# The API token (read, its last use written), the page with its graphs and versions; the
# queues' start order (the waiting runs; their owners' running and started runs; their
# quotas, own and of their groups; GPU-hours; paused queues; live workers), and the admin
# actions on the page's runs. A shared page reads the link instead of the token: 10.
MAX_QUERIES = 11


def _graph(owner: User, name: str) -> Graph:
    graph = graph_services.create_graph(owner=owner, document=load_starter("mlp"), name=name)
    document = {**load_starter("mlp"), "description": "a second version"}
    graph_services.save_version(graph=graph, author=owner, document=document, base_version=1)
    return graph


def _runs(owner: User, graphs: list[Graph], count: int, *, published: bool = False) -> None:
    """`count` runs of `graphs` in turn: queued on cpu and gpu, running, ended."""
    kinds = itertools.cycle([("queued", "cpu"), ("queued", "gpu"), ("running", "cpu"),
                             ("queued", "cpu"), ("succeeded", "cpu"), ("failed", "gpu"),
                             ("running", "gpu"), ("cancelled", "cpu")])
    now = timezone.now()
    rows = []
    for i, ((status, queue), graph) in enumerate(zip(kinds, itertools.cycle(graphs))):
        if i == count:
            break
        rows.append(Job(
            owner=owner, graph=graph, version=graph.versions.get(number=1 + i % 2),
            dataset="digits", queue=queue, time_limit=600, status=status, total_steps=100,
            step=0 if status == "queued" else 50, published=published,
            started_at=None if status == "queued" else now,
            finished_at=now if status in ("succeeded", "failed", "cancelled") else None))
    Job.objects.bulk_create(rows)


def _expected_positions() -> dict[int, int]:
    """Every queued run's place in its queue's start order (the rule's, tested in
    test_queue_admin), queue by queue."""
    places: dict[int, int] = {}
    for name in ("cpu", "gpu"):
        order = start_order(name)
        assert len(order) == Job.objects.filter(status="queued", queue=name).count()
        places.update({job.id: n for n, job in enumerate(order, start=1)})
    return places


def _check_positions(listed: list[dict[str, Any]], single: APIClient, path: str) -> None:
    expected = _expected_positions()
    for run in listed:
        assert run["position"] == expected.get(run["id"]), run
    queued = [run for run in listed if run["status"] == "queued"]
    assert {run["queue"] for run in queued} == {"cpu", "gpu"}
    for run in queued[:3] + queued[-3:]:  # the one-run answer agrees
        alone = single.get(f"/api/jobs/{run['id']}{path}")
        assert alone.status_code == 200
        assert alone.json()["position"] == run["position"]


def test_a_page_of_200_runs_takes_a_fixed_number_of_queries(
        api: APIClient, user: User, other_user: User,
        django_assert_max_num_queries: Any) -> None:
    _runs(other_user, [_graph(other_user, "Bob's")], 30)  # queued with ada's, before them
    _runs(user, [_graph(user, "First"), _graph(user, "Second")], PAGE)
    _runs(other_user, [_graph(other_user, "Bob's later")], 30)  # and after them

    with django_assert_max_num_queries(MAX_QUERIES):
        response = api.get("/api/jobs")
    assert response.status_code == 200
    listed = response.json()
    assert len(listed) == PAGE
    assert {run["graph_name"] for run in listed} == {"First", "Second"}
    assert {run["version"] for run in listed} == {1, 2}
    assert {run["status"] for run in listed} == {"queued", "running", "succeeded", "failed",
                                                 "cancelled"}
    _check_positions(listed, api, "")


def test_a_shared_page_of_200_runs_takes_a_fixed_number_of_queries(
        api: APIClient, anon: APIClient, user: User, other_user: User,
        django_assert_max_num_queries: Any) -> None:
    _runs(other_user, [_graph(other_user, "Bob's")], 30)
    graph = _graph(user, "Shared")
    _runs(user, [graph], PAGE, published=True)
    token = api.post(f"/api/graphs/{graph.id}/share", {}, format="json").json()["token"]

    with django_assert_max_num_queries(MAX_QUERIES):
        response = anon.get(f"/api/shared/{token}/jobs")
    assert response.status_code == 200
    listed = response.json()
    assert len(listed) == PAGE and {run["graph_name"] for run in listed} == {"Shared"}
    _check_positions(listed, anon, f"?share={token}")
