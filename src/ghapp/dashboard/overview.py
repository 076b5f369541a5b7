"""``GET /``: the scheduler, today's counts and every job the token may see, by repository.

Built to stay fast with a thousand jobs and a hundred thousand runs: only the columns a
row shows are read, today's runs are found by walking the newest ids back (the runs table
has no index on ``queued_at``; ids grow with queue time), cron descriptions are cached,
and each row is worked out here so the template only reads plain values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response

from ghapp.dashboard.core import Ctx
from ghapp.dashboard.describe import (
    describe_target,
    describe_trigger,
    moment,
    status_class,
)
from ghapp.dashboard.events import fingerprint
from ghapp.db.models import Job, Run
from ghapp.reads import repo_names, scheduler_figures, scoped

ROW_COLUMNS = (
    Job.id,
    Job.name,
    Job.status,
    Job.source,
    Job.repo_id,
    Job.installation_id,
    Job.repo_selection,
    Job.cron_expression,
    Job.timezone,
    Job.interval_minutes,
    Job.threshold,
    Job.event_triggers,
    Job.command_triggers,
    Job.after_job_id,
    Job.after_only_on_success,
    Job.target_type,
    Job.filter_query,
    Job.command_id,
    Job.runner,
    Job.shell_command,
    Job.next_run_at,
)


async def overview(ctx: Ctx) -> Response:
    if ctx.request.query_params.get("fragment"):
        values = {"status": await scheduler_status(ctx), "groups": await job_groups(ctx)}
        return ctx.render("overview_live.html", **values)
    since = await fingerprint(ctx)  # before reading: a change after it is sent to the page
    values = {"status": await scheduler_status(ctx), "groups": await job_groups(ctx)}
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
    query = await scoped(select(*ROW_COLUMNS), Job.repo_id, ctx.principal, db)
    async with db.read() as conn:
        jobs = list(await conn.execute(query.order_by(Job.name, Job.id)))
    if not jobs:
        return []
    names = await repo_names(db, jobs)
    last = await latest_runs(ctx, [job.id for job in jobs])
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
        run = last.get(job.id)
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
                "last_at": moment(run.completed_at or run.started_at or run.queued_at, now)
                if run
                else None,
                "next_at": moment(job.next_run_at, now),
            }
        )
    return [{"label": label, "jobs": groups[label]} for label in sorted(groups, key=str.lower)]


async def latest_runs(ctx: Ctx, job_ids: list[int]) -> dict[int, Any]:
    """Each job's newest run."""
    newest = select(func.max(Run.id)).group_by(Run.job_id)
    if not ctx.principal.is_admin:
        newest = newest.where(Run.job_id.in_(job_ids))
    query = select(
        Run.id, Run.job_id, Run.status, Run.queued_at, Run.started_at, Run.completed_at
    ).where(Run.id.in_(newest.scalar_subquery()))
    async with ctx.state.db.read() as conn:
        return {row.job_id: row for row in await conn.execute(query)}
