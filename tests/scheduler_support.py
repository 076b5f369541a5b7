"""The scheduler's test world: one database, a fake clock from ``START``, the job service and
any number of schedulers; ``job_spec`` is a nightly codebase job to change per test."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ghapp.clock import FakeClock
from ghapp.jobs.service import JobService
from ghapp.scheduler.loop import Scheduler
from ghapp.signals import Signals
from tests.support import runs_of

REPO = 186853002
START = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)


def job_spec(**changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": "nightly",
        "repo_id": REPO,
        "cron_expression": "0 9 * * *",
        "timezone": "UTC",
        "target_type": "codebase",
        "command_id": "codebase/health-check",
        "concurrency_policy": "allow",
    }
    spec.update(changes)
    return spec


class World:
    """One database, one fake clock, the job service and any number of schedulers."""

    def __init__(self, db, start: datetime = START) -> None:
        self.db = db
        self.clock = FakeClock(start)
        self.signals = Signals()
        self.jobs = JobService(db, self.clock, self.signals)

    def scheduler(self) -> Scheduler:
        return Scheduler(self.db, self.clock, Signals())

    async def fired(self, job_id: int | None = None) -> list[datetime]:
        return [run.scheduled_for for run in await runs_of(self.db, job_id) if run.scheduled_for]

    async def run_until(self, end: datetime, schedulers: list[Scheduler]) -> None:
        """Jump from one due moment to the next, letting every scheduler tick each time."""
        while True:
            await asyncio.gather(*(s.tick() for s in schedulers))
            due = await schedulers[0].next_due()
            if due is None or due > end:
                self.clock.set(end)
                await asyncio.gather(*(s.tick() for s in schedulers))
                return
            self.clock.set(max(due, self.clock.now()))
