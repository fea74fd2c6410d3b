"""The browser tests' set-up: one live stack per test session (see livestack.py: Redis, a
migrated SQLite file, a Celery worker and Daphne), Debian's Chromium through
pytest-playwright, a fresh logged-in user per test, and artifacts.

These tests use no pytest-django database: they talk to the live server over HTTP, like a
person with a browser. Artifacts land in test-artifacts/e2e/ (git-ignored): every test
leaves at least one screenshot, `<test>-NN-<label>.png`; a failed one also leaves
`<test>-console.log` (the browser's console, page errors, failed requests) and
`<test>-server.log` (the tail of Daphne's and the worker's logs).

The e2e tests run last (after every other test in the session): Playwright's sync API keeps
an asyncio loop running in this thread from its start to the end of the session, and Django
refuses database calls from a thread with a running loop, so tests that use pytest-django's
database must not come after it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, expect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from editor_ui import login
from livestack import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    LiveStack,
    StackError,
    User,
    check_chromium,
    check_editor_built,
)

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
HERE = Path(__file__).resolve().parent
VIEWPORT = {"width": 1440, "height": 900}
# A busy 2-core CI machine: every inspection is a round trip to the server.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)
_ORDER = {"test_smoke": 0, "test_editor": 1, "test_editor_runs": 3}
_REPORT = pytest.StashKey[dict[str, pytest.TestReport]]()


def _is_e2e(item: pytest.Item) -> bool:
    return HERE in Path(str(item.fspath)).resolve().parents


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixtures
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is marked e2e and moved to the end of the session."""
    ours = [item for item in items if _is_e2e(item)]
    if not ours:
        return
    for item in ours:
        item.add_marker(pytest.mark.e2e)
    # The plumbing first (a failure there explains the rest), the runs (slow) last.
    ours.sort(key=lambda item: _ORDER.get(Path(str(item.fspath)).stem, 2))
    others = [item for item in items if not _is_e2e(item)]
    items[:] = others + ours


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]
                              ) -> Iterator[pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORT, {})[report.when] = report
    return report


# -- the live stack --------------------------------------------------------------------


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The running app: `live.url`, `live.create_user()`, `live.token(user)`,
    `live.api(method, path, token, body)`, `live.logs()`."""
    problem = None
    try:
        check_editor_built()
        check_chromium()
        stack = LiveStack.start(home=tmp_path_factory.mktemp("e2e-home"))
    except StackError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def base_url(live: LiveStack) -> str:
    return live.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": [*CHROMIUM_ARGS], "headless": browser_type_launch_args.get("headless", True)}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": VIEWPORT}


# -- artifacts -------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


class Artifacts:
    """Screenshots and browser logs of one test, and the browser contexts it opened."""

    def __init__(self, name: str, new_context: Callable[..., BrowserContext]) -> None:
        self.name = name
        self._new_context = new_context
        self.pages: list[Page] = []
        self.console: list[str] = []
        self.shots: list[Path] = []

    def new_context(self, **kwargs: Any) -> BrowserContext:
        context = self._new_context(**kwargs)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("page", self.watch)
        return context

    def new_page(self, **kwargs: Any) -> Page:
        return self.new_context(**kwargs).new_page()

    def watch(self, page: Page) -> None:
        index = len(self.pages)
        self.pages.append(page)
        log = self.console

        def on_console(message: ConsoleMessage) -> None:
            log.append(f"[page {index}] console.{message.type}: {message.text}")

        def on_request_failed(request: Request) -> None:
            log.append(f"[page {index}] request failed: {request.method} {request.url} "
                       f"({request.failure})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: log.append(f"[page {index}] page error: {error}"))
        page.on("requestfailed", on_request_failed)
        page.on("response", lambda r: r.status >= 400 and log.append(
            f"[page {index}] HTTP {r.status}: {r.request.method} {r.url}"))

    def snap(self, page: Page, label: str) -> Path:
        """Save a screenshot of `page` as test-artifacts/e2e/<test>-NN-<label>.png."""
        path = ARTIFACTS / f"{self.name}-{len(self.shots) + 1:02d}-{_slug(label)}.png"
        page.screenshot(path=str(path))
        self.shots.append(path)
        return path

    def finish(self, failed: bool, live: LiveStack | None) -> None:
        open_pages = [p for p in self.pages if not p.is_closed()]
        for i, page in enumerate(open_pages):
            suffix = "failure" if failed else "end"
            label = suffix if len(open_pages) == 1 else f"{suffix}-page{i}"
            try:
                self.snap(page, label)
            except Exception as exc:  # a crashed page: keep going, say so in the log
                self.console.append(f"(no screenshot of page {i}: {exc})")
        if failed:
            (ARTIFACTS / f"{self.name}-console.log").write_text(
                "\n".join(self.console) + "\n")
            if live is not None:
                (ARTIFACTS / f"{self.name}-server.log").write_text(live.logs(20000))


@pytest.fixture(autouse=True)
def artifacts(request: pytest.FixtureRequest, new_context: Callable[..., BrowserContext]
              ) -> Iterator[Artifacts]:
    """`artifacts.snap(page, "label")` saves a screenshot; each test also gets one of every
    page still open at its end, and on failure the console and server logs."""
    name = _slug(re.sub(r"\[chromium\]$", "", request.node.name).replace("[", "-"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*"):
        if old.is_file():
            old.unlink()
    art = Artifacts(name, new_context)
    yield art
    reports = request.node.stash.get(_REPORT, {})
    failed = any(r.failed for r in reports.values())
    live = request.getfixturevalue("live") if "live" in request.fixturenames else None
    art.finish(failed, live)


@pytest.fixture
def context(artifacts: Artifacts) -> BrowserContext:
    """pytest-playwright's `context` (and so `page`), watched for artifacts."""
    return artifacts.new_context()


# -- users -----------------------------------------------------------------------------


@pytest.fixture
def account(live: LiveStack) -> User:
    """A fresh user (username and password) on the live stack."""
    return live.create_user()


@pytest.fixture
def user_page(live: LiveStack, account: User, artifacts: Artifacts) -> Page:
    """A page in a fresh browser context, logged in as `account` through /accounts/login/,
    on the home page."""
    page = artifacts.new_page()
    login(page, account)
    return page

