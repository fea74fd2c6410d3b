"""Training from the editor, on the live stack's Celery worker: the loss chart grows while
the run trains, and a transformer's attention maps appear."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from editor_ui import button, open_editor, save, saved_graph_id
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNNING = re.compile(r"running", re.IGNORECASE)

# In the page: every change of (status text, data-points of the loss chart), timed.
WATCH = """() => {
  window.__e2eRun = [];
  window.__e2eRunTimer = setInterval(() => {
    const status = document.querySelector('[data-testid="run-status"]');
    const chart = document.querySelector('[data-testid="loss-chart"]');
    if (!status) return;
    const s = status.textContent.trim();
    const n = chart ? Number(chart.getAttribute('data-points') || 0) : 0;
    const last = window.__e2eRun[window.__e2eRun.length - 1];
    if (!last || last[0] !== s || last[1] !== n) window.__e2eRun.push([s, n, performance.now()]);
  }, 20);
}"""

# True once data-points grew at least twice while the status said running.
GREW_WHILE_RUNNING = """() => {
  const points = (window.__e2eRun || []).filter(([s]) => /running/i.test(s)).map(x => x[1]);
  let rises = 0;
  for (let i = 1; i < points.length; i++) if (points[i] > points[i - 1]) rises++;
  return rises >= 2;
}"""


def start_run(page: Page, dataset: str, steps: int) -> None:
    button(page, "Run").click()
    choice = page.get_by_test_id("run-dataset")
    expect(choice).to_be_visible()
    choice.select_option(dataset)
    page.get_by_test_id("run-steps").fill(str(steps))
    button(page, "Start run").click()


def test_training_on_digits_streams_the_loss_live(user_page: Page,
                                                  artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    save(page, "to train")
    saved_graph_id(page)
    page.evaluate(WATCH)
    # Long enough to watch it train for a few seconds (digits runs ~500 steps/s here);
    # it is cancelled once the chart has grown.
    start_run(page, "digits", 5000)
    artifacts.snap(page, "started")
    status = page.get_by_test_id("run-status")
    expect(status).to_have_text(RUNNING, timeout=60_000)
    expect(page.get_by_test_id("run-progress")).to_be_visible()
    try:
        page.wait_for_function(GREW_WHILE_RUNNING, timeout=60_000)
    except Exception:
        seen = page.evaluate("() => window.__e2eRun")
        raise AssertionError(f"the loss chart did not grow while running: (status, "
                             f"data-points, ms) seen: {seen[-20:]}") from None
    chart = page.get_by_test_id("loss-chart")
    expect(chart).to_be_visible()
    artifacts.snap(page, "training-live")

    if RUNNING.search(status.text_content() or ""):
        button(page, "Cancel run").click()
        expect(status).to_have_text(re.compile(r"cancelled", re.IGNORECASE), timeout=60_000)
    else:  # it outran the test: it must have finished well
        expect(status).to_have_text(re.compile(r"succeeded", re.IGNORECASE))
    page.evaluate("() => clearInterval(window.__e2eRunTimer)")
    artifacts.snap(page, "ended")


def test_transformer_run_shows_attention_maps(user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=transformer_classifier")
    save(page, "to train")
    saved_graph_id(page)
    # modadd: the starter's own dataset; 60 steps take a few seconds here, and attention
    # is captured every 50 steps (and at the end).
    start_run(page, "modadd", 60)
    expect(page.get_by_test_id("run-status")).to_be_visible()
    # The drawer may keep the maps in a view of their own: open it, as a person would.
    attention_tab = page.get_by_role("tab", name="Attention")
    if attention_tab.count():
        attention_tab.click()
    maps = page.get_by_test_id("attention-map")
    expect(maps.first).to_be_visible(timeout=120_000)
    module = maps.first.get_attribute("data-node") or ""
    assert re.fullmatch(r"[A-Za-z_]\w*\.\d+\.attn", module), (
        f"attention map of {module!r}: expected a module path like encoder.0.attn")
    artifacts.snap(page, "attention")
    if attention_tab.count():
        page.get_by_role("tab", name="Run", exact=True).click()
    # Not waiting for the end (exports take a while): the run must not have failed.
    expect(page.get_by_test_id("run-status")).not_to_have_text(re.compile(r"failed", re.I))
