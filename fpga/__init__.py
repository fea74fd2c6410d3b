"""Shipyard's FPGA path: a graph as an HLS project (hls4ml), compiled with g++ and emulated
bit-accurately in fixed point, compared with the float PyTorch model (docs/fpga.md).

A library like the engine: it imports `compute.engine`, never Django, Celery or Channels.

    fpga.settings  FpgaSettings (the run kind's settings)
    fpga.check     fpga_problems, fpga_warnings (per node, before any tool runs)
    fpga.hls       build_project, emulate, trace, run_testbench, archive, FpgaError
    fpga.compare   compare, sweep
    fpga.vitis     vitis_available, synthesize, parse_report (where Vitis HLS is installed)
"""
