"""Downloading a saved graph as its JSON, a PyTorch file, or an ONNX model."""

from __future__ import annotations

import io
import json

import pytest

from builder.graphs.models import GraphVersion


def test_json_download_is_exactly_the_stored_document(api, make_graph, mlp, changed):
    graph = make_graph(name="Digits MLP")
    api.post(f"/api/graphs/{graph['id']}/versions",
             {"document": changed(mlp), "base_version": 1}, format="json")
    response = api.get(f"/api/graphs/{graph['id']}/download?format=json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="digits-mlp-v2.json"'
    stored = GraphVersion.objects.get(graph_id=graph["id"], number=2)
    assert response.content.decode() == stored.document_json
    assert json.loads(response.content) == changed(mlp)


def test_json_is_the_default_format_and_any_version_can_be_had(api, make_graph, mlp, changed):
    graph = make_graph()
    api.post(f"/api/graphs/{graph['id']}/versions",
             {"document": changed(mlp), "base_version": 1}, format="json")
    response = api.get(f"/api/graphs/{graph['id']}/download?version=1")
    assert response.status_code == 200
    assert json.loads(response.content) == mlp
    assert "-v1.json" in response["Content-Disposition"]


def test_a_missing_version_or_unknown_format_is_refused(api, make_graph):
    graph = make_graph()
    assert api.get(f"/api/graphs/{graph['id']}/download?version=4").status_code == 404
    bad = api.get(f"/api/graphs/{graph['id']}/download?format=keras")
    assert bad.status_code == 400
    assert "error" in bad.json()
    assert api.get(f"/api/graphs/{graph['id']}/download?version=x").status_code == 400


def test_pytorch_download_is_python_that_defines_the_model(api, make_graph):
    graph = make_graph(name="Digits MLP")
    response = api.get(f"/api/graphs/{graph['id']}/download?format=pytorch")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="digits-mlp-v1.py"'
    source = response.content.decode()
    compile(source, "model.py", "exec")  # valid Python
    assert "class " in source
    assert "nn.Module" in source or "torch" in source
    assert "hidden1" in source  # node ids are the names in the code


@pytest.mark.slow
def test_onnx_download_is_an_onnx_model(api, make_graph):
    import onnx

    graph = make_graph(name="Digits MLP")
    response = api.get(f"/api/graphs/{graph['id']}/download?format=onnx")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="digits-mlp-v1.onnx"'
    model = onnx.load_model(io.BytesIO(response.content))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["x"]
