"""`python -m builder.webserver`: Daphne, refusing a request body over its limit before it is
read. `shipyard up` serves the app with it; it takes Daphne's arguments.

Daphne (through Twisted) reads a whole body, to a temporary file, and then queues all of it
for the app, in memory, before the app sees the request: a POST declaring 4 GiB was read in
full, grew the process by gigabytes and stalled every other request, all before the app
could answer 413. Here each request checks its declared length as soon as its headers end,
and counts a body sent without one (chunked) as it arrives; past the limit of its path it
answers 413 itself and closes the connection, reading nothing more.

One Daphne process runs Python on one core. With SHIPYARD_WEB_PROCESSES=N (N > 1) this
process binds the address itself, N times over (SO_REUSEPORT), and starts N Daphne
processes, one on each socket (the kernel spreads the connections over them), then
watches them: SIGTERM or SIGINT stops them all; one that ends on its own ends the others
and this process with its exit status, for the container or service manager to start it
all again. The processes share nothing but the database, Redis and the store, like web
containers behind a proxy.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import unquote

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest

from builder.graphs.middleware import body_limit, too_large


class BoundedRequest(WebRequest):
    """Daphne's request, with a body limit (builder.graphs.middleware.body_limit)."""

    refused = False
    limit = 0
    what = ""

    def gotLength(self, length: int | None) -> None:
        """Called when the headers have ended and the body is still unread."""
        # Twisted parses the request line into the channel, and the request's own path only
        # once the whole body is in.
        path = self.channel._path.split(b"?", 1)[0]
        self.limit, self.what = body_limit(unquote(path.decode("ascii", "replace")))
        if length is not None and length > self.limit:
            super().gotLength(0)
            self.refuse(length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        if self.content.tell() + len(data) > self.limit:
            self.refuse(None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A refused body may still end within data that had already arrived: no app for it.
        if not self.refused:
            super().requestReceived(command, path, version)

    def refuse(self, length: int | None) -> None:
        """Answer 413 (JSON, like the app's own) and close: what was sent is never read."""
        self.refused = True
        body = json.dumps({"error": too_large(length, self.limit, self.what)}).encode()
        # No "100 Continue" after this answer for a client that asked for one.
        self.requestHeaders.removeHeader(b"Expect")
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        self.channel.loseConnection()


class BoundedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedRequest
        return protocol


PROCESSES_VARIABLE = "SHIPYARD_WEB_PROCESSES"
MAX_PROCESSES = 64
STOP_SECONDS = 20.0  # after SIGTERM, how long the processes have to finish their requests


def processes_wanted(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    raw = environ.get(PROCESSES_VARIABLE, "1").strip() or "1"
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_PROCESSES:
        raise SystemExit(f"{PROCESSES_VARIABLE} must be a whole number from 1 to "
                         f"{MAX_PROCESSES}, got {raw!r}")
    return count


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (shared with the others made so) and listening,
    for a child to inherit."""
    try:
        family = (socket.AF_INET6 if ipaddress.ip_address(host.strip("[]")).version == 6
                  else socket.AF_INET)
    except ValueError:  # a name: resolved as the OS would
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # One socket per process on the same port: the kernel spreads connections over them
    # (one shared socket would hand nearly all of them to whichever process is idle first).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve_many(argv: list[str], count: int) -> int:
    """Bind Daphne's -b/-p address here and run `count` Daphne processes on it (the module
    doc); the exit status of the first that ended, or 0 after a SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-b", "--bind", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    address, rest = parser.parse_known_args(argv)
    socks = [listening_socket(address.bind, address.port) for _ in range(count)]
    env = dict(os.environ, **{PROCESSES_VARIABLE: "1"})
    children = [subprocess.Popen([sys.executable, "-m", "builder.webserver", "--fd",
                                  str(sock.fileno()), *rest], pass_fds=[sock.fileno()],
                                 env=env) for sock in socks]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving on {address.bind}:{address.port} with {count} processes "
          f"({', '.join(str(c.pid) for c in children)})", file=sys.stderr, flush=True)
    status = 0
    while not stopping:
        ended = next((c for c in children if c.poll() is not None), None)
        if ended is not None:
            status = ended.returncode or 1
            print(f"web process {ended.pid} ended (status {ended.returncode}): stopping "
                  "the others", file=sys.stderr, flush=True)
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    for sock in socks:
        sock.close()
    return status


def main() -> None:
    count = processes_wanted()
    if count > 1:
        raise SystemExit(serve_many(sys.argv[1:], count))
    # Daphne's Server.run() makes its HTTP factory from this module-level name and has no
    # setting for another request class.
    daphne.server.HTTPFactory = BoundedHTTPFactory
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
