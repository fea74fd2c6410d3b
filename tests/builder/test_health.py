"""/healthz and /readyz, the probes of a load balancer or of Docker's health check."""

from __future__ import annotations

import socket

import pytest
from django.test import Client, override_settings


@pytest.fixture
def client() -> Client:
    return Client()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is


def test_healthz_answers_without_touching_anything(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@override_settings(ALLOWED_HOSTS=["shipyard.example"], SECURE_SSL_REDIRECT=True)
def test_probes_answer_a_host_outside_allowed_hosts_over_plain_http(client: Client,
                                                                     db: None) -> None:
    # Docker probes localhost:8000 over HTTP; the app behind it serves shipyard.example.
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    # Everything else still checks the host and redirects to HTTPS.
    assert client.get("/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/", HTTP_HOST="shipyard.example").status_code == 301


def test_readyz_is_ready_when_the_database_and_redis_answer(client: Client, db: None) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "redis": "ok", "status": "ok"}


def test_readyz_says_redis_is_unreachable_when_it_is(client: Client, db: None) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "unreachable",
                               "status": "not ready: redis unreachable"}


def test_readyz_says_the_database_is_unreachable_when_it_is(client: Client, db: None,
                                                            monkeypatch) -> None:
    # A database that cannot be opened: a file in a folder that does not exist. The
    # connection is Django's own, pointed elsewhere for this test only.
    from django.db import connections

    conn = connections["default"]
    conn.close()
    monkeypatch.setitem(conn.settings_dict, "NAME", "/nonexistent/folder/db.sqlite3")
    response = client.get("/readyz")
    conn.close()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert response.json()["redis"] == "ok"


def test_only_get_and_head_are_probes(client: Client, db: None) -> None:
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code != 200
