"""Wake-ups across processes: PostgreSQL ``LISTEN/NOTIFY``.

A run queued by a web replica must wake an idle worker in another process at once, not at
its next poll; a job changed through one replica must wake every scheduler. Each process
keeps one extra connection that LISTENs on ``ghapp_runs`` and ``ghapp_jobs`` and NOTIFYs
them when its own :class:`~ghapp.signals.Signals` fire. Polling stays as the fallback: a
lost notification (or a lost connection, re-opened with backoff) only costs latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import make_url

from ghapp.db.errors import describe
from ghapp.signals import Signals

log = logging.getLogger("ghapp.wakeups")

CHANNELS = {"runs": "ghapp_runs", "jobs": "ghapp_jobs", "cancels": "ghapp_cancels"}
RECONNECT_MAX_S = 30.0
CONNECT_TIMEOUT_S = 10.0


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgWakeups:
    def __init__(self, database_url: str, signals: Signals) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.signals = signals
        self.received = 0  # notifications heard (for tests and status)
        self._conn: Any = None
        self._pending: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self, first_wait: float = 5.0) -> None:
        """Connect and listen: waits a little for the first connection, then keeps one up
        in the background (a database that is down at start-up only delays wake-ups)."""
        self.signals.publish = self.publish
        self._keeper = asyncio.create_task(self._keep_connected(), name="pg-wakeups")
        connected = asyncio.ensure_future(self._connected.wait())
        await asyncio.wait(
            [connected, self._keeper], timeout=first_wait, return_when=asyncio.FIRST_COMPLETED
        )
        connected.cancel()

    async def close(self) -> None:
        self.signals.publish = None
        for task in (self._keeper, self._flush):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    def publish(self, kind: str) -> None:
        """Tell the other processes; coalesced, sent from a task (callers are sync)."""
        self._pending.add(CHANNELS[kind])
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            channel = self._pending.pop()
            if self._conn is None or self._conn.is_closed():
                continue  # the others will poll; we reconnect in the background
            try:
                await self._conn.execute("SELECT pg_notify($1, '')", channel)
            except Exception as exc:  # never let a wake-up break the caller's work
                log.warning("notify failed", extra={"error": type(exc).__name__})

    def _heard(self, _conn: Any, _pid: int, channel: str, _payload: str) -> None:
        self.received += 1
        # Set the events directly: Signals' own methods would publish again (a loop).
        if channel == CHANNELS["runs"]:
            self.signals.work_available.set()
        elif channel == CHANNELS["cancels"]:
            self.signals.cancel_requested.set()
            self.signals.work_available.set()
        elif channel == CHANNELS["jobs"]:
            self.signals.scheduler_wake.set()
            for callback in self.signals.jobs_changed:
                callback()

    async def _keep_connected(self) -> None:
        import asyncpg

        delay = 0.5
        while True:
            try:
                self._conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
                for channel in CHANNELS.values():
                    await self._conn.add_listener(channel, self._heard)
                self._connected.set()
                delay = 0.5
                lost = asyncio.Event()
                self._conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await lost.wait()
                log.warning("wake-up connection lost; reconnecting")
            except Exception as exc:  # whatever it was, keep trying: wake-ups only save time
                log.warning("wake-up connection failed", extra={"error": describe(exc)})
            # Missed wake-ups while disconnected: wake everyone once, then poll as usual.
            self.signals.work_available.set()
            self.signals.scheduler_wake.set()
            self.signals.cancel_requested.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
