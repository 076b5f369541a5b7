"""One process at a time for a loop that must not run twice across replicas.

The leased queues (``lease.py``) share many rows among many workers; some loops have no
rows to share but must still run in one process at a time, as two copies would repeat each
other's work against an outside service (the webhook delivery recovery asks GitHub to
redeliver: two replicas listing and redelivering at once would spend the rate limit twice).
Such a loop holds a named row of ``loop_leases`` while it works:

* :meth:`LoopLease.take` succeeds when nobody holds the row, its holder's lease lapsed
  (that process died or stalled), or the caller already holds it. One conditional
  ``UPDATE``: on PostgreSQL a second taker waits for the first's row lock and then sees
  the row taken, on SQLite the write transaction serialises them;
* :meth:`LoopLease.renew` moves the deadline on, only for the holder, so a process that
  lost the row (it stalled past its deadline and another took over) learns it;
* the holder may keep the row past its work, until its next round is due, so that the
  other replicas' rounds find it held and the loop keeps one cadence across replicas; its
  ``covered_until`` says how far the work has reached, for whoever takes over.

A row rather than a PostgreSQL advisory lock: it works the same on SQLite, it needs no
connection held for the length of the work (a database restart would drop a session lock
silently), and it lapses on its own when its holder dies.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select, update
from sqlmodel import col

from ghapp.db.core import dialect_insert
from ghapp.db.engine import Database
from ghapp.db.models import LoopLease, table_of

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class LoopLeaseHolder:
    """One process's hand on the lease named ``name``."""

    def __init__(self, db: Database, name: str, owner: str) -> None:
        self.db = db
        self.name = name
        self.owner = owner

    async def take(self, now: datetime, until: datetime) -> bool:
        """Hold the lease until ``until`` if it is free, lapsed or ours already."""
        table = table_of(LoopLease)
        async with self.db.write() as conn:
            absent = dialect_insert(conn, table).values(
                name=self.name, owner="", expires_at=_NEVER, covered_until=None
            )
            await conn.execute(absent.on_conflict_do_nothing(index_elements=["name"]))
            result = await conn.execute(
                update(LoopLease)
                .where(
                    col(LoopLease.name) == self.name,
                    or_(col(LoopLease.owner) == self.owner, col(LoopLease.expires_at) < now),
                )
                .values(owner=self.owner, expires_at=until)
            )
        return bool(result.rowcount == 1)

    async def renew(self, until: datetime, covered_until: datetime | None = None) -> bool:
        """Move the deadline to ``until`` (and the work's reach, if given); False if this
        process does not hold the lease any more."""
        values: dict[str, datetime] = {"expires_at": until}
        if covered_until is not None:
            values["covered_until"] = covered_until
        async with self.db.write() as conn:
            result = await conn.execute(
                update(LoopLease)
                .where(col(LoopLease.name) == self.name, col(LoopLease.owner) == self.owner)
                .values(**values)
            )
        return bool(result.rowcount == 1)

    async def covered_until(self) -> datetime | None:
        """How far the loop's work has reached, whoever did it (None: never recorded)."""
        async with self.db.read() as conn:
            moment: datetime | None = await conn.scalar(
                select(col(LoopLease.covered_until)).where(col(LoopLease.name) == self.name)
            )
        return moment
