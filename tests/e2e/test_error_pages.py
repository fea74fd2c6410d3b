"""What a browser is shown for a page that is not yours, when the app runs as `shipyard up`
runs it (SHIPYARD_DEBUG unset, so DEBUG off): the app's own 404 page, never Django's debug
page listing the site's URL patterns.

The other browser tests share one stack that runs with DEBUG on (for its tracebacks); this
file starts its own without, and without a worker (no runs here).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from editor_ui import login
from livestack import LiveStack, StackError
from playwright.sync_api import Browser, BrowserContext, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e

DEBUG_PAGE_WORDS = ["URLconf", "urlpatterns", "DEBUG = True", "Django tried these URL patterns",
                    "Traceback"]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    try:
        stack = LiveStack.start(home=tmp_path_factory.mktemp("e2e-no-debug"), debug=False,
                                worker=False)
    except StackError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def production_context(browser: Browser, production: LiveStack, artifacts: Artifacts
                       ) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=production.url,
                                  viewport={"width": 1440, "height": 900})
    context.on("page", artifacts.watch)
    yield context
    context.close()


def test_another_users_model_is_the_apps_own_404_page(
        production: LiveStack, production_context: BrowserContext,
        artifacts: Artifacts) -> None:
    owner = production.create_user("owner")
    status, graph = production.api("POST", "/api/graphs", production.token(owner),
                                   {"starter": "mlp", "name": "Private MLP"})
    assert status == 201, graph

    page = production_context.new_page()
    login(page, production.create_user("intruder"))
    response = page.goto(f"/g/{graph['id']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    expect(page.get_by_role("link", name="Back to your models")).to_be_visible()
    artifacts.snap(page, "not-yours")
    html = page.content()
    for words in [*DEBUG_PAGE_WORDS, "Private MLP"]:
        assert words not in html, f"the 404 page shows {words!r}"

    # A path that matches nothing is the same page.
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    assert not [w for w in DEBUG_PAGE_WORDS if w in page.content()]
