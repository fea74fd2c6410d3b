"""How fast the web app saves, loads and inspects a real graph, through the whole stack.

    .venv/bin/python tests/benchmarks/bench_api.py [--iterations 200] [--starter char_gpt]

Sets Django up on a throwaway SQLite database in a temporary SHIPYARD_HOME (or on the
database named by --database-url, e.g. a scratch PostgreSQL one; it is migrated), creates a
user with an API token, and times, warm, through Django's test client (URL routing, every
middleware, DRF authentication with the Bearer token, the engine, the ORM):

- save:    POST /api/graphs/{id}/versions   (a real new version each time: the layout moves)
- load:    GET  /api/graphs/{id}            (the latest version with its document)
- inspect: POST /api/inspect                (shapes, parameters, FLOPs on the meta device)

It prints the median and p95 of each in milliseconds against the targets (p95 under 50 ms
for save and load, under 100 ms for inspect) and exits 1 if a target is missed.
Not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import percentile

ROOT = Path(__file__).resolve().parents[2]
# WhiteNoise warns once per process when STATIC_ROOT does not exist yet; not our concern here.
warnings.filterwarnings("ignore", message="No directory at")
TARGETS_MS = {"save": 50.0, "load": 50.0, "inspect": 100.0}


def timed(call: Callable[[int], Any], iterations: int, warmup: int) -> list[float]:
    for i in range(warmup):
        call(-1 - i)
    samples = []
    for i in range(iterations):
        start = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def setup_django(database_url: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["SHIPYARD_HOME"] = tempfile.mkdtemp(prefix="shipyard-bench-")
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "builder.settings")
    os.environ.setdefault("DEBUG", "false")  # DEBUG keeps every SQL query in memory
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--starter", default="char_gpt")
    parser.add_argument("--database-url", help="a scratch database to use instead of SQLite")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    setup_django(args.database_url)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from builder.accounts.services import issue_token
    from compute.engine import load_starter

    user = User.objects.create_user(f"bench-{os.getpid()}-{time.time_ns()}",
                                    password="a-long-bench-password-1")
    _, raw = issue_token(user=user, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    document = load_starter(args.starter)

    created = client.post("/api/graphs", {"document": document}, content_type="application/json")
    assert created.status_code == 201, created.content
    graph_id = created.json()["id"]
    head = {"number": 1}

    def save(i: int) -> None:
        edited = copy.deepcopy(document)
        first = edited["nodes"][0]["id"]
        edited["layout"] = {**edited.get("layout", {}), first: [i, i]}  # the user moved a node
        response = client.post(
            f"/api/graphs/{graph_id}/versions",
            {"document": edited, "base_version": head["number"], "message": f"edit {i}"},
            content_type="application/json")
        assert response.status_code == 201, response.content
        head["number"] = response.json()["version"]["number"]

    def load(i: int) -> None:
        response = client.get(f"/api/graphs/{graph_id}")
        assert response.status_code == 200, response.content

    def inspect(i: int) -> None:
        response = client.post("/api/inspect", document, content_type="application/json")
        assert response.status_code == 200 and response.json()["valid"], response.content

    results = {}
    for name, call in (("save", save), ("load", load), ("inspect", inspect)):
        samples = timed(call, args.iterations, args.warmup)
        results[name] = {"median_ms": round(statistics.median(samples), 2),
                         "p95_ms": round(percentile(samples, 95), 2),
                         "target_p95_ms": TARGETS_MS[name],
                         "ok": percentile(samples, 95) < TARGETS_MS[name]}

    size = len(json.dumps(document))
    if args.json:
        print(json.dumps({"starter": args.starter, "document_bytes": size,
                          "database": connection.vendor, "iterations": args.iterations,
                          "results": results}, indent=2))
    else:
        print(f"Shipyard API, starter {args.starter} ({size:,} bytes of JSON, "
              f"{len(document['nodes'])} top-level nodes), {connection.vendor}, "
              f"{args.iterations} warm iterations each")
        print(f"{'operation':<10}{'median':>10}{'p95':>10}{'target p95':>13}")
        for name, r in results.items():
            verdict = "ok" if r["ok"] else "MISSED"
            print(f"{name:<10}{r['median_ms']:>8.1f}ms{r['p95_ms']:>8.1f}ms"
                  f"{'< ' + str(int(r['target_p95_ms'])) + ' ms':>13}  {verdict}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
