"""A trained model explains what it does to the data, in the editor on the live stack: with
a finished run open, selecting an edge shows what flows there for the run's validation
example, and a character model's drawer says which characters come next after a prompt
the user types, and where each head looked.

The run is started over the REST API (the run form is tested in test_editor_runs.py) and
read in the editor, as its owner would."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
from editor_ui import edge_label, wait_view_settled
from playwright.sync_api import Page, expect
from test_run_drawer import new_graph, open_drawer, start, wait_status

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_finished_char_gpt_shows_edge_values_and_the_next_character(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    graph = new_graph(live, token, "char_gpt")
    job = start(live, token, graph, "shakespeare", steps=4, eval_interval=4, batch_size=8)
    wait_status(live, token, job, {"succeeded"}, timeout=180)
    open_drawer(page, graph)
    expect(page.get_by_test_id("run-status")).to_contain_text(f"#{job}")

    # An edge on the canvas: its shape, and what flows on it for the validation example.
    wait_view_settled(page)
    label = edge_label(page, "ln_f", "head")
    pane = page.locator(".react-flow__pane").bounding_box()
    assert pane is not None
    for _ in range(6):  # the whole model in view: zoomed out until the edge's label shows
        box = label.bounding_box()
        if box and box["x"] + box["width"] < pane["x"] + pane["width"]:
            break
        page.get_by_role("button", name="Zoom out").click()
        wait_view_settled(page)
    box = label.bounding_box()
    assert box is not None and box["x"] + box["width"] < pane["x"] + pane["width"]
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    flow = page.get_by_test_id("edge-flow")
    expect(flow).to_contain_text(f"run #{job}, validation example")
    stats = page.get_by_test_id("edge-stats")
    expect(stats).to_contain_text("[1, 64, 128]")
    expect(stats).to_contain_text(re.compile(r"mean\s*-?\d"))
    expect(page.get_by_test_id("edge-zeros")).to_have_text(re.compile(r"^[\d.<]+%$"))
    expect(page.get_by_test_id("edge-histogram").locator("rect")).to_have_count(30)
    artifacts.snap(page, "edge-values")

    # What comes next: five characters with their probabilities, a strip per head.
    page.get_by_role("tab", name="Next character").click()
    prompt = page.get_by_test_id("next-prompt")
    prompt.fill("To be, or not to be, that is the question: whether 'tis nobler in the mind")
    top = page.get_by_test_id("next-top").locator("li")
    expect(top).to_have_count(5)
    expect(top.first).to_contain_text(re.compile(r"\d+(\.\d)?%"))
    expect(page.get_by_test_id("next-char")).to_contain_text("used the last 64")
    expect(page.get_by_test_id("next-head")).to_have_count(16)  # 4 blocks of 4 heads
    artifacts.snap(page, "next-character")
    prompt.fill("naïve")
    expect(page.get_by_role("alert")).to_contain_text("'ï'")

    # The data it learnt from, described in public: the manifest's facts, the file to keep
    # and the model card.
    page.get_by_role("tab", name="Dataset").click()
    expect(page.get_by_test_id("dataset-name")).to_contain_text("shakespeare")
    expect(page.get_by_test_id("dataset-licence")).to_contain_text(
        re.compile("public domain", re.IGNORECASE))
    expect(page.get_by_test_id("dataset-sha")).to_have_text(
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")
    with page.expect_download() as download:
        page.get_by_test_id("manifest-download").click()
    manifest = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert manifest["name"] == "shakespeare" and manifest["@context"]
    page.get_by_test_id("model-card-toggle").click()
    expect(page.get_by_test_id("model-card")).to_contain_text("Intended use")
    artifacts.snap(page, "dataset-manifest")
