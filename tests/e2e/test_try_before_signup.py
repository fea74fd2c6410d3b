"""Try it before signing up: a visitor without an account opens the editor from the home page,
draws, sees the shapes, reads the code; Save asks them to sign up, and after signing up the
drawing is their first saved model."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from editor_ui import (
    SAVED,
    VALID,
    document,
    edge_label,
    graph_core,
    saved_graph_id,
    select,
    set_param,
    wait_ready,
)
from playwright.sync_api import Response, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e

SIGN_UP = "Sign up to save, share or run — your drawing comes with you"


def test_a_visitor_draws_then_signs_up_and_the_drawing_is_saved(artifacts: Artifacts) -> None:
    page = artifacts.new_page()  # a fresh context: no account, no cookies
    refused: list[str] = []

    def watch(response: Response) -> None:
        if response.status in (401, 403, 429) and "/api/" in response.url:
            refused.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", watch)

    page.goto("/")
    expect(page.get_by_role("link", name="Sign up").first).to_be_visible()
    expect(page.get_by_test_id("open-editor")).to_be_visible()
    page.locator('a[data-starter="mlp"]').click()
    page.wait_for_url(re.compile(r"/new\?starter=mlp$"))
    wait_ready(page)
    expect(edge_label(page, "x", "hidden1")).to_contain_text("[B, 64]")
    artifacts.snap(page, "visitor-editor")

    # Draw: a wider first layer; the shapes follow.
    select(page, "hidden1")
    set_param(page, "out_features", 96)
    expect(edge_label(page, "hidden1", "act1")).to_contain_text("[B, 96]")
    expect(page.get_by_test_id("validity")).to_have_text(VALID)
    drawn = document(page)

    # The code of the drawing, not saved anywhere.
    page.get_by_role("button", name="Code").click()
    code_dialog = page.get_by_role("dialog", name="Code")
    expect(code_dialog.get_by_test_id("code")).to_contain_text("nn.Linear(64, 96")
    artifacts.snap(page, "visitor-code")
    page.keyboard.press("Escape")
    expect(code_dialog).to_be_hidden()

    # Save (the keyboard's, as a person would) asks for an account, once and clearly.
    page.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    dialog = page.get_by_role("dialog", name=SIGN_UP)
    expect(dialog).to_be_visible()
    artifacts.snap(page, "sign-up-asked")
    # Run asks the same.
    page.keyboard.press("Escape")
    page.get_by_role("button", name=re.compile(r"^\W*Run$")).click()
    expect(dialog).to_be_visible()
    assert refused == [], refused  # nothing the visitor did met a refusal

    dialog.get_by_role("link", name="Sign up").click()
    page.wait_for_url(re.compile(r"/accounts/signup/"))
    username = f"visitor-{uuid.uuid4().hex[:8]}"
    password = "a-long-harbour-crane-42"
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password1"]').fill(password)
    page.locator('input[name="password2"]').fill(password)
    page.get_by_role("button", name="Create account").click()

    # Back in the editor, logged in: the drawing is saved as the first model.
    graph_id = saved_graph_id(page)
    wait_ready(page)
    expect(page.get_by_test_id("save-state")).to_have_text(SAVED)
    assert graph_core(document(page)) == graph_core(drawn)
    artifacts.snap(page, "claimed")

    # A reload neither asks again nor makes a second model.
    page.reload()
    wait_ready(page)
    assert page.url.endswith(f"/g/{graph_id}")
    page.goto("/")
    rows = page.get_by_test_id("model-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-graph", str(graph_id))
    expect(rows.first).to_contain_text("digits-mlp")
    artifacts.snap(page, "home-with-the-model")
