"""Two ways a new server used to jam, as a new user meets them.

* A server started without the GitHub App's credentials took deliveries and queued runs
  that then stayed ``running`` for ever, re-claimed every lease, with nothing on the run
  page. Now the run fails at once with a sentence naming the settings, and ``/readyz``,
  the dashboard and ``ghapp serve`` say what is missing.
* ``ghapp schedule cancel`` on a running run printed ``running`` and the run never ended
  when its worker was gone. Now the CLI waits for the end, a live worker stops at once,
  and a run whose worker is gone is ended ``cancelled`` as soon as its lease has lapsed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from ghapp.app import create_app
from ghapp.cli.main import app as cli_app
from ghapp.clock import SystemClock
from ghapp.db.models import Run, Session
from ghapp.runqueue.claim import RunQueue
from ghapp.signals import Signals
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.worker.service import build_worker
from tests.conftest import make_settings
from tests.support import add_repository, live_server, sign_in

ADMIN = "admin-token-for-new-server-tests"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
NOT_CONFIGURED = (
    "the GitHub App is not configured: GHAPP_APP_ID and GHAPP_PRIVATE_KEY "
    "(or GHAPP_PRIVATE_KEY_PATH) are not set (`ghapp setup` registers an app and writes them)"
)


@dataclass
class Server:
    base: str
    db: Any
    http: httpx.AsyncClient

    async def cli(self, *args: str) -> Result:
        env = {"GHAPP_URL": self.base, "GHAPP_TOKEN": ADMIN, "COLUMNS": "200"}
        return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), env=env)

    async def shell_job(self, command: str) -> int:
        body = {
            "name": "Shell",
            "runner": "shell",
            "shell_command": command,
            "target_type": "custom",
            "report": "none",
        }
        answer = await self.http.post(f"/api/repos/{REPO_ID}/schedules", json=body)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    async def run(self, run_id: int) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(select(Run).where(Run.id == run_id))).one()


async def serve(db_url: str, db: Any, tmp_path: Any, workers: int = 1, **settings: Any):
    await add_repository(db)
    app = create_app(
        make_settings(db_url, tmp_path, admin_token=ADMIN, **settings), db=db, workers=workers
    )
    async with live_server(app) as base:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            yield Server(base, db, http)


@pytest.fixture
async def unconfigured(db_url, db, tmp_path):
    """``ghapp serve`` as a first-time user starts it: no app id, no private key."""
    async for server in serve(db_url, db, tmp_path):
        yield server


@asynccontextmanager
async def github_settings(tmp_path: Any) -> AsyncIterator[dict[str, Any]]:
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    git_url = bare_repository(tmp_path, REPO, files={"README.md": "# Hello-World\n"})
    async with github.serve() as github_url:
        yield {
            "github_api_url": github_url,
            "git_url": git_url,
            "app_id": 99,
            "private_key": github.private_key_pem,
        }


@pytest.fixture
async def working(db_url, db, tmp_path):
    async with github_settings(tmp_path) as configured:
        async for server in serve(db_url, db, tmp_path, **configured):
            yield server


@pytest.fixture
async def web_only(db_url, db, tmp_path):
    """``ghapp serve --no-worker``: the runs wait for a worker process."""
    async with github_settings(tmp_path) as configured:
        async for server in serve(db_url, db, tmp_path, workers=0, **configured):
            yield server, make_settings(db_url, tmp_path, admin_token=ADMIN, **configured)


# -- without the app's credentials ---------------------------------------------------------------


async def test_a_run_without_app_credentials_fails_at_once_naming_the_settings(
    unconfigured,
) -> None:
    job_id = await unconfigured.shell_job("echo hi")
    result = await unconfigured.cli("schedule", "run", str(job_id), "--wait", "--poll", "0.05")
    assert result.exit_code == 1, result.output
    async with unconfigured.db.read() as conn:
        [run] = (await conn.execute(select(Run))).all()
    assert (run.status, run.error, run.attempt) == ("failed", NOT_CONFIGURED, 1)
    assert run.lease_owner is None
    assert result.stderr.strip().splitlines()[-1] == (
        f"ghapp schedule run: run {run.id} failed: {NOT_CONFIGURED}"
    )


async def test_readyz_and_the_dashboard_say_the_app_is_not_configured(unconfigured) -> None:
    ready = await unconfigured.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["github_app"] == NOT_CONFIGURED
    async with httpx.AsyncClient(base_url=unconfigured.base) as browser:
        await sign_in(browser, ADMIN)
        page = await browser.get("/")
    assert "Runs cannot start:" in page.text
    assert "GHAPP_APP_ID and GHAPP_PRIVATE_KEY" in page.text


async def test_a_configured_server_says_so(working) -> None:
    assert (await working.http.get("/readyz")).json()["github_app"] == "configured"
    async with httpx.AsyncClient(base_url=working.base) as browser:
        await sign_in(browser, ADMIN)
        page = await browser.get("/")
    assert "Runs cannot start" not in page.text


def test_an_unreadable_key_file_is_named(tmp_path) -> None:
    settings = make_settings(
        "sqlite+aiosqlite:///x.db", tmp_path, app_id=1, private_key_path=tmp_path / "gone.pem"
    )
    assert settings.github_app_problem() == (
        f"the GitHub App is not configured: GHAPP_PRIVATE_KEY_PATH={tmp_path / 'gone.pem'} "
        "cannot be read"
    )
    assert make_settings("sqlite+aiosqlite:///x.db", tmp_path, app_id=1).github_app_problem() == (
        "the GitHub App is not configured: GHAPP_PRIVATE_KEY (or GHAPP_PRIVATE_KEY_PATH) is not "
        "set (`ghapp setup` registers an app and writes them)"
    )


# -- cancel ---------------------------------------------------------------------------------------


async def run_now(server: Server, job_id: int) -> int:
    answer = await server.http.post(f"/api/repos/{REPO_ID}/schedules/{job_id}/run")
    assert answer.status_code == 202, answer.text
    return int(answer.json()["run_id"])


async def wait_for(condition, what: str, within: float = 30.0) -> None:
    """Poll a condition (not a timing assumption): fails after ``within`` seconds."""
    give_up = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_cancel_of_a_run_whose_worker_is_gone_ends_it_cancelled(web_only, tmp_path) -> None:
    server, settings = web_only
    job_id = await server.shell_job("echo never")
    run_id = await run_now(server, job_id)
    # A worker claimed it and then died; a minute later its lease has lapsed.
    dead = RunQueue(server.db, "a-worker-that-died")
    assert await dead.claim(datetime.now(UTC)) is not None
    async with server.db.write() as conn:
        lapsed = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(update(Run).where(Run.id == run_id).values(lease_expires_at=lapsed))
    assert (await server.run(run_id)).status == "running"

    cancelling = asyncio.create_task(
        server.cli("schedule", "cancel", str(run_id), "--wait", "60", "--poll", "0.05")
    )

    async def requested() -> bool:
        return (await server.run(run_id)).cancel_requested_at is not None

    await wait_for(requested, "the cancel request to be stored")
    # A worker process starts (a restart, or another replica): it ends the run at once.
    worker = build_worker(settings, server.db, SystemClock(), Signals(), concurrency=1)
    worker.start()
    try:
        result = await cancelling
    finally:
        await worker.close()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == f"run {run_id} cancelled"
    run = await server.run(run_id)
    assert (run.status, run.lease_owner) == ("cancelled", None)
    async with server.db.read() as conn:
        sessions = (await conn.execute(select(Session).where(Session.run_id == run_id))).all()
    assert sessions == []  # nothing was run for a cancelled run


async def test_cancel_of_a_running_session_stops_it_and_the_cli_waits(working, tmp_path) -> None:
    job_id = await working.shell_job("exec sleep 120")
    run_id = await run_now(working, job_id)

    async def session_started() -> bool:
        async with working.db.read() as conn:
            status = await conn.scalar(select(Session.status).where(Session.run_id == run_id))
        return status == "running"

    await wait_for(session_started, "the shell session to start")
    began = time.monotonic()
    result = await working.cli("schedule", "cancel", str(run_id), "--poll", "0.05")
    took = time.monotonic() - began
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"run {run_id} asked to stop; waiting for it to end",
        f"run {run_id} cancelled",
    ]
    assert took < 15  # a heartbeat is 20 s: the cancel woke the worker rather than waiting
    run = await working.run(run_id)
    assert (run.status, run.lease_owner) == ("cancelled", None)


async def test_cancel_gives_up_after_its_bound_and_says_why(web_only) -> None:
    server, _ = web_only
    run_id = await run_now(server, await server.shell_job("echo never"))
    # Held by a worker whose lease is good for another minute: nothing can end it yet.
    assert await RunQueue(server.db, "a-worker-far-away").claim(datetime.now(UTC)) is not None
    result = await server.cli("schedule", "cancel", str(run_id), "--wait", "0.2", "--poll", "0.05")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"ghapp schedule cancel: run {run_id} is still running after 0.2 s; "
        "it is ended when its worker stops it or its lease lapses"
    )
