"""``GET /jobs/{id}``: one job — what it does in words, its triggers and next times, what it
runs with which session settings, its notifiers, its recent runs as a strip and trends, and
its actions. Another tenant's job is not found, like one that does not exist."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from starlette.responses import Response

from ghapp.dashboard.core import Ctx
from ghapp.dashboard.describe import (
    cron_words,
    describe_job,
    describe_threshold,
    every,
    is_manual,
    moment,
    next_times,
    status_class,
)
from ghapp.dashboard.events import fingerprint
from ghapp.dashboard.history import (
    JOB_PAGE_CELLS,
    PAGE_COLUMNS,
    aware,
    overdue_runs,
    recent_runs,
    strip,
    trend,
)
from ghapp.dashboard.jobs import scoped_job, visible_notifiers
from ghapp.db.models import Installation, Job, Repository

LISTED_RUNS = 10  # the runs listed under the strip; the rest are on /runs?job=
REPORT_WORDS = {
    "comment": "a comment on the issue or pull request",
    "issue": "a new issue",
    "none": "nothing on GitHub",
}


async def job_page(ctx: Ctx) -> Response:
    fragment = bool(ctx.request.query_params.get("fragment"))
    since = None if fragment else await fingerprint(ctx)
    job = await scoped_job(ctx)
    values = await _values(ctx, job)
    if fragment:
        return ctx.render("job_live.html", **values)
    live_url = f"/jobs/{job.id}?fragment=live"
    return ctx.render("job.html", live_url=live_url, since=since, **values)


async def _values(ctx: Ctx, job: Job) -> dict[str, Any]:
    assert job.id is not None
    now = ctx.now
    recent = await recent_runs(ctx.state.db, [job.id], JOB_PAGE_CELLS, PAGE_COLUMNS)
    runs = recent.get(job.id, [])
    where = await _where(ctx, job)
    return {
        "job": job,
        "where": where,
        "sentence": describe_job(job, where),
        "status_class": status_class(job.status),
        "manual": is_manual(job),
        "triggers": _triggers(job),
        "upcoming": next_times(job, now) if job.status == "active" else [],
        "next_at": moment(job.next_run_at, now),
        "after": await _after(ctx, job),
        "notifiers": [n for n in await visible_notifiers(ctx) if n.id in job.notifier_ids],
        "cells": strip(runs, now),
        "recent": [{**row._mapping, "at": aware(row.at)} for row in runs[:LISTED_RUNS]],
        "cost": trend(runs, "cost_usd"),
        "durations": trend(runs, "duration_ms"),
        "overdue": await overdue_runs(ctx.state.db, ctx.principal, now, job_id=job.id),
        "report": REPORT_WORDS.get(job.report, job.report),
        "pr_checks": job.checks and _on_pull_requests(job),
        "task_config": json.dumps(job.task_config, indent=2) if job.task_config else "",
        "output_schema": _pretty(job.output_schema),
        "structured_actions": _pretty(job.structured_actions),
    }


def _pretty(value: dict[str, Any] | None) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) if value else ""


def _triggers(job: Job) -> list[tuple[str, str]]:
    """(kind, words) for each way the job starts."""
    out: list[tuple[str, str]] = []
    if job.cron_expression:
        out.append(("Schedule", f"{cron_words(job.cron_expression)} ({job.timezone})"))
    elif job.interval_minutes:
        out.append(("Schedule", every(job.interval_minutes).capitalize()))
    elif job.threshold:
        out.append(("Threshold", describe_threshold(job.threshold)))
    for trigger in job.event_triggers or []:
        event = str(trigger.get("event", "?"))
        extra = {k: v for k, v in trigger.items() if k != "event" and v not in (None, "", [])}
        words = event + (f" ({json.dumps(extra, ensure_ascii=False)})" if extra else "")
        out.append(("GitHub event", words))
    for command in job.command_triggers or []:
        out.append(("Command", str(command)))
    return out


def _on_pull_requests(job: Job) -> bool:
    events = [str(trigger.get("event", "")) for trigger in job.event_triggers or []]
    return job.target_type == "prs" or any(e.startswith("pull_request") for e in events)


async def _where(ctx: Ctx, job: Job) -> str:
    """The repository, or the installation's repositories, in words."""
    async with ctx.state.db.read() as conn:
        if job.repo_id is not None:
            name = await conn.scalar(
                select(col(Repository.full_name)).where(col(Repository.id) == job.repo_id)
            )
            return str(name or f"repository {job.repo_id}")
        login = await conn.scalar(
            select(col(Installation.account_login)).where(
                col(Installation.id) == job.installation_id
            )
        )
    account = login or f"installation {job.installation_id}"
    if job.repo_selection == "list":
        return f"{len(job.repo_ids)} chosen repositories of {account}"
    return f"every repository of {account}"


async def _after(ctx: Ctx, job: Job) -> dict[str, Any] | None:
    """The job this one follows, if the token may see it."""
    if not job.after_job_id:
        return None
    async with ctx.state.db.read() as conn:
        row = (
            await conn.execute(
                select(col(Job.id), col(Job.name), col(Job.repo_id)).where(
                    col(Job.id) == job.after_job_id
                )
            )
        ).first()
    if row is None or not await ctx.principal.sees(ctx.state.db, row.repo_id):
        return {"id": None, "name": f"job {job.after_job_id}"}
    return {"id": row.id, "name": row.name}
