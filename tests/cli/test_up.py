"""`shipyard up`, the README's run command: the whole app starts, answers, and stops cleanly."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from compute import serve
from compute.serve import Backoff, exit_reason


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, from /proc; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (command) "
    return int(fields[1]), fields[0], fields[19]


def worker_processes(root: int) -> dict[int, str]:
    """Celery worker processes (the main one and its pool) under `root`: pid -> start time."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None:
            parents[int(entry.name)] = info[0]
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                todo.append(pid)
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                info = stat(pid)
                if b"compute.celery_app" in cmdline and b"worker" in cmdline and info:
                    found[pid] = info[2]
    return found


def alive(pid: int, started: str) -> bool:
    info = stat(pid)
    return info is not None and info[2] == started and info[1] != "Z"


def ping_worker(env: dict[str, str], deadline: float) -> str:
    """Celery's own `inspect ping` through the given Redis, until a worker answers."""
    answer = ""
    while time.monotonic() < deadline:
        answer = subprocess.run([sys.executable, "-m", "celery", "-A", "compute.celery_app",
                                 "inspect", "ping", "--timeout", "2"], env=env, text=True,
                                capture_output=True, timeout=60).stdout
        if "pong" in answer:
            break
    return answer


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
def test_up_serves_the_app_with_its_own_redis_and_worker_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["SHIPYARD_HOME"] = str(tmp_path / "home")
    proc = subprocess.Popen([sys.executable, "-m", "compute.cli", "up", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Read the output as it comes, so that a full pipe never blocks `up`.
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    workers: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = get(f"http://127.0.0.1:{port}/api/blocks")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, "".join(lines) if proc.poll() is not None else "no answer"
        assert any(b["type"] == "Linear" for b in json.loads(body)["blocks"])
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        # DEBUG is off: a missing page is the site's own 404, not Django's debug page.
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(f"http://127.0.0.1:{port}/no-such-page")
        assert missing.value.code == 404 and b"Nothing here" in missing.value.read()
        assert (tmp_path / "home" / "db.sqlite3").exists()  # migrated, under SHIPYARD_HOME

        redis_url = re.search(r"redis on (redis://\S+)", "".join(lines))
        assert redis_url, "".join(lines)
        answer = ping_worker(dict(env, REDIS_URL=redis_url[1]), deadline)
        assert "shipyard-cpu" in answer and "pong" in answer, answer + "".join(lines)
        workers = worker_processes(proc.pid)
        assert workers, "no worker process under `shipyard up`"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "redis on redis://127.0.0.1:" in output
    assert "worker runs jobs from the queues: cpu" in output
    assert "stopped" in output
    assert not [pid for pid, started in workers.items() if alive(pid, started)], output
    # Redis kept an append-only file under SHIPYARD_HOME: queued runs outlive a restart.
    assert list((tmp_path / "home" / "redis").glob("appendonly*"))
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/api/blocks")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_up_on_a_loopback_address_sends_cookies_over_plain_http(host: str) -> None:
    assert serve.web_env(host, {}) == {"SESSION_COOKIE_SECURE": "false",
                                       "CSRF_COOKIE_SECURE": "false"}


def test_up_elsewhere_keeps_cookies_secure_and_the_environment_has_the_last_word() -> None:
    assert serve.web_env("0.0.0.0", {}) == {}
    assert serve.web_env("shipyard.example", {}) == {}
    assert serve.web_env("127.0.0.1", {"SESSION_COOKIE_SECURE": "true"}) == {
        "SESSION_COOKIE_SECURE": "true", "CSRF_COOKIE_SECURE": "false"}


def test_up_serves_the_app_through_the_bounded_web_server() -> None:
    argv = serve.web_argv("127.0.0.1", 8123)
    assert argv[1:4] == ["-m", "builder.webserver", "-b"]
    assert argv[-1] == "builder.asgi:application"
def call(url: str, token: str, body: dict[str, object] | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def worker_main(root: int) -> int | None:
    """The pid of the Celery worker `shipyard up` started (its own child), if one runs."""
    for pid in worker_processes(root):
        info = stat(pid)
        if info is not None and info[0] == root and info[1] != "Z":
            return pid
    return None


def wait_until(condition, timeout: float, what: str, output: list[str]):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n" + "".join(output)[-4000:])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc")
def test_up_starts_a_new_worker_when_its_worker_is_killed_and_the_run_still_finishes(
        tmp_path: Path) -> None:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    # A lost run is noticed within seconds, not a minute.
    env.update(SHIPYARD_HOME=str(tmp_path / "home"), SHIPYARD_HEARTBEAT_SECONDS="1",
               SHIPYARD_HEARTBEAT_TIMEOUT="6", SHIPYARD_SWEEP_SECONDS="1",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "compute.cli", "up", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_until(lambda: "Shipyard is running" in "".join(lines), 120, "`up` to start", lines)
        made = subprocess.run(
            [sys.executable, "-m", "django", "shell", "-c",
             "from django.contrib.auth.models import User\n"
             "from builder.accounts.services import issue_token\n"
             "user = User.objects.create_user('ada', password='a-long-harbour-crane-42')\n"
             "print(issue_token(user=user)[1])"],
            env=dict(env, DJANGO_SETTINGS_MODULE="builder.settings"), text=True,
            capture_output=True, timeout=120)
        token = made.stdout.strip().splitlines()[-1]
        graph = call(f"{site}/api/graphs", token, {"starter": "char_gpt"})["id"]
        job = call(f"{site}/api/jobs", token, {
            "graph": graph, "dataset": "harbour",
            "config": {"steps": 40, "batch_size": 8, "checkpoint_interval": 5,
                       "log_interval": 5, "eval_interval": 1000}})["id"]

        def running() -> bool:
            state = call(f"{site}/api/jobs/{job}", token)
            return state["status"] == "running" and int(str(state["step"])) >= 5

        wait_until(running, 180, "the run to pass step 5", lines)
        old = worker_main(proc.pid)
        assert old is not None, "".join(lines)
        pool = [pid for pid in worker_processes(proc.pid) if pid != old]
        os.kill(old, signal.SIGKILL)

        wait_until(lambda: "the worker was killed by SIGKILL; starting another in 1 s"
                   in "".join(lines), 10, "`up` to notice", lines)
        assert proc.poll() is None, "".join(lines)
        assert get(f"{site}/api/blocks")[0] == 200  # Daphne still serves
        new = wait_until(lambda: (pid := worker_main(proc.pid)) not in (None, old) and pid,
                         30, "a new worker", lines)
        assert f"started a new worker (pid {new})" in "".join(lines)
        assert not [pid for pid in pool if stat(pid) is not None and stat(pid)[1] != "Z"]

        def ended() -> dict[str, object] | None:
            state = call(f"{site}/api/jobs/{job}", token)
            return state if state["status"] in ("succeeded", "failed", "cancelled") else None

        done = wait_until(ended, 240, "the run to end", lines)
        assert done["status"] == "succeeded", (done["error"], "".join(lines)[-4000:])
        assert done["attempts"] == 2 and done["step"] == 40
        assert get(f"{site}/api/blocks")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        reader.join(timeout=10)
    assert proc.returncode == 0, "".join(lines)


def test_a_dying_worker_is_started_again_after_1_2_4_up_to_60_seconds() -> None:
    backoff = Backoff()
    waits = [backoff.next(uptime=2) for _ in range(9)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff.next(uptime=61) == 1  # it had stayed up a minute: start again quickly
    assert backoff.next(uptime=0.5) == 2


def test_how_a_child_ended_is_said_in_words() -> None:
    assert exit_reason(-9) == "was killed by SIGKILL"
    assert exit_reason(1) == "exited with status 1"
    assert exit_reason(-200) == "was killed by signal 200"
