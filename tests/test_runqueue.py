"""The run queue owns how runs are made: one shape, one way in, the same bookkeeping for all."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

import ghapp
from ghapp.clock import FakeClock
from ghapp.db.models import Job, Run, RunStatus
from ghapp.jobs.service import JobService
from ghapp.runqueue.new import COLUMNS, NewRun
from ghapp.signals import Signals
from tests.support import add_repository

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SOURCE = Path(ghapp.__file__).parent
# Filled in by the queue as a run goes on, never by whoever queues it.
LATER = {
    "id",
    "lease_owner",
    "lease_expires_at",
    "cancel_requested_at",
    "retrying_since",
    "started_at",
    "duration_ms",
}


def test_every_column_of_runs_is_set_when_queued_or_filled_in_later():
    columns = {column.name for column in Run.__table__.columns}  # type: ignore[attr-defined]
    assert set(COLUMNS) | LATER == columns, (
        "a new column of runs: give it its value in ghapp.runqueue.new (COLUMNS and "
        "NewRun.row) or, if the queue fills it in later, add it to LATER here"
    )
    row = NewRun(job_id=1, repo_id=2, installation_id=3, trigger_type="manual", now=NOW).row()
    assert tuple(row) == COLUMNS


def test_no_module_outside_the_run_queue_inserts_runs():
    pattern = re.compile(r"(?i:INSERT INTO runs)|Run\.__table__|\bRun\(")
    offenders = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in SOURCE.rglob("*.py")
        if "runqueue" not in path.parts and "standins" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and "class Run(" not in line
    ]
    assert offenders == []


async def test_run_now_and_retry_count_runs_on_the_job_like_every_other_producer(db):
    await add_repository(db)
    jobs = JobService(db, FakeClock(NOW), Signals())
    job = await jobs.create(
        {"name": "j", "repo_id": 186853002, "command_id": "issue/triage"}, actor="test"
    )
    first = await jobs.run_now(job.id, actor="test")
    async with db.write() as conn:
        await conn.execute(
            Run.__table__.update().where(Run.id == first).values(status="failed")  # type: ignore[attr-defined]
        )
    again = await jobs.retry(first, actor="test")
    async with db.read() as conn:
        count = await conn.scalar(select(Job.run_count).where(Job.id == job.id))
        retried = (await conn.execute(select(Run).where(Run.id == again))).one()
    assert count == 2
    assert (retried.status, retried.retry_of_id, retried.attempt) == (
        RunStatus.queued.value,
        first,
        1,
    )
    assert retried.trigger_detail["retry_of"] == first
