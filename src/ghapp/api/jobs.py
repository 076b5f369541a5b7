"""Jobs through both route sets: ``/api/repos/{repo_id}/schedules`` and ``/api/scheduler/tasks``.

Both sets go through :class:`~ghapp.jobs.service.JobService`, so a job created through one is
seen and edited through the other, with the same validation and audit trail.
"""

from __future__ import annotations

from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import func, select
from sqlmodel import col

from ghapp.api.auth import check_repo
from ghapp.api.core import Api, Call
from ghapp.api.errors import ApiError, camel_field, invalid
from ghapp.api.schemas import (
    METRIC_ALIASES,
    CommandOut,
    CommandsPage,
    CommandsQuery,
    ExecutionStarted,
    Queued,
    RunRequest,
    RunsPage,
    RunsQuery,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    TaskCreate,
    TaskOut,
    TasksPage,
    TasksQuery,
    TaskUpdate,
)
from ghapp.api.views import load_job, repo_exists, resolve_repo, run_fields, schedule_out, task_out
from ghapp.db.models import Job, Run, TriggerType, saved_id
from ghapp.jobs.spec import JobSpec
from ghapp.reads import decode_cursor, encode_cursor, keyset_page, repo_names, scoped, sessions_of

api = Api()
tasks = Api(field_names=camel_field)
SCHEDULES = "/api/repos/{repo_id}/schedules"
ONE_SCHEDULE = SCHEDULES + "/{job_id}"
TASKS = "/api/scheduler/tasks"
ONE_TASK = TASKS + "/{task_id}"
READ_ONLY = "this job comes from .github/ghapp.yml: change it there"


# -- the repository routes ----------------------------------------------------------------------


async def _repo(call: Call) -> int:
    repo_id = call.path["repo_id"]
    missing = "no such repository (is the app installed on it?)"
    await check_repo(call.principal, call.state.db, repo_id, missing)
    if not await repo_exists(call.state.db, repo_id):
        raise ApiError(404, missing)
    return repo_id


async def _schedule(call: Call) -> Job:
    repo_id = await _repo(call)
    job = await load_job(call.state.db, call.principal, call.path["job_id"])
    if job.repo_id != repo_id:
        raise ApiError(404, "no such job in this repository")
    return job


def _writable(job: Job) -> None:
    if job.source == "config":
        raise ApiError(409, READ_ONLY)


@api.route(
    "GET",
    SCHEDULES,
    summary="List a repository's jobs",
    tag="schedules",
    response=list[ScheduleOut],
    errors=(404,),
)
async def list_schedules(call: Call) -> list[Any]:
    repo_id = await _repo(call)
    async with call.state.db.read() as conn:
        rows = await conn.execute(
            select(Job).where(col(Job.repo_id) == repo_id).order_by(col(Job.id))
        )
        return [schedule_out(row) for row in rows]


@api.route(
    "POST",
    SCHEDULES,
    summary="Create a job on a repository",
    tag="schedules",
    body=ScheduleCreate,
    response=ScheduleOut,
    status=201,
    errors=(400, 404),
)
async def create_schedule(call: Call) -> Any:
    repo_id = await _repo(call)
    data = {**call.body.model_dump(exclude_unset=True), "repo_id": repo_id}
    return schedule_out(
        await call.state.jobs.create(data, actor=call.actor, scope=await call.scope())
    )


@api.route(
    "GET", ONE_SCHEDULE, summary="Get a job", tag="schedules", response=ScheduleOut, errors=(404,)
)
async def get_schedule(call: Call) -> Any:
    return schedule_out(await _schedule(call))


@api.route(
    "PATCH",
    ONE_SCHEDULE,
    summary="Change a job",
    tag="schedules",
    body=ScheduleUpdate,
    response=ScheduleOut,
    errors=(400, 404, 409),
)
async def update_schedule(call: Call) -> Any:
    job = await _schedule(call)
    _writable(job)
    changes = call.body.model_dump(exclude_unset=True)
    return schedule_out(
        await call.state.jobs.update(
            saved_id(job), changes, actor=call.actor, scope=await call.scope()
        )
    )


@api.route(
    "DELETE",
    ONE_SCHEDULE,
    summary="Delete a job (its queued runs are cancelled)",
    tag="schedules",
    status=204,
    errors=(404, 409),
)
async def delete_schedule(call: Call) -> None:
    job = await _schedule(call)
    _writable(job)
    await call.state.jobs.delete(saved_id(job), actor=call.actor)


@api.route(
    "POST",
    ONE_SCHEDULE + "/run",
    summary="Run a job now",
    tag="schedules",
    response=Queued,
    status=202,
    errors=(404,),
)
async def run_schedule(call: Call) -> Any:
    job = await _schedule(call)
    run_id = await call.state.jobs.run_now(saved_id(job), actor=call.actor)
    return Queued(run_id=run_id)


@api.route(
    "POST",
    ONE_SCHEDULE + "/pause",
    summary="Pause a job",
    tag="schedules",
    response=ScheduleOut,
    errors=(404,),
)
async def pause_schedule(call: Call) -> Any:
    job = await _schedule(call)
    return schedule_out(await call.state.jobs.pause(saved_id(job), actor=call.actor))


@api.route(
    "POST",
    ONE_SCHEDULE + "/resume",
    summary="Resume a paused job",
    tag="schedules",
    response=ScheduleOut,
    errors=(404,),
)
async def resume_schedule(call: Call) -> Any:
    job = await _schedule(call)
    return schedule_out(await call.state.jobs.resume(saved_id(job), actor=call.actor))


@api.route(
    "GET",
    ONE_SCHEDULE + "/runs",
    summary="A job's runs, newest first",
    tag="schedules",
    query=RunsQuery,
    response=RunsPage,
    errors=(404,),
)
async def list_schedule_runs(call: Call) -> Any:
    job = await _schedule(call)
    query = select(Run).where(col(Run.job_id) == job.id)
    if call.query.status:
        query = query.where(col(Run.status) == call.query.status)
    rows, cursor = await keyset_page(
        call.state.db, query, col(Run.id), call.query.limit, call.query.cursor
    )
    sessions = await sessions_of(call.state.db, [row.id for row in rows])
    runs = [run_fields(row, sessions.get(row.id, ())) for row in rows]
    return RunsPage.model_validate({"runs": runs, "next_cursor": cursor})


@api.route(
    "GET",
    "/api/repos/{repo_id}/commands",
    summary="Commands for this repository's "
    "jobs: built-ins and its .claude/commands, by target type",
    tag="schedules",
    query=CommandsQuery,
    response=CommandsPage,
    errors=(404, 502),
)
async def list_commands(call: Call) -> Any:
    repo_id = await _repo(call)
    try:
        catalog = await call.state.commands.of(repo_id)
    except Exception as exc:  # GitHub unreachable or the app not configured
        reason = f"could not read the repository's commands: {type(exc).__name__}"
        raise ApiError(502, reason) from None
    return CommandsPage(
        commands=[
            CommandOut(
                id=c.id,
                description=c.description,
                targets=sorted(c.targets),
                source=c.source,
                argument_hint=c.argument_hint,
                path=c.path,
            )
            for c in catalog.for_target(call.query.target)
        ],
        problems=catalog.problems,
    )


# -- the scheduler routes -----------------------------------------------------------------------


@tasks.route(
    "GET",
    TASKS,
    summary="List jobs (as tasks) across repositories",
    tag="tasks",
    query=TasksQuery,
    response=TasksPage,
)
async def list_tasks(call: Call) -> Any:
    q = call.query
    query = await scoped(select(Job), col(Job.repo_id), call.principal, call.state.db)
    if q.repo:
        repo_id = await resolve_repo(call.state.db, call.principal, q.repo)
        query = query.where(col(Job.repo_id) == repo_id)
    if q.enabled is not None:
        query = query.where(
            (col(Job.status) == "active") if q.enabled else (col(Job.status) != "active")
        )
    if q.task_type:
        query = query.where(col(Job.task_type) == q.task_type)
    if q.status:
        query = query.where(col(Job.status) == q.status)
    if q.source:
        query = query.where(col(Job.source) == q.source)
    after = decode_cursor(q.cursor)
    page = query.where(col(Job.id) > after) if after is not None else query
    async with call.state.db.read() as conn:
        rows = list(await conn.execute(page.order_by(col(Job.id)).limit(q.limit + 1)))
        total = await conn.scalar(select(func.count()).select_from(query.subquery()))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    names = await repo_names(call.state.db, rows)
    tasks = [task_out(row, names) for row in rows]
    cursor = encode_cursor(rows[-1].id) if more else None
    return TasksPage(tasks=tasks, total=total or 0, next_cursor=cursor)


@tasks.route(
    "POST",
    TASKS,
    summary="Create a job (as a task)",
    tag="tasks",
    body=TaskCreate,
    response=TaskOut,
    status=201,
    errors=(400,),
)
async def create_task(call: Call) -> Any:
    body = call.body.model_dump(exclude_unset=True)
    data = task_spec(body, current=None)
    if body.get("repo"):
        data["repo_id"] = await resolve_repo(call.state.db, call.principal, body["repo"], "body")
    return await _task(
        call,
        await call.state.jobs.create(data, actor=call.actor, scope=await call.scope()),
    )


@tasks.route(
    "GET",
    ONE_TASK,
    summary="Get a job (as a task)",
    tag="tasks",
    response=TaskOut,
    errors=(404,),
)
async def get_task(call: Call) -> Any:
    return await _task(call, await load_job(call.state.db, call.principal, call.path["task_id"]))


@tasks.route(
    "PATCH",
    ONE_TASK,
    summary="Change a job (as a task)",
    tag="tasks",
    body=TaskUpdate,
    response=TaskOut,
    errors=(400, 404, 409),
)
async def update_task(call: Call) -> Any:
    job = await load_job(call.state.db, call.principal, call.path["task_id"])
    _writable(job)
    body = call.body.model_dump(exclude_unset=True)
    changes = task_spec(body, current=job)
    if body.get("repo"):
        changes["repo_id"] = await resolve_repo(call.state.db, call.principal, body["repo"], "body")
    return await _task(
        call,
        await call.state.jobs.update(
            saved_id(job), changes, actor=call.actor, scope=await call.scope()
        ),
    )


@tasks.route(
    "DELETE",
    ONE_TASK,
    summary="Delete a job (its queued runs are cancelled)",
    tag="tasks",
    status=204,
    errors=(404, 409),
)
async def delete_task(call: Call) -> None:
    job = await load_job(call.state.db, call.principal, call.path["task_id"])
    _writable(job)
    await call.state.jobs.delete(saved_id(job), actor=call.actor)


@tasks.route(
    "POST",
    ONE_TASK + "/run",
    summary="Run a job now",
    tag="tasks",
    body=RunRequest,
    response=ExecutionStarted,
    status=202,
    errors=(400, 404),
)
async def run_task(call: Call) -> Any:
    job = await load_job(call.state.db, call.principal, call.path["task_id"])
    trigger = TriggerType(call.body.trigger_type).value
    run_id = await call.state.jobs.run_now(saved_id(job), actor=call.actor, trigger_type=trigger)
    return ExecutionStarted(execution_id=run_id)


async def _task(call: Call, job: Job) -> Any:
    return task_out(job, await repo_names(call.state.db, [job]))


# -- task names → JobSpec -----------------------------------------------------------------------

_TASK_TYPE_WORK = {
    "analyze": {"command_id": "context/analyze", "target_type": "codebase", "runner": "builtin"},
    "optimize": {"command_id": "context/optimize", "target_type": "codebase"},
    "health_check": {"command_id": "codebase/health-check", "target_type": "codebase"},
}
_TIMERS = ("cron_expression", "interval_minutes", "threshold")


def task_spec(body: dict[str, Any], current: Job | None) -> dict[str, Any]:
    """A task's fields as JobSpec fields (a full spec to create, or changes to apply)."""
    data = {name: value for name, value in body.items() if name in JobSpec.model_fields}
    if "webhook_ids" in body:
        data["notifier_ids"] = body["webhook_ids"] or []
    if body.get("enabled") is not None:
        data["status"] = "active" if body["enabled"] else "paused"
    work_given = {"command_id", "custom_prompt", "runner", "shell_command"} & data.keys()
    if current is None and not work_given and body.get("task_type") in _TASK_TYPE_WORK:
        data = {**_TASK_TYPE_WORK[body["task_type"]], **data}
        if body["task_type"] == "optimize":  # an optimize task proposes its changes as a PR
            config = dict(data.get("task_config") or {})
            config.setdefault("publish", "dry_run" if config.get("dryRun") else "pr")
            data["task_config"] = config
    threshold = _threshold(body, current)
    if threshold is not None:
        data["threshold"] = threshold
    kind = body.get("schedule_type")
    if kind is not None:
        _apply_schedule_type(kind, data, current)
    return data


def _threshold(body: dict[str, Any], current: Job | None) -> dict[str, Any] | None:
    names = ("threshold_metric", "threshold_value", "threshold_operator", "threshold_check_minutes")
    if not any(body.get(name) is not None for name in names):
        return None
    base = dict(body.get("threshold") or (current.threshold if current else None) or {})
    if body.get("threshold_metric") is not None:
        metric = body["threshold_metric"]
        base["metric"] = METRIC_ALIASES.get(metric, metric)
    if body.get("threshold_value") is not None:
        base["value"] = body["threshold_value"]
    if body.get("threshold_operator") is not None:
        base["operator"] = body["threshold_operator"]
    if body.get("threshold_check_minutes") is not None:
        base["check_interval_minutes"] = body["threshold_check_minutes"]
        base.pop("check_cron", None)
    if "check_cron" not in base and "check_interval_minutes" not in base:
        base["check_interval_minutes"] = 60  # a task names no check schedule: hourly
    return base


def _apply_schedule_type(kind: str, data: dict[str, Any], current: Job | None) -> None:
    """Clear the timers the chosen schedule type does not use; insist on the one it does."""
    wanted = {
        "cron": "cron_expression",
        "interval": "interval_minutes",
        "threshold": "threshold",
    }.get(kind)
    for name in _TIMERS:
        if name != wanted:
            data[name] = None
    missing = current is None or getattr(current, wanted or "id") is None
    if wanted and data.get(wanted) is None and missing:
        field = to_camel("threshold_metric" if wanted == "threshold" else wanted)
        raise invalid(field, f"required for scheduleType {kind!r}")
