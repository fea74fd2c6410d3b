"""The SQL console in the editor: a statement changes the canvas and saves a version, undo
takes it back, a row of a SELECT selects its node; on a shared link SELECT works and a change
is refused with "fork it to change"."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from editor_ui import (
    VALID,
    block,
    blur,
    document,
    find_node,
    node,
    open_editor,
    param,
    save,
    saved_graph_id,
    select,
    wait_ready,
    wait_until,
)
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = pytest.mark.e2e

DROPOUT_P = "UPDATE nodes SET params = json_set(params, '$.p', 0.3) WHERE type = 'Dropout'"


def dropout_p(doc: dict[str, Any]) -> Any:
    """The p of the transformer classifier's Dropout, inside its `encoder` Repeat."""
    return (find_node(find_node(doc, "encoder")["graph"], "drop").get("params") or {}).get("p")


def open_console(page: Page) -> None:
    """Q (with nothing focused) opens the console with the text area focused."""
    blur(page)
    page.keyboard.press("q")
    expect(page.get_by_test_id("sql-console")).to_be_visible()
    expect(page.get_by_test_id("sql-text")).to_be_focused()


def run_sql(page: Page, script: str) -> None:
    """Type a script and run it with Ctrl+Enter; until the console shows what came back."""
    text = page.get_by_test_id("sql-text")
    text.fill(script)
    text.press("Control+Enter")
    expect(page.get_by_test_id("sql-run")).to_have_text("Run")  # not "Running…"
    expect(page.get_by_test_id("sql-output").locator(
        '[data-testid="sql-result"], [data-testid="sql-error"]')).to_be_visible()


def result_row(page: Page, node_id: str) -> Any:
    return page.get_by_test_id("sql-table").locator(f'tbody tr[data-node="{node_id}"]')


def test_a_statement_changes_the_canvas_undo_restores_it_and_a_row_selects_its_node(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=transformer_classifier")
    expect(page.get_by_test_id("validity")).to_have_text(VALID)
    save(page, "the starter")
    graph_id = saved_graph_id(page)
    expect(page.get_by_test_id("save-state")).to_have_text(re.compile(r"^v1\b"))
    before = document(page)
    assert dropout_p(before) == 0.0

    open_console(page)
    run_sql(page, DROPOUT_P)
    expect(page.get_by_test_id("sql-change")).to_contain_text("encoder/drop")
    # The Repeat holding the changed block is highlighted for a few seconds.
    expect(block(page, "encoder")).to_have_class(re.compile(r"\bsql-touched\b"))
    artifacts.snap(page, "dropout-changed")
    # The canvas has the new document at once, saved as a version with the statement as its
    # message, and the editor is on that version.
    wait_until(lambda: dropout_p(document(page)) == 0.3, "the statement to set the Dropout's p")
    expect(page.get_by_test_id("save-state")).to_have_text(re.compile(r"^v2 · saved"))
    expect(page.get_by_test_id("sql-change")).to_contain_text("Saved as version 2")
    status, versions = live.api("GET", f"/api/graphs/{graph_id}/versions", live.token(account))
    assert status == 200, versions
    assert [v["number"] for v in versions][:2] == [2, 1]
    assert versions[0]["message"] == DROPOUT_P

    # The inspector shows the new value.
    node(page, "encoder").dblclick()
    expect(page.locator(".breadcrumbs")).to_be_visible()
    select(page, "drop")
    expect(param(page, "p")).to_have_value("0.3")
    artifacts.snap(page, "inspector-shows-it")

    # One undo takes the whole statement back; the document is the saved v1 again.
    blur(page)
    page.keyboard.press("Escape")  # clear the selection
    page.keyboard.press("Escape")  # leave the Repeat
    expect(page.locator(".breadcrumbs")).to_be_hidden()
    page.keyboard.press("Control+z")
    wait_until(lambda: dropout_p(document(page)) == 0.0, "undo to give the Dropout its p back")
    assert document(page)["nodes"] == before["nodes"]
    assert document(page)["edges"] == before["edges"]
    expect(page.get_by_test_id("save-state")).to_contain_text("unsaved changes")

    # A SELECT's rows name nodes: a click selects the node (a nested one, its Repeat).
    page.get_by_test_id("sql-text").click()
    run_sql(page, "SELECT path, type, params_count FROM nodes WHERE type = 'LayerNorm'")
    expect(page.get_by_test_id("sql-table").locator("tbody tr")).to_have_count(3)
    result_row(page, "norm").click()
    expect(page.get_by_test_id("node-id")).to_have_value("norm")
    assert page.evaluate("window.__shipyard.store.getState().selection") == ["norm"]
    page.get_by_test_id("sql-table").locator("tbody tr", has_text="encoder/ln1").click()
    wait_until(lambda: page.evaluate("window.__shipyard.store.getState().selection") == ["encoder"],
               "the row encoder/ln1 to select its Repeat, encoder")
    artifacts.snap(page, "row-selects-node")


def test_a_refused_statement_names_the_problem_and_changes_nothing(
        user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    before = document(page)
    open_console(page)
    run_sql(page, "SELECT id FROM nodes;\nSELEC nonsense")
    error = page.get_by_test_id("sql-error")
    expect(error).to_contain_text("statement 2")
    expect(error.get_by_test_id("sql-error-at")).to_contain_text("SELEC nonsense")
    run_sql(page, "SELECT nope FROM nodes")
    expect(error).to_contain_text("nope")
    assert document(page) == before
    artifacts.snap(page, "refused")


def test_on_a_shared_link_select_works_and_a_change_says_fork_it(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=transformer_classifier")
    save(page, "to share")
    graph_id = saved_graph_id(page)
    status, link = live.api("POST", f"/api/graphs/{graph_id}/share", live.token(account), {})
    assert status == 201, link

    visitor = artifacts.new_page()
    visitor.goto(link["url"])
    wait_ready(visitor)
    expect(visitor.get_by_test_id("readonly-banner")).to_be_visible()
    shared = document(visitor)
    open_console(visitor)
    run_sql(visitor, "SELECT path, type FROM nodes WHERE type = 'Dropout'")
    expect(visitor.get_by_test_id("sql-table").locator("tbody tr")).to_have_count(1)
    expect(visitor.get_by_test_id("sql-table")).to_contain_text("encoder/drop")
    run_sql(visitor, DROPOUT_P)
    expect(visitor.get_by_test_id("sql-error")).to_contain_text("fork it to change")
    assert document(visitor) == shared
    artifacts.snap(visitor, "shared-select-only")
