"""Runs as the scheduler API's executions: history with filters, details, retry and cancel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from ghapp.api.core import Api, Call
from ghapp.api.errors import ApiError
from ghapp.api.schemas import (
    CancelResult,
    ExecutionDetail,
    ExecutionsPage,
    ExecutionsQuery,
    ExecutionStarted,
    SessionOut,
)
from ghapp.api.views import execution_fields, load_run
from ghapp.db.models import Job, Run
from ghapp.reads import keyset_page, scoped, sessions_of
from ghapp.runqueue.manage import RunConflict

api = Api()
EXECUTIONS = "/api/scheduler/executions"
ONE_EXECUTION = EXECUTIONS + "/{execution_id}"


@api.route(
    "GET",
    EXECUTIONS,
    summary="Run history, newest first",
    tag="executions",
    query=ExecutionsQuery,
    response=ExecutionsPage,
)
async def list_executions(call: Call) -> Any:
    q = call.query
    query = await scoped(select(Run), col(Run.repo_id), call.principal, call.state.db)
    if q.task_id is not None:
        query = query.where(col(Run.job_id) == q.task_id)
    if q.status:
        query = query.where(col(Run.status) == q.status)
    if q.trigger_type:
        query = query.where(col(Run.trigger_type) == q.trigger_type)
    rows, cursor = await keyset_page(call.state.db, query, col(Run.id), q.limit, q.cursor)
    sessions = await sessions_of(call.state.db, [row.id for row in rows])
    executions = [execution_fields(row, sessions.get(row.id, [])) for row in rows]
    return ExecutionsPage.model_validate({"executions": executions, "next_cursor": cursor})


@api.route(
    "GET",
    ONE_EXECUTION,
    summary="One run with its sessions and results",
    tag="executions",
    response=ExecutionDetail,
    errors=(404,),
)
async def get_execution(call: Call) -> Any:
    run = await load_run(call.state.db, call.principal, call.path["execution_id"])
    sessions = (await sessions_of(call.state.db, [run.id])).get(run.id, [])
    async with call.state.db.read() as conn:
        name = await conn.scalar(select(col(Job.name)).where(col(Job.id) == run.job_id))
    fields = execution_fields(run, sessions)
    fields["task_name"] = name
    fields["sessions"] = [SessionOut.model_validate(session) for session in sessions]
    return ExecutionDetail.model_validate(fields)


@api.route(
    "POST",
    ONE_EXECUTION + "/retry",
    summary="Run again what a finished run did",
    tag="executions",
    response=ExecutionStarted,
    status=202,
    errors=(404, 409),
)
async def retry_execution(call: Call) -> Any:
    run = await load_run(call.state.db, call.principal, call.path["execution_id"])
    try:
        new_id = await call.state.jobs.retry(run.id, actor=call.actor)
    except RunConflict as exc:
        raise ApiError(409, str(exc)) from None
    return ExecutionStarted(execution_id=new_id)


@api.route(
    "POST",
    ONE_EXECUTION + "/cancel",
    summary="Cancel a queued or running run",
    tag="executions",
    response=CancelResult,
    errors=(404, 409),
)
async def cancel_execution(call: Call) -> Any:
    run = await load_run(call.state.db, call.principal, call.path["execution_id"])
    try:
        status = await call.state.jobs.cancel(run.id, actor=call.actor)
    except RunConflict as exc:
        raise ApiError(409, str(exc)) from None
    return CancelResult(execution_id=run.id, status=status)
