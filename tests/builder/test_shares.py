"""Share links: a secret link shows one graph read-only to anyone, can pin a version, can
be revoked, and lets a logged-in user fork the graph into their own."""

from __future__ import annotations

import hashlib

from django.db import connection

from builder.graphs.models import Graph, ShareLink


def share(api, graph_id, **body):
    response = api.post(f"/api/graphs/{graph_id}/share", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_share_link_has_a_long_random_token_stored_only_as_a_hash(api, make_graph):
    graph = make_graph()
    link = share(api, graph["id"])
    token = link["token"]
    assert len(token) >= 43  # 32 random bytes, URL-safe base64: 256 bits
    assert link["url"].endswith(f"/s/{token}")
    row = ShareLink.objects.get(id=link["id"])
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM graphs_sharelink")
        assert token not in repr(cursor.fetchall())
    assert link["token"] != share(api, graph["id"])["token"]


def test_anyone_with_the_link_sees_the_graph_read_only(api, anon, make_graph, mlp):
    graph = make_graph(name="Digits")
    token = share(api, graph["id"])["token"]
    response = anon.get(f"/api/shared/{token}")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Digits"
    assert body["owner"] == "ada"
    assert body["pinned"] is False
    assert body["version"]["number"] == 1
    assert body["version"]["document"] == mlp
    # Read-only: there is nothing to write through the link.
    assert anon.put(f"/api/shared/{token}", {}, format="json").status_code == 405
    assert anon.delete(f"/api/shared/{token}").status_code == 405


def test_a_link_follows_the_latest_version_unless_pinned(api, anon, make_graph, mlp, changed):
    graph = make_graph()
    latest = share(api, graph["id"])
    pinned = share(api, graph["id"], version=1)
    assert pinned["version"] == 1
    api.post(f"/api/graphs/{graph['id']}/versions",
             {"document": changed(mlp), "base_version": 1}, format="json")
    following = anon.get(f"/api/shared/{latest['token']}").json()
    assert following["version"]["number"] == 2
    assert following["version"]["document"] == changed(mlp)
    fixed = anon.get(f"/api/shared/{pinned['token']}").json()
    assert fixed["pinned"] is True
    assert fixed["version"]["number"] == 1
    assert fixed["version"]["document"] == mlp


def test_pinning_a_version_that_does_not_exist_is_404(api, make_graph):
    graph = make_graph()
    response = api.post(f"/api/graphs/{graph['id']}/share", {"version": 5}, format="json")
    assert response.status_code == 404


def test_the_owner_lists_links_without_their_tokens(api, make_graph):
    graph = make_graph()
    first = share(api, graph["id"])
    second = share(api, graph["id"], version=1)
    listed = api.get(f"/api/graphs/{graph['id']}/share").json()
    assert {link["id"] for link in listed} == {first["id"], second["id"]}
    assert all("token" not in link for link in listed)
    assert {link["version"] for link in listed} == {None, 1}


def test_a_revoked_link_is_404_everywhere(api, anon, make_graph):
    graph = make_graph()
    link = share(api, graph["id"])
    assert api.delete(f"/api/graphs/{graph['id']}/share/{link['id']}").status_code == 204
    token = link["token"]
    assert anon.get(f"/api/shared/{token}").status_code == 404
    assert anon.get(f"/s/{token}").status_code == 404
    assert anon.get(f"/api/shared/{token}/download?format=json").status_code == 404
    assert api.post(f"/api/shared/{token}/fork").status_code == 404
    listed = api.get(f"/api/graphs/{graph['id']}/share").json()
    assert listed[0]["revoked_at"] is not None
    # Revoking twice is a 404: there is no live link left.
    assert api.delete(f"/api/graphs/{graph['id']}/share/{link['id']}").status_code == 404


def test_an_unknown_token_is_404(anon, db):
    assert anon.get("/api/shared/not-a-token").status_code == 404
    assert anon.get("/s/not-a-token").status_code == 404
    assert "error" in anon.get("/api/shared/not-a-token").json()


def test_a_logged_in_user_forks_a_shared_graph_and_the_fork_records_its_origin(
        api, other_api, other_user, make_graph, mlp):
    graph = make_graph(name="Digits")
    token = share(api, graph["id"])["token"]
    response = other_api.post(f"/api/shared/{token}/fork")
    assert response.status_code == 201
    fork = response.json()
    assert fork["id"] != graph["id"]
    assert fork["forked_from"] == {"graph_name": "Digits", "version": 1}
    assert fork["version"]["document"] == mlp
    row = Graph.objects.get(id=fork["id"])
    assert row.owner == other_user
    assert row.forked_from.graph_id == graph["id"]
    assert [g["id"] for g in other_api.get("/api/graphs").json()] == [fork["id"]]
    # The original is untouched and still ada's alone.
    assert api.get(f"/api/graphs/{graph['id']}").json()["head"] == 1


def test_a_fork_keeps_the_origin_name_it_was_forked_from(api, other_api, make_graph):
    """Later renames of the original (which may be private again) do not reach the fork."""
    graph = make_graph(name="Digits")
    link = share(api, graph["id"])
    fork = other_api.post(f"/api/shared/{link['token']}/fork").json()
    api.patch(f"/api/graphs/{graph['id']}", {"name": "Secret project"}, format="json")
    api.delete(f"/api/graphs/{graph['id']}/share/{link['id']}")
    again = other_api.get(f"/api/graphs/{fork['id']}").json()
    assert again["forked_from"] == {"graph_name": "Digits", "version": 1}


def test_forking_a_pinned_link_takes_the_pinned_version(api, other_api, make_graph, mlp,
                                                        changed):
    graph = make_graph()
    token = share(api, graph["id"], version=1)["token"]
    api.post(f"/api/graphs/{graph['id']}/versions",
             {"document": changed(mlp), "base_version": 1}, format="json")
    fork = other_api.post(f"/api/shared/{token}/fork").json()
    assert fork["forked_from"]["version"] == 1
    assert fork["version"]["document"] == mlp


def test_forking_needs_a_login(api, anon, make_graph):
    graph = make_graph()
    token = share(api, graph["id"])["token"]
    assert anon.post(f"/api/shared/{token}/fork").status_code == 401


def test_the_share_page_shows_the_graph_to_anonymous_visitors(api, make_graph):
    from django.test import Client

    graph = make_graph(name="Digits")
    token = share(api, graph["id"])["token"]
    page = Client().get(f"/s/{token}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Digits" in html
    assert "ada" in html
    assert "hidden1" in html  # the node table
    assert f"/api/shared/{token}/download?format=json" in html
    assert f"/api/shared/{token}/download?format=onnx" in html
    assert "Log in to fork" in html
    assert f'"shareToken": "{token}"' in html  # the editor opens it read-only
    assert f'"loginUrl": "/accounts/login/?next=/s/{token}"' in html  # "Log in to fork"
    assert '"report": {' in html and '"valid": true' in html  # shapes, without asking again


def test_the_share_page_table_gives_each_port_of_a_split_its_shape(api, make_graph):
    from django.test import Client

    document = {"format": "shipyard.graph/v1", "name": "halves", "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [6]}},
        {"id": "halves", "type": "Split", "params": {"sizes": [2, 4]}},
        {"id": "y", "type": "Output"}, {"id": "z", "type": "Output"}], "edges": [
        {"from": "x", "to": "halves"}, {"from": "halves.a", "to": "y"},
        {"from": "halves.b", "to": "z"}]}
    token = share(api, make_graph(document)["id"])["token"]
    html = Client().get(f"/s/{token}").content.decode()
    assert "<td>[B, 2] [B, 4]</td>" in html


def test_a_logged_in_visitor_can_fork_from_the_share_page(api, make_graph, other_user,
                                                          password):
    from django.test import Client

    graph = make_graph(name="Digits")
    token = share(api, graph["id"])["token"]
    client = Client()
    client.login(username="bob", password=password)
    assert "Fork into my models" in client.get(f"/s/{token}").content.decode()
    response = client.post(f"/s/{token}/fork")
    assert response.status_code == 302
    fork = Graph.objects.get(owner=other_user)
    assert fork.forked_from.graph_id == graph["id"]
    assert response["Location"] == f"/g/{fork.id}"  # straight into the editor


def test_forking_from_the_page_while_logged_out_asks_for_a_login(api, make_graph):
    from django.test import Client

    token = share(api, make_graph()["id"])["token"]
    response = Client().post(f"/s/{token}/fork")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert Graph.objects.count() == 1


def test_a_shared_graph_can_be_downloaded_through_its_link(api, anon, make_graph):
    graph = make_graph()
    token = share(api, graph["id"])["token"]
    response = anon.get(f"/api/shared/{token}/download?format=json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")


def test_deleting_a_graph_kills_its_links(api, anon, make_graph):
    graph = make_graph()
    token = share(api, graph["id"])["token"]
    api.delete(f"/api/graphs/{graph['id']}")
    assert anon.get(f"/api/shared/{token}").status_code == 404


def test_a_fork_outlives_the_original(api, other_api, make_graph, mlp):
    graph = make_graph()
    token = share(api, graph["id"])["token"]
    fork = other_api.post(f"/api/shared/{token}/fork").json()
    api.delete(f"/api/graphs/{graph['id']}")
    kept = other_api.get(f"/api/graphs/{fork['id']}").json()
    assert kept["forked_from"] is None
    assert kept["version"]["document"] == mlp


def test_a_share_token_is_no_key_to_anything_else(api, anon, make_graph):
    graph = make_graph()
    other = make_graph(name="not shared")
    token = share(api, graph["id"])["token"]
    as_bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert anon.get("/api/graphs", **as_bearer).status_code == 401
    assert anon.get(f"/api/graphs/{graph['id']}", **as_bearer).status_code == 401
    assert anon.get(f"/api/graphs/{other['id']}", **as_bearer).status_code == 401
    assert anon.post(f"/api/shared/{token}/fork", **as_bearer).status_code == 401
