"""Checking a graph without saving it, the block catalog, and the starters."""

from __future__ import annotations

import copy
import json
import re

import pytest
from django.core.management import call_command

from compute.engine import block_catalog, catalog, load_starter, starter_names
from compute.engine.graph import ID_PATTERN, RESERVED_IDS


def test_inspect_reports_shapes_params_and_flops_of_a_valid_graph(api, mlp):
    response = api.post("/api/inspect", mlp, format="json")
    assert response.status_code == 200
    report = response.json()
    assert report["valid"] is True
    assert report["problems"] == []
    hidden = report["nodes"]["hidden1"]
    assert hidden["outputs"]["out"]["shape"] == ["B", 128]
    assert hidden["params"] == 64 * 128 + 128
    assert report["totals"]["params"] > 0
    assert report["totals"]["flops"] > 0


def test_inspect_gives_an_invalid_graphs_problems_by_node(api, mlp):
    bad = copy.deepcopy(mlp)
    bad["nodes"][1]["params"] = {"out_features": "wide"}
    response = api.post("/api/inspect", bad, format="json")
    assert response.status_code == 200  # the report itself is the answer
    report = response.json()
    assert report["valid"] is False
    assert report["nodes"]["hidden1"]["status"] == "error"
    assert {"node": "hidden1", "field": "out_features"}.items() <= report["problems"][0].items()


def test_inspect_names_a_nested_node_by_its_path(api):
    gpt = load_starter("char_gpt")
    repeat = next(n for n in gpt["nodes"] if n["type"] == "Repeat")
    inner = next(n for n in repeat["graph"]["nodes"] if n["type"] == "MultiHeadAttention")
    inner["params"]["num_heads"] = 7  # does not divide the width
    report = api.post("/api/inspect", gpt, format="json").json()
    assert report["valid"] is False
    assert any(p["node"] == f"{repeat['id']}/{inner['id']}" for p in report["problems"])


def test_inspect_does_not_save_anything(api, mlp):
    api.post("/api/inspect", mlp, format="json")
    assert api.get("/api/graphs").json() == []


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "3", "null", "{"])
def test_inspect_wants_a_json_object(api, body):
    response = api.post("/api/inspect", body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_inspect_of_garbage_members_is_a_report_not_a_crash(api):
    response = api.post("/api/inspect", {"format": 1, "nodes": "x", "edges": {}}, format="json")
    assert response.status_code == 200
    report = response.json()
    assert report["valid"] is False
    assert [p["field"] for p in report["problems"][:3]] == ["format", "nodes", "edges"]


def test_inspect_needs_no_account(anon, mlp):
    # The editor works before signing up (tests/builder/test_visitors.py counts it).
    response = anon.post("/api/inspect", mlp, format="json")
    assert response.status_code == 200 and response.json()["valid"] is True


def test_inspect_of_a_huge_body_is_413(api, settings):
    body = b'{"format": "shipyard.graph/v1", "name": "' + b"x" * (
        settings.SHIPYARD_MAX_REQUEST_BYTES + 1) + b'"}'
    response = api.post("/api/inspect", body, content_type="application/json")
    assert response.status_code == 413


def test_blocks_returns_the_engines_catalog(anon, db):
    response = anon.get("/api/blocks")
    assert response.status_code == 200
    blocks = response.json()["blocks"]
    assert blocks == catalog()
    types = {b["type"] for b in blocks}
    assert {"Input", "Output", "Linear", "MultiHeadAttention", "Repeat"} <= types
    linear = next(b for b in blocks if b["type"] == "Linear")
    assert "out_features" in linear["params_schema"]["properties"]


def test_blocks_serves_the_engines_rules_for_ids(anon, db):
    served = anon.get("/api/blocks").json()
    assert served == block_catalog()
    assert served["id_pattern"] == ID_PATTERN.pattern
    assert set(served["reserved_ids"]) == RESERVED_IDS
    assert {"class", "self", "training", "state_dict", "add_module"} <= set(served["reserved_ids"])
    pattern = re.compile(served["id_pattern"])
    assert pattern.fullmatch("head") and not pattern.fullmatch("2fast")
    assert not pattern.fullmatch("x" * 65)


def test_blocks_serves_each_blocks_id_stem_and_defaults(anon, db):
    by_type = {b["type"]: b for b in anon.get("/api/blocks").json()["blocks"]}
    assert by_type["MultiHeadAttention"]["id_stem"] == "attn"
    assert by_type["Linear"]["id_stem"] == "linear"
    assert by_type["Repeat"]["defaults"] == {"times": 2}
    assert by_type["Linear"]["defaults"] == {"out_features": 64, "bias": True, "tie_to": None,
                                             "init": "graph", "init_std": 0.02}
    assert by_type["ReLU"]["defaults"] == {}


def test_the_editors_test_catalog_is_what_blocks_serves(anon, db, tmp_path):
    fixture = tmp_path / "catalog.json"
    call_command("catalog_fixture", file=fixture)
    assert json.loads(fixture.read_text(encoding="utf-8")) == anon.get("/api/blocks").json()


def test_starters_lists_every_starter_with_its_document(anon, db):
    response = anon.get("/api/starters")
    assert response.status_code == 200
    starters = response.json()
    assert [s["name"] for s in starters] == starter_names()
    for s in starters:
        assert s["title"]
        assert s["document"] == load_starter(s["name"])
