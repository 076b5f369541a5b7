"""Installation sync: ghapp learns the app's installations and repositories from GitHub.

The GitHub stand-in holds the installations; ghapp's database starts empty (or with what
webhooks told it) and a pass reconciles, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.models import Installation, Repository
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.installation_sync import SYNC_FAILED, InstallationSync
from ghapp.jobs.service import JobError
from ghapp.metrics import Metrics
from ghapp.repo_hint import known_app_url, unknown_repository
from ghapp.settings import Settings
from ghapp.standins.github import GitHubStandIn
from tests.conftest import make_settings
from tests.github_support import SkippingClock
from tests.support import add_repository

APP_ID = 4242
BIG = 21  # an installation with 130 repositories: two pages of 100
SMALL = 22


@pytest.fixture
async def standin() -> AsyncIterator[GitHubStandIn]:
    github = GitHubStandIn(app_id=APP_ID)
    github.add_installation(BIG, "octo", "Organization")
    for number in range(130):
        github.add_repo(f"octo/repo-{number:03}", BIG, repo_id=5000 + number)
    github.add_installation(SMALL, "alice")
    github.add_repo("alice/app", SMALL, repo_id=7001, default_branch="trunk", private=True)
    async with github.serve() as base_url:
        github.base_url = base_url
        yield github


def sync_settings(db_url: str, tmp_path: Path, standin: GitHubStandIn, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "app_id": standin.app_id,
        "private_key": standin.private_key_pem,
        "github_api_url": standin.base_url,
        **more,
    }
    return make_settings(db_url, tmp_path, **values)


def sync_of(settings: Settings, db: Database, owner: str = "replica-a") -> InstallationSync:
    clock = SkippingClock()
    github = GitHubApp(settings, clock, RetryPolicy(attempts=1))
    return InstallationSync(settings, db, clock, github, Metrics(), owner)


async def repositories(db: Database) -> dict[str, tuple[int | None, str, bool, bool]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                Repository.full_name,
                Repository.installation_id,
                Repository.default_branch,
                Repository.private,
                Repository.active,
            )
        )
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


async def installations(db: Database) -> dict[int, Any]:
    async with db.read() as conn:
        return {row.id: row for row in (await conn.execute(select(Installation))).all()}


def syncs(sync: InstallationSync, outcome: str) -> float:
    for line in generate_latest(sync.metrics.registry).decode().splitlines():
        if line.startswith(f'ghapp_installation_syncs_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_an_empty_database_learns_every_installation_and_repository(
    db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    sync = sync_of(sync_settings(db.url, tmp_path, standin), db)
    report = await sync.pass_once()
    assert report.ran and (report.installations, report.repositories, report.added) == (2, 131, 131)
    repos = await repositories(db)
    assert len(repos) == 131 and repos["octo/repo-129"] == (BIG, "main", False, True)
    assert repos["alice/app"] == (SMALL, "trunk", True, True)
    known = await installations(db)
    assert known[BIG].account_login == "octo" and known[BIG].account_type == "Organization"
    assert known[SMALL].deleted_at is None and known[SMALL].suspended_at is None
    pages = standin.find_requests("GET", "/installation/repositories")
    assert len(pages) == 3  # BIG: two pages of 100; SMALL: one
    async with db.read() as conn:
        assert await known_app_url(conn) == f"{standin.web_url}/apps/{standin.app_slug}"
    assert syncs(sync, "ok") == 1
    again = await sync.sync()  # nothing new the second time
    assert (again.added, again.deactivated, again.deleted) == (0, 0, 0)
    record = standin.world.repos.pop("alice/app")  # renamed, and a new default branch
    record.update(full_name="alice/renamed", name="renamed", default_branch="dev")
    standin.world.repos["alice/renamed"] = record
    await sync.sync()
    repos = await repositories(db)
    assert "alice/app" not in repos and repos["alice/renamed"] == (SMALL, "dev", True, True)


async def test_what_github_no_longer_lists_stops_firing_and_nothing_is_deleted(
    db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    # Webhooks told ghapp of an installation GitHub no longer has, and of a repository.
    await add_repository(db, repo_id=9001, full_name="gone/old", installation_id=99, account="gone")
    sync = sync_of(sync_settings(db.url, tmp_path, standin), db)
    await sync.sync()
    standin.remove_repo("alice/app")
    report = await sync.sync()
    assert (report.deactivated, report.deleted) == (1, 0)
    repos = await repositories(db)
    assert repos["alice/app"][3] is False and repos["octo/repo-000"][3] is True
    assert repos["gone/old"][3] is False  # its installation went at the first pass
    known = await installations(db)
    assert known[99].deleted_at is not None and known[SMALL].deleted_at is None


async def test_suspension_follows_github_and_an_unsuspended_one_comes_back(
    db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    sync = sync_of(sync_settings(db.url, tmp_path, standin), db)
    standin.suspend_installation(SMALL)
    await sync.sync()
    first = (await installations(db))[SMALL].suspended_at
    assert first is not None
    await sync.sync()
    assert (await installations(db))[SMALL].suspended_at == first  # kept, not moved on
    assert (await repositories(db)).get("alice/app") is None  # no token for a suspended one
    standin.suspend_installation(SMALL, suspended=False)
    await sync.sync()
    assert (await installations(db))[SMALL].suspended_at is None
    assert (await repositories(db))["alice/app"][3] is True


async def test_github_down_is_logged_loses_nothing_and_the_next_pass_works(
    db: Database, standin: GitHubStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sync = sync_of(sync_settings(db.url, tmp_path, standin), db)
    await sync.sync()
    before = await repositories(db)
    standin.remove_repo("octo/repo-000")
    standin.inject("GET", "/installation/repositories", 500, times=1)  # BIG's first page
    with caplog.at_level(logging.INFO, logger="ghapp.installation_sync"):
        partial = await sync.sync()  # one installation not listed: its rows stay
    assert partial.problems == ["installation 21: GitHub answered 500 Internal Server Error"]
    assert (await repositories(db)) == before  # BIG's rows kept: it was not listed
    standin.start_outage(500)
    with caplog.at_level(logging.WARNING, logger="ghapp.installation_sync"):
        failed = await sync.pass_once()
    assert failed.ran and failed.problems and syncs(sync, "failed") == 1
    prefix = SYNC_FAILED.split("{seconds}")[0]
    assert any(r.getMessage().startswith(prefix) for r in caplog.records)
    assert "500" in failed.problems[0]
    assert (await repositories(db)) == before
    standin.end_outage()
    await sync.lease.renew(sync.clock.now())  # the interval has passed
    sync.clock.set(sync.clock.now() + sync.interval)
    assert (await sync.pass_once()).deactivated == 1
    assert (await repositories(db))["octo/repo-000"][3] is False


async def test_a_wrong_key_is_a_failed_pass_not_a_crash(
    db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    other = GitHubStandIn(app_id=APP_ID)  # another app's key: GitHub refuses its JWT
    settings = sync_settings(db.url, tmp_path, standin, private_key=other.private_key_pem)
    report = await sync_of(settings, db).pass_once()
    assert report.ran and "401" in report.problems[0]
    assert await repositories(db) == {}


async def test_two_replicas_one_syncs(db: Database, standin: GitHubStandIn, tmp_path: Path) -> None:
    settings = sync_settings(db.url, tmp_path, standin)
    first, second = sync_of(settings, db, "replica-a"), sync_of(settings, db, "replica-b")
    assert (await first.pass_once()).ran
    assert not (await second.pass_once()).ran
    assert len(standin.find_requests("GET", "/app/installations")) == 1


async def test_the_server_syncs_at_start_up(
    db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    """The normal start-up (``create_app`` with the scheduler, as ``ghapp serve``) syncs
    before anyone asks, so the job form's repository list is filled."""
    settings = sync_settings(db.url, tmp_path, standin)
    app = create_app(settings, db=db, run_scheduler=True)
    async with app.router.lifespan_context(app):
        sync = app.state.ghapp.installation_sync
        assert sync is not None
        await asyncio.wait_for(sync.first_pass.wait(), 30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ghapp") as client:
            assert (await client.get("/healthz")).status_code == 200
    assert (await repositories(db))["alice/app"][3] is True
    assert len(await repositories(db)) == 131


async def test_an_unknown_repository_says_how_to_make_it_known(
    db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    """The API (the ``repo`` the user typed) and the job service end with the hint, linking
    to the app's install page once a sync has learnt where the app lives."""
    assert unknown_repository("octo/app").startswith("unknown repository 'octo/app': ghapp knows")
    assert "/installations/new" not in unknown_repository("octo/app")
    settings = sync_settings(db.url, tmp_path, standin, admin_token="admin-for-hints")
    await sync_of(settings, db).sync()
    app_url = f"{standin.web_url}/apps/{standin.app_slug}"
    expected = unknown_repository("octo/app", app_url)
    assert f"Install the app on it ({app_url}/installations/new), or run `ghapp doctor`" in expected
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ghapp") as client:
        answer = await client.get(
            "/api/scheduler/tasks?repo=octo/app",
            headers={"Authorization": "Bearer admin-for-hints"},
        )
    assert answer.status_code == 422 and expected in answer.text
    assert '"repo"' in answer.text  # the field as the user typed it
    spec = {
        "name": "x",
        "repo_id": 4242,
        "target_type": "issues",
        "command_id": "issue/triage",
        "cron_expression": "0 9 * * *",
    }
    with pytest.raises(JobError) as refused:
        await app.state.ghapp.jobs.create(spec, actor="test")
    assert unknown_repository(4242, app_url) in str(refused.value)
