"""Vitis HLS's C simulation and synthesis, and the numbers of its report.

No Vitis HLS is installed on this machine (it is a multi-gigabyte download behind an AMD
account), so the tool is replaced by a stand-in put first on the PATH: a shell script that
does what Vitis does to the project folder (writes the C simulation's log and the synthesis
report, prints the stage lines of build_prj.tcl, fails with an ERROR line, or hangs), and, in
the slow test, a Tcl script that runs hls4ml's real build_prj.tcl with the HLS commands
stubbed. The report (data/myproject_csynth.xml) is written in the format Vitis HLS 2023.x
writes, element for element.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from fpga.hls import FpgaError, FpgaStopped, Project, stop_when
from fpga.settings import FpgaSettings
from fpga.vitis import parse_report, report_path, synthesize, tool_command, vitis_available

REPORT = Path(__file__).parent / "data" / "myproject_csynth.xml"

FAKE_VITIS = r"""#!/bin/sh
# A stand-in for Vitis HLS (the test module says why): what $FAKE_VITIS asks.
printf '%s\n' "$@" > fake_argv.txt
echo "****** Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v2023.2 (64-bit)"
case "$FAKE_VITIS" in
ok)
    echo "***** C SIMULATION *****"
    mkdir -p myproject_prj/solution1/csim/report
    printf 'INFO: [SIM 1] CSim done with %s errors.\n' "${FAKE_CSIM_ERRORS:-0}" \
        > myproject_prj/solution1/csim/report/myproject_csim.log
    echo "***** C/RTL SYNTHESIS *****"
    mkdir -p myproject_prj/solution1/syn/report
    cp "$FAKE_REPORT" myproject_prj/solution1/syn/report/myproject_csynth.xml
    echo "INFO: [HLS 200-111] Finished Command csynth_design"
    exit 0 ;;
fail)
    echo "***** C SIMULATION *****"
    echo "ERROR: [SIM 211-100] 'csim_design' failed: compilation error(s)."
    echo "    while executing"
    echo "\"csim_design\""
    exit 1 ;;
silent)
    echo "ERROR: [HLS 200-1023] Part 'xcu250-figd2104-2L-e' is not installed."
    exit 0 ;;
hang)
    echo $$ > fake_pid.txt
    sleep 60 &
    echo $! >> fake_pid.txt
    wait ;;
esac
"""


def fake_tool(folder: Path, name: str = "vitis_hls", text: str = FAKE_VITIS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(text)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A folder with a build_prj.tcl, as build_project leaves one (the stand-in does not
    read the rest)."""
    folder = tmp_path / "project"
    (folder / "shipyard").mkdir(parents=True)
    (folder / "build_prj.tcl").write_text("# hls4ml's script\n")
    return Project(folder, FpgaSettings(), (4,), (2,))


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tool = fake_tool(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_REPORT", str(REPORT))
    return tool


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = REPORT.read_text()
    assert old in text
    path = tmp_path / "myproject_csynth.xml"
    path.write_text(text.replace(old, new))
    return path


# --- parse_report ---------------------------------------------------------------------


def test_the_report_gives_latency_interval_clock_and_resources() -> None:
    report = parse_report(REPORT)
    assert report["tool_version"] == "2023.2"
    assert report["part"] == "xcu250-figd2104-2L-e" and report["top"] == "myproject"
    assert report["latency_cycles"] == {"best": 2, "worst": 3}
    assert report["latency_ns"] == {"best": 10.0, "worst": 15.0}
    assert report["interval"] == {"min": 1, "max": 1}
    assert report["clock_ns"] == {"target": 5.0, "estimated": 3.117, "uncertainty": 1.35}
    assert report["resources"] == {"BRAM_18K": 0, "DSP": 6, "FF": 118, "LUT": 406, "URAM": 0}
    assert report["available"] == {"BRAM_18K": 5376, "DSP": 12288, "FF": 3456000,
                                   "LUT": 1728000, "URAM": 1280}
    assert report["utilization"]["DSP"] == pytest.approx(6 / 12288, rel=1e-4)
    assert report["utilization"]["LUT"] == pytest.approx(406 / 1728000, rel=1e-3)
    assert report["utilization"]["BRAM_18K"] == 0


def test_an_undefined_latency_is_none_and_real_time_comes_in_its_unit(tmp_path: Path) -> None:
    path = edited(tmp_path, "<Worst-caseLatency>3</Worst-caseLatency>",
                  "<Worst-caseLatency>undef</Worst-caseLatency>")
    text = path.read_text().replace("15.000 ns", "undef").replace("10.000 ns", "1.5 us")
    path.write_text(text)
    report = parse_report(path)
    assert report["latency_cycles"] == {"best": 2, "worst": None}
    assert report["latency_ns"] == {"best": 1500.0, "worst": None}


def test_vivado_hls_reports_name_the_dsps_dsp48e(tmp_path: Path) -> None:
    path = edited(tmp_path, "<DSP>6</DSP>", "<DSP48E>6</DSP48E>")
    path.write_text(path.read_text().replace("<DSP>12288</DSP>", "<DSP48E>12288</DSP48E>"))
    assert parse_report(path)["resources"]["DSP"] == 6


@pytest.mark.parametrize(("old", "new", "says"), [
    ("</AreaEstimates>\n", "", "not well-formed XML"),
    ("AreaEstimates>", "Area>", "no <AreaEstimates>"),
    ("<LUT>406</LUT>", "<LUT>lots</LUT>", "'lots' in <LUT>"),
    ("<Best-caseRealTimeLatency>10.000 ns", "<Best-caseRealTimeLatency>10 years",
     "not a time"),
    ("<profile>", '<!DOCTYPE p [<!ENTITY a "aaaa">]>\n<profile>', "DOCTYPE"),
    ("<profile>", "<report>", "not an HLS csynth report"),
])
def test_a_malformed_report_is_an_fpga_error_naming_the_file(
        tmp_path: Path, old: str, new: str, says: str) -> None:
    path = edited(tmp_path, old, new)
    if new == "<report>":
        path.write_text(path.read_text().replace("</profile>", "</report>"))
    with pytest.raises(FpgaError) as caught:
        parse_report(path)
    assert "myproject_csynth.xml" in caught.value.message
    assert says in caught.value.message


# --- the tool -------------------------------------------------------------------------


def test_vitis_is_found_on_the_path_or_not(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert vitis_available() is None
    older = fake_tool(tmp_path / "old", "vivado_hls")
    newer = fake_tool(tmp_path / "new", "vitis_hls")
    monkeypatch.setenv("PATH", f"{older.parent}{os.pathsep}{newer.parent}")
    assert vitis_available() == str(newer)  # Vitis HLS before Vivado HLS, wherever it is
    assert tool_command("/opt/x/bin/vitis-run")[1:] == ["--mode", "hls", "--tcl",
                                                         "build_prj.tcl"]


def test_synthesis_runs_csim_and_synthesis_and_reads_the_report(
        project: Project, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VITIS", "ok")
    said: list[str] = []
    result = synthesize(project, progress=said.append, timeout=30)
    assert result["latency_cycles"] == {"best": 2, "worst": 3}
    assert result["interval"] == {"min": 1, "max": 1}
    assert result["resources"]["LUT"] == 406
    assert result["csim"] == {"ran": True, "passed": True}
    assert 0 < result["seconds"] < 30
    assert said == ["starting vitis_hls", "C simulation (Vitis HLS)",
                    "synthesis (Vitis HLS: minutes, more for large layers)"]
    argv = (project.path / "fake_argv.txt").read_text().splitlines()
    assert argv[:2] == ["-f", "build_prj.tcl"] and "cosim=0" in argv[2]
    options = (project.path / "build_opt.tcl").read_text()
    assert "csim       1" in options and "synth      1" in options
    assert "cosim      0" in options and "validation 0" in options
    assert "Finished Command csynth_design" in (project.path / "shipyard" / "vitis.log"
                                                ).read_text()


def test_a_c_simulation_with_errors_is_reported_as_not_passed(
        project: Project, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VITIS", "ok")
    monkeypatch.setenv("FAKE_CSIM_ERRORS", "3")
    assert synthesize(project, timeout=30)["csim"] == {"ran": True, "passed": False}


def test_a_failing_tool_is_an_fpga_error_with_its_own_words(
        project: Project, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VITIS", "fail")
    with pytest.raises(FpgaError) as caught:
        synthesize(project, timeout=30)
    error = caught.value
    assert error.message.startswith("vitis_hls failed (exit status 1): ERROR: [SIM 211-100]")
    assert error.log_tail[-1] == '"csim_design"'
    assert any("compilation error(s)" in line for line in error.log_tail)


def test_a_tool_that_leaves_no_report_is_an_fpga_error(
        project: Project, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report_path(project).parent.mkdir(parents=True)
    shutil.copy(REPORT, report_path(project))  # a stale one from an earlier run
    monkeypatch.setenv("FAKE_VITIS", "silent")
    with pytest.raises(FpgaError, match="without a synthesis report") as caught:
        synthesize(project, timeout=30)
    assert caught.value.message.endswith("ERROR: [HLS 200-1023] Part 'xcu250-figd2104-2L-e' "
                                         "is not installed.")


def test_the_time_limit_stops_the_tool_and_its_children(
        project: Project, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VITIS", "hang")
    began = time.monotonic()
    with pytest.raises(FpgaError, match=r"time limit \(1 s\)"):
        synthesize(project, timeout=1)
    assert time.monotonic() - began < 10
    pids = [int(p) for p in (project.path / "fake_pid.txt").read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def test_a_cancel_stops_the_tool_and_its_children_at_once(
        project: Project, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_VITIS", "hang")
    asked_at = time.monotonic() + 1.0  # the caller's check turns true a second in
    began = time.monotonic()
    with stop_when(lambda: time.monotonic() > asked_at), pytest.raises(FpgaStopped):
        synthesize(project, timeout=60)
    assert time.monotonic() - began < 5  # not the 60 s of its time limit
    pids = [int(p) for p in (project.path / "fake_pid.txt").read_text().split()]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def test_without_vitis_synthesis_says_what_to_install(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FpgaError, match=r"settings64\.sh"):
        synthesize(project)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# --- hls4ml's own build_prj.tcl -------------------------------------------------------

TCL_VITIS = r"""#!/usr/bin/env tclsh
# A stand-in for Vitis HLS (the test module says why): the HLS commands record their
# arguments; C simulation and synthesis write what Vitis writes; then hls4ml's script runs.
set at [lsearch -exact $argv -f]
set script [lindex $argv [expr {$at + 1}]]
set argv [lrange $argv [expr {$at + 2}] end]
set argc [llength $argv]
proc called {args} {
    set out [open fake_calls.txt a]
    puts $out $args
    close $out
}
foreach name {open_project set_top add_files open_solution config_array_partition
              config_compile set_part config_schedule create_clock set_clock_uncertainty
              cosim_design export_design} {
    proc $name {args} "called $name {*}\$args"
}
proc csim_design {args} {
    called csim_design
    file mkdir myproject_prj/solution1/csim/report
    set out [open myproject_prj/solution1/csim/report/myproject_csim.log w]
    puts $out {INFO: [SIM 1] CSim done with 0 errors.}
    close $out
}
proc csynth_design {args} {
    called csynth_design
    file mkdir myproject_prj/solution1/syn/report
    file copy -force $::env(FAKE_REPORT) myproject_prj/solution1/syn/report/myproject_csynth.xml
}
source $script
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("tclsh") is None,
                    reason="needs g++ (to build the project) and tclsh (the stand-in)")
def test_hls4ml_s_script_runs_csim_and_synthesis_only_for_the_settings_part_and_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compute.engine import load_graph
    from fpga.hls import build_project

    graph = load_graph({
        "format": "shipyard.graph/v1",
        "nodes": [{"id": "x", "type": "Input", "params": {"shape": [4]}},
                  {"id": "fc", "type": "Linear", "params": {"out_features": 2}},
                  {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": "fc"}, {"from": "fc", "to": "y"}]})
    settings = FpgaSettings(part="xcvu9p-flgb2104-2-i", clock_period=4.0)
    project = build_project(graph, settings, tmp_path / "p", timeout=120)
    tool = fake_tool(tmp_path / "bin", text=TCL_VITIS)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_REPORT", str(REPORT))
    said: list[str] = []
    result = synthesize(project, progress=said.append, timeout=60)
    calls = (project.path / "fake_calls.txt").read_text().splitlines()
    names = [line.split()[0] for line in calls]
    assert "csim_design" in names and "csynth_design" in names
    assert names.index("csim_design") < names.index("csynth_design")
    assert "cosim_design" not in names and "export_design" not in names
    assert "set_part xcvu9p-flgb2104-2-i" in calls
    assert "create_clock -period 4.0 -name default" in calls
    assert "open_project -reset myproject_prj" in calls
    assert said[1:] == ["C simulation (Vitis HLS)",
                        "synthesis (Vitis HLS: minutes, more for large layers)"]
    assert result["csim"] == {"ran": True, "passed": True}
    assert result["resources"]["DSP"] == 6
