"""Queueing runs: one shape (:class:`NewRun`) and one way in, whatever triggered the run.

Every producer — a webhook's triggers, the scheduler, a threshold check, *Run now*, a
retry, a job waiting on another — describes its run as a :class:`NewRun` and hands it to
:func:`enqueue` (or, inside a delivery's group commit, to :func:`enqueue_statements`). Here
the row gets its defaults, the job's run counter is bumped, and a timed firing gets the
job's concurrency policy. A column added to runs is added to :data:`COLUMNS` and
:meth:`NewRun.row`, and every producer has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp.db.batch import Statement, json_text
from ghapp.db.core import insert_ignoring_conflicts
from ghapp.db.models import Job, Run, RunStatus, TriggerType, table_of
from ghapp.runqueue import sql

# What a new run's row holds; everything else (leases, results) the queue fills in later.
COLUMNS = (
    "job_id",
    "repo_id",
    "installation_id",
    "trigger_type",
    "trigger_detail",
    "delivery_id",
    "scheduled_for",
    "item",
    "retry_of_id",
    "status",
    "error",
    "items_found",
    "items_processed",
    "items_skipped",
    "items_failed",
    "attempt",
    "cost_usd",
    "queued_at",
    "run_after",
    "completed_at",
)
JSON_COLUMNS = frozenset({"trigger_detail", "item"})
ACTIVE = (RunStatus.queued.value, RunStatus.running.value)


@dataclass(frozen=True)
class NewRun:
    """A run to queue."""

    job_id: int
    repo_id: int | None
    installation_id: int | None
    trigger_type: TriggerType
    now: datetime
    trigger_detail: dict[str, Any] = field(default_factory=dict)
    item: dict[str, Any] | None = None
    delivery_id: str | None = None
    scheduled_for: datetime | None = None  # a timed firing: at most one run per moment
    retry_of_id: int | None = None
    status: RunStatus = RunStatus.queued
    error: str | None = None  # why it was skipped

    def row(self) -> dict[str, Any]:
        skipped = self.status == RunStatus.skipped
        return {
            "job_id": self.job_id,
            "repo_id": self.repo_id,
            "installation_id": self.installation_id,
            "trigger_type": TriggerType(self.trigger_type).value,
            "trigger_detail": self.trigger_detail,
            "delivery_id": self.delivery_id,
            "scheduled_for": self.scheduled_for,
            "item": self.item,
            "retry_of_id": self.retry_of_id,
            "status": self.status.value,
            "error": self.error,
            "items_found": 0,
            "items_processed": 0,
            "items_skipped": 0,
            "items_failed": 0,
            "attempt": 1,
            "cost_usd": 0.0,
            "queued_at": self.now,
            "run_after": self.now,
            "completed_at": self.now if skipped else None,
        }


async def enqueue(conn: AsyncConnection, runs: Sequence[NewRun]) -> dict[int, int]:
    """Queue ``runs`` (at most one per job) and count them on their jobs.

    A timed firing already made (same job, same ``scheduled_for``) is left out, so two
    schedulers firing the same moment queue one run. Returns ``{job_id: run_id}`` for the
    runs queued.
    """
    if len({run.job_id for run in runs}) != len(runs):
        raise ValueError("enqueue takes at most one run per job")
    rows = [run.row() for run in runs]
    created = await insert_ignoring_conflicts(
        conn,
        table_of(Run),
        rows,
        ("job_id", "scheduled_for"),
    )
    if created:
        await conn.execute(
            update(Job)
            .where(col(Job.id).in_(list(created)))
            .values(run_count=col(Job.run_count) + 1)
        )
    return created


def enqueue_statements(run: NewRun) -> list[Statement]:
    """:func:`enqueue` as statements for a delivery's group commit (``ghapp.db.batch``)."""
    params = {
        name: json_text(value) if name in JSON_COLUMNS and value is not None else value
        for name, value in run.row().items()
    }
    return [
        Statement(_INSERT_RUN, params),
        Statement(sql.COUNT_RUN, {"job_id": run.job_id}),
    ]


_INSERT_RUN = sql.insert_run(COLUMNS)


# -- the concurrency policy of timed firings -------------------------------------------------


async def active_runs(
    conn: AsyncConnection, job_ids: list[int]
) -> dict[int, list[tuple[int, str]]]:
    """Each job's queued and running runs: ``{job_id: [(run_id, status)]}``."""
    rows = await conn.execute(
        select(col(Run.job_id), col(Run.id), col(Run.status)).where(
            col(Run.job_id).in_(job_ids), col(Run.status).in_(ACTIVE)
        )
    )
    active: dict[int, list[tuple[int, str]]] = {}
    for job_id, run_id, status in rows:
        assert run_id is not None  # a primary key
        active.setdefault(job_id, []).append((run_id, status))
    return active


async def apply_policy(
    conn: AsyncConnection, policy: str, active: list[tuple[int, str]], now: datetime
) -> tuple[RunStatus, str | None, bool]:
    """What a timed firing becomes while the job has ``active`` runs: its status, why it
    was skipped, and whether older runs were cancelled to make way (``cancel``)."""
    statuses = {status for _, status in active}
    if policy == "skip" and statuses:
        return RunStatus.skipped, "the previous run is still queued or running", False
    if policy == "queue" and RunStatus.queued.value in statuses:
        return RunStatus.skipped, "a run is already queued", False
    if policy == "cancel" and statuses:
        await cancel_runs(conn, [run_id for run_id, _ in active], now, "cancelled by a newer run")
        return RunStatus.queued, None, True
    return RunStatus.queued, None, False


async def cancel_runs(
    conn: AsyncConnection, run_ids: list[int], now: datetime, reason: str
) -> None:
    """Queued runs end ``cancelled`` at once; running ones are asked to stop (their worker
    sees ``cancel_requested_at``; a dead worker's run is ended by the next claim)."""
    await conn.execute(
        update(Run)
        .where(col(Run.id).in_(run_ids), col(Run.status) == RunStatus.queued.value)
        .values(status=RunStatus.cancelled.value, completed_at=now, error=reason)
    )
    await conn.execute(
        update(Run)
        .where(col(Run.id).in_(run_ids), col(Run.status) == RunStatus.running.value)
        .values(cancel_requested_at=now)
    )
