"""`shipyard worker`: its Celery command line, its usage errors, and a real worker that answers."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compute.serve import default_queues, parse_queues, redis_server_binary, worker_argv


def shipyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compute.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["SHIPYARD_HOME"] = str(home)
    return env


def option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_shipyard_up_serves_the_fpga_queue_where_g_plus_plus_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiler = "/usr/bin/g++"
    if not os.path.exists(compiler):
        pytest.skip("no g++ here")
    bare, tools = tmp_path / "bare", tmp_path / "tools"
    bare.mkdir()
    tools.mkdir()
    (tools / "g++").symlink_to(compiler)
    monkeypatch.setenv("PATH", str(bare))
    assert "fpga" not in default_queues()  # an FPGA run would fail there: not served
    monkeypatch.setenv("PATH", str(tools))
    assert default_queues()[-1] == "fpga" and default_queues()[0] == "cpu"


def test_a_gpu_worker_runs_its_tasks_in_its_own_process() -> None:
    argv = worker_argv(["cpu", "gpu"])
    assert option(argv, "--pool") == "solo"
    assert "-c" not in argv
    assert option(argv, "-Q") == "cpu,gpu"
    assert option(argv, "-n") == "shipyard-cpu+gpu@%h"


def test_a_cpu_or_fpga_worker_forks_one_process_unless_told_more() -> None:
    argv = worker_argv(["cpu"])
    assert option(argv, "--pool") == "prefork"
    assert option(argv, "-c") == "1"
    assert {"--without-gossip", "--without-mingle"} <= set(argv)
    argv = worker_argv(["fpga"], concurrency=3, loglevel="debug", name="board@%h")
    assert (option(argv, "--pool"), option(argv, "-c")) == ("prefork", "3")
    assert (option(argv, "-l"), option(argv, "-n")) == ("debug", "board@%h")
    assert argv[:6] == [sys.executable, "-m", "celery", "-A", "compute.celery_app", "worker"]


def test_a_gpu_worker_refuses_more_than_one_at_a_time() -> None:
    with pytest.raises(ValueError, match="solo"):
        worker_argv(["gpu"], concurrency=2)
    with pytest.raises(ValueError, match="at least 1"):
        worker_argv(["cpu"], concurrency=0)


def test_queues_are_parsed_once_each_and_checked() -> None:
    assert parse_queues(" cpu,fpga,cpu ") == ["cpu", "fpga"]
    with pytest.raises(ValueError, match="'tpu'"):
        parse_queues("cpu,tpu")


def test_worker_with_an_unknown_queue_exits_2_naming_it(tmp_path: Path) -> None:
    run = shipyard("worker", "--queues", "cpu,nope", env=clean_env(tmp_path))
    assert run.returncode == 2
    assert "'nope'" in run.stderr
    assert "cpu, gpu, fpga" in run.stderr
    assert "Traceback" not in run.stderr


def test_worker_with_a_bad_concurrency_exits_2(tmp_path: Path) -> None:
    run = shipyard("worker", "--queues", "gpu", "--concurrency", "4", env=clean_env(tmp_path))
    assert run.returncode == 2
    assert "solo" in run.stderr and "Traceback" not in run.stderr


def ping(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celery", "-A", "compute.celery_app", "inspect",
                           "ping", "--timeout", "2"], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_worker_runs_celery_in_the_foreground_and_stops_on_sigterm(tmp_path: Path) -> None:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    redis = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir",
                              str(tmp_path), "--save", "", "--loglevel", "warning"])
    env = clean_env(tmp_path / "home")
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    worker = None
    try:
        subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0",
                        "--settings", "builder.settings"], env=env, check=True, timeout=60)
        worker = subprocess.Popen([sys.executable, "-m", "compute.cli", "worker", "--queues",
                                   "cpu", "--name", "probe@%h"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        answer = ping(env)
        while "pong" not in answer.stdout and time.monotonic() < deadline:
            assert worker.poll() is None, worker.communicate()[0]
            answer = ping(env)
        assert "probe@" in answer.stdout and "pong" in answer.stdout, answer.stdout
    finally:
        if worker is not None:
            # The CLI exec'd Celery: the signal reaches the worker itself (a warm shutdown).
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=60)
        redis.terminate()
        redis.wait(timeout=10)
    assert worker.returncode == 0, output
    assert "probe@" in output and "Warm shutdown" in output
