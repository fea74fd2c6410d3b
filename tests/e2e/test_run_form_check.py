"""The run form checks the dataset against the graph as it is edited (issue 12, item 3): an
Input that digits cannot feed, or an Output 64 wide for its 10 classes, shows the reason
and disables Start, and nothing is saved; fixing the graph enables Start."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

import pytest
from editor_ui import button, document, find_node, open_editor, select, set_param
from livestack import LiveStack, User
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def versions(live: LiveStack, token: str, graph: int) -> list[int]:
    status, body = live.api("GET", f"/api/graphs/{graph}/versions", token)
    assert status == 200, body
    return sorted(v["number"] for v in body)


def set_width(page: Page, node_id: str, shape_or_width: str, value: int | list[int]) -> None:
    """Set an Input's shape or a Linear's out_features in the inspector."""
    select(page, node_id)
    set_param(page, shape_or_width, value if isinstance(value, int) else
              ", ".join(map(str, value)))
    params = find_node(document(page), node_id).get("params", {})
    assert params.get(shape_or_width) == value, params


def test_an_unfit_graph_cannot_start_and_is_not_saved_until_fixed(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    _, starter = live.api("GET", "/api/starters", token)
    mlp = copy.deepcopy(next(s["document"] for s in starter if s["name"] == "mlp"))
    next(n for n in mlp["nodes"] if n["id"] == "x")["params"]["shape"] = [32]
    status, graph = live.api("POST", "/api/graphs", token, {"document": mlp,
                                                            "name": "Narrow MLP"})
    assert status == 201, graph
    graph_id = graph["id"]

    open_editor(page, f"/g/{graph_id}")
    button(page, "Run").click()
    page.get_by_test_id("run-dataset").select_option("digits")
    start = page.get_by_test_id("run-start")
    reason = page.get_by_test_id("run-check")
    expect(reason).to_contain_text("digits gives float32 [B, 64], but Input 'x' expects "
                                   "float32 [B, 32]")
    expect(start).to_be_disabled()
    expect(start).to_have_attribute("title", re.compile(r"Input 'x' expects"))
    artifacts.snap(page, "input-does-not-fit")

    # An unsaved edit that still does not fit: Start stays disabled; nothing is saved.
    set_width(page, "x", "shape", [64])
    set_width(page, "logits", "out_features", 64)
    expect(reason).to_contain_text("the model outputs 64 classes, but digits has 10: make "
                                   "the last Linear ('logits') 10 wide")
    expect(start).to_be_disabled()
    page.get_by_test_id("run-steps").press("Enter")  # a form submitted by the keyboard
    page.wait_for_timeout(500)
    assert versions(live, token, graph_id) == [1]
    assert live.api("GET", f"/api/jobs?graph={graph_id}", token)[1] == []
    artifacts.snap(page, "output-does-not-fit")

    # Fixed: Start is enabled; pressing it saves the version and starts the run.
    set_width(page, "logits", "out_features", 10)
    expect(reason).to_be_hidden()
    expect(start).to_be_enabled()
    page.get_by_test_id("run-steps").fill("5")
    start.click()
    expect(page.get_by_test_id("run-status")).to_be_visible(timeout=30_000)
    assert versions(live, token, graph_id) == [1, 2]
    artifacts.snap(page, "started")
