"""The store: where runs' checkpoints and results and the users' uploads live, so that a
worker on any machine (its own SHIPYARD_HOME, no disk shared with the web) can write them
and the web can read them. It is Django's storage `STORAGES["shipyard"]`
(builder/settings.py, SHIPYARD_STORAGE): the file system by default, rooted at
SHIPYARD_HOME, or an S3-compatible bucket.

Keys are made of ids only: `jobs/<run id>/<name>` (a name from this code: `model.onnx`,
`checkpoints/step-000010.safetensors`) and `uploads/<owner id>/<uuid>.<ext>`. With the
default store they are exactly the paths under SHIPYARD_HOME that the files always had:
`push` and the copies (`local`) are then no-ops, and nothing moves for an existing install.

A process works on local files (the training loop writes its checkpoints, the exports
their files, under the run's folder `Job.folder` in the local SHIPYARD_HOME): the worker
`push`es each file once it is complete (a checkpoint as soon as it is written), a reader
takes a `local` copy (downloaded into the same local folder when missing: written under a
temporary name and renamed, never read half-done) or streams it (`open_file`). A file is
never changed once pushed (a new checkpoint is a new name), so a local copy of the same
size is the same file.

Every failure to reach the store is a StoreError naming the store: 503 for a request, the
run's error in a worker.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from builder.rest import ApiError

from .models import Job, Upload

log = logging.getLogger(__name__)

ALIAS = "shipyard"
CHECKPOINTS = "checkpoints"  # a run's checkpoints, under its folder and its key
CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX = "step-", ".safetensors"
COPY_CHUNK = 1 << 20


class StoreError(ApiError):
    """The store could not be reached, or refused: the message names it. A request that
    meets it is answered 503."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503)


def storage() -> Storage:
    return storages[ALIAS]


def describe(where: Storage | None = None) -> str:
    """The store in words, for errors and logs: its kind and where it is (no secret)."""
    where = where or storage()
    if isinstance(where, FileSystemStorage):
        return f"the file store at {where.location}"
    bucket = getattr(where, "bucket_name", "?")
    endpoint = getattr(where, "endpoint_url", None) or "AWS"
    return f"the S3 store (bucket {bucket!r} at {endpoint})"


def is_home() -> bool:
    """The store is the local SHIPYARD_HOME itself: keys are the local paths, nothing to
    copy (the default)."""
    where = storage()
    return (isinstance(where, FileSystemStorage)
            and Path(where.location).resolve() == Path(settings.SHIPYARD_HOME).resolve())


@contextmanager
def _calling(what: str) -> Iterator[None]:
    """Turns the store's failures within (botocore's errors, an OSError other than a
    missing file) into a StoreError that names the store and what was being done."""
    try:
        yield
    except (FileNotFoundError, StoreError):
        raise
    except Exception as exc:
        if not (isinstance(exc, OSError) or _is_boto_error(exc)):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise StoreError(f"{describe()} cannot be used ({type(exc).__name__}: {first}) "
                         f"while {what}") from exc


def _is_boto_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover: django-storages[s3] brings botocore
        return False
    return isinstance(exc, (BotoCoreError, ClientError))


def _checked_name(name: str) -> str:
    """A run's file name relative to its folder: made by this code, checked anyway."""
    parts = name.split("/")
    if any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise ValueError(f"not a file name of the store: {name!r}")
    return name


def job_prefix(job_id: int) -> str:
    return f"jobs/{int(job_id)}"


def job_key(job: Job | int, name: str) -> str:
    job_id = job.id if isinstance(job, Job) else job
    return f"{job_prefix(job_id)}/{_checked_name(name)}"


def upload_key(file: str) -> str:
    return f"uploads/{_checked_name(file)}"


def _folder(job: Job | int) -> Path:
    return Path(settings.JOBS_DIR) / str(job.id if isinstance(job, Job) else int(job))


# Writing: the worker


def push(job: Job, names: Iterable[str]) -> None:
    """Copy the run's local files `names` (relative to its folder) into the store, each
    under its key, replacing what is there. A no-op with the store at SHIPYARD_HOME."""
    if is_home():
        return
    where, folder = storage(), job.folder
    for name in names:
        key = job_key(job, name)
        with _calling(f"saving {key}"):
            if isinstance(where, FileSystemStorage):  # a shared folder: whole or absent
                _replace(folder / name, Path(where.path(key)))
            else:  # S3: an object appears whole when its upload ends
                with (folder / name).open("rb") as file:
                    where.save(key, File(file, name=PurePosixPath(name).name))


def _replace(source: Path, target: Path) -> None:
    """Copy `source` to `target` under a temporary name, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        shutil.copyfile(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def forget(job: Job, names: Iterable[str]) -> None:
    """Delete the run's keys `names` (the checkpoints a run prunes)."""
    if is_home():
        return
    where = storage()
    for name in names:
        key = job_key(job, name)
        with _calling(f"deleting {key}"):
            where.delete(key)


def clear_job(job_id: int) -> None:
    """Delete every key of a run (its folder's files in the store) and its local folder."""
    shutil.rmtree(_folder(job_id), ignore_errors=True)
    if is_home():
        return
    where, prefix = storage(), job_prefix(job_id)
    with _calling(f"deleting {prefix}/"):
        for key in _walk(where, prefix):
            where.delete(key)


def _walk(where: Storage, prefix: str) -> list[str]:
    """Every key under `prefix` (a folder), found with listdir."""
    try:
        folders, files = where.listdir(prefix)
    except FileNotFoundError:
        return []
    found = [f"{prefix}/{f}" for f in files]
    for sub in folders:
        found += _walk(where, f"{prefix}/{sub}")
    return found


# Reading: the web and the workers


def _size(where: Storage, key: str) -> int | None:
    """The size of `key` in the store; None when it is not there."""
    try:
        with _calling(f"looking for {key}"):
            size = int(where.size(key))
    except FileNotFoundError:  # S3Storage says a 404 so too
        return None
    return size


def exists(job: Job, name: str) -> bool:
    if is_home():
        return (job.folder / name).is_file()
    return _size(storage(), job_key(job, name)) is not None


def local(job: Job, name: str) -> Path | None:
    """A local file with the run's `name`, copied from the store into its folder when it
    is missing there (or differs: a folder left by another run with the same id); None
    when the store has no such file."""
    path = job.folder / _checked_name(name)
    if is_home():
        return path if path.is_file() else None
    return _copy(job_key(job, name), path)


def _copy(key: str, path: Path) -> Path | None:
    where = storage()
    size = _size(where, key)
    if size is None:
        return None
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with _calling(f"reading {key}"), where.open(key, "rb") as source, \
                part.open("wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
        os.replace(part, path)  # whole, or not there: a reader never sees half a file
    except FileNotFoundError:  # deleted meanwhile
        return None
    finally:
        part.unlink(missing_ok=True)
    return path


def open_file(job: Job, name: str) -> IO[bytes] | None:
    """The run's file `name` opened for reading, from the store (for a download, streamed
    without a copy in the run's folder); None when the store has no such file."""
    key = job_key(job, name)
    if is_home():
        path = job.folder / _checked_name(name)
        return path.open("rb") if path.is_file() else None
    where = storage()
    if _size(where, key) is None:
        return None
    try:
        with _calling(f"reading {key}"):
            handle = where.open(key, "rb")
            handle.read(0)  # S3: fetched now, so that a failure is a 503, not a cut body
    except FileNotFoundError:
        return None
    return handle


def checkpoint_names(job: Job) -> list[str]:
    """The run's checkpoints in the store (`checkpoints/step-…`), oldest first."""
    if is_home():
        files = [p.name for p in (job.folder / CHECKPOINTS).glob(
            f"{CHECKPOINT_PREFIX}*{CHECKPOINT_SUFFIX}")]
    else:
        prefix = f"{job_prefix(job.id)}/{CHECKPOINTS}"
        with _calling(f"listing {prefix}/"):
            try:
                _, files = storage().listdir(prefix)
            except FileNotFoundError:
                files = []
    return [f"{CHECKPOINTS}/{f}" for f in sorted(files)
            if f.startswith(CHECKPOINT_PREFIX) and f.endswith(CHECKPOINT_SUFFIX)
            and "/" not in f]


def pull_checkpoints(job: Job, *, prune: bool = False) -> Path | None:
    """The run's latest checkpoint as a local file (copied from the store when missing):
    the one an attempt resumes from, the one the web reads a running run's model from;
    None when the store has none.

    Local checkpoints older than the store's oldest are deleted (the store pruned them).
    `prune` (an attempt's start, when nothing else writes the folder) deletes every local
    one the store does not hold, so that the training loop's own pruning sees only these;
    a reader keeps newer ones (a worker on its machine may have one it has yet to push)."""
    names = checkpoint_names(job)
    if is_home():
        return job.folder / names[-1] if names else None
    kept = set(names)
    for old in (job.folder / CHECKPOINTS).glob(f"{CHECKPOINT_PREFIX}*{CHECKPOINT_SUFFIX}"):
        name = f"{CHECKPOINTS}/{old.name}"
        if name not in kept and (prune or (names and name < names[0])):
            old.unlink(missing_ok=True)
    for name in reversed(names):  # the latest that is still there
        path = local(job, name)
        if path is not None:
            return path
    return None


# Uploads


def save_upload(file: str, content: bytes) -> None:
    """Keep an upload's bytes under `uploads/<file>` (a name made of ids)."""
    key = upload_key(file)
    path = Path(settings.UPLOADS_DIR) / _checked_name(file)
    if is_home():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return
    from django.core.files.base import ContentFile

    with _calling(f"saving {key}"):
        storage().save(key, ContentFile(content, name=PurePosixPath(file).name))


def upload_path(upload: Upload) -> Path:
    """A local copy of an upload (fetched from the store when missing); FileNotFoundError
    when the store has lost it."""
    path = Path(settings.UPLOADS_DIR) / _checked_name(upload.file)
    if is_home():
        if not path.is_file():
            raise FileNotFoundError(f"upload {upload.id}'s file is gone from {describe()}")
        return path
    found = _copy(upload_key(upload.file), path)
    if found is None:
        raise FileNotFoundError(f"upload {upload.id}'s file is gone from {describe()}")
    return found


def delete_upload(file: str) -> None:
    path = Path(settings.UPLOADS_DIR) / _checked_name(file)
    path.unlink(missing_ok=True)
    if not is_home():
        key = upload_key(file)
        with _calling(f"deleting {key}"):
            storage().delete(key)


__all__ = ["StoreError", "checkpoint_names", "clear_job", "delete_upload", "describe",
           "exists", "forget", "is_home", "job_key", "local", "open_file",
           "pull_checkpoints", "push", "save_upload", "storage", "upload_key", "upload_path"]
