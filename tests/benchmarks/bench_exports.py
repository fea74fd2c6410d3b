"""What a PyTorch or ONNX download costs the web process: its CPU time and peak memory.

    .venv/bin/python tests/benchmarks/bench_exports.py [--code /path/to/a/checkout] [--limit 150]

Each case runs in a fresh process that plays the web process: Django on a throwaway SQLite
database in a temporary SHIPYARD_HOME, the code of the checkout named by --code (default:
this one), and Django's test client (URL routing, middleware, DRF, the download view). It
makes the graph, resets its peak RSS (/proc/self/clear_refs), then downloads as a client
would, asking again after each 503's Retry-After, until an answer that is not 503 or until
--limit seconds. It prints the answer, the wall time, the CPU seconds of that process alone
(/proc/self/stat; its children's are not counted) and its peak RSS (VmHWM) above what it
held before the download. The cases:

- chain:  the ONNX file of a 5,000-node Linear/ReLU chain, anonymously through a share link
- nested: save Repeat 1024 x (Repeat 1024 x (Repeat 256 x ReLU)) on [B, 1], then download
          its PyTorch file (the save is measured too: SHIPYARD_MAX_MODULES refuses it there)

Run it with --code on a checkout from before exports moved out of the web process to
compare. Not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
warnings.filterwarnings("ignore", message="No directory at")
FORMAT = "shipyard.graph/v1"


def chain_document() -> dict[str, Any]:
    layers = []
    for i in range(2499):
        layers += [{"id": f"lin{i}", "type": "Linear", "params": {"out_features": 16}},
                   {"id": f"act{i}", "type": "ReLU"}]
    return _chain(layers, "chain")


def nested_document() -> dict[str, Any]:
    """No weights and one number per sample: within every limit but the count of copies."""
    block: list[dict[str, Any]] = [{"id": "act", "type": "ReLU"}]
    for node_id, times in (("r3", 256), ("r2", 1024), ("r1", 1024)):
        inner = _chain(block, "", 1)
        inner["nodes"][0] = {"id": "x", "type": "Input"}
        block = [{"id": node_id, "type": "Repeat", "params": {"times": times},
                  "graph": {"nodes": inner["nodes"], "edges": inner["edges"]}}]
    return _chain(block, "nested", 1)


def _chain(layers: list[dict[str, Any]], name: str, width: int = 16) -> dict[str, Any]:
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [width]}}, *layers,
             {"id": "y", "type": "Output"}]
    return {"format": FORMAT, "name": name, "nodes": nodes,
            "edges": [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]}


def say(line: dict[str, Any]) -> None:
    """Straight to the file descriptor: the old download redirected sys.stdout meanwhile."""
    os.write(1, (json.dumps(line) + "\n").encode())


def figures(rss_before: int, cpu_before: float, started: float) -> dict[str, Any]:
    status = Path("/proc/self/status").read_text()
    hwm = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return {"wall_s": round(time.monotonic() - started, 1),
            "web_cpu_s": round(cpu - cpu_before, 2),
            "web_peak_rss_mb": round(hwm / 1024), "web_peak_above_start_mb":
                round((hwm - rss_before) / 1024)}


def serve(case: str, code: Path, limit: float) -> None:
    """The web process: set up, download, print one JSON line."""
    sys.path.insert(0, str(code))
    os.environ["SHIPYARD_HOME"] = tempfile.mkdtemp(prefix="shipyard-bench-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "builder.settings"
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from builder.graphs import services

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="x-long-enough-pass-1")
    client = APIClient()
    if case == "chain":
        graph = services.create_graph(owner=user, document=chain_document())
        _, token = services.create_share_link(graph=graph, created_by=user)
        url = f"/api/shared/{token}/download?format=onnx"

    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here on
    rss = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmRSS:")).split()[1])
    stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    started = time.monotonic()
    if case == "nested":  # its save is measured too: the module limit refuses it there
        client.force_authenticate(user)
        saved = client.post("/api/graphs", {"document": nested_document()}, format="json")
        if saved.status_code != 201:
            problem = (saved.json().get("problems") or [{}])[0].get("message", "")
            say({"case": case, "answer": f"{saved.status_code} at save: {problem[:120]}",
                 **figures(rss, cpu, started)})
            return
        url = f"/api/graphs/{saved.json()['id']}/download?format=pytorch"

    def give_up() -> None:  # an export in the request thread cannot be stopped: say so
        say({"case": case, "answer": f"none within {limit:.0f} s", **figures(rss, cpu, started)})
        os._exit(0)

    watchdog = threading.Timer(limit, give_up)
    watchdog.daemon = True
    watchdog.start()
    asked = 0
    while True:
        response = client.get(url)
        asked += 1
        if response.status_code != 503:
            break
        time.sleep(min(5, int(response["Retry-After"])))
    watchdog.cancel()
    answer = f"{response.status_code}"
    if response.status_code != 200:
        answer += f" {response.json().get('error')}"
    say({"case": case, "answer": answer, "requests": asked, **figures(rss, cpu, started)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--limit", type=float, default=150, help="seconds per case")
    parser.add_argument("--case", choices=["chain", "nested"], action="append")
    parser.add_argument("--serve", choices=["chain", "nested"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.code.resolve(), args.limit)
        return 0
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
    for case in args.case or ["chain", "nested"]:
        subprocess.run([sys.executable, __file__, "--serve", case, "--code", str(args.code),
                        "--limit", str(args.limit)], env=env, cwd=args.code, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
