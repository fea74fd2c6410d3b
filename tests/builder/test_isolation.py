"""Every graph is its owner's: another user can neither see nor change it, and gets 404
(not 403) so that not even its existence leaks."""

from __future__ import annotations

import pytest

from builder.graphs.models import Graph, GraphVersion, ShareLink


@pytest.fixture
def adas(api, make_graph, mlp, changed):
    graph = make_graph(name="ada's secret")
    api.post(f"/api/graphs/{graph['id']}/versions",
             {"document": changed(mlp), "base_version": 1}, format="json")
    link = api.post(f"/api/graphs/{graph['id']}/share", {}, format="json").json()
    return graph["id"], link["id"]


def test_bob_does_not_see_adas_graph_in_his_list(adas, other_api):
    assert other_api.get("/api/graphs").json() == []


@pytest.mark.parametrize("method, path, body", [
    ("get", "/api/graphs/{g}", None),
    ("patch", "/api/graphs/{g}", {"name": "mine now"}),
    ("delete", "/api/graphs/{g}", None),
    ("get", "/api/graphs/{g}/versions", None),
    ("post", "/api/graphs/{g}/versions", "SAVE"),
    ("get", "/api/graphs/{g}/versions/1", None),
    ("post", "/api/graphs/{g}/versions/1/restore", {}),
    ("get", "/api/graphs/{g}/download?format=json", None),
    ("get", "/api/graphs/{g}/download?format=pytorch", None),
    ("get", "/api/graphs/{g}/share", None),
    ("post", "/api/graphs/{g}/share", {}),
    ("delete", "/api/graphs/{g}/share/{s}", None),
    ("post", "/api/graphs/{g}/sql", {"sql": "SELECT * FROM model"}),
    ("post", "/api/graphs/{g}/sql", {"sql": "UPDATE model SET name = 'mine'"}),
])
def test_bob_gets_404_for_everything_of_adas(adas, other_api, mlp, method, path, body):
    graph_id, link_id = adas
    if body == "SAVE":
        body = {"document": mlp, "base_version": 2}
    url = path.format(g=graph_id, s=link_id)
    response = getattr(other_api, method)(url, body, format="json") if body is not None \
        else getattr(other_api, method)(url)
    assert response.status_code == 404
    assert "ada's secret" not in response.content.decode()


def test_nothing_of_adas_changed_after_bobs_attempts(adas, other_api, mlp):
    graph_id, link_id = adas
    other_api.patch(f"/api/graphs/{graph_id}", {"name": "x"}, format="json")
    other_api.delete(f"/api/graphs/{graph_id}")
    other_api.post(f"/api/graphs/{graph_id}/versions",
                   {"document": mlp, "base_version": 2}, format="json")
    other_api.delete(f"/api/graphs/{graph_id}/share/{link_id}")
    graph = Graph.objects.get(id=graph_id)
    assert graph.name == "ada's secret"
    assert GraphVersion.objects.filter(graph=graph).count() == 2
    assert ShareLink.objects.get(id=link_id).revoked_at is None


def test_a_share_link_id_of_another_graph_cannot_be_revoked_through_mine(
        adas, other_api, mlp):
    _, adas_link = adas
    bobs = other_api.post("/api/graphs", {"document": mlp}, format="json").json()
    response = other_api.delete(f"/api/graphs/{bobs['id']}/share/{adas_link}")
    assert response.status_code == 404
    assert ShareLink.objects.get(id=adas_link).revoked_at is None


def test_anonymous_callers_get_401_not_data(adas, anon):
    graph_id, _ = adas
    for url in ("/api/graphs", f"/api/graphs/{graph_id}", f"/api/graphs/{graph_id}/versions",
                f"/api/graphs/{graph_id}/share",
                f"/api/graphs/{graph_id}/download?format=json"):
        assert anon.get(url).status_code == 401, url
