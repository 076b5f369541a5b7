"""Claiming queued runs under a lease: how workers take runs from the queue.

Runs are a leased queue (:mod:`ghapp.db.lease`, declared as :data:`ghapp.runqueue.sql.RUNS`):
a worker takes one run at a time with a single ``UPDATE … RETURNING`` (on PostgreSQL the
candidate row is chosen ``FOR UPDATE SKIP LOCKED`` so workers never wait for each other; on
SQLite the write transaction makes the claim atomic). The claim sets a lease; the worker
renews it by heartbeat while the run goes on. A run whose lease expired (its worker died)
is claimable again, so another worker takes it over.

Limits are part of the claim (its declared condition), so they hold across any number of
workers: the runs already running for the same installation, and on the whole database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ghapp.db import Database
from ghapp.db.lease import LeasedQueue, bind_params
from ghapp.runqueue import sql

__all__ = ["Claimed", "Limits", "RunQueue", "bind_params"]


@dataclass(frozen=True)
class Claimed:
    run_id: int
    job_id: int
    attempt: int


@dataclass(frozen=True)
class Limits:
    per_installation: int = 4
    lease: timedelta = timedelta(seconds=60)
    running: int = 0  # across every worker on the database (0: no limit)


class RunQueue:
    def __init__(self, db: Database, owner: str, limits: Limits | None = None) -> None:
        self.db = db
        self.owner = owner
        self.limits = limits or Limits()
        self.leased = LeasedQueue(db, sql.RUNS, owner, self.limits.lease)

    async def claim(self, now: datetime) -> Claimed | None:
        """Take the next claimable run, or None if there is none (or limits say wait)."""
        row = await self.leased.claim(
            now, per_installation=self.limits.per_installation, global_limit=self.limits.running
        )
        if row is None:
            return None
        return Claimed(run_id=row.id, job_id=row.job_id, attempt=row.attempt)

    async def heartbeat(self, run_id: int, now: datetime) -> bool:
        """Renew the lease; False means it was lost (taken over, cancelled, finished)."""
        return await self.leased.heartbeat(run_id, now)

    async def release(self, run_id: int) -> bool:
        """Hand a run back to the queue (graceful shutdown) without counting an attempt."""
        return await self.leased.release(run_id)

    async def retry(self, run_id: int, at: datetime, *, error: str, since: datetime) -> bool:
        """Queue a run this worker holds again at ``at`` (counting an attempt): GitHub or
        database trouble since ``since``, and ``error`` says why it waits."""
        return await self.leased.retry(run_id, at, error=error, retrying_since=since)
