"""Reading side of runs. A user sees their own runs; anyone with a live share link of a
graph sees the runs of it that its owner published. Anything else is simply not found."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from builder.graphs.models import ShareLink, hash_token

from . import store
from .models import AdminAction, Job, JobEvent, Upload

MAX_EVENTS_PER_PAGE = 5000


def jobs_of(user: AbstractBaseUser, *, graph_id: int | None = None,
            status: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    jobs = Job.objects.filter(owner=user).select_related("graph", "version", "upload")
    if kind:
        jobs = jobs.filter(kind=kind)
    if graph_id is not None:
        jobs = jobs.filter(graph_id=graph_id)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def job_of(user: AbstractBaseUser, job_id: int) -> Job:
    job = jobs_of(user).filter(id=job_id).first()
    if job is None:
        raise Http404("no such run")
    return job


def _shared_graph_id(share_token: str | None) -> int | None:
    if not share_token:
        return None
    return (ShareLink.objects.filter(token_hash=hash_token(share_token),
                                     revoked_at__isnull=True)
            .values_list("graph_id", flat=True).first())


def watchable_job(user: AbstractBaseUser | AnonymousUser, job_id: int,
                  share_token: str | None = None) -> Job | None:
    """The job if `user` owns it, or if it is published and `share_token` is a live link
    of its graph; else None."""
    job = Job.objects.select_related("graph", "version", "upload").filter(id=job_id).first()
    if job is None:
        return None
    if user.is_authenticated and job.owner_id == user.pk:
        return job
    if job.published and _shared_graph_id(share_token) == job.graph_id:
        return job
    return None


def watchable_job_or_404(user: Any, job_id: int, share_token: str | None) -> Job:
    job = watchable_job(user, job_id, share_token)
    if job is None:
        raise Http404("no such run")
    return job


def shared_jobs(share_token: str) -> QuerySet[Job]:
    """The published runs of the graph a live link shows."""
    graph_id = _shared_graph_id(share_token)
    if graph_id is None:
        raise Http404("this link is unknown or was revoked")
    return Job.objects.filter(graph_id=graph_id, published=True).select_related(
        "graph", "version", "upload")


def admin_actions_of(jobs: Iterable[Job]) -> dict[int, list[AdminAction]]:
    """What administrators did to each run, oldest first, in one query."""
    ids = [job.id for job in jobs]
    found: dict[int, list[AdminAction]] = {job_id: [] for job_id in ids}
    if ids:
        for action in AdminAction.objects.filter(job_id__in=ids).order_by("at", "id"):
            assert action.job_id is not None
            found[action.job_id].append(action)
    return found


# ?format= of a run's download: the file in its folder, and its content type.
RESULT_FILES = {"weights": ("model.safetensors", "application/octet-stream"),
                "onnx": ("model.onnx", "application/onnx"),
                "pytorch": ("model.py", "text/x-python"),
                "pytorch_weights": ("model.pt", "application/octet-stream"),
                "hls_project": ("hls-project.tar.gz", "application/gzip"),
                "verilog": ("verilog.tar.gz", "application/gzip")}


def result_file(job: Job, fmt: str) -> tuple[IO[bytes], str, str]:
    """The file (open, from the store), download name and content type of a run's result
    `fmt` (one of RESULT_FILES); not found, saying why, when the run has none; a
    StoreError (503) when the store cannot be reached."""
    key = "pytorch" if fmt == "pytorch_weights" else fmt
    if key not in job.files:
        why = job.files.get(f"{key}_error") or (
            f"the run ended {job.status}" if job.finished else "the run has not ended")
        raise Http404(f"run {job.id} has no {fmt} file: {why}")
    name, content_type = RESULT_FILES[fmt]
    file = store.open_file(job, name)
    if file is None:
        raise Http404(f"run {job.id}'s {name} is missing from the store")
    stem = f"{job.graph.name}-run{job.id}".replace('"', "").replace(" ", "-")
    return file, f"{stem}{''.join(Path(name).suffixes)}", content_type


def events_after(job: Job, since: int, *, types: list[str] | None = None,
                 limit: int = MAX_EVENTS_PER_PAGE) -> list[JobEvent]:
    rows = job.events.filter(seq__gt=since)
    if types:
        rows = rows.filter(type__in=types)
    return list(rows.order_by("seq")[:limit])


def latest_attention(job: Job) -> list[JobEvent]:
    """The newest map of every attention module."""
    rows = job.events.filter(type=JobEvent.Type.ATTENTION).order_by("name", "-seq")
    newest: dict[str, JobEvent] = {}
    for row in rows.only("seq", "name", "step", "time", "type"):
        newest.setdefault(row.name, row)
    return list(JobEvent.objects.filter(id__in=[r.id for r in newest.values()])
                .order_by("name"))


def uploads_of(user: AbstractBaseUser) -> QuerySet[Upload]:
    return Upload.objects.filter(owner=user)


def upload_of(user: AbstractBaseUser, upload_id: int) -> Upload:
    upload = uploads_of(user).filter(id=upload_id).first()
    if upload is None:
        raise Http404("no such upload")
    return upload
