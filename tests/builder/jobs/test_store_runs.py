"""No shared disk: workers whose SHIPYARD_HOME is a folder of their own (not the web's) train
runs with the S3 store (moto's server mode on loopback), and the web (this process, its own
SHIPYARD_HOME) downloads the results and reads the weights through the store alone. A
worker killed mid-run hands it to a worker on yet another SHIPYARD_HOME, which resumes from
the checkpoint the first one pushed.

The processes share the database, Redis and the store, nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from realparts import S3Server, Worker, wait_for
from rest_framework.test import APIClient
from safetensors.torch import load
from test_faults import (
    assert_events_complete,
    assert_resumed_from_a_checkpoint,
    ends_cleanly,
    start_run,
    statuses,
)
from test_runs import finished, new_graph, submit

from compute.jobs import store
from compute.jobs.models import Job

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def machine(s3: S3Server, home: Path, **env: str) -> dict[str, str]:
    """A worker's environment on a machine of its own: its SHIPYARD_HOME, and the store
    this process uses (the same bucket and prefix)."""
    prefix = store.storage().location
    home.mkdir(parents=True, exist_ok=True)
    return {**s3.env(prefix=prefix), "SHIPYARD_HOME": str(home), **env}


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_worker_on_another_home_trains_and_the_web_serves_its_results_from_the_store(
        api: APIClient, start_worker: Any, s3_store: S3Server, tmp_path: Path,
        settings: Any) -> None:
    home = tmp_path / "worker-machine"
    worker: Worker = start_worker(**machine(s3_store, home))
    try:
        no_shared_disk(api, worker, home, s3_store, Path(settings.JOBS_DIR))
    finally:
        worker.stop()


def no_shared_disk(api: APIClient, worker: Worker, home: Path, s3: S3Server,
                   web_jobs: Path) -> None:
    job = submit(api, new_graph(api, "mlp"), "digits",
                 config={"steps": 40, "checkpoint_interval": 10, "device": "cpu"})
    done = finished(api, job["id"], timeout=180)
    assert done["status"] == "succeeded", (done["error"], worker.output()[-3000:])
    assert done["worker"] == worker.name
    run = Job.objects.get(id=done["id"])
    web_folder = web_jobs / str(run.id)
    assert not web_folder.exists()  # the web's disk never saw the run

    # The worker wrote into its own home, and pushed what its folder keeps.
    kept = files_under(home / "jobs" / str(run.id))
    assert kept == ["checkpoints/step-000030.safetensors", "checkpoints/step-000040.safetensors",
                    "model.onnx", "model.pt", "model.py", "model.safetensors"]
    prefix = f"{store.storage().location}/jobs/{run.id}/"
    assert [k.removeprefix(prefix) for k in s3.list_keys(prefix)] == kept

    # Downloads stream from the store (no copy in the web's folder).
    weights = api.get(f"/api/jobs/{run.id}/download", {"format": "weights"})
    assert weights.status_code == 200
    assert load(b"".join(weights.streaming_content))["logits.weight"].shape == (10, 64)
    onnx = api.get(f"/api/jobs/{run.id}/download", {"format": "onnx"})
    assert onnx.status_code == 200 and len(b"".join(onnx.streaming_content)) > 1000
    assert not web_folder.exists()

    # What reads the weights takes a local copy from the store: the model's edges, SQL.
    edges = api.get(f"/api/jobs/{run.id}/edges")
    assert edges.status_code == 200, edges.content
    assert edges.json()["example"]["weights"] == "final"
    sql = api.post(f"/api/jobs/{run.id}/sql", {"sql": "SELECT count(*) FROM tensors"},
                   format="json")
    assert sql.status_code == 200, sql.content
    assert sql.json()["rows"][0][0] > 0
    assert files_under(web_folder) == ["model.safetensors"]

    # A worker reads them from the store too: a benchmark of these weights, on a worker
    # machine whose copy of the run is gone.
    shutil.rmtree(home / "jobs" / str(run.id))
    bench = api.post("/api/jobs", {"graph": run.graph_id, "kind": "benchmark",
                                   "weights": run.id, "time_limit": 60,
                                   "config": {"device": "cpu", "backends": ["eager"],
                                              "batch_sizes": [1], "repeats": 2,
                                              "warmup": 1}}, format="json")
    assert bench.status_code == 201, bench.content
    measured = finished(api, bench.json()["id"], timeout=120)
    assert measured["status"] == "succeeded", (measured["error"], worker.output()[-3000:])
    assert files_under(home / "jobs" / str(run.id)) == ["model.safetensors"]

    # Deleting the run deletes its keys (the benchmark that took its weights first).
    assert api.delete(f"/api/jobs/{measured['id']}").status_code == 204
    assert api.delete(f"/api/jobs/{run.id}").status_code == 204
    assert s3.list_keys(prefix) == [] and not web_folder.exists()


TIMEOUT = 15  # the rescuer's heartbeat timeout: longer than an export (test_faults)


def test_a_run_whose_worker_dies_resumes_on_another_home_from_the_stores_checkpoint(
        api: APIClient, start_worker: Any, s3_store: S3Server, tmp_path: Path,
        settings: Any) -> None:
    steps = 40
    doomed = start_worker(**machine(s3_store, tmp_path / "machine-a"))
    job_id = start_run(api, steps)
    workers = [doomed]
    with ends_cleanly(api, job_id, workers):
        def checkpointed() -> int:
            job = Job.objects.get(id=job_id)
            names = store.checkpoint_names(job) if job.status == Job.Status.RUNNING else []
            return int(names[-1].split("-")[1].split(".")[0]) if job.step >= 10 and names \
                else 0

        seen = wait_for(checkpointed, 120, "a checkpoint in the store past step 10")
        # The web reads a running run's model from its latest checkpoint in the store.
        edges = api.get(f"/api/jobs/{job_id}/edges")
        assert edges.status_code == 200, edges.content
        assert edges.json()["example"]["weights"] == "checkpoint"
        os.killpg(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(timeout=10)

        other = tmp_path / "machine-b"
        rescuer = start_worker(**machine(s3_store, other,
                                         SHIPYARD_HEARTBEAT_TIMEOUT=str(TIMEOUT)))
        workers.append(rescuer)
        done = finished(api, job_id, timeout=TIMEOUT + 180)
        assert done["status"] == "succeeded", (done["error"], rescuer.output()[-3000:])
        assert done["attempts"] == 2 and done["step"] == steps
        assert done["worker"] == rescuer.name

        events = assert_events_complete(api, job_id)
        assert [e["status"] for e in statuses(events)] == ["queued", "running", "queued",
                                                          "running", "succeeded"]
        assert_resumed_from_a_checkpoint(events, seen, steps)
        # Machine b never saw machine a's disk: it resumed from what the store held.
        assert (other / "jobs" / str(job_id) / "model.safetensors").is_file()
        weights = api.get(f"/api/jobs/{job_id}/download", {"format": "weights"})
        assert weights.status_code == 200 and len(b"".join(weights.streaming_content)) > 1000


def test_a_run_whose_store_goes_away_mid_run_fails_at_once_naming_it(
        api: APIClient, start_worker: Any, tmp_path: Path) -> None:
    from compute.serve import free_port

    gone = S3Server(free_port(), bucket="goes-away")  # this test's own: it is stopped
    gone.start()
    try:
        worker = start_worker(**{**gone.env(), "SHIPYARD_HOME": str(tmp_path / "machine"),
                                 "SHIPYARD_S3_TIMEOUT": "1"})
        job_id = start_run(api, 400)
        with ends_cleanly(api, job_id, [worker]):
            wait_for(lambda: any("/checkpoints/" in k for k in gone.list_keys()), 120,
                     "a checkpoint in the store")
            gone.stop()
            stopped = time.monotonic()
            done = finished(api, job_id, timeout=60)
            took = time.monotonic() - stopped
            assert took < 30, took  # its next push fails, after a few quick tries
            assert done["status"] == "failed", done
            assert done["attempts"] == 1 and done["step"] < 400
            assert done["error"].startswith(
                f"the S3 store (bucket 'goes-away' at {gone.url}) cannot be used ("), done
            assert f"while saving jobs/{job_id}/checkpoints/step-" in done["error"]
    finally:
        gone.stop()
