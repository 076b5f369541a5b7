"""Reading ``.github/ghapp.yml`` in workers and bringing a repository's jobs in line with it.

:class:`ConfigSyncer` claims the ``config_syncs`` rows the webhook path queued (see
:mod:`ghapp.config.webhooks`) under a lease — a leased queue (:mod:`ghapp.db.lease`,
declared as :data:`CONFIG_SYNCS`): one ``UPDATE … RETURNING``, the candidate chosen ``FOR
UPDATE SKIP LOCKED`` on PostgreSQL, inside SQLite's write transaction there — so any number
of workers share them and none takes a row another holds. A repository's syncs run one at
a time, in the order they were queued (a partial unique index backs this), so an older
commit's file never overwrites a newer one's.

For each row it reads the file at the pushed commit (or the default branch's head) through
the contents API, parses and validates **every** job first (:mod:`ghapp.config.schema`,
the same checks as the API), and only if all are valid creates, updates and deletes the
repository's ``source="config"`` jobs by name through :class:`~ghapp.jobs.service.JobService`
(actor ``config:OWNER/NAME``, so each change is audited). Jobs made through the API are
never touched. An invalid file changes nothing; the problem (with its line) is reported on
the pushed commit as a commit status (context ``ghapp/config``), as is success ("3 jobs in
sync"). A removed file removes the config jobs. GitHub failures are retried with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import gidgethub
import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.config.schema import (
    CONFIG_PATH,
    ConfigInvalid,
    ConfigProblem,
    ParsedConfig,
    ValidJob,
    parse_config,
    validate_config,
)
from ghapp.db import Database
from ghapp.db.audit import audit_insert
from ghapp.db.lease import LeasedQueue, LeasedTable, RetryBackoff
from ghapp.db.models import Job, Notifier, Repository
from ghapp.github.app import GitHubApp, NotConfigured
from ghapp.jobs.service import JobError, JobService, spec_of
from ghapp.repo_commands import CommandCatalogs
from ghapp.repo_hint import unknown_repository
from ghapp.signals import Signals
from ghapp.supervise import RoundFailures

log = logging.getLogger("ghapp.config")

STATUS_CONTEXT = "ghapp/config"
MAX_DESCRIPTION = 140  # GitHub's limit for a commit status description
MAX_ERROR = 4000

# The config syncs' lease: pending → running → done | failed (or pending again, later). A
# row is claimable when due (or its lease lapsed) and no earlier sync of its repository is
# unfinished, so a repository's syncs run one at a time and in order.
CONFIG_SYNCS = LeasedTable(
    name="config_syncs",
    ready="pending",
    held="running",
    due="run_after",
    order=("queued_at", "id"),
    returning=("id", "repo_id", "installation_id", "sha", "reason", "attempts"),
    condition="""
NOT EXISTS (
    SELECT 1 FROM config_syncs e
    WHERE e.repo_id = c.repo_id AND e.id <> c.id
      AND e.status IN ('pending', 'running')
      AND (e.queued_at < c.queued_at OR (e.queued_at = c.queued_at AND e.id < c.id)))
""",
    on_claim=("started_at = :now", "attempts = attempts + 1"),
    on_retry=("error = :error",),
    on_finish=("error = :error", "summary = :summary", "done_at = :now"),
)


@dataclass(frozen=True)
class ClaimedSync:
    id: int
    repo_id: int
    installation_id: int | None
    sha: str | None  # None: the default branch's head (no commit status then)
    reason: str
    attempts: int  # including this one


@dataclass(frozen=True)
class SyncOutcome:
    status: str  # done | failed | retrying | lost (the lease went to another worker)
    summary: str | None = None
    error: str | None = None
    created: int = 0
    updated: int = 0
    removed: int = 0


class Transient(Exception):
    """GitHub could not answer now (down, rate limited, the commit not visible yet)."""


class SyncFailed(Exception):
    """The sync cannot be done (no installation, access refused…); not worth retrying."""


@dataclass
class _Changes:
    created: int = 0
    updated: int = 0
    removed: int = 0

    def describe(self) -> str:
        done = [
            f"{n} {what}"
            for n, what in (
                (self.created, "created"),
                (self.updated, "updated"),
                (self.removed, "removed"),
            )
            if n
        ]
        return f" ({', '.join(done)})" if done else ""


class ConfigSyncer:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        signals: Signals,
        github: GitHubApp,
        jobs: JobService,
        *,
        owner: str | None = None,
        poll: timedelta = timedelta(seconds=10),
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 5,
        backoff_base: timedelta = timedelta(seconds=30),
        backoff_max: timedelta = timedelta(minutes=10),
    ) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.github = github
        self.jobs = jobs
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:config"
        self.poll = poll
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff = RetryBackoff(backoff_base, backoff_max)
        self.syncs = LeasedQueue(db, CONFIG_SYNCS, self.owner, lease)

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Sync what is due, then sleep until the next is due, a wake-up, or the poll."""
        failures = RoundFailures("config-sync")
        while True:
            try:
                await self.run_pending()
                due = await self.next_due()
                failures.succeeded()
            except Exception as exc:  # one bad round must not stop syncing for good
                due = self.clock.now() + timedelta(seconds=failures.failed(exc))
            cap = self.clock.now() + self.poll
            await self.clock.sleep_until(min(due, cap) if due else cap, self.signals.work_available)

    async def run_pending(self) -> int:
        """Claim and sync every row that is due now; how many were synced."""
        count = 0
        while (claimed := await self.claim()) is not None:
            await self.sync_once(claimed)
            count += 1
        return count

    async def next_due(self) -> datetime | None:
        return await self.syncs.next_due()

    async def claim(self) -> ClaimedSync | None:
        try:
            row = await self.syncs.claim(self.clock.now())
        except IntegrityError:  # another worker claimed this repository's sync just now
            return None
        if row is None:
            return None
        return ClaimedSync(
            id=row.id,
            repo_id=row.repo_id,
            installation_id=row.installation_id,
            sha=row.sha,
            reason=row.reason,
            attempts=row.attempts,
        )

    # -- one sync ----------------------------------------------------------------------

    async def sync_once(self, claimed: ClaimedSync) -> SyncOutcome:
        """Read, validate, apply, report, and record the end of a claimed row."""
        extra = {"config_sync_id": claimed.id, "repo_id": claimed.repo_id, "sha": claimed.sha}
        try:
            async with asyncio.timeout(self.lease.total_seconds() * 0.8):
                outcome = await self._sync(claimed)
        except (Transient, TimeoutError) as exc:
            reason = str(exc) or "GitHub did not answer in time"
            if claimed.attempts < self.max_attempts:
                outcome = SyncOutcome("retrying", error=reason)
            else:
                outcome = SyncOutcome(
                    "failed", error=f"gave up after {claimed.attempts} attempts: {reason}"
                )
        except SyncFailed as exc:
            outcome = SyncOutcome("failed", error=str(exc))
        except Exception as exc:  # a bug: record it, keep the loop alive
            log.exception("config sync crashed", extra=extra)
            outcome = SyncOutcome("failed", error=f"{type(exc).__name__}: {exc}")
        if not await self._record(claimed, outcome):
            log.warning("config sync lease lost", extra=extra)
            return SyncOutcome("lost", outcome.summary, outcome.error)
        log.info(
            "config sync %s",
            outcome.status,
            extra={**extra, "summary": outcome.summary, "error": outcome.error},
        )
        return outcome

    async def _sync(self, claimed: ClaimedSync) -> SyncOutcome:
        repo = await self._repository(claimed.repo_id)
        if repo is None:
            raise SyncFailed(unknown_repository(claimed.repo_id))
        if not repo.active:
            return SyncOutcome("done", summary="the app is no longer installed on it")
        installation_id = claimed.installation_id or repo.installation_id
        if installation_id is None:
            raise SyncFailed("the repository has no installation")
        gh = await self._client(installation_id)
        actor = f"config:{repo.full_name}"
        try:
            content = await self._read(gh, repo.full_name, claimed.sha)
            wanted = [] if content is None else await self._validate(content, repo.id)
        except ConfigInvalid as exc:  # nothing changes
            await self._report(gh, repo.full_name, claimed.sha, "failure", _first(exc))
            error = "\n".join(str(p) for p in exc.problems)
            return SyncOutcome("failed", summary="invalid: no job changed", error=error)
        if content is None:  # no file (or removed): no config jobs
            changes = await self._apply(repo.id, actor, [])
            summary = f"no {CONFIG_PATH}" + (
                f": {changes.removed} config jobs removed" if changes.removed else ""
            )
            if claimed.sha is not None:
                await self._report(gh, repo.full_name, claimed.sha, "success", summary)
            return SyncOutcome("done", summary=summary, removed=changes.removed)
        try:
            changes = await self._apply(repo.id, actor, wanted)
        except (JobError, ValidationError) as exc:  # changed between validation and now
            problem = f"could not apply {CONFIG_PATH}: {_one_line(exc)}"
            await self._report(gh, repo.full_name, claimed.sha, "failure", problem)
            return SyncOutcome("failed", error=problem)
        except DBAPIError as exc:  # a concurrent write won (applying again converges)
            raise Transient(f"database conflict: {_one_line(exc.orig or exc)}") from None
        summary = f"{len(wanted)} job{'' if len(wanted) == 1 else 's'} in sync{changes.describe()}"
        await self._report(gh, repo.full_name, claimed.sha, "success", summary)
        return SyncOutcome(
            "done",
            summary=summary,
            created=changes.created,
            updated=changes.updated,
            removed=changes.removed,
        )

    # -- GitHub ------------------------------------------------------------------------

    async def _client(self, installation_id: int) -> Any:
        try:
            return await self.github.for_installation(installation_id)
        except NotConfigured as exc:
            raise SyncFailed(f"the GitHub App is not configured: {exc}") from None
        except (gidgethub.GitHubBroken, gidgethub.RateLimitExceeded, httpx.HTTPError) as exc:
            raise Transient(f"no installation token: {_one_line(exc)}") from None
        except gidgethub.BadRequest as exc:
            raise SyncFailed(f"no installation token: {exc.status_code} {exc}") from None

    async def _read(self, gh: Any, full_name: str, sha: str | None) -> str | None:
        """The file's text at ``sha`` (the default branch if None); None if there is none."""
        query = f"?ref={sha}" if sha else ""
        try:
            data = await gh.getitem(f"/repos/{full_name}/contents/{CONFIG_PATH}{query}")
        except gidgethub.RateLimitExceeded as exc:
            raise Transient(f"rate limited: {exc}") from None
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404 and "No commit found" in str(exc):
                raise Transient(f"commit {sha} is not visible on GitHub yet") from None
            if exc.status_code == 404:
                return None
            raise SyncFailed(
                f"GitHub refused to read {CONFIG_PATH}: {int(exc.status_code)} {exc}"
            ) from None
        except (gidgethub.GitHubBroken, httpx.HTTPError) as exc:
            raise Transient(f"reading {CONFIG_PATH}: {_one_line(exc)}") from None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise ConfigInvalidAsFailure(f"{CONFIG_PATH} is not a file")
        if data.get("encoding") != "base64":  # GitHub sends no content for files over 1 MB
            raise ConfigInvalidAsFailure(f"{CONFIG_PATH} is too large")
        try:
            return base64.b64decode(data.get("content") or "").decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigInvalidAsFailure(f"{CONFIG_PATH} is not UTF-8 text") from None

    async def _report(
        self, gh: Any, full_name: str, sha: str | None, state: str, description: str
    ) -> None:
        """A commit status on the pushed commit; none without a commit (installation)."""
        if sha is None:
            return
        data = {"state": state, "context": STATUS_CONTEXT, "description": _clip(description)}
        try:
            await gh.post(f"/repos/{full_name}/statuses/{sha}", data=data)
        except (gidgethub.HTTPException, httpx.HTTPError) as exc:  # jobs are right anyway
            log.warning(
                "commit status not posted",
                extra={"repo": full_name, "sha": sha, "error": _one_line(exc)},
            )

    # -- validation and changes --------------------------------------------------------

    async def _validate(self, content: str, repo_id: int) -> list[ValidJob]:
        if content.startswith("\ufeff"):
            content = content[1:]
        parsed = parse_config(content)
        wanted = validate_config(parsed, repo_id, await self._context(parsed, repo_id))
        problems = await self._unknown_notifiers(parsed)
        if problems:
            raise ConfigInvalid(problems)
        return wanted

    async def _context(self, parsed: ParsedConfig, repo_id: int) -> dict[str, Any]:
        """JobService's commands, with the repository's own ``.claude/commands`` when a job
        names one: read afresh (the push may have added it with the file), and a GitHub
        failure is retried rather than reported as an unknown command."""
        commands: Mapping[str, frozenset[str]] = self.jobs.commands
        others = [
            j
            for j in parsed.jobs
            if isinstance(j.data.get("command_id"), str) and j.data["command_id"] not in commands
        ]
        catalogs = self.jobs.repository_commands
        if others and catalogs is not None:
            forget = getattr(catalogs, "forget", None)
            if forget is not None:
                forget(repo_id)
            try:
                catalog = await catalogs.of(repo_id)
            except (gidgethub.GitHubBroken, gidgethub.RateLimitExceeded, httpx.HTTPError) as exc:
                raise Transient(f"reading .claude/commands: {_one_line(exc)}") from None
            # JobService (creating the jobs next) finds the same catalog in its cache.
            commands = {**commands, **catalog.targets()}
        return {"commands": commands, "metrics": self.jobs.metrics}

    async def _unknown_notifiers(self, parsed: ParsedConfig) -> list[ConfigProblem]:
        wanted = {
            n
            for job in parsed.jobs
            for n in job.data.get("notifier_ids") or []
            if isinstance(n, int)
        }
        if not wanted:
            return []
        async with self.db.read() as conn:
            known = set(
                await conn.scalars(select(col(Notifier.id)).where(col(Notifier.id).in_(wanted)))
            )
        problems = []
        for job in parsed.jobs:
            key = job.keys.get("notifier_ids", "notifiers")
            for position, notifier_id in enumerate(job.data.get("notifier_ids") or []):
                if notifier_id not in known:
                    path = ("jobs", job.index, key, position)
                    line = parsed.lines.get(path) or parsed.lines.get(path[:-1]) or job.line
                    where = f"jobs[{job.index}].{key}[{position}]"
                    problems.append(ConfigProblem(line, where, f"unknown notifier {notifier_id}"))
        return problems

    async def _apply(self, repo_id: int, actor: str, wanted: list[ValidJob]) -> _Changes:
        """Create, update and delete this repository's config jobs to match ``wanted``."""
        async with self.db.read() as conn:
            query = select(Job).where(col(Job.repo_id) == repo_id, col(Job.source) == "config")
            existing = list((await conn.execute(query.order_by(col(Job.id)))).all())
        by_name: dict[str, Any] = {}
        doubles: list[Any] = []
        for job in existing:
            if job.name in by_name:
                doubles.append(job)  # two with one name (cannot happen; repaired anyway)
            else:
                by_name[job.name] = job
        changes = _Changes()
        for want in wanted:
            desired = want.spec.model_dump()
            job = by_name.pop(want.name, None)
            if job is None:
                await self.jobs.create(desired, actor=actor, source="config")
                changes.created += 1
                continue
            if not want.status_given:  # a job paused by hand stays paused
                desired.pop("status")
            current = spec_of(job)
            different = {k: v for k, v in desired.items() if current.get(k) != v}
            if different:
                await self.jobs.update(job.id, different, actor=actor)
                changes.updated += 1
        for job in [*by_name.values(), *doubles]:
            assert job.id is not None
            await self.jobs.delete(job.id, actor=actor)
            changes.removed += 1
        return changes

    # -- bookkeeping -------------------------------------------------------------------

    async def _repository(self, repo_id: int) -> Repository | None:
        async with self.db.read_session() as session:
            return await session.get(Repository, repo_id)

    async def _record(self, claimed: ClaimedSync, outcome: SyncOutcome) -> bool:
        now = self.clock.now()
        error = outcome.error[:MAX_ERROR] if outcome.error else None
        async with self.db.write() as conn:
            if outcome.status == "retrying":
                due = now + self.backoff.delay(claimed.attempts)
                kept = await self.syncs.retry(claimed.id, due, conn, error=error)
            else:
                kept = await self.syncs.finish(
                    claimed.id, outcome.status, conn, error=error, summary=outcome.summary, now=now
                )
            if kept and outcome.status == "failed":
                repo = await conn.scalar(
                    select(col(Repository.full_name)).where(col(Repository.id) == claimed.repo_id)
                )
                await conn.execute(
                    audit_insert(
                        f"config:{repo or claimed.repo_id}",
                        "config.invalid",
                        "repository",
                        claimed.repo_id,
                        now,
                        repo_id=claimed.repo_id,
                        after={"sha": claimed.sha, "error": error, "sync_id": claimed.id},
                    )
                )
        return kept


def build_config_syncer(
    db: Database, clock: Clock, signals: Signals, github: GitHubApp, **options: Any
) -> ConfigSyncer:
    """A syncer for a worker: its own JobService (one that knows each repository's
    ``.claude/commands``), the worker's GitHub client and wake-ups."""
    commands = CommandCatalogs(db, github, clock)
    jobs = JobService(db, clock, signals, repository_commands=commands)
    return ConfigSyncer(db, clock, signals, github, jobs, **options)


class ConfigInvalidAsFailure(ConfigInvalid):
    """The file exists but is not something we can read (a directory, too large…)."""

    def __init__(self, message: str) -> None:
        super().__init__([ConfigProblem(None, "", message)])


def _first(exc: ConfigInvalid) -> str:
    more = len(exc.problems) - 1
    suffix = f" (+{more} more)" if more > 0 else ""
    return _clip(str(exc.problems[0]), MAX_DESCRIPTION - len(suffix)) + suffix


def _clip(text_: str, limit: int = MAX_DESCRIPTION) -> str:
    text_ = " ".join(text_.split())
    return text_ if len(text_) <= limit else text_[: limit - 1] + "…"


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
