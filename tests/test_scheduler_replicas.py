"""Three schedulers, one database, 48 simulated hours across a DST change, jobs changing
underneath: every occurrence fires exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ghapp.jobs.schedules import schedule_of
from tests.scheduler_support import World, job_spec
from tests.support import add_repository

START = datetime(2025, 3, 8, 0, 0, tzinfo=UTC)  # New York springs forward 2025-03-09 07:00Z
END = START + timedelta(hours=48)

JOBS = [
    {"name": "ny-hourly", "cron_expression": "0 * * * *", "timezone": "America/New_York"},
    {"name": "ny-0230", "cron_expression": "30 2 * * *", "timezone": "America/New_York"},
    {"name": "ny-early", "cron_expression": "15 1,2,3 * * *", "timezone": "America/New_York"},
    {"name": "berlin-20", "cron_expression": "*/20 * * * *", "timezone": "Europe/Berlin"},
    {"name": "utc-weekday", "cron_expression": "5 9 * * 1-5", "timezone": "UTC"},
    {"name": "every-45", "cron_expression": None, "interval_minutes": 45},
    {"name": "lord-howe", "cron_expression": "45 */3 * * *", "timezone": "Australia/Lord_Howe"},
    {"name": "kolkata", "cron_expression": "0,30 */2 * * *", "timezone": "Asia/Kolkata"},
]
# (hours after START + a few odd seconds, action, job name, changes)
ACTIONS = [
    (5.01, "pause", "ny-hourly", None),
    (9.02, "resume", "ny-hourly", None),
    (12.03, "update", "berlin-20", {"cron_expression": "*/25 * * * *"}),
    (20.04, "pause", "every-45", None),
    (20.05, "resume", "every-45", None),  # re-anchors the interval at the resume
    (30.06, "update", "kolkata", {"timezone": "UTC"}),
    (31.07, "pause", "lord-howe", None),
    (47.08, "resume", "lord-howe", None),
]


@dataclass
class Expected:
    """A reference model: the job fires on its schedule while active, from each change on."""

    segments: dict[int, list[tuple[datetime, datetime | None, object]]] = field(
        default_factory=dict
    )

    def start(self, job, at: datetime) -> None:
        self.segments.setdefault(job.id, []).append((at, None, schedule_of(job)))

    def stop(self, job_id: int, at: datetime) -> None:
        begin, _, schedule = self.segments[job_id][-1]
        self.segments[job_id][-1] = (begin, at, schedule)

    def firings(self, job_id: int) -> list[datetime]:
        times: list[datetime] = []
        for begin, end, schedule in self.segments[job_id]:
            times += schedule.occurrences(begin, end or END)
        return times


async def test_three_schedulers_48_hours_with_changes(db) -> None:
    await add_repository(db)
    world = World(db, start=START)
    expected = Expected()
    ids: dict[str, int] = {}
    for spec in JOBS:
        job = await world.jobs.create(job_spec(**spec), actor="t")
        ids[spec["name"]] = job.id
        expected.start(job, START)
    schedulers = [world.scheduler() for _ in range(3)]
    pending = [(START + timedelta(hours=h), action, name, ch) for h, action, name, ch in ACTIONS]

    while True:
        await asyncio.gather(*(s.tick() for s in schedulers))
        due = await schedulers[0].next_due()
        next_action = pending[0][0] if pending else None
        moments = [m for m in (due, next_action) if m is not None and m <= END]
        if not moments:
            break
        moment = min(moments)
        world.clock.set(max(moment, world.clock.now()))
        while pending and pending[0][0] <= world.clock.now():
            at, action, name, changes = pending.pop(0)
            job_id = ids[name]
            if action == "pause":
                await world.jobs.pause(job_id, actor="t")
                expected.stop(job_id, at)
            elif action == "resume":
                expected.start(await world.jobs.resume(job_id, actor="t"), at)
            else:
                expected.stop(job_id, at)
                expected.start(await world.jobs.update(job_id, changes, actor="t"), at)

    total = 0
    for name, job_id in ids.items():
        fired = await world.fired(job_id)
        assert len(fired) == len(set(fired)), f"{name} fired an occurrence twice"
        assert fired == expected.firings(job_id), name
        total += len(fired)
    assert sum(s.fired for s in schedulers) == total
    assert total > 300
    # The work was shared, not done three times over by one of them.
    assert sum(1 for s in schedulers if s.fired) >= 2 or db.is_sqlite
