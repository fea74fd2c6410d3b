"""POST /api/graphs/import: an ONNX file becomes a graph whose first version carries the
file's weights; a file that cannot be imported is a 400 listing why, never a 500, and leaves
nothing behind."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import TensorProto, helper
from openapi_check import assert_conforms
from rest_framework.test import APIClient
from safetensors.torch import load

from builder.graphs.models import Graph, InitialWeights
from compute.engine import compile_graph, export_onnx, load_starter

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def mlp_onnx(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    model = compile_graph(load_starter("mlp"), seed=7)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "mlp.onnx")
    return path.read_bytes()


def upload(api: APIClient, data: bytes, filename: str = "model.onnx", **fields: Any) -> Any:
    return api.post("/api/graphs/import",
                    {"file": SimpleUploadedFile(filename, data), **fields}, format="multipart")


def test_an_exported_model_imports_as_a_graph_with_its_weights(
        api: APIClient, mlp_onnx: bytes, openapi: dict[str, Any]) -> None:
    response = upload(api, mlp_onnx, name="Digits")
    assert response.status_code == 201, response.content
    assert_conforms(openapi, "/api/graphs/import", "post", response)
    body = response.json()
    assert body["name"] == "Digits"
    assert body["version"]["number"] == 1 and body["version"]["initial_weights"] is True
    types = [n["type"] for n in body["version"]["document"]["nodes"]]
    assert types == ["Input", "Linear", "ReLU", "Linear", "ReLU", "Linear", "Output"]

    weights = api.get(f"/api/graphs/{body['id']}/download", {"format": "weights"})
    assert weights.status_code == 200
    state = load(weights.content)
    expected = compile_graph(load_starter("mlp"), seed=7).state_dict()
    assert torch.equal(state["hidden1.weight"], expected["hidden1.weight"])


def test_a_save_that_keeps_the_shapes_keeps_the_weights_and_one_that_changes_them_does_not(
        api: APIClient, mlp_onnx: bytes) -> None:
    body = upload(api, mlp_onnx).json()
    document = body["version"]["document"]
    document["description"] = "same model, new words"
    saved = api.post(f"/api/graphs/{body['id']}/versions",
                     {"document": document, "base_version": 1}, format="json").json()
    assert saved["version"]["initial_weights"] is True
    linear = next(n for n in document["nodes"] if n["type"] == "Linear")
    linear["params"]["out_features"] = 100
    saved = api.post(f"/api/graphs/{body['id']}/versions",
                     {"document": document, "base_version": 2}, format="json").json()
    assert saved["version"]["initial_weights"] is False
    restored = api.post(f"/api/graphs/{body['id']}/versions/1/restore", {}, format="json")
    assert restored.json()["version"]["initial_weights"] is True


def test_the_title_defaults_to_the_file_name(api: APIClient, mlp_onnx: bytes) -> None:
    response = upload(api, mlp_onnx, filename="my digits.onnx")
    assert response.json()["name"] == "my digits"


def test_a_version_without_weights_has_none_to_download(api: APIClient, mlp: dict) -> None:
    graph = api.post("/api/graphs", {"document": mlp}, format="json").json()
    response = api.get(f"/api/graphs/{graph['id']}/download", {"format": "weights"})
    assert response.status_code == 422
    assert "no initial weights" in response.json()["error"]


def hostile_files(tmp_path: Path, mlp_onnx: bytes) -> dict[str, bytes]:
    unknown = helper.make_model(helper.make_graph(
        [helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "N", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, [1, 8, 2], [0.0] * 16),
         helper.make_tensor("r", TensorProto.FLOAT, [1, 8, 2], [0.0] * 16)]),
        opset_imports=[helper.make_opsetid("", 18)])
    huge = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1 << 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1 << 40])]),
        opset_imports=[helper.make_opsetid("", 18)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "then", [],
                               [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", 4])])
    nested = helper.make_model(helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)], "g",
        [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor("c", TensorProto.BOOL, [], [True])]),
        opset_imports=[helper.make_opsetid("", 18)])
    onnx.save_model(onnx.load_from_string(mlp_onnx), tmp_path / "ext.onnx",
                    save_as_external_data=True, location="ext.data", size_threshold=0)
    return {
        "random bytes": random.Random(3).randbytes(2000),
        "truncated": mlp_onnx[: len(mlp_onnx) // 3],
        "unknown op": unknown.SerializeToString(),
        "huge dim": huge.SerializeToString(),
        "external data": (tmp_path / "ext.onnx").read_bytes(),
        "empty": b"",
        "op in a subgraph": nested.SerializeToString(),
    }


def test_files_that_cannot_be_imported_are_400_with_the_reasons_and_store_nothing(
        api: APIClient, mlp_onnx: bytes, tmp_path: Path) -> None:
    for what, data in hostile_files(tmp_path, mlp_onnx).items():
        response = upload(api, data)
        assert response.status_code == 400, (what, response.content)
        body = response.json()
        assert body["error"] and (body.get("problems") or body.get("fields")), what
    assert not Graph.objects.exists() and not InitialWeights.objects.exists()


def test_unmapped_operators_are_counted_by_name(api: APIClient, mlp_onnx: bytes,
                                                tmp_path: Path) -> None:
    response = upload(api, hostile_files(tmp_path, mlp_onnx)["unknown op"])
    assert response.json()["unmapped"] == {"LSTM": 1}
    assert "1 × LSTM has no Shipyard block" in response.json()["error"]


def test_a_file_over_the_limit_is_refused(api: APIClient, mlp_onnx: bytes,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_MAX_ONNX_BYTES", str(len(mlp_onnx) - 1))
    response = upload(api, mlp_onnx)
    assert response.status_code == 400
    assert "over the limit" in response.json()["error"]
    # A request far over it is not read at all.
    monkeypatch.setenv("SHIPYARD_MAX_ONNX_BYTES", "1000")
    response = upload(api, mlp_onnx)
    assert response.status_code == 413
    assert "SHIPYARD_MAX_ONNX_BYTES" in response.json()["error"]


def test_import_needs_a_signed_in_user(mlp_onnx: bytes) -> None:
    response = upload(APIClient(), mlp_onnx)
    assert response.status_code in (401, 403)


def test_a_fork_of_an_imported_model_starts_from_the_same_weights(
        api: APIClient, other_api: APIClient, mlp_onnx: bytes) -> None:
    graph = upload(api, mlp_onnx).json()
    token = api.post(f"/api/graphs/{graph['id']}/share", {}, format="json").json()["token"]
    fork = other_api.post(f"/api/shared/{token}/fork").json()
    assert fork["version"]["initial_weights"] is True
    mine = load(api.get(f"/api/graphs/{graph['id']}/download", {"format": "weights"}).content)
    theirs = load(other_api.get(f"/api/graphs/{fork['id']}/download",
                                {"format": "weights"}).content)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    api.delete(f"/api/graphs/{graph['id']}")  # the origin's weights go with it; the fork's stay
    assert other_api.get(f"/api/graphs/{fork['id']}/download",
                         {"format": "weights"}).status_code == 200
