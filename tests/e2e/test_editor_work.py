"""Never losing work: a draft survives a reload, blocks move between tabs through the
clipboard, a save that someone else's save overtook says so and offers a way out, and a
selection becomes a Repeat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from editor_ui import (
    VALID,
    button,
    document,
    graph_core,
    node,
    open_editor,
    save,
    saved_graph_id,
    select,
    set_param,
    wait_ready,
    wait_until,
)
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def test_an_unsaved_draft_survives_a_reload(user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    save(page, "the starter")
    graph_id = saved_graph_id(page)
    select(page, "hidden1")
    set_param(page, "out_features", 77)
    expect(page.get_by_test_id("save-state")).to_contain_text("unsaved")
    edited = graph_core(document(page))
    page.wait_for_timeout(600)  # the draft is written a moment after the edit

    leaving = []
    page.on("dialog", lambda dialog: (leaving.append(dialog.type), dialog.accept()))
    page.reload()
    wait_ready(page)
    assert page.url.endswith(f"/g/{graph_id}")
    assert leaving == ["beforeunload"]  # it asked before leaving unsaved changes
    assert graph_core(document(page)) == edited
    expect(page.get_by_test_id("notice")).to_contain_text("unsaved changes")
    expect(page.get_by_test_id("save-state")).to_contain_text("unsaved")
    artifacts.snap(page, "draft-restored")

    save(page, "wider")  # saving the draft makes it the latest version and drops the draft
    page.reload()
    wait_ready(page)
    expect(page.get_by_test_id("save-state")).to_contain_text("saved")
    assert graph_core(document(page)) == edited


def test_copy_in_one_tab_and_paste_in_another(user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    node(page, "hidden1").click()
    node(page, "act1").click(modifiers=["Control"])
    wait_until(lambda: sorted(page.evaluate(
        "window.__shipyard.store.getState().selection")) == ["act1", "hidden1"],
        "two blocks selected")
    page.keyboard.press("Control+c")

    other = page.context.new_page()
    artifacts.watch(other)
    open_editor(other, "/new")
    other.locator(".react-flow__pane").click(position={"x": 300, "y": 300})
    other.keyboard.press("Control+v")
    wait_until(lambda: len(document(other)["nodes"]) == 2, "the two blocks pasted")
    pasted = document(other)
    assert sorted(n["id"] for n in pasted["nodes"]) == ["act1", "hidden1"]
    assert pasted["edges"] == [{"from": "hidden1", "to": "act1"}]
    assert next(n for n in pasted["nodes"] if n["id"] == "hidden1")["params"] == \
        next(n for n in document(page)["nodes"] if n["id"] == "hidden1")["params"]
    artifacts.snap(other, "pasted")

    other.keyboard.press("Control+v")  # again: the ids are taken now, so they get new ones
    wait_until(lambda: len(document(other)["nodes"]) == 4, "pasted twice")
    assert {"hidden2", "act2"} <= {n["id"] for n in document(other)["nodes"]}
    other.keyboard.press("Control+z")
    wait_until(lambda: len(document(other)["nodes"]) == 2, "the second paste undone")


def test_a_save_overtaken_by_another_tab_says_so_and_can_reload(
        user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    save(page, "v1")
    graph_id = saved_graph_id(page)

    other = page.context.new_page()
    artifacts.watch(other)
    open_editor(other, f"/g/{graph_id}")
    select(other, "hidden1")
    set_param(other, "out_features", 33)
    save(other, "from the other tab")

    select(page, "hidden1")
    set_param(page, "out_features", 44)
    page.keyboard.press("Control+s")
    dialog = page.get_by_role("dialog", name="Save")
    dialog.get_by_role("button", name="Save", exact=True).click()
    conflict = page.get_by_role("dialog", name="Someone saved first")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("2")
    artifacts.snap(page, "conflict")
    conflict.get_by_role("button", name="Reload theirs").click()
    wait_until(lambda: next(n for n in document(page)["nodes"] if n["id"] == "hidden1")
               ["params"]["out_features"] == 33, "their version loaded")
    expect(page.get_by_test_id("save-state")).to_contain_text("v2")


def test_a_selection_becomes_a_repeat_that_opens_and_counts_its_copies(
        user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    # With hidden2 as wide as what it takes, hidden2 → act2 keeps [B, 128]: a section that
    # can be repeated.
    select(page, "hidden2")
    set_param(page, "out_features", 128)
    node(page, "hidden2").click()
    node(page, "act2").click(modifiers=["Control"])
    page.keyboard.press("Control+g")
    wait_until(lambda: any(n["type"] == "Repeat" for n in document(page)["nodes"]),
               "a Repeat made")
    repeat = next(n for n in document(page)["nodes"] if n["type"] == "Repeat")
    assert [n["id"] for n in repeat["graph"]["nodes"]] == ["x", "hidden2", "act2", "y"]
    expect(page.get_by_test_id("validity")).to_have_text(VALID)
    select(page, repeat["id"])
    set_param(page, "times", 3)
    expect(node(page, repeat["id"]).get_by_test_id("repeat-times")).to_have_text("×3")
    artifacts.snap(page, "repeat")

    node(page, repeat["id"]).dblclick()
    expect(page.get_by_role("navigation", name="Where you are")).to_contain_text("×3")
    expect(node(page, "hidden2")).to_be_visible()
    artifacts.snap(page, "inside")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    expect(page.get_by_role("navigation", name="Where you are")).to_be_hidden()
    expect(button(page, "Save")).to_be_visible()
