"""C simulation and synthesis of an HLS project with Vitis HLS, where it is installed, and
the latency, initiation interval and resources its own report gives.

    path = vitis_available()                  # None on a machine without the AMD tools
    result = synthesize(project, progress=print, timeout=3600)
    result["latency_cycles"]["worst"], result["interval"]["max"], result["resources"]["LUT"]

`synthesize` runs the project's own `build_prj.tcl` (hls4ml's script) in a subprocess with
C simulation and synthesis switched on and the rest (co-simulation, export, Vivado
synthesis) off, with a time limit that kills the tool's whole process group. Its output goes
to `shipyard/vitis.log`; a failure raises `FpgaError` with the log's last lines. The numbers
come from `myproject_prj/solution1/syn/report/myproject_csynth.xml`, read by `parse_report`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .hls import PROJECT_NAME, TAIL_LINES, FpgaError, FpgaStopped, Project, _kill, stop_asked

Progress = Callable[[str], None]
DEFAULT_TIMEOUT = 3600.0
# The tools, newest first: Vitis HLS (2020.2 to 2024.x), the unified Vitis command that
# replaces it from 2024.2 (`vitis-run --mode hls`), and Vivado HLS (up to 2020.1).
TOOLS = ("vitis_hls", "vitis-run", "vivado_hls")
# hls4ml 1.3's Vitis build_prj.tcl reads its switches from build_opt.tcl (its Vivado one from
# the command line's "csim=1 synth=1 ..."): both are given.
OPTIONS = {"reset": 1, "csim": 1, "synth": 1, "cosim": 0, "validation": 0, "export": 0,
           "vsynth": 0, "fifo_opt": 0}
STAGES = {"***** C SIMULATION *****": "C simulation (Vitis HLS)",
          "***** C/RTL SYNTHESIS *****": "synthesis (Vitis HLS: minutes, more for large layers)"}
RESOURCES = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")
MAX_REPORT_BYTES = 16 * 2**20  # a csynth.xml is a few kB to a few hundred kB
_UNDEFINED = {"undef", "-", ""}
_TIME_UNITS = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9, "sec": 1e9}
_CSIM_DONE = re.compile(r"CSim done with ([0-9]+) errors")


def vitis_available() -> str | None:
    """The path of the HLS tool on the PATH (vitis_hls, else vitis-run, else vivado_hls), or
    None where none is installed (or its settings64.sh was not sourced)."""
    for name in TOOLS:
        found = shutil.which(name)
        if found:
            return found
    return None


def report_path(project: Project) -> Path:
    """Where the tools write the synthesis report of `project`."""
    return (project.path / f"{PROJECT_NAME}_prj" / "solution1" / "syn" / "report"
            / f"{PROJECT_NAME}_csynth.xml")


def csim_log_path(project: Project) -> Path:
    """Where the tools write the C simulation's log of `project`."""
    return (project.path / f"{PROJECT_NAME}_prj" / "solution1" / "csim" / "report"
            / f"{PROJECT_NAME}_csim.log")


def tool_command(tool: str) -> list[str]:
    """The command line that runs build_prj.tcl with `tool` (a path from vitis_available)."""
    if Path(tool).name == "vitis-run":
        return [tool, "--mode", "hls", "--tcl", "build_prj.tcl"]
    return [tool, "-f", "build_prj.tcl", " ".join(f"{k}={v}" for k, v in OPTIONS.items())]


def synthesize(project: Project, *, progress: Progress | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Run C simulation and synthesis of `project` with the HLS tool on the PATH and return
    `parse_report` of its synthesis report plus `csim` ({"ran", "passed"}) and `seconds`
    (wall time). The C simulation runs the project's testbench on tb_data (what
    `write_testbench` put there; hls4ml's testbench runs five all-zero samples without it).
    Raises `FpgaError` where the tool is missing, fails, or passes `timeout` seconds."""
    tool = vitis_available()
    if tool is None:
        raise FpgaError("Vitis HLS is not on the PATH: install it and source its "
                        "settings64.sh before starting the worker")
    if not (project.path / "build_prj.tcl").is_file():
        raise FpgaError("the project folder has no build_prj.tcl: not an hls4ml project")
    report, csim_log = report_path(project), csim_log_path(project)
    for stale in (report, csim_log):
        stale.unlink(missing_ok=True)
    (project.path / "build_opt.tcl").write_text(
        "array set opt {\n" + "".join(f"    {k:<10} {v}\n" for k, v in OPTIONS.items()) + "}\n")
    own = project.path / "shipyard"
    own.mkdir(exist_ok=True)
    log_path = own / "vitis.log"
    if progress is not None:
        progress(f"starting {Path(tool).name}")
    began = time.monotonic()
    code = _run(tool_command(tool), project.path, log_path, progress, timeout)
    seconds = time.monotonic() - began
    if code != 0:
        raise FpgaError(f"{Path(tool).name} failed (exit status {code})"
                        f"{_first_error(log_path)}", _tail(log_path))
    if not report.is_file():
        raise FpgaError(f"{Path(tool).name} finished without a synthesis report "
                        f"({report.relative_to(project.path)}){_first_error(log_path)}",
                        _tail(log_path))
    result = parse_report(report)
    result["csim"] = _csim(csim_log)
    result["seconds"] = round(seconds, 3)
    return result


def _run(argv: list[str], cwd: Path, log_path: Path, progress: Progress | None,
         timeout: float) -> int:
    """Run `argv` in `cwd`, its output to `log_path`, its stages to `progress`; kill its
    process group past `timeout` (an FpgaError). Returns the exit status. Its input is
    empty: `vitis_hls -f` falls into its interactive prompt when a script stops on an error,
    and must read end-of-file there rather than wait."""
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=dict(os.environ),
                                    start_new_session=True)
        except OSError as exc:
            raise FpgaError(f"{Path(argv[0]).name} could not start: {exc.strerror}") from exc
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while True:
            try:
                code = proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                code = None
            seen = _report_stages(log_path, seen, progress)
            if code is not None:
                return code
            if stop_asked():  # a cancel or a shutdown (hls.stop_when)
                _kill(proc)
                raise FpgaStopped(f"{Path(argv[0]).name} was stopped (asked by the caller)")
            if time.monotonic() > deadline:
                _kill(proc)
                raise FpgaError(f"{Path(argv[0]).name} took longer than the time limit "
                                f"({timeout:g} s) and was stopped", _tail(log_path))
    except BaseException:
        _kill(proc)
        raise


def _report_stages(log_path: Path, seen: int, progress: Progress | None) -> int:
    """Give `progress` the stages build_prj.tcl announces in the log after byte `seen`;
    returns the offset read up to (whole lines only)."""
    with open(log_path, "rb") as log:
        log.seek(seen)
        chunk = log.read()
    end = chunk.rfind(b"\n") + 1
    if progress is not None:
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            words = STAGES.get(line.strip())
            if words:
                progress(words)
    return seen + end


def _tail(log_path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The log's last non-blank lines, each cut to 300 characters."""
    try:
        text = log_path.read_bytes()[-256_000:].decode("utf-8", "replace")
    except OSError:
        return []
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [line[:300] for line in kept[-lines:]]


def _first_error(log_path: Path) -> str:
    """': ' and the first ERROR line the tool wrote (its own words), or ''."""
    try:
        with open(log_path, "rb") as log:
            for raw in log:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith(("ERROR:", "@E ")):
                    return f": {line[:200]}"
    except OSError:
        pass
    return ""


def _csim(log: Path) -> dict[str, Any]:
    """Whether the C simulation ran and passed, from its log (None: no verdict in it)."""
    if not log.is_file():
        return {"ran": False, "passed": None}
    done = _CSIM_DONE.findall(log.read_bytes()[-64_000:].decode("utf-8", "replace"))
    return {"ran": True, "passed": int(done[-1]) == 0 if done else False}


# --- the synthesis report -------------------------------------------------------------


def parse_report(path: Path) -> dict[str, Any]:
    """The numbers of a Vitis (or Vivado) HLS synthesis report, `<top>_csynth.xml`:

        {"tool_version": "2023.2", "part": "xcu250-figd2104-2L-e", "top": "myproject",
         "latency_cycles": {"best": 2, "worst": 3}, "latency_ns": {"best": 10.0, "worst": 15.0},
         "interval": {"min": 1, "max": 1},
         "clock_ns": {"target": 5.0, "estimated": 3.117, "uncertainty": 1.35},
         "resources": {"BRAM_18K": 0, "DSP": 6, "FF": 118, "LUT": 406, "URAM": 0},
         "available": {"BRAM_18K": 5376, "DSP": 12288, ...: the part's},
         "utilization": {"BRAM_18K": 0.0, "DSP": 0.000488, ...: used / available}}

    A value the tool leaves undefined ("undef": a loop of unknown trip count) is None. A
    report that is not well-formed XML, has a DOCTYPE, or lacks the latency or resources is
    an `FpgaError` naming the file."""
    name = Path(path).name
    root = _read_xml(Path(path), name)
    perf = _need(root, "PerformanceEstimates", name)
    latency = _need(perf, "SummaryOfOverallLatency", name)
    resources = _need(_need(root, "AreaEstimates", name), "Resources", name)
    available = root.find("AreaEstimates/AvailableResources")
    target = _number(root, "UserAssignments/TargetClockPeriod", name, float)
    best = _number(latency, "Best-caseLatency", name, int)
    worst = _number(latency, "Worst-caseLatency", name, int)
    used = _resources(resources, name)
    total = _resources(available, name) if available is not None else dict.fromkeys(RESOURCES)
    return {
        "tool_version": _text(root, "ReportVersion/Version"),
        "part": _text(root, "UserAssignments/Part"),
        "top": _text(root, "UserAssignments/TopModelName"),
        "latency_cycles": {"best": best, "worst": worst},
        "latency_ns": {"best": _real_time(latency, "Best", best, target, name),
                       "worst": _real_time(latency, "Worst", worst, target, name)},
        "interval": {"min": _number(latency, "Interval-min", name, int),
                     "max": _number(latency, "Interval-max", name, int)},
        "clock_ns": {"target": target,
                     "estimated": _number(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod",
                                          name, float),
                     "uncertainty": _number(root, "UserAssignments/ClockUncertainty", name,
                                            float)},
        "resources": used,
        "available": total,
        "utilization": _utilization(used, total),
    }


def _utilization(used: dict[str, int | None], total: dict[str, int | None]
                 ) -> dict[str, float]:
    """Used / available of each resource both of which the report gives (and the part has)."""
    shares: dict[str, float] = {}
    for key in RESOURCES:
        count, whole = used[key], total[key]
        if count is not None and whole:
            shares[key] = count / whole
    return shares


def _read_xml(path: Path, name: str) -> ET.Element:
    """The report's root element. Tool output, read defensively: bounded in size and with no
    DOCTYPE (so no entity of any kind can expand)."""
    try:
        size = path.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise FpgaError(f"the synthesis report {name} is {size:,} bytes, more than a "
                            f"report ever is ({MAX_REPORT_BYTES:,}): not read")
        data = path.read_bytes()
    except OSError as exc:
        raise FpgaError(f"the synthesis report {name} could not be read: "
                        f"{exc.strerror}") from exc
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FpgaError(f"the synthesis report {name} declares a DOCTYPE or entities, which "
                        "an HLS report never does: not read")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise FpgaError(f"the synthesis report {name} is not well-formed XML ({exc})") from exc
    if root.tag != "profile":
        raise FpgaError(f"the synthesis report {name} is not an HLS csynth report (its root "
                        f"is <{root.tag[:40]}>, not <profile>)")
    return root


def _need(parent: ET.Element, tag: str, name: str) -> ET.Element:
    found = parent.find(tag)
    if found is None:
        raise FpgaError(f"the synthesis report {name} has no <{tag}> under <{parent.tag}>: "
                        "not a complete HLS csynth report")
    return found


def _text(parent: ET.Element, path: str) -> str | None:
    found = parent.find(path)
    return None if found is None or found.text is None else found.text.strip()[:80]


def _number(parent: ET.Element, path: str, name: str, kind: type[int] | type[float]
            ) -> Any:
    """The number at `path` (None where absent or undefined); anything else not a number is
    an FpgaError naming the element."""
    text = _text(parent, path)
    if text is None or text.lower() in _UNDEFINED:
        return None
    try:
        return kind(text)
    except ValueError:
        raise FpgaError(f"the synthesis report {name} has {text[:40]!r} in <{path}>, not a "
                        "number") from None


def _resources(parent: ET.Element | None, name: str) -> dict[str, int | None]:
    """The five resource counts; Vivado HLS called the DSPs DSP48E."""
    if parent is None:
        return dict.fromkeys(RESOURCES)
    counts: dict[str, int | None] = {}
    for key in RESOURCES:
        tag = key if key != "DSP" or parent.find("DSP") is not None else "DSP48E"
        counts[key] = _number(parent, tag, name, int)
    return counts


def _real_time(latency: ET.Element, case: str, cycles: int | None, clock: float | None,
               name: str) -> float | None:
    """The latency in ns: the report's "<case>-caseRealTimeLatency" ("3.475 us"), else the
    cycles times the target clock period."""
    text = _text(latency, f"{case}-caseRealTimeLatency")
    if text and text.lower() not in _UNDEFINED:
        parts = text.split()
        if len(parts) == 2 and parts[1] in _TIME_UNITS:
            try:
                return round(float(parts[0]) * _TIME_UNITS[parts[1]], 6)
            except ValueError:
                pass
        raise FpgaError(f"the synthesis report {name} has {text[:40]!r} in "
                        f"<{case}-caseRealTimeLatency>, not a time such as '3.475 us'")
    if cycles is None or clock is None:
        return None
    return round(cycles * clock, 6)


__all__ = ["csim_log_path", "parse_report", "report_path", "synthesize", "tool_command",
           "vitis_available"]
