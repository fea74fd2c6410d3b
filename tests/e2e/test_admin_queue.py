"""The administrators' queue page on the live stack (issue 13): a staff user opens it, a run
is started over the API and the page shows it going without a reload; pausing the cpu queue
from the page shows it paused, and a run started then waits with the reason. The graph's
name is hostile: the page shows it as text."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from editor_ui import login
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from conftest import Artifacts
    from livestack import LiveStack, User

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGE = "/admin/jobs/job/queue/"
HOSTILE = '<img src=x onerror="window.__pwned=1">'


def make_staff(live: LiveStack, user: User) -> None:
    """Staff who may view and change runs (not a superuser), as an administrator would set
    them up in the admin."""
    db = sqlite3.connect(live.home / "db.sqlite3", timeout=30)
    try:
        db.execute("UPDATE auth_user SET is_staff = 1 WHERE username = ?", (user.username,))
        db.execute(
            "INSERT INTO auth_user_user_permissions (user_id, permission_id) "
            "SELECT u.id, p.id FROM auth_user u, auth_permission p "
            "JOIN django_content_type c ON p.content_type_id = c.id "
            "WHERE u.username = ? AND c.app_label = 'jobs' "
            "AND p.codename IN ('view_job', 'change_job')", (user.username,))
        db.commit()
    finally:
        db.close()


def start(live: LiveStack, token: str, graph: int, steps: int) -> int:
    status, job = live.api("POST", "/api/jobs", token,
                           {"graph": graph, "dataset": "digits", "config": {"steps": steps}})
    assert status == 201, job
    return int(job["id"])


def end(live: LiveStack, token: str, *jobs: int) -> None:
    """Cancel the runs and wait for them to end: the stack's one worker is free again."""
    for job in jobs:
        live.api("POST", f"/api/jobs/{job}/cancel", token)
    deadline = time.monotonic() + 120
    for job in jobs:
        while time.monotonic() < deadline:
            _, now = live.api("GET", f"/api/jobs/{job}", token)
            if now["status"] in ("cancelled", "succeeded", "failed"):
                break
            time.sleep(0.25)


def section(page: Page, queue: str) -> Any:
    return page.locator(f'section[data-queue="{queue}"]')


def test_the_queue_page_shows_a_run_going_and_a_paused_queue_without_reloading(
        live: LiveStack, account: User, artifacts: Artifacts) -> None:
    make_staff(live, account)
    token = live.token(account)
    status, graph = live.api("POST", "/api/graphs", token, {"starter": "mlp", "name": HOSTILE})
    assert status == 201, graph
    page = artifacts.new_page()
    login(page, account)
    page.goto(PAGE)
    expect(page.get_by_test_id("queue-connection")).to_have_text("live")
    expect(page.get_by_test_id("queue-state-cpu")).to_have_text("running")
    page.evaluate("() => { window.__sameDocument = true; }")
    artifacts.snap(page, "empty")

    jobs: list[int] = []
    try:
        # Long enough to be seen running (digits trains hundreds of steps a second).
        jobs.append(start(live, token, graph["id"], steps=20000))
        going = section(page, "cpu").locator(
            f'table[aria-label="Running in the cpu queue"] tr[data-run="{jobs[0]}"]')
        expect(going).to_be_visible(timeout=60_000)
        expect(going.locator("td").nth(2)).to_have_text(HOSTILE)  # the graph, as text
        expect(going.locator("td").nth(5)).to_have_text(re.compile(r"^\d+ / 20000$"))
        artifacts.snap(page, "running")

        section(page, "cpu").get_by_role("button", name="Pause").click()
        expect(page.get_by_test_id("queue-state-cpu")).to_have_text(
            re.compile(rf"^paused by {re.escape(account.username)}"))
        expect(page.get_by_test_id("queue-message")).to_contain_text("cpu queue is paused")

        # Started while the queue is paused: it waits, and the page says why.
        jobs.append(start(live, token, graph["id"], steps=50))
        waiting = section(page, "cpu").locator(
            f'table[aria-label="Waiting in the cpu queue"] tr[data-run="{jobs[1]}"]')
        expect(waiting).to_be_visible(timeout=30_000)
        expect(waiting.locator(".queue-reason")).to_contain_text(
            "queue paused by an administrator")
        artifacts.snap(page, "paused")

        section(page, "cpu").get_by_role("button", name="Resume").click()
        expect(page.get_by_test_id("queue-state-cpu")).to_have_text("running")
        # Never reloaded, and the hostile name never became an element.
        assert page.evaluate("() => window.__sameDocument === true")
        assert page.evaluate("() => window.__pwned === undefined")
        assert page.locator("#queue-root img").count() == 0
    finally:
        if page.get_by_test_id("queue-state-cpu").text_content() != "running":
            page.evaluate("""() => fetch('/admin/jobs/job/queue/resume', {method: 'POST',
                body: new URLSearchParams({queue: 'cpu'}), headers: {'X-CSRFToken':
                document.querySelector('input[name=csrfmiddlewaretoken]').value}})""")
        end(live, token, *jobs)


def test_the_queue_page_marks_a_silent_worker_lost_and_drains_a_worker(
        live: LiveStack, account: User, artifacts: Artifacts) -> None:
    make_staff(live, account)
    now = datetime.now(UTC)
    rows = [  # two workers as their heartbeats left them: one an hour ago, one just now
        ("ghost@e2e", "ghost-host", '["fpga"]', "solo", "", None, now - timedelta(hours=1)),
        ("gpu@e2e", "gpu-host", '["gpu"]', "solo", "NVIDIA H200", 141 * 2**30, now)]
    db = sqlite3.connect(live.home / "db.sqlite3", timeout=30)
    try:
        db.executemany(
            "INSERT INTO jobs_worker (hostname, host, queues, pool, concurrency, device, "
            "memory, started_at, heartbeat_at, draining) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, 0)",
            [(*row[:6], sql_time(now), sql_time(row[6])) for row in rows])
        db.commit()
        page = artifacts.new_page()
        login(page, account)
        page.goto(PAGE)
        ghost = page.locator('tr[data-worker="ghost@e2e"]')
        gpu = page.locator('tr[data-worker="gpu@e2e"]')
        expect(ghost.locator(".queue-worker-state")).to_have_text("LOST (no heartbeat)")
        expect(gpu.locator(".queue-worker-state")).to_have_text("online")
        expect(gpu).to_contain_text("NVIDIA H200 · 141 GiB")
        expect(ghost.get_by_role("button", name="Drain")).to_have_count(0)

        gpu.get_by_role("button", name="Drain").click()
        expect(gpu.locator(".queue-worker-state")).to_have_text("draining")
        expect(page.get_by_test_id("queue-message")).to_contain_text("takes no more")
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")  # the workers
        artifacts.snap(page, "workers")
    finally:
        db.execute("DELETE FROM jobs_worker WHERE hostname IN ('ghost@e2e', 'gpu@e2e')")
        db.commit()
        db.close()


def sql_time(moment: datetime) -> str:
    """A time as Django keeps it in SQLite (UTC, no zone)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
