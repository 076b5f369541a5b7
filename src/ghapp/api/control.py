"""Scheduler status, start/stop, what runs next, and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from ghapp.access import ADMIN_ONLY
from ghapp.api.auth import require_admin
from ghapp.api.core import Api, Call
from ghapp.api.schemas import (
    AuditOut,
    AuditPage,
    AuditQuery,
    SchedulerStatus,
    UpcomingOut,
    UpcomingPage,
    UpcomingQuery,
)
from ghapp.db.audit import audit_insert
from ghapp.db.models import AuditEntry, Job
from ghapp.reads import keyset_page, scheduler_figures, scoped
from ghapp.scheduler.loop import set_stopped
from ghapp.scheduler.upcoming import upcoming

api = Api()


@api.route(
    "GET",
    "/api/scheduler/status",
    summary="Scheduler state, counts and next runs",
    tag="scheduler",
    response=SchedulerStatus,
)
async def scheduler_status(call: Call) -> Any:
    now = call.state.clock.now()
    figures = await scheduler_figures(call.state.db, call.principal, now)
    stopped = await call.state.scheduler.is_stopped()
    return SchedulerStatus.model_validate(
        {
            "running": not stopped,
            "state": "stopped" if stopped else "running",
            "next_wake_at": None if stopped else figures.next_run_at,
            "active_tasks": figures.active_jobs,
            "paused_tasks": figures.paused_jobs,
            "queued_executions": figures.queued,
            "running_executions": figures.running,
            "today": {
                "runs": figures.runs_today,
                "successful": figures.completed_today,
                "failed": figures.failed_today,
                "cost_usd": figures.cost_today,
            },
            "next_runs": (await _upcoming(call, 24))[:5],
        }
    )


@api.route(
    "POST",
    "/api/scheduler/start",
    summary="Start firing schedules (every replica)",
    tag="scheduler",
    response=SchedulerStatus,
)
async def scheduler_start(call: Call) -> Any:
    return await _set(call, stopped=False)


@api.route(
    "POST",
    "/api/scheduler/stop",
    summary="Stop firing schedules (every replica)",
    tag="scheduler",
    response=SchedulerStatus,
)
async def scheduler_stop(call: Call) -> Any:
    return await _set(call, stopped=True)


async def _set(call: Call, stopped: bool) -> Any:
    require_admin(call.principal, ADMIN_ONLY["scheduler"])
    now = call.state.clock.now()
    before = await call.state.scheduler.is_stopped()
    await set_stopped(call.state.db, stopped, now)
    async with call.state.db.write() as conn:
        action = "scheduler.stop" if stopped else "scheduler.start"
        await conn.execute(
            audit_insert(
                call.actor,
                action,
                "scheduler",
                None,
                now,
                before={"stopped": before},
                after={"stopped": stopped},
            )
        )
    call.state.signals.scheduler_wake.set()
    return await scheduler_status(call)


@api.route(
    "GET",
    "/api/scheduler/upcoming",
    summary="What fires in the next hours",
    tag="scheduler",
    query=UpcomingQuery,
    response=UpcomingPage,
)
async def scheduler_upcoming(call: Call) -> Any:
    hours = call.query.hours
    return UpcomingPage(hours=hours, upcoming=await _upcoming(call, hours))


async def _upcoming(call: Call, hours: float) -> list[UpcomingOut]:
    items = await upcoming(call.state.db, call.state.clock.now(), hours, limit=1000)
    if not call.principal.is_admin:
        async with call.state.db.read() as conn:
            query = await scoped(
                select(col(Job.id)), col(Job.repo_id), call.principal, call.state.db
            )
            visible = {row[0] for row in await conn.execute(query)}
        items = [item for item in items if item.job_id in visible]
    return [UpcomingOut(task_id=i.job_id, name=i.name, at=i.at, kind=i.kind) for i in items]


@api.route(
    "GET",
    "/api/scheduler/audit",
    summary="Who changed or ran what, newest first",
    tag="audit",
    query=AuditQuery,
    response=AuditPage,
)
async def audit_log(call: Call) -> Any:
    q = call.query
    query = select(AuditEntry)
    if not call.principal.is_admin:
        query = await scoped(query, col(AuditEntry.repo_id), call.principal, call.state.db)
    for column, value in (
        (col(AuditEntry.object_type), q.object_type),
        (col(AuditEntry.object_id), q.object_id),
        (col(AuditEntry.action), q.action),
        (col(AuditEntry.actor), q.actor),
    ):
        if value is not None:
            query = query.where(column == value)
    rows, cursor = await keyset_page(call.state.db, query, col(AuditEntry.id), q.limit, q.cursor)
    entries = [AuditOut.model_validate(row) for row in rows]
    return AuditPage(entries=entries, next_cursor=cursor)
