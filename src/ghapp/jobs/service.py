"""Creating, changing, pausing, resuming and deleting jobs — the one way to do it.

The API, the CLI, the dashboard and the config file all go through :class:`JobService`,
so every change is validated the same way, recomputes ``next_run_at``, is audited, bumps
the jobs version (other processes' trigger caches notice) and wakes the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, Text, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ghapp.access import ADMIN, ADMIN_ONLY, Scope
from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.audit import audit_insert
from ghapp.db.core import dialect_insert
from ghapp.db.models import (
    AuditEntry,
    Job,
    JobStatus,
    Notifier,
    Repository,
    Run,
    SchedulerState,
    TriggerType,
    table_of,
)
from ghapp.jobs.schedules import first_run
from ghapp.jobs.spec import BUILTIN_COMMANDS, BUILTIN_METRICS, JobSpec
from ghapp.repo_hint import known_app_url, unknown_repository
from ghapp.runqueue.manage import cancel_run, retry_run
from ghapp.runqueue.new import NewRun, active_runs, cancel_runs, enqueue
from ghapp.signals import Signals
from ghapp.tiers import BUILTIN_READERS, READERS

JOBS_VERSION = "jobs_version"
SPEC_FIELDS = tuple(JobSpec.model_fields)
TIMING_FIELDS = frozenset({"cron_expression", "timezone", "interval_minutes", "threshold"})
SECRET_KEYS = ("token", "secret", "password", "url")


class JobError(ValueError):
    """A job change refused for a reason outside the spec itself (unknown repo, cycle…)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class JobForbidden(JobError):
    """A change only an admin may make (the caller's token is not an admin's)."""


SCOPE_FIELDS = ("repo_id", "installation_id", "repo_selection", "repo_ids")


def admin_only(spec: JobSpec, before: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """The settings of ``spec`` that only an admin may give a job, with why. ``before`` is
    the job as it was, for a change: moving a job is an admin's decision too."""
    found = []
    if spec.permission_mode == "bypassPermissions" or (
        before is not None and before.get("permission_mode") == "bypassPermissions"
    ):
        reason = (
            ADMIN_ONLY["bypass"] + ": only an admin token may set it, or change a job that has it"
        )
        found.append(("permission_mode", reason))
    if spec.runner == "shell" or (before is not None and before.get("runner") == "shell"):
        found.append(("runner", ADMIN_ONLY["shell"] + ": only an admin token may set it"))
    if spec.repo_selection != "one" or spec.repo_id is None:
        found.append(("repo_selection", ADMIN_ONLY["installation"] + ": only an admin token may"))
    if before is not None:
        if before.get("runner") != spec.runner:
            found.append(("runner", ADMIN_ONLY["move"] + ": only an admin token may"))
        for name in SCOPE_FIELDS:
            if before.get(name) != getattr(spec, name):
                found.append((name, ADMIN_ONLY["move"] + ": only an admin token may"))
                break
    return found


class JobNotFound(LookupError):
    pass


class RepositoryCommands(Protocol):
    async def of(self, repo_id: int) -> Any: ...


class JobService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        signals: Signals,
        *,
        commands: Mapping[str, frozenset[str]] | None = None,
        metrics: frozenset[str] | None = None,
        repository_commands: RepositoryCommands | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.commands = commands if commands is not None else BUILTIN_COMMANDS
        self.metrics = metrics if metrics is not None else BUILTIN_METRICS
        self.repository_commands = repository_commands

    def validate(
        self,
        data: Mapping[str, Any],
        commands: Mapping[str, frozenset[str]] | None = None,
        readers: frozenset[str] = BUILTIN_READERS,
    ) -> JobSpec:
        """Raises pydantic's ValidationError naming each bad field. ``readers``: the
        commands open to readers (``ghapp.tiers``), which may not have structured actions."""
        context = {"commands": commands or self.commands, "metrics": self.metrics}
        context["readers"] = readers
        return JobSpec.model_validate(dict(data), context=context)

    async def checked(self, data: Mapping[str, Any]) -> JobSpec:
        """``validate`` with the repository's own commands when the job names one."""
        catalog = await self._catalog(data)
        if catalog is None:
            return self.validate(data)
        readers = {c.id for c in catalog.commands.values() if c.open_to == READERS}
        return self.validate(
            data, {**self.commands, **catalog.targets()}, BUILTIN_READERS | readers
        )

    async def _catalog(self, data: Mapping[str, Any]) -> Any:
        """The repository's command catalog when the job names a command that is not a
        built-in; None otherwise, or when GitHub cannot be reached (the command is then
        judged by the built-ins: unknown)."""
        command_id, repo_id = data.get("command_id"), data.get("repo_id")
        if (
            self.repository_commands is None
            or not command_id
            or command_id in self.commands
            or not isinstance(repo_id, int)
        ):
            return None
        try:
            return await self.repository_commands.of(repo_id)
        except Exception:
            return None

    async def get(self, job_id: int) -> Job:
        async with self.db.read_session() as session:
            job = await session.get(Job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def create(
        self, data: Mapping[str, Any], actor: str, source: str = "api", *, scope: Scope = ADMIN
    ) -> Job:
        """Create a job. ``scope`` is the caller's: a tenant names only its repositories'
        things, and some settings are an admin's (:func:`admin_only`)."""
        spec = await self.checked(data)
        _check_admin_only(spec, scope, before=None)
        now = self.clock.now()
        async with self.db.session() as session:
            await self._check_references(session, spec, job_id=None, scope=scope, before=None)
            job = Job(**spec.model_dump(), source=source, created_by=actor)
            job.created_at = job.updated_at = now
            _retime(job, now)
            session.add(job)
            await session.flush()
            await _audit(session, actor, "job.create", job, None, spec_of(job), now)
            await bump_jobs_version(session, now)
        self.signals.job_changed()
        return job

    async def update(
        self, job_id: int, changes: Mapping[str, Any], actor: str, *, scope: Scope = ADMIN
    ) -> Job:
        now = self.clock.now()
        async with self.db.session() as session:
            job = await _load(session, job_id)
            before = spec_of(job)
            merged = {**before, **changes}
            spec = await self.checked(merged)
            if not scope.sees(job.repo_id):
                raise JobNotFound(job_id)
            _check_admin_only(spec, scope, before=before)
            await self._check_references(session, spec, job_id=job_id, scope=scope, before=before)
            for name, value in spec.model_dump().items():
                setattr(job, name, value)
            if any(before.get(name) != merged.get(name) for name in TIMING_FIELDS) or (
                before["status"] != job.status
            ):
                _retime(job, now)
            job.updated_at = now
            await _audit(session, actor, "job.update", job, before, spec_of(job), now)
            await bump_jobs_version(session, now)
        self.signals.job_changed()
        return job

    async def pause(self, job_id: int, actor: str) -> Job:
        return await self._set_status(job_id, JobStatus.paused, actor, "job.pause")

    async def resume(self, job_id: int, actor: str) -> Job:
        return await self._set_status(job_id, JobStatus.active, actor, "job.resume")

    async def delete(self, job_id: int, actor: str) -> None:
        """Delete the job; its queued runs are cancelled and running ones told to stop."""
        now = self.clock.now()
        async with self.db.session() as session:
            job = await _load(session, job_id)
            before = spec_of(job)
            await stop_runs(await session.connection(), job_id, now)
            await _audit(session, actor, "job.delete", job, before, None, now)
            await session.delete(job)
            await bump_jobs_version(session, now)
        self.signals.job_changed()
        self.signals.run_cancel_requested()

    async def run_now(
        self, job_id: int, actor: str, trigger_type: str = TriggerType.manual.value
    ) -> int:
        """Queue a run at once: allowed even when the job is paused."""
        now = self.clock.now()
        async with self.db.write() as conn:
            job = (
                await conn.execute(
                    select(col(Job.id), col(Job.repo_id), col(Job.installation_id)).where(
                        col(Job.id) == job_id
                    )
                )
            ).first()
            if job is None:
                raise JobNotFound(job_id)
            run = NewRun(
                job_id=job.id,
                repo_id=job.repo_id,
                installation_id=job.installation_id,
                trigger_type=TriggerType(trigger_type),
                now=now,
                trigger_detail={"requested_by": actor},
            )
            run_id = (await enqueue(conn, [run]))[job.id]
            after = {"run_id": run_id}
            await conn.execute(
                audit_insert(actor, "job.run", "job", job.id, now, repo_id=job.repo_id, after=after)
            )
        self.signals.runs_queued()
        return run_id

    async def retry(self, run_id: int, actor: str) -> int:
        """Queue a new run doing what a finished run did (same item, same trigger detail)."""
        now = self.clock.now()
        async with self.db.write() as conn:
            new_id = await retry_run(conn, run_id, actor, now)
            await self._audit_run(conn, actor, "run.retry", run_id, now, {"run_id": new_id})
        self.signals.runs_queued()
        return new_id

    async def cancel(self, run_id: int, actor: str) -> str:
        """Cancel a queued run at once; ask a running one to stop. Returns the new status."""
        now = self.clock.now()
        async with self.db.write() as conn:
            before = await conn.scalar(select(col(Run.status)).where(col(Run.id) == run_id))
            status = await cancel_run(conn, run_id, actor, now)
            after = {"status": status}
            await self._audit_run(conn, actor, "run.cancel", run_id, now, after, {"status": before})
        self.signals.run_cancel_requested()
        return status

    @staticmethod
    async def _audit_run(
        conn: AsyncConnection,
        actor: str,
        action: str,
        run_id: int,
        now: datetime,
        after: dict[str, Any],
        before: dict[str, Any] | None = None,
    ) -> None:
        repo_id = await conn.scalar(select(col(Run.repo_id)).where(col(Run.id) == run_id))
        await conn.execute(
            audit_insert(
                actor, action, "run", run_id, now, repo_id=repo_id, before=before, after=after
            )
        )

    async def _set_status(self, job_id: int, status: JobStatus, actor: str, action: str) -> Job:
        now = self.clock.now()
        async with self.db.session() as session:
            job = await _load(session, job_id)
            before = {"status": job.status}
            job.status = status.value
            _retime(job, now)
            job.updated_at = now
            await _audit(session, actor, action, job, before, {"status": job.status}, now)
            await bump_jobs_version(session, now)
        self.signals.job_changed()
        return job

    async def _check_references(
        self,
        session: AsyncSession,
        spec: JobSpec,
        job_id: int | None,
        scope: Scope,
        before: Mapping[str, Any] | None,
    ) -> None:
        """Everything a job names must exist and, for a tenant, be its own: what it cannot
        see is refused in the very words used for what does not exist. A change is judged
        on what it adds, so a tenant can still edit a job an admin gave a global notifier."""
        if spec.repo_id is not None and (
            await session.get(Repository, spec.repo_id) is None or not scope.sees(spec.repo_id)
        ):
            app_url = await known_app_url(session)
            raise JobError("repo_id", unknown_repository(spec.repo_id, app_url))
        for repo_id in spec.repo_ids:
            repo = await session.get(Repository, repo_id)
            if repo is None or repo.installation_id != spec.installation_id:
                raise JobError(
                    "repo_ids",
                    f"repository {repo_id} is not in installation {spec.installation_id}",
                )
        if spec.after_job_id is not None and spec.after_job_id != (before or {}).get(
            "after_job_id"
        ):
            upstream = await session.get(Job, spec.after_job_id)
            if upstream is None or not scope.sees(upstream.repo_id):
                raise JobError("after_job_id", f"unknown job {spec.after_job_id}")
            await _check_chain(session, spec.after_job_id, job_id)
        had = set((before or {}).get("notifier_ids") or ())
        for notifier_id in spec.notifier_ids:
            if notifier_id in had:
                continue
            row = await session.get(Notifier, notifier_id)
            if row is None or not scope.sees_all(row.repo_ids or ()):
                raise JobError("notifier_ids", f"unknown notifier {notifier_id}")


def _check_admin_only(spec: JobSpec, scope: Scope, before: Mapping[str, Any] | None) -> None:
    if not scope.is_admin and (found := admin_only(spec, before)):
        field, reason = found[0]
        raise JobForbidden(field, reason)


def spec_of(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in SPEC_FIELDS}


def _retime(job: Job, now: datetime) -> None:
    """Recompute when an active job next fires; paused and untimed jobs have no next run."""
    if job.interval_minutes or (job.threshold and job.threshold.get("check_interval_minutes")):
        job.schedule_anchor = now.replace(microsecond=0)
    job.next_run_at = first_run(job, now) if job.status == JobStatus.active.value else None


async def _load(session: AsyncSession, job_id: int) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def _check_chain(session: AsyncSession, after_job_id: int, job_id: int | None) -> None:
    seen: set[int] = set()
    current: int | None = after_job_id
    while current is not None:
        if current == job_id or current in seen:
            raise JobError("after_job_id", "this would make a cycle of jobs waiting on each other")
        seen.add(current)
        upstream = await session.get(Job, current)
        if upstream is None:
            raise JobError("after_job_id", f"unknown job {current}")
        current = upstream.after_job_id


async def stop_runs(conn: AsyncConnection, job_id: int, now: datetime) -> None:
    """Cancel the job's queued runs and ask its running ones to stop."""
    active = await active_runs(conn, [job_id])
    await cancel_runs(conn, [run_id for run_id, _ in active.get(job_id, [])], now, "job deleted")


async def bump_jobs_version(session: AsyncSession, now: datetime) -> None:
    """One atomic upsert: concurrent changes (replicas, config syncs) never lose a bump or
    collide creating the row."""
    conn = await session.connection()
    table = table_of(SchedulerState)
    stmt = dialect_insert(conn, table).values(key=JOBS_VERSION, value="1", updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "value": cast(cast(col(SchedulerState.value), Integer) + 1, Text),
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await conn.execute(stmt)


async def jobs_version(conn: AsyncConnection) -> int:
    value = await conn.scalar(
        select(col(SchedulerState.value)).where(col(SchedulerState.key) == JOBS_VERSION)
    )
    return int(value or 0)


async def _audit(
    session: AsyncSession,
    actor: str,
    action: str,
    job: Job,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type="job",
            object_id=str(job.id),
            repo_id=job.repo_id,
            before=mask(before),
            after=mask(after),
            created_at=now,
        )
    )


def mask(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe copy with anything secret-looking masked."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if any(word in key.lower() for word in SECRET_KEYS) and isinstance(value, str):
            out[key] = "****"
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out
