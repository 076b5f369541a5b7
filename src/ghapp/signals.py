"""In-process wake-ups between the parts of one ghapp process.

The API changes a job → the scheduler recomputes its sleep at once; a run is queued →
an idle worker claims it at once. Across processes the same wake-ups arrive through
PostgreSQL ``LISTEN/NOTIFY`` (or, as a fallback, the next poll).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Signals:
    scheduler_wake: asyncio.Event = field(default_factory=asyncio.Event)
    work_available: asyncio.Event = field(default_factory=asyncio.Event)
    notifications_queued: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when someone asks a running run to stop: every heartbeat looks at its run at once.
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    jobs_changed: list[Callable[[], None]] = field(default_factory=list)
    # Tells the other processes (PostgreSQL NOTIFY, see ghapp.db.wakeups); None: alone.
    publish: Callable[[str], None] | None = None

    def job_changed(self) -> None:
        """A job was created, edited, paused, resumed or deleted in this process."""
        self.scheduler_wake.set()
        for callback in self.jobs_changed:
            callback()
        if self.publish is not None:
            self.publish("jobs")

    def run_cancel_requested(self) -> None:
        """A running run was asked to stop (API, dashboard, a deleted job, a newer run)."""
        self.cancel_requested.set()
        self.work_available.set()  # a run whose worker is gone is ended by the next claim
        if self.publish is not None:
            self.publish("cancels")

    def runs_queued(self) -> None:
        self.work_available.set()
        if self.publish is not None:
            self.publish("runs")
