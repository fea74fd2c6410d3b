"""docker/: what can be checked without a Docker engine. The compose file parses and asks
for what docs/deploy.md promises; every service runs a command the project has; the
Dockerfile's stages come in order, with no compiler in the runtime images but the FPGA
worker's, a non-root user and health checks; and the entry point runs, outside Docker, with
the environment the images set (SQLite here instead of PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from compute.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
APP_SERVICES = {"web", "worker-cpu", "worker-gpu", "worker-fpga", "sweep"}
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|cc|c\+\+|make)\b")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


# The Dockerfile, read as Docker reads it: continuation lines joined, one instruction each.
def dockerfile_stages() -> dict[str, dict[str, Any]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest.strip(), re.I)
            assert match, f"every stage is named: {line}"
            current = {"base": match[1], "lines": [], "order": len(stages)}
            stages[match[2]] = current
        elif current is not None:
            current["lines"].append((word, rest.strip()))
    return stages


def chain(stages: dict[str, dict[str, Any]], target: str) -> list[tuple[str, str]]:
    """A target's instructions, its parent stages' first."""
    stage = stages[target]
    parent = stage["base"]
    return (chain(stages, parent) if parent in stages else []) + stage["lines"]


def test_the_stages_build_in_order_and_copy_only_from_earlier_ones() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["python-build", "editor", "runtime", "worker", "fpga-worker", "web"]
    for name, stage in stages.items():
        if stage["base"] in stages:
            assert stages[stage["base"]]["order"] < stage["order"]
        for word, rest in stage["lines"]:
            source = re.match(r"--from=(\S+)", rest)
            if word == "COPY" and source:
                assert stages[source[1]]["order"] < stage["order"], (name, rest)
            elif word == "COPY":  # from the build context (the repository root)
                for path in rest.split()[:-1]:
                    assert (ROOT / path).exists(), (name, path)
    # The editor's stage takes the API's document the Python stage generates.
    editor = " ".join(rest for _, rest in stages["editor"]["lines"])
    assert "--from=python-build" in editor and "openapi.json" in editor
    assert "npm ci" in editor and "npm run --silent build" in editor


def test_the_runtime_images_have_no_compiler_but_the_fpga_worker_has_g_plus_plus() -> None:
    stages = dockerfile_stages()
    for target in ("runtime", "worker", "web"):
        runs = [rest for word, rest in chain(stages, target) if word == "RUN"]
        for rest in runs[:]:
            assert not COMPILERS.search(rest), (target, rest)
    fpga = [rest for word, rest in chain(stages, "fpga-worker") if word == "RUN"]
    assert any("g++" in rest for rest in fpga)
    # The build stage alone has the compilers for wheels built from source.
    assert any("build-essential" in rest for word, rest in stages["python-build"]["lines"])


@pytest.mark.parametrize("target", ["web", "worker", "fpga-worker"])
def test_each_image_runs_as_a_user_and_checks_its_health(target: str) -> None:
    lines = chain(dockerfile_stages(), target)
    users = [rest for word, rest in lines if word == "USER"]
    assert users and users[-1] not in ("root", "0"), target
    health = [rest for word, rest in lines if word == "HEALTHCHECK"]
    assert health, target
    entry = [rest for word, rest in lines if word == "ENTRYPOINT"]
    assert entry == ['["shipyard-entrypoint"]']
    assert ("COPY", "docker/entrypoint.sh /usr/local/bin/shipyard-entrypoint") in lines
    if target != "web":
        assert "shipyard worker-health" in health[-1]


def test_the_compose_file_has_every_service_with_its_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    gpu = services["worker-gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["environment"]["SHIPYARD_QUEUES"] == "gpu"
    assert "SHIPYARD_CONCURRENCY" not in gpu["environment"]  # a gpu worker runs one
    stages = dockerfile_stages()
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"]["target"] in stages, name
        assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert "shipyard-home:/data" in service["volumes"], name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["healthcheck"].get("disable") or service["healthcheck"]["test"], name
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    assert services["web"]["environment"]["SHIPYARD_MIGRATE"] == "1"
    assert not any(services[name]["environment"].get("SHIPYARD_MIGRATE")
                   for name in APP_SERVICES - {"web"} if "environment" in services[name])
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "shipyard-home"}


def entrypoint_roles() -> set[str]:
    text = ENTRYPOINT.read_text()
    return set(re.search(r"^\s+(web\|[a-z|]+)\)", text, re.M)[1].split("|"))


def test_every_service_runs_a_command_the_project_has(compose: dict[str, Any]) -> None:
    roles = entrypoint_roles()
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["command"][0] in roles, name
        test = service["healthcheck"].get("test") or []
        if test[1:2] == ["shipyard"]:
            assert test[2] in commands, (name, test)
    # The roles' own commands: `shipyard worker` and `shipyard sweep`.
    assert {"worker", "sweep", "worker-health"} <= commands


def test_compose_interpolates_only_variables_env_example_documents(
        compose: dict[str, Any]) -> None:
    text = (DOCKER / "compose.yaml").read_text()
    documented = {line.split("=", 1)[0] for line in (DOCKER / "env.example").read_text()
                  .splitlines() if line and not line.startswith("#")}
    needed = set(re.findall(r"\$\{([A-Z_]+)\}", text))  # those without a default
    assert needed and needed <= documented, needed - documented


# The entry point, run outside Docker: the image's environment, on SQLite.
def image_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    dist = tmp_path / "dist"
    dist.mkdir(exist_ok=True)
    (dist / "manifest.json").write_text("{}")
    keep = {"LANG", "HOME", "TMPDIR", "SYSTEMROOT"}
    environ = {k: v for k, v in os.environ.items() if k in keep}
    environ.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="builder.settings",
        SHIPYARD_HOME=str(tmp_path / "data"), SHIPYARD_STATIC_ROOT=str(tmp_path / "static"),
        SHIPYARD_LOG_FORMAT="json", SHIPYARD_EDITOR_DIST=str(dist),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0", SHIPYARD_WAIT_SECONDS="5")
    environ.update(extra)
    return environ


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def entrypoint(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", str(ENTRYPOINT), *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=180)


def test_the_check_role_migrates_when_asked_and_runs_the_checks(tmp_path: Path) -> None:
    result = entrypoint(image_env(tmp_path, SHIPYARD_MIGRATE="1"), "check")
    assert result.returncode == 0, result.stderr
    assert "applying migrations" in result.stderr
    assert "System check identified no issues" in result.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 10


def test_the_sweep_role_runs_shipyard_sweep(tmp_path: Path) -> None:
    environ = image_env(tmp_path)
    assert entrypoint(environ, "migrate").returncode == 0
    result = entrypoint(environ, "sweep", "--once")
    assert result.returncode == 0, result.stderr


def test_the_worker_role_runs_shipyard_worker_with_the_images_queues(tmp_path: Path) -> None:
    result = entrypoint(image_env(tmp_path, SHIPYARD_QUEUES="tpu"), "worker")
    assert result.returncode == 2
    assert "unknown queue 'tpu'" in result.stderr
    result = entrypoint(image_env(tmp_path, SHIPYARD_QUEUES="gpu", SHIPYARD_CONCURRENCY="4"),
                        "worker")
    assert result.returncode == 2 and "solo" in result.stderr


def test_a_database_that_never_answers_stops_the_entrypoint_saying_so(tmp_path: Path) -> None:
    environ = image_env(tmp_path, SHIPYARD_WAIT_SECONDS="2",
                        DATABASE_URL=f"postgres://shipyard:x@127.0.0.1:{closed_port()}/shipyard")
    started = time.monotonic()
    result = entrypoint(environ, "web")
    assert result.returncode != 0
    assert "the database did not answer" in result.stderr
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_the_web_role_serves_the_app_and_its_probes(tmp_path: Path) -> None:
    port = closed_port()
    environ = image_env(tmp_path, SHIPYARD_MIGRATE="1", PORT=str(port),
                        ALLOWED_HOSTS="shipyard.example.org")
    log = (tmp_path / "web.log").open("w")
    proc = subprocess.Popen(["/bin/sh", str(ENTRYPOINT), "web"], cwd=ROOT, env=environ,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    assert json.load(r) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()[-3000:]
                time.sleep(0.5)
        # Redis is a closed port here: not ready, and the answer says which.
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert not_ready.value.code == 503
        assert json.load(not_ready.value) == {
            "database": "ok", "redis": "unreachable", "status": "not ready: redis unreachable"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    # exec: Daphne itself got the signal (no shell in between to swallow it).
    assert proc.returncode == 0, (tmp_path / "web.log").read_text()[-3000:]
