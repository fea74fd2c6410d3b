"""Running a claimed FPGA job (docs/fpga.md): the graph as an HLS project, emulated in fixed
point and compared with the float model, archived for download; a sweep over bit widths;
Verilog for Linear/ReLU models; Vitis HLS synthesis where it is installed.

Each stage streams as events (`stage` when it begins and ends, `comparison`, `sweep` rows,
`tool` reports) and lands in the job's `result` as it goes. The tools run in subprocesses
(fpga.hls) that a cancel, a shutdown or the run's time limit kills within 0.2 s. A
failure inside the tools ends the run with the tool's own message, and the last lines of
its log stay with the run (`result.log_tail`).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from celery.exceptions import SoftTimeLimitExceeded

from builder.graphs.models import GraphVersion
from compute.engine import CheckedGraph, GraphError, load_graph
from compute.engine.datasets import DatasetError, dataset_for
from compute.engine.training import TrainConfig
from fpga.check import fpga_warnings
from fpga.compare import errors, float_outputs, node_errors, sweep
from fpga.hls import (
    STAGE_WORDS,
    FpgaError,
    FpgaStopped,
    archive,
    build_project,
    compiler_available,
    emulate,
    stop_when,
)
from fpga.settings import FpgaSettings
from fpga.vitis import synthesize, vitis_available

from . import events, services, store
from .lifecycle import (
    SHUTTING_DOWN,
    Publisher,
    StopCheck,
    WeightsUnfit,
    end_attempt,
    first_line,
    run_weights,
    time_limit_reached,
    unexpected,
)
from .models import Job

log = logging.getLogger(__name__)
PROJECT_FILE = "hls-project.tar.gz"
VERILOG_FILE = "verilog.tar.gz"
TESTBENCH_SAMPLES = 100  # inputs written into the archive's testbench data
RTL_SAMPLES = 200  # inputs Verilator simulates (its build, not the samples, takes the time)
# The Verilog path's share of a run: Yosys's time grows faster than the model (docs/fpga.md),
# and a run must not hold the fpga worker for an hour on one synthesis. Cut short, Yosys's
# step says so and the Verilog and the simulation are kept.
RTL_SECONDS = 900.0
WORDS_STAGE = {words: stage for stage, words in STAGE_WORDS.items()}


class FpgaRun:
    """One attempt at an FPGA job: its stages in order, each streamed and stored."""

    def __init__(self, job: Job, config: FpgaSettings, publisher: Publisher,
                 stop: StopCheck) -> None:
        self.job = job
        self.config = config
        self.publisher = publisher
        self.stop = stop
        self.folder = job.folder
        self.step = 0
        self.files: dict[str, str] = {}
        self.result: events.FpgaResult = {
            "kind": "fpga", "settings": config.model_dump(), "warnings": [], "stages": {},
            "comparison": None, "sweep": [], "tools": [], "log_tail": []}

    # what it tells

    def save(self) -> None:
        services.record_result(self.job, self.result)

    def begin(self, stage: str, text: str) -> None:
        self.publisher.put(events.stage_event(self.step, stage, text, None))

    def end(self, stage: str, text: str, began: float) -> None:
        seconds = round(time.perf_counter() - began, 3)
        self.result["stages"][stage] = seconds
        self.publisher.put(events.stage_event(self.step, stage, text, seconds))

    def progress(self, words: str) -> None:
        """The tools' own stages (fpga.hls), as they begin."""
        self.begin(WORDS_STAGE.get(words, "sweep" if words.startswith("sweep") else "tools"),
                   words)

    def remaining(self) -> float:
        """Seconds left before the run's own time limit."""
        left = self.stop.deadline - time.monotonic()
        if left <= 0 or self.stop.should_stop():
            raise FpgaStopped("the run must stop")
        return left

    # the stages

    def go(self, graph: CheckedGraph, state: dict[str, torch.Tensor] | None) -> None:
        self.result["warnings"] = [p.to_dict() for p in fpga_warnings(graph)]
        self.save()
        x, described = self.inputs(graph)
        folder = self.folder / "hls"
        shutil.rmtree(folder, ignore_errors=True)  # an earlier attempt's
        began = time.perf_counter()
        project = build_project(graph, self.config, folder, state, progress=self.progress,
                                timeout=self.remaining())
        for stage in ("convert", "compile"):
            if stage in project.seconds:
                self.result["stages"][stage] = round(project.seconds[stage], 3)
        self.end("build", "the HLS project is written and compiled", began)

        began = time.perf_counter()
        emulated = emulate(project, x, progress=self.progress, timeout=self.remaining())
        self.end("emulate", f"emulated on {len(x)} inputs", began)
        reference, float_nodes = float_outputs(graph, self.config, x, state, per_node=True)
        found = errors(reference, emulated)
        began = time.perf_counter()
        nodes = node_errors(project, x, float_nodes, progress=self.progress,
                            timeout=self.remaining())
        self.end("trace", "compared node by node", began)
        comparison: events.Comparison = {
            "precision": self.config.precision, "samples": len(x), "inputs": described,
            "agreement": _finite(found.get("agreement")),
            "max_error": _finite(found["max_error"]), "mean_error": _finite(found["mean_error"]),
            "nodes": [{"node": name, "max_error": cast(float, _finite(e["max_error"])),
                       "mean_error": cast(float, _finite(e["mean_error"]))}
                      for name, e in nodes.items()]}
        self.step += 1
        self.result["comparison"] = comparison
        self.publisher.put(events.comparison_event(self.step, comparison))
        self.save()

        began = time.perf_counter()
        self.begin("archive", "packing the HLS project with its testbench data")
        archive(project, self.folder / PROJECT_FILE, x[:TESTBENCH_SAMPLES],
                emulated[:TESTBENCH_SAMPLES])
        self.files["hls_project"] = PROJECT_FILE
        self.step += 1
        self.end("archive", "the HLS project is ready to download", began)

        if self.config.sweep_bits:
            began = time.perf_counter()
            sweep(graph, self.config, x, state, out_dir=self.folder / "sweep",
                  progress=self.progress, timeout=self.remaining(), on_row=self.sweep_row)
            self.end("sweep", f"{len(self.config.sweep_bits)} precisions compared", began)
        if self.config.rtl:
            self.rtl(graph, state, x, emulated)
        self.vitis(project)
        shutil.rmtree(folder, ignore_errors=True)  # the archive holds it

    def sweep_row(self, row: dict[str, Any]) -> None:
        kept: events.SweepRow = {
            "bits": row["bits"], "precision": row["precision"],
            "agreement": _finite(row["agreement"]), "max_error": _finite(row["max_error"]),
            "mean_error": _finite(row["mean_error"]), "seconds": round(row["seconds"], 3)}
        self.step += 1
        self.result["sweep"].append(kept)
        self.publisher.put(events.sweep_event(self.step, kept))
        self.save()

    def tool(self, report: events.ToolReport) -> None:
        self.result["tools"].append(report)
        self.publisher.put(events.tool_event(self.step, report))
        self.save()

    def rtl(self, graph: CheckedGraph, state: dict[str, torch.Tensor] | None,
            x: np.ndarray, emulated: np.ndarray) -> None:
        """Verilog with da4ml, Verilator against the emulation, Yosys for its size."""
        from fpga.rtl import build_rtl, rtl_problems

        self.step += 1
        why_not = rtl_problems(graph, self.config)
        if why_not:
            for tool in ("verilator", "yosys"):
                self.tool({"tool": tool, "ran": False, "figures": {},
                           "error": "the Verilog path takes Linear and ReLU models only: "
                           + "; ".join(why_not)})
            return
        began = time.perf_counter()
        self.begin("rtl", "generating Verilog (da4ml), simulating it (Verilator) and "
                          "synthesizing it (Yosys)")
        out = self.folder / "rtl"
        shutil.rmtree(out, ignore_errors=True)
        found = build_rtl(graph, self.config, out, x[:RTL_SAMPLES], state,
                          emulated[:RTL_SAMPLES], progress=self.progress,
                          timeout=min(self.remaining(), RTL_SECONDS))
        for stage, seconds in found.get("seconds", {}).items():
            self.result["stages"][f"rtl_{stage}"] = round(seconds, 3)
        if found.get("verilog"):
            with tarfile.open(self.folder / VERILOG_FILE, "w:gz") as tar:
                for item in sorted(out.rglob("*")):
                    if item.is_file() and item.suffix in (".v", ".sv", ".vh", ".json",
                                                          ".txt", ".log"):
                        tar.add(item, f"verilog/{item.relative_to(out)}")
            self.files["verilog"] = VERILOG_FILE
        for tool in ("verilator", "yosys"):
            part = dict(found.get(tool) or {})
            ran, error = bool(part.pop("ran", False)), str(part.pop("error", ""))
            self.tool({"tool": tool, "ran": ran, "error": error, "figures": _json(part)})
        self.end("rtl", "the Verilog path is done", began)
        shutil.rmtree(out, ignore_errors=True)

    def vitis(self, project: Any) -> None:
        """C simulation and synthesis with Vitis HLS, where this worker has it."""
        if vitis_available() is None:
            self.tool({"tool": "vitis_hls", "ran": False, "figures": {},
                       "error": "Vitis HLS is not on this worker's PATH: latency and "
                       "resources need an fpga worker on a host with it (docs/fpga.md)"})
            return
        began = time.perf_counter()
        self.begin("vitis", "C simulation and synthesis with Vitis HLS")
        found = synthesize(project, progress=self.progress, timeout=self.remaining())
        self.tool({"tool": "vitis_hls", "ran": True, "error": "", "figures": _json(found)})
        self.end("vitis", "Vitis HLS synthesized the project", began)

    def inputs(self, graph: CheckedGraph) -> tuple[np.ndarray, str]:
        """The inputs to compare on: the validation split of the weights' run's dataset,
        or seeded random ones (fresh weights, or an upload's run)."""
        count = self.config.samples
        source = self.job.weights_of
        if source is not None and source.upload_id is None and source.dataset:
            seed = TrainConfig.model_validate(source.config).seed
            data = dataset_for(graph, source.dataset, seed=seed, **source.dataset_options)
            x = data.x_val[:count].float().numpy()
            return x, (f"{len(x)} inputs of the validation split of {source.dataset} (run "
                       f"{source.id}'s dataset)")
        spec = next(iter(graph.analysis.nodes[graph.inputs[0].id].outputs.values()))
        generator = torch.Generator().manual_seed(self.config.seed)
        x = torch.randn((count, *spec.shape), generator=generator).numpy()
        return x, f"{count} seeded random inputs (normal, seed {self.config.seed})"


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _json(figures: dict[str, Any]) -> dict[str, Any]:
    """A tool's figures as JSON can hold them: numbers that are not finite become null."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float | np.floating):
            return _finite(value)
        if isinstance(value, np.integer | np.bool_):
            return value.item()
        if isinstance(value, Path):
            return value.name
        return value
    return cast(dict[str, Any], clean(figures))


def run_fpga(job: Job) -> None:
    """Run a claimed FPGA job to its end and record the outcome on its row."""
    config = FpgaSettings.model_validate(job.config)
    if not compiler_available():
        services.finish_job(job, Job.Status.FAILED, error="this worker has no C++ compiler "
                            "(g++): an FPGA run needs one; run the fpga queue's worker where "
                            "g++ is installed (docs/fpga.md)")
        return
    publisher = Publisher(job)
    stop = StopCheck(publisher, time.monotonic() + services.stop_after(job.time_limit),
                     SHUTTING_DOWN)
    publisher.start()
    run = FpgaRun(job, config, publisher, stop)
    error = ""
    ended = False
    try:
        graph = load_graph(GraphVersion.objects.get(id=job.version_id).document)
        state = run_weights(job, graph)
        with stop_when(stop.should_stop):
            run.go(graph, state)
        ended = True
    except FpgaStopped:
        ended = True  # stop.why says why (or the time limit: seen below)
        if not stop.should_stop():
            stop.why = "time"
    except FpgaError as exc:
        error = exc.message
        run.result["log_tail"] = exc.log_tail
        run.save()
    except GraphError as exc:
        error = "the graph is not valid: " + "; ".join(str(p) for p in exc.problems)
    except (WeightsUnfit, DatasetError, store.StoreError) as exc:
        error = str(exc)
    except SoftTimeLimitExceeded:
        error = time_limit_reached(job, run.step)
    except Exception as exc:
        if Job.objects.filter(id=job.id).exists():
            log.exception("job %s failed", job.id)
        else:
            log.info("job %s was deleted while it ran (%s)", job.id, first_line(exc))
        error = unexpected(exc)
    finally:
        publisher.close()
    kept = run.files
    if kept:
        try:  # into the store before the row lists them
            store.push(job, sorted(kept.values()))
        except store.StoreError as exc:
            error, ended, kept = str(exc), False, {}
    end_attempt(job, publisher, stop, ended=ended, error=error, step=run.step,
                files=kept, done=f"after {run.step} of {job.total_steps} steps",
                again="its worker shut down; the FPGA run starts again when a worker takes "
                      "it")


__all__ = ["run_fpga"]
