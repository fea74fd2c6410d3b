"""Which queued run starts next, and why a run waits: quotas, the start order (THE RULE of
docs/queue.md) and the reasons users see. Reads only; the claim (services.claim_next) and
the administrators' side (queue.py) build on it.

THE RULE, per queue: among its waiting runs that are not blocked (their owner at the
running-runs or GPU-hours quota), the highest priority first; among equal priority, the
oldest run of the user with the fewest runs going in that queue right now; between users
with as many runs going, the user whose last run in that queue started longest ago (one
that never started one first); then the oldest run.

The order a queue's waiting runs will start in is that rule applied again and again, each
pick counted as one more run going for its user. Runs whose owner is (or would be) over
a quota come after the others, in priority and age order: they start once their owner's
runs end. A paused queue keeps its order: it is the order the runs start in once resumed.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from .models import Job, Queue, Quota, Worker

QUEUES = ("cpu", "gpu", "fpga")
Status = Job.Status
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


# Quotas


@dataclass(frozen=True)
class Limits:
    """One user's limits: None is no limit."""

    max_queued: int
    max_running: int
    max_run_seconds: int
    max_parameters: int | None
    gpu_hours_per_day: float | None
    gpu_hours_per_week: float | None


LIMIT_NAMES = tuple(f.name for f in fields(Limits))

# What each limit is called in sentences and the setting of its default.
SETTING = {"max_queued": "SHIPYARD_MAX_QUEUED_JOBS", "max_running": "SHIPYARD_MAX_RUNNING_JOBS",
           "max_run_seconds": "SHIPYARD_MAX_RUN_SECONDS",
           "max_parameters": "SHIPYARD_MAX_PARAMETERS",
           "gpu_hours_per_day": "SHIPYARD_GPU_HOURS_PER_DAY",
           "gpu_hours_per_week": "SHIPYARD_GPU_HOURS_PER_WEEK"}


def default_limits() -> Limits:
    """The limits in settings (SHIPYARD_* in the environment; 0 is no limit where a limit
    may be absent)."""
    return Limits(
        max_queued=settings.JOB_MAX_QUEUED_PER_USER,
        max_running=settings.JOB_MAX_RUNNING_PER_USER,
        max_run_seconds=min(settings.JOB_QUOTA_MAX_RUN_SECONDS, settings.JOB_HARD_TIME_LIMIT),
        max_parameters=settings.JOB_QUOTA_MAX_PARAMETERS or None,
        gpu_hours_per_day=settings.JOB_QUOTA_GPU_HOURS_PER_DAY or None,
        gpu_hours_per_week=settings.JOB_QUOTA_GPU_HOURS_PER_WEEK or None)


def limits_of(user_ids: Iterable[int]) -> dict[int, Limits]:
    """Each user's limits (two queries): per limit, the user's own Quota row's value if it
    has one; else the most generous value among the Quota rows of the user's groups; else
    the default."""
    ids = sorted(set(user_ids))
    base = default_limits()
    if not ids:
        return {}
    own = {row["user_id"]: row for row in
           Quota.objects.filter(user_id__in=ids).values("user_id", *LIMIT_NAMES)}
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in Quota.objects.filter(group__user__in=ids).values("group__user", *LIMIT_NAMES):
        groups[row["group__user"]].append(row)
    result = {}
    for uid in ids:
        values: dict[str, Any] = {}
        for name in LIMIT_NAMES:
            mine = own.get(uid, {}).get(name)
            theirs = [row[name] for row in groups.get(uid, []) if row[name] is not None]
            if mine is not None:
                values[name] = mine
            elif theirs:
                values[name] = max(theirs)
        if values.get("max_run_seconds") is not None:  # never past the server's hard limit
            values["max_run_seconds"] = min(values["max_run_seconds"],
                                            settings.JOB_HARD_TIME_LIMIT)
        result[uid] = replace(base, **values)
    return result


def limits_for(user_id: int) -> Limits:
    return limits_of([user_id])[user_id]


def gpu_hours(user_ids: Iterable[int], now: datetime | None = None
              ) -> dict[int, tuple[float, float]]:
    """GPU-hours each user's gpu-queue runs took in the last 24 hours and the last 7 days:
    for each attempt that started (running or ended), the part of (its end, or now, minus
    its start) inside the window, times the GPUs it holds (`config.gpus`)."""
    now = now or timezone.now()
    used: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    rows = (Job.objects.filter(owner_id__in=set(user_ids), queue="gpu",
                               started_at__isnull=False)
            .exclude(status=Status.QUEUED)
            .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=now - WEEK))
            .values_list("owner_id", "started_at", "finished_at", "config"))
    for owner, started, finished, config in rows:
        end = min(finished or now, now)
        gpus = config.get("gpus", 1) if isinstance(config, dict) else 1
        gpus = gpus if isinstance(gpus, int) and gpus >= 1 else 1
        for i, window in enumerate((DAY, WEEK)):
            seconds = (end - max(started, now - window)).total_seconds()
            if seconds > 0:
                used[owner][i] += gpus * seconds / 3600
    return {uid: (day, week) for uid, (day, week) in used.items()}


def gpu_block(limits: Limits, used: tuple[float, float]) -> str:
    """Why a user may start no more gpu runs now (a GPU-hours quota used up), or ""."""
    for (label, limit), hours in zip((("a day", limits.gpu_hours_per_day),
                                      ("a week", limits.gpu_hours_per_week)), used,
                                     strict=True):
        if limit is not None and hours >= limit:
            return (f"your quota: at most {limit:g} GPU-hours {label}; you have used "
                    f"{hours:.1f}")
    return ""


def running_block(limits: Limits, running: int) -> str:
    if running >= limits.max_running:
        return (f"your quota: at most {limits.max_running} "
                f"run{'s' if limits.max_running != 1 else ''} going at once")
    return ""


# The order


def live_workers(now: datetime | None = None) -> list[Worker]:
    """Workers that have not stopped and whose heartbeat is at most
    SHIPYARD_HEARTBEAT_TIMEOUT old."""
    now = now or timezone.now()
    return list(Worker.objects.filter(
        stopped_at__isnull=True,
        heartbeat_at__gte=now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)))


@dataclass
class Plan:
    """The queues' waiting runs in start order, and why each waits."""

    order: dict[str, list[Job]]
    position: dict[int, int]
    reason: dict[int, str]
    blocked: dict[int, str] = field(default_factory=dict)  # by quota now: the reason
    paused: dict[str, Queue] = field(default_factory=dict)
    limits: dict[int, Limits] = field(default_factory=dict)  # of the waiting runs' owners


_NEVER = (-1, 0.0)


def plan(queues: Iterable[str], *, related: bool = False) -> Plan:
    """The start order of `queues`' waiting runs with positions and reasons, in a fixed
    number of queries however many runs wait (`related`: with owner and graph loaded)."""
    names = sorted(set(queues))
    now = timezone.now()
    if not names:
        return Plan({}, {}, {})
    waiting_qs = Job.objects.filter(status=Status.QUEUED, queue__in=names).order_by(
        "created_at", "id")
    if related:
        waiting_qs = waiting_qs.select_related("owner", "graph")
    waiting = list(waiting_qs)
    order: dict[str, list[Job]] = {name: [] for name in names}
    if not waiting:
        return Plan(order, {}, {})
    owners = {job.owner_id for job in waiting}
    running_total: dict[int, int] = defaultdict(int)
    running_in: dict[tuple[int, str], int] = defaultdict(int)
    last_start: dict[tuple[int, str], tuple[int, float]] = {}
    for row in (Job.objects.filter(owner_id__in=owners).values("owner_id", "queue")
                .annotate(running=Count("id", filter=Q(status=Status.RUNNING)),
                          last=Max("started_at"))):
        key = (row["owner_id"], row["queue"])
        running_total[row["owner_id"]] += row["running"]
        running_in[key] = row["running"]
        if row["last"] is not None:
            last_start[key] = (0, row["last"].timestamp())
    limits = limits_of(owners)
    used = gpu_hours(owners, now) if "gpu" in names else {}
    paused = {q.name: q for q in Queue.objects.filter(name__in=names, paused=True)}
    serving: dict[str, list[Worker]] = defaultdict(list)
    for worker in live_workers(now):
        for name in worker.queues:
            serving[name].append(worker)

    blocked: dict[int, str] = {}
    for job in waiting:
        why = running_block(limits[job.owner_id], running_total[job.owner_id])
        if not why and job.queue == "gpu":
            why = gpu_block(limits[job.owner_id], used.get(job.owner_id, (0.0, 0.0)))
        if why:
            blocked[job.id] = why

    by_queue: dict[str, list[Job]] = defaultdict(list)
    for job in waiting:
        by_queue[job.queue].append(job)
    sim_total = dict(running_total)
    clock = itertools.count(1)
    for name in names:
        order[name] = _order(by_queue[name], running_in, last_start, sim_total, limits, used,
                             clock, name)

    position: dict[int, int] = {}
    reason: dict[int, str] = {}
    for name in names:
        workers = serving.get(name, [])
        taking = [w for w in workers if not w.draining]
        for place, job in enumerate(order[name], start=1):
            position[job.id] = place
            if name in paused:
                why = "queue paused by an administrator"
            elif not taking:
                why = (f"every worker of the {name} queue is draining" if workers
                       else f"no worker serves the {name} queue")
            elif job.id in blocked:
                why = blocked[job.id]
            elif place > 1:
                why = f"waiting for {place - 1} run{'s' if place > 2 else ''} ahead"
            else:
                why = ""
            reason[job.id] = why
    return Plan(order, position, reason, blocked, paused, limits)


def _order(jobs: list[Job], running_in: dict[tuple[int, str], int],
           last_start: dict[tuple[int, str], tuple[int, float]], sim_total: dict[int, int],
           limits: dict[int, Limits], used: dict[int, tuple[float, float]],
           clock: Iterable[int], queue: str) -> list[Job]:
    """THE RULE, applied pick after pick (module docstring). `jobs`: oldest first."""
    ticks = iter(clock)
    running = {owner: running_in.get((owner, queue), 0) for owner in {j.owner_id for j in jobs}}
    last = {owner: last_start.get((owner, queue), _NEVER) for owner in running}
    gpu_blocked = {owner for owner in running if queue == "gpu"
                   and gpu_block(limits[owner], used.get(owner, (0.0, 0.0)))}

    def over(owner: int) -> bool:
        return owner in gpu_blocked or sim_total.get(owner, 0) >= limits[owner].max_running

    result: list[Job] = []
    deferred: list[Job] = []
    levels: dict[int, dict[int, list[Job]]] = defaultdict(lambda: defaultdict(list))
    for job in jobs:
        levels[job.priority][job.owner_id].append(job)
    for priority in sorted(levels, reverse=True):
        per_user = levels[priority]
        heap = [((running[o], last[o], runs[0].created_at, runs[0].id), o)
                for o, runs in per_user.items()]
        heapq.heapify(heap)
        while heap:
            _, owner = heapq.heappop(heap)
            runs = per_user[owner]
            if over(owner):
                deferred.extend(runs)
                continue
            job = runs.pop(0)
            result.append(job)
            running[owner] += 1
            sim_total[owner] = sim_total.get(owner, 0) + 1
            last[owner] = (1, float(next(ticks)))
            if runs:
                heapq.heappush(heap, ((running[owner], last[owner], runs[0].created_at,
                                       runs[0].id), owner))
    deferred.sort(key=lambda j: (-j.priority, j.created_at, j.id))
    return result + deferred


def start_order(queue: str) -> list[Job]:
    """The queue's waiting runs in the order they will start (owner and graph loaded)."""
    return plan([queue], related=True).order[queue]


def waiting_info(jobs: Iterable[Job]) -> dict[int, tuple[int, str]]:
    """(position, reason) of each queued run among `jobs`, by id, in a fixed number of
    queries; runs not queued have none."""
    queued = [job for job in jobs if job.status == Status.QUEUED]
    if not queued:
        return {}
    result = plan({job.queue for job in queued})
    return {job.id: (result.position[job.id], result.reason[job.id]) for job in queued
            if job.id in result.position}
