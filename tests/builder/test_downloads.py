"""Downloading a saved graph as its JSON, a PyTorch file, or an ONNX model. PyTorch and ONNX
files are made by a child process within a budget, kept per version, and answered with 503
and Retry-After while they are being made."""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from builder.accounts.services import issue_token
from builder.graphs.models import GraphVersion
from compute import exports
from compute.engine import FORMAT


@pytest.fixture(autouse=True)
def exports_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Each test its own cache (the test database gives out the same version ids again), and
    no export of one test still running in the next."""
    settings.EXPORTS_DIR = tmp_path / "exports"
    settings.EXPORT_WAIT_SECONDS = 60  # these tests want the file; the ones on 503 say 0
    yield Path(settings.EXPORTS_DIR)
    for thread in threading.enumerate():
        if thread.name.startswith("export-start-"):
            thread.join(timeout=60)
    for process in exports_running():
        process.join(timeout=60)


def ready(client: APIClient, url: str, limit: float = 120) -> Any:
    """GET `url` until it is not 503, as the editor does, honouring Retry-After (up to a
    second, to keep the tests short)."""
    deadline = time.monotonic() + limit
    while True:
        response = client.get(url)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        assert int(response["Retry-After"]) >= 1
        time.sleep(min(1.0, int(response["Retry-After"])))


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def chain(*layers: dict[str, Any]) -> dict[str, Any]:
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [16]}}, *layers,
             {"id": "y", "type": "Output"}]
    return {"format": FORMAT, "name": "slow", "nodes": nodes,
            "edges": [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]}


def repeat(node_id: str, times: int, *layers: dict[str, Any]) -> dict[str, Any]:
    inner = chain(*layers)
    inner["nodes"][0] = {"id": "x", "type": "Input"}
    return {"id": node_id, "type": "Repeat", "params": {"times": times},
            "graph": {"nodes": inner["nodes"], "edges": inner["edges"]}}


# 24 x 64 copies of a small block, 4,632 modules (under SHIPYARD_MAX_MODULES): a minute to
# export to ONNX, so far over a budget of a few seconds.
NESTED = chain(repeat("outer", 24, repeat("inner", 64, {
    "id": "lin", "type": "Linear", "params": {"out_features": 16}}, {"id": "act", "type": "ReLU"})))


def exports_running() -> list[Any]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("export-")]


def started_exports(count: int = 1, timeout: float = 60) -> list[Any]:
    """The export processes, once `count` have started (or `timeout` passed): the request
    hands the start to a thread (the fork server's first start takes seconds)."""
    deadline = time.monotonic() + timeout
    while len(running := exports_running()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


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
    source = body(response).decode()
    compile(source, "model.py", "exec")  # valid Python
    assert "class " in source
    assert "import torch\n" in source and "class DigitsMlp(nn.Module):" in source
    assert "hidden1" in source  # node ids are the names in the code


@pytest.mark.slow
def test_onnx_download_is_an_onnx_model(api, make_graph):
    import onnx

    graph = make_graph(name="Digits MLP")
    response = api.get(f"/api/graphs/{graph['id']}/download?format=onnx")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="digits-mlp-v1.onnx"'
    model = onnx.load_model(io.BytesIO(body(response)))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["x"]


def test_a_small_model_downloads_in_one_request(api, make_graph, mlp, changed, settings):
    first = make_graph()
    assert ready(api, f"/api/graphs/{first['id']}/download?format=pytorch").status_code == 200
    settings.EXPORT_WAIT_SECONDS = 3  # the default; the export server is up now
    graph = make_graph(changed(mlp, width=40))
    response = api.get(f"/api/graphs/{graph['id']}/download?format=pytorch")
    assert response.status_code == 200
    assert "40" in body(response).decode()


def test_an_export_runs_in_a_child_and_a_slow_one_fails_on_its_budget(api, make_graph, settings):
    settings.EXPORT_SECONDS, settings.EXPORT_WAIT_SECONDS = 2, 0
    graph = make_graph(NESTED)
    url = f"/api/graphs/{graph['id']}/download?format=onnx"
    cpu = time.process_time()
    first = api.get(url)
    assert first.status_code == 503
    assert first.json() == {"error": f"the ONNX file is being prepared; try again in "
                                     f"{first['Retry-After']} s",
                            "retry_after": int(first["Retry-After"]), "busy": False}
    assert [p.pid for p in started_exports()] != []  # a child of ours, not this thread
    failed = ready(api, url)
    assert failed.status_code == 422
    assert failed.json() == {"error": "exporting this model took longer than 2 s "
                                      "(SHIPYARD_EXPORT_SECONDS)", "reason": "time"}
    assert time.process_time() - cpu < 1.0  # the 2 s of work were not this process's

    again = api.get(url)  # the failure is kept: an answer at once (a new try would be a 503)
    assert again.status_code == 422
    settings.EXPORT_SECONDS = 3  # a new budget is worth a new try
    assert api.get(url).status_code == 503


def test_an_export_over_its_memory_budget_fails_clearly(api, make_graph, settings):
    settings.EXPORT_MEMORY_MB = 32
    graph = make_graph(chain({"id": "wide", "type": "Linear", "params": {"out_features": 4096}},
                             {"id": "wider", "type": "Linear", "params": {"out_features": 4096}}))
    response = ready(api, f"/api/graphs/{graph['id']}/download?format=pytorch")
    assert response.status_code == 422
    assert response.json() == {"error": "exporting this model needed more than 32 MB "
                                        "(SHIPYARD_EXPORT_MEMORY_MB)", "reason": "memory"}


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_start_one_export(user, make_graph, settings):
    settings.EXPORT_SECONDS, settings.EXPORT_WAIT_SECONDS = 3, 0
    graph = make_graph(NESTED)
    url = f"/api/graphs/{graph['id']}/download?format=onnx"
    clients = [APIClient(), APIClient()]
    for client in clients:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user=user, name='t')[1]}")
    start = threading.Barrier(2)
    codes: list[int] = []

    def get(client: APIClient) -> None:
        start.wait()
        codes.append(client.get(url).status_code)

    threads = [threading.Thread(target=get, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [503, 503]
    started_exports()
    time.sleep(0.5)  # time for a second one, had one been asked for
    assert len(exports_running()) == 1


def test_an_export_killed_midway_is_started_again_by_the_next_request(api, make_graph,
                                                                       settings):
    settings.EXPORT_SECONDS, settings.EXPORT_WAIT_SECONDS = 5, 0
    graph = make_graph(NESTED)
    url = f"/api/graphs/{graph['id']}/download?format=onnx"
    assert api.get(url).status_code == 503
    [supervisor] = started_exports()
    children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children")
    deadline = time.monotonic() + 30
    while not (workers := children.read_text().split()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the supervisor forks its worker first thing
    assert workers
    for pid in [supervisor.pid, *map(int, workers)]:
        os.kill(pid, signal.SIGKILL)  # as the OOM killer or a reboot would
    supervisor.join(timeout=10)
    # The thread that launched it holds the locks until the start call returns (on a loaded
    # machine, after the kill): until then a request rightly sees the export as going.
    for thread in threading.enumerate():
        if thread.name.startswith("export-start-"):
            thread.join(timeout=30)
    # Its locks died with it: a new export, not a wait for the dead one. (The start hands the
    # locks to the child through the fork server, which lets go of its copies a moment
    # later on a loaded machine: a client polling, as clients do, starts it within that.)
    deadline = time.monotonic() + 10
    while True:
        again = api.get(url)
        assert again.status_code == 503, again.json()
        if started_exports(timeout=2) or time.monotonic() > deadline:
            break
    [restarted] = started_exports()
    assert restarted.pid != supervisor.pid


def test_no_more_exports_run_at_once_than_the_setting_allows(api, make_graph, settings):
    settings.EXPORT_SECONDS, settings.EXPORT_WAIT_SECONDS, settings.EXPORT_PROCESSES = 3, 0, 1
    first, second = make_graph(NESTED), make_graph(NESTED)
    assert api.get(f"/api/graphs/{first['id']}/download?format=onnx").status_code == 503
    busy = api.get(f"/api/graphs/{second['id']}/download?format=onnx")
    assert busy.status_code == 503
    assert busy.json()["busy"] is True
    assert busy.json()["error"] == ("1 exports are running (SHIPYARD_EXPORT_PROCESSES); "
                                    "try again in 5 s")
    assert busy["Retry-After"] == "5"
    assert len(started_exports()) == 1


def test_an_export_is_kept_per_version(api, make_graph, mlp, changed, settings, exports_dir):
    graph = make_graph(name="Digits MLP")
    url = f"/api/graphs/{graph['id']}/download?format=pytorch"
    v1 = body(ready(api, url))
    api.post(f"/api/graphs/{graph['id']}/versions",
             {"document": changed(mlp, width=96), "base_version": 1}, format="json")
    v2 = body(ready(api, url))
    assert "96" in v2.decode() and v1 != v2
    settings.EXPORT_WAIT_SECONDS = 0  # kept: no export to wait for
    assert body(api.get(f"{url}&version=1")) == v1
    assert body(api.get(url)) == v2
    versions = GraphVersion.objects.filter(graph_id=graph["id"])
    assert sorted(p.name for p in exports_dir.iterdir() if p.name != "slots") == sorted(
        str(v.id) for v in versions)


def test_an_export_made_by_another_engine_is_made_again(api, make_graph, settings,
                                                         monkeypatch):
    graph = make_graph()
    url = f"/api/graphs/{graph['id']}/download?format=pytorch"
    assert ready(api, url).status_code == 200
    settings.EXPORT_WAIT_SECONDS = 0
    assert api.get(url).status_code == 200  # kept
    monkeypatch.setattr(exports, "REVISION", "another-engine")
    assert api.get(url).status_code == 503  # not served from the old engine's file
    assert ready(api, url).status_code == 200


def test_deleting_a_graph_removes_its_exports(api, make_graph, exports_dir):
    graph = make_graph()
    assert ready(api, f"/api/graphs/{graph['id']}/download?format=pytorch").status_code == 200
    folder = exports_dir / str(GraphVersion.objects.get(graph_id=graph["id"]).id)
    assert (folder / exports.REVISION / "model.py").is_file()
    assert api.delete(f"/api/graphs/{graph['id']}").status_code == 204
    assert not folder.exists()


def test_a_shared_link_download_is_made_the_same_way(api, anon, make_graph, settings):
    settings.EXPORT_WAIT_SECONDS = 0
    graph = make_graph(name="Digits MLP")
    token = api.post(f"/api/graphs/{graph['id']}/share", {}, format="json").json()["token"]
    url = f"/api/shared/{token}/download?format=pytorch"
    first = anon.get(url)
    assert first.status_code == 503
    assert "Retry-After" in first
    shared = ready(anon, url)
    assert shared.status_code == 200
    assert shared["Content-Disposition"] == 'attachment; filename="digits-mlp-v1.py"'
    owner = api.get(f"/api/graphs/{graph['id']}/download?format=pytorch")  # the same file
    assert owner.status_code == 200 and body(owner) == body(shared)


def test_the_onnx_download_of_an_imported_model_computes_what_its_file_did(api, tmp_path):
    import numpy as np
    import onnxruntime as ort
    from django.core.files.uploadedfile import SimpleUploadedFile

    from compute.engine import compile_graph, export_onnx, load_starter

    source = export_onnx(compile_graph(load_starter("mlp"), seed=4), tmp_path / "in.onnx")
    graph = api.post("/api/graphs/import",
                     {"file": SimpleUploadedFile("in.onnx", source.read_bytes())},
                     format="multipart").json()
    response = ready(api, f"/api/graphs/{graph['id']}/download?format=onnx")
    assert response.status_code == 200, response.content
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    expected = ort.InferenceSession(str(source)).run(None, {"x": x})[0]
    got = ort.InferenceSession(body(response)).run(None, {"x": x})[0]
    assert np.abs(got - expected).max() <= 1e-5
