"""FPGA run settings: the numeric precision, I/O style, parallelism and target of the HLS
project hls4ml generates from a graph (docs/fpga.md says what each one does).

Every string here ends up inside generated C++ (`ap_fixed<16,6>` is a C++ type) or a Tcl
script (the part): each is checked against a strict pattern of ASCII characters before
anything sees it, and never reaches the tools otherwise.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from compute.engine.blocks.base import Float
from compute.engine.graph import ID_PATTERN
from compute.engine.settings import RunSettings, basic, refuse, shown

MAX_WIDTH = 32  # total bits of a fixed-point number (ap_fixed<W,I>: W)
MIN_SWEEP_BITS, MAX_SWEEP_BITS = 4, 32
MAX_SWEEP = 8  # precisions in one sweep
MAX_OVERRIDES = 256
MAX_PRECISION_CHARS = 40
MAX_PART_CHARS = 40
MAX_SAMPLES = 5000  # inputs a run compares on (the emulation takes them one by one)

# ap_fixed<W,I>, ap_ufixed<W,I> (optionally with a rounding and an overflow mode),
# ap_int<W>, ap_uint<W>: ASCII digits only ([0-9], not \d, which takes any script's digits).
_FIXED = re.compile(r"ap_(u?)fixed<([0-9]{1,2}),(-?[0-9]{1,2})"
                    r"(?:,(AP_RND|AP_RND_CONV|AP_RND_ZERO|AP_RND_INF|AP_RND_MIN_INF|AP_TRN"
                    r"|AP_TRN_ZERO)(?:,(AP_SAT|AP_SAT_SYM|AP_WRAP))?)?>")
_INT = re.compile(r"ap_(u?)int<([0-9]{1,2})>")
# A Xilinx part name: "xcu250-figd2104-2L-e", "xc7z020clg400-1", "xcvu9p-flgb2104-2-i".
_PART = re.compile(r"x[a-z]{1,4}[a-z0-9]{1,16}(?:-[A-Za-z0-9]{1,16}){0,4}")
_SAYS = ("must be ap_fixed<W,I> (W total bits, I integer bits, e.g. ap_fixed<16,6>), "
         f"ap_ufixed<W,I> or ap_int<W>/ap_uint<W>, with W from 1 to {MAX_WIDTH}")


def precision_error(value: Any) -> str | None:
    """What is wrong with a precision string, in words; None when it is fine."""
    if not isinstance(value, str):
        return f"must be a string, got {shown(value)}"
    if len(value) > MAX_PRECISION_CHARS:
        return f"{_SAYS}, got a string of {len(value)} characters"
    fixed, integer = _FIXED.fullmatch(value), _INT.fullmatch(value)
    if fixed is None and integer is None:
        return f"{_SAYS}, got {shown(value)}"
    width = int((fixed or integer).group(2))  # type: ignore[union-attr]
    if not 1 <= width <= MAX_WIDTH:
        return f"must have from 1 to {MAX_WIDTH} total bits, got {width} in {shown(value)}"
    if fixed is not None:
        ints = int(fixed.group(3))
        if not -width <= ints <= width:
            return (f"must have from -{width} to {width} integer bits for {width} total "
                    f"bits, got {ints} in {shown(value)}")
    return None


def split_precision(precision: str) -> tuple[int, int]:
    """(total bits, integer bits) of a valid precision (an integer type: both its width)."""
    fixed = _FIXED.fullmatch(precision)
    if fixed is not None:
        return int(fixed.group(2)), int(fixed.group(3))
    integer = _INT.fullmatch(precision)
    if integer is None:
        raise ValueError(f"not a valid precision: {shown(precision)}")
    return int(integer.group(2)), int(integer.group(2))


def with_bits(precision: str, bits: int) -> str:
    """`precision` with `bits` total bits, its integer bits (at most `bits`) and its rounding
    and overflow modes kept."""
    _, ints = split_precision(precision)
    signed = not precision.startswith(("ap_ufixed", "ap_uint"))
    fixed = _FIXED.fullmatch(precision)
    modes = "".join(f",{m}" for m in (fixed.group(4), fixed.group(5)) if m) if fixed else ""
    return f"ap_{'' if signed else 'u'}fixed<{bits},{min(ints, bits)}{modes}>"


def _precision_ok(value: Any) -> Any:
    error = precision_error(value) if isinstance(value, str) else None
    if error:
        raise refuse("precision", error)
    return value


def _overrides_ok(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # the type check names it
    if len(value) > MAX_OVERRIDES:
        raise refuse("precision_overrides", f"must name at most {MAX_OVERRIDES} nodes, got "
                     f"{len(value)}")
    for node, precision in value.items():
        if not isinstance(node, str) or not ID_PATTERN.fullmatch(node) or node.endswith("\n"):
            raise refuse("precision_overrides", f"must be keyed by node ids (a letter or _ "
                         f"then letters, digits or _, at most 64), got {shown(node)}")
        error = precision_error(precision)
        if error:
            raise refuse("precision_overrides", f"of {node} {error}")
    return value


def _part_ok(value: Any) -> Any:
    if isinstance(value, str) and (len(value) > MAX_PART_CHARS
                                   or not _PART.fullmatch(value)):
        raise refuse("part", "must be a Xilinx part name such as xcu250-figd2104-2L-e "
                     f"(x, letters and digits, parts joined by '-', at most "
                     f"{MAX_PART_CHARS} characters), got {shown(value)}")
    return value


def _sweep_ok(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    if len(value) > MAX_SWEEP:
        raise refuse("sweep_bits", f"must list at most {MAX_SWEEP} widths, got {len(value)}")
    for bits in value:
        if type(bits) is not int:
            raise refuse("sweep_bits", f"must hold whole numbers, got {shown(bits)}")
        if not MIN_SWEEP_BITS <= bits <= MAX_SWEEP_BITS:
            raise refuse("sweep_bits", f"must each be at least {MIN_SWEEP_BITS} and at most "
                         f"{MAX_SWEEP_BITS}, got {bits}")
    if len(set(value)) != len(value):
        twice = next(b for b in value if value.count(b) > 1)
        raise refuse("sweep_bits", f"must not repeat a width, got {twice} twice")
    return value


class FpgaSettings(RunSettings):
    """How to turn a graph into an HLS project. The defaults (16-bit fixed point, parallel
    I/O, every multiplication its own unit, the Latency strategy) emulate the digits
    starters within a few seconds of compiling on a CPU."""

    kind: ClassVar[str] = "fpga"
    title: ClassVar[str] = "FPGA"
    summary: ClassVar[str] = ("Turn the graph into an HLS project with hls4ml, emulate it "
                              "bit-accurately in fixed point (C++ compiled with g++), and "
                              "compare it with the float model: agreement and error, overall "
                              "and per node, and against bit width.")

    precision: str = Field(
        default="ap_fixed<16,6>", title="Precision", json_schema_extra=basic(),
        max_length=MAX_PRECISION_CHARS,
        description="Fixed-point type of weights, biases and activations: ap_fixed<W,I> has "
        "W bits in all and I of them before the point (ap_fixed<16,6>: from -32 to 32 in "
        "steps of 1/1024).")
    precision_overrides: dict[str, str] = Field(
        default_factory=dict, title="Precision per node",
        description="Node id → precision, for nodes that need more (or fewer) bits than the "
        "rest.")
    io_type: Literal["io_parallel", "io_stream"] = Field(
        default="io_parallel", title="I/O style", json_schema_extra=basic(),
        description="io_parallel: whole arrays between layers (fastest, for small models); "
        "io_stream: values flow through FIFOs (less memory, for convolutions).")
    reuse_factor: int = Field(
        default=1, ge=1, le=1024, title="Reuse factor", json_schema_extra=basic(),
        description="How many multiplications share one multiplier: 1 is fully parallel "
        "(lowest latency, most resources); higher trades latency for area.")
    strategy: Literal["Latency", "Resource"] = Field(
        default="Latency", title="Strategy",
        description="Latency: unrolled, for small layers; Resource: weights in block RAM, for "
        "large layers with a reuse factor above 1.")
    part: str = Field(
        default="xcu250-figd2104-2L-e", title="Target part", max_length=MAX_PART_CHARS,
        description="The Xilinx FPGA the project is written for (an Alveo U250 by default); "
        "it matters for synthesis, not for emulation.")
    clock_period: Float = Field(
        default=5.0, ge=1, le=100, title="Clock period (ns)",
        description="The clock the design is scheduled for: 5 ns is 200 MHz.")
    sweep_bits: list[int] = Field(
        default_factory=list, title="Sweep bit widths",
        json_schema_extra={"maxItems": MAX_SWEEP, "uniqueItems": True,
                           "items": {"type": "integer", "minimum": MIN_SWEEP_BITS,
                                     "maximum": MAX_SWEEP_BITS}},
        description=f"Total bit widths to compare too (e.g. 8, 10, 12, 16, 18; each "
        f"{MIN_SWEEP_BITS} to {MAX_SWEEP_BITS}, at most {MAX_SWEEP}); the integer bits of the "
        "precision are kept. Empty: no sweep.")
    samples: int = Field(
        default=500, ge=1, le=MAX_SAMPLES, title="Inputs compared",
        description="How many inputs the emulation and the float model are compared on: "
        "the validation split of the trained run's dataset (up to this many), or this many "
        "seeded random inputs for fresh weights.")
    rtl: bool = Field(
        default=False, title="Verilog (Linear and ReLU models)",
        description="Also generate Verilog with da4ml, simulate it with Verilator against the "
        "emulation, and synthesize it with Yosys for LUT and flip-flop counts (only for "
        "models made of Linear and ReLU blocks; skipped, with the reason, where the tools "
        "are missing).")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, title="Seed",
                      description="The initial weights of an untrained graph and the random "
                      "inputs when there is no dataset.")

    _check_precision = field_validator("precision", mode="before")(_precision_ok)
    _check_overrides = field_validator("precision_overrides", mode="before")(_overrides_ok)
    _check_part = field_validator("part", mode="before")(_part_ok)
    _check_sweep = field_validator("sweep_bits", mode="before")(_sweep_ok)


__all__ = ["FpgaSettings", "precision_error", "split_precision", "with_bits"]
