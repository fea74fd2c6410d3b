"""Sharing: a link opens read-only for anyone; forking after logging in gives an editable
copy."""

from __future__ import annotations

import re
import urllib.parse
import uuid
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
from livestack import LiveStack, User
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


def create_link(page: Page) -> str:
    """Share ▸ Create link; the new link's URL. Leaves the dialog open."""
    button(page, "Share").click()
    dialog = page.get_by_role("dialog", name="Share")
    dialog.get_by_role("button", name="Create link", exact=True).click()
    url = dialog.get_by_test_id("share-link").first.locator("input").input_value()
    assert re.search(r"/s/[^/]+$", url), url
    return url


def test_the_share_dialog_and_the_shared_page_agree_and_signing_up_comes_back(
        live: LiveStack, user_page: Page, artifacts: Artifacts) -> None:
    page = user_page
    open_editor(page, "/new?starter=mlp")
    save(page, "to share")
    url = create_link(page)
    dialog = page.get_by_role("dialog", name="Share")
    # What the dialog promises visitors is what the shared page gives them.
    expect(dialog).to_contain_text("with no account")
    expect(dialog).to_contain_text("To fork it (a copy of their own to edit), they log in or "
                                   "sign up.")
    expect(dialog).not_to_contain_text("no account needed")
    artifacts.snap(page, "share-dialog-words")

    visitor = artifacts.new_page()
    visitor.goto(url)
    wait_ready(visitor)
    banner = visitor.get_by_test_id("readonly-banner")
    expect(banner.get_by_role("link", name="Log in to fork")).to_be_visible()
    sign_up = banner.get_by_role("link", name="Sign up", exact=True)
    expect(sign_up).to_be_visible()
    expect(banner.get_by_role("button", name="Fork", exact=True)).to_have_count(0)
    artifacts.snap(visitor, "shared-page-words")

    # A new visitor signs up from the shared page and lands back on it, able to fork.
    sign_up.click()
    visitor.wait_for_url(re.compile(r"/accounts/signup/\?next="))
    newcomer = f"newcomer-{uuid.uuid4().hex[:8]}"
    visitor.locator('input[name="username"]').fill(newcomer)
    visitor.locator('input[name="password1"]').fill("a-long-harbour-crane-42")
    visitor.locator('input[name="password2"]').fill("a-long-harbour-crane-42")
    with visitor.expect_navigation():
        visitor.get_by_role("button", name="Create account").click()
    assert urllib.parse.urlparse(visitor.url).path == urllib.parse.urlparse(url).path, (
        f"signing up from the shared page ended on {visitor.url}, not on the shared model")
    wait_ready(visitor)
    fork = visitor.get_by_test_id("readonly-banner").get_by_role("button", name="Fork",
                                                                   exact=True)
    expect(fork).to_be_visible()
    artifacts.snap(visitor, "signed-up-back-on-the-link")
    fork.click()
    visitor.wait_for_url(re.compile(r"/g/\d+$"))
    wait_ready(visitor)


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example",
                                    "/\\evil.example"])
def test_signing_up_or_logging_in_never_leaves_the_site(
        live: LiveStack, account: User, artifacts: Artifacts, target: str) -> None:
    page = artifacts.new_page()
    page.goto("/accounts/signup/?" + urllib.parse.urlencode({"next": target}))
    page.locator('input[name="username"]').fill(f"{account.username}-new")
    page.locator('input[name="password1"]').fill(account.password)
    page.locator('input[name="password2"]').fill(account.password)
    with page.expect_navigation():
        page.get_by_role("button", name="Create account").click()
    assert page.url == f"{live.url}/", f"signing up with next={target} ended on {page.url}"

    other = artifacts.new_page()
    other.goto("/accounts/login/?" + urllib.parse.urlencode({"next": target}))
    other.locator('input[name="username"]').fill(account.username)
    other.locator('input[name="password"]').fill(account.password)
    with other.expect_navigation():
        other.get_by_role("button", name="Log in").click()
    assert other.url == f"{live.url}/", f"logging in with next={target} ended on {other.url}"
    expect(other.get_by_role("heading", name="Your models")).to_be_visible()


def test_a_finished_run_is_published_afterwards_from_the_share_dialog_or_the_drawer(
        live: LiveStack, account: User, user_page: Page, artifacts: Artifacts) -> None:
    token = live.token(account)
    status, graph = live.api("POST", "/api/graphs", token, {"starter": "mlp"})
    assert status == 201, graph
    run_id = live.finished_run(token, graph["id"])["id"]  # not published when it ran

    page = user_page
    open_editor(page, f"/g/{graph['id']}")
    url = create_link(page)
    dialog = page.get_by_role("dialog", name="Share")
    switch = dialog.locator(f'[data-testid="publish-run"][data-run="{run_id}"]')
    expect(switch).not_to_be_checked()

    visitor = artifacts.new_page()
    visitor.goto(url)
    wait_ready(visitor)
    button(visitor, "Run").click()
    expect(visitor.get_by_text("No runs of this model are published.")).to_be_visible()

    switch.click()  # it turns on once the server says so
    expect(switch).to_be_checked()
    artifacts.snap(page, "published-in-share-dialog")
    visitor.reload()
    wait_ready(visitor)
    button(visitor, "Run").click()
    published = visitor.locator(".runs-list-item", has_text=f"#{run_id}")
    expect(published).to_be_visible()
    artifacts.snap(visitor, "visitor-sees-the-run")

    # The drawer offers the same switch on the finished run; unpublishing hides it again.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    button(page, "Run").click()
    page.locator(".runs-list-item", has_text=f"#{run_id}").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "succeeded")
    in_drawer = page.locator(f'.runs-open [data-testid="publish-run"][data-run="{run_id}"]')
    expect(in_drawer).to_be_checked()
    in_drawer.click()
    expect(in_drawer).not_to_be_checked()
    artifacts.snap(page, "unpublished-in-drawer")
    visitor.reload()
    wait_ready(visitor)
    button(visitor, "Run").click()
    expect(visitor.get_by_text("No runs of this model are published.")).to_be_visible()
