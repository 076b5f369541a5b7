"""The job form and the notifier pages in a real browser: short, with its advanced settings
behind a disclosure that opens by itself on an error, and readable at 390 px.

A ghapp server (SQLite, the GitHub stand-in with one installation and one repository added
to the database) runs with uvicorn on its own loop in a thread; a second, empty server shows
what the form says when no repository is known. Screenshots land in
``test-artifacts/screenshots/forms-*.png``. Every wait is Playwright's auto-waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from tests.browser_support import (
    CHROMIUM,
    SCREENSHOTS,
    in_thread,
    require_chromium,
    shots,
    sign_in,
    start_uvicorn,
)
from tests.conftest import make_settings
from tests.support import add_repository

ADMIN = "forms-admin-token"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
HOOK_SECRET = "T000SECRET/B000SECRET/XXXXSECRETXXXX"  # a Slack-like path: never shown

require_chromium()

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


class Receiver:
    """A webhook receiver: 200 on /ok, 500 on anything else; what it answers can change."""

    def __init__(self) -> None:
        self.base = ""
        self.failing = True

    async def hook(self, request: Request) -> JSONResponse:
        if self.failing:
            return JSONResponse({"error": "boom"}, status_code=500)
        return JSONResponse({"ok": True})


RECEIVER = Receiver()
DATABASES: list[str] = []  # the served database's URL, for rows a worker would write


def serve_app(tmp: Path, *, with_repository: bool) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp / 'ghapp.db'}"
    base: list[str] = []
    DATABASES.append(url)

    async def serve(ready: threading.Event, servers: list[uvicorn.Server]) -> None:
        db = Database(url)
        await upgrade(db)
        if with_repository:
            await add_repository(db)
        settings = make_settings(
            url, tmp, admin_token=ADMIN, secret_key=Fernet.generate_key().decode()
        )
        app = create_app(settings, db=db, workers=0)
        web, task, address = await start_uvicorn(app)
        base.append(address)
        servers.append(web)
        tasks = [task]
        if with_repository:
            receiver = Starlette(
                routes=[Route("/hook/{rest:path}", RECEIVER.hook, methods=["POST"])]
            )
            hook, hook_task, RECEIVER.base = await start_uvicorn(receiver)
            servers.append(hook)
            tasks.append(hook_task)
        ready.set()
        await asyncio.gather(*tasks)
        await db.dispose()

    with in_thread(serve):
        yield base[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_app(tmp_path_factory.mktemp("forms"), with_repository=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def signed_in(browser: Browser, base: str) -> Page:
    context = browser.new_context(base_url=base, viewport=WIDE, timezone_id="UTC")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    sign_in(tab, ADMIN)
    return tab


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    tab = signed_in(browser, server)
    try:
        yield tab
    finally:
        tab.context.close()


def form_height(page: Page) -> int:
    return int(page.evaluate("document.getElementById('job-form').getBoundingClientRect().height"))


FORM_HEIGHT_BEFORE = 2822  # px at 1366: the form with its ~45 fields all shown (measured)
FORM_HEIGHT_MOST = 1100  # px at 1366 with "Advanced settings" closed (959 measured)


def test_the_form_shows_its_essentials_first_and_the_button_within_reach(page: Page) -> None:
    page.goto("/jobs/new")
    advanced = page.locator("#advanced")
    expect(advanced).not_to_have_attribute("open", "")
    expect(page.get_by_label("Runner")).to_be_hidden()
    height = form_height(page)
    assert height < FORM_HEIGHT_MOST < FORM_HEIGHT_BEFORE, height
    save = page.get_by_role("button", name="Create job")
    expect(save).to_be_visible()
    bottom = page.evaluate("document.getElementById('save').getBoundingClientRect().bottom")
    assert bottom <= WIDE["height"] * 1.5, bottom
    assert shots(page, "forms-job-form") == {1366: 0, 390: 0}


def test_only_the_essentials_make_a_job(page: Page) -> None:
    page.goto("/jobs/new")
    page.get_by_label("Name", exact=True).fill("Triage <b>new</b> issues")
    expect(page.get_by_label("Repository")).to_have_value(str(REPO_ID))  # the only one
    page.get_by_label("Cron expression").fill("0 9 * * 1-5")
    page.get_by_label("Command", exact=True).select_option("issue/triage")
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_role("status")).to_have_text("Created the job “Triage <b>new</b> issues”.")
    expect(page.locator("#job-title")).to_have_text("Triage <b>new</b> issues")
    expect(page.locator("#job-upcoming time")).to_have_count(5)


def test_an_error_names_the_fields_label(page: Page) -> None:
    page.goto("/jobs/new")
    page.get_by_label("Name", exact=True).fill("No command")
    page.get_by_role("button", name="Create job").click()
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("a job needs a “Command” or a “Custom prompt”")
    assert "command_id" not in summary.inner_text()
    assert "commandId" not in summary.inner_text()
    expect(page.locator("#advanced")).not_to_have_attribute("open", "")  # nothing wrong there


def test_an_error_in_an_advanced_field_opens_the_disclosure(page: Page) -> None:
    page.goto("/jobs/new")
    page.get_by_label("Name", exact=True).fill("Too quick")
    page.get_by_label("Command", exact=True).select_option("issue/triage")
    page.locator("#advanced > summary").click()
    page.get_by_label("Timeout (seconds)").fill("5")
    page.locator("#advanced > summary").click()  # closed again before saving
    expect(page.get_by_label("Timeout (seconds)")).to_be_hidden()
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#advanced")).to_have_attribute("open", "")
    error = page.locator("#timeout_seconds-error")
    expect(error).to_be_visible()
    expect(page.get_by_label("Timeout (seconds)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Timeout (seconds)")).to_have_value("5")
    expect(page.locator("#error-summary a")).to_have_text("Timeout (seconds)")
    assert shots(page, "forms-job-form-advanced-error") == {1366: 0, 390: 0}


def test_no_repository_says_why_and_how_to_fix_it(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for base in serve_app(tmp_path_factory.mktemp("empty"), with_repository=False):
        tab = signed_in(browser, base)
        tab.goto("/jobs/new")
        notice = tab.locator("#no-repositories")
        expect(notice).to_contain_text("No repositories yet.")
        expect(notice).to_contain_text("Install the GitHub App on a repository")
        expect(notice.locator("code")).to_have_text("ghapp doctor")
        expect(tab.locator("select#repo_id")).to_have_count(0)
        assert shots(tab, "forms-job-form-no-repositories") == {1366: 0, 390: 0}
        tab.get_by_label("Name", exact=True).fill("Nowhere")
        tab.get_by_role("button", name="Create job").click()
        expect(tab.locator("#repo_id-error")).to_have_text("choose a repository")
        expect(tab.locator("#no-repositories")).to_be_visible()
        tab.context.close()


def test_a_failed_test_send_shows_on_the_notifier(page: Page) -> None:
    page.goto("/notifiers/new")
    page.get_by_label("Name").fill("ops <i>hook</i>")
    page.get_by_label("Type").select_option("generic")
    page.get_by_label("Webhook URL").fill(f"{RECEIVER.base}/hook/{HOOK_SECRET}")
    page.get_by_role("button", name="Add notifier").click()
    row = page.locator("tr", has=page.get_by_text("ops <i>hook</i>"))
    delivery = row.locator(".last-delivery")
    expect(delivery).to_have_text("never sent")
    expect(row.locator(".failures")).to_have_text("0")

    RECEIVER.failing = True
    row.get_by_role("button", name="Send a test").click()
    expect(page.locator("#test-result h2")).to_contain_text("failed")
    row = page.locator("tr", has=page.get_by_text("ops <i>hook</i>"))
    delivery = row.locator(".last-delivery")
    expect(delivery.locator(".badge")).to_have_text("failed")
    expect(delivery).to_contain_text("HTTP 500")
    expect(delivery).to_contain_text("test")
    expect(delivery.locator("time")).to_have_count(1)
    expect(row.locator(".failures")).to_have_text("1")
    row.get_by_role("button", name="Send a test").click()
    expect(
        page.locator("tr", has=page.get_by_text("ops <i>hook</i>")).locator(".failures")
    ).to_have_text("2")
    assert HOOK_SECRET not in page.content()
    assert "SECRET" not in page.content()

    # At 390 px the masked address wraps in its host, never inside "/****".
    page.set_viewport_size(PHONE)
    lines = page.evaluate(
        "document.querySelector('code.masked-url .nowrap').getClientRects().length"
    )
    assert lines == 1
    shots(page, "forms-notifiers-failed")

    RECEIVER.failing = False
    row = page.locator("tr", has=page.get_by_text("ops <i>hook</i>"))
    row.get_by_role("button", name="Send a test").click()
    row = page.locator("tr", has=page.get_by_text("ops <i>hook</i>"))
    expect(row.locator(".last-delivery .badge")).to_have_text("delivered")
    expect(row.locator(".last-delivery")).to_contain_text("HTTP 200")
    expect(row.locator(".failures")).to_have_text("0")  # failures in a row: back to 0


def test_skipped_runs_say_why_in_the_browser(page: Page) -> None:
    page.goto("/jobs/new")
    page.get_by_label("Name", exact=True).fill("Docs check")
    page.get_by_label("Command", exact=True).select_option("issue/triage")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#job-title")).to_have_text("Docs check")
    job_id = int(page.url.rstrip("/").split("/")[-1].split("?")[0])

    async def worker_wrote() -> int:
        from sqlalchemy import insert

        from ghapp.db.models import Run

        db = Database(DATABASES[0])
        try:
            async with db.write() as conn:
                result = await conn.execute(
                    insert(Run).values(
                        job_id=job_id,
                        repo_id=REPO_ID,
                        trigger_type="event",
                        status="skipped",
                        error="no changed file matches docs/** (3 files changed)",
                    )
                )
                skipped = int(result.inserted_primary_key[0])
                await conn.execute(
                    insert(Run).values(
                        job_id=job_id,
                        repo_id=REPO_ID,
                        trigger_type="scheduled",
                        status="completed",
                        items_found=3,
                        items_processed=1,
                        items_skipped=2,
                    )
                )
            return skipped
        finally:
            await db.dispose()

    # Playwright's sync API holds this thread's event loop: the write runs on its own.
    out: list[int] = []
    writer = threading.Thread(target=lambda: out.append(asyncio.run(worker_wrote())))
    writer.start()
    writer.join(30)
    [skipped] = out
    page.goto(f"/runs?job={job_id}")
    expect(page.locator(f"#run-{skipped} .skip-reason")).to_have_text(
        "no changed file matches docs/** (3 files changed)"
    )
    expect(page.locator(".items-skipped")).to_have_text("2 skipped")
    assert shots(page, "forms-runs-skipped") == {1366: 0, 390: 0}
    page.goto(f"/runs/{skipped}")
    expect(page.locator("#run-skipped")).to_contain_text("Skipped: no changed file matches")
    assert shots(page, "forms-run-skipped") == {1366: 0, 390: 0}
