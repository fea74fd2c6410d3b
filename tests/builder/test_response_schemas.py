"""The OpenAPI document describes the bodies the editor reads (its TypeScript types are
generated from it): the responses refer to named components, and real responses fit them
strictly (see openapi_check)."""

from __future__ import annotations

import copy

import pytest
from openapi_check import assert_conforms, response_schema

from builder.rest import ref
from compute.engine import load_starter
from compute.engine.graph import ID_PATTERN


def test_the_responses_the_editor_reads_refer_to_named_components(openapi):
    def schema(path, method="get", status=200):
        return response_schema(openapi, path, method, status)

    assert schema("/api/inspect", "post") == ref("InspectReport")
    assert schema("/api/shared/{token}/inspect") == ref("InspectReport")
    assert schema("/api/blocks") == ref("BlockCatalog")
    assert schema("/api/starters")["items"] == ref("Starter")
    assert schema("/api/jobs/{job_id}") == ref("Job")
    assert schema("/api/jobs/{job_id}", "patch") == ref("Job")
    assert schema("/api/jobs", "post", 201) == ref("Job")
    assert schema("/api/jobs")["items"] == ref("Job")
    assert schema("/api/jobs/{job_id}/cancel", "post") == ref("Job")
    assert schema("/api/shared/{token}/jobs")["items"] == ref("Job")
    assert schema("/api/jobs/{job_id}/metrics") == ref("EventPage")
    assert schema("/api/jobs/{job_id}/attention") == ref("EventPage")
    assert schema("/api/datasets")["items"] == ref("Dataset")
    assert schema("/api/run-kinds")["items"] == ref("RunKind")
    assert schema("/api/uploads")["items"] == ref("Upload")
    assert schema("/api/uploads", "post", 201) == ref("Upload")

    schemas = openapi["components"]["schemas"]
    report = schemas["InspectReport"]
    assert set(report["required"]) == {"format", "name", "valid", "nodes", "totals",
                                       "problems", "warnings"}
    assert report["properties"]["nodes"]["additionalProperties"] == ref("NodeReport")
    assert report["properties"]["name"]["nullable"] is True
    node = schemas["NodeReport"]
    assert set(node["properties"]) - set(node["required"]) == {"times", "body", "tied_to"}
    assert node["properties"]["body"] == ref("NestedReport")
    assert node["properties"]["status"]["enum"] == ["ok", "error", "skipped"]
    assert node["properties"]["flops"]["nullable"] is True
    assert schemas["EventPage"]["properties"]["events"]["items"] == ref("JobEvent")
    event = schemas["JobEvent"]
    kinds = {"status": "StatusEvent", "metric": "MetricEvent", "attention": "AttentionEvent",
             "sample": "SampleEvent", "progress": "ProgressEvent", "benchmark": "BenchmarkEvent",
             "node_costs": "NodeCostsEvent", "stage": "StageEvent",
             "comparison": "ComparisonEvent", "sweep": "SweepEvent", "tool": "ToolEvent"}
    assert event["oneOf"] == [ref(name) for name in kinds.values()]
    assert event["discriminator"] == {"propertyName": "type", "mapping": {
        type_: ref(name)["$ref"] for type_, name in kinds.items()}}
    for type_, name in kinds.items():
        assert schemas[name]["properties"]["type"] == {"type": "string", "enum": [type_]}
        assert {"type", "seq", "step", "time"} <= set(schemas[name]["required"])
    metric = schemas["MetricEvent"]
    assert set(metric["properties"]) - set(metric["required"]) == {"nonfinite"}
    assert metric["properties"]["value"]["nullable"] is True
    assert set(schemas["StatusEvent"]["required"]) == set(schemas["StatusEvent"]["properties"])
    assert schemas["Starter"]["properties"]["document"] == ref("GraphDocument")
    assert schemas["BlockCatalog"]["properties"]["blocks"]["items"] == ref("Block")
    for name in ("TensorSpec", "Problem", "InspectTotals", "Block", "BlockCatalog", "Job",
                 "Dataset", "Upload"):
        assert schemas[name]["required"], name


def _repeat_with_a_bad_nested_node():
    gpt = load_starter("char_gpt")
    repeat = next(n for n in gpt["nodes"] if n["type"] == "Repeat")
    attn = next(n for n in repeat["graph"]["nodes"] if n["type"] == "MultiHeadAttention")
    attn["params"]["num_heads"] = 7  # does not divide the width: an error inside the body
    return gpt


def _unknown_block(mlp):
    bad = copy.deepcopy(mlp)
    bad["nodes"][2]["type"] = "Relu"
    bad["nodes"][1]["params"]["out_features"] = 0
    return bad


@pytest.mark.parametrize("document", [
    pytest.param(lambda mlp: mlp, id="valid"),
    pytest.param(lambda mlp: load_starter("char_gpt"), id="repeat"),
    pytest.param(lambda mlp: _repeat_with_a_bad_nested_node(), id="bad-nested-node"),
    pytest.param(_unknown_block, id="error-and-skipped"),
    pytest.param(lambda mlp: {"format": "nope", "nodes": 3}, id="garbage"),
    pytest.param(lambda mlp: {**mlp, "edges": mlp["edges"][:-1]}, id="unused-node"),
])
def test_inspect_reports_fit_the_schema(api, openapi, mlp, document):
    response = api.post("/api/inspect", document(copy.deepcopy(mlp)), format="json")
    assert response.status_code == 200
    assert_conforms(openapi, "/api/inspect", "post", response)


def test_a_shared_report_fits_the_schema(api, anon, openapi, make_graph):
    graph = make_graph(load_starter("char_gpt"))
    token = api.post(f"/api/graphs/{graph['id']}/share", {}, format="json").json()["token"]
    response = anon.get(f"/api/shared/{token}/inspect")
    assert_conforms(openapi, "/api/shared/{token}/inspect", "get", response)


def test_the_graph_format_takes_its_id_pattern_from_the_engine(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["GraphNode"]["properties"]["id"]["pattern"] == ID_PATTERN.pattern
    endpoint = schemas["GraphEdge"]["properties"]["from"]["pattern"]
    assert endpoint == r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]*)?$"


def test_blocks_and_starters_fit_the_schema(anon, openapi):
    assert_conforms(openapi, "/api/blocks", "get", anon.get("/api/blocks"))
    assert_conforms(openapi, "/api/starters", "get", anon.get("/api/starters"))
