"""Claiming queued runs under a lease: how workers take runs from the queue.

A worker takes one run at a time with a single ``UPDATE … RETURNING``: on PostgreSQL the
candidate row is chosen ``FOR UPDATE SKIP LOCKED`` so workers never wait for each other; on
SQLite the write transaction (``BEGIN IMMEDIATE``) makes the claim atomic. The claim sets a
lease; the worker renews it by heartbeat while the run goes on. A run whose lease expired
(its worker died) is claimable again, so another worker takes it over.

Limits are part of the claim, so they hold across any number of workers: the runs already
running for the same installation, and the day's sessions and cost against the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ghapp.db import Database
from ghapp.db.batch import sqlite_value
from ghapp.runqueue import sql


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
        lock = "FOR UPDATE SKIP LOCKED" if not db.is_sqlite else ""
        self._claim = text(sql.CLAIM.format(lock=lock))

    async def claim(self, now: datetime) -> Claimed | None:
        """Take the next claimable run, or None if there is none (or limits say wait)."""
        params: dict[str, Any] = {
            "owner": self.owner,
            "now": now,
            "lease_until": now + self.limits.lease,
            "per_installation": self.limits.per_installation,
            "global_limit": self.limits.running,
        }
        async with self.db.write() as conn:
            row = (await conn.execute(self._claim, bind_params(conn, params))).first()
        if row is None:
            return None
        return Claimed(run_id=row.id, job_id=row.job_id, attempt=row.attempt)

    async def heartbeat(self, run_id: int, now: datetime) -> bool:
        """Renew the lease; False means it was lost (taken over, cancelled, finished)."""
        params = {"run_id": run_id, "owner": self.owner, "lease_until": now + self.limits.lease}
        async with self.db.write() as conn:
            result = await conn.execute(text(sql.HEARTBEAT), bind_params(conn, params))
        return result.rowcount == 1

    async def release(self, run_id: int) -> bool:
        """Hand a run back to the queue (graceful shutdown) without counting an attempt."""
        async with self.db.write() as conn:
            result = await conn.execute(text(sql.RELEASE), {"run_id": run_id, "owner": self.owner})
        return result.rowcount == 1


def bind_params(conn: AsyncConnection, params: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as each backend stores them (SQLite: naive UTC text, see UTCDateTime)."""
    if conn.dialect.name != "sqlite":
        return params
    return {key: sqlite_value(value) for key, value in params.items()}
