"""Long-lived tasks that survive any error.

A worker process is a handful of loops that must run as long as the process does: worker
slots, the scheduler, the notification dispatcher, config syncs, the wake-up listener. A
database restart, a full disk or a bug in one round must cost a pause, never the loop: a
loop that dies silently leaves a process that looks healthy and does nothing.

:func:`supervise` runs a loop's body, and when it raises, logs the error, waits a backoff
(exponential, bounded, with jitter so replicas do not retry in step) and starts it again.
Each restart is counted, for ``/metrics`` and for tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from ghapp.clock import Clock

log = logging.getLogger("ghapp.supervise")


@dataclass(frozen=True)
class Backoff:
    """Waits after consecutive failures: base · 2^(n-1), at most ``cap``, with jitter."""

    base: float = 0.5  # seconds
    cap: float = 30.0

    def delay(
        self, failures: int, jitter: Callable[[float, float], float] = random.uniform
    ) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return jitter(ceiling / 2, ceiling)  # never zero: a broken loop must not spin


class Restarts(Counter[str]):
    """How often each supervised task was restarted (read by metrics and readiness)."""


async def pause(clock: Clock, seconds: float) -> None:
    """Wait ``seconds`` on ``clock`` (cancellable; nothing cuts it short)."""
    await clock.sleep_until(clock.now() + timedelta(seconds=seconds), asyncio.Event())


async def supervise(
    name: str,
    body: Callable[[], Awaitable[None]],
    clock: Clock,
    *,
    backoff: Backoff | None = None,
    restarts: Restarts | None = None,
) -> None:
    """Run ``body`` until it returns; restart it after a backoff whenever it raises."""
    backoff = backoff or Backoff()
    failures = 0
    while True:
        started = time.monotonic()
        try:
            await body()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # A body that ran well for a while before failing starts its backoff afresh.
            failures = 1 if time.monotonic() - started > backoff.cap else failures + 1
            wait = backoff.delay(failures)
            if restarts is not None:
                restarts[name] += 1
            log.exception(
                "%s stopped by an error; restarting",
                name,
                extra={"task": name, "failures": failures, "in_s": round(wait, 2)},
            )
            await pause(clock, wait)


class RoundFailures:
    """A loop's failed rounds in a row: logged (the database's own words for database
    trouble, a traceback for anything else) and turned into a backoff before the next."""

    def __init__(self, name: str, backoff: Backoff | None = None) -> None:
        self.name = name
        self.backoff = backoff or Backoff(base=1.0, cap=30.0)
        self.count = 0

    def failed(self, exc: Exception) -> float:
        """Note a failed round; the seconds to wait before the next one."""
        from ghapp.db.errors import describe, is_database_trouble

        self.count += 1
        wait = self.backoff.delay(self.count)
        extra = {"task": self.name, "failures": self.count, "in_s": round(wait, 2)}
        if is_database_trouble(exc):
            log.warning("%s round failed", self.name, extra={**extra, "error": describe(exc)})
        else:
            log.exception("%s round failed", self.name, extra=extra)
        return wait

    def succeeded(self) -> None:
        self.count = 0
