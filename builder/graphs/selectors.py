"""Reading side of graphs. Every lookup is scoped to its owner: another user's graph is
simply not found."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from .models import Graph, GraphVersion, ShareLink
from .services import hash_token


def graphs_of(user: AbstractBaseUser) -> QuerySet[Graph]:
    return Graph.objects.filter(owner=user).select_related("forked_from")


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
