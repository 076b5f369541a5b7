"""A job's recent runs as the pages show them: a strip of coloured cells, small cost and
duration bars (inline SVG, drawn here: no script, no chart library), and runs that have
gone on past their job's timeout."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from ghapp.dashboard.describe import absolute, duration, money, relative, span, status_class
from ghapp.db import Database
from ghapp.db.models import Job, Run
from ghapp.tokens import Principal

OVERVIEW_CELLS = 10
JOB_PAGE_CELLS = 30
TREND_WIDTH = 300  # the SVG's own units; CSS stretches it to the column
TREND_HEIGHT = 40
OVERDUE = (
    "Run #{run} of “{job}” has been running for {running}, past its job's "
    "{timeout} timeout: it may be stuck."
)
STRIP_COLUMNS = (
    col(Run.id),
    col(Run.job_id),
    col(Run.status),
    col(Run.queued_at),
    col(Run.started_at),
    col(Run.completed_at),
    col(Run.duration_ms),
    col(Run.cost_usd),
)

STRIP_NAMES = tuple(
    "id job_id status queued_at started_at completed_at duration_ms cost_usd".split()
)


async def recent_runs(
    db: Database, job_ids: Sequence[int] | None, per_job: int
) -> dict[int, list[Any]]:
    """Each job's newest ``per_job`` runs, newest first (``job_ids`` None: every job).

    One query: ROW_NUMBER over each job's runs walks the (job_id, id) index, on SQLite
    and PostgreSQL alike."""
    number = (
        func.row_number().over(partition_by=col(Run.job_id), order_by=col(Run.id).desc()).label("n")
    )
    inner = select(*STRIP_COLUMNS, number)
    if job_ids is not None:
        if not job_ids:
            return {}
        inner = inner.where(col(Run.job_id).in_(list(job_ids)))
    ranked = inner.subquery()
    query = select(*(ranked.c[name] for name in STRIP_NAMES)).where(ranked.c.n <= per_job)
    out: dict[int, list[Any]] = {}
    async with db.read() as conn:
        for row in await conn.execute(query.order_by(ranked.c.job_id, ranked.c.id.desc())):
            out.setdefault(row.job_id, []).append(row)
    return out


def when(run: Any) -> datetime:
    at: datetime = run.completed_at or run.started_at or run.queued_at
    return at


def strip(runs: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    """Cells oldest to newest (the newest at the right, as Actions and Deck show them)."""
    cells = []
    for run in reversed(runs):
        words = run.status.replace("_", " ")
        at = when(run)
        cells.append(
            {
                "id": run.id,
                "css": status_class(run.status),
                "status": run.status,
                "title": f"#{run.id} {words} · {absolute(at)} ({relative(at, now)})",
            }
        )
    return cells


def trend(runs: Sequence[Any], field: str) -> dict[str, Any] | None:
    """Bars of ``cost_usd`` or ``duration_ms`` for the finished runs, oldest first."""
    finished = [run for run in reversed(runs) if run.completed_at is not None]
    values = [float(getattr(run, field) or 0) for run in finished]
    if not finished or max(values) <= 0:
        return None
    top = max(values)
    step = TREND_WIDTH / max(len(finished), 10)  # a few runs do not fill the width
    show = money if field == "cost_usd" else (lambda v: duration(int(v)))
    bars = []
    for index, (run, value) in enumerate(zip(finished, values, strict=True)):
        height = max(1.0, round(value / top * (TREND_HEIGHT - 2), 1))
        bars.append(
            {
                "x": round(index * step + step * 0.1, 1),
                "y": round(TREND_HEIGHT - height, 1),
                "w": round(step * 0.8, 1),
                "h": height,
                "css": status_class(run.status),
                "title": f"#{run.id}: {show(value)}",
            }
        )
    return {
        "bars": bars,
        "width": TREND_WIDTH,
        "height": TREND_HEIGHT,
        "low": show(min(values)),
        "high": show(top),
        "last": show(values[-1]),
        "count": len(finished),
    }


async def overdue_runs(
    db: Database, principal: Principal, now: datetime, job_id: int | None = None
) -> list[dict[str, Any]]:
    """Running runs started longer ago than their job's timeout, oldest first.

    The worker stops a session at its timeout; a run still "running" after it lost its
    worker or hangs between sessions, and someone should look."""
    query = (
        select(
            col(Run.id),
            col(Run.job_id),
            col(Run.started_at),
            col(Job.name),
            col(Job.timeout_seconds),
        )
        .join(Job, col(Job.id) == col(Run.job_id))
        .where(col(Run.status) == "running")
        .order_by(col(Run.id))
    )
    if job_id is not None:
        query = query.where(col(Run.job_id) == job_id)
    scope = await principal.scope(db)
    if scope.repo_ids is not None:
        query = query.where(col(Run.repo_id).in_(sorted(scope.repo_ids)))
    async with db.read() as conn:
        rows = list(await conn.execute(query))
    out = []
    for row in rows:
        if row.started_at is None:
            continue
        limit = timedelta(seconds=row.timeout_seconds)
        if now - row.started_at <= limit:
            continue
        running_ms = int((now - row.started_at).total_seconds() * 1000)
        text = OVERDUE.format(
            run=row.id,
            job=row.name,
            running=duration(running_ms),
            timeout=span(row.timeout_seconds),
        )
        out.append({"run_id": row.id, "job_id": row.job_id, "text": text})
    return out
