"""`shipyard up`, the README's run command: the whole app starts, answers, and stops cleanly."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_up_serves_the_app_with_its_own_redis_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["SHIPYARD_HOME"] = str(tmp_path / "home")
    proc = subprocess.Popen([sys.executable, "-m", "compute.cli", "up", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = get(f"http://127.0.0.1:{port}/api/blocks")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, proc.stdout.read() if proc.poll() is not None else "no answer"
        assert any(b["type"] == "Linear" for b in json.loads(body))
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        assert (tmp_path / "home" / "db.sqlite3").exists()  # migrated, under SHIPYARD_HOME
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "redis on redis://127.0.0.1:" in output
    assert "stopped" in output
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/api/blocks")
