"""The browser tests' own plumbing: the live stack serves pages, a fresh user logs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from livestack import LiveStack, User
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts

pytestmark = pytest.mark.e2e


def test_log_in_and_see_home(live: LiveStack, account: User, user_page: Page,
                             artifacts: Artifacts) -> None:
    page = user_page
    assert page.url.rstrip("/") == live.url, page.url
    expect(page.get_by_role("heading", name="Your models")).to_be_visible()
    expect(page.get_by_role("link", name="New blank model")).to_be_visible()
    expect(page.get_by_role("heading", name="New from template")).to_be_visible()
    expect(page.get_by_role("link", name=account.username)).to_be_visible()
    artifacts.snap(page, "home")
    assert live.exited() == []  # every part of the stack still runs
