"""What every kind of run shares while a worker runs it (runner, fpga_run): the `Publisher`
that stores and sends its events off the work's thread and keeps its heartbeat, the
`StopCheck` the work asks between its steps, the worker's shutdown flag, the weights a
run takes from a training run, and its errors in words.

The work calls the publisher's `put` on its own thread, which only puts events on a list
and returns (the work must not wait on a database or on Redis). The publisher thread takes
them from there: it stores them with their sequence numbers and sends them to the job's
WebSocket group, at most `MAX_SENDS_PER_SECOND` times a second (a burst goes out as one
send), and in between it beats the job's heartbeat and looks for a cancel. The limit is a
sliding window (at most 10 sends in any second), so that events at up to 10 Hz go out at
once and only a faster flood waits and is coalesced.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
from collections import deque
from typing import Any

import torch
from django.conf import settings
from django.db import close_old_connections, connection
from safetensors.torch import load, load_file

from builder.graphs.models import InitialWeights
from builder.logs import job_context
from compute.engine import CheckedGraph

from . import events, services, store
from .models import Job

log = logging.getLogger(__name__)
MAX_SENDS_PER_SECOND = 10
CANCEL_POLL_SECONDS = 0.5
STORE_GIVE_UP_SECONDS = 30.0  # events unstorable for this long: the run fails


def reconnect_if_lost() -> None:
    """Drop this thread's database connection if the server ended it. A task's thread
    queries nothing while its run trains (the publisher's thread does, on a connection of
    its own), so its connection sits idle for minutes or hours; a database restarted
    meanwhile (PostgreSQL) leaves it dead, and Django, which replaces such a connection only
    after an error on it or at CONN_MAX_AGE, would fail the write of the run's outcome: the
    run stayed `running` until the sweep found it a minute later. One `SELECT 1` a run."""
    if connection.connection is not None and not connection.is_usable():
        connection.close()  # the next query opens a fresh one


class Publisher(threading.Thread):
    """Stores and sends a job's events off the training thread, coalesced, and keeps the
    heartbeat. `stop_reason` turns non-empty when the run must stop: "cancel",
    "shutdown" (its worker is going), "superseded" (the job is no longer this
    attempt's), "gone" (its row was deleted) or "unstorable" (its events could not be
    stored for `give_up_after` seconds).

    No error ends the thread: a run whose publisher died would keep training with no
    heartbeat and no ear for a cancel. Each kind of error is logged once with its trace."""

    def __init__(self, job: Job, *, heartbeat: bool = True,
                 max_sends_per_second: int = MAX_SENDS_PER_SECOND,
                 give_up_after: float = STORE_GIVE_UP_SECONDS) -> None:
        super().__init__(name=f"job-{job.id}-publisher", daemon=True)
        self.job = job
        self.heartbeat = heartbeat
        self.give_up_after = give_up_after
        self.sent_at: deque[float] = deque(maxlen=max_sends_per_second)  # the last sends
        self.pending: list[events.Event] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.closing = threading.Event()
        self.stop_reason = ""
        self.store_error = ""  # why the events could not be stored, when they could not
        self.failing_since: float | None = None  # the first of the store failures in a row
        self.discard = False  # the events have nowhere to go: drop them
        self.logged: set[tuple[str, str]] = set()
        self.step = job.step
        self.metrics: dict[str, float | str] = dict(job.metrics)
        self.sends = 0

    def put(self, event: events.Event) -> None:
        with self.lock:
            self.pending.append(event)
            self.step = max(self.step, event["step"])
            if event["type"] == "metric":
                value = event["value"]
                self.metrics[event["name"]] = (value if value is not None
                                               else event.get("nonfinite", "nan"))
        self.wake.set()

    def close(self) -> None:
        """Send what is left and end the thread. The caller, the task's thread, writes the
        run's outcome next, on its own connection: see `reconnect_if_lost`."""
        self.closing.set()
        self.wake.set()
        self.join(timeout=60)
        reconnect_if_lost()

    def run(self) -> None:
        with job_context(self.job.id):  # a new thread: its log lines name the run too
            self._run()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()  # one loop for the thread: the layer keeps its pool
        last_beat = last_poll = 0.0
        try:
            while True:
                self.wake.wait(timeout=CANCEL_POLL_SECONDS)
                full = len(self.sent_at) == self.sent_at.maxlen
                wait = self.sent_at[0] + 1.0 - time.monotonic() if full else 0.0
                if wait > 0 and self.pending and not self.closing.is_set():
                    time.sleep(wait)  # coalesce: whatever arrives meanwhile goes out together
                self.wake.clear()
                with self.lock:
                    batch, self.pending = self.pending, []
                if batch and not self.discard:
                    self.sent_at.append(time.monotonic())
                    self._guarded("store", self._publish, loop, batch)
                if self.heartbeat:
                    now = time.monotonic()
                    if now - last_beat >= settings.JOB_HEARTBEAT_SECONDS:
                        self._guarded("heartbeat", self._beat)
                        last_beat = now
                    if now - last_poll >= CANCEL_POLL_SECONDS:
                        self._guarded("cancel poll", self._poll)
                        last_poll = now
                if self.closing.is_set() and (self.discard or not self.pending):
                    break
        finally:
            loop.close()  # channels_redis wraps close() to close this loop's connections
            connection.close()

    def _guarded(self, what: str, work: Any, *args: Any) -> None:
        try:
            work(*args)
        except Exception as exc:
            kind = (what, type(exc).__name__)
            if kind not in self.logged:  # once per kind: a failing database every 0.5 s
                self.logged.add(kind)    # would bury the log in identical traces
                log.exception("job %s: the %s failed (logged once; going on)", self.job.id,
                              what)
            close_old_connections()

    def _beat(self) -> None:
        with self.lock:
            metrics = dict(self.metrics)
        if not services.heartbeat(self.job, self.step, metrics):
            self.stop_reason = self.stop_reason or "superseded"

    def _poll(self) -> None:
        self.stop_reason = self.stop_reason or services.stop_requested(self.job)
        if self.stop_reason == "gone":
            self.discard = True

    def _publish(self, loop: asyncio.AbstractEventLoop, batch: list[events.Event]) -> None:
        try:
            stored = events.store(self.job.id, batch)
        except Job.DoesNotExist:  # deleted with its graph: the run stops at the next poll
            log.info("job %s was deleted; its events are dropped", self.job.id)
            self.stop_reason = self.stop_reason or "gone"
            self.discard = True
            return
        except Exception as exc:
            with self.lock:
                self.pending[:0] = batch  # tried again at the next round
            now = time.monotonic()
            self.failing_since = self.failing_since or now
            if now - self.failing_since >= self.give_up_after:
                self.store_error = f"{type(exc).__name__}"
                self.stop_reason = self.stop_reason or "unstorable"
                self.discard = True
            raise
        self.failing_since = None
        try:
            from channels.layers import get_channel_layer

            layer = get_channel_layer()
            message: events.EventsMessage = {"type": "job.events", "events": stored}
            loop.run_until_complete(layer.group_send(events.group_name(self.job.id), message))
            self.sends += 1
        except Exception:  # Redis away: they are stored, and clients backfill
            log.warning("could not send events of job %s", self.job.id, exc_info=True)


class StopCheck:
    """Whether a run must stop, asked by the work between its steps: when the job is
    cancelled, superseded or deleted (the publisher hears it), out of time, or its worker
    is shutting down. `why` says which, once it has."""

    def __init__(self, publisher: Publisher, deadline: float,
                 shutting_down: threading.Event) -> None:
        self.publisher = publisher
        self.deadline = deadline
        self.shutting_down = shutting_down
        self.why = ""

    def should_stop(self) -> bool:
        if self.publisher.stop_reason:
            self.why = self.publisher.stop_reason
        elif time.monotonic() > self.deadline:
            self.why = "time"
        elif self.shutting_down.is_set():
            self.why = "shutdown"
        return bool(self.why)


# Set by the worker when it begins a warm shutdown: running jobs checkpoint and go back to
# the queue instead of keeping the shutdown waiting.
SHUTTING_DOWN = threading.Event()


class WeightsUnfit(Exception):
    """The weights a benchmark or FPGA run takes cannot be loaded into its version."""


def version_weights(version_id: int) -> dict[str, torch.Tensor] | None:
    """The initial weights a graph version carries (an imported model's), None if it has
    none. They fit the version exactly: a save keeps them only then."""
    row = InitialWeights.objects.filter(versions__id=version_id).only("data").first()
    return None if row is None else load(bytes(row.data))


def version_frozen(version_id: int) -> frozenset[str]:
    """The names a training run of the version keeps as its initial weights have them (a
    derived model's, frozen with SQL); empty without initial weights."""
    row = InitialWeights.objects.filter(versions__id=version_id).only("frozen").first()
    names = row.frozen if row is not None and isinstance(row.frozen, list) else []
    return frozenset(name for name in names if isinstance(name, str))


def run_weights(job: Job, graph: CheckedGraph) -> dict[str, torch.Tensor] | None:
    """The weights a benchmark or FPGA run takes (its `weights_of` run's, else its version's
    initial weights), checked against the graph it runs; None for fresh ones."""
    if job.weights_of_id is None:
        return version_weights(job.version_id)
    path = store.local(Job(id=job.weights_of_id), services.WEIGHTS_FILE)
    if path is None:
        raise WeightsUnfit(f"the weights of run {job.weights_of_id} are gone from the store")
    mismatch = services.weights_mismatch(graph, path)
    if mismatch:
        raise WeightsUnfit(f"the weights of run {job.weights_of_id} do not fit this graph: "
                           f"{mismatch}")
    return load_file(str(path))


def time_limit_reached(job: Job, step: int) -> str:
    return f"the run reached its time limit of {job.time_limit} s at step {step}"


def unexpected(exc: BaseException) -> str:
    """An error nobody foresaw, in one sentence; its trace goes to the worker's log only.
    A full disk is foreseen: said as such, naming the worker's folder."""
    if disk_full(exc):
        return (f"the worker's disk is full: no space left on the device of "
                f"{settings.JOBS_DIR} while writing the run's files ({first_line(exc)}); the "
                f"checkpoints written before are kept: free space there, then run it again")
    return f"the run stopped on an unexpected error ({first_line(exc)}); the worker's log " \
           "has the details"


def disk_full(exc: BaseException | None) -> bool:
    """`exc` (or an error it came from) is a write to a full disk: an OSError ENOSPC, or
    a library's error that only says so in words (safetensors: "os error 28")."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(exc) or "(os error 28)" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def first_line(exc: BaseException) -> str:
    """`exc` in one line: its type and the first line of its message (PyTorch's C++ errors
    go on with a stack trace of their own), cut at 200 characters."""
    lines = str(exc).strip().splitlines()
    first = lines[0].strip()[:200].rstrip(".") if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def end_attempt(job: Job, publisher: Publisher, stop: StopCheck, *, ended: bool, error: str,
                step: int, done: str, again: str, files: dict[str, str] | None = None) -> None:
    """Record how an attempt at a benchmark or FPGA run ended, on its row: failed with
    `error` when its work did not end (`ended` false), back to the queue on a shutdown
    (`again` says so; it starts over), cancelled, out of time, dropped when superseded or
    deleted, else succeeded. `done` says how far it got ("after 3 of 10 measurements");
    `files` are what it made for download."""
    if publisher.stop_reason == "unstorable":
        services.finish_job(job, Job.Status.FAILED, step=step,
                            error="the run's progress could not be saved to the database "
                                  f"({publisher.store_error}); the worker's log says more")
    elif not ended:
        services.finish_job(job, Job.Status.FAILED, step=step, files=files,
                            error=error or "the run failed")
    elif stop.why == "shutdown":
        services.record_result(job, None)
        services.release_job(job, 0, again)
    elif stop.why == "cancel":
        services.finish_job(job, Job.Status.CANCELLED, step=step, files=files,
                            error=f"cancelled {done}")
    elif stop.why == "time":
        services.finish_job(job, Job.Status.FAILED, step=step, files=files,
                            error=f"the run reached its time limit of {job.time_limit} s "
                                  f"{done}")
    elif stop.why in ("superseded", "gone"):
        log.warning("job %s attempt %s was %s; its results are dropped", job.id,
                    job.attempts, "deleted" if stop.why == "gone" else "superseded")
    else:
        services.finish_job(job, Job.Status.SUCCEEDED, step=step, files=files)
