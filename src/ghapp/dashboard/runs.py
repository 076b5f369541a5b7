"""``/runs``: run history (filters, cursor pages) and a run with its sessions."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.responses import Response

from ghapp.api.errors import ApiError
from ghapp.dashboard.core import Ctx, PageError, safe_next
from ghapp.dashboard.events import fingerprint
from ghapp.dashboard.history import overdue_text
from ghapp.db.models import Job, Run, RunStatus
from ghapp.reads import keyset_page, repo_names, scoped, sessions_of
from ghapp.runqueue.manage import RunConflict
from ghapp.structured import ordered

PAGE_SIZE = 50
# Why a run's items were skipped: the only reason an item found is left out is that this job
# finished it recently (ghapp.worker.prepare.RECENT, 7 days; a test holds the two together).
# A skipped run or session keeps its own reason in ``error`` (concurrency, paths filter,
# trust refusal, budget), which the pages show as "Skipped: …".
ITEMS_SKIPPED_REASON = "already done by this job in the last 7 days"
STATUSES = tuple(status.value for status in RunStatus)


async def run_list(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    db = ctx.state.db
    since = None if params.get("fragment") else await fingerprint(ctx)
    job_filter = params.get("job", "")
    status = params.get("status", "")
    query = await scoped(select(Run), col(Run.repo_id), ctx.principal, db)
    job = None
    if job_filter:
        if not job_filter.isdigit() or int(job_filter) > 2**31 - 1:
            raise PageError(404, "No such job.")
        job = await ctx.state.jobs.get(int(job_filter))
        await ctx.check_repo(job.repo_id)
        query = query.where(col(Run.job_id) == job.id)
    if status:
        if status not in STATUSES:
            raise PageError(404, f"No such status {status!r}.")
        query = query.where(col(Run.status) == status)
    try:
        runs, cursor = await keyset_page(db, query, col(Run.id), PAGE_SIZE, params.get("cursor"))
    except ApiError:
        raise PageError(404, "That page does not exist (a cursor from an old link?).") from None
    jobs_query = await scoped(
        select(col(Job.id), col(Job.name)), col(Job.repo_id), ctx.principal, db
    )
    async with db.read() as conn:
        jobs = list(await conn.execute(jobs_query.order_by(col(Job.name))))
    names = {row.id: row.name for row in jobs}
    repos = await repo_names(db, runs)
    older = None
    if cursor:
        keep = [(k, v) for k, v in (("job", job_filter), ("status", status)) if v]
        older = "/runs?" + "&".join(f"{k}={v}" for k, v in [*keep, ("cursor", cursor)])
    values: dict[str, Any] = {
        "runs": runs,
        "job_names": names,
        "repos": repos,
        "jobs": jobs,
        "job": job,
        "job_filter": job_filter,
        "status": status,
        "statuses": STATUSES,
        "older": older,
        "items_skipped_reason": ITEMS_SKIPPED_REASON,
    }
    if params.get("fragment"):
        return ctx.render("runs_live.html", **values)
    live_url = None
    if not params.get("cursor"):  # older pages do not change
        live_url = ctx.here + ("&" if "?" in ctx.here else "?") + "fragment=list"
    return ctx.render("runs.html", live_url=live_url, since=since, **values)


async def run_detail(ctx: Ctx) -> Response:
    fragment = bool(ctx.request.query_params.get("fragment"))
    since = None if fragment else await fingerprint(ctx)
    run = await _run(ctx)
    sessions = (await sessions_of(ctx.state.db, [run.id])).get(run.id, [])
    async with ctx.state.db.read() as conn:
        job = (
            await conn.execute(
                select(
                    col(Job.id),
                    col(Job.name),
                    col(Job.source),
                    col(Job.timeout_seconds),
                    col(Job.command_id),
                ).where(col(Job.id) == run.job_id)
            )
        ).first()
    repos = await repo_names(ctx.state.db, [run])
    values: dict[str, Any] = {
        "run": run,
        "job": job,
        "repo": repos.get(run.repo_id) if run.repo_id else None,
        "sessions": sessions,
        "structured": pretty_results(sessions, job.command_id if job else None),
        "unfinished": run.status in ("queued", "running"),
        "overdue": overdue_text(run, job, ctx.now),
        "items_skipped_reason": ITEMS_SKIPPED_REASON,
    }
    if fragment:
        return ctx.render("run_live.html", **values)
    return ctx.render("run.html", live_url=f"/runs/{run.id}?fragment=detail", since=since, **values)


def pretty_results(sessions: list[Any], command_id: str | None) -> dict[int, str]:
    """Session id → its structured result as indented JSON text, in its schema's order (the
    template escapes it: the model wrote it after reading strangers' text)."""
    return {
        session.id: json.dumps(
            ordered(session.structured_result, command_id), indent=2, ensure_ascii=False
        )
        for session in sessions
        if session.structured_result is not None
    }


async def retry_run(ctx: Ctx) -> Response:
    run = await _run(ctx)
    try:
        new_id = await ctx.state.jobs.retry(run.id, actor=ctx.actor)
    except RunConflict as exc:
        raise PageError(409, str(exc)) from None
    return ctx.done(
        f"Queued run {new_id}, a retry of run {run.id}.", f"/runs/{new_id}", run_id=new_id
    )


async def cancel_run(ctx: Ctx) -> Response:
    run = await _run(ctx)
    try:
        status = await ctx.state.jobs.cancel(run.id, actor=ctx.actor)
    except RunConflict as exc:
        raise PageError(409, str(exc)) from None
    words = "cancelled" if status == "cancelled" else "asked to stop"
    return ctx.done(f"Run {run.id} {words}.", safe_next(ctx.form.get("next"), f"/runs/{run.id}"))


async def _run(ctx: Ctx) -> Any:
    run_id = ctx.int_param("run_id")
    async with ctx.state.db.read() as conn:
        run = (await conn.execute(select(Run).where(col(Run.id) == run_id))).first()
    if run is None:
        raise PageError(404, "No such run.")
    await ctx.check_repo(run.repo_id)
    return run
