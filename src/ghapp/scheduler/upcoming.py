"""What fires in the next hours (for ``GET /api/scheduler/upcoming`` and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ghapp.db import Database
from ghapp.db.models import Job
from ghapp.jobs.schedules import schedule_of
from ghapp.scheduler import timing
from ghapp.scheduler.loop import eligible


@dataclass(frozen=True)
class Upcoming:
    at: datetime
    job_id: int
    name: str
    kind: str  # "run" | "check" (a threshold job measures, and fires only on the edge)


async def upcoming(
    db: Database, now: datetime, hours: float, limit: int = 10_000
) -> list[Upcoming]:
    """Every occurrence of every active timed job in (now, now + hours], in order."""
    async with db.read() as conn:
        jobs = (await conn.execute(select(Job).where(*eligible()))).all()
    schedules = [(job.id, schedule_of(job)) for job in jobs]
    by_id = {job.id: job for job in jobs}
    window = timing.upcoming(
        ((job_id, schedule) for job_id, schedule in schedules if schedule is not None),
        now,
        now + timedelta(hours=hours),
    )
    return [
        Upcoming(at, job_id, by_id[job_id].name, "check" if by_id[job_id].threshold else "run")
        for at, job_id in window[:limit]
    ]
