"""A job's time trigger as a schedule: when it fires (or, for thresholds, checks)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from ghapp.scheduler.timing import cron_schedule, interval_schedule


class Schedule(Protocol):
    def next_after(self, after: datetime) -> datetime: ...

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]: ...


# Building a cron schedule validates and parses the expression (about 0.4 ms); schedules
# are immutable, so a burst of thousands of due jobs shares them.
_cron = lru_cache(maxsize=20_000)(cron_schedule)


def schedule_of(job: Any) -> Schedule | None:
    """The schedule of a Job row (or anything with the same fields), None if untimed."""
    if job.cron_expression:
        return _cron(job.cron_expression, job.timezone)
    if job.interval_minutes:
        return interval_schedule(job.interval_minutes, _anchor(job))
    threshold = job.threshold
    if threshold:
        if threshold.get("check_cron"):
            return _cron(threshold["check_cron"], job.timezone)
        return interval_schedule(threshold["check_interval_minutes"], _anchor(job))
    return None


def first_run(job: Any, now: datetime) -> datetime | None:
    """The next occurrence strictly after ``now`` (creation, resume, edit)."""
    schedule = schedule_of(job)
    return None if schedule is None else schedule.next_after(now)


def _anchor(job: Any) -> datetime:
    anchor = job.schedule_anchor
    if anchor is None:
        raise ValueError("an interval job needs a schedule anchor")
    return anchor
