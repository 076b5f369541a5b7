"""A run's end: its status, the job's bookkeeping, and the jobs waiting on it (``after``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp.db.models import Job, JobStatus, Run, RunStatus, TriggerType
from ghapp.notify.outbox import queue_run_end
from ghapp.runqueue.new import NewRun, enqueue

FINAL = frozenset(
    {
        RunStatus.completed,
        RunStatus.failed,
        RunStatus.skipped,
        RunStatus.cancelled,
        RunStatus.timed_out,
    }
)


async def finish_run(
    conn: AsyncConnection,
    run_id: int,
    status: RunStatus,
    now: datetime,
    *,
    error: str | None = None,
    public_url: str = "",
    **counters: Any,
) -> list[int]:
    """Record the end of a run; queue its notifications and the jobs that run after it.

    Returns the ids of the dependent runs queued.
    """
    if status not in FINAL:
        raise ValueError(f"{status} is not a final status")
    run = (await conn.execute(select(Run).where(col(Run.id) == run_id))).one()
    started = run.started_at or run.queued_at
    await conn.execute(
        update(Run)
        .where(col(Run.id) == run_id)
        .values(
            status=status.value,
            error=error,
            completed_at=now,
            duration_ms=int((now - started).total_seconds() * 1000),
            lease_owner=None,
            lease_expires_at=None,
            **counters,
        )
    )
    await conn.execute(
        update(Job)
        .where(col(Job.id) == run.job_id)
        .values(last_run_at=started, last_run_status=status.value)
    )
    await queue_run_end(conn, run_id, now, public_url)
    return await queue_dependents(conn, run, status, now)


async def queue_dependents(
    conn: AsyncConnection, run: Any, status: RunStatus, now: datetime
) -> list[int]:
    """Jobs with ``after_job_id`` = this run's job (only on success, if they say so)."""
    condition: ColumnElement[bool] = col(Job.after_only_on_success).is_(False)
    if status == RunStatus.completed:
        condition = or_(condition, col(Job.after_only_on_success).is_(True))
    dependents = (
        await conn.execute(
            select(col(Job.id), col(Job.repo_id), col(Job.installation_id)).where(
                col(Job.after_job_id) == run.job_id,
                col(Job.status) == JobStatus.active.value,
                condition,
            )
        )
    ).all()
    if not dependents:
        return []
    existing = set(
        (
            await conn.execute(
                select(col(Run.job_id)).where(col(Run.delivery_id) == f"after-run-{run.id}")
            )
        ).scalars()
    )
    detail = {"after_run_id": run.id, "after_status": status.value}
    runs = [
        NewRun(
            job_id=job_id,
            repo_id=repo_id,
            installation_id=installation_id,
            trigger_type=TriggerType.dependency,
            now=now,
            trigger_detail=detail,
            delivery_id=f"after-run-{run.id}",  # one dependent run per upstream run
        )
        for job_id, repo_id, installation_id in dependents
        if job_id is not None and job_id not in existing  # (never None: a primary key)
    ]
    return list((await enqueue(conn, runs)).values())
