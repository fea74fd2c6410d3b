"""Writing side of runs: submit, claim, report, finish, cancel, and the sweep that keeps
any run from staying "running" once its worker is gone.

Every state change is a conditional update (`filter(id=..., status=...).update(...)`)
that goes on only if one row changed, so two workers, a worker and the sweep, or a worker
and a cancel can race without harm. The attempt number fences a superseded worker: once
the sweep has handed a run to another attempt, the old one's updates change nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone
from pydantic import ValidationError
from safetensors import safe_open

from builder import access
from builder.graphs.models import Graph, GraphVersion, InitialWeights
from builder.rest import ApiError
from compute.celery_app import app as celery_app
from compute.engine import CheckedGraph, GraphError, Limits, analyze, estimate, load_graph
from compute.engine.benchmark import BenchmarkSettings
from compute.engine.build import materialize
from compute.engine.datasets import (
    DATASETS,
    DatasetError,
    check_fit,
    csv_dataset,
    dataset_for,
    graph_view,
    text_dataset,
)
from compute.engine.errors import Problem
from compute.engine.settings import RunSettings
from compute.engine.training import TrainConfig, pick_device
from fpga.check import fpga_problems, fpga_warnings
from fpga.rtl import rtl_problems
from fpga.settings import FpgaSettings

from . import events, kinds, rule, store, workers
from .models import Job, Queue, Upload, Worker

log = logging.getLogger(__name__)
Status = Job.Status
NEW_ACCOUNT_AGE = timedelta(days=1)  # younger accounts share one queue budget
RUN_JOB = "shipyard.run_job"  # tasks.run_job, sent by name: tasks imports this module


class JobError(ApiError):
    """A request about runs that cannot be done: `JobError(message, status=400, **details)`
    is answered `{"error": message, **details}` with that HTTP status. `field` names the
    member of the request at fault, where it is one (not part of the body)."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None,
                 **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.field = field


# Submission


def load_upload(upload: Upload, document: dict[str, Any] | CheckedGraph, seed: int = 0) -> Any:
    """The `Dataset` an upload gives for a graph."""
    try:
        text = store.upload_path(upload).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise DatasetError(str(exc)) from None
    if upload.kind == Upload.Kind.CSV:
        return csv_dataset(text, target=upload.target or None, task=upload.task,
                           name=upload.name, seed=seed)
    return text_dataset(text, graph_view(document), name=upload.name,
                        title=f"{upload.name} (next character)")


def _check_dataset(graph: CheckedGraph, dataset: str, upload: Upload | None,
                   options: dict[str, Any], seed: int) -> None:
    try:
        data = (load_upload(upload, graph, seed) if upload is not None
                else dataset_for(graph, dataset, seed=seed, **options))
    except GraphError as exc:
        raise JobError("the graph is not valid; see problems",
                       problems=[p.to_dict() for p in exc.problems]) from None
    except (DatasetError, TypeError, ValueError) as exc:
        raise JobError(str(exc), field="dataset_options" if options else "dataset") from None
    problems = check_fit(graph, data)
    if problems:
        raise JobError(f"{data.info.name} does not fit this graph: {problems[0]}",
                       problems=problems, field="upload" if upload else "dataset")


@dataclass(frozen=True)
class RunPlan:
    """What a run that passed every check will be: its kind and settings, its queue, its
    time limit, its number of steps, its dataset options, the graph they were checked
    against, and (a benchmark) the training run whose weights it takes."""

    kind: str
    settings: RunSettings
    queue: str
    time_limit: int
    total_steps: int
    options: dict[str, Any]
    graph: CheckedGraph
    weights_of: Job | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)  # an FPGA run's

    def cpu_seconds(self) -> float:
        """About how long it takes on a CPU (see compute.engine.estimate)."""
        flops = analyze(self.graph, Limits.from_env(), flops=True).flops or 0
        if isinstance(self.settings, BenchmarkSettings):
            return benchmark_cpu_seconds(flops, self.settings)
        if isinstance(self.settings, FpgaSettings):
            return fpga_cpu_seconds(self.settings)
        assert isinstance(self.settings, TrainConfig)
        return estimate.cpu_seconds(flops, self.settings)


# Measured on the digits MLP on 2 cores (docs/fpga.md): converting, compiling and
# emulating one project; tracing compiles it again; the Verilog path with its tools.
FPGA_PROJECT_SECONDS = 8.0
FPGA_RTL_SECONDS = 60.0


def fpga_cpu_seconds(config: FpgaSettings) -> float:
    """About how long an FPGA run takes on a small model: a project to build and emulate,
    once more traced, one per width swept, and the Verilog path when asked. A big model
    compiles for much longer (g++ on the unrolled layers)."""
    projects = 2 + len(config.sweep_bits)
    return projects * FPGA_PROJECT_SECONDS + (FPGA_RTL_SECONDS if config.rtl else 0.0)


def benchmark_cpu_seconds(flops_per_sample: int, config: BenchmarkSettings) -> float:
    """About how long a benchmark takes on a CPU: every measured and warm-up forward pass
    of every backend and batch size, and a fixed cost per backend (building, compiling,
    exporting to ONNX), at the training estimate's rates."""
    samples = sum(config.batch_sizes) * (config.warmup + config.repeats)
    passes = len(config.batch_sizes) * (config.warmup + config.repeats)
    per_backend = (estimate.CPU_SECONDS_PER_RUN + passes * estimate.CPU_SECONDS_PER_STEP
                   + flops_per_sample * samples / estimate.CPU_FLOPS_PER_SECOND)
    return estimate.CPU_SECONDS_PER_RUN + per_backend * len(config.backends)


def run_settings(kind: str, raw: Mapping[str, Any] | None) -> RunSettings:
    """A kind's complete settings from what a user gave (see kinds.settings_for); every
    setting that is wrong is refused, each a problem naming it (`config.lr`) and, for a
    number, its range."""
    model = kinds.settings_for(kind)
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = model.problems(exc, prefix="config.")
        raise JobError(problems[0].message,
                       problems=[p.to_dict() for p in problems]) from None


def train_config(raw: Mapping[str, Any] | None) -> TrainConfig:
    """A complete training configuration (run_settings of a training run)."""
    config = run_settings(kinds.TRAIN, raw)
    assert isinstance(config, TrainConfig)
    return config


def check_run(*, document: Any, kind: str = kinds.TRAIN, owner: AbstractBaseUser | None = None,
              graph_id: int | None = None, dataset: str | None = None,
              upload: Upload | None = None, dataset_options: dict[str, Any] | None = None,
              config: dict[str, Any] | None = None, time_limit: int | None = None,
              weights: int | None = None) -> RunPlan:
    """Every check a run must pass before it is queued: the dataset and its options (a
    training run), the settings, the time limit, the graph's validity, the dataset's fit
    and (a benchmark) the weights it takes. submit_job runs it, and so does the run form's
    live check (POST /api/jobs/check), so the two cannot disagree. Raises JobError for the
    first kind of problem met, with all of that kind.

    `weights`: the id of a succeeded training run of `owner`'s, of the graph `graph_id`
    (not checked when the document is not a saved graph's), whose weights fit the graph."""
    options = dict(dataset_options or {})
    if kind in (kinds.BENCHMARK, kinds.FPGA):
        given = [name for name, value in (("dataset", dataset), ("upload", upload),
                                          ("dataset_options", options)) if value]
        if given:
            inputs = ("random tensors of the graph's input shapes" if kind == kinds.BENCHMARK
                      else "the validation split of the weights' run, or seeded random "
                      "inputs")
            raise JobError(f"{_a_run(kind)} takes no {given[0]}: its inputs are {inputs}",
                           field=given[0])
    else:
        if weights is not None:
            raise JobError("weights are for a benchmark or FPGA run (kind: benchmark or "
                           "fpga); a training run starts from fresh weights", field="weights")
        if upload is None:
            if dataset is None:
                raise JobError("give either a dataset or an upload", field="dataset")
            if dataset not in DATASETS:
                raise JobError(f"no dataset named {dataset!r}; datasets: "
                               f"{', '.join(DATASETS)}, or an upload", field="dataset")
        elif options:
            raise JobError("an upload takes no dataset_options", field="dataset_options")
    run_config = run_settings(kind, config)
    limit = settings.JOB_HARD_TIME_LIMIT
    if time_limit is not None and not 10 <= time_limit <= limit:
        raise JobError(f"time_limit must be between 10 and {limit} seconds "
                       f"(SHIPYARD_JOB_TIME_LIMIT), got {time_limit}", field="time_limit")
    try:
        graph = load_graph(document)
    except GraphError as exc:
        raise JobError("the graph is not valid; see problems",
                       problems=[p.to_dict() for p in exc.problems]) from None
    source = None
    warnings: list[dict[str, Any]] = []
    if isinstance(run_config, TrainConfig):
        _check_dataset(graph, dataset or "", upload, options, run_config.seed)
        steps = run_config.steps
    else:
        if isinstance(run_config, FpgaSettings):
            # The library names a setting bare (precision_overrides); a run's settings
            # are its config.
            refused = [p if p.field != "precision_overrides"
                       else Problem(p.message, p.node, f"config.{p.field}")
                       for p in fpga_problems(graph, run_config)]
            if refused:
                raise JobError(f"the graph cannot go to an FPGA: {refused[0]}",
                               problems=[p.to_dict() for p in refused])
            no_rtl = rtl_problems(graph, run_config) if run_config.rtl else []
            if no_rtl:
                raise JobError("config.rtl: the Verilog path does not apply: " + no_rtl[0],
                               problems=[{"field": "config.rtl", "node": None,
                                          "message": why} for why in no_rtl])
            warnings = [p.to_dict() for p in fpga_warnings(graph)]
            steps = fpga_steps(run_config)
        else:
            assert isinstance(run_config, BenchmarkSettings)
            steps = len(run_config.backends) * len(run_config.batch_sizes)
        if weights is not None:
            source, local = weights_source(owner=owner, weights=weights, graph_id=graph_id,
                                           kind=kind)
            mismatch = weights_mismatch(graph, local)
            if mismatch:
                raise JobError(f"the weights of run {source.id} do not fit this graph: "
                               f"{mismatch}", field="weights")
    if isinstance(run_config, FpgaSettings):
        queue = "fpga"
    else:
        device = getattr(run_config, "device", "auto")
        queue = {"cpu": "cpu", "cuda": "gpu"}.get(device, settings.JOB_AUTO_QUEUE)
    if isinstance(run_config, TrainConfig) and run_config.gpus > 1:
        _check_gpus(run_config.gpus, queue)
    return RunPlan(kind=kind, settings=run_config, queue=queue,
                   time_limit=time_limit or limit, total_steps=steps, options=options,
                   graph=graph, weights_of=source, warnings=warnings)


def _check_gpus(gpus: int, queue: str) -> None:
    """A run on several devices goes to one worker that has them all: refused when the
    queue's registered workers all have fewer (GPUs; cores on the cpu queue). With none
    registered it waits, as any run does, for a worker to come (the queue's status says
    none serves it)."""
    most = workers.most_devices(queue)
    if most == 0 or most >= gpus:
        return
    what = "CPU cores" if queue == "cpu" else "GPUs"
    message = (f"config.gpus: {gpus} {what} were asked for, but the {queue} queue's workers "
               f"have at most {most} {what}")
    raise JobError(message, problems=[{"field": "config.gpus", "node": None,
                                       "message": message}])


def _a_run(kind: str) -> str:
    """"a benchmark run", "an FPGA run": a kind in a sentence."""
    return "an FPGA run" if kind == kinds.FPGA else f"a {kind} run"


def fpga_steps(config: FpgaSettings) -> int:
    """An FPGA run's steps: the project built and compared, its archive, each width of the
    sweep and (when asked) the Verilog."""
    return 2 + len(config.sweep_bits) + (1 if config.rtl else 0)


WEIGHTS_FILE = "model.safetensors"  # a training run's weights, in its folder


def weights_source(*, owner: AbstractBaseUser | None, weights: int,
                   graph_id: int | None, kind: str = kinds.BENCHMARK) -> tuple[Job, Path]:
    """The training run a benchmark (or an FPGA run: `kind`) takes its weights from: one of
    `owner`'s, of the graph `graph_id` (unless None), that succeeded and kept its weights;
    and a local copy of them (from the store). A JobError naming the field `weights` says
    why not (404 for a run that is not the owner's)."""
    source = (Job.objects.filter(owner=owner, id=weights).select_related("graph").first()
              if owner is not None and owner.is_authenticated else None)
    if source is None:
        raise JobError(f"weights: you have no run {weights}", status=404, field="weights")
    if source.kind != kinds.TRAIN:
        raise JobError(f"weights: run {source.id} is a {source.kind} run; weights come from "
                       "a training run", field="weights")
    if graph_id is not None and source.graph_id != graph_id:
        raise JobError(f"weights: run {source.id} trained another graph "
                       f"({source.graph.name!r}); {_a_run(kind)} takes the weights of a run "
                       "of the graph it runs", field="weights")
    if source.status != Status.SUCCEEDED:
        raise JobError(f"weights: run {source.id} has not succeeded (it is {source.status}); "
                       f"{_a_run(kind)} takes the weights of a finished training run",
                       field="weights")
    local = store.local(source, WEIGHTS_FILE) if "weights" in source.files else None
    if local is None:
        raise JobError(f"weights: run {source.id} has no weights file", field="weights")
    return source, local


def weights_mismatch(graph: CheckedGraph, path: Path) -> str:
    """Why the safetensors file at `path` cannot be loaded into `graph`'s model (names
    missing or unexpected, shapes that differ: the first few), or "" when it can. Reads the
    file's header only, and builds the model on the meta device (no memory, no compute)."""
    expected = {name: tuple(t.shape) for name, t in
                materialize(graph, graph.analysis, "meta").state_dict().items()}
    try:
        with safe_open(str(path), framework="pt") as file:
            found = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types
        return f"the file cannot be read ({type(exc).__name__})"
    problems = [f"{name} is missing" for name in expected if name not in found]
    problems += [f"{name} is not in the graph" for name in found if name not in expected]
    problems += [f"{name} is {list(found[name])} in the file and {list(shape)} in the graph"
                 for name, shape in expected.items() if name in found and found[name] != shape]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def problems_of(error: JobError) -> list[dict[str, Any]]:
    """A JobError's problems, each a `Problem` ({field, message, node}): the settings' and
    the graph's as they are, the fit's sentences and a lone message under the error's
    field."""
    found = error.details.get("problems") or [str(error)]
    return [p if isinstance(p, dict) else {"field": error.field, "message": p, "node": None}
            for p in found]


def lineage_dataset(version: GraphVersion, dataset: str | None, upload: Upload | None,
                    options: dict[str, Any] | None
                    ) -> tuple[str | None, dict[str, Any] | None]:
    """The dataset and options of a training run given neither a dataset nor an upload:
    for a version that starts from a derived model's weights, the built-in dataset of the
    run it came from (InitialWeights.lineage), with its options unless some are given."""
    if dataset is not None or upload is not None or version.initial_weights_id is None:
        return dataset, options
    lineage = (InitialWeights.objects.filter(id=version.initial_weights_id)
               .values_list("lineage", flat=True).first())
    if not isinstance(lineage, dict) or lineage.get("dataset") not in DATASETS:
        return dataset, options
    kept = lineage.get("dataset_options")
    return lineage["dataset"], options if options is not None else (
        kept if isinstance(kept, dict) else None)


def submit_job(*, owner: AbstractBaseUser, graph: Graph, version: GraphVersion,
               kind: str = kinds.TRAIN, dataset: str | None = None,
               upload: Upload | None = None, dataset_options: dict[str, Any] | None = None,
               config: dict[str, Any] | None = None, time_limit: int | None = None,
               weights: int | None = None, published: bool = False) -> Job:
    """Check everything a run needs (check_run), then queue it. Nothing is queued on any
    problem. A training run given neither a dataset nor an upload takes its derived
    model's (lineage_dataset)."""
    if kind == kinds.TRAIN:
        dataset, dataset_options = lineage_dataset(version, dataset, upload, dataset_options)
    plan = check_run(document=version.document, kind=kind, owner=owner, graph_id=graph.id,
                     dataset=dataset, upload=upload, dataset_options=dataset_options,
                     config=config, time_limit=time_limit, weights=weights)

    limits = rule.limits_for(owner.pk)
    run_seconds = _check_run_quota(limits, plan, time_limit)

    with transaction.atomic():
        # Lock the owner's row so that two submissions at once count each other (PostgreSQL;
        # SQLite takes its write lock at the insert below and serializes them anyway).
        # (The user model by name: a browser session's request.user is a lazy proxy.)
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        queued = Job.objects.filter(owner=owner, status=Status.QUEUED).count()
        if queued >= limits.max_queued:
            raise JobError(f"you have {queued} runs waiting in the queue, the most allowed "
                           f"(your quota: {limits.max_queued} queued runs; "
                           "SHIPYARD_MAX_QUEUED_JOBS by default); cancel one or wait for "
                           "one to start", status=429, limit="max_queued",
                           value=limits.max_queued, actual=queued)
        if plan.queue == "gpu":
            used = rule.gpu_hours([owner.pk]).get(owner.pk, (0.0, 0.0))
            _check_gpu_hours(limits, used)
        _check_queued_time(owner, run_seconds)
        job = Job.objects.create(
            owner=owner, graph=graph, version=version, kind=plan.kind,
            dataset="upload" if upload else dataset or "", dataset_options=plan.options,
            upload=upload, config=plan.settings.model_dump(), weights_of=plan.weights_of,
            queue=plan.queue, time_limit=run_seconds, total_steps=plan.total_steps,
            published=published)
        events.store(job.id, [events.status_event(job)])
    job.refresh_from_db()
    try:
        enqueue(job)
    except Exception as exc:  # the broker is unreachable: say so, and leave no ghost run
        reason = f"the run queue (Redis) could not be reached: {exc}"
        fail_queued(job, reason)
        raise JobError(reason, status=503) from None
    events.notify_queue()
    return job


def fail_queued(job: Job, reason: str) -> bool:
    """End a queued run failed, with the reason (its token could not be sent)."""
    return _finish(job, Status.FAILED, error=reason, from_status=Status.QUEUED)


def _check_run_quota(limits: rule.Limits, plan: RunPlan, asked: int | None) -> int:
    """The run's time limit within the owner's quota (their longest run time when they
    gave none), and its model within their largest model; a 400 naming the limit, its
    value and the figure otherwise."""
    cap = limits.max_run_seconds
    if asked is not None and asked > cap:
        raise JobError(f"your quota allows runs of at most {_duration(cap)} ({cap:,} s); "
                       f"this one asks for {_duration(asked)} ({asked:,} s): give it a "
                       "shorter time_limit", field="time_limit", limit="max_run_seconds",
                       value=cap, actual=asked)
    params = plan.graph.analysis.params
    if limits.max_parameters is not None and params > limits.max_parameters:
        raise JobError(f"your quota allows models of at most {limits.max_parameters:,} "
                       f"parameters; this one has {params:,}", limit="max_parameters",
                       value=limits.max_parameters, actual=params)
    return min(plan.time_limit, cap)


def _check_gpu_hours(limits: rule.Limits, used: tuple[float, float]) -> None:
    """A 429 when the owner's GPU-hours of the last day or week are used up."""
    for name, label, limit, hours in (("gpu_hours_per_day", "a day", limits.gpu_hours_per_day,
                                       used[0]),
                                      ("gpu_hours_per_week", "a week",
                                       limits.gpu_hours_per_week, used[1])):
        if limit is not None and hours >= limit:
            raise JobError(f"your quota allows {limit:g} GPU-hours {label}; your gpu runs "
                           f"have taken {hours:.2f} in the last "
                           f"{'24 hours' if name.endswith('day') else '7 days'}: wait, or "
                           "run it on the cpu queue", status=429, limit=name, value=limit,
                           actual=round(hours, 3))


def _check_queued_time(owner: AbstractBaseUser, time_limit: int) -> None:
    """Refuse a run that would put more than the owner's share of work in the queues: the
    time limits of their queued and running runs, this one's included, may add up to at
    most SHIPYARD_MAX_QUEUED_SECONDS_PER_USER. Accounts less than a day old share one more
    budget, SHIPYARD_MAX_QUEUED_SECONDS_NEW_ACCOUNTS, so that accounts made in a row
    (sign-up is open) cannot each bring a full share. A run's time limit is what it may
    cost: the queue cannot know sooner how long it takes."""
    active = Job.objects.filter(status__in=Job.ACTIVE)
    mine = active.filter(owner=owner).aggregate(s=Sum("time_limit"))["s"] or 0
    cap = settings.JOB_MAX_QUEUED_SECONDS_PER_USER
    if mine + time_limit > cap:
        raise JobError(f"your queued and running runs may take {_duration(mine)} (the sum "
                       f"of their time limits) and this one {_duration(time_limit)}; the "
                       f"most one user may have waiting or running is {_duration(cap)} "
                       "(SHIPYARD_MAX_QUEUED_SECONDS_PER_USER): give it a shorter "
                       "time_limit, or wait for a run to end", status=429,
                       queued_seconds=mine, cap_seconds=cap)
    new = timezone.now() - NEW_ACCOUNT_AGE
    joined = getattr(owner, "date_joined", None)
    if joined is None or joined <= new:
        return
    newcomers = active.filter(owner__date_joined__gt=new).aggregate(
        s=Sum("time_limit"))["s"] or 0
    shared = settings.JOB_MAX_QUEUED_SECONDS_NEW_ACCOUNTS
    if newcomers + time_limit > shared:
        raise JobError(f"accounts less than a day old have runs that may take "
                       f"{_duration(newcomers)} queued or running, and this one "
                       f"{_duration(time_limit)}; together they may have at most "
                       f"{_duration(shared)} (SHIPYARD_MAX_QUEUED_SECONDS_NEW_ACCOUNTS): try "
                       "again later, or give it a shorter time_limit", status=429,
                       queued_seconds=newcomers, cap_seconds=shared)


def _duration(seconds: int) -> str:
    """3 h 20 min, 45 min, 30 s."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "",
             f"{secs} s" if secs and not hours else ""]
    return " ".join(p for p in parts if p) or "0 s"


def stop_after(time_limit: int) -> int:
    """Seconds after which a run stops itself (with a checkpoint) to end within its limit:
    a tenth of the limit before it, at most a minute."""
    return max(5, time_limit - min(60, time_limit // 10))


def enqueue(job: Job) -> None:
    """Put a token on the job's queue: the worker that takes it starts the queue's next run
    by the rule (docs/queue.md), this one or another, so every queued run has one token
    and runs start in the rule's order whoever's token a worker holds. The token carries
    the job's id (for the logs, and to notice a run whose process died) and the queue.

    A token may start any run of its queue, so Celery's limits on it are the longest any
    run may have: its soft limit (an exception in the run) a little after such a run
    stops itself, the hard one (the process is killed) 30 s after. A run's own limit is
    kept by the run (it stops itself) and the sweep (which fails it 60 s past it)."""
    # Sent by name (tasks imports this module), with what run_job.apply_async would add
    # itself: ignore_result, without which a worker whose pool child was killed asks the
    # (absent) result backend whether the task succeeded instead of handing it on.
    longest = settings.JOB_HARD_TIME_LIMIT
    celery_app.send_task(RUN_JOB, args=[job.id], kwargs={"queue": job.queue},
                         queue=job.queue, ignore_result=True, time_limit=longest + 30,
                         soft_time_limit=stop_after(longest) + 15)


# Claiming and reporting (the worker's side)


def top_up(worker: str) -> list[str]:
    """Send a token to each queue this worker serves where a run that may start has waited
    while the worker sat idle and nothing started there for a while (twice
    SHIPYARD_QUEUE_RETRY_SECONDS plus SHIPYARD_SWEEP_SECONDS): its token was lost, e.g.
    held by a worker that was killed outright (Redis gives those back only after its
    visibility timeout, hours). Run with every sweep; returns the queues it sent to. An
    extra token is harmless: one that finds nothing to start is dropped."""
    row = Worker.objects.filter(hostname=worker).first()
    if row is None or row.draining:
        return []
    if Job.objects.filter(status=Status.RUNNING, worker=worker).count() >= row.concurrency:
        return []
    quiet = timezone.now() - timedelta(seconds=2 * settings.JOB_QUEUE_RETRY_SECONDS
                                       + settings.JOB_SWEEP_SECONDS)
    sent = []
    for name in row.queues:
        if Queue.objects.filter(name=name, paused=True).exists():
            continue
        if Job.objects.filter(queue=name, started_at__gte=quiet).exists():
            continue
        order = rule.plan([name])
        ready = [job for job in order.order.get(name, []) if job.id not in order.blocked]
        if ready and ready[0].created_at < quiet:
            log.warning("queue %s: run %s may start and waits with %s idle; its token was "
                        "lost: sending one", name, ready[0].id, worker)
            enqueue(ready[0])
            sent.append(name)
    return sent


class QueueBlocked(Exception):
    """Runs wait in the queue but none may start now: the queue is paused, the worker is
    draining, or every waiting run's owner is at a quota. The token goes back to the
    queue and comes again a little later (tasks.run_job)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OwnerBusy(QueueBlocked):
    """Every waiting run's owner has the most runs allowed running (or used their
    GPU-hours): they wait in the queue."""


def claim_job(*, job_id: int, worker: str, pid: int) -> Job | None:
    """claim_next for the queue of job `job_id` (the token's run), or None when it is
    unknown."""
    queue = Job.objects.filter(id=job_id).values_list("queue", flat=True).first()
    if queue is None:
        return None
    return claim_next(queue=queue, worker=worker, pid=pid, hint=job_id)


def claim_next(*, queue: str, worker: str, pid: int, hint: int | None = None) -> Job | None:
    """Start the queue's next run by the rule (rule.py) on this worker process: one
    winner however many claim at once. None when no run waits there; QueueBlocked when
    runs wait but none may start (paused, this worker draining, quotas).

    `hint`: the run whose token this is. If it is marked running on this worker and its
    process is gone (a SIGKILLed pool child, whose token came back), it is handed on at
    once instead of waiting for the sweep."""
    if hint is not None:
        mine = Job.objects.filter(id=hint, status=Status.RUNNING).first()
        if mine is not None:
            _recover_if_local_process_died(mine, worker)
    # Cancelled while they were being handed on (lost, or released by a worker shutting
    # down): the cancel stands; they do not start again.
    for job in Job.objects.filter(queue=queue, status=Status.QUEUED, cancel_requested=True):
        _finish(job, Status.CANCELLED, from_status=Status.QUEUED, if_cancel_requested=True,
                error=f"cancelled at step {job.step}; the last checkpoint is kept")
    waiting = Job.objects.filter(queue=queue, status=Status.QUEUED)
    if Worker.objects.filter(hostname=worker, draining=True).exists():
        if waiting.exists():
            raise QueueBlocked(f"the worker {worker} is draining")
        return None
    Queue.objects.get_or_create(name=queue)
    now = timezone.now()
    with transaction.atomic():
        # Claims of one queue take turns (PostgreSQL; SQLite's write lock, taken when the
        # transaction begins, serializes them anyway), so each sees the others' starts.
        state = Queue.objects.select_for_update().get(name=queue)
        if state.paused:
            if waiting.exists():
                raise QueueBlocked(f"the {queue} queue is paused")
            return None
        order = rule.plan([queue])
        if not order.order[queue]:
            return None
        claimed: Job | None = None
        room = _devices_of(worker)
        too_big: list[Job] = []
        for job in order.order[queue]:
            if job.id in order.blocked:
                continue
            if _devices_asked(job) > room:  # left for a worker with enough devices
                too_big.append(job)
                continue
            # The owner's row locked, their running runs counted again: a claim in another
            # queue may have started one of theirs meanwhile.
            get_user_model().objects.select_for_update().filter(pk=job.owner_id).first()
            running = Job.objects.filter(owner_id=job.owner_id, status=Status.RUNNING).count()
            if rule.running_block(order.limits[job.owner_id], running):
                continue
            if Job.objects.filter(id=job.id, status=Status.QUEUED,
                                  cancel_requested=False).update(
                    status=Status.RUNNING, attempts=F("attempts") + 1, worker=worker,
                    worker_pid=pid, heartbeat_at=now, started_at=now,
                    release_requested=False, error=""):
                claimed = job
                break
        if claimed is None:
            if too_big and not order.blocked:
                raise QueueBlocked(f"the waiting runs ask for more devices than the "
                                   f"{room} of the worker {worker}")
            raise OwnerBusy(next((order.blocked[j.id] for j in order.order[queue]
                                  if j.id in order.blocked),
                                 "every waiting run is held by a quota"))
    job = claimed
    job.refresh_from_db()
    with contextlib.suppress(ValueError):  # no CUDA here: the runner fails it with the reason
        job.device = str(pick_device(job.config.get("device", "auto")))
    Job.objects.filter(id=job.id).update(device=job.device)
    events.record_status(job)
    return job


def _devices_asked(job: Job) -> int:
    """The devices a run trains on (`config.gpus`; 1 when it does not say)."""
    gpus = job.config.get("gpus", 1) if isinstance(job.config, dict) else 1
    return gpus if isinstance(gpus, int) and gpus >= 1 else 1


def _devices_of(worker: str) -> float:
    """How many devices the worker `worker` may give one run; unlimited when it has not
    registered (a worker registers when it starts: `workers.register`)."""
    row = Worker.objects.filter(hostname=worker).only("device", "memory").first()
    return workers.devices(row) if row is not None else math.inf


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover_if_local_process_died(job: Job, worker: str) -> None:
    """A job delivered again while marked running: if the process that ran it belonged to
    this worker and is gone (a SIGKILLed pool child), hand it on now instead of waiting
    for the sweep to notice the missing heartbeat."""
    if job.worker == worker and job.worker_pid and not _pid_alive(job.worker_pid):
        lose_job(job, f"the worker process {job.worker_pid} on {job.worker} died")


def heartbeat(job: Job, step: int, metrics: dict[str, float | str]) -> bool:
    """Record that this attempt is alive at `step`, with the latest metrics (as
    `events.stored_metrics` gives them). False when the job is no longer this attempt's to
    run (cancelled, handed on by the sweep, finished)."""
    return bool(Job.objects.filter(id=job.id, status=Status.RUNNING, attempts=job.attempts)
                .update(heartbeat_at=timezone.now(), step=step, metrics=metrics))


def record_result(job: Job, result: events.RunResult | None) -> bool:
    """Keep what this attempt of a benchmark measured so far on its row (None: nothing,
    for an attempt that starts again). False when the job is no longer this attempt's."""
    return bool(Job.objects.filter(id=job.id, status=Status.RUNNING, attempts=job.attempts)
                .update(result=result or {}))


def stop_requested(job: Job) -> str:
    """"cancel" when its owner cancelled it, "gone" when its row was deleted (its graph
    was), "shutdown" when its worker is shutting down, else ""."""
    flags = Job.objects.filter(id=job.id).values_list("cancel_requested",
                                                      "release_requested").first()
    if flags is None:
        return "gone"
    if flags[0]:
        return "cancel"
    return "shutdown" if flags[1] else ""


def release_jobs_of(worker: str) -> int:
    """Ask the runs of a worker that is shutting down to checkpoint and requeue."""
    return Job.objects.filter(status=Status.RUNNING, worker=worker).update(
        release_requested=True)


def _finish(job: Job, status: str, *, error: str = "", from_status: str = Status.RUNNING,
            attempt: int | None = None, if_cancel_requested: bool = False,
            **values: Any) -> bool:
    """End the job if it is in `from_status` (at `attempt`; only if a cancel was asked for,
    with `if_cancel_requested`)."""
    rows = Job.objects.filter(id=job.id, status=from_status)
    if attempt is not None:
        rows = rows.filter(attempts=attempt)
    if if_cancel_requested:
        rows = rows.filter(cancel_requested=True)
    changed = rows.update(status=status, error=error, finished_at=timezone.now(), **values)
    if changed:
        job.refresh_from_db()
        events.record_status(job)
    return bool(changed)


def finish_job(job: Job, status: str, *, error: str = "", step: int | None = None,
               metrics: Mapping[str, float | str] | None = None,
               files: dict[str, str] | None = None) -> bool:
    """End this attempt's run: succeeded, failed or cancelled."""
    values: dict[str, Any] = {}
    if step is not None:
        values["step"] = step
    if metrics is not None:
        values["metrics"] = events.stored_metrics(metrics)
    if files is not None:
        values["files"] = files
    return _finish(job, status, error=error, attempt=job.attempts, **values)


def release_job(job: Job, step: int, reason: str) -> None:
    """Put a running job back in the queue, uncounted (its worker is shutting down), or end
    it cancelled if its owner cancelled it meanwhile."""
    if _finish_cancelled(job, step):
        return
    # A cancel landing after the look above goes to the queue with the job; the claim
    # honours it.
    changed = Job.objects.filter(id=job.id, status=Status.RUNNING, attempts=job.attempts).update(
        status=Status.QUEUED, attempts=F("attempts") - 1, step=step, worker="",
        worker_pid=None, error=reason)
    if changed:
        job.refresh_from_db()
        events.record_status(job)
        enqueue(job)


def lose_job(job: Job, reason: str) -> None:
    """The job's worker is gone: try again (from its last checkpoint) while attempts are
    left, else fail it with the reason. A run its owner asked to cancel ends cancelled:
    the cancel is not lost with the attempt that heard it."""
    if _finish_cancelled(job, job.step):
        return
    if job.attempts < settings.JOB_MAX_ATTEMPTS:
        changed = Job.objects.filter(id=job.id, status=Status.RUNNING,
                                     attempts=job.attempts).update(
            status=Status.QUEUED, worker="", worker_pid=None,
            error=f"{reason}; {_again(job)}")
        if changed:
            job.refresh_from_db()
            events.record_status(job)
            enqueue(job)
    else:
        _finish(job, Status.FAILED, attempt=job.attempts,
                error=f"{reason}; gave up after {job.attempts} attempts")


def _again(job: Job) -> str:
    """How a run handed on starts again: training from its last checkpoint, a benchmark
    from its first measurement."""
    if job.kind == kinds.TRAIN:
        return "trying again from the last checkpoint"
    return "trying again from its first measurement"


def _finish_cancelled(job: Job, step: int) -> bool:
    """End this attempt's run cancelled if a cancel was asked for; True if it did."""
    return _finish(job, Status.CANCELLED, attempt=job.attempts, if_cancel_requested=True,
                   step=step, error=f"cancelled at step {step}; the last checkpoint is kept")


def sweep() -> list[int]:
    """Hand on or fail every running job whose heartbeat stopped, and fail those past
    their time limit. Returns the ids it changed. Safe to run anywhere, any number of
    times at once (each change is conditional)."""
    now = timezone.now()
    timeout = settings.JOB_HEARTBEAT_TIMEOUT
    changed = []
    for job in Job.objects.filter(status=Status.RUNNING,
                                  heartbeat_at__lt=now - timedelta(seconds=timeout)):
        lose_job(job, f"the worker {job.worker or '?'} stopped answering (no heartbeat for "
                      f"{timeout} s)")
        changed.append(job.id)
    for job in Job.objects.filter(status=Status.RUNNING, started_at__isnull=False):
        assert job.started_at is not None
        overdue = now - job.started_at > timedelta(seconds=job.time_limit + 60)
        if overdue and _finish(job, Status.FAILED, attempt=job.attempts,
                               error=f"the run reached its time limit of {job.time_limit} s"):
            changed.append(job.id)
    return changed


# The owner's side


def cancel_job(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop (it keeps its last
    checkpoint and ends cancelled within a few seconds)."""
    for _ in range(3):  # the job may start between the two updates: look again
        if _finish(job, Status.CANCELLED, from_status=Status.QUEUED, cancel_requested=True):
            return job
        if Job.objects.filter(id=job.id, status=Status.RUNNING).update(cancel_requested=True):
            job.refresh_from_db()
            return job
        job.refresh_from_db()
        if job.finished:
            raise JobError(f"run {job.id} has already {job.status}", status=409)
    return job


def delete_job(job: Job) -> None:
    """Delete a run: its row, its events and its folder (checkpoints, results). One still
    going is cancelled first; its worker stops at its next poll (within a second) and
    leaves no file behind. A training run whose weights a benchmark waiting or going
    takes is kept (409) until that benchmark ends."""
    users = list(Job.objects.filter(weights_of=job, status__in=Job.ACTIVE)
                 .values_list("id", flat=True))
    if users:
        raise JobError(f"run {job.id}'s weights are taken by benchmark run(s) "
                       f"{', '.join(map(str, users))}, still queued or running; cancel them "
                       "or wait for them to end", status=409)
    stop_runs([job])
    job_id = job.id
    job.delete()
    try:
        store.clear_job(job_id)
    except store.StoreError as exc:  # the row is gone: the files are orphans, said in the log
        log.warning("run %s deleted; its files are left in the store: %s", job_id, exc)


def stop_runs(jobs: list[Job]) -> None:
    """Cancel the runs still queued or running, before their rows are deleted: a worker
    that finds its job cancelled, or gone, stops at once and writes nothing more."""
    for job in jobs:
        if not job.finished:
            Job.objects.filter(id=job.id, status__in=Job.ACTIVE).update(
                status=Status.CANCELLED, cancel_requested=True, finished_at=timezone.now(),
                error="cancelled: it was deleted")


def remove_folders(jobs: list[Job]) -> None:
    """The folders of runs whose rows are gone (their graph was deleted)."""
    for job in jobs:
        try:
            store.clear_job(job.id)
        except store.StoreError as exc:
            log.warning("run %s deleted; its files are left in the store: %s", job.id, exc)


def graph_deleting(sender: type, *, graph: Graph, **kwargs: Any) -> None:
    """builder.graphs' `graph_deleting` receiver (connected in JobsConfig.ready): the
    graph's runs still going are cancelled (their rows go with the graph's), and their
    folders are removed once the deletion is committed."""
    runs = list(Job.objects.filter(graph=graph))
    stop_runs(runs)
    transaction.on_commit(lambda: remove_folders(runs))


def user_deleting(sender: type, *, instance: Any, **kwargs: Any) -> None:
    """The user model's `pre_delete` receiver (connected in JobsConfig.ready): a user's runs
    and uploads go with their row (cascades); their runs still going are cancelled, and
    their files (runs' folders, uploaded datasets) are deleted from the store once the
    deletion is committed, so that no file of a deleted account stays behind."""
    runs = list(Job.objects.filter(owner=instance))
    stop_runs(runs)
    uploads = list(Upload.objects.filter(owner=instance).values_list("file", flat=True))

    def remove() -> None:
        remove_folders(runs)
        for file in uploads:
            try:
                store.delete_upload(file)
            except store.StoreError as exc:
                log.warning("upload %s of a deleted user is left in the store: %s", file, exc)

    transaction.on_commit(remove)


def set_published(job: Job, published: bool) -> Job:
    Job.objects.filter(id=job.id).update(published=published)
    if not published:
        access.access_changed(events.group_name(job.id))  # its share-link watchers stop
    job.refresh_from_db()
    return job


# Uploads


def create_upload(*, owner: AbstractBaseUser, name: str, content: bytes, kind: str,
                  target: str | None = None, task: str = "classification", source: str = "",
                  licence: str = "") -> Upload:
    """Check an uploaded CSV or text as a run would read it, then keep it, with where it
    comes from and its licence as its owner declared them (empty: not declared)."""
    import uuid

    from compute.engine.datasets import MAX_UPLOAD_BYTES

    if kind not in Upload.Kind.values:
        raise JobError(f"kind must be csv or text, got {kind!r}")
    if len(content) > MAX_UPLOAD_BYTES:
        raise JobError(f"{name} is {len(content):,} bytes; the limit is "
                       f"{MAX_UPLOAD_BYTES:,} bytes", status=413)
    _check_upload_quota(owner, name, len(content))  # before reading it: saves the work
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobError(f"{name} is not UTF-8 text (byte {exc.start:,} is not valid)") from None
    if "\x00" in text:  # a binary file; PostgreSQL's JSON (a run's manifest) cannot hold it
        raise JobError(f"{name} holds a NUL character (byte {content.index(0):,}); a text or "
                       "a CSV has none: is it a binary file?")
    try:
        if kind == Upload.Kind.CSV:
            if task not in ("classification", "regression"):
                raise JobError(f"a CSV trains classification or regression, not {task!r}")
            data = csv_dataset(text, target=target or None, task=task,  # type: ignore[arg-type]
                               name=name)
            n, features = len(data.x_train) + len(data.x_val), data.x_train.shape[1]
            what = (f"{data.info.classes} classes" if task == "classification"
                    else f"{data.info.targets} value(s) to predict")
            summary = f"{n:,} rows, {features} features, {what}"
        else:
            task = "next_token"
            data = text_dataset(text, name=name)
            summary = f"{len(text):,} characters"
    except DatasetError as exc:
        raise JobError(str(exc)) from None
    folder = f"{owner.pk}"
    file = f"{folder}/{uuid.uuid4().hex}.{'csv' if kind == 'csv' else 'txt'}"
    with transaction.atomic():
        # The owner's row locked: two uploads at once count each other (as submit_job).
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        _check_upload_quota(owner, name, len(content))  # again: counting any made meanwhile
        upload = Upload.objects.create(owner=owner, name=name[:200], kind=kind, task=task,
                                       target=target or "", size=len(content),
                                       summary=summary, file=file, source=source[:500],
                                       licence=licence[:200])
        store.save_upload(file, content)  # a failure undoes the row (StoreError: 503)
    return upload


def _check_upload_quota(owner: AbstractBaseUser, name: str, size: int) -> None:
    """At most SHIPYARD_MAX_UPLOADS_PER_USER uploads of SHIPYARD_MAX_UPLOAD_BYTES_PER_USER
    bytes together per user, this one included."""
    kept = Upload.objects.filter(owner=owner).aggregate(n=Count("id"), bytes=Sum("size"))
    count, used = kept["n"], kept["bytes"] or 0
    if count >= settings.UPLOADS_MAX_PER_USER:
        raise JobError(f"you have {count} uploads, the most one user may keep "
                       "(SHIPYARD_MAX_UPLOADS_PER_USER); delete one first", status=429)
    cap = settings.UPLOADS_MAX_BYTES_PER_USER
    if used + size > cap:
        raise JobError(f"{name} is {size:,} bytes and your uploads already take {used:,}; "
                       f"the most one user may keep is {cap:,} bytes "
                       "(SHIPYARD_MAX_UPLOAD_BYTES_PER_USER): delete some first",
                       status=413)


def delete_upload(upload: Upload) -> None:
    if upload.jobs.exists():
        raise JobError(f"{upload.name} is the dataset of {upload.jobs.count()} run(s); "
                       "delete those runs first (DELETE /api/jobs/{id})", status=409)
    store.delete_upload(upload.file)
    upload.delete()
