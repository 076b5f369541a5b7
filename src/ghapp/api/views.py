"""Reading jobs and runs for the API: scoped lists, keyset pages, and the response shapes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, func, select

from ghapp.api.auth import Principal
from ghapp.api.errors import ApiError, invalid
from ghapp.api.schemas import METRIC_ALIASES, ScheduleOut, TaskOut
from ghapp.db import Database
from ghapp.db.models import Job, Repository, Run, Session
from ghapp.jobs.service import SPEC_FIELDS

BOOKKEEPING_FIELDS = (
    "next_run_at",
    "last_run_at",
    "last_run_status",
    "run_count",
    "source",
    "created_by",
    "created_at",
    "updated_at",
)


# -- cursors: the id to continue below, opaque to clients ------------------------------------


def encode_cursor(last_id: int) -> str:
    return f"i{last_id}"


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if len(cursor) < 2 or cursor[0] != "i" or not cursor[1:].isdigit():
        raise invalid("cursor", "not a cursor this API returned", "query")
    return int(cursor[1:])


async def keyset_page(
    db: Database, query: Select[Any], id_column: Any, limit: int, cursor: str | None
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


async def scoped(query: Select[Any], repo_column: Any, who: Principal, db: Database) -> Select[Any]:
    """Limit a query to the repositories a non-admin token may see."""
    if who.is_admin:
        return query
    return query.where(repo_column.in_(sorted(await who.repo_ids(db))))


async def resolve_repo(db: Database, who: Principal, repo: str, where: str = "query") -> int:
    """A repository by id or ``owner/name`` (case-insensitive), among those ``who`` sees:
    another tenant's repository is as unknown as one that does not exist."""
    async with db.read() as conn:
        if repo.isdigit():
            found = await conn.scalar(select(Repository.id).where(Repository.id == int(repo)))
        else:
            found = await conn.scalar(
                select(Repository.id).where(func.lower(Repository.full_name) == repo.lower())
            )
    if found is None or not await who.sees(db, int(found)):
        raise invalid("repo", f"unknown repository {repo!r}", where)
    return int(found)


async def repo_exists(db: Database, repo_id: int) -> bool:
    async with db.read() as conn:
        return await conn.scalar(select(Repository.id).where(Repository.id == repo_id)) is not None


async def load_job(db: Database, who: Principal, job_id: int) -> Job:
    async with db.read_session() as session:
        job = await session.get(Job, job_id)
    if job is None:
        raise ApiError(404, "no such job")
    await who.check_repo(db, job.repo_id, "no such job")
    return job


async def load_run(db: Database, who: Principal, run_id: int) -> Any:
    async with db.read() as conn:
        run = (await conn.execute(select(Run).where(Run.id == run_id))).first()
    if run is None:
        raise ApiError(404, "no such run")
    await who.check_repo(db, run.repo_id, "no such run")
    return run


async def sessions_of(db: Database, run_ids: Sequence[int]) -> dict[int, list[Any]]:
    if not run_ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(Session).where(Session.run_id.in_(list(run_ids))).order_by(Session.id)
        )
        out: dict[int, list[Any]] = {}
        for row in rows:
            out.setdefault(row.run_id, []).append(row)
    return out


# -- shapes -----------------------------------------------------------------------------------


def job_fields(job: Any) -> dict[str, Any]:
    return {
        "id": job.id,
        **{name: getattr(job, name) for name in (*SPEC_FIELDS, *BOOKKEEPING_FIELDS)},
    }


def schedule_out(job: Any) -> Any:
    return ScheduleOut.model_validate(job_fields(job))


def schedule_type(job: Any) -> str:
    if job.cron_expression:
        return "cron"
    if job.interval_minutes:
        return "interval"
    if job.threshold:
        return "threshold"
    if job.event_triggers or job.command_triggers:
        return "event"
    return "manual"


async def repo_names(db: Database, jobs: Iterable[Any]) -> dict[int, str]:
    ids = sorted({job.repo_id for job in jobs if job.repo_id is not None})
    if not ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(Repository.id, Repository.full_name).where(Repository.id.in_(ids))
        )
        return {repo_id: name for repo_id, name in rows}


def task_out(job: Any, names: dict[int, str] | None = None) -> Any:
    threshold = job.threshold or {}
    alias_of = {ours: theirs for theirs, ours in METRIC_ALIASES.items()}
    metric = threshold.get("metric")
    return TaskOut.model_validate(
        {
            **job_fields(job),
            "enabled": job.status == "active",
            "schedule_type": schedule_type(job),
            "threshold_metric": alias_of.get(metric, metric),
            "threshold_value": threshold.get("value"),
            "threshold_operator": threshold.get("operator"),
            "webhook_ids": list(job.notifier_ids),
            "repo": (names or {}).get(job.repo_id),
        }
    )


def run_fields(run: Any, sessions: Iterable[Any] = ()) -> dict[str, Any]:
    names = (
        "id",
        "job_id",
        "repo_id",
        "status",
        "trigger_type",
        "attempt",
        "retry_of_id",
        "scheduled_for",
        "queued_at",
        "started_at",
        "completed_at",
        "duration_ms",
        "items_found",
        "items_processed",
        "items_skipped",
        "items_failed",
        "cost_usd",
        "error",
    )
    out = {name: getattr(run, name) for name in names}
    out["session_ids"] = [session.id for session in sessions]
    return out


def execution_fields(run: Any, sessions: Sequence[Any] = ()) -> dict[str, Any]:
    out = run_fields(run, sessions)
    out["task_id"] = out.pop("job_id")
    out["projects_processed"] = run.items_processed
    out["issues_found"] = run.items_found
    out["result"] = {
        "itemsFound": run.items_found,
        "itemsProcessed": run.items_processed,
        "sessions": len(sessions),
        "costUsd": run.cost_usd,
        "comments": [s.comment_url for s in sessions if s.comment_url],
    }
    return out
