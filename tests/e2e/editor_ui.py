"""How the browser tests (and the editor benchmark) drive the editor: one function per thing
a person does, written against the editor's test contract (data-testid names, the
`window.__shipyard` hooks, React Flow's classes). Nothing here knows the editor's code.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import FloatRect, Locator, Page, expect

READY = "() => !!(window.__shipyard && window.__shipyard.ready === true)"
SAVED = re.compile(r"v\d+.*(?<!un)saved", re.IGNORECASE)  # "v2 · saved", never "unsaved"
HAS_ERROR = re.compile(r"(^|\s)has-error(\s|$)")
# The status bar's validity: "valid" or "N problems" (an icon before it is fine).
VALID = re.compile(r"^\W*valid\s*$")
PROBLEMS = re.compile(r"^\W*\d+ problems?\s*$")


def login(page: Page, user: Any) -> None:
    """Log in through the login form (`user.username`, `user.password`); ends on the page
    it redirects to."""
    page.goto("/accounts/login/")
    page.locator('input[name="username"]').fill(user.username)
    page.locator('input[name="password"]').fill(user.password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    if "/accounts/login/" in page.url:
        raise AssertionError(f"logging in as {user.username} failed: still on {page.url}")


# -- the editor's state ----------------------------------------------------------------


def wait_ready(page: Page, timeout: float = 30_000) -> None:
    """Until the editor says it has loaded the blocks and the graph."""
    try:
        page.wait_for_function(READY, timeout=timeout)
    except Exception as exc:
        hooks = page.evaluate("() => typeof window.__shipyard")
        raise AssertionError(f"the editor at {page.url} did not become ready within "
                             f"{timeout / 1000:.0f} s (window.__shipyard is {hooks})") from exc


def open_editor(page: Page, path: str) -> None:
    page.goto(path)
    wait_ready(page)


def document(page: Page) -> dict[str, Any]:
    """The current graph document (shipyard.graph/v1), as the editor holds it."""
    doc: dict[str, Any] = page.evaluate(
        "() => JSON.parse(JSON.stringify(window.__shipyard.document()))")
    return doc


def report(page: Page) -> dict[str, Any] | None:
    result: dict[str, Any] | None = page.evaluate(
        "() => JSON.parse(JSON.stringify(window.__shipyard.report() ?? null))")
    return result


def graph_core(doc: dict[str, Any]) -> dict[str, Any]:
    """What the model is (nodes and edges), without layout, title or editor metadata."""

    def node(n: dict[str, Any]) -> dict[str, Any]:
        out = {"id": n["id"], "type": n["type"], "params": n.get("params") or {}}
        if "graph" in n:
            out["graph"] = {"nodes": [node(m) for m in n["graph"]["nodes"]],
                            "edges": sorted(json.dumps(e, sort_keys=True)
                                            for e in n["graph"]["edges"])}
        return out

    return {"nodes": sorted((node(n) for n in doc["nodes"]), key=lambda n: n["id"]),
            "edges": sorted(json.dumps(e, sort_keys=True) for e in doc["edges"])}


def node_ids(page: Page) -> list[str]:
    return [n["id"] for n in document(page)["nodes"]]


def find_node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    for n in doc["nodes"]:
        if n["id"] == node_id:
            return n
    raise AssertionError(f"no node {node_id!r} in the document; nodes: "
                         f"{[n['id'] for n in doc['nodes']]}")


def has_edge(doc: dict[str, Any], src: str, dst: str, src_port: str = "out",
             dst_port: str = "in") -> bool:
    froms, tos = {src, f"{src}.{src_port}"}, {dst, f"{dst}.{dst_port}"}
    return any(e["from"] in froms and e["to"] in tos for e in doc["edges"])


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


# -- the canvas ------------------------------------------------------------------------


def pane(page: Page) -> Locator:
    return page.locator(".react-flow__pane")


def node(page: Page, node_id: str) -> Locator:
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def block(page: Page, node_id: str) -> Locator:
    """The node's block element: it has class has-error when the node has an error."""
    return node(page, node_id).locator('[data-testid="block-node"]')


def edge_label(page: Page, src: str, dst: str) -> Locator:
    """The shape label of the edge src -> dst ("node" or "node.port", as in the format)."""
    return page.locator(f'[data-testid="edge-label"][data-edge="{src}->{dst}"]')


def handle(page: Page, node_id: str, kind: str, port: str) -> Locator:
    """kind: "source" (an output port) or "target" (an input port)."""
    return node(page, node_id).locator(f'.react-flow__handle.{kind}[data-handleid="{port}"]')


def _new_node(page: Page, before: set[str], what: str) -> str:
    def added() -> list[str]:
        return [i for i in node_ids(page) if i not in before]

    new = wait_until(added, what, timeout=5)
    assert len(new) == 1, f"{what}: expected one new node, got {new}"
    expect(node(page, new[0])).to_be_visible()
    return str(new[0])


def drop_block(page: Page, block_type: str, x: float, y: float) -> str:
    """Drag a block from the palette onto the canvas at (x, y) of the pane (HTML5
    drag and drop); returns the new node's id."""
    before = set(node_ids(page))
    item = page.locator(f'[data-testid="palette-item"][data-type="{block_type}"]').first
    search = page.get_by_placeholder("Search blocks")
    searched = False
    if not item.is_visible():  # scrolled away or in a closed group: search for it
        search.fill(block_type)
        searched = True
    item.drag_to(pane(page), target_position={"x": x, "y": y})
    new = _new_node(page, before, f"a {block_type} dropped from the palette")
    if searched:
        search.fill("")
    return new


def quick_add(page: Page, query: str, x: float, y: float) -> str:
    """Double-click the empty canvas at (x, y), type in the quick-add box, Enter."""
    before = set(node_ids(page))
    pane(page).dblclick(position={"x": x, "y": y})
    box = page.get_by_placeholder("Add a block…")
    expect(box).to_be_visible()
    box.fill(query)
    box.press("Enter")
    return _new_node(page, before, f"a block added by quick-add {query!r}")


def _centre(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def connect(page: Page, src: str, dst: str, src_port: str = "out", dst_port: str = "in"
            ) -> None:
    """Wire src's output port to dst's input port with the mouse."""
    a, b = handle(page, src, "source", src_port), handle(page, dst, "target", dst_port)
    expect(a).to_be_visible()
    expect(b).to_be_visible()
    ax, ay = _centre(a)
    bx, by = _centre(b)
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move(ax + 5, ay + 5, steps=2)
    page.mouse.move(bx, by, steps=12)
    page.mouse.up()
    wait_until(lambda: has_edge(document(page), src, dst, src_port, dst_port),
               f"an edge {src}.{src_port} -> {dst}.{dst_port} after wiring it", timeout=5)


def drag_node(page: Page, node_id: str, dx: float, dy: float, steps: int = 20) -> None:
    """Drag a node by (dx, dy) screen pixels (5 px first, as React Flow wants)."""
    x, y = _centre(node(page, node_id))
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 5, y, steps=2)
    page.mouse.move(x + dx, y + dy, steps=steps)
    page.mouse.up()


def select(page: Page, node_id: str) -> None:
    """Click a node (selects it and shows it in the inspector)."""
    node(page, node_id).click()
    expect(page.get_by_test_id("node-id")).to_have_value(node_id)


def blur(page: Page) -> None:
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


# -- the inspector ---------------------------------------------------------------------


def param(page: Page, name: str) -> Locator:
    return page.get_by_test_id("inspector").locator(f'[data-testid="param-{name}"]')


def set_param(page: Page, name: str, value: Any) -> None:
    """Set a parameter of the selected node in the inspector (input, select or checkbox),
    committed with Enter and blur."""
    field = param(page, name)
    expect(field).to_be_visible()
    kind = field.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
    if kind.startswith("select"):
        field.select_option(str(value))
    elif kind == "input:checkbox":
        field.set_checked(bool(value))
    else:
        field.fill(str(value))
        field.press("Enter")
    blur(page)


# -- the top bar and dialogs -----------------------------------------------------------


def button(page: Page, name: str) -> Locator:
    """The button with this accessible name; an icon before the words is allowed
    ("▶ Run" is the button "Run")."""
    return page.get_by_role("button", name=re.compile(rf"^\W*{re.escape(name)}$"))


def save(page: Page, message: str = "") -> None:
    """Ctrl+S, a message, Save; until the save state says saved."""
    blur(page)
    page.keyboard.press("Control+s")
    dialog = page.get_by_role("dialog", name="Save")
    expect(dialog).to_be_visible()
    if message:
        dialog.get_by_placeholder("What changed? (optional)").fill(message)
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("save-state")).to_have_text(SAVED)


def saved_graph_id(page: Page) -> int:
    page.wait_for_url(re.compile(r"/g/\d+$"))
    match = re.search(r"/g/(\d+)$", page.url)
    assert match
    return int(match.group(1))


# -- the view --------------------------------------------------------------------------

# The canvas's text as a person sees it: every text on a block or an edge label, its
# computed font size times the zoom of the React Flow viewport.
_VIEW_JS = """() => {
  const viewport = document.querySelector('.react-flow__viewport');
  const m = /scale\\(([0-9.e-]+)\\)/.exec(viewport.style.transform);
  const zoom = m ? parseFloat(m[1]) : NaN;
  const texts = [];
  const scope = document.querySelectorAll('.react-flow__node, .edge-label');
  for (const root of scope) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const el = t.parentElement;
      if (!t.textContent.trim() || !el.getClientRects().length) continue;
      texts.push({px: parseFloat(getComputedStyle(el).fontSize) * zoom,
                  cls: el.className, text: t.textContent.trim().slice(0, 20)});
    }
  }
  texts.sort((a, b) => a.px - b.px);
  const label = document.querySelector(
    '.react-flow__node .bn-type, .react-flow__node .rn-frame-label .bn-id');
  return {zoom, smallest: texts[0] || null,
          label_px: label ? parseFloat(getComputedStyle(label).fontSize) * zoom : null};
}"""


def view_text(page: Page) -> dict[str, Any]:
    """The zoom of the canvas, the size on screen of a block's type label (`label_px`) and
    the smallest text on the canvas (`smallest`: {px, cls, text})."""
    result: dict[str, Any] = page.evaluate(_VIEW_JS)
    return result


def wait_view_settled(page: Page) -> str:
    """Until the canvas's viewport transform has stayed the same for 400 ms (fitting is
    done once the nodes are measured); returns it."""
    last, since = None, time.monotonic()
    deadline = since + 10
    while time.monotonic() < deadline:
        now = page.evaluate(
            "() => document.querySelector('.react-flow__viewport')?.style.transform ?? ''")
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since > 0.4:
            return str(now)
        time.sleep(0.05)
    raise AssertionError(f"the canvas's viewport kept moving for 10 s (last {last!r})")


Box = FloatRect

# What covers the window around the canvas, each with the side of the canvas it is on.
_PANELS = {".palette": "left", ".inspector": "right", ".topbar": "top",
           ".statusbar": "bottom", ".runs-drawer": "bottom", ".breadcrumbs": "top"}


def visible_canvas(page: Page) -> Box:
    """The part of the canvas that no panel covers, in page coordinates: React Flow's
    element, within the window, cut by each panel on its side (palette left, inspector
    right, top bar and breadcrumbs top, status line and run drawer bottom)."""
    rf = page.locator(".react-flow").bounding_box()
    assert rf is not None, "no canvas on screen"
    size = page.viewport_size or {"width": 0, "height": 0}
    left, top = max(rf["x"], 0.0), max(rf["y"], 0.0)
    right = min(rf["x"] + rf["width"], size["width"])
    bottom = min(rf["y"] + rf["height"], size["height"])
    for selector, side in _PANELS.items():
        for panel in page.locator(selector).all():
            box = panel.bounding_box()
            if box is None or box["width"] == 0 or box["height"] == 0:
                continue
            p_right, p_bottom = box["x"] + box["width"], box["y"] + box["height"]
            overlaps = (box["x"] < right and p_right > left
                        and box["y"] < bottom and p_bottom > top)
            if not overlaps:
                continue
            if side == "left":
                left = max(left, p_right)
            elif side == "right":
                right = min(right, box["x"])
            elif side == "top":
                top = max(top, p_bottom)
            else:
                bottom = min(bottom, box["y"])
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def inside(box: Box | None, region: Box) -> bool:
    return (box is not None and box["x"] >= region["x"] - 0.5
            and box["y"] >= region["y"] - 0.5
            and box["x"] + box["width"] <= region["x"] + region["width"] + 0.5
            and box["y"] + box["height"] <= region["y"] + region["height"] + 0.5)
