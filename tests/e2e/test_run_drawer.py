"""The run drawer on the live stack (issue 12): a running run says how long it has taken,
how long it has left and how fast it goes; a run whose validation loss climbs while its
training loss falls says the model is memorizing; attention maps say what they show and
why there are none yet; the drawer is resized by drag or keyboard and keeps its height.

Runs are started over the REST API (the run form is tested in test_editor_runs.py) and
watched in the editor, as their owner would."""

from __future__ import annotations

import re
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import pytest
from editor_ui import button, open_editor
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def new_graph(live: LiveStack, token: str, starter: str) -> int:
    status, graph = live.api("POST", "/api/graphs", token, {"starter": starter})
    assert status == 201, graph
    return int(graph["id"])


def start(live: LiveStack, token: str, graph: int, dataset: str, **config: Any) -> int:
    status, job = live.api("POST", "/api/jobs", token,
                           {"graph": graph, "dataset": dataset, "config": config})
    assert status == 201, job
    return int(job["id"])


def wait_status(live: LiveStack, token: str, job: int, wanted: set[str],
                timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, now = live.api("GET", f"/api/jobs/{job}", token)
        if now["status"] in wanted:
            return dict(now)
        time.sleep(0.25)
    raise AssertionError(f"run {job} is still {now['status']} after {timeout:g} s")


def cancel(live: LiveStack, token: str, job: int) -> None:
    """Cancels a run and waits for it to end: the stack's one worker is free again."""
    live.api("POST", f"/api/jobs/{job}/cancel", token)
    wait_status(live, token, job, {"cancelled", "succeeded", "failed"})


def open_drawer(page: Page, graph: int) -> None:
    open_editor(page, f"/g/{graph}")
    button(page, "Run").click()
    expect(page.get_by_role("region", name="Runs", exact=True)).to_be_visible()


def drawer_height(page: Page) -> float:
    box = page.get_by_role("region", name="Runs", exact=True).bounding_box()
    assert box is not None
    return box["height"]


def test_a_running_run_says_elapsed_time_left_and_speed(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    graph = new_graph(live, token, "mlp")
    # Long enough to be watched running (digits trains hundreds of steps a second here).
    job = start(live, token, graph, "digits", steps=20000)
    try:
        open_drawer(page, graph)
        expect(page.get_by_test_id("run-status")).to_have_text(re.compile("running", re.I),
                                                               timeout=60_000)
        expect(page.get_by_test_id("run-elapsed")).to_have_text(re.compile(r"^\d+ s$|min"))
        # The time left comes from the measured step rate: a number once steps are measured.
        expect(page.get_by_test_id("run-eta")).to_have_text(re.compile(r"^about \d+ (s|min)"),
                                                            timeout=30_000)
        expect(page.get_by_test_id("run-throughput")).to_have_text(
            re.compile(r"^[\d.]+k? samples/s$"))
        facts = page.get_by_test_id("run-timing")
        assert facts.is_visible()
        artifacts.snap(page, "running")
    finally:
        cancel(live, token, job)
    # An ended run no longer counts down.
    expect(page.get_by_test_id("run-status")).to_have_text(re.compile("cancelled|succeeded", re.I))
    expect(page.get_by_test_id("run-eta")).to_have_count(0)


def add_events(live: LiveStack, job: int, events: list[tuple[str, int, float]]) -> None:
    """Metric events (name, step, value) appended to a run in the stack's database, after
    its own: the loss curves of a run that began to memorize, which a tiny real run
    cannot be relied on to show."""
    db = sqlite3.connect(live.home / "db.sqlite3", timeout=30)
    try:
        (last,) = db.execute("SELECT MAX(seq) FROM jobs_jobevent WHERE job_id = ?",
                             (job,)).fetchone()
        now = time.time()
        db.executemany(
            "INSERT INTO jobs_jobevent (job_id, seq, type, step, time, name, value, data) "
            "VALUES (?, ?, 'metric', ?, ?, ?, ?, NULL)",
            [(job, last + i + 1, step, now, name, value)
             for i, (name, step, value) in enumerate(events)])
        db.commit()
    finally:
        db.close()


def test_a_run_that_memorizes_says_so(live: LiveStack, account: User, user_page: Page,
                                      artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    graph = new_graph(live, token, "mlp")
    job = live.finished_run(token, graph, steps=20)
    open_drawer(page, graph)
    expect(page.get_by_test_id("run-status")).to_have_text(re.compile("succeeded", re.I))
    expect(page.get_by_test_id("run-overfitting")).to_have_count(0)

    # Training loss falls from step 30 to 80; the validation loss rises at 60 and at 80.
    train = [("train_loss", s, 1.0 - s / 200) for s in range(30, 90, 10)]
    add_events(live, job["id"], sorted(
        [*train, ("val_loss", 40, 0.9), ("val_loss", 60, 1.0), ("val_loss", 80, 1.2)],
        key=lambda e: (e[1], e[0] == "val_loss")))
    page.get_by_role("button", name=re.compile(rf"#{job['id']}\b")).click()  # opened again
    warning = page.get_by_test_id("run-overfitting")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("memorizing the training examples")
    expect(warning).to_contain_text("more data, fewer steps or dropout help", ignore_case=True)
    artifacts.snap(page, "memorizing")


def test_attention_tab_says_why_there_are_no_maps_yet(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    graph = new_graph(live, token, "transformer_classifier")
    off = start(live, token, graph, "modadd", steps=10, attention_interval=0)
    wait_status(live, token, off, {"succeeded"})
    # A long run whose first snapshot is far off; cancelled at the end.
    waiting = start(live, token, graph, "modadd", steps=20000, attention_interval=10000)
    try:
        open_drawer(page, graph)
        expect(page.get_by_test_id("run-status")).to_contain_text(f"#{waiting}")
        page.get_by_role("tab", name="Attention").click()
        empty = page.get_by_test_id("attention-empty")
        expect(empty).to_have_text("Waiting for the first snapshot (at step 10000).")
        artifacts.snap(page, "waiting")

        page.get_by_role("tab", name="Run", exact=True).click()
        page.get_by_role("button", name=re.compile(rf"#{off}\b")).click()
        expect(page.get_by_test_id("run-status")).to_contain_text(f"#{off}")
        page.get_by_role("tab", name="Attention").click()
        expect(empty).to_contain_text("Attention snapshots are off for this run")
        expect(empty).not_to_contain_text("no attention modules")
    finally:
        cancel(live, token, waiting)


def test_attention_map_reads_in_words_and_fits_the_drawer(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    graph = new_graph(live, token, "transformer_classifier")
    job = start(live, token, graph, "modadd", steps=60)
    wait_status(live, token, job, {"succeeded"}, timeout=180)
    open_drawer(page, graph)
    page.get_by_role("tab", name="Attention").click()
    page.get_by_title("Show head 0 large").click()
    canvas = page.locator(".attn-large canvas")
    expect(canvas).to_be_visible()

    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.8)
    # modadd's example: its token ids on both axes, and in the words for the hovered cell.
    expect(page.locator(".attn-large").get_by_test_id("attention-keys")).to_have_text(
        re.compile(r"\d"))
    expect(page.get_by_test_id("attention-readout")).to_have_text(
        re.compile(r"^position \d+ \('\d+'\) attends to position \d+ \('\d+'\) with [01]\.\d{2}$"))
    artifacts.snap(page, "tokens-on-the-axes")

    # Smallest drawer: the large map shrinks to stay whole inside it.
    handle = page.get_by_test_id("runs-resize")
    handle.focus()
    page.keyboard.press("Home")
    for _ in range(2):  # the map is measured after the drawer settles
        page.wait_for_timeout(200)
    drawer = page.get_by_role("region", name="Runs", exact=True).bounding_box()
    box = canvas.bounding_box()
    assert drawer is not None and box is not None
    assert box["y"] + box["height"] <= drawer["y"] + drawer["height"] + 0.5, (
        f"the large map ends at {box['y'] + box['height']:.0f} px, below the drawer's "
        f"bottom at {drawer['y'] + drawer['height']:.0f} px")
    assert box["height"] < 288
    artifacts.snap(page, "small-drawer")


def test_run_drawer_resizes_and_remembers(live: LiveStack, account: User, user_page: Page,
                                          artifacts: Artifacts) -> None:
    page = user_page
    token = live.token(account)
    graph = new_graph(live, token, "mlp")
    open_drawer(page, graph)
    first = drawer_height(page)
    assert first <= 0.34 * 900, f"the drawer opens {first:.0f} px high, more than a third"

    handle = page.get_by_test_id("runs-resize")
    box = handle.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 3, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 120, steps=8)
    page.mouse.up()
    dragged = drawer_height(page)
    assert abs(dragged - (first + 120)) <= 2, (first, dragged)

    # The keyboard: arrows step, End and Home go to the limits.
    handle.focus()
    page.keyboard.press("ArrowDown")
    assert abs(drawer_height(page) - (dragged - 24)) <= 1
    page.keyboard.press("End")
    tallest = drawer_height(page)
    assert 600 <= tallest <= 900 - 200, tallest
    page.keyboard.press("Home")
    assert 150 <= drawer_height(page) <= 170
    page.keyboard.press("ArrowUp")
    remembered = drawer_height(page)
    expect(handle).to_have_attribute("aria-valuenow", str(round(remembered)))

    page.reload()
    button(page, "Run").click()
    expect(page.get_by_role("region", name="Runs", exact=True)).to_be_visible()
    assert abs(drawer_height(page) - remembered) <= 1
    artifacts.snap(page, "remembered")
