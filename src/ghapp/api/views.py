"""The API's shapes of jobs and runs, and loading one within the caller's scope (the
reads themselves: :mod:`ghapp.reads`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from ghapp.api.auth import check_repo
from ghapp.api.errors import ApiError, invalid
from ghapp.api.schemas import METRIC_ALIASES, ScheduleOut, TaskOut
from ghapp.db import Database
from ghapp.db.models import Job, Repository, Run
from ghapp.jobs.service import SPEC_FIELDS
from ghapp.repo_hint import known_app_url, unknown_repository
from ghapp.tokens import Principal

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


# -- scope ------------------------------------------------------------------------------------


async def resolve_repo(db: Database, who: Principal, repo: str, where: str = "query") -> int:
    """A repository by id or ``owner/name`` (case-insensitive), among those ``who`` sees:
    another tenant's repository is as unknown as one that does not exist."""
    async with db.read() as conn:
        if repo.isascii() and repo.isdigit():
            found = await conn.scalar(
                select(col(Repository.id)).where(col(Repository.id) == int(repo))
            )
        else:
            found = await conn.scalar(
                select(col(Repository.id)).where(
                    func.lower(col(Repository.full_name)) == repo.lower()
                )
            )
    if found is None or not await who.sees(db, int(found)):
        async with db.read() as conn:
            app_url = await known_app_url(conn)
        raise invalid("repo", unknown_repository(repo, app_url), where)
    return int(found)


async def repo_exists(db: Database, repo_id: int) -> bool:
    async with db.read() as conn:
        return (
            await conn.scalar(select(col(Repository.id)).where(col(Repository.id) == repo_id))
            is not None
        )


async def load_job(db: Database, who: Principal, job_id: int) -> Job:
    async with db.read_session() as session:
        job = await session.get(Job, job_id)
    if job is None:
        raise ApiError(404, "no such job")
    await check_repo(who, db, job.repo_id, "no such job")
    return job


async def load_run(db: Database, who: Principal, run_id: int) -> Any:
    async with db.read() as conn:
        run = (await conn.execute(select(Run).where(col(Run.id) == run_id))).first()
    if run is None:
        raise ApiError(404, "no such run")
    await check_repo(who, db, run.repo_id, "no such run")
    return run


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
    if job.event_triggers or job.command_triggers or job.mention_trigger or job.assignment_trigger:
        return "event"
    return "manual"


def task_out(job: Any, names: dict[int, str] | None = None) -> Any:
    threshold = job.threshold or {}
    alias_of = {ours: theirs for theirs, ours in METRIC_ALIASES.items()}
    metric = threshold.get("metric")
    return TaskOut.model_validate(
        {
            **job_fields(job),
            "enabled": job.status == "active",
            "schedule_type": schedule_type(job),
            "threshold_metric": None if metric is None else alias_of.get(metric, metric),
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
