"""A request body over its limit is refused before it is read, by the web server `shipyard up`
starts (a real process, spoken to through raw sockets), and by the ASGI guard in front of the
app for any other server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.testing import ApplicationCommunicator
from django.conf import settings

from builder.asgi import application
from builder.graphs.middleware import BodyLimit
from compute import serve

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
LIMIT = settings.SHIPYARD_MAX_REQUEST_BYTES


def memory_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (the peak so far) of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[int, int]]:
    """The web server as `shipyard up` starts it: (port, pid). These requests need no
    database and no Redis."""
    port = serve.free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="builder.settings", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(serve.web_argv("127.0.0.1", port), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL)
    try:
        serve.wait_for_port(port, proc, "the web server", timeout=120)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def request_head(path: str, framing: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             framing, *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(conn: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    conn.settimeout(timeout)
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def status_and_json(answer: bytes) -> tuple[str, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), json.loads(body)


def get(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                     .encode())
        return read_answer(conn).split(b"\r\n")[0].decode()


@pytest.mark.slow
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(web):
    port, pid = web
    rss = memory_mib(pid, "VmRSS")
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head("/api/auth/token", "Content-Length: 4294967296"))
        with contextlib.suppress(OSError):  # the server may have closed already
            conn.sendall(b"{" * MIB)  # a first part of the body: it is never read
        answer = read_answer(conn)  # ends: the server closed the connection
    assert time.monotonic() - start < 5
    status, body = status_and_json(answer)
    assert status == "HTTP/1.1 413 Content Too Large"
    assert body == {"error": f"the request body is 4,294,967,296 bytes; the limit is "
                             f"{LIMIT:,} bytes (SHIPYARD_MAX_GRAPH_BYTES)"}
    assert b"Connection: close" in answer
    assert memory_mib(pid, "VmRSS") - rss < 20
    assert get(port, "/api/blocks") == "HTTP/1.1 200 OK"


@pytest.mark.slow
def test_a_body_without_a_declared_length_is_cut_off_at_the_limit(web):
    port, pid = web
    peak = memory_mib(pid, "VmHWM")
    chunk = b"%x\r\n%s\r\n" % (MIB, b"[" * MIB)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head("/api/graphs", "Transfer-Encoding: chunked"))
        try:
            # A body that keeps coming (256 MiB, were it all read) until the server answers.
            while sent < 256 * MIB and not select.select([conn], [], [], 0)[0]:
                conn.sendall(chunk)
                sent += MIB
        except OSError:
            pass  # the server closed the connection: its answer is waiting
        answer = read_answer(conn)
    status, body = status_and_json(answer)
    assert status == "HTTP/1.1 413 Content Too Large"
    assert body["error"] == (f"the request body grew past the limit of {LIMIT:,} bytes "
                             "(SHIPYARD_MAX_GRAPH_BYTES)")
    # What the kernel's socket buffers hold on top of the limit, and no more, was sent.
    assert sent < LIMIT + 32 * MIB
    assert memory_mib(pid, "VmHWM") - peak < 40
    assert get(port, "/api/blocks") == "HTTP/1.1 200 OK"


@pytest.mark.slow
def test_uploads_keep_their_larger_limit(web):
    port, _ = web
    size = 3 * MIB  # over the graph limit, under the upload limit
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head("/api/graphs", f"Content-Length: {size}"))
        status, _ = status_and_json(read_answer(conn))
    assert status == "HTTP/1.1 413 Content Too Large"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head("/api/uploads", f"Content-Length: {size}",
                                  "Connection: close"))
        conn.sendall(b"x" * size)
        status, body = status_and_json(read_answer(conn))
    # Read in full and handed to the app, which wants a login first.
    assert status == "HTTP/1.1 401 Unauthorized", body


@pytest.mark.slow
def test_a_client_that_expects_100_continue_gets_the_413_alone(web):
    port, _ = web
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head("/api/graphs", "Content-Length: 99999999",
                                  "Expect: 100-continue"))
        answer = read_answer(conn)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in answer


@pytest.mark.slow
def test_a_small_body_still_reaches_the_app(web):
    port, _ = web
    body = json.dumps({"name": "x"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head("/api/graphs", f"Content-Length: {len(body)}",
                                  "Connection: close") + body)
        status, answer = status_and_json(read_answer(conn))
    assert status == "HTTP/1.1 401 Unauthorized"
    assert answer == {"error": "Authentication credentials were not provided."}


# The ASGI guard (builder/asgi.py), for servers that pass a body on as it arrives.


async def _exchange(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> list[dict]:
    scope = {"type": "http", "method": "POST", "path": "/api/graphs", "query_string": b"",
             "headers": [(b"host", b"localhost"), *headers], "scheme": "http",
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    communicator = ApplicationCommunicator(app, scope)
    for i, chunk in enumerate(chunks):
        await communicator.send_input({"type": "http.request", "body": chunk,
                                       "more_body": i < len(chunks) - 1})
    start = await communicator.receive_output(timeout=30)
    body = await communicator.receive_output(timeout=30)
    await communicator.wait(timeout=30)
    return [start, body]


async def echo(scope: dict, receive: Any, send: Any) -> None:
    """An app that answers with the body it was given."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_the_asgi_guard_refuses_a_declared_length_over_the_limit(db):
    start, body = asyncio.run(_exchange(application, [(b"content-length", b"4294967296")],
                                        [b"{"]))
    assert start["status"] == 413
    assert "4,294,967,296 bytes" in json.loads(body["body"])["error"]


def test_the_asgi_guard_refuses_a_body_without_a_length_once_it_passes_the_limit(db):
    chunks = [b"[" * MIB] * (LIMIT // MIB + 2)
    start, body = asyncio.run(_exchange(application, [], chunks))
    assert start["status"] == 413
    assert json.loads(body["body"])["error"].startswith("the request body grew past")


@pytest.mark.parametrize("headers", [[], [(b"content-length", b"12")]])
def test_the_asgi_guard_hands_a_body_within_the_limit_on_whole(headers):
    start, body = asyncio.run(_exchange(BodyLimit(echo), headers, [b'{"name":', b' "x"}']))
    assert start["status"] == 200
    assert body["body"] == b'{"name": "x"}'
