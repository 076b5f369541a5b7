"""Async database access that behaves the same on SQLite and PostgreSQL.

SQLite is the embedded default: WAL (readers never block the writer), a busy timeout,
foreign keys on, and writes taken with ``BEGIN IMMEDIATE`` behind an in-process lock so
two coroutines never race for the write lock (SQLite's busy handler sleeps in steps of
up to 100 ms, which would wreck latency). PostgreSQL goes through asyncpg with a normal
connection pool; its own locking does the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 5000
_WRITE_OPTION = "ghapp_write"


def normalise_url(url: str) -> str:
    """Accept the URL spellings people paste and pick the async driver for them."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


class Database:
    """An engine plus the two ways in: :meth:`read` and :meth:`write`."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: AsyncEngine = _make_engine(self.url, pool_size)
        # One writer at a time inside this process (SQLite only).
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write_lock(self) -> AbstractAsyncContextManager[Any]:
        """Held by every writer in this process on SQLite; a no-op on PostgreSQL."""
        return self._write_lock or nullcontext()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one write transaction, committed on success."""
        async with self.write_lock():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**{_WRITE_OPTION: True})
                async with conn.begin():
                    yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (a deferred transaction, rolled back at the end)."""
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session inside one write transaction."""
        async with self.write() as conn:
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session
                await session.flush()

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self.read() as conn:
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_engine(url: str, pool_size: int) -> AsyncEngine:
    if not url.startswith("sqlite"):
        # A database that does not answer must fail a connection attempt in seconds, not
        # asyncpg's default minute: callers back off and retry, and readiness says why.
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=10,
            connect_args={"timeout": 10},
        )
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # With WAL, NORMAL loses no committed transaction on a process crash, only
        # possibly the last ones on power loss; FULL would fsync every commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that upgrades
        # to a writer mid-way can fail with SQLITE_BUSY without waiting.
        immediate = conn.get_execution_options().get(_WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
