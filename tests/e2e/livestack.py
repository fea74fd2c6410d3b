"""A live Shipyard stack for the browser tests and the editor benchmark, as plain code (no
pytest): a redis-server of its own, a migrated SQLite database file in a temporary
SHIPYARD_HOME, a Celery worker process and Daphne serving `builder.asgi`, all pointed at the
same database and Redis through the environment, the way `shipyard up` runs them.

    stack = LiveStack.start()          # or LiveStack.start(home=..., debug=False)
    user = stack.create_user()         # through the sign-up page, as a person would
    token = stack.token(user)          # an API token, for set-up over the REST API
    status, body = stack.api("POST", "/api/graphs", token, {"starter": "mlp"})
    stack.stop()

Nothing here imports Django settings into this process: the stack is separate processes,
and this process only talks HTTP to it, so it works beside pytest-django's own set-up.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "frontend" / "dist" / "manifest.json"
CHROMIUM = os.environ.get("SHIPYARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "a-long-harbour-crane-42"

# realparts (tests/builder/jobs) has the Redis server the runs' tests use; share it.
_JOBS_TESTS = ROOT / "tests" / "builder" / "jobs"
if str(_JOBS_TESTS) not in sys.path:
    sys.path.insert(0, str(_JOBS_TESTS))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from realparts import RedisServer, Worker  # noqa: E402

from compute.serve import free_port, wait_for_port, web_argv, worker_argv  # noqa: E402


class StackError(RuntimeError):
    """The stack could not be started, or the editor it serves is not built."""


def check_editor_built() -> None:
    if not MANIFEST.exists():
        raise StackError(
            f"{MANIFEST.relative_to(ROOT)} is missing: the browser editor has not been built. "
            "Run `make editor` (it needs npm; `make test` builds it too) and run the tests "
            "again.")


def check_chromium() -> None:
    if not Path(CHROMIUM).exists():
        raise StackError(
            f"no Chromium at {CHROMIUM}: the browser tests drive Debian's chromium "
            "(Playwright cannot download one here). `make test` installs it "
            "(apt-get install chromium); SHIPYARD_CHROMIUM names another binary.")


@dataclass
class User:
    username: str
    password: str = PASSWORD


@dataclass
class LiveStack:
    home: Path
    env: dict[str, str]
    port: int
    redis: RedisServer
    owns_home: bool = False
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    worker: Worker | None = None
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- starting and stopping -----------------------------------------------------------

    @classmethod
    def start(cls, home: Path | None = None, *, debug: bool = True, worker: bool = True,
              extra_env: dict[str, str] | None = None) -> LiveStack:
        """Redis, migrations, then the worker and Daphne (started together); raises
        StackError with the logs when a part does not come up."""
        owns = home is None
        home = Path(tempfile.mkdtemp(prefix="shipyard-e2e-")) if home is None else Path(home)
        home.mkdir(parents=True, exist_ok=True)
        (home / "redis").mkdir(exist_ok=True)
        redis = RedisServer(free_port(), home / "redis")
        env = {k: v for k, v in os.environ.items()
               if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SHIPYARD_HOME")}
        env.update({
            "SHIPYARD_HOME": str(home),
            "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
            "REDIS_URL": redis.url,
            "DJANGO_SETTINGS_MODULE": "builder.settings",
            "DEBUG": "true" if debug else "false",
            # Plain http on 127.0.0.1: cookies must not be Secure-only, or nobody logs in.
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "SHIPYARD_VITE_DEV": "false",
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore:No directory at",
            # Every test's user signs up from 127.0.0.1: more than a person would in an hour.
            "SHIPYARD_SIGNUPS_PER_ADDRESS": "10000",
            **(extra_env or {}),
        })
        stack = cls(home, env, free_port(), redis, owns_home=owns)
        try:
            redis.start()
            # The worker and Daphne take seconds to import (Django, torch): they start while
            # the migrations run, and touch the database only when asked something.
            if worker:
                worker_proc = stack._spawn("worker", worker_argv(["cpu", "fpga"], concurrency=1,
                                                                 name="e2e@%h"))
            # The web server `shipyard up` runs: Daphne refusing oversized bodies unread.
            daphne = stack._spawn("daphne", web_argv("127.0.0.1", stack.port))
            stack._migrate()
            try:
                wait_for_port(stack.port, daphne, "daphne", timeout=90)
            except RuntimeError as exc:
                raise StackError(f"{exc}\n{stack.logs()}") from None
            if worker:
                stack.worker = Worker(worker_proc, "e2e", stack.log_path("worker"))
                stack._wait_worker(worker_proc)
        except BaseException:
            stack.stop()
            raise
        return stack

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.log_path(name)
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc, log))
        return proc

    def _migrate(self) -> None:
        done = subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                              cwd=ROOT, env=self.env, capture_output=True, text=True,
                              check=False, timeout=300)
        if done.returncode != 0:
            raise StackError(f"the migrations failed:\n{done.stdout}\n{done.stderr}")

    def _wait_worker(self, proc: subprocess.Popen[bytes]) -> None:
        log = self.log_path("worker")
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"the Celery worker did not start:\n{self.logs()}")
            time.sleep(0.2)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to every part at once; what is left after `grace` seconds (a worker's
        warm shutdown) is killed, with its children."""
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace
        for _, proc, _ in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs.clear()
        self.redis.stop()
        if self.owns_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for name, proc, log in self.procs:
            state = "running" if proc.poll() is None else f"exited {proc.returncode}"
            text = log.read_text(errors="replace") if log.exists() else ""
            parts.append(f"--- {name} ({state}), last {tail} characters of {log} ---\n"
                         f"{text[-tail:]}")
        return "\n".join(parts)

    def exited(self) -> list[str]:
        """The parts that have exited (empty while everything runs)."""
        gone = [f"{name} (exited {proc.returncode})" for name, proc, _ in self.procs
                if proc.poll() is not None]
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            gone.append("redis-server")
        return gone

    # -- users and the API ---------------------------------------------------------------

    def create_user(self, prefix: str = "user") -> User:
        """A new account, made through the sign-up page (it is logged in only in the cookie
        jar used here, not in any browser)."""
        user = User(f"{prefix}-{uuid.uuid4().hex[:8]}")
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(f"{self.url}/accounts/signup/", timeout=30) as response:
            response.read()
        csrf = next((c.value for c in jar if c.name == "csrftoken"), None)
        if csrf is None:
            raise StackError("the sign-up page set no csrftoken cookie")
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "username": user.username,
                                       "password1": user.password,
                                       "password2": user.password}).encode()
        with opener.open(urllib.request.Request(f"{self.url}/accounts/signup/", data=form),
                         timeout=30) as response:
            page = response.read().decode(errors="replace")
            landed = urllib.parse.urlparse(response.geturl()).path
        if landed != "/":
            raise StackError(f"signing up {user.username} did not work (ended on {landed}):\n"
                             f"{page[:2000]}")
        return user

    def token(self, user: User) -> str:
        """An API token for `user` (one per user, kept)."""
        if user.username not in self._tokens:
            status, body = self.api("POST", "/api/auth/token", None,
                                    {"username": user.username, "password": user.password,
                                     "name": "e2e"})
            if status != 201:
                raise StackError(f"no token for {user.username}: {status} {body}")
            self._tokens[user.username] = body["token"]
        return self._tokens[user.username]

    def api(self, method: str, path: str, token: str | None = None,
            body: Any = None, timeout: float = 120) -> tuple[int, Any]:
        """(status, parsed JSON or text) of one API request."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def finished_run(self, token: str, graph_id: int, steps: int = 20,
                     timeout: float = 120) -> dict[str, Any]:
        """A short run of the graph on digits, trained by the worker to its end; the job as
        the API gives it then. Raises StackError if it did not succeed in time."""
        status, job = self.api("POST", "/api/jobs", token,
                               {"graph": graph_id, "dataset": "digits",
                                "config": {"steps": steps}})
        if status != 201:
            raise StackError(f"the run was not started: {status} {job}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, now = self.api("GET", f"/api/jobs/{job['id']}", token)
            if now["status"] == "succeeded":
                return dict(now)
            if now["status"] in ("failed", "cancelled"):
                raise StackError(f"run {job['id']} ended {now['status']}: {now['error']}")
            time.sleep(0.25)
        raise StackError(f"run {job['id']} did not end within {timeout:g} s")
