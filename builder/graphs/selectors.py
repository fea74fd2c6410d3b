"""Reading side of graphs. Every lookup is scoped to its owner: another user's graph is
simply not found."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import Http404

from .models import Graph, GraphVersion, ShareLink, hash_token


def graphs_of(user: AbstractBaseUser) -> QuerySet[Graph]:
    return Graph.objects.filter(owner=user).select_related("forked_from")


@dataclass(frozen=True)
class LastRun:
    """The latest run of a graph, as its owner's list shows it."""

    id: int
    status: str
    # The latest value of each metric; None for one that is not a finite number.
    metrics: dict[str, float | None]


def _runs_model() -> type[Model]:
    """The model of a graph's runs, reached through their foreign key to Graph: runs live in
    compute.jobs, which depends on this app, so this app never imports it."""
    model = Graph._meta.get_field("jobs").related_model
    assert isinstance(model, type) and issubclass(model, Model)
    return model


def graphs_with_last_run(user: AbstractBaseUser) -> QuerySet[Graph]:
    """`user`'s graphs, each annotated with its latest run (read it with `last_run`), in
    one query however many graphs there are."""
    latest = (_runs_model()._default_manager.filter(graph=OuterRef("pk"))
              .order_by("-created_at", "-id"))
    return graphs_of(user).defer("forked_from__document_json").annotate(
        last_run_id=Subquery(latest.values("id")[:1]),
        last_run_status=Subquery(latest.values("status")[:1]),
        last_run_metrics=Subquery(latest.values("metrics")[:1]))


def run_count(graph: Graph) -> int:
    return _runs_model()._default_manager.filter(graph=graph).count()


def last_run(graph: Graph) -> LastRun | None:
    """The latest run of a graph from `graphs_with_last_run`; None if it has none."""
    run_id = getattr(graph, "last_run_id", None)
    if run_id is None:
        return None
    stored = graph.last_run_metrics or {}
    # A metric that is not finite is stored as its name ("nan", "inf"): JSON has no number.
    metrics = {name: value if isinstance(value, int | float) else None
               for name, value in stored.items()}
    return LastRun(id=run_id, status=graph.last_run_status, metrics=metrics)


def graph_of(user: AbstractBaseUser, graph_id: int) -> Graph:
    graph = graphs_of(user).filter(id=graph_id).first()
    if graph is None:
        raise Http404("no such graph")
    return graph


def version_of(graph: Graph, number: int | None = None) -> GraphVersion:
    """Version `number` of `graph`, or its latest."""
    number = graph.head if number is None else number
    version = graph.versions.select_related("author").filter(number=number).first()
    if version is None:
        raise Http404(f"{graph.name} has no version {number}")
    return version


def versions_of(graph: Graph) -> QuerySet[GraphVersion]:
    return graph.versions.select_related("author").defer("document_json")


def share_links_of(graph: Graph) -> QuerySet[ShareLink]:
    return graph.share_links.select_related("version")


def shared(raw_token: str) -> tuple[ShareLink, GraphVersion]:
    """The live link for a raw token and the version it shows; 404 if unknown or revoked."""
    link = (ShareLink.objects.select_related("graph__owner", "version")
            .filter(token_hash=hash_token(raw_token), revoked_at__isnull=True).first())
    if link is None:
        raise Http404("this link is unknown or was revoked")
    version = link.version or version_of(link.graph)
    return link, version
