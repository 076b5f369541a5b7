"""Leased queues: how any number of workers share the rows of a table, each row held by one.

A leased queue is a table whose rows wait (status ``ready``) until they are due, are then
*claimed* by one worker — status ``held``, the worker's name in the owner column, a lease
deadline — and end up finished, retried later or handed back. Runs, the notification
outbox and config syncs are such queues; each declares what it is in a
:class:`LeasedTable` (table, status column and values, due column, lease columns, order,
and what else its claim sets or requires), and :class:`LeasedQueue` does the rest:

* **claim** — one ``UPDATE … RETURNING`` takes the next row in the declared order that is
  due, or held under a lease that lapsed (its worker died: the row is *taken over*). On
  PostgreSQL the candidate is chosen ``FOR UPDATE SKIP LOCKED``, so claimers never wait
  for each other nor get the same row; on SQLite the write transaction (``BEGIN
  IMMEDIATE``) makes the claim atomic. A queue's own claim conditions (the runs' running
  limits, a repository's syncs one at a time) are a declared SQL condition on the
  candidate row ``c``;
* **heartbeat** — renew the lease; it fails (False) for anyone but the holder, so a worker
  whose row was taken over learns that it lost it;
* **release** — hand a held row back, due as it was; **retry** — hand it back due later
  (see :class:`RetryBackoff`); **finish** — leave the held status for a final one. All three
  are done only by the holder and clear the lease;
* **next_due** — the moment the next row becomes claimable, for a loop that sleeps till then.

The statements are built from the declaration, and named, in :func:`statements`: standard
SQL on both backends with ``:name`` parameters. Every name in them comes from a
declaration in our code (checked to be an identifier), every value is a bound parameter.

A queue that keeps its lease deadline in its due column (the notification outbox: a claim
moves ``next_attempt_at`` on by the lease, and there is no owner column) has one rule: a
row is claimable once due, whether it waits or was held. Otherwise a lease holds until its
deadline, inclusive — the moment a row counts as running for a queue's limits.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, TextClause, TextualSelect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ghapp.db.batch import sqlite_value
from ghapp.db.engine import Database
from ghapp.db.types import UTCDateTime

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class LeasedTable:
    """What a leased queue is. SQL snippets (``condition``, ``on_*``) come from our code."""

    name: str
    ready: str  # status of a row waiting its turn
    held: str  # status of a row a worker holds under a lease
    due: str  # column: not claimable before this moment
    order: tuple[str, ...]  # columns: which claimable row comes first
    returning: tuple[str, ...] = ("id",)  # columns a claim hands back
    status: str = "status"
    lease: str = "lease_expires_at"  # column: the lease's deadline (may be ``due`` itself)
    owner: str | None = "lease_owner"  # column: who holds it (None: no heartbeat, release…)
    key: str = "id"
    # Further conditions on the candidate row, aliased ``c``, with their own parameters.
    condition: str = ""
    # Further ``column = expression`` assignments (right-hand sides see the old row).
    on_claim: tuple[str, ...] = ()
    on_retry: tuple[str, ...] = ()
    on_finish: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [self.name, self.ready, self.held, self.due, self.status, self.lease, self.key]
        names += [*self.order, *self.returning, *([self.owner] if self.owner else [])]
        bad = [name for name in names if not _NAME.match(name)]
        if bad:
            raise ValueError(f"not SQL identifiers: {bad}")

    @property
    def lease_in_due(self) -> bool:
        return self.lease == self.due


@dataclass(frozen=True)
class Statements:
    """A leased queue's statements, by name (parameters in the comments)."""

    # The next due row, or a held one whose lease lapsed: held by :owner until :lease_until
    # (:now; and the declared condition's own parameters). Returns the declared columns.
    claim: TextClause
    # Renew the lease of row :id to :lease_until — only if :owner holds it.
    heartbeat: TextClause | None
    # Hand row :id back, due as it was, lease cleared — only if :owner holds it.
    release: TextClause | None
    # Hand row :id back, due at :due, lease cleared (and the declared on_retry).
    retry: TextClause | None
    # End row :id with :status, lease cleared (and the declared on_finish).
    finish: TextClause | None
    # The moment the next row becomes claimable (a waiting row due, a lease lapsing).
    next_due: TextualSelect


@lru_cache(maxsize=32)
def statements(table: LeasedTable, sqlite: bool) -> Statements:
    """The statements of ``table``'s queue (SQLite: no row locks, its transaction is one)."""
    t = table
    lock = "" if sqlite else "FOR UPDATE SKIP LOCKED"
    lapsed = "<=" if t.lease_in_due else "<"
    held_by = [f"{t.owner} = :owner"] if t.owner else []
    sets = [f"{t.status} = '{t.held}'", *held_by, f"{t.lease} = :lease_until", *t.on_claim]
    extra = f"\n      AND ({t.condition.strip()})" if t.condition.strip() else ""
    claim = f"""
UPDATE {t.name} SET {", ".join(sets)}
WHERE {t.key} = (
    SELECT c.{t.key} FROM {t.name} c
    WHERE ((c.{t.status} = '{t.ready}' AND c.{t.due} <= :now)
           OR (c.{t.status} = '{t.held}' AND c.{t.lease} {lapsed} :now)){extra}
    ORDER BY {", ".join("c." + column for column in t.order)}
    LIMIT 1 {lock}
)
RETURNING {", ".join(t.returning)}
"""  # noqa: S608
    next_due = f"""
SELECT min(moment) AS moment FROM (
    SELECT min({t.due}) AS moment FROM {t.name} WHERE {t.status} = '{t.ready}'
    UNION ALL
    SELECT min({t.lease}) AS moment FROM {t.name} WHERE {t.status} = '{t.held}'
) moments
"""  # noqa: S608
    made = Statements(
        claim=text(claim),
        heartbeat=None,
        release=None,
        retry=None,
        finish=None,
        next_due=text(next_due).columns(moment=UTCDateTime()),
    )
    if t.owner is None:  # nobody can show they hold a row
        return made
    mine = f"WHERE {t.key} = :id AND {t.owner} = :owner AND {t.status} = '{t.held}'"
    cleared = f"{t.owner} = NULL" + ("" if t.lease_in_due else f", {t.lease} = NULL")

    def update(*assignments: str) -> TextClause:
        return text(f"UPDATE {t.name} SET {', '.join(assignments)}\n{mine}")  # noqa: S608

    return Statements(
        claim=made.claim,
        # A lease that ran out is not renewed, even if nobody took the row yet: its holder
        # stops, as it would had another worker claimed the row first (no race to lose).
        heartbeat=text(
            f"UPDATE {t.name} SET {t.lease} = :lease_until\n{mine} AND {t.lease} >= :now"  # noqa: S608
        ),
        release=update(f"{t.status} = '{t.ready}'", cleared),
        retry=update(f"{t.status} = '{t.ready}'", f"{t.due} = :due", cleared, *t.on_retry),
        finish=update(f"{t.status} = :status", cleared, *t.on_finish),
        next_due=made.next_due,
    )


class LeasedQueue:
    """One worker's hand on a leased queue: rows it claims are held by ``owner`` for
    ``lease`` at a time. Each call is its own write transaction unless given ``conn``."""

    def __init__(self, db: Database, table: LeasedTable, owner: str | None, lease: timedelta):
        if table.owner is not None and not owner:
            raise ValueError(f"{table.name} records who holds a row: give an owner")
        self.db = db
        self.table = table
        self.owner = owner
        self.lease = lease
        self.sql = statements(table, db.is_sqlite)

    async def claim(self, now: datetime, **params: Any) -> Row[Any] | None:
        """The next claimable row (its declared columns), or None."""
        async with self.db.write() as conn:
            rows = await self.claim_in(conn, now, 1, **params)
        return rows[0] if rows else None

    async def claim_in(
        self, conn: AsyncConnection, now: datetime, limit: int = 1, **params: Any
    ) -> list[Row[Any]]:
        """Up to ``limit`` rows, in order, inside the caller's write transaction."""
        values = {"now": now, "lease_until": now + self.lease, **params}
        if self.table.owner is not None:
            values["owner"] = self.owner
        values = bind_params(conn, values)
        rows: list[Row[Any]] = []
        while len(rows) < limit:
            row = (await conn.execute(self.sql.claim, values)).first()
            if row is None:
                break
            rows.append(row)
        return rows

    async def heartbeat(self, key: Any, now: datetime) -> bool:
        """Renew the lease; False if this owner does not hold the row (any more), or its
        lease ran out before this heartbeat."""
        lease_until = now + self.lease
        return await self._mine(self.sql.heartbeat, key, None, lease_until=lease_until, now=now)

    async def release(self, key: Any, conn: AsyncConnection | None = None) -> bool:
        """Hand the row back to the queue as it was; False if this owner did not hold it."""
        return await self._mine(self.sql.release, key, conn)

    async def retry(
        self, key: Any, due: datetime, conn: AsyncConnection | None = None, **params: Any
    ) -> bool:
        """Hand the row back to be claimed again at ``due`` (params: the on_retry's)."""
        return await self._mine(self.sql.retry, key, conn, due=due, **params)

    async def finish(
        self, key: Any, status: str, conn: AsyncConnection | None = None, **params: Any
    ) -> bool:
        """End the row with ``status`` (params: the on_finish's)."""
        return await self._mine(self.sql.finish, key, conn, status=status, **params)

    async def next_due(self) -> datetime | None:
        """When the next row becomes claimable (it may be now or past), or None."""
        async with self.db.read() as conn:
            moment: datetime | None = await conn.scalar(self.sql.next_due)
        return moment

    async def _mine(
        self, statement: TextClause | None, key: Any, conn: AsyncConnection | None, **params: Any
    ) -> bool:
        if statement is None:
            raise TypeError(f"{self.table.name} has no owner column: a row's holder is unknown")
        params.update(id=key, owner=self.owner)
        if conn is not None:
            result = await conn.execute(statement, bind_params(conn, params))
            return bool(result.rowcount == 1)
        async with self.db.write() as conn:
            result = await conn.execute(statement, bind_params(conn, params))
        return bool(result.rowcount == 1)


def full_jitter(ceiling: float) -> float:
    """Any wait up to the ceiling."""
    return random.uniform(0, ceiling)


def equal_jitter(ceiling: float) -> float:
    """At least half the ceiling: never retried at once."""
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class RetryBackoff:
    """When a row is tried again after its n-th attempt failed: exponential, capped, with
    jitter so retries do not arrive in step. The ceiling is ``base · 2^(n-1)``, at most
    ``cap``; the wait is ``jitter(ceiling)`` seconds."""

    base: timedelta
    cap: timedelta
    jitter: Callable[[float], float] = field(default=equal_jitter)

    def ceiling(self, attempt: int) -> float:
        return min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempt - 1))

    def delay(self, attempt: int) -> timedelta:
        return timedelta(seconds=self.jitter(self.ceiling(attempt)))


def bind_params(conn: AsyncConnection, params: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as each backend stores them (SQLite: naive UTC text, see UTCDateTime)."""
    if conn.dialect.name != "sqlite":
        return params
    return {key: sqlite_value(value) for key, value in params.items()}
