"""Running one claimed job in a worker, by its kind: the engine's training loop, with a
reporter that streams what it hears; the engine's benchmark, whose events stream the same
way; or an FPGA run (fpga_run). What the kinds share while they run (the publisher of
their events, the stop check, the shutdown flag) is in `lifecycle`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, cast

import torch
from celery.exceptions import SoftTimeLimitExceeded
from safetensors.torch import load_file

from builder.graphs.models import GraphVersion
from compute.engine import (
    GraphError,
    compile_graph,
    export_onnx,
    export_pytorch,
    load_graph,
)
from compute.engine.benchmark import BenchmarkSettings, benchmark_events
from compute.engine.datasets import DatasetError, FitError, dataset_for
from compute.engine.training import (
    SilentReporter,
    TrainConfig,
    TrainResult,
    pick_device,
    train_graph,
)

from . import cards, events, kinds, services, store
from .fpga_run import run_fpga
from .lifecycle import (
    SHUTTING_DOWN,
    Publisher,
    StopCheck,
    WeightsUnfit,
    end_attempt,
    first_line,
    run_weights,
    time_limit_reached,
    unexpected,
    version_frozen,
    version_weights,
)
from .models import Job

log = logging.getLogger(__name__)
KEEP_CHECKPOINTS = 2  # the latest ones; older ones are deleted as new ones land
PROGRESS_SECONDS = 0.25  # a benchmark's progress events, per row, at most this often


class JobReporter(StopCheck, SilentReporter):
    """The training loop's reporter for a job: events to the publisher, checkpoints
    pruned, and a stop when the job is cancelled, superseded, out of time, or the worker
    is shutting down (StopCheck)."""

    def on_metric(self, step: int, name: str, value: float) -> None:
        self.publisher.put(events.metric_event(step, name, value))

    def on_attention(self, step: int, node: str, maps: list[list[list[float]]],
                     tokens: list[str] | None = None) -> None:
        self.publisher.put(events.attention_event(step, node, torch.tensor(maps), tokens))

    def on_sample(self, step: int, text: str) -> None:
        self.publisher.put(events.sample_event(step, text))

    def on_checkpoint(self, step: int, path: Path) -> None:
        # Into the store at once: a worker on another machine resumes from it when this
        # one dies. The store keeps what the folder keeps.
        store.push(self.publisher.job, [f"{store.CHECKPOINTS}/{path.name}"])
        for old in sorted(path.parent.glob("step-*.safetensors"))[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
            store.forget(self.publisher.job, [f"{store.CHECKPOINTS}/{old.name}"])


def run(job: Job) -> None:
    """Run a claimed job to its end, by its kind, and record the outcome on its row."""
    if job.attempts <= 1:
        # A first attempt starts from nothing. A folder already there was left by another
        # run with the same id (a database reset or restored while SHIPYARD_HOME or the
        # store was kept): resuming from its checkpoint would train, or show, someone
        # else's model. The store's keys of that id go too.
        try:
            store.clear_job(job.id)
        except store.StoreError as exc:
            services.finish_job(job, Job.Status.FAILED, error=str(exc))
            return
    try:
        if job.kind == kinds.BENCHMARK:
            _benchmark(job)
        elif job.kind == kinds.FPGA:
            run_fpga(job)
        else:
            _train(job)
    finally:
        # Deleted meanwhile (with its graph): whatever this attempt wrote after the delete
        # removed its folder (a checkpoint, the weights) is an orphan. Looked at after the
        # last write, so that a delete at any moment leaves no folder behind.
        if not Job.objects.filter(id=job.id).exists():
            try:
                store.clear_job(job.id)
            except store.StoreError as exc:
                log.warning("job %s was deleted; its files are left in the store: %s",
                            job.id, exc)


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
    try:  # the latest checkpoint in the store, wherever the last attempt ran
        resume = store.pull_checkpoints(job, prune=True)
    except store.StoreError as exc:
        services.finish_job(job, Job.Status.FAILED, error=str(exc))
        return
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
        # The data is loaded here, not in train_graph, so that its manifest is on the row
        # before the first step (a run that fails or is cancelled still says what it read).
        if job.upload is not None:
            data = services.load_upload(job.upload, version.document, config.seed)
        else:
            data = dataset_for(version.document, job.dataset, seed=config.seed,
                               **(job.dataset_options or {}))
        cards.record_manifest(job, data, seed=config.seed)
        metadata = ({cards.METADATA_KEY: cards.manifest_json(job)} if job.manifest
                    else None)
        initial = version_weights(version.id)
        # Frozen names (a derived model's) stay as the initial weights have them.
        frozen = version_frozen(version.id) if initial is not None else frozenset()
        result = train_graph(version.document, data, config, reporter, out_dir=folder,
                             resume_from=resume, initial_weights=initial, frozen=frozen,
                             weights_metadata=metadata)
        if not result.stopped:  # exported while the publisher still beats the heartbeat
            files = export_results(job, folder)
        if result.weights is not None:  # into the store before the row lists them
            store.push(job, sorted({services.WEIGHTS_FILE, *result_names(files)}))
    except store.StoreError as exc:
        error = str(exc)
        result = None
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
            log.info("job %s was deleted while it ran (%s)", job.id, first_line(exc))
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
    result: dict[str, Any] = {"kind": "benchmark", "rows": [], "node_costs": [],
                              "settings": config.model_dump()}
    error = ""
    ended = False
    try:
        graph = load_graph(GraphVersion.objects.get(id=job.version_id).document)
        state = run_weights(job, graph)
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
            log.info("job %s was deleted while it ran (%s)", job.id, first_line(exc))
        error = unexpected(exc)
    finally:
        publisher.close()
    done = len(result["rows"])
    end_attempt(job, publisher, stop, ended=ended, error=error, step=done,
                done=f"after {done} of {job.total_steps} measurements",
                again="its worker shut down; the benchmark starts again when a worker "
                      "takes it")


def result_names(files: dict[str, str]) -> list[str]:
    """The file names a run's `files` lists (its results; an "x_error" is no file), with
    the PyTorch file's weights beside it."""
    names = [name for key, name in files.items() if not key.endswith("_error")]
    if files.get("pytorch"):
        names.append("model.pt")
    return names


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
        return {**files, "onnx_error": first_line(exc), "pytorch_error": first_line(exc)}
    try:
        export_pytorch(module, folder / "model.py", weights=folder / "model.pt")
        files["pytorch"] = "model.py"
    except Exception as exc:
        log.exception("job %s: no PyTorch file", job.id)
        files["pytorch_error"] = first_line(exc)
    metadata = {cards.METADATA_KEY: cards.manifest_json(job)} if job.manifest else None
    try:
        export_onnx(module, folder / "model.onnx", metadata=metadata)
        files["onnx"] = "model.onnx"
    except Exception as exc:
        log.exception("job %s: no ONNX file", job.id)
        files["onnx_error"] = first_line(exc)
    return files
