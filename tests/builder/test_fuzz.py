"""Property-based fuzzing of the whole REST API from its own OpenAPI document.

Schemathesis generates requests for every operation, both ones that fit the schema and
ones that break it (wrong types, missing fields, odd strings), and sends them through the
real Django stack (WSGI, middleware, DRF, the engine). The promise under test: bad input
never yields a 5xx, and every error answer, even for a path that matches no route, is JSON
in the API's one error format.

Path ids point at a real graph, version and share link half of the time, so that saving,
restoring, sharing and downloading are fuzzed past the 404. Bounded for CI: 25 examples per
operation, derandomized so that a run is reproducible; SHIPYARD_FUZZ_EXAMPLES raises it.
ONNX exports (seconds each) are swapped for PyTorch ones.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from builder.accounts.services import issue_token
from builder.graphs import services
from compute.engine import load_starter

EXAMPLES = int(os.environ.get("SHIPYARD_FUZZ_EXAMPLES", "25"))

openapi = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
schema = schemathesis.openapi.from_dict(openapi)
app = get_wsgi_application()


@pytest.fixture
def target(django_user_model: Any) -> Iterator[dict[str, Any]]:
    """A user with a token, a graph of two versions and a live share link."""
    # The WSGI handler closes the connection after each request, which would end the
    # test's transaction; Django's own test client unhooks it the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    user = django_user_model.objects.create_user("fuzz", password="x-long-enough-pass-1")
    _, raw = issue_token(user=user)
    mlp = load_starter("mlp")
    graph = services.create_graph(owner=user, document=mlp)
    mlp["nodes"][1]["params"]["out_features"] = 32
    services.save_version(graph=graph, author=user, document=mlp, base_version=1)
    _, share = services.create_share_link(graph=graph, created_by=user)
    # A download waits for its export rather than answer 503, which no input would cause.
    with override_settings(EXPORT_WAIT_SECONDS=120):
        yield {"headers": {"Authorization": f"Bearer {raw}"}, "graph_id": graph.id,
               "share": share}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _aim(case: Any, target: dict[str, Any]) -> None:
    """Point generated path ids at real objects about half of the time."""
    params = case.path_parameters or {}
    seed = zlib.crc32(json.dumps([params, case.query, case.body], sort_keys=True,
                                 default=str).encode())  # hash() differs between runs
    if seed % 2:
        if "graph_id" in params:
            params["graph_id"] = target["graph_id"]
        if "number" in params:
            params["number"] = 1 + seed % 3
        if "token" in params:
            params["token"] = target["share"]
    if isinstance(case.query, dict) and case.query.get("format") == "onnx":
        case.query["format"] = "pytorch"


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail(case: Any, target: dict[str, Any]) -> None:
    _aim(case, target)
    response = case.call(app=app, headers=target["headers"])
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n"
        f"{response.text[:2000]}\n{case.as_curl_command()}")
    if response.status_code >= 400:
        _assert_error_format(case, response)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=max(5, EXAMPLES // 5), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_without_credentials(case: Any,
                                                           target: dict[str, Any]) -> None:
    _aim(case, target)
    response = case.call(app=app)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    if response.status_code >= 400:
        _assert_error_format(case, response)


def _assert_error_format(case: Any, response: Any) -> None:
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"{response.status_code} is not JSON: {response.text[:300]}\n"
                    f"{case.as_curl_command()}")
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
