"""FpgaSettings: the precision and part strings reach generated C++ and Tcl, so anything
but the plain forms is refused, naming the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fpga.settings import FpgaSettings, split_precision, with_bits


def refused(**given: object) -> str:
    with pytest.raises(ValidationError) as caught:
        FpgaSettings.model_validate(given)
    (problem,) = FpgaSettings.problems(caught.value)
    assert problem.field is not None
    assert problem.message.startswith(problem.field)
    return problem.message


def test_the_defaults_are_16_bit_fixed_point_latency_parallel() -> None:
    s = FpgaSettings()
    assert (s.precision, s.io_type, s.strategy, s.reuse_factor) == (
        "ap_fixed<16,6>", "io_parallel", "Latency", 1)
    assert s.part == "xcu250-figd2104-2L-e" and s.sweep_bits == []


@pytest.mark.parametrize("hostile", [
    "ap_fixed<16,6>; system(\"rm -rf /\")",
    "ap_fixed<16,6>\n#include <cstdlib>",
    "ap_fixed<16,6> ",
    "ap_fixed<١٦,6>",  # Arabic-Indic digits: \d would take them
    "ap_fixed<16,6,AP_RND,AP_SAT,extra>",
    "float",
    "ap_fixed<16," + "6" * 5000 + ">",
    "",
])
def test_a_precision_that_is_not_a_plain_fixed_point_type_is_refused(hostile: str) -> None:
    assert refused(precision=hostile).startswith("precision must be")


@pytest.mark.parametrize("wide", ["ap_fixed<99,6>", "ap_fixed<0,0>", "ap_int<64>",
                                  "ap_fixed<16,40>"])
def test_widths_out_of_range_are_refused_with_the_range(wide: str) -> None:
    assert "bits" in refused(precision=wide)


@pytest.mark.parametrize("fine", ["ap_fixed<16,6>", "ap_ufixed<8,0>", "ap_int<8>",
                                  "ap_fixed<18,8,AP_RND,AP_SAT>", "ap_fixed<8,-2>"])
def test_plain_precisions_are_kept(fine: str) -> None:
    assert FpgaSettings(precision=fine).precision == fine


def test_overrides_are_keyed_by_node_ids_and_checked_like_the_precision() -> None:
    assert FpgaSettings(precision_overrides={"logits": "ap_fixed<24,10>"}
                        ).precision_overrides == {"logits": "ap_fixed<24,10>"}
    assert "node ids" in refused(precision_overrides={"a b; x": "ap_fixed<16,6>"})
    assert "of logits must be" in refused(precision_overrides={"logits": "ap_fixed<16,6>;x"})


@pytest.mark.parametrize("part", ["xcu250-figd2104-2L-e; rm", "../../etc", "x" * 100,
                                  "xcu250 -figd"])
def test_a_part_outside_the_pattern_is_refused(part: str) -> None:
    assert refused(part=part).startswith("part must be a Xilinx part name")


def test_the_numbers_and_choices_have_their_ranges() -> None:
    assert "at most 1,024" in refused(reuse_factor=4096)
    assert "at least 1" in refused(clock_period=0.5)
    assert "io_parallel or io_stream" in refused(io_type="io_serial")
    assert "Latency or Resource" in refused(strategy="Distributed")
    assert "at least 4 and at most 32" in refused(sweep_bits=[8, 64])
    assert "twice" in refused(sweep_bits=[8, 8])


def test_a_sweep_keeps_the_integer_bits() -> None:
    assert split_precision("ap_fixed<16,6>") == (16, 6)
    assert [with_bits("ap_fixed<16,6>", b) for b in (4, 8, 18)] == [
        "ap_fixed<4,4>", "ap_fixed<8,6>", "ap_fixed<18,6>"]
    assert with_bits("ap_fixed<16,4,AP_RND,AP_SAT>", 8) == "ap_fixed<8,4,AP_RND,AP_SAT>"
    assert with_bits("ap_uint<8>", 12) == "ap_ufixed<12,8>"
