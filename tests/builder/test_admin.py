"""The Django admin, as a superuser uses it: it never deletes a graph's latest version (the
graph would open as 404 and every save to it fail)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from builder.graphs.models import Graph, GraphVersion


@pytest.fixture
def admin_client(db: None, password: str) -> Client:
    User.objects.create_superuser("root", "root@example.com", password)
    client = Client()
    assert client.login(username="root", password=password)
    return client


@pytest.fixture
def two_versions(api, make_graph, changed, mlp) -> Graph:
    graph = make_graph()
    response = api.post(f"/api/graphs/{graph['id']}/versions",
                        {"document": changed(mlp), "base_version": 1}, format="json")
    assert response.status_code == 201
    return Graph.objects.get(id=graph["id"])


def version(graph: Graph, number: int) -> GraphVersion:
    return graph.versions.get(number=number)


URL = "/admin/graphs/graphversion/"


def test_the_admin_cannot_delete_a_graphs_latest_version(admin_client, two_versions, api):
    latest = version(two_versions, 2)
    page = admin_client.get(f"{URL}{latest.id}/change/")
    assert page.status_code == 200
    assert f"{URL}{latest.id}/delete/".encode() not in page.content  # no Delete link
    assert admin_client.get(f"{URL}{latest.id}/delete/").status_code == 403
    assert admin_client.post(f"{URL}{latest.id}/delete/", {"post": "yes"}).status_code == 403
    assert two_versions.versions.count() == 2
    # The graph still opens and saves.
    assert api.get(f"/api/graphs/{two_versions.id}").json()["head"] == 2


def test_the_admin_can_delete_an_older_version(admin_client, two_versions):
    older = version(two_versions, 1)
    response = admin_client.post(f"{URL}{older.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(two_versions.versions.values_list("number", flat=True)) == [2]


def test_the_bulk_delete_action_refuses_when_a_latest_version_is_selected(admin_client,
                                                                          two_versions):
    selected = [str(v.id) for v in two_versions.versions.all()]
    form: dict[str, Any] = {"action": "delete_selected", "_selected_action": selected}
    page = admin_client.post(URL, form)
    assert page.status_code == 200
    assert b"the latest version of" in page.content
    admin_client.post(URL, {**form, "post": "yes"})
    assert two_versions.versions.count() == 2


def test_the_bulk_delete_action_deletes_older_versions(admin_client, two_versions):
    form = {"action": "delete_selected", "_selected_action": [str(version(two_versions, 1).id)],
            "post": "yes"}
    assert admin_client.post(URL, form).status_code == 302
    assert list(two_versions.versions.values_list("number", flat=True)) == [2]
