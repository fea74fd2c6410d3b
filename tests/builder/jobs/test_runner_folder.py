"""A run's first attempt starts from an empty folder: one left under its id by an earlier
run (the database reset or restored while SHIPYARD_HOME was kept) is not resumed from; a
later attempt of the same run does resume from its own checkpoints."""

from __future__ import annotations

import errno
import shutil

from rest_framework.test import APIClient

from compute.engine import compile_graph, load_starter
from compute.engine.training import TrainConfig, make_optimizer, save_checkpoint
from compute.jobs import runner, services
from compute.jobs.models import Job

# Queue gpu: no worker serves it here, so the run waits until this test claims it. Without
# CUDA the runner fails it at once, after the folder is dealt with and before training.
GPU = {"device": "cuda", "steps": 10}


def waiting_run(api: APIClient) -> Job:
    graph = api.post("/api/graphs", {"starter": "mlp"}, format="json").json()["id"]
    response = api.post("/api/jobs", {"graph": graph, "dataset": "digits", "time_limit": 60,
                                      "config": GPU}, format="json")
    assert response.status_code == 201, response.content
    return Job.objects.get(id=response.json()["id"])


def stale_checkpoint(job: Job) -> None:
    other = compile_graph(load_starter("cnn"), seed=0)  # another model altogether
    config = TrainConfig(steps=10)
    save_checkpoint(job.folder / "checkpoints" / "step-000005.safetensors", other,
                    make_optimizer(other, config), 5, config)


def test_a_first_attempt_does_not_resume_from_a_folder_it_did_not_write(api):
    job = waiting_run(api)
    try:
        stale_checkpoint(job)
        claimed = services.claim_next(queue="gpu", worker="w@h", pid=1)
        assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
        runner.run(claimed)
        assert not (job.folder / "checkpoints").exists()
    finally:
        shutil.rmtree(job.folder, ignore_errors=True)


def test_a_later_attempt_keeps_its_own_checkpoints(api):
    job = waiting_run(api)
    try:
        Job.objects.filter(id=job.id).update(attempts=1)  # handed on once already
        stale_checkpoint(job)
        claimed = services.claim_next(queue="gpu", worker="w@h", pid=1)
        assert claimed is not None and claimed.attempts == 2
        runner.run(claimed)
        assert (job.folder / "checkpoints" / "step-000005.safetensors").is_file()
    finally:
        shutil.rmtree(job.folder, ignore_errors=True)


def test_a_full_disk_is_said_as_such_naming_the_folder(settings, tmp_path):
    """A run that cannot write its files for want of space fails saying so (the
    reliability figures' "disk full" fault, measured on a tmpfs, ended with an
    "unexpected error"). The errors are made here as the OS and safetensors raise them."""
    from safetensors import SafetensorError

    from compute.jobs.lifecycle import unexpected

    settings.JOBS_DIR = tmp_path / "jobs"
    as_os = OSError(errno.ENOSPC, "No space left on device")
    as_safetensors = SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)")
    wrapped = RuntimeError("writing the checkpoint failed")
    wrapped.__cause__ = as_os
    for exc in (as_os, as_safetensors, wrapped):
        error = unexpected(exc)
        assert error.startswith("the worker's disk is full: no space left on the device of "
                                f"{tmp_path / 'jobs'} while writing the run's files ("), error
        assert error.endswith("free space there, then run it again")
    assert unexpected(KeyError("x")) == ("the run stopped on an unexpected error (KeyError: "
                                         "'x'); the worker's log has the details")
