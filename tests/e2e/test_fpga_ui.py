"""FPGA runs in the editor on the live stack (issue 14): the run drawer's FPGA form starts a
run of the digits MLP that a real worker on the `fpga` queue converts with hls4ml, compiles
with g++ and emulates in fixed point; the drawer shows the agreement with the float model,
the sweep and the tool reports, and the canvas's "Error" overlay the error of each node.
A graph with attention shows, before anything is queued, which nodes the FPGA refuses, on
those nodes, and Start stays disabled.

Needs g++ and hls4ml (the fpga queue's worker) where it runs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from editor_ui import block, button, node, open_editor
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEAT = re.compile(r"(^|\s)heat(\s|$)")
ERROR = re.compile(r"(^|\s)has-error(\s|$)")
PERCENT = re.compile(r"^\d+(\.\d)?%$")


def open_fpga_form(page: Page) -> None:
    """The run drawer, on the FPGA kind of run."""
    button(page, "Run").click()
    expect(page.get_by_role("region", name="Runs", exact=True)).to_be_visible()
    page.get_by_role("radio", name="FPGA").click()
    expect(page.get_by_role("form", name="Start an FPGA run")).to_be_visible()


def test_fpga_run_from_the_drawer_agreement_sweep_and_errors_on_the_canvas(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    status, graph = live.api("POST", "/api/graphs", live.token(account), {"starter": "mlp"})
    assert status == 201, graph
    open_editor(page, f"/g/{graph['id']}")
    open_fpga_form(page)
    # Few inputs and one sweep width keep the run short (each width compiles once more).
    page.get_by_test_id("run-samples").fill("40")
    page.get_by_test_id("run-sweep_bits").fill("10")
    start = page.get_by_test_id("fpga-start")
    expect(start).to_be_enabled()
    start.click()

    status_line = page.get_by_test_id("run-status")
    expect(status_line).to_contain_text("FPGA run #")
    expect(page.get_by_role("tab", name="Results")).to_have_attribute("aria-selected", "true")
    expect(status_line).to_have_attribute("data-status", "succeeded", timeout=120_000)

    # The comparison: agreement with the float model, the errors, the inputs it ran on.
    expect(page.get_by_test_id("fpga-agreement")).to_have_text(PERCENT)
    expect(page.get_by_test_id("fpga-comparison")).to_contain_text("40 seeded random inputs")
    rows = page.get_by_test_id("fpga-nodes").locator("tbody tr")
    expect(rows.first).to_be_visible()
    # Vitis HLS is not installed here: the tool report says why it did not run.
    vitis = page.get_by_test_id("fpga-tools").locator('[data-tool="vitis_hls"]')
    expect(vitis).to_contain_text("did not run")
    artifacts.snap(page, "results")

    # The per-node overlay: the status bar's "Error" switch tints the nodes that have a
    # figure; the Input has none and shows nothing.
    toggle = page.get_by_test_id("cost-toggle")
    expect(toggle).to_have_text("Error")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(block(page, "hidden1")).to_have_class(HEAT)
    expect(node(page, "hidden1").get_by_test_id("node-heat")).to_have_text(re.compile(r"^±"))
    expect(node(page, "x").get_by_test_id("node-heat")).to_have_count(0)
    artifacts.snap(page, "overlay")

    # The sweep: its row, and the plot drawn (a canvas: only a real browser has one).
    page.get_by_role("tab", name="Sweep").click()
    expect(page.get_by_test_id("fpga-sweep").locator('[data-bits="10"]')).to_contain_text(
        "ap_fixed<10,6>")
    expect(page.get_by_test_id("fpga-sweep-plot").locator("canvas").first).to_be_visible()

    # The HLS project is ready to download.
    page.get_by_role("tab", name="Run", exact=True).click()
    link = page.get_by_role("link", name="HLS project")
    expect(link).to_have_attribute("href",
                                   re.compile(r"/api/jobs/\d+/download\?format=hls_project"))


def test_a_graph_with_attention_shows_the_fpga_refusal_on_its_nodes_before_queueing(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    status, graph = live.api("POST", "/api/graphs", live.token(account),
                             {"starter": "transformer_classifier"})
    assert status == 201, graph
    open_editor(page, f"/g/{graph['id']}")
    expect(block(page, "embed")).not_to_have_class(ERROR)  # a valid graph for training
    open_fpga_form(page)
    expect(page.get_by_test_id("fpga-check")).to_contain_text("cannot start")
    expect(page.get_by_test_id("fpga-start")).to_be_disabled()
    expect(block(page, "embed")).to_have_class(ERROR)
    expect(node(page, "embed").get_by_test_id("node-error")).to_contain_text("no FPGA layer")
    # The Repeat holds the attention: it says so.
    expect(node(page, "encoder").get_by_test_id("node-error")).to_contain_text("MultiHeadAttention")
    artifacts.snap(page, "refused")
    # Back to training: the marks go with the FPGA form.
    page.get_by_role("radio", name="Train").click()
    expect(block(page, "embed")).not_to_have_class(ERROR)
    jobs_status, jobs = live.api("GET", f"/api/jobs?graph={graph['id']}", live.token(account))
    assert jobs_status == 200 and jobs == [], jobs
