"""Threshold triggers: measure a metric on a schedule, fire when the condition *becomes* true.

Each check is one row in ``threshold_checks`` under the unique key ``(job_id,
scheduled_for)``: the scheduler that inserts it measures it, so a check happens once
however many schedulers run. A check that finds the condition true fires the job only on
the edge — the previous check found it false (or there was none) — or, while it stays
true, once the job's cooldown has passed since it last fired.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.core import insert_ignoring_conflicts
from ghapp.db.models import Job, ThresholdCheck, TriggerType, table_of
from ghapp.notify.outbox import queue_event
from ghapp.runqueue.new import NewRun, enqueue
from ghapp.signals import Signals

log = logging.getLogger("ghapp.scheduler")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt,
    "gt": operator.gt,
    "eq": operator.eq,
    "lte": operator.le,
    "gte": operator.ge,
}
MEASURE_TIMEOUT_S = 120.0


class MetricProvider(Protocol):
    """Measures one metric for a job (its repository, or its installation's)."""

    async def measure(self, job: Any) -> float: ...


class ThresholdChecker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        signals: Signals,
        providers: Mapping[str, MetricProvider],
    ) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.providers = dict(providers)
        self._tasks: set[asyncio.Task[None]] = set()

    async def claim(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert check rows; return the ids of those this scheduler now owns."""
        table = table_of(ThresholdCheck)
        created = await insert_ignoring_conflicts(
            conn, table, rows, ("job_id", "scheduled_for"), returning="id"
        )
        return list(created)

    def start(self, check_id: int) -> None:
        task = asyncio.create_task(self.check(check_id), name=f"threshold-check-{check_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every check in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def check(self, check_id: int) -> None:
        async with self.db.read() as conn:
            check = (
                await conn.execute(select(ThresholdCheck).where(col(ThresholdCheck.id) == check_id))
            ).one()
            job = (await conn.execute(select(Job).where(col(Job.id) == check.job_id))).one_or_none()
        if job is None or not job.threshold:
            return
        try:
            value = await self._measure(job)
        except Exception as exc:
            log.warning("threshold check failed", extra={"job_id": job.id, "error": str(exc)[:200]})
            await self._record_failure(check_id, f"{type(exc).__name__}: {exc}")
            return
        if await self._record(check, job, value):
            self.signals.runs_queued()

    async def _measure(self, job: Any) -> float:
        provider = self.providers.get(job.threshold["metric"])
        if provider is None:
            raise LookupError(f"no provider for metric {job.threshold['metric']!r}")
        async with asyncio.timeout(MEASURE_TIMEOUT_S):
            return float(await provider.measure(job))

    async def _record(self, check: Any, job: Any, value: float) -> bool:
        threshold = job.threshold
        met = OPERATORS[threshold["operator"]](value, float(threshold["value"]))
        now = self.clock.now()
        async with self.db.write() as conn:
            previous = await _previous_check(conn, job.id, check.scheduled_for)
            last_fired = await _last_fired(conn, job.id, check.scheduled_for)
            fire = met and should_fire(previous, last_fired, threshold, now)
            run_id = await _queue_threshold_run(conn, job, check, value, now) if fire else None
            if fire:
                await _queue_alert(conn, job, value, now)
            await conn.execute(
                update(ThresholdCheck)
                .where(col(ThresholdCheck.id) == check.id)
                .values(
                    status="done",
                    value=value,
                    condition_met=met,
                    fired=fire,
                    run_id=run_id,
                    checked_at=now,
                )
            )
        if fire:
            self.signals.notifications_queued.set()
        log.info(
            "threshold checked",
            extra={"job_id": job.id, "value": value, "condition_met": met, "fired": fire},
        )
        return fire

    async def _record_failure(self, check_id: int, error: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(ThresholdCheck)
                .where(col(ThresholdCheck.id) == check_id)
                .values(status="failed", error=error[:2000], checked_at=self.clock.now())
            )


def should_fire(
    previous: Any, last_fired: Any, threshold: Mapping[str, Any], now: datetime
) -> bool:
    """Edge: no earlier check, or the earlier one was false; else only after the cooldown."""
    if previous is None or not previous.condition_met:
        return True
    cooldown = int(threshold.get("cooldown_minutes") or 0)
    if cooldown <= 0 or last_fired is None:
        return False
    return now - last_fired.checked_at >= timedelta(minutes=cooldown)


async def _previous_check(conn: AsyncConnection, job_id: int, before: datetime) -> Any:
    return await _latest_check(conn, job_id, before, col(ThresholdCheck.status) == "done")


async def _last_fired(conn: AsyncConnection, job_id: int, before: datetime) -> Any:
    return await _latest_check(conn, job_id, before, col(ThresholdCheck.fired).is_(True))


async def _latest_check(conn: AsyncConnection, job_id: int, before: datetime, where: Any) -> Any:
    """The job's most recent check before ``before`` that satisfies ``where``."""
    query = (
        select(ThresholdCheck)
        .where(
            col(ThresholdCheck.job_id) == job_id, col(ThresholdCheck.scheduled_for) < before, where
        )
        .order_by(col(ThresholdCheck.scheduled_for).desc())
        .limit(1)
    )
    return (await conn.execute(query)).one_or_none()


async def _queue_alert(conn: AsyncConnection, job: Any, value: float, now: datetime) -> None:
    threshold = job.threshold
    message = f"{threshold['metric']} is {value:g} ({threshold['operator']} {threshold['value']:g})"
    extra = {
        "threshold": {
            "metric": threshold["metric"],
            "operator": threshold["operator"],
            "value": threshold["value"],
            "measured": value,
        }
    }
    await queue_event(conn, "threshold_triggered", job, now, message=message, extra=extra)


async def _queue_threshold_run(
    conn: AsyncConnection, job: Any, check: Any, value: float, now: datetime
) -> int:
    detail = {"check_id": check.id, "metric": job.threshold["metric"], "value": value}
    run = NewRun(
        job_id=job.id,
        repo_id=job.repo_id,
        installation_id=job.installation_id,
        trigger_type=TriggerType.threshold,
        now=now,
        trigger_detail=detail,
        scheduled_for=check.scheduled_for,
    )
    return (await enqueue(conn, [run]))[job.id]
