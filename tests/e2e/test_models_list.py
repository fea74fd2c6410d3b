"""The list of your models (the home page): each model's last run, deleting a model after a
confirmation that names it; and a fork that says its own name everywhere."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from editor_ui import wait_ready
from livestack import LiveStack, User
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def row(page: Page, graph_id: int) -> Locator:
    return page.locator(f'[data-testid="model-row"][data-graph="{graph_id}"]')


def test_the_list_shows_last_runs_and_deletes_a_model_after_naming_it(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    token = live.token(account)
    _, trained = live.api("POST", "/api/graphs", token, {"starter": "mlp", "name": "Trained MLP"})
    _, spare = live.api("POST", "/api/graphs", token, {"starter": "cnn", "name": "Spare CNN"})
    run = live.finished_run(token, trained["id"])

    page = user_page
    page.goto("/")
    val_loss = f"{run['metrics']['val_loss']:.3g}"
    expect(row(page, trained["id"]).get_by_test_id("last-run")).to_have_text(
        f"succeeded · val_loss {val_loss}")
    expect(row(page, spare["id"]).get_by_test_id("last-run")).to_have_text("no runs")
    artifacts.snap(page, "list-with-last-runs")

    # Delete asks first, naming the model; Cancel keeps it.
    row(page, spare["id"]).get_by_role("link", name="Delete Spare CNN").click()
    expect(page.get_by_role("heading", name="Delete Spare CNN?")).to_be_visible()
    artifacts.snap(page, "delete-confirmation")
    page.get_by_role("link", name="Cancel").click()
    expect(row(page, spare["id"])).to_be_visible()

    row(page, spare["id"]).get_by_role("link", name="Delete Spare CNN").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Delete Spare CNN").click()
    assert page.url == f"{live.url}/", page.url
    expect(page.get_by_text("Deleted Spare CNN.")).to_be_visible()
    expect(row(page, spare["id"])).to_have_count(0)
    expect(row(page, trained["id"])).to_be_visible()
    assert live.api("GET", f"/api/graphs/{spare['id']}", token)[0] == 404
    artifacts.snap(page, "deleted")


def test_a_forks_inspector_title_matches_its_header(
        live: LiveStack, user_page: Page, artifacts: Artifacts) -> None:
    owner = live.create_user("owner")
    token = live.token(owner)
    _, graph = live.api("POST", "/api/graphs", token, {"starter": "mlp", "name": "Harbour MLP"})
    _, link = live.api("POST", f"/api/graphs/{graph['id']}/share", token, {})

    page = user_page
    page.goto(link["url"])
    wait_ready(page)
    expect(page.get_by_test_id("graph-title")).to_have_text("Harbour MLP")
    expect(page.get_by_test_id("inspector-title")).to_have_text("Harbour MLP")
    page.get_by_test_id("readonly-banner").get_by_role("button", name="Fork",
                                                        exact=True).click()
    page.wait_for_url(re.compile(r"/g/\d+$"))
    wait_ready(page)
    expect(page.get_by_test_id("graph-title")).to_have_text("Harbour MLP (fork)")
    expect(page.get_by_test_id("inspector-title")).to_have_text("Harbour MLP (fork)")
    artifacts.snap(page, "fork-titles")

    # Renaming it changes both.
    page.get_by_test_id("graph-title").click()
    field = page.get_by_label("Model name")
    field.fill("My harbour MLP")
    field.press("Enter")
    expect(page.get_by_test_id("graph-title")).to_have_text("My harbour MLP")
    expect(page.get_by_test_id("inspector-title")).to_have_text("My harbour MLP")
