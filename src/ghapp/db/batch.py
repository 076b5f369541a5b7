"""Group commit for the webhook hot path.

Deliveries arrive concurrently; writing each in its own transaction through SQLAlchemy
costs about 1.5 ms on SQLite (aiosqlite hops to its thread some twenty times per
transaction). Here concurrent writes queue up and are applied together: one transaction
per batch, each write inside its own savepoint (one bad write never spoils the others),
with hand-written standard SQL straight on the driver — ``sqlite3`` in one dedicated
thread (one thread hop per batch) or ``asyncpg``. The answer to a request is sent only
after the batch has committed, so nothing acknowledged is ever lost.

A write is an :class:`InsertThen`: an ``INSERT … ON CONFLICT DO NOTHING RETURNING id``
and the statements to run only if that insert created the row (they may refer to the
new row's id as ``:row_id``). Its result is the new id, ``None`` for a conflict, or the
exception that made the savepoint roll back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import make_url

from ghapp.db.engine import SQLITE_BUSY_TIMEOUT_MS, Database

MAX_BATCH = 256


@dataclass(frozen=True)
class Statement:
    sql: str  # standard SQL with ``:name`` parameters
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InsertThen:
    insert: Statement
    then: Sequence[Statement] = ()


Result = int | None | BaseException


def json_text(value: Any) -> str:
    """A JSON column's parameter: the JSON text (both drivers take text for it)."""
    return json.dumps(value, separators=(",", ":"))


class BatchWriter:
    """Applies concurrent :class:`InsertThen` writes in shared transactions."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._apply = _SqliteApplier(db) if db.is_sqlite else _PostgresApplier(db)
        self._queue: asyncio.Queue[tuple[InsertThen, asyncio.Future[Result]]] | None = None
        self._drainer: asyncio.Task[None] | None = None

    async def write(self, item: InsertThen) -> Result:
        if self._queue is None or self._drainer is None or self._drainer.done():
            self._queue = asyncio.Queue()
            self._drainer = asyncio.create_task(self._drain(self._queue), name="batch-writer")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def close(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        self._apply.close()

    async def _drain(self, queue: asyncio.Queue[tuple[InsertThen, asyncio.Future[Result]]]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                results = await self._apply([item for item, _ in batch])
            except Exception as exc:  # the whole transaction failed: tell every waiter
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class _SqliteApplier:
    """One ``sqlite3`` connection, driven from the event loop itself.

    A batch takes tens of microseconds per item and never waits for the disk (WAL with
    ``synchronous=NORMAL`` does not sync on commit), so it runs right on the event loop:
    no thread hop and no GIL ping-pong. It must never wait for a lock there, so the
    connection's busy timeout is zero; if another *process* holds the write lock, the
    batch is retried in a thread that waits up to the usual busy timeout. WAL
    checkpoints (which do sync) run in that thread too, never on the loop.
    """

    CHECKPOINT_EVERY = 1000  # items written between passive checkpoints (~12 MB of WAL)

    def __init__(self, db: Database) -> None:
        self._db = db
        self._path = make_url(db.url).database or ":memory:"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ghapp-sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._since_checkpoint = 0

    async def __call__(self, items: list[InsertThen]) -> list[Result]:
        # Share the in-process write lock with SQLAlchemy writers (see Database.write).
        async with self._db.write_lock():
            conn = self._connection()
            try:
                results = self._apply(conn, items)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._pool, self._apply_waiting, items)
            self._since_checkpoint += len(items)
            if self._since_checkpoint >= self.CHECKPOINT_EVERY:
                self._since_checkpoint = 0
                await asyncio.get_running_loop().run_in_executor(self._pool, self._checkpoint)
            return results

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._pool.shutdown()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Used from the loop and (only while the loop awaits it) from the thread.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
        return self._conn

    def _apply_waiting(self, items: list[InsertThen]) -> list[Result]:
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        try:
            return self._apply(conn, items)
        finally:
            conn.execute("PRAGMA busy_timeout=0")

    def _checkpoint(self) -> None:
        self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _apply(self, conn: sqlite3.Connection, items: list[InsertThen]) -> list[Result]:
        # Optimistic: the whole batch in one transaction without savepoints. Only if an
        # item fails is the batch redone with one savepoint per item.
        try:
            return self._transaction(conn, items, isolate=False)
        except _ItemFailed:
            return self._transaction(conn, items, isolate=True)

    def _transaction(
        self, conn: sqlite3.Connection, items: list[InsertThen], *, isolate: bool
    ) -> list[Result]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [self._apply_one(conn, item, isolate) for item in items]
            conn.execute("COMMIT")
        except BaseException:
            _rollback_keeping_the_error(conn)
            raise
        return results

    def _apply_one(self, conn: sqlite3.Connection, item: InsertThen, isolate: bool) -> Result:
        if isolate:
            conn.execute("SAVEPOINT item")
        try:
            row = conn.execute(item.insert.sql, _sqlite_params(item.insert.params)).fetchone()
            if row is not None:
                for stmt in item.then:
                    conn.execute(stmt.sql, _sqlite_params({"row_id": row[0], **stmt.params}))
        except _SQLITE_ITEM_ERRORS as exc:
            if not isolate:
                raise _ItemFailed from exc
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
            return exc
        if isolate:
            conn.execute("RELEASE item")
        return None if row is None else int(row[0])


def _rollback_keeping_the_error(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open. SQLite ends the transaction itself on some
    errors ("database or disk is full"); a ROLLBACK then raises "cannot rollback - no
    transaction is active", which would hide the error that matters."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


# Errors caused by one item's data; anything else (locked, disk full…) fails the batch.
_SQLITE_ITEM_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    ValueError,
    TypeError,
    OverflowError,
)


DEADLOCK_RETRIES = 5


class _ItemFailed(Exception):
    """One item of an optimistic batch failed: redo the batch with savepoints."""


class _PostgresApplier:
    """Raw ``asyncpg`` on a connection borrowed from the SQLAlchemy pool."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def __call__(self, items: list[InsertThen]) -> list[Result]:
        import asyncpg

        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                return await self._apply_all(items)
            except asyncpg.TransactionRollbackError:
                # Two replicas' batches waited on each other's rows (the same delivery sent
                # to both, the same installation row): PostgreSQL aborted one. Nothing of it
                # was written; doing it again sees what the other committed.
                if attempt == DEADLOCK_RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def _apply_all(self, items: list[InsertThen]) -> list[Result]:
        async with self._db.engine.connect() as sa_conn:
            raw = (await sa_conn.get_raw_connection()).driver_connection
            assert raw is not None
            async with raw.transaction():
                return [await self._apply_one(raw, item) for item in items]

    def close(self) -> None:
        pass

    async def _apply_one(self, conn: Any, item: InsertThen) -> Result:
        import asyncpg

        try:
            async with conn.transaction():  # a savepoint inside the batch transaction
                sql, args = _pg(item.insert)
                row_id = await conn.fetchval(sql, *args)
                if row_id is not None:
                    for stmt in item.then:
                        sql, args = _pg(Statement(stmt.sql, {"row_id": row_id, **stmt.params}))
                        await conn.execute(sql, *args)
        except (
            asyncpg.DataError,
            asyncpg.IntegrityConstraintViolationError,
            ValueError,
            TypeError,
            OverflowError,
        ) as exc:  # one item's data; anything else fails the batch
            return exc
        return None if row_id is None else int(row_id)


def _sqlite_params(params: dict[str, Any]) -> dict[str, Any]:
    return {key: sqlite_value(value) for key, value in params.items()}


def sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # The exact text SQLAlchemy's SQLite DATETIME stores, so both sort together.
        return (
            value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        )
    return value


_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=256)
def _pg_sql(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters → asyncpg's ``$n``, and the order of the names."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), tuple(names)


def _pg(stmt: Statement) -> tuple[str, list[Any]]:
    sql, names = _pg_sql(stmt.sql)
    return sql, [stmt.params[name] for name in names]
