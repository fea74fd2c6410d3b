"""The reliability figures: load, WebSocket fan-out, faults while a run trains, bad input.
Run by hand, never collected by pytest, never run in CI.

    .venv/bin/python tests/benchmarks/reliability.py [--only load,fanout,faults,fuzz]
        [--users 50] [--duration 120] [--wait 1] [--ws-clients 200] [--fuzz 10000]
        [--faults kill,redis,dblock,wsdrop,disk] [--lock-seconds 10] [--keep]
    .venv/bin/python tests/benchmarks/reliability.py --only faults --postgres --faults pgrestart

It starts the real stack as bench_stream.py does (its own redis-server on a free port, the
migrations, Daphne serving `builder.asgi`, SQLite in a temporary SHIPYARD_HOME, DEBUG off),
with Redis's append-only file switched on (as `shipyard up` runs it), and a real Celery
worker (`shipyard worker`'s command line, the cpu queue) for the parts that train. Then:

1. load: --users API clients (locust, headless, in a process of its own), each with its own
   account, token and char_gpt graph, saving, loading and inspecting it for --duration
   seconds, pausing --wait seconds on average between requests (0: none): requests/s,
   p50/p95/p99 per kind and overall, errors; p95 against bench_api.py's targets (measured
   there with one client);
2. fanout: --ws-clients WebSocket clients (autobahn, in a child process) on one training run
   of the real worker; at the end each client backfills over REST what it did not get live:
   events lost per client (target 0), and the delivery latency of live events (receive time
   - the event's time);
3. faults, each on a training run of its own while it trains, with one WebSocket watcher:
   kill (the worker's process group SIGKILLed, a new worker started), redis (the
   redis-server stopped and started again on the same port), dblock (an exclusive SQLite
   lock held --lock-seconds by another connection), wsdrop (the watcher's connection
   aborted mid-run, reconnected 3 s later, backfilled), disk (SHIPYARD_HOME/jobs on a small
   tmpfs filled to the last byte for --lock-seconds, then freed; needs mount rights); with
   --postgres the stack runs on a private PostgreSQL cluster and pgrestart restarts it.
   For each: what happened to the run, seconds until a new training metric is stored, the
   longest pause in the watcher's live events, events lost (gaps in the sequence numbers;
   what the watcher lacks after backfill), steps trained again (resumed from a
   checkpoint), whether a cancel then ends it (not stuck) and the error it shows;
4. fuzz: --fuzz requests in all, half from schemathesis (`schemathesis run` on
   /api/schema with a Bearer token) and half hypothesis-generated hostile graph documents
   (the strategies of tests/engine/test_properties.py, and junk JSON) POSTed to
   /api/inspect and saved as versions: 5xx answers and hangs (no answer in --timeout s).

It ends with a table of the figures against the targets. Exit code 0 when the measurement
is valid, whether or not the targets are met (this is a report); 1 when it is not (the
stack did not start, a tool failed, a client could not connect). Everything it starts it
stops on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bench_api import TARGETS_MS
from bench_stream import Clients, Stack, start_stack, stop_process
from report import Invalid, Row, percentile, print_table

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PARTS = ("load", "fanout", "faults", "fuzz")
FAULTS = ("kill", "redis", "dblock", "wsdrop", "disk", "pgrestart")
DEFAULT_FAULTS = FAULTS[:5]  # pgrestart needs --postgres
TERMINAL = ("succeeded", "failed", "cancelled")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


# ---------------------------------------------------------------------------------------
# HTTP, from the parent and from the client process (stdlib only: no gevent, no asyncio).


@dataclass
class Api:
    base: str
    token: str
    timeout: float = 30.0

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw[:300]

    def ok(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = self.call(method, path, body)
        if status != expect:
            raise Invalid(f"{method} {path}: {status} {str(answer)[:300]}")
        return answer

    def events(self, job_id: int, since: int = 0) -> list[dict[str, Any]]:
        """Every stored event of a run after `since`, page by page."""
        got: list[dict[str, Any]] = []
        while True:
            page = self.ok("GET", f"/api/jobs/{job_id}/metrics?since={since}")
            got += page["events"]
            if got:
                since = got[-1]["seq"]
            if not page["more"]:
                return got


# ---------------------------------------------------------------------------------------
# The client process: N WebSocket clients on one run that keep every event they get.
#
# One line each way, as in bench_stream: "ready {json}" once every client has its state
# message; the parent writes "stop LAST_SEQ" when the run has ended; each client then waits
# (at most 10 s) for LAST_SEQ live, backfills over REST what it lacks, and the child prints
# "result {json}" with per-client counts and the live events' latencies.


def client_main(args: argparse.Namespace) -> int:
    import txaio

    txaio.use_asyncio()
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    token = os.environ["RELIAB_TOKEN"]
    n, url, job_id = args.client, args.url, args.job
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    api = Api(f"http://{host}:{port}", token)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    live: list[dict[int, float]] = [{} for _ in range(n)]  # seq -> latency, per client
    dupes = [0] * n
    states: list[asyncio.Future[int]] = [loop.create_future() for _ in range(n)]
    errors: list[str] = []
    transports: dict[int, Any] = {}
    drop = {"dropped_at": 0.0, "back_at": 0.0, "backfilled": 0}
    # Like the documented client: a socket the server closes is opened again after 1 s, and
    # what it missed meanwhile is read over REST once its new `state` has come.
    closing = {"now": False}
    tasks: set[asyncio.Task[None]] = set()
    dropping = [False] * n
    reconnects = {"server_closed": 0, "backfilled": 0, "failed_connects": 0}
    arrivals: list[float] = []  # client 0's live events, when they came (monotonic)

    def backfill(i: int) -> None:
        have = max(live[i], default=0)
        for e in api.events(job_id, have):
            if e["seq"] not in live[i]:
                live[i][e["seq"]] = float("nan")  # held, though not live
                reconnects["backfilled"] += 1
                if dropping[i] or (i == 0 and drop["dropped_at"]):
                    drop["backfilled"] += 1

    class Client(WebSocketClientProtocol):
        index = 0

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            now = time.time()
            event = json.loads(payload)
            i = self.index
            kind = event.get("type")
            if kind == "state":
                if not states[i].done():
                    states[i].set_result(int(event.get("last_seq") or 0))
                else:  # a socket opened again
                    if i == 0 and drop["dropped_at"] and not drop["back_at"]:
                        drop["back_at"] = time.monotonic()
                    loop.run_in_executor(None, backfill, i)
                return
            if kind == "error":
                errors.append(f"client {i}: {event}")
                return
            seq = int(event.get("seq", 0))
            if i == 0:
                arrivals.append(time.monotonic())
            if seq in live[i]:
                dupes[i] += 1
            live[i][seq] = now - float(event.get("time") or now)

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            i = self.index
            if closing["now"]:
                return
            if dropping[i]:
                dropping[i] = False
                tasks.add(loop.create_task(reopen(i, args.drop_for)))
                return
            reconnects["server_closed"] += 1
            errors.append(f"client {i} closed by the server: {code} {reason}")
            tasks.add(loop.create_task(reopen(i, 1.0)))

    def connect(i: int) -> Any:
        factory = WebSocketClientFactory(url, headers={"Authorization": f"Bearer {token}"})
        cast(Any, factory).protocol = type(f"Client{i}", (Client,), {"index": i})
        return loop.create_connection(factory, host, int(port))

    async def reopen(i: int, delay: float) -> None:
        while not closing["now"]:
            await asyncio.sleep(delay)
            try:
                transports[i], _ = await connect(i)
                return
            except OSError:
                reconnects["failed_connects"] += 1

    stop_line: asyncio.Future[str] = loop.create_future()

    def read_stdin() -> None:
        line = sys.stdin.readline()

        def give() -> None:
            if not stop_line.done():
                stop_line.set_result(line)

        loop.call_soon_threadsafe(give)

    async def dropper() -> None:
        """Client 0 loses its connection (no close handshake) and comes back later."""
        await asyncio.sleep(args.drop_at)
        dropping[0] = True
        drop["dropped_at"] = time.monotonic()
        transports[0].abort()

    async def run() -> dict[str, Any]:
        began = time.perf_counter()
        for chunk in range(0, n, 25):  # a few at a time: no SYN storm on a small machine
            pairs = await asyncio.gather(*(connect(i) for i in range(chunk, min(n, chunk + 25))))
            for i, (t, _) in zip(range(chunk, min(n, chunk + 25)), pairs, strict=True):
                transports[i] = t
        await asyncio.wait_for(asyncio.gather(*states), timeout=60)
        connect_s = time.perf_counter() - began
        print("ready " + json.dumps({"clients": n, "connect_s": connect_s}), flush=True)
        threading.Thread(target=read_stdin, daemon=True).start()
        dropper_task = loop.create_task(dropper()) if args.drop_at > 0 else None
        line = await stop_line
        last = int(line.split()[1]) if line.startswith("stop ") else 0
        if dropper_task:
            await dropper_task
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and min(max(g, default=0) for g in live) < last:
            await asyncio.sleep(0.05)
        closing["now"] = True
        for t in transports.values():
            t.close()
        # The backfill a client does at the end: one REST read of the whole run, compared
        # with what each client holds.
        stored = {e["seq"] for e in await loop.run_in_executor(None, api.events, job_id, 0)}
        per_client = []
        for i in range(n):
            held = set(live[i])
            per_client.append({"live": len(held), "backfilled": len(stored - held),
                               "lost": len(set(range(1, last + 1)) - held - stored),
                               "dupes": dupes[i]})
        lat = [x for g in live for x in g.values() if x == x]
        pauses = [b - a for a, b in itertools.pairwise(arrivals)]
        return {"clients": per_client, "latencies": lat, "errors": errors[:10],
                "connect_s": connect_s, "stored": len(stored), "drop": drop, **reconnects,
                "longest_pause": max(pauses, default=0.0)}

    try:
        result = loop.run_until_complete(run())
    except Exception as exc:  # reported to the parent, which calls the run invalid
        print("result " + json.dumps({"fatal": f"{type(exc).__name__}: {exc}",
                                      "errors": errors[:10]}), flush=True)
        return 1
    print("result " + json.dumps(result), flush=True)
    return 0


class Watchers(Clients):
    """N WebSocket clients on a run, in a child process (this script with --client)."""

    def __init__(self, ctx: Context, job_id: int, n: int, drop_at: float = 0.0,
                 drop_for: float = 3.0) -> None:
        url = f"ws://127.0.0.1:{ctx.stack.ports['daphne']}/ws/jobs/{job_id}/"
        self.start(ctx.stack, n, [
            sys.executable, str(Path(__file__).resolve()), "--client", str(n), "--url", url,
            "--job", str(job_id), "--drop-at", str(drop_at), "--drop-for", str(drop_for)],
            dict(ctx.stack.env, RELIAB_TOKEN=ctx.api.token))


# ---------------------------------------------------------------------------------------
# The stack and what the parts share.


@dataclass
class Context:
    stack: Stack
    api: Api
    args: argparse.Namespace
    rows: list[Row]
    user: Any = None
    graph_id: int = 0
    workers: int = 0
    mounted: Path | None = None
    failed: bool = False  # a part's measurement failed: the exit code is 1
    postgres: Postgres | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports['daphne']}"

    def proc(self, name: str) -> subprocess.Popen[Any]:
        return next(p for k, p in self.stack.procs if k == name)

    def start_worker(self) -> None:
        from compute.serve import worker_argv

        self.workers += 1
        self.stack.start(f"worker{self.workers}",
                         worker_argv(["cpu"], concurrency=1, loglevel="warning",
                                     name=f"reliab{self.workers}@%h"), cwd=ROOT)

    def worker(self) -> subprocess.Popen[Any]:
        return self.proc(f"worker{self.workers}")

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self.api.ok("GET", f"/api/jobs/{job_id}"))

    def start_run(self, steps: int, **config: Any) -> int:
        body = {"graph": self.graph_id, "dataset": "digits",
                "config": {"steps": steps, "log_interval": 10, "eval_interval": 100,
                           "checkpoint_interval": 100, "batch_size": 32, **config}}
        return int(self.api.ok("POST", "/api/jobs", body, expect=201)["id"])

    def wait(self, job_id: int, until: Callable[[dict[str, Any]], bool], timeout: float,
             what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {job_id} not {what} after {timeout:g} s: "
                                   f"{job['status']} at step {job['step']}, {job['error']!r}")
            time.sleep(0.25)


def redis_argv(ctx: Context) -> list[str]:
    argv = [str(a) for a in cast(list[Any], ctx.proc("redis").args)]
    return [*argv[:argv.index("--appendonly")], "--appendonly", "yes",
            *argv[argv.index("--appendonly") + 2:]]


def make_users(n: int, prefix: str) -> list[tuple[Any, str]]:
    from django.contrib.auth.models import User

    from builder.accounts.services import issue_token

    made = []
    for i in range(n):
        user = User.objects.create(username=f"{prefix}-{os.getpid()}-{i}")  # no password
        made.append((user, issue_token(user=user, name=prefix)[1]))
    return made


# ---------------------------------------------------------------------------------------
# (1) load


def part_load(ctx: Context) -> None:
    args = ctx.args
    from compute.engine import load_starter

    doc_path = ctx.stack.home / "load-document.json"
    doc_path.write_text(json.dumps(load_starter("char_gpt")))
    tokens = [t for _, t in make_users(args.users, "load")]
    prefix = ctx.stack.home / "locust"
    print(f"\n== (1) load: {args.users} API clients (locust, headless), {args.duration:g} s, "
          f"ramp {args.ramp:g}/s, pause {args.wait:g} s on average between requests ==\n"
          f"  each client has its own account, token and char_gpt graph; requests: save a "
          f"version, load the graph, inspect the document (1:1:1). No throttle applies: the "
          f"API's throttles count logins, sign-ups and anonymous inspect/code/SQL only, so "
          f"none was raised.", flush=True)
    env = dict(ctx.stack.env, RELIAB_TOKENS=",".join(tokens), RELIAB_DOC=str(doc_path),
               RELIAB_WAIT=str(args.wait))
    argv = [sys.executable, "-m", "locust", "-f", str(HERE / "reliability_locust.py"),
            "--headless", "-u", str(args.users), "-r", str(args.ramp), "-t",
            f"{int(args.duration)}s", "--host", ctx.base, "--csv", str(prefix),
            "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"]
    cpu0 = {k: _cpu(ctx.proc(k).pid) for k in ("daphne", "redis")}
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=HERE, capture_output=True, text=True,
                          timeout=args.duration + 120, check=False)
    wall = time.perf_counter() - t0
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise Invalid(f"locust wrote no statistics (exit {done.returncode}):\n"
                      f"{done.stderr[-2000:]}")
    with open(stats_file) as f:
        rows = list(csv.DictReader(f))
    failures_file = Path(f"{prefix}_failures.csv")
    failures = []
    if failures_file.exists():
        with open(failures_file) as f:
            failures = list(csv.DictReader(f))
    cpu = ", ".join(f"{k} {100 * (_cpu(ctx.proc(k).pid) - c) / wall:.0f}%"
                    for k, c in cpu0.items())
    print(f"  {'request':<10}{'count':>8}{'errors':>8}{'req/s':>8}{'p50':>8}{'p95':>8}"
          f"{'p99':>8}  (ms)")
    for r in rows:
        name = r["Name"] if r["Name"] != "Aggregated" else "all"
        print(f"  {name:<10}{r['Request Count']:>8}{r['Failure Count']:>8}"
              f"{float(r['Requests/s']):>8.1f}{r['50%']:>8}{r['95%']:>8}{r['99%']:>8}")
    for failure in failures[:5]:
        print(f"  failure: {failure.get('Method')} {failure.get('Name')}: "
              f"{failure.get('Error', '')[:200]} x{failure.get('Occurrences')}")
    print(f"  CPU over the test (100% = one core): {cpu}; locust in the same 2 cores; load "
          f"average {os.getloadavg()[0]:.1f}")
    total = next(r for r in rows if r["Name"] == "Aggregated")
    errors = int(total["Failure Count"])
    ctx.rows.append(Row(f"load: requests/s, {args.users} clients",
                        f"{float(total['Requests/s']):.1f}"))
    ctx.rows.append(Row("load: errors", f"{errors}/{total['Request Count']}", "0", errors == 0))
    for r in rows:
        if r["Name"] in TARGETS_MS:
            target = TARGETS_MS[r["Name"]]
            ctx.rows.append(Row(f"load: {r['Name']} p50/p95/p99", f"{r['50%']}/{r['95%']}/"
                                f"{r['99%']} ms", f"p95 < {target:.0f} ms (bench_api)",
                                float(r["95%"]) < target))
    ctx.rows.append(Row("load: all p50/p95/p99", f"{total['50%']}/{total['95%']}/"
                        f"{total['99%']} ms"))


def _cpu(pid: int) -> float:
    """CPU seconds of `pid` and its children (the web processes under one)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# ---------------------------------------------------------------------------------------
# (2) fan-out


def part_fanout(ctx: Context) -> None:
    args = ctx.args
    print(f"\n== (2) fan-out: {args.ws_clients} WebSocket clients on one training run "
          f"(mlp on digits, {args.fanout_steps} steps, metrics every 10 steps, the real "
          f"worker) ==", flush=True)
    job_id = ctx.start_run(args.fanout_steps)
    watchers = Watchers(ctx, job_id, args.ws_clients)
    try:
        print(f"  {args.ws_clients} clients connected and had their state in "
              f"{watchers.ready['connect_s']:.1f} s", flush=True)
        job = ctx.wait(job_id, lambda j: j["status"] in TERMINAL, args.fanout_steps / 5 + 300,
                       "ended")
        result = watchers.finish(job["last_seq"])
    finally:
        watchers.close()
    clients = result["clients"]
    lost = sum(c["lost"] for c in clients)
    lat = result["latencies"]
    live = [c["live"] for c in clients]
    print(f"  run {job['status']} at step {job['step']}, {job['last_seq']} events stored; per "
          f"client live {min(live)}..{max(live)}, backfilled "
          f"{min(c['backfilled'] for c in clients)}..{max(c['backfilled'] for c in clients)}, "
          f"lost {min(c['lost'] for c in clients)}..{max(c['lost'] for c in clients)} "
          f"(all clients: {lost}); duplicates {sum(c['dupes'] for c in clients)}; sockets "
          f"closed by the server {result['server_closed']}; errors {result['errors'][:3]}")
    if not lat:
        raise Invalid("the clients received no live event")
    print(f"  delivery latency of live events (receive - event time, {len(lat)} deliveries): "
          f"p50 {ms(percentile(lat, 50))}, p95 {ms(percentile(lat, 95))}, p99 "
          f"{ms(percentile(lat, 99))}, max {ms(max(lat))}")
    if job["status"] != "succeeded":
        raise Invalid(f"the fan-out run ended {job['status']}: {job['error']}")
    ctx.rows.append(Row(f"fan-out: events lost, {args.ws_clients} clients",
                        f"{lost} of {job['last_seq']}x{len(clients)}", "0", lost == 0))
    ctx.rows.append(Row("fan-out: delivery p50/p95", f"{ms(percentile(lat, 50))} / "
                        f"{ms(percentile(lat, 95))}"))


# ---------------------------------------------------------------------------------------
# (3) faults


@dataclass
class Fault:
    name: str
    what: str
    inject: Callable[[Context, int], str]  # does it; returns what it saw; returns when over
    watcher_drop: bool = False
    # Words of a clear error that may end the run instead (a full disk: the run cannot know
    # when space comes back, so it fails saying so, its checkpoints kept).
    may_fail_with: str = ""


def inject_kill(ctx: Context, job_id: int) -> str:
    worker = ctx.worker()
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    ctx.start_worker()
    return f"worker pid {worker.pid} and its pool SIGKILLed; a new worker started"


def inject_redis(ctx: Context, job_id: int) -> str:
    from compute.serve import wait_for_port

    argv = redis_argv(ctx)
    old = ctx.proc("redis")
    t0 = time.monotonic()
    stop_process(old)
    ctx.stack.procs = [(k, p) for k, p in ctx.stack.procs if p is not old]
    with open(ctx.stack.logs["redis"], "ab") as log:
        proc = subprocess.Popen(argv, env=ctx.stack.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    ctx.stack.procs.insert(0, ("redis", proc))
    wait_for_port(ctx.stack.ports["redis"], proc, "redis-server")
    return f"redis-server stopped (SIGTERM) and up again in {time.monotonic() - t0:.1f} s"


def inject_dblock(ctx: Context, job_id: int) -> str:
    db = sqlite3.connect(ctx.stack.home / "db.sqlite3", timeout=30, isolation_level=None)
    try:
        t0 = time.monotonic()
        db.execute("BEGIN EXCLUSIVE")
        got = time.monotonic() - t0
        time.sleep(ctx.args.lock_seconds)
        db.execute("ROLLBACK")
    finally:
        db.close()
    return f"exclusive lock taken in {got:.2f} s, held {ctx.args.lock_seconds:g} s"


def inject_wsdrop(ctx: Context, job_id: int) -> str:
    time.sleep(8)  # the watcher drops at 3 s and comes back 3 s later (its own clock)
    return "the watcher's socket aborted (no close), reconnected after 3 s, backfilled"


def inject_disk(ctx: Context, job_id: int) -> str:
    assert ctx.mounted is not None
    filler = ctx.mounted / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * (1 << 20)
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
                f.flush()
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    free = shutil.disk_usage(ctx.mounted).free
    time.sleep(ctx.args.lock_seconds)
    filler.unlink()
    return (f"{ctx.mounted.name}/ (a {ctx.args.disk_mib} MiB tmpfs) filled ({free} bytes "
            f"left) for {ctx.args.lock_seconds:g} s, then freed")


def inject_pgrestart(ctx: Context, job_id: int) -> str:
    assert ctx.postgres is not None
    t0 = time.monotonic()
    done = ctx.postgres.ctl("restart", "-m", "fast")
    if done.returncode != 0:
        raise Invalid(f"pg_ctl restart failed: {done.stderr.strip()}")
    return f"PostgreSQL restarted (pg_ctl restart -m fast) in {time.monotonic() - t0:.1f} s"


@dataclass
class Postgres:
    """A private PostgreSQL cluster in a temporary folder, on a free port."""

    folder: Path
    port: int = 0

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *argv], capture_output=True, text=True, check=False,
                              timeout=120)

    def ctl(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.run("pg_ctl", "-D", str(self.folder / "data"), "-w", "-l",
                        str(self.folder / "log"), "-o",
                        f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", *argv)

    def start(self) -> str:
        from compute.serve import free_port

        if not shutil.which("initdb") or not shutil.which("pg_ctl"):
            raise Invalid("no initdb or pg_ctl on the PATH: PostgreSQL not measured")
        if os.geteuid() == 0:
            os.chown(self.folder, *_postgres_ids())
        self.port = free_port()
        done = self.run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U",
                        "postgres", "--no-sync")
        if done.returncode != 0:
            raise Invalid(f"initdb failed: {done.stderr.strip()[-500:]}")
        done = self.ctl("start")
        if done.returncode != 0:
            raise Invalid(f"pg_ctl start failed: {done.stderr.strip()[-500:]}")
        done = self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "shipyard")
        if done.returncode != 0:
            raise Invalid(f"createdb failed: {done.stderr.strip()[-500:]}")
        return f"postgres://postgres@127.0.0.1:{self.port}/shipyard"

    def stop(self) -> None:
        if self.port:
            self.ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


FAULT_TABLE = {
    "kill": Fault("kill", "worker SIGKILLed", inject_kill),
    "redis": Fault("redis", "Redis restarted", inject_redis),
    "dblock": Fault("dblock", "SQLite locked", inject_dblock),
    "wsdrop": Fault("wsdrop", "WebSocket dropped", inject_wsdrop, watcher_drop=True),
    "disk": Fault("disk", "SHIPYARD_HOME/jobs full", inject_disk,
                  may_fail_with="the worker's disk is full"),
    "pgrestart": Fault("pgrestart", "PostgreSQL restarted", inject_pgrestart),
}


def mount_tmpfs(ctx: Context) -> str:
    """SHIPYARD_HOME/jobs on a small tmpfs, before any run writes there."""
    jobs = ctx.stack.home / "jobs"
    jobs.mkdir(exist_ok=True)
    if os.geteuid() != 0:
        return "not root: no tmpfs can be mounted"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ctx.args.disk_mib}m",
                           "tmpfs", str(jobs)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"mount failed: {done.stderr.strip()}"
    ctx.mounted = jobs
    return ""


def part_faults(ctx: Context) -> None:
    args = ctx.args
    print("\n== (3) faults while a run trains (mlp on digits, checkpoint every 100 steps, "
          "metrics every 10; one WebSocket watcher each) ==", flush=True)
    for name in args.faults.split(","):
        fault = FAULT_TABLE[name]
        if name == "disk" and ctx.mounted is None:
            print(f"\n-- {fault.what}: not measured ({ctx.notes[-1] if ctx.notes else ''})")
            ctx.rows.append(Row(f"fault {fault.what}", "not measured", note="SKIPPED"))
            continue
        try:
            one_fault(ctx, fault)
        except (Invalid, OSError, TimeoutError) as exc:  # this fault's figure is missing
            print(f"  NOT MEASURED: {type(exc).__name__}: {exc}")
            ctx.rows.append(Row(f"fault {fault.what}", "measurement failed", note="FAILED"))
            ctx.failed = True
    if not args.postgres:
        print("\n-- PostgreSQL restarted: not measured here (the stack runs on SQLite); run "
              "with --postgres --faults pgrestart")


def one_fault(ctx: Context, fault: Fault) -> None:
    args = ctx.args
    print(f"\n-- {fault.what} --", flush=True)
    job_id = ctx.start_run(args.fault_steps)
    watcher = Watchers(ctx, job_id, 1, drop_at=3.0 if fault.watcher_drop else 0.0)
    outcome = "?"
    recovered: float | None = None
    try:
        job = ctx.wait(job_id, lambda j: j["status"] == "running" and j["step"] >= 250, 180,
                       "past step 250")
        step0, attempts0 = job["step"], job["attempts"]
        t0 = time.monotonic()
        seen = fault.inject(ctx, job_id)
        over = time.monotonic()
        after = ctx.job(job_id)
        step1, seq1 = after["step"], after["last_seq"]
        print(f"  at step {step0}: {seen}; fault over after {over - t0:.1f} s (step "
              f"{step1} then)", flush=True)

        def moving(j: dict[str, Any]) -> bool:  # a training metric stored after the fault
            if j["status"] in TERMINAL:
                return True
            page = ctx.api.ok("GET", f"/api/jobs/{job_id}/metrics?since={seq1}&types=metric")
            return j["status"] == "running" and bool(page["events"])

        try:
            job = ctx.wait(job_id, moving, args.recover_timeout, "training again")
            if job["status"] == "running":
                recovered = time.monotonic() - over
                outcome = (f"a new training metric stored {recovered:.1f} s after the fault "
                           f"({time.monotonic() - t0:.1f} s after it began), attempt "
                           f"{job['attempts']}")
            else:
                outcome = f"ended {job['status']}: {job['error']!r}"
        except TimeoutError as exc:
            outcome = f"STUCK: {exc}"
        status, _ = ctx.api.call("POST", f"/api/jobs/{job_id}/cancel")
        asked = time.monotonic()
        cancel_s: float | None = None
        try:
            job = ctx.wait(job_id, lambda j: j["status"] in TERMINAL, 120, "ended")
            cancel_s = time.monotonic() - asked
            ended = (f"cancel {status} -> {job['status']} at step {job['step']}, "
                     f"{cancel_s:.1f} s later")
        except TimeoutError as exc:
            ended = f"cancel {status} -> STUCK ({exc})"
        time.sleep(1)
        job = ctx.job(job_id)
        result = watcher.finish(job["last_seq"])
    finally:
        watcher.close()
    stored = ctx.api.events(job_id)
    seqs = [e["seq"] for e in stored]
    gaps = sorted(set(range(1, job["last_seq"] + 1)) - set(seqs))
    client = result["clients"][0]
    checkpoints = sorted(p.name for p in (ctx.stack.home / "jobs" / str(job_id) /
                                          "checkpoints").glob("*"))
    statuses = [f"{e.get('status')}: {e.get('message') or e.get('error') or ''}".strip()
                for e in stored if e["type"] == "status"]
    print(f"  outcome: {outcome}")
    if job["attempts"] > attempts0:
        running = [e["seq"] for e in stored if e["type"] == "status"
                   and e.get("status") == "running"]
        first = next((e for e in stored if e["type"] == "metric" and e["seq"] > running[-1]),
                     None)
        if first is not None:
            print(f"  attempt {job['attempts']} resumed from a checkpoint: its first metric is "
                  f"at step {first['step']} (the run was at step {step1}): about "
                  f"{max(0, step1 - first['step'] + 10)} steps trained again")
    print(f"  then: {ended}; error shown: {job['error']!r}")
    print(f"  status events: {statuses[-6:]}")
    print(f"  events: {job['last_seq']} stored, gaps {gaps[:10] or 'none'}; watcher held "
          f"{client['live']} (live or read back on reopening) + {client['backfilled']} by "
          f"the final backfill, lost {client['lost']}"
          + (f"; dropped and back in {result['drop']['back_at'] - result['drop']['dropped_at']:.1f}"
             f" s, {result['drop']['backfilled']} backfilled after reconnecting"
             if fault.watcher_drop and result['drop']['back_at'] else "")
          + (f"; its socket was closed by the server {result['server_closed']}x and opened "
             f"again, {result['backfilled']} events read back over REST"
             if result["server_closed"] else ""))
    print(f"  the watcher's longest pause between live events: {result['longest_pause']:.1f} s "
          f"(the publisher sends at most 10 times a second; a pause over 1 s is the fault's)")
    if result["errors"]:
        print(f"  watcher: {result['errors'][:3]}")
    print(f"  checkpoints kept: {checkpoints[-4:]} ({len(checkpoints)})")
    lost = len(gaps) + client["lost"]
    # A cancel honoured only by the sweep (a minute) means the run was stuck meanwhile.
    stuck = "STUCK" in outcome or cancel_s is None or cancel_s > 10
    clear_end = bool(fault.may_fail_with) and fault.may_fail_with in outcome
    ctx.rows.append(Row(f"fault {fault.what}: recovered in",
                        f"{recovered:.1f} s" if recovered is not None else outcome[:40],
                        "trains again" + (f", or fails saying {fault.may_fail_with!r}"
                                          if fault.may_fail_with else ""),
                        recovered is not None or clear_end))
    ctx.rows.append(Row(f"fault {fault.what}: longest live pause",
                        f"{result['longest_pause']:.1f} s"))
    ctx.rows.append(Row(f"fault {fault.what}: events lost; stuck",
                        f"{lost}; {'yes' if stuck else 'no'}", "0; no", not lost and not stuck))
    ctx.rows.append(Row(f"fault {fault.what}: a cancel then ends it in",
                        "never" if cancel_s is None else f"{cancel_s:.1f} s", "< 10 s",
                        cancel_s is not None and cancel_s < 10))
    if result["server_closed"]:
        ctx.rows.append(Row(f"fault {fault.what}: sockets closed by the server",
                            str(result["server_closed"]), "0", False))


# ---------------------------------------------------------------------------------------
# (4) bad input


def part_fuzz(ctx: Context) -> None:
    args = ctx.args
    half = args.fuzz // 2
    print(f"\n== (4) bad input: {args.fuzz} requests, half schemathesis, half hypothesis "
          f"graph documents; a hang is no answer in {args.timeout:g} s ==", flush=True)
    fuzz_user, token = make_users(1, "fuzz")[0]
    import yaml

    schema = yaml.safe_load(urllib.request.urlopen(f"{ctx.base}/api/schema", timeout=30).read())
    operations = sum(1 for p in schema["paths"].values() for m in p
                     if m in ("get", "post", "put", "patch", "delete"))
    per_op = max(1, half // max(operations, 1))
    har = ctx.stack.home / "schemathesis.har"
    argv = [str(Path(sys.executable).with_name("schemathesis")), "run",
            f"{ctx.base}/api/schema", "--url", ctx.base,
            "-H", f"Authorization: Bearer {token}", "-n", str(per_op),
            "--phases", "examples,fuzzing", "-c", "not_a_server_error",
            "--request-timeout", str(args.timeout), "--max-response-time", str(args.timeout),
            "--continue-on-failure", "--seed", "1", "--no-shrink", "-w", "2",
            "--report", "har", "--report-har-path", str(har)]
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=ctx.stack.env, cwd=ctx.stack.home, capture_output=True,
                          text=True, timeout=args.fuzz_seconds, check=False)
    wall = time.perf_counter() - t0
    if not har.exists():
        raise Invalid(f"schemathesis wrote no HAR (exit {done.returncode}):\n"
                      f"{done.stdout[-1500:]}{done.stderr[-1500:]}")
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = [int(e["response"]["status"]) for e in entries]
    server_errors = [e for e in entries if int(e["response"]["status"]) >= 500]
    slow = [e for e in entries if float(e.get("time") or 0) > args.timeout * 1000]
    no_answer = sum(1 for s in statuses if s == 0)
    tail = [line for line in done.stdout.splitlines() if line.strip()][-8:]
    print(f"  schemathesis: {len(entries)} requests over {operations} operations ({per_op} "
          f"examples each asked) in {wall:.0f} s; 5xx {len(server_errors)}, no answer "
          f"{no_answer}, over {args.timeout:g} s {len(slow)}; statuses "
          f"{dict(sorted(_count(statuses).items()))}")
    print("  schemathesis said: " + " | ".join(tail))
    for e in server_errors[:5]:
        print(f"  5xx: {e['request']['method']} {e['request']['url'][:150]} -> "
              f"{e['response']['status']} {e['response']['content'].get('text', '')[:200]}")
    # Jobs the fuzzing queued must not hold the worker's queue: cancel them.
    from compute.jobs.models import Job

    Job.objects.filter(owner=fuzz_user, status__in=("queued", "running")).update(
        status="cancelled", cancel_requested=True)
    graphs = fuzz_graphs(ctx, token, args.fuzz - half)
    ctx.rows.append(Row("fuzz: schemathesis 5xx; hangs", f"{len(server_errors)}; "
                        f"{len(slow) + no_answer} of {len(entries)}", "0; 0",
                        not server_errors and not slow and not no_answer))
    ctx.rows.append(Row("fuzz: graph documents 5xx; hangs", f"{graphs[0]}; {graphs[1]} of "
                        f"{graphs[2]}", "0; 0", graphs[0] == 0 and graphs[1] == 0))


def _count(xs: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


def fuzz_graphs(ctx: Context, token: str, total: int) -> tuple[int, int, int]:
    """Hostile graph documents to /api/inspect and as new versions of a graph."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from compute.engine import load_starter
    from tests.engine.test_properties import corrupted_graphs, damaged_documents, valid_graphs

    api = Api(ctx.base, token, timeout=ctx.args.timeout)
    graph = api.ok("POST", "/api/graphs", {"document": load_starter("mlp")}, expect=201)
    head = {"n": 1}
    junk = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                        | st.text(max_size=20),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
    documents = st.one_of(valid_graphs().map(lambda d: d.doc), corrupted_graphs().map(
        lambda t: t[0]), damaged_documents(), junk)
    tally = {"sent": 0, "5xx": 0, "hang": 0}
    statuses: dict[int, int] = {}
    bad: list[str] = []
    t0 = time.perf_counter()

    def send(method: str, path: str, body: Any) -> int:
        tally["sent"] += 1
        try:
            status, answer = api.call(method, path, body)
        except (TimeoutError, OSError) as exc:
            tally["hang"] += 1
            bad.append(f"{path}: {type(exc).__name__} {exc}")
            return 0
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500:
            tally["5xx"] += 1
            bad.append(f"{path} -> {status} {str(answer)[:200]} for {json.dumps(body)[:300]}")
        if status == 201:
            head["n"] = answer["version"]["number"]
        return status

    @settings(max_examples=(total + 1) // 2, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(documents)
    def check(doc: Any) -> None:
        send("POST", "/api/inspect", doc)
        if tally["sent"] < total:
            send("POST", f"/api/graphs/{graph['id']}/versions",
                 {"document": doc, "base_version": head["n"], "message": "fuzz"})

    check()
    print(f"  hypothesis graphs: {tally['sent']} requests (inspect and save) in "
          f"{time.perf_counter() - t0:.0f} s; 5xx {tally['5xx']}, hangs {tally['hang']}; "
          f"statuses {dict(sorted(statuses.items()))}")
    for line in bad[:5]:
        print(f"  BAD: {line}")
    return tally["5xx"], tally["hang"], tally["sent"]


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts (default all: {','.join(PARTS)})")
    p.add_argument("--users", type=int, default=50, help="load: API clients (default 50)")
    p.add_argument("--duration", type=float, default=120.0, help="load: seconds (default 120)")
    p.add_argument("--ramp", type=float, default=10.0, help="load: clients started a second")
    p.add_argument("--web-processes", type=int, default=1,
                   help="Daphne processes serving the app (SHIPYARD_WEB_PROCESSES, default 1)")
    p.add_argument("--wait", type=float, default=1.0,
                   help="load: a client's mean pause between requests, s (default 1; 0: none)")
    p.add_argument("--ws-clients", type=int, default=200, help="fan-out clients (default 200)")
    p.add_argument("--fanout-steps", type=int, default=2000,
                   help="fan-out: steps of the run they watch (default 2000)")
    p.add_argument("--faults", default=",".join(DEFAULT_FAULTS),
                   help=f"which faults (default: {','.join(DEFAULT_FAULTS)}; pgrestart with "
                        f"--postgres)")
    p.add_argument("--postgres", action="store_true",
                   help="run the stack on a private PostgreSQL cluster (initdb and pg_ctl, as "
                        "the postgres user when root) on a free port, for the pgrestart fault")
    p.add_argument("--fault-steps", type=int, default=100000,
                   help="faults: steps of each run (it is cancelled once measured)")
    p.add_argument("--lock-seconds", type=float, default=10.0,
                   help="faults: seconds the database lock and the full disk last")
    p.add_argument("--disk-mib", type=int, default=16, help="faults: the tmpfs's size")
    p.add_argument("--recover-timeout", type=float, default=180.0,
                   help="faults: seconds to wait for a run to train again (default 180)")
    p.add_argument("--fuzz", type=int, default=10000, help="bad input: requests in all")
    p.add_argument("--fuzz-seconds", type=float, default=900.0,
                   help="bad input: the most seconds schemathesis may take (default 900)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="bad input: seconds without an answer that count as a hang")
    p.add_argument("--keep", action="store_true", help="keep the temporary SHIPYARD_HOME")
    p.add_argument("--client", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--job", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--drop-at", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--drop-for", type=float, default=3.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    parts = [x for x in args.only.split(",") if x]
    unknown = set(parts) - set(PARTS) | set(args.faults.split(",")) - set(FAULTS)
    if unknown:
        p.error(f"unknown part or fault: {', '.join(sorted(unknown))}")
    if "pgrestart" in args.faults.split(",") and not args.postgres:
        p.error("the pgrestart fault needs --postgres")
    if args.postgres and "dblock" in args.faults.split(","):
        p.error("the dblock fault locks SQLite: leave it out with --postgres")
    args.parts = parts
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main(args)
    t_all = time.perf_counter()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    home = Path(tempfile.mkdtemp(prefix="shipyard-reliab-"))
    env = dict(os.environ, SHIPYARD_HOME=str(home), DJANGO_SETTINGS_MODULE="builder.settings",
               DEBUG="false", ALLOWED_HOSTS="localhost,127.0.0.1", LOG_LEVEL="WARNING",
               PYTHONWARNINGS="ignore:No directory at", PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    env["SHIPYARD_WEB_PROCESSES"] = str(args.web_processes)
    stack = Stack(home, env)
    postgres = Postgres(Path(tempfile.mkdtemp(prefix="shipyard-reliab-pg-"))) \
        if args.postgres else None
    rows: list[Row] = []
    code = 0
    ctx: Context | None = None
    try:
        if postgres is not None:
            env["DATABASE_URL"] = postgres.start()
        start_stack(stack)
        os.environ.update(stack.env)
        import redis

        # Append-only, as `shipyard up` runs it: a restart keeps the queue.
        redis.Redis(port=stack.ports["redis"]).config_set("appendonly", "yes")
        import warnings

        warnings.filterwarnings("ignore", message="No directory at")
        import django

        django.setup()
        user, token = make_users(1, "reliab")[0]
        ctx = Context(stack, Api(f"http://127.0.0.1:{stack.ports['daphne']}", token), args,
                      rows, user=user, postgres=postgres)
        from compute.engine import load_starter

        ctx.graph_id = ctx.api.ok("POST", "/api/graphs", {"document": load_starter("mlp"),
                                                           "name": "reliab"}, expect=201)["id"]
        cpus = len(os.sched_getaffinity(0))
        print(f"python {sys.version.split()[0]}, {cpus} CPUs; redis-server on "
              f":{stack.ports['redis']} (append-only), Daphne on :{stack.ports['daphne']} "
              f"({args.web_processes} process{'es' if args.web_processes > 1 else ''}), "
              f"{'PostgreSQL on :' + str(postgres.port) if postgres else 'SQLite (WAL)'} in "
              f"{home}; stack up in {time.perf_counter() - t_all:.1f} s; load "
              f"average {os.getloadavg()[0]:.1f}", flush=True)
        if os.getloadavg()[0] > cpus:
            print("  NOTE: the machine is busy (load average above the CPU count): latencies "
                  "below are pessimistic")
        if "faults" in args.parts and "disk" in args.faults.split(","):
            why = mount_tmpfs(ctx)
            if why:
                ctx.notes.append(why)
        if "load" in args.parts:
            part_load(ctx)
        if "fuzz" in args.parts:
            part_fuzz(ctx)
        if "fanout" in args.parts or "faults" in args.parts:
            ctx.start_worker()
        if "fanout" in args.parts:
            part_fanout(ctx)
        if "faults" in args.parts:
            part_faults(ctx)
        if ctx.failed:
            code = 1
    except Invalid as exc:
        print(f"\nINVALID: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping what was started", file=sys.stderr)
        code = 130
    except Exception:  # the measurement failed; say where, and stop what was started
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        stack.stop()
        if postgres is not None:
            postgres.stop()
        if ctx is not None and ctx.mounted is not None:
            subprocess.run(["umount", str(ctx.mounted)], check=False)
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    if rows:
        print_table(rows)
    print(f"\ntotal run time {time.perf_counter() - t_all:.1f} s; load average "
          f"{os.getloadavg()[0]:.1f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
