"""Time, injectable: the real clock in production, a fake one that tests move by hand.

Everything that waits for a moment (the scheduler, retry backoff, leases) asks a
:class:`Clock` rather than calling ``datetime.now`` or ``asyncio.sleep`` itself, so tests
can jump 48 hours ahead without waiting and without sleeping as synchronisation.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime | None, wake: asyncio.Event) -> bool:
        """Wait until ``when`` (forever if None) or until ``wake`` is set.

        Returns True if woken by ``wake`` (which is then cleared), False on time.
        """
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime | None, wake: asyncio.Event) -> bool:
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives
        # while the wait is completing, and a task that ignores its cancel never lets the
        # process stop. asyncio.wait never absorbs a cancel: it reaches us as it should.
        timeout = None if when is None else max(0.0, (when - self.now()).total_seconds())
        waiter = asyncio.ensure_future(wake.wait())
        try:
            done, _ = await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()
        if not done:
            return False
        wake.clear()
        return True


class FakeClock:
    """A clock that only moves when told to; sleepers wake when their moment passes."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._sleeper_added: asyncio.Event | None = None

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = moment
        while self._sleepers and self._sleepers[0][0] <= moment:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    @property
    def next_deadline(self) -> datetime | None:
        """The earliest moment a sleeper waits for (tests jump straight to it)."""
        live = [entry for entry in self._sleepers if not entry[2].done()]
        return min(live)[0] if live else None

    async def wait_for_sleeper(self, until: datetime | None = None) -> None:
        """Return once something sleeps (until ``until``, if given): the test's cue."""
        self._sleeper_added = self._sleeper_added or asyncio.Event()
        while self.next_deadline is None or (until is not None and self.next_deadline != until):
            self._sleeper_added.clear()
            await self._sleeper_added.wait()

    async def sleep_until(self, when: datetime | None, wake: asyncio.Event) -> bool:
        if when is not None and when <= self._now:
            return False
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if when is not None:
            heapq.heappush(self._sleepers, (when, next(self._order), timer))
        if self._sleeper_added is not None:
            self._sleeper_added.set()
        waker = asyncio.ensure_future(wake.wait())
        try:
            waits: set[asyncio.Future[Any]] = {timer, waker}
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            waker.cancel()
        if waker in done:
            wake.clear()
            return True
        return False


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
