"""The OpenAPI document: valid, complete, and carrying the graph format as a component, so
that the editor's TypeScript types can be generated from it."""

from __future__ import annotations

import copy

import jsonschema
import pytest
from drf_spectacular.validation import validate_schema

from compute.engine import REGISTRY, load_starter, starter_names


def test_the_schema_is_a_valid_openapi_document(openapi):
    assert openapi["openapi"].startswith("3.")
    validate_schema(openapi)  # raises on an invalid document


def test_the_schema_is_public(anon, db):
    assert anon.get("/api/schema").status_code == 200


def test_every_operation_is_in_the_schema(openapi):
    operations = {(method.upper(), path) for path, item in openapi["paths"].items()
                  for method in item}
    assert {
        ("POST", "/api/auth/token"),
        ("GET", "/api/graphs"), ("POST", "/api/graphs"),
        ("GET", "/api/graphs/{graph_id}"), ("PATCH", "/api/graphs/{graph_id}"),
        ("DELETE", "/api/graphs/{graph_id}"),
        ("GET", "/api/graphs/{graph_id}/versions"), ("POST", "/api/graphs/{graph_id}/versions"),
        ("GET", "/api/graphs/{graph_id}/versions/{number}"),
        ("POST", "/api/graphs/{graph_id}/versions/{number}/restore"),
        ("GET", "/api/graphs/{graph_id}/download"),
        ("GET", "/api/graphs/{graph_id}/share"), ("POST", "/api/graphs/{graph_id}/share"),
        ("DELETE", "/api/graphs/{graph_id}/share/{link_id}"),
        ("GET", "/api/shared/{token}"), ("POST", "/api/shared/{token}/fork"),
        ("POST", "/api/inspect"), ("GET", "/api/blocks"), ("GET", "/api/starters"),
    } <= operations


def test_bearer_tokens_are_a_security_scheme(openapi):
    schemes = openapi["components"]["securitySchemes"]
    assert any(s == {"type": "http", "scheme": "bearer"} for s in schemes.values())


def _validator(openapi):
    root = {"$ref": "#/components/schemas/GraphDocument", "components": openapi["components"]}
    return jsonschema.Draft7Validator(root)


def test_the_graph_format_is_a_component_schema(openapi):
    schemas = openapi["components"]["schemas"]
    document = schemas["GraphDocument"]
    assert set(document["required"]) == {"format", "nodes", "edges"}
    assert {"format", "name", "description", "nodes", "edges", "layout", "meta"} == set(
        document["properties"])
    node_types = schemas["GraphNode"]["properties"]["type"]["enum"]
    assert set(node_types) == set(REGISTRY)


def test_requests_and_responses_refer_to_the_graph_format(openapi):
    text = str(openapi["paths"])
    assert "#/components/schemas/GraphDocument" in text  # POST /api/inspect's body
    for component in ("VersionDetailOut", "Starter"):
        assert "GraphDocument" in str(openapi["components"]["schemas"][component])


@pytest.mark.parametrize("name", starter_names())
def test_every_starter_fits_the_graph_document_schema(openapi, name):
    _validator(openapi).validate(load_starter(name))


def test_the_graph_document_schema_refuses_what_the_format_forbids(openapi):
    validator = _validator(openapi)
    good = load_starter("mlp")
    for bad in (
        {**good, "extra": 1},
        {**good, "format": "shipyard.graph/v2"},
        {k: v for k, v in good.items() if k != "edges"},
    ):
        assert not validator.is_valid(bad)
    bad_node = copy.deepcopy(good)
    bad_node["nodes"][0]["id"] = "1x"
    assert not validator.is_valid(bad_node)


def test_the_api_docs_page_uses_only_local_assets(anon, db, settings):
    if "drf_spectacular_sidecar" not in settings.INSTALLED_APPS:
        pytest.skip("drf-spectacular-sidecar is not installed")
    page = anon.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert anon.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
                    ).status_code == 200
