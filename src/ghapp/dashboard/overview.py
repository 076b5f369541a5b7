"""``GET /``: the scheduler, today's counts and every job the token may see, by repository.

Built to stay fast with a thousand jobs and a hundred thousand runs: only the columns a
row shows are read, today's runs are found by walking the newest ids back (the runs table
has no index on ``queued_at``; ids grow with queue time), cron descriptions are cached,
and each row is worked out here so the template only reads plain values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.responses import Response

from ghapp.dashboard.core import Ctx
from ghapp.dashboard.describe import (
    describe_target,
    describe_trigger,
    is_manual,
    moment,
    status_class,
    zoned,
)
from ghapp.dashboard.events import fingerprint
from ghapp.dashboard.history import (
    OVERVIEW_CELLS,
    aware,
    overdue_runs,
    recent_runs,
    strip_markup,
)
from ghapp.db.models import Job
from ghapp.reads import repo_names, scheduler_figures, scoped

ROW_COLUMNS = (
    col(Job.id),
    col(Job.name),
    col(Job.status),
    col(Job.source),
    col(Job.repo_id),
    col(Job.installation_id),
    col(Job.repo_selection),
    col(Job.cron_expression),
    col(Job.timezone),
    col(Job.interval_minutes),
    col(Job.threshold),
    col(Job.event_triggers),
    col(Job.command_triggers),
    col(Job.mention_trigger),
    col(Job.assignment_trigger),
    col(Job.after_job_id),
    col(Job.after_only_on_success),
    col(Job.target_type),
    col(Job.filter_query),
    col(Job.command_id),
    col(Job.runner),
    col(Job.shell_command),
    col(Job.next_run_at),
)


async def overview(ctx: Ctx) -> Response:
    fragment = bool(ctx.request.query_params.get("fragment"))
    # Before reading: a change after it is sent to the page.
    since = None if fragment else await fingerprint(ctx)
    values: dict[str, Any] = {
        "status": await scheduler_status(ctx),
        "groups": await job_groups(ctx),
        "overdue": await overdue_runs(ctx.state.db, ctx.principal, ctx.now),
    }
    if fragment:
        return ctx.render("overview_live.html", **values)
    return ctx.render("overview.html", live_url="/?fragment=live", since=since, **values)


async def scheduler_status(ctx: Ctx) -> dict[str, Any]:
    """The figures of ``GET /api/scheduler/status``, within the token's scope."""
    figures = await scheduler_figures(ctx.state.db, ctx.principal, ctx.now)
    stopped = await ctx.state.scheduler.is_stopped()
    return {
        "running": not stopped,
        "next_wake_at": None if stopped else moment(figures.next_run_at, ctx.now),
        "active": figures.active_jobs,
        "queued": figures.queued,
        "running_runs": figures.running,
        "runs": figures.runs_today,
        "ok": figures.completed_today,
        "failed": figures.failed_today,
        "cost": figures.cost_today,
    }


async def job_groups(ctx: Ctx) -> list[dict[str, Any]]:
    db = ctx.state.db
    query = await scoped(select(*ROW_COLUMNS), col(Job.repo_id), ctx.principal, db)
    async with db.read() as conn:
        jobs = list(await conn.execute(query.order_by(col(Job.name), col(Job.id))))
    if not jobs:
        return []
    names = await repo_names(db, jobs)
    # An admin sees every job: no list of ids to send (a thousand of them).
    ids = None if ctx.principal.is_admin else [job.id for job in jobs]
    recent = await recent_runs(db, ids, OVERVIEW_CELLS)
    groups: dict[str, list[dict[str, Any]]] = {}
    now = ctx.now
    for job in jobs:
        if job.repo_id is not None:
            label = names.get(job.repo_id, f"repository {job.repo_id}")
        elif job.repo_selection == "list":
            label = f"installation {job.installation_id} (some repositories)"
        else:
            label = f"installation {job.installation_id} (all repositories)"
        # Everything a row shows is worked out here, as plain values the template reads by
        # key: macro calls and attribute lookups in the sandbox cost more than the rest of
        # the page on an overview of a thousand jobs.
        runs = recent.get(job.id, [])
        run = runs[0] if runs else None
        groups.setdefault(label, []).append(
            {
                "id": job.id,
                "name": job.name,
                "status": job.status,
                "status_class": status_class(job.status),
                "config": job.source == "config",
                "trigger": describe_trigger(job),
                "target": describe_target(job),
                "last_id": run.id if run else None,
                "last_status": run.status.replace("_", " ") if run else "",
                "last_class": status_class(run.status) if run else "",
                "last_at": moment(aware(run.at), now) if run else None,
                "strip": strip_markup(runs),
                "next_at": moment(job.next_run_at, now),
                "next_local": zoned(job.next_run_at, job.timezone) if job.next_run_at else "",
                "manual": is_manual(job),
            }
        )
    return [{"label": label, "jobs": groups[label]} for label in sorted(groups, key=str.lower)]
