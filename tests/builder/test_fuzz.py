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

Random generation seldom writes the inputs that broke the API before, so every operation
of the schema also gets them explicitly: JSON nested deeper than Python's recursion limit,
numbers JSON cannot spell (1e999, NaN), lone surrogates in every body, and ids that are no
ASCII number or do not fit a column in every integer query parameter. Each is a 400 in the
error format and stores nothing.
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
from django.test import Client, override_settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from builder.accounts.models import ApiToken
from builder.accounts.services import issue_token
from builder.graphs import services
from builder.graphs.models import Graph, GraphVersion, ShareLink
from compute.engine import load_starter
from compute.jobs.models import Job

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
    job = Job.objects.create(owner=user, graph=graph, version=graph.versions.get(number=2),
                             dataset="digits", time_limit=60, total_steps=10,
                             status=Job.Status.SUCCEEDED, published=True)
    # A download waits for its export rather than answer 503, which no input would cause.
    with override_settings(EXPORT_WAIT_SECONDS=120):
        yield {"headers": {"Authorization": f"Bearer {raw}"}, "graph_id": graph.id,
               "share": share, "job_id": job.id}
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


# The inputs that broke the API before, on every operation that could meet them.

HOSTILE_BODIES = {
    "nested 1,000 deep": "[" * 1000 + "]" * 1000,
    "nested 100,000 deep": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "1e999": '{"name": "x", "document": {"meta": {"x": 1e999}}, "graph": 1e999, "x": 1e999}',
    "-1e999 in a list": '{"config": {"lr": -1e999}, "x": [0, -1e999]}',
    "NaN": '{"x": NaN, "base_version": NaN}',
    "Infinity": '{"name": Infinity, "published": Infinity}',
    "lone high surrogate": '{"name": "\\ud800", "document": {"name": "\\ud800"}}',
    "lone low surrogate in a key": '{"\\udfff": 1, "username": "a\\udc00", "password": "p"}',
}
HOSTILE_IDS = ["²", "٣٣٣٣٣٣٣٣٣٣٣٣", "99999999999999999999", "2147483648", "-1", "1e3", "0x1",
               "1.5", "9" * 5000]
# An operation's path parameters, pointed at the target's objects.
PATH_VALUES = {"graph_id": "graph_id", "token": "share", "job_id": "job_id"}


def _operations(want: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, url, operation) for url, item in openapi["paths"].items()
            for method, operation in item.items() if want(operation)]


def _url(template: str, target: dict[str, Any]) -> str:
    for name, key in PATH_VALUES.items():
        template = template.replace(f"{{{name}}}", str(target[key]))
    return (template.replace("{number}", "1").replace("{link_id}", "1")
            .replace("{name}", "gpt").replace("{step_id}", "tokens"))  # a guided path


def _stored() -> list[int]:
    return [m.objects.count() for m in (ApiToken, Graph, GraphVersion, ShareLink, Job)]


JSON_OPERATIONS = _operations(
    lambda op: "application/json" in op.get("requestBody", {}).get("content", {}))
ID_QUERIES = [(method, url, p["name"]) for method, url, op in _operations(lambda op: True)
              for p in op.get("parameters", [])
              if p["in"] == "query" and p["schema"].get("type") == "integer"]


def test_the_explicit_cases_cover_the_api():
    # If a schema change hid the operations, the tests below would pass on nothing.
    assert len(JSON_OPERATIONS) >= 8
    assert {name for _, _, name in ID_QUERIES} >= {"graph", "since", "version"}


@pytest.mark.parametrize("method, url, operation", JSON_OPERATIONS,
                         ids=[f"{m.upper()} {u}" for m, u, _ in JSON_OPERATIONS])
def test_hostile_json_is_a_400_on_every_json_operation(method, url, operation, target):
    for name, text in HOSTILE_BODIES.items():
        before = _stored()
        response = getattr(Client(), method)(_url(url, target), text,
                                             content_type="application/json",
                                             headers=target["headers"])
        assert response.status_code == 400, (name, response.status_code,
                                             response.content[:300])
        body = response.json()
        assert body["error"].startswith("JSON parse error - "), (name, body)
        assert _stored() == before, name


@pytest.mark.parametrize("method, url, name", ID_QUERIES,
                         ids=[f"{m.upper()} {u}?{n}" for m, u, n in ID_QUERIES])
def test_an_id_that_is_no_number_or_too_big_is_a_400_in_every_query(method, url, name,
                                                                     target):
    for value in HOSTILE_IDS:
        response = getattr(Client(), method)(_url(url, target), {name: value},
                                             headers=target["headers"])
        assert response.status_code == 400, (value, response.status_code,
                                             response.content[:300])
        assert isinstance(response.json()["error"], str), value
