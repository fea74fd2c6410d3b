"""A canvas opens readable: chains run top to bottom, the opening zoom keeps a block's label
at 11 px or more, and the Input is in the part of the canvas no panel covers; the same
inside a Repeat, after "fit view" with the run drawer open, and after auto-layout.

Every measurement is also written to test-artifacts/e2e/canvas-view.jsonl (the zoom and the
smallest text of each starter at each window size), for the record.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from editor_ui import (
    document,
    drag_node,
    drop_block,
    inside,
    login,
    node,
    node_ids,
    open_editor,
    quick_add,
    view_text,
    visible_canvas,
    wait_until,
    wait_view_settled,
)
from livestack import ROOT
from playwright.sync_api import Locator, Page, ViewportSize, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import User

pytestmark = pytest.mark.e2e

MIN_TEXT_PX = 11
SIZES: dict[str, ViewportSize] = {
    "1440x900": {"width": 1440, "height": 900},
    "1280x720": {"width": 1280, "height": 720},
}
STARTERS = ["char_gpt", "mlp", "cnn", "resnet", "transformer_classifier"]
RECORD = ROOT / "test-artifacts" / "e2e" / "canvas-view.jsonl"


def _graph_at(doc: dict[str, Any], scope: list[str]) -> dict[str, Any]:
    graph = doc
    for node_id in scope:
        graph = next(n for n in graph["nodes"] if n["id"] == node_id)["graph"]
    return graph


def _handle(page: Page, endpoint: str, kind: str) -> Locator:
    node_id, _, port = endpoint.partition(".")
    if port:
        return node(page, node_id).locator(f'.react-flow__handle.{kind}[data-handleid="{port}"]')
    return node(page, node_id).locator(f".react-flow__handle.{kind}").first


def _centre_y(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box["y"] + box["height"] / 2


def check_view(page: Page, scope: list[str], where: str) -> list[str]:
    """What is wrong with the canvas as it is now shown (nothing, for a readable one); the
    measurements go to the record."""
    wait_view_settled(page)
    text = view_text(page)
    region = visible_canvas(page)
    graph = _graph_at(document(page), scope)
    entry = next(n["id"] for n in graph["nodes"] if n["type"] == "Input")
    entry_box = node(page, entry).bounding_box()
    with RECORD.open("a") as out:
        out.write(json.dumps({
            "where": where, "zoom": round(text["zoom"], 3), "label_px": round(text["label_px"], 1),
            "smallest_px": round(text["smallest"]["px"], 1), "smallest": text["smallest"]["cls"],
            "input_visible": inside(entry_box, region)}) + "\n")

    problems = []
    if text["label_px"] < MIN_TEXT_PX - 0.01:
        problems.append(f"{where}: a block's label is {text['label_px']:.1f} px on screen at "
                        f"zoom {text['zoom']:.2f}; it must be at least {MIN_TEXT_PX} px")
    if not inside(entry_box, region):
        problems.append(f"{where}: the Input {entry!r} at {entry_box} is not inside the part "
                        f"of the canvas the panels leave visible, {region}")
    for edge in graph["edges"]:
        source = _handle(page, edge["from"], "source")
        target = _handle(page, edge["to"], "target")
        sides = (_side(source), _side(target))
        if sides != ("bottom", "top") or _centre_y(source) >= _centre_y(target):
            problems.append(f"{where}: the edge {edge['from']} -> {edge['to']} does not go "
                            f"down from a port at the bottom to one at the top ({sides})")
    return problems


def _side(handle: Locator) -> str:
    classes = handle.get_attribute("class") or ""
    found = re.search(r"react-flow__handle-(top|bottom|left|right)", classes)
    return found.group(1) if found else "?"


def open_starter(artifacts: Artifacts, account: User, starter: str, size: str) -> Page:
    page = artifacts.new_page()
    page.set_viewport_size(SIZES[size])
    login(page, account)
    open_editor(page, f"/new?starter={starter}")
    expect(page.locator(".react-flow__node").first).to_be_visible()
    return page


def enter_repeat(page: Page) -> list[str]:
    """Open the first Repeat of the graph with the keyboard: select it, Enter."""
    repeat = next(n["id"] for n in document(page)["nodes"] if n["type"] == "Repeat")
    page.evaluate("(id) => window.__shipyard.store.getState().select([id])", repeat)
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Where you are")).to_be_visible()
    return [repeat]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("starter", STARTERS)
def test_a_starter_opens_readable_and_so_does_its_repeat(
        artifacts: Artifacts, account: User, starter: str, size: str) -> None:
    page = open_starter(artifacts, account, starter, size)
    problems = check_view(page, [], f"{starter} at {size}")
    artifacts.snap(page, "opened")
    if any(n["type"] == "Repeat" for n in document(page)["nodes"]):
        scope = enter_repeat(page)
        problems += check_view(page, scope, f"inside {starter}'s Repeat at {size}")
        artifacts.snap(page, "inside-repeat")
    assert not problems, "\n".join(problems)


def _runs_toggle(page: Page) -> Locator:
    return page.get_by_role("button", name=re.compile(r"^Runs\b"))


def test_fit_view_with_the_run_drawer_open_fits_above_it_and_hides_the_minimap(
        artifacts: Artifacts, account: User) -> None:
    page = open_starter(artifacts, account, "char_gpt", "1440x900")
    wait_view_settled(page)
    minimap = page.locator(".react-flow__minimap")
    expect(minimap).to_be_visible()
    _runs_toggle(page).click()
    expect(page.locator(".run-drawer")).to_be_visible()
    # The canvas is short now: the minimap would sit on blocks.
    expect(minimap).to_be_hidden()

    # Away from the graph, then back with the button ...
    page.mouse.move(700, 300)
    page.mouse.wheel(0, 1500)
    pane_box = page.locator(".react-flow__pane").bounding_box()
    assert pane_box is not None
    page.mouse.move(pane_box["x"] + 20, pane_box["y"] + 20)
    page.get_by_role("button", name="Fit view").click()
    problems = check_view(page, [], "char_gpt with the run drawer open, after the Fit view button")
    artifacts.snap(page, "fit-button-drawer-open")
    # ... and with F.
    page.mouse.move(700, 300)
    page.mouse.wheel(0, -1500)
    page.locator(".react-flow__pane").click(position={"x": 30, "y": 30})
    page.keyboard.press("f")
    problems += check_view(page, [], "char_gpt with the run drawer open, after F")
    artifacts.snap(page, "fit-key-drawer-open")
    assert not problems, "\n".join(problems)

    _runs_toggle(page).click()
    expect(page.locator(".run-drawer")).to_be_hidden()
    expect(minimap).to_be_visible()


def test_auto_layout_keeps_every_block_on_screen(artifacts: Artifacts, account: User) -> None:
    page = open_starter(artifacts, account, "mlp", "1440x900")
    wait_view_settled(page)
    for how in ("the L key", "the Auto-layout button"):
        # One block dragged far down and right, past the edge of the canvas.
        drag_node(page, "act2", 700, 500)
        if how == "the L key":
            page.keyboard.press("l")
        else:
            page.get_by_role("button", name="Auto-layout").click()
        problems = check_view(page, [], f"the MLP after {how}")
        region = visible_canvas(page)
        for node_id in node_ids(page):
            box = node(page, node_id).bounding_box()
            if not inside(box, region):
                problems.append(f"after {how}, {node_id} at {box} is off the visible {region}")
        artifacts.snap(page, f"after-{how}")
        assert not problems, "\n".join(problems)


def _centre(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _lands_at(page: Page, node_id: str, x: float, y: float, how: str) -> None:
    cx, cy = _centre(node(page, node_id))
    assert abs(cx - x) <= 10 and abs(cy - y) <= 20, (
        f"{how}: {node_id} is centred at ({cx:.0f}, {cy:.0f}), not at ({x:.0f}, {y:.0f})")


def test_a_new_block_lands_where_it_was_put(artifacts: Artifacts, account: User) -> None:
    page = artifacts.new_page()
    login(page, account)
    open_editor(page, "/new")
    pane_box = page.locator(".react-flow__pane").bounding_box()
    assert pane_box is not None

    dropped = drop_block(page, "Linear", 250, 160)
    _lands_at(page, dropped, pane_box["x"] + 250, pane_box["y"] + 160, "dropped from the palette")
    added = quick_add(page, "ReLU", 600, 520)
    _lands_at(page, added, pane_box["x"] + 600, pane_box["y"] + 520, "quick-added")

    # Moved away from the origin, a block added from the palette with the keyboard lands in
    # the middle of what the canvas shows.
    page.mouse.move(pane_box["x"] + 400, pane_box["y"] + 400)
    page.mouse.down()
    page.mouse.move(pane_box["x"] + 300, pane_box["y"] + 250, steps=8)
    page.mouse.up()
    before = set(node_ids(page))
    page.locator('[data-testid="palette-item"][data-type="LayerNorm"]').first.focus()
    page.keyboard.press("Enter")
    new = wait_until(lambda: [i for i in node_ids(page) if i not in before], "a LayerNorm added")
    region = visible_canvas(page)
    _lands_at(page, new[0], region["x"] + region["width"] / 2, region["y"] + region["height"] / 2,
              "added from the palette with Enter")
    artifacts.snap(page, "placed")
