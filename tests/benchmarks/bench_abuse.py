"""What abusive request bodies cost the web process, served as `shipyard up` serves it.

    .venv/bin/python tests/benchmarks/bench_abuse.py [--declared-send-mib 4096]
        [--chunked-mib 200] [--concurrent 3]
    PYTHONPATH=/other/checkout .venv/bin/python tests/benchmarks/bench_abuse.py   # e.g. before

Starts the web server of the checkout that `compute.serve` is imported from (PYTHONPATH, else
this one) with the command its `shipyard up` uses (`serve.web_argv`; a checkout without it
ran `python -m daphne`), on a throwaway SHIPYARD_HOME, DEBUG off, no Redis (none of these
requests needs one). Then, anonymously, in two phases:

1. declared: POST /api/auth/token with `Content-Length: 4294967296`, sending the body (up to
   --declared-send-mib) until an answer comes;
2. chunked: --concurrent POSTs to /api/graphs at once, each a chunked body of --chunked-mib
   MiB with no declared length, sent until an answer comes.

During each phase a probe times GET /api/blocks every 0.2 s. For each phase it prints what
the abusive clients got and after how long, how much they sent, the slowest probe, and the
web process's CPU time (utime+stime, /proc/<pid>/stat) and peak memory (VmHWM,
/proc/<pid>/status); each phase has a server of its own.
Not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from report import Invalid, Row, print_table

ROOT = Path(__file__).resolve().parents[2]
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

from compute import serve  # noqa: E402  (from PYTHONPATH's checkout, or this one)

MIB = 1024 * 1024
DECLARED = 4 * 1024 * MIB
ANSWER_WAIT = 30.0  # seconds a client waits for an answer once it has sent what it would


def web_argv(port: int) -> list[str]:
    if hasattr(serve, "web_argv"):
        argv: list[str] = serve.web_argv("127.0.0.1", port)
        return argv
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "builder.asgi:application"]


def cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise Invalid(f"no VmHWM for process {pid}")


@dataclass
class Outcome:
    status: str = "no answer"
    seconds: float = 0.0  # until the answer's first byte (or until the client gave up)
    sent: int = 0


def abuse(port: int, path: str, *, declared: int | None, send: int) -> Outcome:
    """One POST whose body keeps coming until the server answers or `send` bytes are out
    (a chunked body then ends, so that a server that took it all goes on to answer)."""
    outcome = Outcome()
    framing = (f"Content-Length: {declared}" if declared is not None
               else "Transfer-Encoding: chunked")
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n").encode()
    block = b"[" * MIB
    piece = block if declared is not None else b"%x\r\n%s\r\n" % (len(block), block)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(head)
        try:
            while outcome.sent < send and not select.select([conn], [], [], 0)[0]:
                conn.sendall(piece)
                outcome.sent += len(block)
            if declared is None:
                conn.sendall(b"0\r\n\r\n")
            select.select([conn], [], [], ANSWER_WAIT)
        except OSError:
            pass  # the server closed: its answer may be waiting
        conn.settimeout(1.0)
        try:
            first = conn.recv(200)
        except OSError as exc:
            first = f"({type(exc).__name__})".encode()
        outcome.seconds = time.monotonic() - start
        if first:
            outcome.status = first.split(b"\r\n", 1)[0].decode("latin-1")
    return outcome


@dataclass
class Probe:
    port: int
    samples: list[float] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=60) as conn:
                    conn.sendall(b"GET /api/blocks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Connection: close\r\n\r\n")
                    if not conn.recv(100).startswith(b"HTTP/1.1 200"):
                        self.failures += 1
            except OSError:
                self.failures += 1
            self.samples.append(time.monotonic() - start)
            self.stop.wait(0.2)


class WebServer:
    """The web server of `checkout`, started fresh for each phase: its peak memory is its own."""

    def __init__(self, checkout: Path):
        self.checkout = checkout
        self.port = serve.free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
        env.update(SHIPYARD_HOME=tempfile.mkdtemp(prefix="shipyard-bench-"), DEBUG="false",
                   PYTHONPATH=str(checkout), DJANGO_SETTINGS_MODULE="builder.settings")
        self.proc = subprocess.Popen(web_argv(self.port), cwd=checkout, env=env,
                                     stdout=subprocess.DEVNULL)
        serve.wait_for_port(self.port, self.proc, "the web server", timeout=120)
        time.sleep(1.0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def phase(name: str, checkout: Path, clients: list[dict]) -> list[Row]:
    web = WebServer(checkout)
    try:
        pid, port = web.proc.pid, web.port
        idle = peak_mib(pid)
        cpu_before = cpu_seconds(pid)
        probe = Probe(port)
        watcher = threading.Thread(target=probe.run)
        watcher.start()
        outcomes = [Outcome() for _ in clients]

        def one(i: int) -> None:
            outcomes[i] = abuse(port, **clients[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.0)  # let the server finish with what it was given
        probe.stop.set()
        watcher.join()
        cpu, peak = cpu_seconds(pid) - cpu_before, peak_mib(pid)
    finally:
        web.stop()
    answers = sorted({o.status for o in outcomes})
    return [
        Row(f"{name}: answer", "; ".join(answers)),
        Row(f"{name}: slowest answer", f"{max(o.seconds for o in outcomes):.2f} s"),
        Row(f"{name}: bytes sent (most)", f"{max(o.sent for o in outcomes) / MIB:,.1f} MiB"),
        Row(f"{name}: slowest GET /api/blocks", f"{max(probe.samples, default=0):.2f} s"
            + (f" ({probe.failures} failed)" if probe.failures else "")),
        Row(f"{name}: web CPU time", f"{cpu:.2f} s"),
        Row(f"{name}: web peak RSS (VmHWM)", f"{peak:,.0f} MiB (idle: {idle:,.0f} MiB)"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--declared-send-mib", type=int, default=DECLARED // MIB)
    parser.add_argument("--chunked-mib", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=3)
    args = parser.parse_args()

    checkout = Path(serve.__file__).resolve().parents[1]
    print(f"checkout: {checkout}\nweb server: {' '.join(web_argv(0)[1:])}")
    rows = phase("declared 4 GiB", checkout, [dict(
        path="/api/auth/token", declared=DECLARED, send=args.declared_send_mib * MIB)])
    rows += phase(f"{args.concurrent} x chunked {args.chunked_mib} MiB", checkout,
                  [dict(path="/api/graphs", declared=None, send=args.chunked_mib * MIB)
                   for _ in range(args.concurrent)])
    print_table(rows)


if __name__ == "__main__":
    main()
