"""Installation sync: ask GitHub which installations and repositories the app has.

Webhooks (``webhooks/installations.py``) keep the ``installations`` and ``repositories``
rows current, but an app installed before ghapp first ran, or a missed delivery, would
leave ghapp knowing nothing about them for ever. This pass lists them from GitHub and
reconciles, with the webhook handlers' own writes (``save_installation``,
``save_repository``) and their meaning: nothing is deleted; a repository no longer listed
is marked inactive and an installation no longer listed deleted, so their jobs stop firing
and keep their history; a suspended installation is marked so (GitHub's ``suspended_at``).

* **What is asked**: ``GET /app/installations`` as the app (its JWT), and for each
  installation not suspended ``GET /installation/repositories`` with an installation
  token, 100 a page, every page (the ``Link`` header's ``next``). ``GET /app`` first: it
  checks the credentials and gives the app's address, which "unknown repository"
  errors show (``repo_hint``), and its slug, which mentions and assignments match
  (``app_identity``).
* **When**: at start-up and every ``GHAPP_INSTALLATION_SYNC_INTERVAL_SECONDS`` (0: never),
  by one process at a time: a pass holds the ``installation_sync`` row of ``loop_leases``
  until the next is due. ``ghapp doctor`` runs a pass itself.
* **Failures**: GitHub away or the key refused: the pass writes nothing, says why in one
  log line, and the next interval tries again. An installation whose repositories cannot
  be listed keeps the rows it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gidgethub import GitHubException
from sqlalchemy import select
from sqlmodel import col

from ghapp.app_identity import APP_SLUG_KEY
from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.batch import BatchWriter, InsertThen, Statement
from ghapp.db.errors import describe
from ghapp.db.loop_lease import LoopLeaseHolder
from ghapp.db.models import Installation, Repository
from ghapp.db.sql import upsert
from ghapp.github.app import GitHubApp, NotConfigured
from ghapp.metrics import Metrics
from ghapp.repo_hint import APP_URL_KEY
from ghapp.settings import Settings
from ghapp.triggers.mentions import is_slug
from ghapp.webhooks import fields
from ghapp.webhooks.context import DeliveryContext
from ghapp.webhooks.installations import (
    DEACTIVATE_INSTALLATION_REPOS,
    DEACTIVATE_REPO,
    deactivate_repositories,
    save_installation,
    save_repository,
)

log = logging.getLogger("ghapp.installation_sync")

LEASE_NAME = "installation_sync"
PER_PAGE = 100  # GitHub's largest page
# Every statement of a pass in one transaction: the batch writer runs ``then`` only after
# a row comes back, and this one always does.
_ALWAYS = Statement("SELECT 1")
SYNC_OFF = "installation sync is off: {reason}"
SYNC_FAILED = "installation sync failed, tried again in {seconds} s: {reason}"


@dataclass
class Listed:
    """What GitHub answered: the app's address, its installations and their repositories
    (``None`` for an installation whose repositories were not listed)."""

    app_url: str | None
    app_slug: str | None = None  # what mentions and assignments match (ghapp.app_identity)
    installations: list[dict[str, Any]] = field(default_factory=list)
    repositories: dict[int, list[dict[str, Any]] | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    """What one pass did (for logs, ``ghapp doctor`` and tests)."""

    ran: bool  # False: another process holds the lease
    installations: int = 0  # listed by GitHub
    repositories: int = 0  # listed by GitHub
    added: int = 0  # repositories ghapp did not know
    deactivated: int = 0  # repositories no longer listed
    deleted: int = 0  # installations no longer listed
    problems: list[str] = field(default_factory=list)  # installations not fully listed


class InstallationSync:
    """The sync of one process (see the module's description)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        github: GitHubApp,
        metrics: Metrics,
        owner: str,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.github = github
        self.metrics = metrics
        self.lease = LoopLeaseHolder(db, LEASE_NAME, owner)
        self.interval = timedelta(seconds=settings.installation_sync_interval_seconds)
        self.first_pass = asyncio.Event()  # set once the start-up pass is over (or skipped)

    async def run(self) -> None:
        """A pass at start-up, then one every interval, for as long as the process runs."""
        problem = self.settings.github_app_problem()
        if problem is not None or not self.interval:
            reason = problem or "GHAPP_INSTALLATION_SYNC_INTERVAL_SECONDS=0"
            log.info(SYNC_OFF.format(reason=reason))
            self.first_pass.set()
            return
        while True:
            await self.pass_once()
            self.first_pass.set()
            await self.clock.sleep_until(self.clock.now() + self.interval, asyncio.Event())

    async def pass_once(self) -> SyncReport:
        """One pass if no other process is making one; failures are logged, not raised."""
        started = self.clock.now()
        try:
            # Held for the pass and then until the next is due, so the other replicas'
            # passes find it taken and the passes keep one cadence.
            span = max(self.interval, timedelta(minutes=5))
            if not await self.lease.take(started, started + span):
                log.debug("installation sync: another process holds the lease")
                return SyncReport(ran=False)
            report = await self.sync()
            await self.lease.renew(self.clock.now() + self.interval, covered_until=started)
        except Exception as exc:  # GitHub or the database is away: the next pass retries
            self.metrics.installation_syncs.labels("failed").inc()
            seconds = int(self.interval.total_seconds())
            log.warning(SYNC_FAILED.format(seconds=seconds, reason=failure_reason(exc)))
            log_if_bug(exc)
            return SyncReport(ran=True, problems=[failure_reason(exc)])
        self.metrics.installation_syncs.labels("ok").inc()
        return report

    async def sync(self) -> SyncReport:
        """List everything from GitHub, then reconcile in one transaction (raises on failure)."""
        listed = await self.list_all()
        now = self.clock.now()
        ctx = DeliveryContext(received_at=now, item=None, installation_id=None)
        report = await self.reconcile(listed, ctx)
        learnt = {APP_URL_KEY: listed.app_url, APP_SLUG_KEY: listed.app_slug}
        for key, value in learnt.items():
            if value:
                row = {"key": key, "value": value, "updated_at": now}
                ctx.add(upsert("scheduler_state", row, key=("key",)))
        await apply(self.db, ctx.statements)
        if report.added or report.deactivated or report.deleted or report.problems:
            log.info(
                "installation sync",
                extra={
                    "installations": report.installations,
                    "repositories": report.repositories,
                    "added": report.added,
                    "deactivated": report.deactivated,
                    "deleted": report.deleted,
                    "problems": report.problems,
                },
            )
        return report

    async def list_all(self) -> Listed:
        jwt = self.github.jwt()
        gh = self.github.as_app()
        app = await gh.getitem("/app", jwt=jwt)
        listed = Listed(
            app_url=app.get("html_url") if isinstance(app, dict) else None,
            app_slug=_slug(app),
        )
        listing = gh.getiter(f"/app/installations?per_page={PER_PAGE}", jwt=jwt)
        listed.installations = [item async for item in listing]
        for installation in listed.installations:
            installation_id = fields.int_id(installation)
            if installation.get("suspended_at"):
                # GitHub gives a suspended installation no token: its rows stay as they are.
                listed.repositories[installation_id] = None
                continue
            try:
                listed.repositories[installation_id] = await self.repositories_of(installation_id)
            except (GitHubException, NotConfigured) as exc:
                listed.repositories[installation_id] = None
                listed.problems.append(f"installation {installation_id}: {failure_reason(exc)}")
        return listed

    async def repositories_of(self, installation_id: int) -> list[dict[str, Any]]:
        gh = await self.github.for_installation(installation_id)
        url = f"/installation/repositories?per_page={PER_PAGE}"
        return [repo async for repo in gh.getiter(url, iterable_key="repositories")]

    async def reconcile(self, listed: Listed, ctx: DeliveryContext) -> SyncReport:
        """The webhook handlers' writes for what GitHub listed, and for what it no longer does."""
        known_installations, known_repos = await self.known()
        report = SyncReport(ran=True, installations=len(listed.installations))
        report.problems = listed.problems
        listed_repos: set[int] = set()
        for data in listed.installations:
            installation_id = fields.int_id(data)
            row = known_installations.get(installation_id)
            suspended = bool(data.get("suspended_at"))
            save_installation(
                ctx,
                data,
                suspended=None if row is not None and row[0] == suspended else suspended,
                deleted=None if row is not None and not row[1] else False,
            )
            for repo in listed.repositories.get(installation_id) or []:
                listed_repos.add(fields.int_id(repo))
                report.added += fields.int_id(repo) not in known_repos
                save_repository(ctx, repo, installation_id, active=True)
        report.repositories = len(listed_repos)
        complete = {i for i, repos in listed.repositories.items() if repos is not None}
        for repo_id, (owner_id, active) in known_repos.items():
            if active and owner_id in complete and repo_id not in listed_repos:
                deactivate_repositories(ctx, DEACTIVATE_REPO, repo_id)
                report.deactivated += 1
        for gone, (_, deleted) in known_installations.items():
            if not deleted and gone not in listed.repositories:
                save_installation(ctx, {"id": gone}, suspended=None, deleted=True)
                deactivate_repositories(ctx, DEACTIVATE_INSTALLATION_REPOS, gone)
                report.deleted += 1
        return report

    async def known(
        self,
    ) -> tuple[dict[int, tuple[bool, bool]], dict[int, tuple[int | None, bool]]]:
        """Installations (suspended, deleted) and repositories (installation, active) now."""
        async with self.db.read() as conn:
            installations = await conn.execute(
                select(
                    col(Installation.id),
                    col(Installation.suspended_at),
                    col(Installation.deleted_at),
                )
            )
            repos = await conn.execute(
                select(col(Repository.id), col(Repository.installation_id), col(Repository.active))
            )
            return (
                {row[0]: (row[1] is not None, row[2] is not None) for row in installations},
                {row[0]: (row[1], bool(row[2])) for row in repos},
            )


def _slug(app: Any) -> str | None:
    slug = app.get("slug") if isinstance(app, dict) else None
    return slug if isinstance(slug, str) and is_slug(slug) else None


async def apply(db: Database, statements: Iterable[Statement]) -> None:
    """The statements in one transaction, on the drivers the webhook path writes with."""
    writer = BatchWriter(db)
    try:
        result = await writer.write(InsertThen(_ALWAYS, list(statements)))
    finally:
        await writer.close()
    if isinstance(result, BaseException):
        raise result


def failure_reason(exc: BaseException) -> str:
    """One line saying what went wrong, naming no secret."""
    if isinstance(exc, NotConfigured):
        return str(exc)
    if isinstance(exc, GitHubException):
        status = getattr(exc, "status_code", None)
        code = f"{int(status)} " if status is not None else ""
        return f"GitHub answered {code}{str(exc)[:200] or type(exc).__name__}".strip()
    if isinstance(exc, ValueError) and "private key" in str(exc).lower():
        return "the private key could not be read (GHAPP_PRIVATE_KEY / GHAPP_PRIVATE_KEY_PATH)"
    return describe(exc)[:300]


def log_if_bug(exc: Exception) -> None:
    """Log a traceback for what is neither GitHub's, the database's nor the network's doing."""
    from ghapp.db.errors import is_database_trouble

    expected = (GitHubException, NotConfigured, OSError, ValueError, TimeoutError)
    if not isinstance(exc, expected) and not is_database_trouble(exc):
        import httpx

        if not isinstance(exc, httpx.HTTPError):
            log.error("installation sync: unexpected error", exc_info=exc)
