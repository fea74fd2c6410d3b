"""Two saves based on the same version: exactly one wins, the other gets a conflict. Never a
silent overwrite, never two versions with one number."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction

from builder.graphs import services
from builder.graphs.models import Graph, GraphVersion
from compute.engine import load_starter


def test_two_versions_cannot_share_a_number(user, mlp):
    graph = services.create_graph(owner=user, document=mlp)
    with pytest.raises(IntegrityError), transaction.atomic():
        GraphVersion.objects.create(graph=graph, number=1, document_json="{}",
                                    content_hash="0" * 64, author=user)


def _race(*, graph_id: int, user: Any, document: dict[str, Any], base: int,
          barrier: threading.Barrier, outcomes: list[tuple[str, Any]]) -> None:
    """One save in its own thread (so with its own database connection)."""
    try:
        barrier.wait()
        graph = Graph.objects.get(id=graph_id)
        version, _ = services.save_version(graph=graph, author=user, document=document,
                                           base_version=base)
        outcomes.append(("saved", version.number))
    except services.Conflict as exc:
        outcomes.append(("conflict", exc.current.number))
    except Exception as exc:  # reported by the assertions below
        outcomes.append(("error", repr(exc)))
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_on_the_same_base_let_exactly_one_win(django_user_model, changed):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time; row locks need PostgreSQL")
    user = django_user_model.objects.create_user("ada", password="a-long-harbour-crane-42")
    mlp = load_starter("mlp")
    graph = services.create_graph(owner=user, document=mlp)
    rounds, racers = 5, 4
    for round_ in range(rounds):
        base = round_ + 1
        barrier = threading.Barrier(racers)
        outcomes: list[tuple[str, Any]] = []
        threads = [threading.Thread(target=_race, kwargs={
            "graph_id": graph.id, "user": user, "base": base, "barrier": barrier,
            "outcomes": outcomes, "document": changed(mlp, 10 + round_ * racers + i)})
            for i in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == [("conflict", base + 1)] * (racers - 1) + [
            ("saved", base + 1)], outcomes
    numbers = list(graph.versions.order_by("number").values_list("number", flat=True))
    assert numbers == list(range(1, rounds + 2))
