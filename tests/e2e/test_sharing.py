"""Sharing: a link opens read-only for anyone; forking after logging in gives an editable
copy."""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING

import pytest
from editor_ui import (
    button,
    document,
    graph_core,
    node,
    node_ids,
    open_editor,
    pane,
    save,
    saved_graph_id,
    select,
    set_param,
    wait_ready,
)
from livestack import LiveStack
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def test_share_link_is_read_only_and_forks_into_an_editable_copy(
        live: LiveStack, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    save(page, "to share")
    graph_id = saved_graph_id(page)
    shared_doc = document(page)

    button(page, "Share").click()
    dialog = page.get_by_role("dialog", name="Share")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Create link", exact=True).click()
    row = dialog.get_by_test_id("share-link").first
    expect(row).to_be_visible()
    link = row.locator("input")
    expect(link).to_have_attribute("readonly", re.compile(".*"))
    url = link.input_value()
    assert re.search(r"/s/[^/]+$", url), f"the share link {url!r} is not a /s/<token> URL"
    expect(row.get_by_role("button", name="Copy", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name="Revoke", exact=True)).to_be_visible()
    artifacts.snap(page, "share-dialog")

    # Somebody else, not logged in, in a browser of their own.
    anon = artifacts.new_page()
    anon.goto(url)
    wait_ready(anon)
    banner = anon.get_by_test_id("readonly-banner")
    expect(banner).to_be_visible()
    expect(banner.get_by_role("link", name="Log in to fork")).to_be_visible()
    before = document(anon)
    assert graph_core(before) == graph_core(shared_doc)
    artifacts.snap(anon, "shared-anonymous")

    # Editing is off: no delete, no quick-add, no drops, read-only fields.
    select(anon, "hidden1")
    anon.keyboard.press("Delete")
    expect(node(anon, "hidden1")).to_be_visible()
    for field in anon.get_by_test_id("inspector").locator('[data-testid^="param-"]').all():
        assert not field.is_editable(), f"{field} is editable in the read-only view"
    pane(anon).dblclick(position={"x": 300, "y": 400})
    expect(anon.get_by_placeholder("Add a block…")).to_have_count(0)
    palette_item = anon.locator('[data-testid="palette-item"][data-type="Linear"]').first
    if palette_item.count() and palette_item.is_visible():
        palette_item.drag_to(pane(anon), target_position={"x": 300, "y": 420})
    assert document(anon) == before, "the read-only view let the graph change"
    assert set(node_ids(anon)) == {n["id"] for n in shared_doc["nodes"]}

    # Log in (as another person) to fork: back on the shared page, then an own copy.
    forker = live.create_user("forker")
    login_link = banner.get_by_role("link", name="Log in to fork")
    target = urllib.parse.urlparse(urllib.parse.urljoin(anon.url, login_link.get_attribute(
        "href") or ""))
    assert target.path == "/accounts/login/", (
        f"'Log in to fork' leads to {target.path}?{target.query}, not to the login page")
    assert urllib.parse.parse_qs(target.query).get("next") == [urllib.parse.urlparse(url).path]
    login_link.click()
    anon.wait_for_url(re.compile(r"/accounts/login/"))
    anon.locator('input[name="username"]').fill(forker.username)
    anon.locator('input[name="password"]').fill(forker.password)
    with anon.expect_navigation():
        anon.get_by_role("button", name="Log in").click()
    anon.wait_for_url(re.compile(r"/s/[^/]+$"))
    wait_ready(anon)
    fork_button = anon.get_by_test_id("readonly-banner").get_by_role("button", name="Fork",
                                                                       exact=True)
    expect(fork_button).to_be_visible()
    artifacts.snap(anon, "shared-logged-in")
    fork_button.click()
    anon.wait_for_url(re.compile(r"/g/\d+$"))
    wait_ready(anon)
    fork_id = int(anon.url.rsplit("/", 1)[1])
    assert fork_id != graph_id
    expect(anon.get_by_test_id("readonly-banner")).to_have_count(0)
    assert graph_core(document(anon)) == graph_core(shared_doc)

    # The copy is editable.
    select(anon, "hidden1")
    set_param(anon, "out_features", 96)
    assert next(n for n in document(anon)["nodes"]
                if n["id"] == "hidden1")["params"]["out_features"] == 96
    expect(anon.get_by_test_id("save-state")).to_contain_text("unsaved")
    artifacts.snap(anon, "fork-edited")
