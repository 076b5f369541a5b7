"""Queueing notifications: rows written in the same transaction as the event they tell of.

A run that ends, starts, or crosses a threshold adds one ``notifications`` row per notifier
that wants the event — in the transaction that records the event, so a crash can lose
neither. The dispatcher (``dispatch.py``) delivers them off the run's path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp.db.models import Job, Notification, Notifier, Run, RunStatus, Session, table_of
from ghapp.notify.formats import event_payload
from ghapp.structured import ordered, summary_lines

FAILED = frozenset({RunStatus.failed.value, RunStatus.timed_out.value})
HEALTH_ALERT_AFTER = 3  # consecutive failed runs of a job
STRUCTURED_SHOWN = 5  # a notification tells the first few sessions' structured results


def event_of_end(status: str) -> str | None:
    if status == RunStatus.completed.value:
        return "task_completed"
    if status in FAILED:
        return "task_failed"
    return None  # skipped and cancelled runs tell nobody


def wanted(job: Any, event: str) -> bool:
    """The job's own switches: notify_on_success / notify_on_failure."""
    if event == "task_completed":
        return bool(job.notify_on_success)
    if event == "task_failed":
        return bool(job.notify_on_failure)
    return True


async def queue_event(
    conn: AsyncConnection,
    event: str,
    job: Any,
    now: datetime,
    *,
    run: Any = None,
    message: str = "",
    public_url: str = "",
    extra: dict[str, Any] | None = None,
) -> int:
    """Queue ``event`` for every enabled notifier of ``job`` subscribed to it."""
    if not job.notifier_ids or not wanted(job, event):
        return 0
    rows = await conn.execute(
        select(col(Notifier.id), col(Notifier.event_types)).where(
            col(Notifier.id).in_(list(job.notifier_ids)), col(Notifier.enabled).is_(True)
        )
    )
    targets = [notifier_id for notifier_id, events in rows if event in (events or [])]
    if not targets:
        return 0
    payload = run_payload(event, job, run, now, message, public_url, extra)
    await conn.execute(
        table_of(Notification).insert(),
        [
            {
                "notifier_id": notifier_id,
                "run_id": run.id if run is not None else None,
                "event": event,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "attempt_log": [],
                "next_attempt_at": now,
                "created_at": now,
            }
            for notifier_id in targets
        ],
    )
    return len(targets)


def run_payload(
    event: str,
    job: Any,
    run: Any,
    now: datetime,
    message: str,
    public_url: str,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    """The generic WebhookPayload for a job (and its run, when there is one)."""
    task = {"id": str(job.id), "name": job.name, "taskType": job.task_type}
    execution = metrics = None
    url = None
    if run is not None:
        execution = {
            "id": str(run.id),
            "status": run.status,
            "durationMs": run.duration_ms,
            "triggerType": run.trigger_type,
        }
        metrics = {
            "projectsProcessed": run.items_processed,
            "issuesFound": run.items_found,
            "tokensSaved": 0,
            "itemsFound": run.items_found,
            "itemsProcessed": run.items_processed,
            "itemsFailed": run.items_failed,
            "costUsd": round(float(run.cost_usd or 0), 4),
        }
        if public_url:
            url = f"{public_url.rstrip('/')}/runs/{run.id}"
    payload = event_payload(
        event, now, task=task, execution=execution, metrics=metrics, message=message, url=url
    )
    if extra:
        payload.update(extra)
    return payload


async def queue_run_end(
    conn: AsyncConnection, run_id: int, now: datetime, public_url: str = ""
) -> int:
    """After ``finish_run``: task_completed / task_failed, and a health alert on a streak."""
    run = (await conn.execute(select(Run).where(col(Run.id) == run_id))).one()
    job = (await conn.execute(select(Job).where(col(Job.id) == run.job_id))).one_or_none()
    event = event_of_end(run.status)
    if job is None or event is None:
        return 0
    message = run.error or f"{run.items_processed} of {run.items_found} items processed"
    results = await structured_results(conn, run_id, job.command_id)
    if results:
        message = f"{message}\n" + "\n".join(_result_text(result) for result in results)
    extra = {"structuredResults": results} if results else None
    queued = await queue_event(
        conn, event, job, now, run=run, message=message, public_url=public_url, extra=extra
    )
    if event == "task_failed" and await _failing_streak(conn, job.id) == HEALTH_ALERT_AFTER:
        queued += await queue_event(
            conn,
            "health_alert",
            job,
            now,
            run=run,
            public_url=public_url,
            message=f"{job.name} failed {HEALTH_ALERT_AFTER} times in a row: {run.error or ''}",
        )
    return queued


async def structured_results(
    conn: AsyncConnection, run_id: int, command_id: str | None
) -> list[dict[str, Any]]:
    """The run's checked structured results (the first few), for the notification."""
    rows = await conn.execute(
        select(col(Session.item_number), col(Session.structured_result))
        .where(col(Session.run_id) == run_id, col(Session.structured_result).is_not(None))
        .order_by(col(Session.id))
        .limit(STRUCTURED_SHOWN)
    )
    return [
        {"itemNumber": row.item_number, "result": ordered(row.structured_result, command_id)}
        for row in rows
        if isinstance(row.structured_result, dict)
    ]


def _result_text(entry: dict[str, Any]) -> str:
    """``#12: kind: bug · severity: high · …``: short, one line per session."""
    prefix = f"#{entry['itemNumber']}: " if entry["itemNumber"] is not None else ""
    return prefix + " · ".join(summary_lines(entry["result"], limit=120))


async def _failing_streak(conn: AsyncConnection, job_id: int) -> int:
    """How many of the job's latest finished runs failed in a row."""
    statuses = (
        await conn.execute(
            select(col(Run.status))
            .where(
                col(Run.job_id) == job_id,
                col(Run.completed_at).is_not(None),
                col(Run.status).in_([*FAILED, RunStatus.completed.value]),
            )
            .order_by(col(Run.completed_at).desc(), col(Run.id).desc())
            .limit(HEALTH_ALERT_AFTER + 1)
        )
    ).scalars()
    streak = 0
    for status in statuses:
        if status not in FAILED:
            break
        streak += 1
    return streak
