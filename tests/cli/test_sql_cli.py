"""`shipyard sql`, run as a user runs it: statements on the command line, from a file, from
standard input and at a prompt on a terminal; tables or JSON out; --write, --dump, --new."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import shipyard  # tests/cli is on sys.path (no __init__.py)

from compute.engine import load_starter


@pytest.fixture
def gpt_file(tmp_path: Path) -> Path:
    path = tmp_path / "gpt.json"
    path.write_text(json.dumps(load_starter("char_gpt")))
    return path


def test_a_select_prints_a_table(gpt_file: Path) -> None:
    run = shipyard("sql", str(gpt_file),
                   "SELECT id, type, flops FROM nodes ORDER BY flops DESC LIMIT 2")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["id", "type", "flops"]
    assert lines[2].split()[:2] == ["blocks", "Repeat"]
    assert "(2 rows)" in run.stdout


def test_json_output_for_scripts(gpt_file: Path) -> None:
    run = shipyard("sql", str(gpt_file), "--json", "SELECT count(*) AS n FROM edges")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["columns"] == ["n"] and out["rows"][0][0] > 0 and out["change"] is None


def test_a_change_is_shown_and_written_only_with_write(gpt_file: Path) -> None:
    before = gpt_file.read_text()
    grow = "UPDATE nodes SET params = json_set(params, '$.times', 6) WHERE id = 'blocks'"
    run = shipyard("sql", str(gpt_file), grow)
    assert run.returncode == 0, run.stderr
    assert "1 node changed" in run.stdout and "pass --write" in run.stdout
    assert gpt_file.read_text() == before
    run = shipyard("sql", str(gpt_file), grow, "--write")
    assert run.returncode == 0, run.stderr
    saved = json.loads(gpt_file.read_text())
    assert next(n for n in saved["nodes"] if n["id"] == "blocks")["params"]["times"] == 6


def test_an_invalid_change_exits_1_names_the_problem_and_writes_nothing(gpt_file: Path) -> None:
    before = gpt_file.read_text()
    run = shipyard("sql", str(gpt_file), "--write",
                   "UPDATE nodes SET params = json_set(params, '$.num_heads', 7) "
                   "WHERE type = 'MultiHeadAttention'")
    assert run.returncode == 1
    assert "nothing was changed" in run.stderr and "blocks/attn" in run.stderr
    assert gpt_file.read_text() == before


def test_bad_sql_points_at_the_error(gpt_file: Path) -> None:
    run = shipyard("sql", str(gpt_file), "SELECT id FROM nodes WHERE id = 'x' AN type")
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert 'near "AN"' in lines[0]
    assert lines[2].index("^") == lines[1].index("AN")


def test_a_script_file_and_standard_input(gpt_file: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text("-- two statements\nSELECT 1 AS one;\nSELECT name FROM model;\n")
    run = shipyard("sql", str(gpt_file), "-f", str(script))
    assert run.returncode == 0, run.stderr
    assert "one" in run.stdout and "char-gpt" in run.stdout
    run = shipyard("sql", str(gpt_file), stdin="SELECT type FROM nodes WHERE id = 'head'")
    assert run.returncode == 0, run.stderr
    assert "Linear" in run.stdout


def test_dump_then_new_rebuilds_the_file(gpt_file: Path, tmp_path: Path) -> None:
    dump = shipyard("sql", str(gpt_file), "--dump")
    assert dump.returncode == 0, dump.stderr
    rebuilt = tmp_path / "rebuilt.json"
    run = shipyard("sql", str(rebuilt), "--new", "--write", "-f", "-", stdin=dump.stdout)
    assert run.returncode == 0, run.stderr
    assert json.loads(rebuilt.read_text()) == json.loads(gpt_file.read_text())
    again = shipyard("sql", str(rebuilt), "--new", "SELECT 1")
    assert again.returncode == 2 and "--force" in again.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    run = shipyard("sql", str(tmp_path / "nope.json"), "SELECT 1")
    assert run.returncode == 2 and "--new" in run.stderr


def test_the_prompt_runs_statements_and_keeps_history(gpt_file: Path, tmp_path: Path) -> None:
    main, terminal = pty.openpty()
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "compute.cli", "sql", str(gpt_file)],
                            stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    os.close(terminal)
    for line in ("SELECT count(*)", "AS n FROM nodes;", "SELECT 'second' AS s;"):
        os.write(main, (line + "\n").encode())
        time.sleep(0.3)
    os.write(main, b"\x04")
    out, err = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 0, err
    assert "Shipyard SQL" in err
    assert "second" in out and "(1 row)" in out
    history = (tmp_path / ".shipyard_sql_history").read_text()
    assert "SELECT 'second' AS s;" in history


def test_trained_weights_queried_frozen_and_fine_tuned(tmp_path: Path) -> None:
    """Train the MLP, read its eval, freeze its first layer with --write (the names go into
    the weights file), and fine-tune: the frozen tensors come out bit for bit."""
    from safetensors.torch import load_file

    model = tmp_path / "mlp.json"
    model.write_text(json.dumps(load_starter("mlp")))
    first = tmp_path / "first"
    run = shipyard("train", str(model), "--dataset", "digits", "--steps", "30",
                   "--out", str(first))
    assert run.returncode == 0, run.stderr
    weights = first / "model.safetensors"
    run = shipyard("sql", str(model), "--weights", str(weights), "--dataset", "digits",
                   "--json", "SELECT loss, accuracy FROM eval")
    assert run.returncode == 0, run.stderr
    (loss, accuracy), = json.loads(run.stdout)["rows"]
    assert loss > 0 and 0.2 < accuracy <= 1
    run = shipyard("sql", str(model), "--weights", str(weights), "--write",
                   "UPDATE tensors SET frozen = 1 WHERE node = 'hidden1'")
    assert run.returncode == 0, run.stderr
    assert "written to" in run.stdout
    second = tmp_path / "second"
    run = shipyard("train", str(model), "--dataset", "digits", "--steps", "10",
                   "--weights", str(weights), "--out", str(second))
    assert run.returncode == 0, run.stderr
    assert "2 tensors frozen" in run.stderr
    before, after = load_file(str(weights)), load_file(str(second / "model.safetensors"))
    for name in before:
        assert (before[name] == after[name]).all().item() == name.startswith("hidden1."), name
