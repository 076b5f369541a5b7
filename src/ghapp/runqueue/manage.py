"""Acting on queued and finished runs: retry and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp.db.models import Run, RunStatus, TriggerType
from ghapp.runqueue.new import NewRun, cancel_runs, enqueue

UNFINISHED = frozenset({RunStatus.queued.value, RunStatus.running.value})


class RunNotFound(LookupError):
    pass


class RunConflict(ValueError):
    """The run is not in a state the action applies to (retrying a running run…)."""


async def retry_run(conn: AsyncConnection, run_id: int, actor: str, now: datetime) -> int:
    """Queue a new run doing what a finished run did (same item, same trigger detail)."""
    old = await _load(conn, run_id)
    if old.status in UNFINISHED:
        raise RunConflict(f"run {run_id} is still {old.status}")
    run = NewRun(
        job_id=old.job_id,
        repo_id=old.repo_id,
        installation_id=old.installation_id,
        trigger_type=TriggerType.retry,
        now=now,
        trigger_detail={**old.trigger_detail, "requested_by": actor, "retry_of": old.id},
        item=old.item,
        delivery_id=old.delivery_id,
        retry_of_id=old.id,
    )
    return (await enqueue(conn, [run]))[old.job_id]


async def cancel_run(conn: AsyncConnection, run_id: int, actor: str, now: datetime) -> str:
    """Cancel a queued run at once; ask a running one to stop. Returns the new status."""
    run = await _load(conn, run_id)
    if run.status not in UNFINISHED:
        raise RunConflict(f"run {run_id} already ended: {run.status}")
    await cancel_runs(conn, [run_id], now, f"cancelled by {actor}")
    return str(await conn.scalar(select(col(Run.status)).where(col(Run.id) == run_id)))


async def _load(conn: AsyncConnection, run_id: int) -> Any:
    """The run's row: its columns as attributes (a Core row, not a ``Run``)."""
    run = (await conn.execute(select(Run).where(col(Run.id) == run_id))).first()
    if run is None:
        raise RunNotFound(run_id)
    return run
