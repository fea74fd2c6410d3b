"""Issue 15 in the browser: a saved graph becomes a block in another graph (My blocks), and
an Init node sets how a graph's weights start."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from editor_ui import (
    connect,
    document,
    drop_block,
    node,
    open_editor,
    report,
    save,
    saved_graph_id,
    select,
    wait_until,
)
from livestack import LiveStack
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def test_a_saved_graph_is_inserted_from_my_blocks_pinned_and_saved(
        user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    save(page, "a block to reuse")
    block_graph = saved_graph_id(page)

    open_editor(page, "/new?starter=mlp")
    mine = page.get_by_test_id("my-block").first
    expect(mine).to_be_visible()
    expect(mine).to_contain_text("v1")
    mine.click()

    def custom_nodes() -> list[dict]:
        return [n for n in document(page)["nodes"] if n["type"] == "Custom"]

    (inserted,) = wait_until(custom_nodes, "a Custom node in the document")
    assert inserted["params"]["source"] == str(block_graph)
    assert inserted["params"]["version"] == 1
    assert {n["type"] for n in inserted["graph"]["nodes"]} >= {"Input", "Linear", "Output"}
    expect(node(page, inserted["id"])).to_be_visible()
    artifacts.snap(page, "custom-block")

    # Its ports are the saved graph's Input and Output: wire the top Input into it.
    connect(page, "x", inserted["id"], "out", "x")
    save(page, "uses my block")  # the server checks the pinned copy: a 400 would not save
    wait_until(lambda: (report(page) or {}).get("nodes", {}).get(inserted["id"]),
               "the block's node in the report")


def test_a_graph_shared_by_someone_else_is_added_as_a_block_through_its_link(
        live: LiveStack, user_page: Page, artifacts: Artifacts) -> None:
    owner = live.create_user("owner")
    token = live.token(owner)
    status, doc = live.api("GET", "/api/starters", token)
    assert status == 200
    mlp = next(s["document"] for s in doc if s["name"] == "mlp")
    status, graph = live.api("POST", "/api/graphs", token, {"document": mlp})
    assert status == 201, graph
    status, link = live.api("POST", f"/api/graphs/{graph['id']}/share", token, {})
    assert status == 201, link

    page = user_page
    open_editor(page, "/new?starter=mlp")
    box = page.get_by_placeholder("Add from a share link…")
    box.fill("javascript:alert(1)")  # not a link: refused here, no request made
    box.press("Enter")
    expect(page.get_by_test_id("my-blocks")).to_contain_text("share link")
    box.fill(link["url"])
    box.press("Enter")
    (inserted,) = wait_until(
        lambda: [n for n in document(page)["nodes"] if n["type"] == "Custom"],
        "a Custom node from the share link")
    assert inserted["params"]["source"] == f"share:{link['token']}"
    expect(node(page, inserted["id"])).to_be_visible()
    connect(page, "x", inserted["id"], "out", "x")
    save(page, "uses a shared block")  # the server checks the link and the pinned copy
    artifacts.snap(page, "shared-block")


def test_an_init_node_dropped_on_the_canvas_sets_the_graphs_start(
        user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    init = drop_block(page, "Init", 300, 420)
    select(page, init)
    (added,) = [n for n in document(page)["nodes"] if n["id"] == init]
    assert added["type"] == "Init"
    expect(page.get_by_test_id("inspector")).to_contain_text("gpt2")
    wait_until(lambda: (report(page) or {}).get("valid"), "a valid graph with an Init node")
    artifacts.snap(page, "init-node")
