"""The store (compute/jobs/store.py): runs' files and uploads through Django's storage, so
that no disk is shared between the web and the workers.

With the default store (SHIPYARD_HOME itself) the keys are today's paths and nothing is
copied. With a store elsewhere, a folder (SHIPYARD_STORE_DIR) or an S3 bucket served by
moto's server mode on loopback (`remote_store`), pushed files are found by a process with
an empty local folder, copies are whole or absent, deletes reach the store, and a store
that cannot be reached is a clear error: a failed run naming it, a 503 for a download.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from realparts import point_store_at
from rest_framework.test import APIClient

from builder.env import shipyard_storage
from compute.jobs import runner, services, store
from compute.jobs.models import Job, Upload
from compute.serve import free_port

JOB_ID = 987_654  # the unit tests' run: no row needed for the store's own functions


def fresh_folder(job: Job) -> Path:
    """The run's local folder, emptied: what a machine that never held it has."""
    shutil.rmtree(job.folder, ignore_errors=True)
    return job.folder


def write(job: Job, name: str, content: bytes) -> None:
    path = job.folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def keys_of(kind: str, s3: Any, job: Job) -> list[str]:
    """The run's keys as the store itself holds them (not through the module)."""
    if kind == "s3":
        prefix = store.storage().location
        return [k.removeprefix(f"{prefix}/") for k in s3.list_keys(f"{prefix}/jobs/{job.id}/")]
    root = Path(store.storage().location)
    return sorted(str(p.relative_to(root)) for p in (root / "jobs" / str(job.id)).rglob("*")
                  if p.is_file())


def test_the_default_store_is_shipyard_home_and_its_keys_are_the_paths_of_today() -> None:
    assert store.is_home()
    assert store.describe() == f"the file store at {settings.SHIPYARD_HOME}"
    job = Job(id=JOB_ID)
    try:
        write(job, "model.onnx", b"onnx")
        store.push(job, ["model.onnx"])  # nothing to copy: the folder is the store
        assert store.job_key(job, "model.onnx") == f"jobs/{JOB_ID}/model.onnx"
        assert (settings.SHIPYARD_HOME / store.job_key(job, "model.onnx")).read_bytes() == b"onnx"
        assert store.local(job, "model.onnx") == job.folder / "model.onnx"
        assert store.local(job, "model.pt") is None
        store.clear_job(job.id)
        assert not job.folder.exists()
    finally:
        shutil.rmtree(job.folder, ignore_errors=True)


def test_key_names_refuse_anything_but_a_plain_relative_name() -> None:
    for bad in ("../x", "/etc/passwd", "a/../../b", "", "a//b"):
        with pytest.raises(ValueError):
            store.job_key(JOB_ID, bad)
    assert store.upload_key("3/ab.csv") == "uploads/3/ab.csv"


def test_settings_refuse_a_bad_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from django.core.exceptions import ImproperlyConfigured

    for env, words in [({"SHIPYARD_STORAGE": "ftp"}, "filesystem or s3"),
                       ({"SHIPYARD_STORAGE": "s3"}, "SHIPYARD_S3_BUCKET"),
                       ({"SHIPYARD_STORAGE": "s3", "SHIPYARD_S3_BUCKET": "b",
                         "SHIPYARD_S3_ENDPOINT_URL": "localhost:9000"}, "http://"),
                       ({"SHIPYARD_STORAGE": "s3", "SHIPYARD_S3_BUCKET": "b",
                         "SHIPYARD_S3_PREFIX": "a/../b"}, "plain folder")]:
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            with pytest.raises(ImproperlyConfigured, match=words.replace("/", ".")):
                shipyard_storage(tmp_path)


@pytest.mark.django_db
def test_pushed_files_reach_a_machine_that_never_had_them(remote_store: str, s3: Any) -> None:
    assert not store.is_home()
    job = Job(id=JOB_ID)
    fresh_folder(job)
    try:
        write(job, "model.safetensors", b"w" * 3000)
        write(job, "checkpoints/step-000005.safetensors", b"c5")
        store.push(job, ["model.safetensors", "checkpoints/step-000005.safetensors"])
        assert keys_of(remote_store, s3, job) == [
            f"jobs/{JOB_ID}/checkpoints/step-000005.safetensors",
            f"jobs/{JOB_ID}/model.safetensors"]

        fresh_folder(job)  # another machine: nothing local
        assert store.exists(job, "model.safetensors")
        assert not store.exists(job, "model.onnx")
        path = store.local(job, "model.safetensors")
        assert path == job.folder / "model.safetensors" and path.read_bytes() == b"w" * 3000
        assert store.local(job, "model.onnx") is None
        assert not list(job.folder.glob(".*.part"))  # no temporary file left behind
        handle = store.open_file(job, "model.safetensors")
        assert handle is not None
        with handle:
            assert handle.read() == b"w" * 3000
        assert store.open_file(job, "model.onnx") is None

        # A local file of another size (left by another run with this id) is replaced.
        (job.folder / "model.safetensors").write_bytes(b"stale")
        assert store.local(job, "model.safetensors").read_bytes() == b"w" * 3000  # type: ignore[union-attr]

        store.clear_job(job.id)
        assert keys_of(remote_store, s3, job) == [] and not job.folder.exists()
        assert store.local(job, "model.safetensors") is None
    finally:
        store.clear_job(job.id)


@pytest.mark.django_db
def test_pull_checkpoints_brings_the_latest_one_the_store_holds(remote_store: str,
                                                                 s3: Any) -> None:
    job = Job(id=JOB_ID)
    fresh_folder(job)
    try:
        assert store.pull_checkpoints(job) is None
        for step in (5, 10, 15):
            write(job, f"checkpoints/step-{step:06d}.safetensors", f"c{step}".encode())
            store.push(job, [f"checkpoints/step-{step:06d}.safetensors"])
        store.forget(job, ["checkpoints/step-000005.safetensors"])  # pruned, as the runner does
        assert store.checkpoint_names(job) == ["checkpoints/step-000010.safetensors",
                                               "checkpoints/step-000015.safetensors"]

        fresh_folder(job)  # the run resumed on another machine
        write(job, "checkpoints/step-000003.safetensors", b"old")  # pruned from the store
        write(job, "checkpoints/step-000020.safetensors", b"new")  # not pushed yet
        # A reader: the newest the store holds; what the store pruned goes, what a worker
        # on this machine has yet to push stays.
        assert store.pull_checkpoints(job) == (
            job.folder / "checkpoints" / "step-000015.safetensors")
        assert sorted(p.name for p in (job.folder / "checkpoints").iterdir()) == [
            "step-000015.safetensors", "step-000020.safetensors"]
        latest = store.pull_checkpoints(job, prune=True)  # an attempt's start
        assert latest == job.folder / "checkpoints" / "step-000015.safetensors"
        assert latest.read_bytes() == b"c15"
        # Only the store's latest is fetched; what the store does not hold is dropped.
        assert sorted(p.name for p in (job.folder / "checkpoints").iterdir()) == [
            "step-000015.safetensors"]
    finally:
        store.clear_job(job.id)


@pytest.mark.django_db
def test_uploads_are_kept_in_the_store_and_fetched_before_they_are_read(
        remote_store: str, s3: Any, api: APIClient) -> None:
    text = "the tide comes in and the tide goes out. " * 20
    response = api.post("/api/uploads", {"file": SimpleUploadedFile("tide.txt", text.encode())},
                        format="multipart")
    assert response.status_code == 201, response.content
    upload = Upload.objects.get(id=response.json()["id"])
    key = store.upload_key(upload.file)
    assert key == f"uploads/{upload.owner_id}/{Path(upload.file).name}"
    assert store.storage().exists(key)
    local = Path(settings.UPLOADS_DIR) / upload.file
    local.unlink(missing_ok=True)  # a worker's machine has no copy
    assert store.upload_path(upload).read_text() == text
    assert api.delete(f"/api/uploads/{upload.id}").status_code == 204
    assert not store.storage().exists(key) and not local.exists()


# A store that cannot be reached: nothing listens on the port.


@pytest.fixture
def unreachable(settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"http://127.0.0.1:{free_port()}"
    point_store_at(settings, monkeypatch, {
        "SHIPYARD_STORAGE": "s3", "SHIPYARD_S3_BUCKET": "gone", "SHIPYARD_S3_ENDPOINT_URL": url,
        "SHIPYARD_S3_ACCESS_KEY_ID": "k", "SHIPYARD_S3_SECRET_ACCESS_KEY": "s",
        "SHIPYARD_S3_TIMEOUT": "1"})
    return url


def waiting_run(api: APIClient) -> Job:
    """A run on queue gpu, which no worker serves here: this test claims it."""
    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    response = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "time_limit": 60,
                                      "config": {"device": "cpu", "steps": 10}},
                        format="json")
    assert response.status_code == 201, response.content
    return Job.objects.get(id=response.json()["id"])


@pytest.mark.django_db
def test_a_run_whose_store_cannot_be_reached_fails_at_once_naming_it(
        api: APIClient, unreachable: str) -> None:
    job = waiting_run(api)
    claimed = services.claim_next(queue=job.queue, worker="w@h", pid=1)
    assert claimed is not None and claimed.id == job.id
    began = time.monotonic()
    runner.run(claimed)
    took = time.monotonic() - began
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert f"the S3 store (bucket 'gone' at {unreachable}) cannot be used" in job.error
    assert f"deleting jobs/{job.id}/" in job.error
    assert took < 60, took  # retried a few times, then given up: no hang


@pytest.mark.django_db
def test_a_download_from_a_store_that_cannot_be_reached_is_a_503_naming_it(
        api: APIClient, unreachable: str) -> None:
    job = waiting_run(api)
    Job.objects.filter(id=job.id).update(status=Job.Status.SUCCEEDED,
                                         files={"weights": services.WEIGHTS_FILE})
    response = api.get(f"/api/jobs/{job.id}/download", {"format": "weights"})
    assert response.status_code == 503, response.content
    assert "the S3 store (bucket 'gone'" in response.json()["error"]
    assert api.get(f"/api/jobs/{job.id}/edges").status_code == 503


@pytest.mark.django_db
def test_a_result_missing_from_a_reachable_store_is_a_404(api: APIClient,
                                                         s3_store: Any) -> None:
    job = waiting_run(api)
    Job.objects.filter(id=job.id).update(status=Job.Status.SUCCEEDED,
                                         files={"weights": services.WEIGHTS_FILE})
    response = api.get(f"/api/jobs/{job.id}/download", {"format": "weights"})
    assert response.status_code == 404
    assert "missing from the store" in response.json()["error"]


@pytest.mark.django_db
def test_deleting_a_user_deletes_their_runs_files_and_uploads_from_the_store(
        remote_store: str, s3: Any, api: APIClient, user: Any, other_api: APIClient,
        django_capture_on_commit_callbacks: Any) -> None:
    text = "the tide comes in and the tide goes out. " * 20
    mine = api.post("/api/uploads", {"file": SimpleUploadedFile("tide.txt", text.encode())},
                    format="multipart").json()
    theirs = other_api.post("/api/uploads", {"file": SimpleUploadedFile("sea.txt",
                                                                        text.encode())},
                            format="multipart").json()
    keys = {name: store.upload_key(Upload.objects.get(id=u["id"]).file)
            for name, u in (("mine", mine), ("theirs", theirs))}
    job = waiting_run(api)  # still queued: deleting the user cancels it first
    write(job, "model.safetensors", b"w" * 300)
    store.push(job, ["model.safetensors"])
    assert keys_of(remote_store, s3, job) == [f"jobs/{job.id}/model.safetensors"]

    with django_capture_on_commit_callbacks(execute=True):
        user.delete()

    assert not Job.objects.filter(id=job.id).exists()
    assert keys_of(remote_store, s3, job) == [] and not job.folder.exists()
    assert not store.storage().exists(keys["mine"])
    assert store.storage().exists(keys["theirs"])  # another user's upload stays
