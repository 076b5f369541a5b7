"""Reading what the API and the dashboard show: one read model beneath both.

Scoping (a tenant's token sees only its repositories' rows), keyset pages with opaque
cursors, names of repositories, a run's sessions, and the scheduler's figures are computed
here once, so a page and an API answer about the same thing cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped
from sqlmodel import col

from ghapp.access import Scope
from ghapp.api.errors import invalid
from ghapp.db import Database
from ghapp.db.models import Job, Repository, Run, RunStatus, Session

FAILED = (RunStatus.failed.value, RunStatus.timed_out.value)
TODAY_PAGE = 500

_Ts = TypeVarTuple("_Ts")


class Caller(Protocol):
    async def scope(self, db: Database) -> Scope: ...


# -- cursors: the id to continue below, opaque to clients ------------------------------------


def encode_cursor(last_id: int) -> str:
    return f"i{last_id}"


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if len(cursor) < 2 or cursor[0] != "i" or not (cursor[1:].isascii() and cursor[1:].isdigit()):
        raise invalid("cursor", "not a cursor this API returned", "query")
    return int(cursor[1:])


async def keyset_page(
    db: Database, query: Select[Any], id_column: Mapped[int | None], limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Newest first, ``limit`` rows below the cursor; the next cursor when there are more."""
    below = decode_cursor(cursor)
    if below is not None:
        query = query.where(id_column < below)
    query = query.order_by(id_column.desc()).limit(limit + 1)
    async with db.read() as conn:
        rows = list((await conn.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


# -- scope ------------------------------------------------------------------------------------


async def scoped(
    query: Select[*_Ts], repo_column: Mapped[int | None], who: Caller, db: Database
) -> Select[*_Ts]:
    """Limit a query to the repositories a non-admin token may see."""
    scope = await who.scope(db)
    if scope.repo_ids is None:
        return query
    return query.where(repo_column.in_(sorted(scope.repo_ids)))


# -- rows -------------------------------------------------------------------------------------


async def sessions_of(db: Database, run_ids: Sequence[int]) -> dict[int, list[Any]]:
    if not run_ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(Session).where(col(Session.run_id).in_(list(run_ids))).order_by(col(Session.id))
        )
        out: dict[int, list[Any]] = {}
        for row in rows:
            out.setdefault(row.run_id, []).append(row)
    return out


async def repo_names(db: Database, jobs: Iterable[Any]) -> dict[int, str]:
    ids = sorted({job.repo_id for job in jobs if job.repo_id is not None})
    if not ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(col(Repository.id), col(Repository.full_name)).where(col(Repository.id).in_(ids))
        )
        return {repo_id: name for repo_id, name in rows}


# -- the scheduler's figures ---------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerFigures:
    """Jobs, runs and today's totals within a caller's scope."""

    active_jobs: int
    paused_jobs: int
    next_run_at: datetime | None
    queued: int
    running: int
    runs_today: int
    completed_today: int
    failed_today: int
    cost_today: float


async def scheduler_figures(db: Database, who: Caller, now: datetime) -> SchedulerFigures:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    jobs = await scoped(
        select(
            func.count().filter(col(Job.status) == "active"),
            func.count().filter(col(Job.status) == "paused"),
            func.min(col(Job.next_run_at)).filter(col(Job.status) == "active"),
        ),
        col(Job.repo_id),
        who,
        db,
    )
    unfinished = await scoped(
        select(col(Run.status), func.count())
        .where(col(Run.status).in_((RunStatus.queued.value, RunStatus.running.value)))
        .group_by(col(Run.status)),
        col(Run.repo_id),
        who,
        db,
    )
    async with db.read() as conn:
        active, paused, next_at = (await conn.execute(jobs)).one()
        busy = dict((await conn.execute(unfinished)).all())
        floor = await first_id_of_today(conn, midnight)
        today = await scoped(
            select(col(Run.status), func.count(), func.coalesce(func.sum(col(Run.cost_usd)), 0))
            .where(col(Run.id) >= floor, col(Run.queued_at) >= midnight)
            .group_by(col(Run.status)),
            col(Run.repo_id),
            who,
            db,
        )
        by_status = {status: (count, cost) for status, count, cost in await conn.execute(today)}
    return SchedulerFigures(
        active_jobs=active,
        paused_jobs=paused,
        next_run_at=next_at,
        queued=busy.get(RunStatus.queued.value, 0),
        running=busy.get(RunStatus.running.value, 0),
        runs_today=sum(count for count, _ in by_status.values()),
        completed_today=by_status.get(RunStatus.completed.value, (0, 0))[0],
        failed_today=sum(by_status.get(status, (0, 0))[0] for status in FAILED),
        cost_today=float(sum(cost for _, cost in by_status.values())),
    )


async def first_id_of_today(conn: AsyncConnection, midnight: datetime) -> int:
    """The lowest id among runs queued since ``midnight``: the newest runs, walked back a page
    at a time along the primary key until one is older (ids grow with queue time)."""
    below: int | None = None
    floor: int | None = None
    while True:
        query = (
            select(col(Run.id), col(Run.queued_at)).order_by(col(Run.id).desc()).limit(TODAY_PAGE)
        )
        if below is not None:
            query = query.where(col(Run.id) < below)
        rows = (await conn.execute(query)).all()
        for run_id, queued_at in rows:
            assert run_id is not None  # a primary key
            if queued_at < midnight:
                return floor if floor is not None else run_id + 1
            floor = run_id
        if len(rows) < TODAY_PAGE:
            return floor if floor is not None else 0
        below = rows[-1][0]
