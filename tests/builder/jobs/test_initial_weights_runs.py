"""A run of an imported graph starts from the file's weights, not seeded ones: the real
worker trains it (Redis, Celery) and the weights it keeps are the file's after one step of a
vanishing learning rate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from realparts import Worker, finished
from rest_framework.test import APIClient
from safetensors.torch import load

from compute.engine import compile_graph, export_onnx, load_starter

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_training_run_of_an_imported_graph_starts_from_its_weights(
        api: APIClient, worker: Worker, tmp_path: Path) -> None:
    source = compile_graph(load_starter("mlp"), seed=11)
    data = export_onnx(source, tmp_path / "mlp.onnx").read_bytes()
    graph = api.post("/api/graphs/import", {"file": SimpleUploadedFile("mlp.onnx", data)},
                     format="multipart").json()
    job = api.post("/api/jobs", {"graph": graph["id"], "dataset": "digits",
                                 "config": {"steps": 1, "lr": 1e-12, "min_lr": 0}},
                   format="json").json()
    done = finished(api, job["id"])
    assert done["status"] == "succeeded", (done["error"], worker.output()[-2000:])
    kept = load(b"".join(api.get(f"/api/jobs/{job['id']}/download",
                                 {"format": "weights"}).streaming_content))
    imported = source.state_dict()
    seeded = compile_graph(load_starter("mlp"), seed=0).state_dict()
    for name in ("hidden1.weight", "logits.bias"):
        assert torch.allclose(kept[name], imported[name], atol=1e-6), name
        assert not torch.allclose(kept[name], seeded[name], atol=1e-2), name
