"""Problems as the editor shows them: each says how to fix it, sits on the block at fault,
is counted once, never grows a block over its neighbours, and leaves the totals honest."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

import pytest
from editor_ui import (
    HAS_ERROR,
    block,
    document,
    find_node,
    node,
    open_editor,
    param,
    select,
    wait_until,
)
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e

ONE_PROBLEM = re.compile(r"^\W*1 problem\s*$")


def chain_doc(*nodes: dict[str, Any], extra: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    """A document wiring `nodes` in a chain (each into the next), laid out top to bottom;
    `extra` nodes are added unwired beside it."""
    everything = [*nodes, *(extra or [])]
    return {
        "format": "shipyard.graph/v1",
        "name": "errors",
        "nodes": everything,
        "edges": [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)],
        "layout": {n["id"]: [0 if n in nodes else 300, 130 * i if n in nodes else 130]
                   for i, n in enumerate(everything)},
    }


def show(page: Page, doc: dict[str, Any]) -> None:
    """Open a blank model and put `doc` in it, as one edit (it is inspected like any)."""
    open_editor(page, "/new")
    page.evaluate("(d) => window.__shipyard.store.getState().edit(() => d)", doc)
    wait_until(lambda: (r := page.evaluate("() => window.__shipyard.report()"))
               and set(r["nodes"]) == {n["id"] for n in doc["nodes"]},
               "the report of the document put in the editor")


def inp(shape: list[int], dtype: str = "float32") -> dict[str, Any]:
    return {"id": "x", "type": "Input", "params": {"shape": shape, "dtype": dtype}}


OUT = {"id": "y", "type": "Output"}


def test_int_ids_into_a_linear_say_to_put_an_embedding_first(user_page: Page,
                                                              artifacts: Artifacts) -> None:
    page = user_page
    show(page, chain_doc(inp([16], "int64"),
                         {"id": "hidden", "type": "Linear", "params": {"out_features": 8}}, OUT))
    expect(block(page, "hidden")).to_have_class(HAS_ERROR)
    error = node(page, "hidden").get_by_test_id("node-error")
    full = ("Linear expects a float input, but x gives int64 [B, 16]: put an Embedding "
            "before it to turn token ids into vectors, or set the Input's dtype to float32")
    expect(error).to_have_attribute("title", full)
    select(page, "hidden")
    expect(page.get_by_test_id("inspector").get_by_role("alert").first).to_contain_text(full)
    # One problem, and no false "0 params": nothing could be measured, and the bar says why.
    expect(page.get_by_test_id("validity")).to_have_text(ONE_PROBLEM)
    expect(page.get_by_test_id("total-params")).to_have_text(re.compile(r"^—\s*params$"))
    expect(page.get_by_test_id("unmeasured")).to_contain_text("1 block not measured")
    artifacts.snap(page, "int-into-linear")


def test_a_long_error_is_clamped_on_the_block_and_whole_on_hover(user_page: Page) -> None:
    page = user_page
    show(page, chain_doc(inp([16], "int64"),
                         {"id": "hidden", "type": "Linear", "params": {"out_features": 8}},
                         {"id": "act", "type": "ReLU"}, OUT))
    page.keyboard.press("l")  # auto-layout: blocks one layer apart, as starters open
    error = node(page, "hidden").get_by_test_id("node-error")
    expect(error).to_be_visible()
    lines = error.evaluate(
        "e => ({client: e.clientHeight, scroll: e.scrollHeight,"
        " line: parseFloat(getComputedStyle(e).lineHeight)})")
    assert lines["scroll"] > lines["client"], "the message should be long enough to clamp"
    assert lines["client"] <= 2 * lines["line"] + 1, lines  # two lines on the block
    below = node(page, "act").bounding_box()
    box = node(page, "hidden").bounding_box()
    assert box is not None and below is not None
    assert box["y"] + box["height"] <= below["y"], (box, below)  # not over its neighbour
    assert "or set the Input's dtype to float32" in (error.get_attribute("title") or "")


def test_a_lone_linear_is_told_its_own_input_is_not_connected(user_page: Page,
                                                              artifacts: Artifacts) -> None:
    page = user_page
    show(page, chain_doc(inp([8]), OUT,
                         extra=[{"id": "linear1", "type": "Linear", "params": {}}]))
    expect(block(page, "linear1")).to_have_class(HAS_ERROR)
    expect(node(page, "linear1").get_by_test_id("node-error")).to_contain_text(
        "input 'in' is not connected: wire another block's output into it")
    expect(page.get_by_test_id("validity")).to_have_text(ONE_PROBLEM)
    select(page, "linear1")
    inspector = page.get_by_test_id("inspector")
    expect(inspector).to_contain_text("input 'in' is not connected")
    expect(inspector).not_to_contain_text("a block before this one")
    artifacts.snap(page, "lone-linear")


def test_a_problem_inside_a_repeat_counts_once(user_page: Page) -> None:
    page = user_page
    body = {
        "nodes": [{"id": "i", "type": "Input"},
                  {"id": "attn", "type": "MultiHeadAttention", "params": {"num_heads": 5}},
                  {"id": "o", "type": "Output"}],
        "edges": [{"from": "i", "to": "attn"}, {"from": "attn", "to": "o"}],
    }
    show(page, chain_doc(inp([4, 16]),
                         {"id": "blocks", "type": "Repeat", "params": {"times": 2},
                          "graph": body}, OUT))
    expect(block(page, "blocks")).to_have_class(HAS_ERROR)
    expect(page.get_by_test_id("validity")).to_have_text(ONE_PROBLEM)
    expect(node(page, "blocks").get_by_test_id("node-error")).to_contain_text(
        "does not split into 5 heads")


def test_totals_count_what_could_be_measured(user_page: Page) -> None:
    page = user_page
    show(page, chain_doc(inp([8]),
                         {"id": "hidden", "type": "Linear", "params": {"out_features": 4}},
                         {"id": "conv", "type": "Conv2d", "params": {}}, OUT))
    expect(block(page, "conv")).to_have_class(HAS_ERROR)
    expect(page.get_by_test_id("total-params")).to_have_text(re.compile(r"^≥ 36 params$"))
    expect(page.get_by_test_id("unmeasured")).to_contain_text("1 block not measured")


def test_a_single_port_block_names_its_shapes_input_and_output(user_page: Page) -> None:
    page = user_page
    show(page, chain_doc(inp([8]),
                         {"id": "hidden", "type": "Linear", "params": {"out_features": 4}}, OUT))
    select(page, "hidden")
    heads = page.get_by_test_id("inspector").locator("table.kv th")
    expect(heads.first).to_have_text("input")
    expect(heads.nth(1)).to_have_text("output")
    expect(page.get_by_test_id("inspector")).not_to_contain_text("in in")
    assert node(page, "hidden").locator(".port-label").count() == 0


def test_an_invalid_shape_stays_with_its_reason_after_blur(user_page: Page,
                                                           artifacts: Artifacts) -> None:
    page = user_page
    show(page, chain_doc(inp([8]), OUT))
    select(page, "x")
    field = param(page, "shape")
    field.fill("8, a")
    page.get_by_test_id("inspector").locator("h2").click()  # blur by clicking elsewhere
    expect(field).to_have_value("8, a")
    expect(page.get_by_test_id("inspector").locator(".field-error")).to_contain_text(
        "is not a number")
    assert find_node(document(page), "x")["params"]["shape"] == [8]
    artifacts.snap(page, "invalid-shape-kept")
    # Escape undoes the typing: the value in force comes back, the error goes.
    field.focus()
    field.press("Escape")
    expect(field).to_have_value("8")
    expect(page.get_by_test_id("inspector").locator(".field-error")).to_have_count(0)
    # Fixed by typing: applied.
    field.fill("8, 2")
    field.press("Enter")
    expect(field).to_have_value("8, 2")
    wait_until(lambda: find_node(document(page), "x")["params"]["shape"] == [8, 2],
               "the fixed shape applied")
