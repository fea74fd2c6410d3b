"""GET /api/shared/{token}/inspect: the read-only shared editor shows the engine's report of
the version a link shows, to anyone who has the link (POST /api/inspect needs a login)."""

from __future__ import annotations

from compute.engine import inspect_graph, load_starter


def share(api, graph_id, **body):
    response = api.post(f"/api/graphs/{graph_id}/share", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_anyone_with_the_link_gets_the_report_of_the_shared_version(api, anon, make_graph,
                                                                    mlp):
    graph = make_graph()
    token = share(api, graph["id"])["token"]
    response = anon.get(f"/api/shared/{token}/inspect")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report == api.post("/api/inspect", mlp, format="json").json()
    assert report["valid"] is True and report["name"] == mlp["name"]
    assert report["nodes"]["hidden1"]["outputs"]["out"]["shape"][0] == "B"


def test_a_repeat_reports_its_nested_graph(api, anon, make_graph):
    gpt = load_starter("char_gpt")
    token = share(api, make_graph(gpt)["id"])["token"]
    report = anon.get(f"/api/shared/{token}/inspect").json()
    assert report == inspect_graph(gpt)
    repeat = next(n for n in report["nodes"].values() if n["type"] == "Repeat")
    assert repeat["times"] >= 1 and set(repeat["body"]) == {"nodes", "totals"}


def test_a_pinned_link_reports_its_version_and_a_following_one_the_latest(
        api, anon, make_graph, mlp, changed):
    graph = make_graph()
    pinned = share(api, graph["id"], version=1)["token"]
    latest = share(api, graph["id"])["token"]
    saved = api.post(f"/api/graphs/{graph['id']}/versions",
                     {"document": changed(mlp, width=96), "base_version": 1}, format="json")
    assert saved.status_code == 201

    def width(token):
        report = anon.get(f"/api/shared/{token}/inspect").json()
        first = next(n for n in report["nodes"].values() if n["type"] == "Linear")
        return first["outputs"]["out"]["shape"][-1]

    original = next(n for n in mlp["nodes"] if n["type"] == "Linear")["params"]
    assert width(pinned) == original["out_features"] != 96
    assert width(latest) == 96


def test_a_revoked_or_unknown_link_is_404(api, anon, make_graph):
    graph = make_graph()
    link = share(api, graph["id"])
    assert anon.get(f"/api/shared/{link['token']}/inspect").status_code == 200
    assert api.delete(f"/api/graphs/{graph['id']}/share/{link['id']}").status_code == 204
    for token in (link["token"], "not-a-token"):
        response = anon.get(f"/api/shared/{token}/inspect")
        assert response.status_code == 404
        assert response.json() == {"error": "this link is unknown or was revoked"}


def test_it_only_reads(api, anon, make_graph):
    token = share(api, make_graph()["id"])["token"]
    assert anon.post(f"/api/shared/{token}/inspect", {}, format="json").status_code == 405
