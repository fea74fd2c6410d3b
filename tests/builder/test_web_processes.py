"""Several web processes on one address (SHIPYARD_WEB_PROCESSES, builder/webserver.py):
every process answers, each keeps the body limit, a SIGTERM stops them all, and one that
dies takes the others down with it (for the container to start again) instead of leaving
a server at half its size that nobody notices. Real processes and sockets; the app is a
tiny ASGI app that says which process answered, so the test needs no database."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compute.serve import free_port

Served = tuple["subprocess.Popen[str]", int]  # the first process, and its port
ROOT = Path(__file__).resolve().parents[2]
APP = '''
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
'''


def start(tmp_path: Path, processes: str) -> Served:
    (tmp_path / "pidapp.py").write_text(APP)
    port = free_port()
    env = dict(os.environ, SHIPYARD_WEB_PROCESSES=processes,
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    server = subprocess.Popen([sys.executable, "-m", "builder.webserver", "-b", "127.0.0.1",
                               "-p", str(port), "pidapp:app"], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return server, port


def answering_pid(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        return int(conn.getresponse().read())
    finally:
        conn.close()


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def gone(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] == "Z"


def until(predicate: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Served]:
    server, port = start(tmp_path, "2")
    children: set[int] = set()
    try:
        assert until(lambda: len(children_of(server.pid)) == 2)
        children = children_of(server.pid)
        # Each socket listens already: a connection waits in its backlog until its
        # process has started.
        yield server, port
    finally:
        if server.poll() is None:
            server.kill()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        server.communicate(timeout=10)


def test_every_process_answers_on_the_one_address(two: Served) -> None:
    server, port = two
    children = children_of(server.pid)
    pids = {answering_pid(port) for _ in range(60)}
    assert pids == children  # both processes took connections, and only they did


def test_each_process_refuses_a_body_over_the_limit_unread(two: Served) -> None:
    _, port = two
    for _ in range(4):  # whichever process takes the connection
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/api/graphs")
        conn.putheader("Content-Length", str(10**10))
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert b"error" in response.read()
        conn.close()


def test_a_sigterm_stops_every_process(two: Served) -> None:
    server, _ = two
    children = children_of(server.pid)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert until(lambda: all(gone(c) for c in children))


def test_a_process_that_dies_takes_the_others_down(two: Served) -> None:
    server, _ = two
    first, second = sorted(children_of(server.pid))
    os.kill(first, signal.SIGKILL)
    assert server.wait(timeout=30) != 0
    output = server.communicate(timeout=10)[0]
    assert f"web process {first} ended" in output
    assert until(lambda: gone(second))


@pytest.mark.parametrize("value", ["0", "many", "65"])
def test_a_bad_number_of_processes_is_refused_naming_the_variable(tmp_path: Path,
                                                                   value: str) -> None:
    server, _ = start(tmp_path, value)
    output = server.communicate(timeout=60)[0]
    assert server.returncode != 0
    assert (f"SHIPYARD_WEB_PROCESSES must be a whole number from 1 to 64, got {value!r}"
            in output)
