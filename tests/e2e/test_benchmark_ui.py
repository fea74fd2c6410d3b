"""Benchmark runs in the editor on the live stack (issue 13): a benchmark started from the
run drawer fills its results table while it runs, its node costs colour the canvas and
select a node when a row is clicked, and two benchmarks compare side by side.

Needs the API's benchmark kind (POST /api/jobs with kind "benchmark") and the real worker."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from editor_ui import block, button, open_editor
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SELECTED = re.compile(r"(^|\s)selected(\s|$)")
HEAT = re.compile(r"(^|\s)heat(\s|$)")


def start_benchmark(page: Page) -> int:
    """A small benchmark from the drawer's form (batch sizes 1 and 4, 3 repetitions), once
    the drawer shows it (not the one open before); its id."""
    page.get_by_role("tab", name="Run", exact=True).click()
    status = page.get_by_test_id("run-status")
    before = status.text_content() if status.count() else ""
    page.get_by_role("radio", name="Benchmark").click()
    page.get_by_test_id("run-batch_sizes").fill("1, 4")
    page.get_by_test_id("run-warmup").fill("1")
    page.get_by_test_id("run-repeats").fill("3")
    start = page.get_by_test_id("bench-start")
    expect(start).to_be_enabled()
    start.click()
    expect(status).to_contain_text("Benchmark #")
    expect(status).not_to_have_text(before or "(none)")
    match = re.search(r"Benchmark #(\d+)", status.text_content() or "")
    assert match, status.text_content()
    return int(match.group(1))


def test_benchmark_from_the_drawer_costs_on_the_canvas_and_compare(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    status, graph = live.api("POST", "/api/graphs", live.token(account), {"starter": "mlp"})
    assert status == 201, graph
    open_editor(page, f"/g/{graph['id']}")
    button(page, "Run").click()
    expect(page.get_by_role("region", name="Runs", exact=True)).to_be_visible()

    first = start_benchmark(page)
    # The drawer goes to the results and fills in as backends finish.
    expect(page.get_by_role("tab", name="Results")).to_have_attribute("aria-selected", "true")
    status_line = page.get_by_test_id("run-status")
    expect(status_line).to_have_attribute("data-status", "succeeded", timeout=180_000)
    results = page.get_by_test_id("bench-results")
    expect(results.locator('[data-row="eager@1"]')).to_be_visible()
    expect(results.locator('[data-row="eager@4"]')).to_be_visible()
    expect(results.locator('[data-row="eager@1"]')).to_contain_text("ms")
    # Every backend asked for has its rows, measured or with the reason it cannot run.
    for backend in ("eager", "compile", "onnxruntime"):
        expect(results.locator(f'[data-row="{backend}@1"]')).to_have_count(1)
    expect(page.get_by_test_id("bench-machine")).to_contain_text("torch")
    artifacts.snap(page, "results")

    # The node costs: the Cost toggle paints the canvas; a row selects its node.
    toggle = page.get_by_test_id("cost-toggle")
    expect(toggle).to_be_visible()
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator('.react-flow__node [data-testid="node-heat"]').first).to_be_visible()
    page.get_by_role("tab", name="Node costs").click()
    rows = page.get_by_test_id("bench-costs").locator("tbody tr")
    expect(rows.first).to_be_visible()
    costliest = rows.first.get_attribute("data-node")
    assert costliest and "." not in costliest, costliest  # the MLP has no Repeat
    expect(block(page, costliest)).to_have_class(HEAT)
    rows.first.click()
    expect(block(page, costliest)).to_have_class(SELECTED)
    expect(page.get_by_test_id("node-id")).to_have_value(costliest)
    artifacts.snap(page, "node-costs")

    # A second benchmark, then the two side by side.
    second = start_benchmark(page)
    assert second != first
    expect(status_line).to_have_attribute("data-status", "succeeded", timeout=180_000)
    page.get_by_role("tab", name="Compare").click()
    expect(page.get_by_test_id("bench-compare-a")).to_have_value(str(first))
    expect(page.get_by_test_id("bench-compare-b")).to_have_value(str(second))
    compare = page.get_by_test_id("bench-compare")
    expect(compare).to_be_visible()
    ratio = compare.locator('[data-row="eager@1"] [data-testid="ratio"]')
    expect(ratio).to_have_text(re.compile(r"^\d+\.\d+×$"))
    expect(page.get_by_test_id("bench-compare-nodes").locator("tbody tr").first).to_be_visible()
    artifacts.snap(page, "compare")
