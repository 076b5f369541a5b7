"""The dashboard in a real browser: Playwright driving Debian's Chromium.

A ghapp server (SQLite, one worker, the GitHub stand-in, a local bare repository) and a
small webhook receiver run with uvicorn on their own event loop in a background thread;
the browser signs in with a token limited to one repository and does what a maintainer
does. Every wait is Playwright's auto-waiting on what the page shows — no sleeps.
Screenshots of each page land in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.tokens import create_token
from tests.browser_support import (
    CHROMIUM,
    SCREENSHOTS,
    require_chromium,
    shot,
    sign_in,
    start_uvicorn,
)
from tests.conftest import make_settings
from tests.support import add_repository

ADMIN = "admin-token-for-the-browser-tests"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
OTHER_REPO = "octo-org/other"
OTHER_REPO_ID = 777
RECEIVER_ANSWER = "received by the test receiver"
LIVE = 20_000  # ms: a run goes through the worker (clone, shell) before it shows completed

require_chromium()

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


class Server:
    """What the tests need to know about the running server."""

    def __init__(self) -> None:
        self.base = ""
        self.receiver = ""
        self.token = ""
        self.other_job = 0
        self.received: list[dict[str, Any]] = []


async def _seed(db: Database, state: Any, server: Server) -> None:
    await add_repository(db)
    await add_repository(
        db, repo_id=OTHER_REPO_ID, full_name=OTHER_REPO, installation_id=42, account="octo-org"
    )
    other = await state.jobs.create(
        {"name": "Other team's job", "repo_id": OTHER_REPO_ID, "command_id": "issue/triage"},
        actor="test",
    )
    server.other_job = other.id
    made = await create_token(db, "team-a", [REPO], is_admin=False, actor="test")
    server.token = made.token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite+aiosqlite:///{tmp / 'ghapp.db'}"
    info = Server()
    ready = threading.Event()
    stop: dict[str, Any] = {}
    failure: list[BaseException] = []

    async def receive(request: Request) -> JSONResponse:
        info.received.append(await request.json())
        return JSONResponse({"status": RECEIVER_ANSWER})

    async def serve() -> None:
        github = GitHubStandIn(app_id=99)
        github.add_installation(INSTALLATION, "Codertocat")
        github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
        git_url = bare_repository(tmp, REPO, files={"README.md": "# Hello-World\n"})
        async with github.serve() as github_url:
            db = Database(url)
            await upgrade(db)
            settings = make_settings(
                url,
                tmp,
                admin_token=ADMIN,
                secret_key=Fernet.generate_key().decode(),
                github_api_url=github_url,
                git_url=git_url,
                app_id=99,
                private_key=github.private_key_pem,
            )
            app = create_app(settings, db=db, workers=1)
            await _seed(db, app.state.ghapp, info)
            web, web_task, info.base = await start_uvicorn(app)
            hook, hook_task, hook_base = await start_uvicorn(
                Starlette(routes=[Route("/hook", receive, methods=["POST"])])
            )
            info.receiver = f"{hook_base}/hook"
            stop["servers"] = (web, hook)
            ready.set()
            await asyncio.gather(web_task, hook_task)
            await db.dispose()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported by the fixture
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="dashboard-server", daemon=True)
    thread.start()
    assert ready.wait(60), "the server did not start"
    if failure:
        raise failure[0]
    try:
        yield info
    finally:
        for uv in stop.get("servers", ()):
            uv.should_exit = True
        thread.join(30)


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


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    """A signed-in tab in a browser set to Berlin time."""
    context = browser.new_context(
        base_url=server.base, timezone_id="Europe/Berlin", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    sign_in(tab, server.token)
    try:
        yield tab
    finally:
        context.close()


def job_row(page: Page, name: str) -> Any:
    return page.locator("tr", has=page.get_by_role("link", name=name, exact=True))


# -- the tests, in the order a maintainer would go -----------------------------------------------


def test_sign_in_refuses_a_bad_token(browser: Browser, server: Server) -> None:
    context = browser.new_context(base_url=server.base)
    tab = context.new_page()
    tab.goto("/runs")
    expect(tab).to_have_url(re.compile(r"/login\?next=%2Fruns$"))
    tab.get_by_label("API token").fill("not-a-token")
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("alert")).to_have_text("Unknown or revoked token.")
    shot(tab, "01-login-refused")
    tab.get_by_label("API token").fill(server.token)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("heading", name="Runs", exact=True)).to_be_visible()  # back to ?next
    cookie = next(c for c in context.cookies() if c["name"] == "ghapp_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert server.token not in cookie["value"]
    context.close()


def test_create_a_cron_job_with_live_preview_and_validation(page: Page) -> None:
    # Only the token's repository is shown: the other team's job is not.
    expect(page.get_by_role("heading", name="No scheduled jobs — create one")).to_be_visible()
    expect(page.get_by_text("Other team's job")).to_have_count(0)
    shot(page, "02-overview-empty")
    page.get_by_role("link", name="create one").click()
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")  # from the browser
    expect(page.get_by_label("Repository")).to_have_value(str(REPO_ID))
    assert page.locator("#repo_id option").all_inner_texts() == ["Choose a repository…", REPO]

    page.get_by_label("Name").fill("Echo")
    page.get_by_label("Target").select_option("codebase")
    page.get_by_label("Command", exact=True).select_option("context/analyze")
    # A shell job runs outside any sandbox: a maintainer's token is not offered one.
    assert "shell" not in page.locator("#runner option").all_inner_texts()
    page.locator("#advanced > summary").click()  # the runner and the report are in there
    page.get_by_label("Runner").select_option("builtin")
    page.get_by_label("Report", exact=True).select_option("none")
    cron = page.get_by_label("Cron expression")
    description = page.locator("#cron-description")
    problem = page.locator("#cron-problem")
    upcoming = page.locator("#cron-next li")

    # The description and the next five runs follow the expression as it is typed.
    cron.press_sequentially("0 9 * * 1-5")
    expect(description).to_have_text("At 09:00, Monday through Friday")
    expect(upcoming).to_have_count(5)
    expect(upcoming.first).to_contain_text(re.compile(r"09:00 CES?T"))
    page.get_by_role("button", name="Every hour").click()
    expect(cron).to_have_value("0 * * * *")
    expect(description).to_have_text("Every hour")
    cron.fill("")
    cron.press_sequentially("0 25 * * *")
    expect(problem).to_contain_text("hour 25 out of range 0-23")
    expect(upcoming).to_have_count(0)
    shot(page, "03-job-form-live-preview")

    # Saved anyway: the server refuses it and says so next to the field, values kept.
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#cron_expression-error")).to_contain_text("hour 25 out of range 0-23")
    expect(page.get_by_label("Name")).to_have_value("Echo")
    expect(page.get_by_label("Runner")).to_have_value("builtin")
    expect(page.get_by_label("Cron expression")).to_have_attribute("aria-invalid", "true")
    shot(page, "04-job-form-validation-error")

    page.get_by_label("Cron expression").fill("0 9 * * 1-5")
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_role("status")).to_have_text("Created the job “Echo”.")
    # The job's own page: its next five times, exact, on its own clock.
    expect(page.locator("#job-title")).to_have_text("Echo")
    upcoming = page.locator("#job-upcoming time")
    expect(upcoming).to_have_count(5)
    expect(upcoming.first).to_have_text(re.compile(r"^\w{3} \d{4}-\d\d-\d\d 09:00 CES?T$"))
    page.get_by_role("link", name="Overview").first.click()
    row = job_row(page, "Echo")
    expect(row.locator(".schedule")).to_have_text("At 09:00, Monday through Friday (Europe/Berlin)")
    expect(row.locator(".next-run time")).to_have_attribute(
        "datetime",
        re.compile(r"T0[78]:00:00\+00:00$"),  # 09:00 in Berlin, in UTC
    )
    expect(row.locator(".next-run time")).to_have_text(re.compile(r"^in \d+ (minute|hour|day)s?$"))
    expect(row.locator(".target")).to_have_text("context/analyze on the codebase")
    shot(page, "05-overview-with-job")


def test_run_now_appears_and_finishes_live(page: Page) -> None:
    runs = page.context.new_page()
    runs.goto("/runs")
    expect(runs.get_by_text("No runs yet.")).to_be_visible()
    # Marks that a reload would wipe: the pages must change without one.
    page.evaluate("window.notReloaded = true")
    runs.evaluate("window.notReloaded = true")

    row = job_row(page, "Echo")
    row.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Queued run \d+ of “Echo”\.$"))
    expect(row.locator(".last-run .badge")).to_have_text("completed", timeout=LIVE)

    # The other tab, opened before the run existed, shows it too.
    run_row = runs.locator("table.runs tbody tr").first
    expect(run_row.locator(".run-status")).to_have_text("completed", timeout=LIVE)
    expect(run_row).to_contain_text("Echo")
    assert page.evaluate("window.notReloaded") and runs.evaluate("window.notReloaded")
    shot(page, "06-overview-after-run")
    shot(runs, "07-runs")

    run_row.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    expect(runs.get_by_role("heading", level=1)).to_contain_text("completed")
    expect(runs.get_by_role("button", name="Retry")).to_be_visible()
    expect(runs.locator(".session")).to_have_count(1)
    expect(runs.locator(".session")).to_contain_text("builtin")
    shot(runs, "08-run")

    # Started from elsewhere (a retry from the run page): the overview follows.
    runs.get_by_role("button", name="Retry").click()
    expect(runs).to_have_url(re.compile(r"/runs/\d+$"))
    expect(runs.get_by_role("heading", level=1)).to_contain_text("completed", timeout=LIVE)
    expect(page.locator("#count-runs")).to_have_text("2", timeout=LIVE)
    expect(page.locator("#count-ok")).to_have_text("2", timeout=LIVE)
    assert page.evaluate("window.notReloaded")


def test_pause_and_resume(page: Page) -> None:
    # The overview offers one action a row; the job's page has the rest.
    row = job_row(page, "Echo")
    expect(row.get_by_role("button")).to_have_count(1)
    row.get_by_role("link", name="Echo", exact=True).click()
    expect(page.locator("#job-title")).to_have_text("Echo")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#job-status")).to_have_text("paused")
    expect(page.get_by_role("status")).to_have_text("Paused “Echo”.")
    expect(page.locator("#job-upcoming")).to_have_count(0)
    shot(page, "09-job-paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#job-status")).to_have_text("active")
    expect(page.locator("#job-upcoming time")).to_have_count(5)
    assert page.evaluate("window.notReloaded")
    page.get_by_role("link", name="Overview").first.click()
    expect(job_row(page, "Echo").locator(".next-run time")).to_have_count(1)


def test_add_and_test_a_notifier(page: Page, server: Server) -> None:
    page.get_by_role("link", name="Notifiers").click()
    expect(page.get_by_text("No notifiers yet")).to_be_visible()
    page.get_by_role("link", name="Add a notifier").click()
    page.get_by_label("Name").fill("ops hook")
    page.get_by_label("Type").select_option("generic")
    page.get_by_label("Webhook URL").fill(server.receiver)
    page.get_by_role("button", name="Add notifier").click()
    # A token limited to repositories must limit its notifiers too: the server says so.
    expect(page.locator("#repo_ids-error")).to_have_text(
        "choose at least one of your token's repositories"
    )
    expect(page.get_by_label("Name")).to_have_value("ops hook")
    page.get_by_label(REPO).check()
    page.get_by_role("button", name="Add notifier").click()
    expect(page.get_by_role("status")).to_have_text("Added the notifier “ops hook”.")
    row = page.locator("tr", has=page.get_by_text("ops hook"))
    expect(row.locator(".masked")).to_have_text(re.compile(r"^http://127\.0\.0\.1:\d+/\*\*\*\*$"))
    expect(row.locator(".notifier-status")).to_have_text("enabled")
    shot(page, "10-notifiers")

    row.get_by_role("button", name="Send a test").click()
    result = page.locator("#test-result")
    expect(result.get_by_role("heading")).to_have_text("Test of “ops hook”: delivered")
    expect(page.locator("#test-status")).to_have_text("200")
    # A tenant's test send says the status, never what the receiver answered.
    expect(page.locator("#test-response")).to_have_count(0)
    assert RECEIVER_ANSWER not in page.content()
    assert server.received and server.received[-1]["event"] == "task_completed"
    shot(page, "11-notifier-tested")

    row = page.locator("tr", has=page.get_by_text("ops hook"))
    row.get_by_role("button", name="Disable").click()
    expect(row.locator(".notifier-status")).to_have_text("disabled")
    row.get_by_role("button", name="Enable").click()
    expect(row.locator(".notifier-status")).to_have_text("enabled")


def test_a_repository_outside_the_tokens_scope_is_refused(page: Page, server: Server) -> None:
    # Another team's job is not found, exactly like one that does not exist.
    page.goto(f"/jobs/{server.other_job}/edit")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(".error-message")).to_have_text("Not found: it may have been deleted.")
    page.goto("/jobs/987654/edit")
    expect(page.locator(".error-message")).to_have_text("Not found: it may have been deleted.")
    shot(page, "12-refused-out-of-scope")
    page.goto(f"/runs?job={server.other_job}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_narrow_screen(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    row = job_row(page, "Echo")
    expect(row).to_be_visible()
    # Stacked: each cell says what it is; nothing scrolls sideways.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    shot(page, "13-overview-narrow")
    page.goto("/jobs/new")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "14-job-form-narrow")
