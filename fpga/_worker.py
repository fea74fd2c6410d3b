"""The subprocess that runs hls4ml and the library it compiles (`fpga.hls` starts it):
`python -m fpga._worker <project>/shipyard/job.json`.

It prints progress marks (`fpga.hls.STAGE` + a stage), lets the tools print what they
print, and on failure writes one sentence to shipyard/error.txt (the full traceback only to
shipyard/traceback.txt, for whoever debugs it); on success it touches shipyard/done.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

STAGE = "@@shipyard-fpga "


def stage(name: str) -> None:
    print(f"{STAGE}{name}", flush=True)


def _model(own: Path) -> Any:
    from safetensors.torch import load_file

    from compute.engine import compile_graph
    from fpga.hls import fold
    from fpga.settings import FpgaSettings

    settings = FpgaSettings.model_validate_json((own / "settings.json").read_text())
    document = json.loads((own / "graph.json").read_text())
    module = compile_graph(document, seed=settings.seed)
    module.load_state_dict(load_file(str(own / "weights.safetensors")))
    return fold(module.eval()), settings


def _convert(own: Path, job: dict[str, Any], output_dir: Path, *, trace: bool) -> Any:
    import hls4ml

    from fpga.hls import PROJECT_NAME, hls_config, layer_names

    module, settings = _model(own)
    layers = layer_names(module)
    config = hls_config(settings, layers, trace=trace, precision=job.get("precision"))
    config["InputShape"] = [list(job["input_shape"])]  # a list of shapes (YAML-safe)
    return hls4ml.converters.convert_from_pytorch_model(
        module, hls_config=config,
        output_dir=str(output_dir), project_name=PROJECT_NAME, backend="Vitis",
        io_type=settings.io_type, part=settings.part, clock_period=settings.clock_period)


def build(own: Path, job: dict[str, Any]) -> None:
    seconds: dict[str, float] = {}
    stage("converting")
    began = time.perf_counter()
    model = _convert(own, job, Path(job["project"]), trace=False)
    seconds["convert"] = time.perf_counter() - began
    stage("writing")
    began = time.perf_counter()
    model.write()
    seconds["write"] = time.perf_counter() - began
    stage("compiling")
    began = time.perf_counter()
    model._compile()
    seconds["compile"] = time.perf_counter() - began
    library = Path(job["project"]) / "firmware" / (
        f"{model.config.get_project_name()}-{model.config.get_config_value('Stamp')}.so")
    manifest = {"input_shape": job["input_shape"], "output_shape": job["output_shape"],
                "layers": [layer.name for layer in model.get_layers()],
                "library": str(library), "seconds": seconds, "precision": job.get("precision")}
    (own / "job_input.json").write_text(json.dumps(job))
    (own / "manifest.json").write_text(json.dumps(manifest, indent=1))


def emulate(own: Path) -> None:
    """Calls the compiled library's float entry point (`myproject_float(in, out)`, what
    hls4ml's predict calls) sample by sample: the values are converted to the project's
    fixed-point types inside it."""
    import numpy as np
    import numpy.ctypeslib as npc

    from fpga.hls import PROJECT_NAME

    manifest = json.loads((own / "manifest.json").read_text())
    stage("emulating")
    library = ctypes.cdll.LoadLibrary(manifest["library"])
    top = getattr(library, f"{PROJECT_NAME}_float")
    top.restype = None
    top.argtypes = [npc.ndpointer(ctypes.c_float, flags="C_CONTIGUOUS")] * 2
    x = np.load(own / "inputs.npy")
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    size = int(np.prod(manifest["output_shape"]))
    y = np.zeros((len(x), size), dtype=np.float32)
    for i in range(len(x)):
        out = np.zeros(size, dtype=np.float32)
        top(np.ascontiguousarray(flat[i]), out)
        y[i] = out
    np.save(own / "outputs.npy", y)


def trace(own: Path) -> None:
    import numpy as np

    job = json.loads((own / "job_input.json").read_text())
    stage("tracing")
    model = _convert(own, job, own / "trace", trace=True)
    x = np.load(own / "inputs.npy")
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    with contextlib.redirect_stdout(sys.stdout):
        _, traced = model.trace(flat)
    arrays: dict[str, Any] = {k: np.asarray(v, np.float32) for k, v in traced.items()}
    np.savez(own / "trace.npz", **arrays)


def rtl_step(own: Path, job: dict[str, Any]) -> None:
    """One stage of fpga.rtl: generating Verilog (da4ml), simulating it (Verilator) or
    synthesizing it (Yosys)."""
    from fpga import rtl

    project = Path(job["project"])
    if job["action"] == "rtl_generate":
        stage("generating")
        module, settings = _model(own)
        rtl.generate(own, project, module, settings)
    elif job["action"] == "rtl_simulate":
        stage("simulating")
        rtl.simulate(own, project)
    elif job["action"] == "rtl_synthesize":
        stage("synthesizing")
        rtl.synthesize(own, project)
    else:
        raise ValueError(f"unknown action {job['action']!r}")


def main(argv: list[str]) -> int:
    job_path = Path(argv[1])
    own = job_path.parent
    job = json.loads(job_path.read_text())
    try:
        if job["action"] == "build":
            build(own, job)
        elif job["action"] == "emulate":
            emulate(own)
        elif job["action"] == "trace":
            trace(own)
        elif job["action"].startswith("rtl_"):
            rtl_step(own, job)
        else:
            raise ValueError(f"unknown action {job['action']!r}")
    except BaseException as exc:
        (own / "traceback.txt").write_text(traceback.format_exc())
        words = str(exc).strip().splitlines()
        first = words[0][:300] if words else type(exc).__name__
        (own / "error.txt").write_text(f"{job['action']} failed: {first}")
        print(f"{type(exc).__name__}: {first}", flush=True)
        return 1
    (own / "done").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
