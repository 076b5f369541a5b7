"""The scheduler: sleep until the earliest due job, fire each occurrence exactly once.

No fixed poll: the loop sleeps until the earliest ``next_run_at`` and is woken early when
a job changes (in this process directly, from other processes through the fallback poll
or ``LISTEN/NOTIFY``). An occurrence fires by inserting a Run under the unique key
``(job_id, scheduled_for)``, so any number of schedulers on one database fire it once;
on PostgreSQL due jobs are also taken ``FOR UPDATE SKIP LOCKED`` so schedulers share the
work instead of repeating it.

Misfire policy: after downtime, the latest missed occurrence fires if it is within the
job's grace window (several missed ones coalesce into it); older ones are skipped.
Concurrency policy when the previous run is still queued or running: skip (recorded as a
skipped run), queue one, cancel the running one, or allow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.core import upsert_row
from ghapp.db.models import (
    Installation,
    Job,
    JobStatus,
    Repository,
    RunStatus,
    SchedulerState,
    TriggerType,
    table_of,
)
from ghapp.jobs.schedules import schedule_of
from ghapp.runqueue.new import NewRun, active_runs, apply_policy, enqueue
from ghapp.scheduler.thresholds import ThresholdChecker
from ghapp.signals import Signals
from ghapp.supervise import RoundFailures

log = logging.getLogger("ghapp.scheduler")

STOPPED = "scheduler_stopped"
ACTIVE_RUN = (RunStatus.queued.value, RunStatus.running.value)


@dataclass(frozen=True)
class Firing:
    """What one due job does in this tick."""

    job_id: int
    old_next: datetime
    new_next: datetime | None
    scheduled_for: datetime | None  # None: missed beyond the grace window, nothing fires
    coalesced: int


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        signals: Signals,
        *,
        thresholds: ThresholdChecker | None = None,
        batch_size: int = 500,
        fallback_poll: timedelta = timedelta(seconds=30),
    ) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.thresholds = thresholds or ThresholdChecker(db, clock, signals, providers={})
        self.batch_size = batch_size
        self.fallback_poll = fallback_poll
        self.fired = 0  # runs this instance created (for status views and tests)

    async def run(self) -> None:
        """Fire due occurrences forever; sleep in between."""
        failures = RoundFailures("scheduler")
        while True:
            try:
                wake_at = await self.tick()
                failures.succeeded()
            except Exception as exc:  # a bad tick must not kill the loop; the next one retries
                wake_at = self.clock.now() + timedelta(seconds=failures.failed(exc))
            cap = self.clock.now() + self.fallback_poll
            await self.clock.sleep_until(
                min(wake_at, cap) if wake_at else cap, self.signals.scheduler_wake
            )

    async def tick(self) -> datetime | None:
        """Fire everything due now; return when something is next due (None: nothing)."""
        if await self.is_stopped():
            return None
        while await self._fire_batch(self.clock.now()) == self.batch_size:
            pass  # a full batch: there may be more due right now
        return await self.next_due()

    async def is_stopped(self) -> bool:
        async with self.db.read() as conn:
            value = await conn.scalar(
                select(col(SchedulerState.value)).where(col(SchedulerState.key) == STOPPED)
            )
        return value == "1"

    async def next_due(self) -> datetime | None:
        async with self.db.read() as conn:
            return await conn.scalar(select(func.min(col(Job.next_run_at))).where(*eligible()))

    async def _fire_batch(self, now: datetime) -> int:
        checks: list[int] = []
        async with self.db.write() as conn:
            jobs = await self._due_jobs(conn, now)
            if not jobs:
                return 0
            firings = [plan(job, now) for job in jobs]
            busy = await active_runs(conn, [f.job_id for f in firings])
            by_id = {job.id: job for job in jobs}
            runs, check_rows = [], []
            cancelling = False
            for firing in firings:
                if firing.scheduled_for is None:
                    continue
                job = by_id[firing.job_id]
                if job.threshold:
                    check_rows.append(_check_row(firing))
                else:
                    run, cancelled = await _timed_run(conn, job, firing, busy.get(job.id, []), now)
                    runs.append(run)
                    cancelling |= cancelled
            created = await enqueue(conn, runs)
            checks = await self.thresholds.claim(conn, check_rows)
            await _advance(conn, firings)
        self.fired += len(created)
        if created:
            self.signals.runs_queued()
        if cancelling:
            self.signals.run_cancel_requested()
        for check_id in checks:
            self.thresholds.start(check_id)
        return len(jobs)

    async def _due_jobs(self, conn: AsyncConnection, now: datetime) -> list[Any]:
        query = (
            select(Job)
            .where(*eligible(), col(Job.next_run_at) <= now)
            .order_by(col(Job.next_run_at), col(Job.id))
            .limit(self.batch_size)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Job)
        return list((await conn.execute(query)).all())


def eligible() -> list[Any]:
    """Active, timed jobs whose repository is active and installation live."""
    repo_ok = or_(
        col(Job.repo_id).is_(None),
        col(Job.repo_id).in_(select(col(Repository.id)).where(col(Repository.active).is_(True))),
    )
    installation_id = func.coalesce(
        col(Job.installation_id),
        select(col(Repository.installation_id))
        .where(col(Repository.id) == col(Job.repo_id))
        .scalar_subquery(),
    )
    installation_ok = or_(
        installation_id.is_(None),
        installation_id.in_(
            select(col(Installation.id)).where(
                and_(
                    col(Installation.suspended_at).is_(None), col(Installation.deleted_at).is_(None)
                )
            )
        ),
    )
    return [
        col(Job.status) == JobStatus.active.value,
        col(Job.next_run_at).is_not(None),
        repo_ok,
        installation_ok,
    ]


def plan(job: Any, now: datetime) -> Firing:
    """Which occurrence fires now (misfire policy) and when the job is next due."""
    schedule = schedule_of(job)
    if schedule is None:  # the time trigger was removed under us: nothing to fire
        return Firing(job.id, job.next_run_at, None, None, 0)
    missed = schedule.occurrences(job.next_run_at - timedelta(microseconds=1), now)
    latest = missed[-1] if missed else job.next_run_at
    new_next = schedule.next_after(max(latest, now))
    if now - latest > timedelta(seconds=job.misfire_grace_seconds):
        log.warning(
            "missed occurrences skipped",
            extra={"job_id": job.id, "missed": len(missed) or 1, "latest": latest.isoformat()},
        )
        return Firing(job.id, job.next_run_at, new_next, None, 0)
    return Firing(job.id, job.next_run_at, new_next, latest, max(0, len(missed) - 1))


async def _timed_run(
    conn: AsyncConnection, job: Any, firing: Firing, active: list[Any], now: datetime
) -> tuple[NewRun, bool]:
    """The run of a timed firing, shaped by the job's concurrency policy; and whether older
    runs were cancelled for it."""
    status, reason, cancelled = await apply_policy(conn, job.concurrency_policy, active, now)
    run = NewRun(
        job_id=job.id,
        repo_id=job.repo_id,
        installation_id=job.installation_id,
        trigger_type=TriggerType.threshold if job.threshold else TriggerType.scheduled,
        now=now,
        trigger_detail={"coalesced": firing.coalesced} if firing.coalesced else {},
        scheduled_for=firing.scheduled_for,
        status=status,
        error=reason,
    )
    return run, cancelled


def _check_row(firing: Firing) -> dict[str, Any]:
    return {"job_id": firing.job_id, "scheduled_for": firing.scheduled_for, "status": "pending"}


async def _advance(conn: AsyncConnection, firings: list[Firing]) -> None:
    """Move each job's next_run_at on, unless another scheduler already did (one statement)."""
    stmt = (
        update(Job)
        .where(col(Job.id) == bindparam("b_id"), col(Job.next_run_at) == bindparam("b_old"))
        .values(next_run_at=bindparam("b_new"))
    )
    rows = [{"b_id": f.job_id, "b_old": f.old_next, "b_new": f.new_next} for f in firings]
    await conn.execute(stmt, rows)


async def set_stopped(db: Database, stopped: bool, now: datetime) -> None:
    """Global stop/start: every scheduler on this database stops (or resumes) firing."""
    async with db.write() as conn:
        values = {"key": STOPPED, "value": "1" if stopped else "0", "updated_at": now}
        await upsert_row(conn, table_of(SchedulerState), values, key=("key",))
