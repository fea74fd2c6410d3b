"""Running one claimed job in a worker, by its kind: the engine's training loop, with a
reporter that streams what it hears; or the engine's benchmark, whose events stream the
same way.

The loop calls the reporter on its own thread; the reporter only puts events on a list
and returns (the loop must not wait on a database or on Redis). A `Publisher` thread takes
them from there: it stores them with their sequence numbers and sends them to the job's
WebSocket group, at most `MAX_SENDS_PER_SECOND` times a second (a burst goes out as one
send), and in between it beats the job's heartbeat and looks for a cancel. The limit is a
sliding window (at most 10 sends in any second), so that events at up to 10 Hz go out at
once and only a faster flood waits and is coalesced.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, cast

import torch
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection
from safetensors.torch import load_file

from builder.graphs.models import GraphVersion
from compute.engine import (
    CheckedGraph,
    GraphError,
    compile_graph,
    export_onnx,
    export_pytorch,
    load_graph,
)
from compute.engine.benchmark import BenchmarkSettings, benchmark_events
from compute.engine.datasets import DatasetError, FitError
from compute.engine.training import (
    SilentReporter,
    TrainConfig,
    TrainResult,
    latest_checkpoint,
    pick_device,
    train_graph,
)

from . import events, kinds, services
from .models import Job

log = logging.getLogger(__name__)
MAX_SENDS_PER_SECOND = 10
KEEP_CHECKPOINTS = 2  # the latest ones; older ones are deleted as new ones land
CANCEL_POLL_SECONDS = 0.5
STORE_GIVE_UP_SECONDS = 30.0  # events unstorable for this long: the run fails
PROGRESS_SECONDS = 0.25  # a benchmark's progress events, per row, at most this often


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
        """Send what is left and end the thread."""
        self.closing.set()
        self.wake.set()
        self.join(timeout=60)

    def run(self) -> None:
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


class JobReporter(StopCheck, SilentReporter):
    """The training loop's reporter for a job: events to the publisher, checkpoints
    pruned, and a stop when the job is cancelled, superseded, out of time, or the worker
    is shutting down (StopCheck)."""

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.publisher.put(events.metric_event(step, name, value))

    def on_attention(self, step: int, node: str, maps: list[list[list[float]]]) -> None:
        self.publisher.put(events.attention_event(step, node, torch.tensor(maps)))

    def on_sample(self, step: int, text: str) -> None:
        self.publisher.put(events.sample_event(step, text))

    def on_checkpoint(self, step: int, path: Path) -> None:
        for old in sorted(path.parent.glob("step-*.safetensors"))[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)


# Set by the worker when it begins a warm shutdown: running jobs checkpoint and go back to
# the queue instead of keeping the shutdown waiting.
SHUTTING_DOWN = threading.Event()


def run(job: Job) -> None:
    """Run a claimed job to its end, by its kind, and record the outcome on its row."""
    try:
        if job.kind == kinds.BENCHMARK:
            _benchmark(job)
        else:
            _train(job)
    finally:
        # Deleted meanwhile (with its graph): whatever this attempt wrote after the delete
        # removed its folder (a checkpoint, the weights) is an orphan. Looked at after the
        # last write, so that a delete at any moment leaves no folder behind.
        if not Job.objects.filter(id=job.id).exists():
            shutil.rmtree(job.folder, ignore_errors=True)


def _device_or_fail(job: Job, name: str) -> torch.device | None:
    """The device a run asked for, or None when this worker has none such (cuda without
    a GPU): the run is failed then, with the reason."""
    try:
        return pick_device(name)
    except ValueError as exc:
        services.finish_job(job, Job.Status.FAILED, error=str(exc))
        return None


def _train(job: Job) -> None:
    config = TrainConfig.model_validate(job.config)
    folder = job.folder
    folder.mkdir(parents=True, exist_ok=True)
    resume = latest_checkpoint(folder / "checkpoints")
    device = _device_or_fail(job, config.device)
    if device is None:
        return
    publisher = Publisher(job)
    reporter = JobReporter(publisher, time.monotonic() + services.stop_after(job.time_limit),
                           SHUTTING_DOWN)
    publisher.start()
    result: TrainResult | None = None
    error = ""
    files: dict[str, str] = {}
    try:
        version = GraphVersion.objects.get(id=job.version_id)
        data: Any = job.dataset
        if job.upload is not None:
            data = services.load_upload(job.upload, version.document, config.seed)
        result = train_graph(version.document, data, config, reporter, out_dir=folder,
                             resume_from=resume, dataset_options=job.dataset_options)
        if not result.stopped:  # exported while the publisher still beats the heartbeat
            files = export_results(job, folder)
    except FitError as exc:
        error = "the dataset does not fit the graph: " + "; ".join(exc.problems)
    except GraphError as exc:
        error = "the graph is not valid: " + "; ".join(str(p) for p in exc.problems)
    except (DatasetError, ValueError) as exc:  # LossNotFinite among them
        error = str(exc)
    except torch.OutOfMemoryError:
        error = f"out of memory on {device}: try a smaller batch size or model"
    except SoftTimeLimitExceeded:  # Celery's limit, a little after the run's own stop
        error = time_limit_reached(job, publisher.step)
    except Exception as exc:
        if Job.objects.filter(id=job.id).exists():
            log.exception("job %s failed", job.id)
        else:  # deleted (with its graph) while it wrote into its folder: nothing went wrong
            log.info("job %s was deleted while it ran (%s)", job.id, _first_line(exc))
        error = unexpected(exc)
    finally:
        publisher.close()
    if publisher.stop_reason == "unstorable":
        log.error("job %s: its events could not be stored for %s s; it fails", job.id,
                  publisher.give_up_after)
        services.finish_job(job, Job.Status.FAILED, step=publisher.step,
                            error="the run's progress could not be saved to the database "
                                  f"({publisher.store_error}); the worker's log says more")
        return
    if result is None:
        services.finish_job(job, Job.Status.FAILED, error=error or "the run failed",
                            step=publisher.step, metrics=publisher.metrics)
        return
    step, metrics = result.steps, result.metrics
    why = reporter.why if result.stopped else ""
    kept = {"weights": "model.safetensors"} if result.weights else {}
    if why == "shutdown":
        services.release_job(job, step, "its worker shut down; it goes on from step "
                                        f"{step} when a worker takes it again")
    elif why == "cancel":
        services.finish_job(job, Job.Status.CANCELLED, step=step, metrics=metrics, files=kept,
                            error=f"cancelled at step {step}; the last checkpoint is kept")
    elif why == "time":
        services.finish_job(job, Job.Status.FAILED, step=step, metrics=metrics, files=kept,
                            error=time_limit_reached(job, step) + "; the last checkpoint is "
                                  "kept")
    elif why in ("superseded", "gone"):
        log.warning("job %s attempt %s was %s; its results are dropped", job.id,
                    job.attempts, "deleted" if why == "gone" else "superseded")
    else:
        services.finish_job(job, Job.Status.SUCCEEDED, step=step, metrics=metrics,
                            files=files)


class WeightsUnfit(Exception):
    """The weights a benchmark takes cannot be loaded into the version it measures."""


def _benchmark(job: Job) -> None:
    """Measure a claimed benchmark job (compute.engine.benchmark), streaming its progress,
    each row and the per-node costs as events, and keeping what it measured so far in the
    job's `result` (the machine as soon as it is known). A backend that cannot run the
    model is a row with its reason, not a failure; a graph that cannot be built, or
    weights that do not fit it, fail the run with the reason."""
    config = BenchmarkSettings.model_validate(job.config)
    device = _device_or_fail(job, config.device)
    if device is None:
        return
    publisher = Publisher(job)
    stop = StopCheck(publisher, time.monotonic() + services.stop_after(job.time_limit),
                     SHUTTING_DOWN)
    publisher.start()
    result: dict[str, Any] = {"rows": [], "node_costs": [], "settings": config.model_dump()}
    error = ""
    ended = False
    try:
        graph = load_graph(GraphVersion.objects.get(id=job.version_id).document)
        state = _benchmark_weights(job, graph)
        progress_at: dict[tuple[str, int], float] = {}
        for event in benchmark_events(graph, config, state_dict=state,
                                      should_stop=stop.should_stop):
            rows = len(result["rows"])
            if event["type"] == "machine":
                result["machine"] = events.machine(event)
                services.record_result(job, cast(events.BenchmarkResult, result))
            elif event["type"] == "progress":
                # At most every PROGRESS_SECONDS per row, and its first and last: a run of
                # many repetitions must not store an event for each.
                key, now = (event["backend"], event["batch"]), time.monotonic()
                last = event["done"] in (1, event["total"])
                if last or now - progress_at.get(key, 0.0) >= PROGRESS_SECONDS:
                    progress_at[key] = now
                    publisher.put(events.progress_event(rows, event))
            elif event["type"] == "benchmark":
                result["rows"].append(events.benchmark_row(event))
                publisher.put(events.benchmark_event(rows + 1, event))
                services.record_result(job, cast(events.BenchmarkResult, result))
            elif event["type"] == "node_costs":
                result["node_costs"].append(events.node_costs_row(event))
                publisher.put(events.node_costs_event(rows, event))
                services.record_result(job, cast(events.BenchmarkResult, result))
        ended = True
    except GraphError as exc:
        error = "the graph is not valid: " + "; ".join(str(p) for p in exc.problems)
    except WeightsUnfit as exc:
        error = str(exc)
    except torch.OutOfMemoryError:
        error = f"out of memory on {device}: try smaller batch sizes"
    except SoftTimeLimitExceeded:
        error = time_limit_reached(job, publisher.step)
    except Exception as exc:
        if Job.objects.filter(id=job.id).exists():
            log.exception("job %s failed", job.id)
        else:
            log.info("job %s was deleted while it ran (%s)", job.id, _first_line(exc))
        error = unexpected(exc)
    finally:
        publisher.close()
    done = len(result["rows"])
    measured = f"after {done} of {job.total_steps} measurements"
    if publisher.stop_reason == "unstorable":
        services.finish_job(job, Job.Status.FAILED, step=done,
                            error="the run's progress could not be saved to the database "
                                  f"({publisher.store_error}); the worker's log says more")
    elif not ended:
        services.finish_job(job, Job.Status.FAILED, step=done,
                            error=error or "the run failed")
    elif stop.why == "shutdown":  # it starts again from the first measurement
        services.record_result(job, None)
        services.release_job(job, 0, "its worker shut down; the benchmark starts again when "
                                     "a worker takes it")
    elif stop.why == "cancel":
        services.finish_job(job, Job.Status.CANCELLED, step=done,
                            error=f"cancelled {measured}")
    elif stop.why == "time":
        services.finish_job(job, Job.Status.FAILED, step=done,
                            error=f"the run reached its time limit of {job.time_limit} s "
                                  f"{measured}")
    elif stop.why in ("superseded", "gone"):
        log.warning("job %s attempt %s was %s; its results are dropped", job.id,
                    job.attempts, "deleted" if stop.why == "gone" else "superseded")
    else:
        services.finish_job(job, Job.Status.SUCCEEDED, step=done)


def _benchmark_weights(job: Job, graph: CheckedGraph) -> dict[str, torch.Tensor] | None:
    """The weights a benchmark takes (its `weights_of` run's), checked against the graph
    it measures; None for fresh ones."""
    if job.weights_of_id is None:
        return None
    path = Job(id=job.weights_of_id).folder / services.WEIGHTS_FILE
    if not path.is_file():
        raise WeightsUnfit(f"the weights of run {job.weights_of_id} are gone from its folder")
    mismatch = services.weights_mismatch(graph, path)
    if mismatch:
        raise WeightsUnfit(f"the weights of run {job.weights_of_id} do not fit this graph: "
                           f"{mismatch}")
    return load_file(str(path))


def time_limit_reached(job: Job, step: int) -> str:
    return f"the run reached its time limit of {job.time_limit} s at step {step}"


def unexpected(exc: BaseException) -> str:
    """An error nobody foresaw, in one sentence; its trace goes to the worker's log only."""
    return f"the run stopped on an unexpected error ({_first_line(exc)}); the worker's log " \
           "has the details"


def _first_line(exc: BaseException) -> str:
    """`exc` in one line: its type and the first line of its message (PyTorch's C++ errors
    go on with a stack trace of their own), cut at 200 characters."""
    lines = str(exc).strip().splitlines()
    first = lines[0].strip()[:200].rstrip(".") if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def export_results(job: Job, folder: Path) -> dict[str, str]:
    """The trained model as ONNX and as a PyTorch file beside its weights. A format that
    cannot be made records why, and the run still succeeds."""
    files = {"weights": "model.safetensors"}
    try:
        module = compile_graph(GraphVersion.objects.get(id=job.version_id).document, seed=0)
        module.load_state_dict(load_file(str(folder / "model.safetensors")))
        module.eval()
    except Exception as exc:
        log.exception("job %s: cannot rebuild the trained model", job.id)
        return {**files, "onnx_error": _first_line(exc), "pytorch_error": _first_line(exc)}
    try:
        export_pytorch(module, folder / "model.py", weights=folder / "model.pt")
        files["pytorch"] = "model.py"
    except Exception as exc:
        log.exception("job %s: no PyTorch file", job.id)
        files["pytorch_error"] = _first_line(exc)
    try:
        export_onnx(module, folder / "model.onnx")
        files["onnx"] = "model.onnx"
    except Exception as exc:
        log.exception("job %s: no ONNX file", job.id)
        files["onnx_error"] = _first_line(exc)
    return files
