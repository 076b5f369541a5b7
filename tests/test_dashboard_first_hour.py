"""A new user's first hour, in a real browser: from an EMPTY server to a first result.

The real app is served by uvicorn (SQLite, migrated and empty: no repository, no job) with
the GitHub App's credentials pointing at the GitHub stand-in, which holds one installation
with one repository. The browser signs in with the admin token, finds that repository in
the job form (synced from GitHub when the server started), creates a job through the form
by its labels, presses "Run now" and watches the result arrive on the job's page: a cell of
the run strip and a row of its runs. The job's kind (the builtin runner's
``context/analyze`` on the codebase, reporting nothing) needs no model.

Every dashboard page is photographed at 1366 and 390 px wide into
``test-artifacts/screenshots/<page>-<width>.png``, and none may scroll sideways.
Every wait is Playwright's auto-waiting on what the page shows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlmodel import col

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.db.models import Repository
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from tests.browser_support import (
    CHROMIUM,
    in_thread,
    require_chromium,
    shots,
    sign_in,
    start_uvicorn,
)
from tests.conftest import make_settings

ADMIN = "first-hour-admin-token"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
LIVE = 30_000  # ms: the run goes through the worker (clone, builtin analysis) first
SYNC_WAIT_S = 30.0
NOT_SYNCED = (
    "the installation's repository was not synced from GitHub when the server started "
    "(installation sync at start-up with app credentials)"
)

require_chromium()

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


class Server:
    base = ""
    synced = False


async def wait_for_sync(db: Database) -> bool:
    """Whether the stand-in's repository reached the database within SYNC_WAIT_S."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + SYNC_WAIT_S
    while loop.time() < deadline:
        async with db.read() as conn:
            found = await conn.scalar(
                select(col(Repository.id)).where(col(Repository.full_name) == REPO)
            )
        if found is not None:
            return True
        await asyncio.sleep(0.05)  # polling a condition the server's start-up makes true
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("first-hour")
    url = f"sqlite+aiosqlite:///{tmp / 'ghapp.db'}"
    info = Server()

    async def serve(ready: threading.Event, servers: list[uvicorn.Server]) -> None:
        github = GitHubStandIn(app_id=99)
        github.add_installation(INSTALLATION, "Codertocat")
        github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
        git_url = bare_repository(tmp, REPO, files={"README.md": "# Hello-World\n"})
        async with github.serve() as github_url:
            db = Database(url)
            await upgrade(db)  # what `ghapp serve` does first: an empty, migrated database

            settings = make_settings(
                url,
                tmp,
                admin_token=ADMIN,
                secret_key=Fernet.generate_key().decode(),
                github_api_url=github_url,  # GHAPP_GITHUB_API_URL
                git_url=git_url,
                app_id=99,
                private_key=github.private_key_pem,
            )
            app = create_app(settings, db=db, run_scheduler=True, workers=1)
            web, task, info.base = await start_uvicorn(app)
            servers.append(web)
            info.synced = await wait_for_sync(db)
            ready.set()
            await task
            await db.dispose()

    with in_thread(serve):
        yield info


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
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
    context = browser.new_context(
        base_url=server.base,
        timezone_id="Europe/Berlin",
        viewport={"width": 1366, "height": 900},
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


class Photographer:
    """Screenshots of each page at both widths; the pages that scroll sideways on either."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.overflowing: dict[str, dict[int, int]] = {}

    def __call__(self, name: str) -> None:
        widths = shots(self.page, name)
        if any(widths.values()):
            self.overflowing[name] = widths


def open_every_section(page: Page) -> None:
    """The form keeps its advanced fields behind <details>: open them as a person does (a
    click on each summary) to fill them by label."""
    for summary in page.locator("#job-form details:not([open]) > summary").all():
        summary.click()


def test_from_an_empty_server_to_a_first_result(page: Page, server: Server) -> None:
    photo = Photographer(page)

    # Signed out: every address leads to the sign-in form.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    photo("login")
    sign_in(page, ADMIN)

    # An empty server says what to do first.
    create_one = page.get_by_role("link", name="create one")
    expect(create_one).to_be_visible()
    photo("overview-empty")

    # The job form lists the repository of the installation GitHub holds.
    create_one.click()
    expect(page.get_by_role("heading", name="New job")).to_be_visible()
    assert server.synced, NOT_SYNCED
    repository = page.get_by_label("Repository", exact=True)
    expect(repository.locator("option", has_text=REPO)).to_have_count(1)
    photo("job-form")

    page.get_by_label("Name", exact=True).fill("First look")
    repository.select_option(label=REPO)
    page.get_by_label("Cron expression").fill("0 9 * * 1-5")
    open_every_section(page)
    page.get_by_label("Target", exact=True).select_option("codebase")
    page.get_by_label("Command", exact=True).select_option("context/analyze")
    page.get_by_label("Runner").select_option("builtin")
    page.get_by_label("Report", exact=True).select_option("none")
    page.get_by_role("button", name="Create job").click()

    # Its own page: no runs yet, the next five times on the job's clock.
    expect(page.get_by_role("status")).to_have_text("Created the job “First look”.")
    expect(page.locator("#job-title")).to_have_text("First look")
    expect(page.locator("#no-runs")).to_be_visible()
    expect(page.locator("#job-upcoming time")).to_have_count(5)
    job_path = re.sub(r"\?.*", "", page.url.removeprefix(server.base))
    assert re.fullmatch(r"/jobs/\d+", job_path), job_path
    photo("job-new")

    # Run now: the result arrives on the page by itself (no reload).
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^Queued run \d+ of “First look”\.$")
    )
    cell = page.locator("#job-strip a.cell")
    expect(cell).to_have_count(1)
    expect(cell).to_have_attribute("data-status", "completed", timeout=LIVE)
    expect(cell).to_have_attribute("title", re.compile(r"^#\d+ completed · \d{4}-\d\d-\d\d "))
    row = page.locator("#job-runs tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".run-status")).to_have_text("completed")
    assert page.evaluate("window.notReloaded")
    photo("job")

    # The run it made.
    cell.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("completed")
    expect(page.locator(".session")).to_have_count(1)
    photo("run")

    # Every other page, as the new user would come across it.
    page.get_by_role("link", name="Overview").first.click()
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    expect(page.locator("table.jobs .strip i.ok")).to_have_count(1)
    photo("overview")
    page.get_by_role("link", name="Runs").first.click()
    expect(page.locator("table.runs tbody tr")).to_have_count(1)
    photo("runs")
    page.goto(f"{job_path}/edit")
    expect(page.get_by_label("Name", exact=True)).to_have_value("First look")
    photo("job-edit")
    page.goto(f"{job_path}/delete")
    expect(page.get_by_role("button", name="Delete the job")).to_be_visible()
    photo("delete-confirm")
    page.get_by_role("link", name="Notifiers").first.click()
    expect(page.get_by_role("heading", name="Notifiers")).to_be_visible()
    photo("notifiers")
    page.goto("/notifiers/new")
    expect(page.get_by_label("Webhook URL")).to_be_visible()
    photo("notifier-form")
    page.goto(f"{job_path}/run")  # an action's address typed in: a page, not JSON
    expect(page.get_by_role("heading", name="Not a page")).to_be_visible()
    photo("error-405")
    page.goto("/jobs/987654")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    photo("error-404")

    page.goto("/no/such/page")
    expect(page.locator(".error-message")).to_have_text("There is no page at this address.")

    # Done looking: deleted from its own page, the user is back on an empty overview.
    page.goto(job_path)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/\?notice="))
    expect(page.get_by_role("status")).to_have_text("Deleted the job “First look”.")
    expect(page.get_by_role("link", name="create one")).to_be_visible()

    assert not photo.overflowing, f"pages wider than the window: {photo.overflowing}"
