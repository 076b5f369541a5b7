"""Creating, editing, running, pausing, resuming and deleting jobs from the dashboard.

Everything goes through :class:`~ghapp.jobs.service.JobService`, as the API does: the same
validation, audit entries (actor ``token:NAME``) and scheduler wake-ups.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col
from starlette.responses import Response

from ghapp.dashboard.core import Ctx, PageError, safe_next
from ghapp.dashboard.cron import cron_preview
from ghapp.dashboard.forms import (
    LABELS,
    PRESETS,
    TARGET_TYPES,
    TASK_TYPES,
    advanced_changed,
    advanced_open,
    blank_values,
    field_errors,
    form_field,
    form_values,
    job_values,
    labelled,
    spec_data,
)
from ghapp.db.models import Installation, Job, Repository, saved_id
from ghapp.jobs.service import JobError
from ghapp.jobs.spec import PERMISSION_MODES
from ghapp.notify.spec import EVENTS
from ghapp.reads import scoped
from ghapp.repo_hint import known_app_url

log = logging.getLogger("ghapp.dashboard")
CATALOG_TIMEOUT_S = 3.0
READ_ONLY = "This job comes from .github/ghapp.yml in its repository: change it there."


@cache
def timezones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


async def new_job(ctx: Ctx) -> Response:
    values = blank_values()
    repo = ctx.request.query_params.get("repo", "")
    if repo.isdigit():
        values["repo_id"] = repo
    return await _form(ctx, values, {}, job=None, fresh=True)


async def create_job(ctx: Ctx) -> Response:
    values = form_values(ctx.form)
    data, errors = spec_data(values, admin=ctx.principal.is_admin)
    if data.get("repo_id") is not None:
        await ctx.check_repo(data["repo_id"])  # out of scope: 404 before anything else
    if not errors:
        try:
            job = await ctx.state.jobs.create(data, actor=ctx.actor, scope=await ctx.scope())
        except ValidationError as exc:
            errors = field_errors(exc)
        except JobError as exc:
            errors = {form_field(exc.field, exc.reason): exc.reason}
        else:
            return ctx.done(f"Created the job “{job.name}”.", f"/jobs/{job.id}")
    return await _form(ctx, values, errors, job=None, status=422)


async def edit_job(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    if job.source == "config":
        raise PageError(409, READ_ONLY)
    return await _form(ctx, job_values(job), {}, job=job)


async def update_job(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    if job.source == "config":
        raise PageError(409, READ_ONLY)
    values = form_values(ctx.form)
    data, errors = spec_data(values, admin=ctx.principal.is_admin)
    if data.get("repo_id") is not None and data["repo_id"] != job.repo_id:
        await ctx.check_repo(data["repo_id"])
    # Notifiers this token cannot see stay on the job.
    visible = {row.id for row in await visible_notifiers(ctx)}
    data["notifier_ids"] = [
        *data["notifier_ids"],
        *(notifier_id for notifier_id in job.notifier_ids if notifier_id not in visible),
    ]
    if data.get("installation_id") is None and data["repo_selection"] == "one":
        data.pop("installation_id", None)  # kept as it was
    if not errors:
        try:
            job = await ctx.state.jobs.update(
                saved_id(job), data, actor=ctx.actor, scope=await ctx.scope()
            )
        except ValidationError as exc:
            errors = field_errors(exc)
        except JobError as exc:
            errors = {form_field(exc.field, exc.reason): exc.reason}
        else:
            return ctx.done(f"Saved the job “{job.name}”.", f"/jobs/{job.id}")
    return await _form(ctx, values, errors, job=job, status=422)


async def run_job(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    run_id = await ctx.state.jobs.run_now(saved_id(job), actor=ctx.actor)
    return ctx.done(f"Queued run {run_id} of “{job.name}”.", f"/runs/{run_id}", run_id=run_id)


async def pause_job(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    job = await ctx.state.jobs.pause(saved_id(job), actor=ctx.actor)
    return ctx.done(f"Paused “{job.name}”.", safe_next(ctx.form.get("next")))


async def resume_job(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    job = await ctx.state.jobs.resume(saved_id(job), actor=ctx.actor)
    return ctx.done(f"Resumed “{job.name}”.", safe_next(ctx.form.get("next")))


async def confirm_delete(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    if job.source == "config":
        raise PageError(409, READ_ONLY)
    return ctx.render("delete_job.html", job=job)


async def delete_job(ctx: Ctx) -> Response:
    job = await scoped_job(ctx)
    if job.source == "config":
        raise PageError(409, READ_ONLY)
    await ctx.state.jobs.delete(saved_id(job), actor=ctx.actor)
    return ctx.done(f"Deleted the job “{job.name}”.", "/")


async def scoped_job(ctx: Ctx) -> Job:
    job = await ctx.state.jobs.get(ctx.int_param("job_id"))
    await ctx.check_repo(job.repo_id)
    return job


async def _form(
    ctx: Ctx,
    values: dict[str, Any],
    errors: dict[str, str],
    job: Job | None,
    status: int = 200,
    fresh: bool = False,
) -> Response:
    db = ctx.state.db
    repos_query = await scoped(
        select(col(Repository.id), col(Repository.full_name), col(Repository.installation_id)),
        col(Repository.id),
        ctx.principal,
        db,
    )
    jobs_query = await scoped(
        select(col(Job.id), col(Job.name)), col(Job.repo_id), ctx.principal, db
    )
    async with db.read() as conn:
        repos = list(await conn.execute(repos_query.order_by(col(Repository.full_name))))
        jobs = [
            row
            for row in await conn.execute(jobs_query.order_by(col(Job.name)))
            if job is None or row.id != job.id
        ]
        installations = (
            list(
                await conn.execute(
                    select(col(Installation.id), col(Installation.account_login)).order_by(
                        col(Installation.account_login)
                    )
                )
            )
            if ctx.principal.is_admin
            else []
        )
        app_url = None if repos else await known_app_url(conn)
    if fresh and not values["repo_id"] and len(repos) == 1:
        values["repo_id"] = str(repos[0].id)  # the only choice
    commands: dict[str, list[tuple[str, str]]] = {}
    for command_id, targets, label in await _commands(ctx, values, repos):
        for target in sorted(targets) or ["any"]:
            commands.setdefault(target, []).append((command_id, label))
    metrics = sorted(ctx.state.jobs.metrics)
    return ctx.render(
        "job_form.html",
        code=status,
        job=job,
        fresh=fresh,
        values=values,
        errors=labelled(errors),
        labels=LABELS,
        advanced_open=advanced_open(errors),
        advanced_changed=advanced_changed(values),
        repos=repos,
        app_url=app_url,
        installations=installations,
        other_jobs=jobs,
        notifiers=await visible_notifiers(ctx),
        commands=commands,
        metrics=metrics,
        presets=PRESETS,
        preview=cron_preview(values["cron_expression"], values["timezone"], ctx.now),
        task_types=_with_current(TASK_TYPES, values["task_type"]),
        target_types=TARGET_TYPES,
        permission_modes=sorted(PERMISSION_MODES),
        timezones=timezones(),
        notifier_events=EVENTS,
    )


async def _commands(
    ctx: Ctx, values: dict[str, Any], repos: list[Any]
) -> list[tuple[str, frozenset[str], str]]:
    """Built-in commands, then the chosen repository's own (``.claude/commands``), by id."""
    builtins = ctx.state.jobs.commands
    listed = [(command_id, targets, command_id) for command_id, targets in builtins.items()]
    own: dict[str, frozenset[str]] = {}
    repo_id = values["repo_id"]
    catalogs = getattr(ctx.state, "commands", None)
    visible = {str(repo.id) for repo in repos}
    if catalogs is not None and values["repo_selection"] == "one" and repo_id in visible:
        try:  # read through the GitHub API (cached a minute); without it, the built-ins
            async with asyncio.timeout(CATALOG_TIMEOUT_S):
                catalog = await catalogs.of(int(repo_id))
            own = {
                cid: targets for cid, targets in catalog.targets().items() if cid not in builtins
            }
        except Exception:  # GitHub unreachable or not configured
            log.info("no command catalog for repository %s", repo_id)
    current = values["command_id"]
    if current and current not in builtins and current not in own:
        own[current] = frozenset()  # the job's own choice stays choosable
    listed += [
        (command_id, targets, f"{command_id} (repository)") for command_id, targets in own.items()
    ]
    return sorted(listed)


def _with_current(options: tuple[tuple[str, str], ...], current: str) -> list[tuple[str, str]]:
    known = list(options)
    if current and current not in {value for value, _ in known}:
        known.append((current, current))
    return known


async def visible_notifiers(ctx: Ctx) -> list[Any]:
    rows = await ctx.state.notifiers.list()
    if ctx.principal.is_admin:
        return rows
    allowed = await ctx.principal.repo_ids(ctx.state.db)
    return [row for row in rows if row.repo_ids and set(row.repo_ids) <= allowed]
