"""The guided path "Build a GPT from scratch" (issue 17), walked in the editor as a newcomer
would: the first steps built by hand (quick add, the parameter form, wiring), the rest with
"Show me", each followed by a passing Check; then a real run on the live stack's worker to
its end with a falling loss, its attention maps and its generated text, until the panel
says the path is complete. And progress that survives a reload, kept in the account.

Run with `-s` to see each step's text and the walk's time (also written to
test-artifacts/e2e/guided-path-walk.txt)."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import pytest
from editor_ui import (
    button,
    connect,
    document,
    find_node,
    has_edge,
    login,
    open_editor,
    quick_add,
    save,
    saved_graph_id,
    select,
    set_param,
    wait_ready,
)
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DONE = "✓ done"
# The run the path trains: short enough for a busy CPU, with evaluations (validation loss,
# samples and attention snapshots) at its start, middle and end.
RUN_STEPS = 40
EVAL_INTERVAL = 20
RUN_TIMEOUT_MS = 300_000


def panel(page: Page) -> Locator:
    return page.get_by_test_id("path-panel")


def on_step(page: Page, number: int, total: int | None = None) -> str:
    """Until the panel shows step `number`; its title. Prints the step as a newcomer reads it."""
    count = panel(page).get_by_test_id("path-step-count")
    of = str(total) if total else r"\d+"
    expect(count).to_have_text(re.compile(rf"^Step {number} of {of}$"))
    title = panel(page).get_by_test_id("path-step-title").inner_text().replace(" ✓", "")
    body = panel(page).locator(".path-body").inner_text()
    print(f"\n--- step {number}: {title}\n{body}")
    return title


def result(page: Page) -> Locator:
    return panel(page).get_by_test_id("path-result")


def check_passes(page: Page) -> None:
    panel(page).get_by_test_id("path-check").click()
    expect(result(page)).to_have_text(DONE)
    expect(panel(page).get_by_test_id("path-step-done")).to_be_visible()


def next_step(page: Page) -> None:
    panel(page).get_by_test_id("path-next").click()


def set_shape(page: Page, node_id: str, shape: list[int]) -> None:
    """The Input's shape field, typed as "32" (or, if it wants JSON, "[32]")."""
    select(page, node_id)
    set_param(page, "shape", ", ".join(map(str, shape)))
    if find_node(document(page), node_id).get("params", {}).get("shape") != shape:
        set_param(page, "shape", json.dumps(shape))
    assert find_node(document(page), node_id)["params"]["shape"] == shape


def wire(page: Page, src: str, dst: str) -> None:
    """Drag a wire from src's output to dst's input; once more if the first drag missed
    (a handle under the pointer while the inspector still redraws)."""
    try:
        connect(page, src, dst)
    except AssertionError:
        connect(page, src, dst)


def replace_output(page: Page, output: str, x: float, y: float) -> str:
    """Delete the Output (its one input is taken) and add a fresh one; its id."""
    select(page, output)
    page.keyboard.press("Delete")
    expect(page.locator(f'.react-flow__node[data-id="{output}"]')).to_have_count(0)
    return quick_add(page, "Output", x, y)


def build_first_steps(page: Page, artifacts: Artifacts) -> None:
    """Steps 1-3 by hand: token ids, an embedding, positions."""
    on_step(page, 1)
    # Checked before anything is built: one sentence on what is missing.
    panel(page).get_by_test_id("path-check").click()
    expect(result(page)).to_contain_text("There is no Input yet")

    tokens = quick_add(page, "Input", 160, 80)
    set_shape(page, tokens, [32])
    select(page, tokens)
    set_param(page, "dtype", "int64")
    out = quick_add(page, "Output", 160, 300)
    wire(page, tokens, out)
    # The panel checks by itself once the canvas rests: done without a click.
    expect(result(page)).to_have_text(DONE)
    artifacts.snap(page, "step1-built")
    next_step(page)

    on_step(page, 2)
    out = replace_output(page, out, 440, 300)
    wte = quick_add(page, "Embedding", 160, 200)
    select(page, wte)
    set_param(page, "num_embeddings", 128)
    set_param(page, "embedding_dim", 64)
    wire(page, tokens, wte)
    wire(page, wte, out)
    check_passes(page)
    next_step(page)

    on_step(page, 3)
    out = replace_output(page, out, 440, 420)
    wpe = quick_add(page, "PositionalEmbedding", 160, 320)
    select(page, wpe)
    set_param(page, "max_len", 32)
    wire(page, wte, wpe)
    wire(page, wpe, out)
    check_passes(page)
    artifacts.snap(page, "step3-built")
    next_step(page)


def test_walk_the_gpt_path_from_an_empty_canvas_to_generated_text(
        user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    started = time.monotonic()
    open_editor(page, "/new?path=gpt")
    expect(panel(page)).to_be_visible()
    expect(panel(page)).to_contain_text("Build a GPT from scratch")
    total = int(re.findall(r"of (\d+)", panel(page).get_by_test_id("path-step-count")
                           .inner_text())[0])
    assert total >= 10, f"the GPT path has {total} steps"
    build_first_steps(page, artifacts)

    # The canvas steps after those: "Show me", then Check.
    number = 4
    while True:
        on_step(page, number, total)
        if not panel(page).get_by_test_id("path-check").count():
            break  # a step done in the run drawer
        mine = document(page)
        panel(page).get_by_test_id("path-show-me").click()
        if number == 4:  # one change: Undo gives the user's canvas back, Redo the solution
            shown = document(page)
            page.keyboard.press("Control+z")
            assert document(page)["nodes"] == mine["nodes"]
            page.keyboard.press("Control+Shift+z")
            assert document(page)["nodes"] == shown["nodes"]
        check_passes(page)
        number += 1
        next_step(page)
    artifacts.snap(page, "built")
    built = time.monotonic()

    # Train: the panel opens the run form with the path's dataset.
    expect(result(page)).to_contain_text("Press ▶ Run")
    panel(page).get_by_test_id("path-open-drawer").click()
    expect(page.get_by_test_id("run-dataset")).to_have_value("shakespeare")
    page.get_by_test_id("run-steps").fill(str(RUN_STEPS))
    page.locator("details.runs-advanced > summary").click()
    page.get_by_test_id("run-eval_interval").fill(str(EVAL_INTERVAL))
    button(page, "Start run").click()
    page.wait_for_url(re.compile(r"/g/\d+$"))  # saved to run
    expect(page.get_by_test_id("run-status")).to_have_text(re.compile("running|queued", re.I),
                                                           timeout=60_000)
    expect(result(page)).to_have_text(DONE, timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "succeeded")
    artifacts.snap(page, "trained")
    trained = time.monotonic()
    next_step(page)

    on_step(page, number + 1, total)
    expect(result(page)).to_contain_text("Attention tab")
    panel(page).get_by_test_id("path-open-drawer").click()
    expect(page.get_by_test_id("attention-map").first).to_be_visible()
    expect(result(page)).to_have_text(DONE)
    artifacts.snap(page, "attention")
    next_step(page)

    on_step(page, number + 2, total)
    panel(page).get_by_test_id("path-open-drawer").click()
    samples = page.get_by_test_id("samples").locator(".samples-text")
    expect(samples.first).to_have_text(re.compile(r"\S"))
    expect(result(page)).to_have_text(DONE)
    expect(panel(page).get_by_test_id("path-complete")).to_be_visible()
    assert number + 2 == total, f"the walk ended at step {number + 2} of {total}"
    artifacts.snap(page, "complete")

    walk = time.monotonic() - started
    line = (f"guided GPT path walked in {walk:.0f} s: built and checked in "
            f"{built - started:.0f} s, trained ({RUN_STEPS} steps) in {trained - built:.0f} s, "
            f"read in {time.monotonic() - trained:.0f} s")
    print(f"\n{line}")
    artifacts.snap(page, "end")
    (artifacts.shots[-1].parent / "guided-path-walk.txt").write_text(line + "\n")


def test_path_progress_survives_a_reload_and_is_kept_in_the_account(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?path=gpt")
    on_step(page, 1)
    panel(page).get_by_test_id("path-show-me").click()
    check_passes(page)
    next_step(page)
    on_step(page, 2)

    page.reload()
    wait_ready(page)
    on_step(page, 2)  # resumed at the step shown, step 1 done
    first = panel(page).get_by_role("button", name=re.compile(r"^Step 1: .*\(done\)$"))
    expect(first).to_be_visible()
    assert has_edge(document(page), "tokens", "logits")  # the canvas is the draft kept

    # Saved, then opened again from its own address: the model remembers its path.
    save(page, "step 1 of the GPT path")
    graph = saved_graph_id(page)
    open_editor(page, f"/g/{graph}")
    on_step(page, 2)
    artifacts.snap(page, "saved-model-reopened")

    # Another browser (nothing kept in it) of the same user: the account has the progress.
    status, progress = live.api("GET", "/api/paths/gpt/progress", live.token(account))
    assert status == 200 and progress["current"] == "embedding", progress
    assert "tokens" in progress["done"], progress
    other = artifacts.new_page()
    login(other, account)
    open_editor(other, "/new?path=gpt")
    on_step(other, 2)
    artifacts.snap(other, "other-browser")


def test_a_visitor_walks_the_path_without_an_account(artifacts: Artifacts) -> None:
    """From the home page's "Learn" link, with no account: steps checked by the server and
    progress kept in this browser across a reload; the run step asks for an account."""
    page = artifacts.new_page()  # a fresh context: no account, no cookies
    page.goto("/")
    page.get_by_test_id("learn-gpt").click()
    page.wait_for_url(re.compile(r"/new\?path=gpt$"))
    wait_ready(page)
    on_step(page, 1, 12)
    panel(page).get_by_test_id("path-show-me").click()
    check_passes(page)
    expect(panel(page)).to_contain_text("kept in this browser")
    next_step(page)
    on_step(page, 2)
    panel(page).get_by_test_id("path-show-me").click()
    check_passes(page)
    next_step(page)

    page.reload()
    wait_ready(page)
    on_step(page, 3)  # resumed from the browser's copy, the canvas the draft kept
    assert find_node(document(page), "wte")["type"] == "Embedding"

    # The train step tells a visitor that runs need an account.
    panel(page).get_by_role("button", name=re.compile(r"^Step 10: ")).click()
    on_step(page, 10)
    expect(panel(page)).to_contain_text(re.compile(r"account", re.IGNORECASE))
    artifacts.snap(page, "visitor-train-step")
