"""A visitor without an account uses the editor: inspection, the generated code and SQL on a
drawing answer without one, counted per client address (SHIPYARD_ANON_INSPECT_RATE);
saving, listing, sharing and running still need an account."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from builder import env
from builder.graphs.api import InspectView
from compute.engine import compile_graph, export_pytorch

HOME = {"REMOTE_ADDR": "198.51.100.7"}
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.20"}


def inspect(client: APIClient, document: dict[str, Any], **meta: str) -> Any:
    return client.post("/api/inspect", document, format="json", **meta)


def test_a_visitor_inspects_a_drawing(anon, mlp):
    response = inspect(anon, mlp, **HOME)
    assert response.status_code == 200
    report = response.json()
    assert report["valid"] is True and report["nodes"]


def test_the_inspection_is_open_and_throttled_as_a_class_attribute():
    # Other views open to visitors (the guided path's checks) reuse these.
    from rest_framework.permissions import AllowAny

    from builder.accounts.throttles import AnonymousThrottle
    assert InspectView.permission_classes == [AllowAny]
    assert InspectView.throttle_classes == [AnonymousThrottle]


def test_a_visitor_reads_the_code_the_pytorch_download_holds(anon, mlp, tmp_path):
    response = anon.post("/api/code", mlp, format="json", **HOME)
    assert response.status_code == 200
    path = tmp_path / "model.py"
    export_pytorch(compile_graph(mlp, seed=0), path, weights=False)
    assert response.json()["code"] == path.read_text(encoding="utf-8")


def test_the_code_of_a_graph_that_is_not_valid_is_400_with_its_problems(anon, mlp):
    bad = copy.deepcopy(mlp)
    bad["edges"] = []
    response = anon.post("/api/code", bad, format="json", **HOME)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "the graph is not valid; see problems" and body["problems"]


@pytest.mark.parametrize("body", ["[1, 2]", '"model"', "null",
                                  '{"format": 1, "nodes": "x", "edges": {}}',
                                  '{"format": "shipyard.graph/v1", "nodes": [{"id": "<script>"}]}'])
def test_hostile_code_requests_are_400_not_500(anon, body):
    response = anon.post("/api/code", body, content_type="application/json", **HOME)
    assert response.status_code == 400 and response.json()["error"]


def test_a_visitor_runs_sql_on_a_drawing(anon, mlp):
    response = anon.post("/api/sql", {"document": mlp, "sql": "SELECT id FROM nodes"},
                         format="json", **HOME)
    assert response.status_code == 200
    assert response.json()["statements"][0]["rows"]


def test_over_the_rate_a_visitor_gets_429_with_retry_after_and_others_do_not(anon, mlp,
                                                                               settings):
    settings.SHIPYARD_ANON_INSPECT_RATE = "3/minute"
    # Inspection, the code and SQL count together: they are the same engine's work.
    assert inspect(anon, mlp, **HOME).status_code == 200
    assert anon.post("/api/code", mlp, format="json", **HOME).status_code == 200
    assert anon.post("/api/sql", {"document": mlp, "sql": "SELECT 1"}, format="json",
                     **HOME).status_code == 200
    refused = inspect(anon, mlp, **HOME)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"].startswith("too many requests without an account from this address")
    assert 1 <= int(refused["Retry-After"]) <= 60 and body["retry_after"] == int(
        refused["Retry-After"])
    assert anon.post("/api/code", mlp, format="json", **HOME).status_code == 429
    # A header naming another address is the client's own word: still refused.
    assert inspect(anon, mlp, HTTP_X_FORWARDED_FOR="192.0.2.9", **HOME).status_code == 429
    # Another address has its own count.
    assert inspect(anon, mlp, **ELSEWHERE).status_code == 200


@pytest.mark.parametrize("first, second, counted_with_them, elsewhere", [
    # A home or a server holds a whole /64 and may send from any address in it.
    ("2001:db8:1:2::10", "2001:db8:1:2:ffff::9", "2001:db8:1:2::11", "2001:db8:1:3::10"),
    # An IPv4 address written as IPv6 is that address.
    ("192.0.2.50", "::ffff:192.0.2.50", "::ffff:c000:232", "192.0.2.51"),
], ids=["ipv6-by-its-64", "ipv4-written-as-ipv6"])
def test_addresses_of_one_client_count_together(anon, mlp, settings, first, second,
                                                counted_with_them, elsewhere):
    settings.SHIPYARD_ANON_INSPECT_RATE = "2/minute"
    assert inspect(anon, mlp, REMOTE_ADDR=first).status_code == 200
    assert inspect(anon, mlp, REMOTE_ADDR=second).status_code == 200
    assert inspect(anon, mlp, REMOTE_ADDR=counted_with_them).status_code == 429
    assert inspect(anon, mlp, REMOTE_ADDR=elsewhere).status_code == 200


def test_a_port_a_trusted_proxy_writes_after_the_address_is_left_out(anon, mlp, settings):
    # Some proxies write "address:port" in X-Forwarded-For: each connection has another port.
    settings.SHIPYARD_ANON_INSPECT_RATE = "2/minute"
    settings.SHIPYARD_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for forwarded in ("203.0.113.7:51234", "203.0.113.7:51235"):
        assert inspect(anon, mlp, HTTP_X_FORWARDED_FOR=forwarded, **proxy).status_code == 200
    assert inspect(anon, mlp, HTTP_X_FORWARDED_FOR="203.0.113.7",
                   **proxy).status_code == 429
    for forwarded in ("[2001:db8:5::1]:443", "[2001:db8:5::2]:444"):
        assert inspect(anon, mlp, HTTP_X_FORWARDED_FOR=forwarded, **proxy).status_code == 200
    assert inspect(anon, mlp, HTTP_X_FORWARDED_FOR="2001:db8:5::3",
                   **proxy).status_code == 429


def test_the_setting_sets_the_rate(anon, mlp, settings):
    settings.SHIPYARD_ANON_INSPECT_RATE = "5/hour"
    for _ in range(5):
        assert inspect(anon, mlp, **HOME).status_code == 200
    refused = inspect(anon, mlp, **HOME)
    assert refused.status_code == 429 and 3500 <= int(refused["Retry-After"]) <= 3600


def test_accounts_are_not_counted(api, anon, mlp, settings):
    settings.SHIPYARD_ANON_INSPECT_RATE = "2/minute"
    for _ in range(6):
        assert inspect(api, mlp, **HOME).status_code == 200
    # ... nor do they use up the visitors' count from the same address.
    assert inspect(anon, mlp, **HOME).status_code == 200
    assert inspect(anon, mlp, **HOME).status_code == 200
    assert inspect(anon, mlp, **HOME).status_code == 429
    assert inspect(api, mlp, **HOME).status_code == 200


def test_a_visitor_still_cannot_save_list_share_or_run(anon, make_graph, mlp):
    graph = make_graph()
    gid = graph["id"]
    refused = [
        anon.post("/api/graphs", {"document": mlp}, format="json"),
        anon.get("/api/graphs"),
        anon.post(f"/api/graphs/{gid}/versions", {"document": mlp}, format="json"),
        anon.post(f"/api/graphs/{gid}/share", {}, format="json"),
        anon.post(f"/api/graphs/{gid}/sql", {"sql": "SELECT 1"}, format="json"),
        anon.post("/api/jobs", {"graph": gid}, format="json"),
        anon.post("/api/jobs/check", {"graph": gid}, format="json"),
        anon.get("/api/blocks/mine"),
        anon.get("/api/uploads"),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)


@pytest.mark.parametrize("raw, value", [("120/minute", "120/minute"), (" 5 / Hour ", "5/hour"),
                                        ("1/second", "1/second"), ("", "120/minute")])
def test_the_rate_setting_reads_a_count_per_period(monkeypatch, raw, value):
    monkeypatch.setenv("SHIPYARD_ANON_INSPECT_RATE", raw)
    assert env.env_rate("SHIPYARD_ANON_INSPECT_RATE", "120/minute") == value


@pytest.mark.parametrize("raw", ["120", "0/minute", "-1/minute", "ten/minute", "5/week",
                                 "5/m", "²/minute"])
def test_a_bad_rate_stops_the_app_naming_the_setting(monkeypatch, raw):
    monkeypatch.setenv("SHIPYARD_ANON_INSPECT_RATE", raw)
    with pytest.raises(ImproperlyConfigured, match="SHIPYARD_ANON_INSPECT_RATE"):
        env.env_rate("SHIPYARD_ANON_INSPECT_RATE", "120/minute")


@pytest.mark.parametrize("url", ["/api/inspect", "/api/code"])
def test_a_visitors_huge_body_is_413_before_it_is_read(anon, settings, url):
    body = b'{"format": "shipyard.graph/v1", "name": "' + b"x" * (
        settings.SHIPYARD_MAX_REQUEST_BYTES + 1) + b'"}'
    response = anon.post(url, body, content_type="application/json", **HOME)
    assert response.status_code == 413 and response.json()["error"]
