"""Delivering queued notifications, off every run's path, surviving restarts.

Each replica running workers runs one :class:`Dispatcher`. The outbox is a leased queue
(:mod:`ghapp.db.lease`, declared as :data:`NOTIFICATIONS`): the dispatcher claims due rows
(``pending``, or ``sending`` whose claim lapsed because a process died mid-send) by moving
them to ``sending`` with a claim deadline in ``next_attempt_at`` — on PostgreSQL ``FOR
UPDATE SKIP LOCKED``, so two replicas never send the same row. Each attempt is appended to
the row's ``attempt_log``.
Network errors, 5xx and 429 (honouring ``Retry-After``) are retried with exponential
backoff up to ``GHAPP_NOTIFY_MAX_ATTEMPTS``; other 4xx fail at once. Ten failed attempts
in a row disable the notifier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.lease import LeasedQueue, LeasedTable, RetryBackoff, equal_jitter
from ghapp.db.models import AuditEntry, Notification, Notifier, table_of
from ghapp.metrics import Metrics
from ghapp.notify.send import Attempt
from ghapp.notify.sender import Sender
from ghapp.notify.service import NotifierService
from ghapp.signals import Signals
from ghapp.supervise import RoundFailures

log = logging.getLogger("ghapp.notify")

DISABLE_AFTER = 10  # consecutive failed attempts
CLAIM_FOR = timedelta(minutes=2)  # a send never takes longer than the timeout; this is slack
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=10)
BATCH = 20
POLL = timedelta(seconds=30)

# The outbox's lease: pending → sending, the claim's deadline kept in next_attempt_at (a row
# is due again when it passes: its sender died) and no owner column. A claim is an attempt.
NOTIFICATIONS = LeasedTable(
    name="notifications",
    ready="pending",
    held="sending",
    due="next_attempt_at",
    lease="next_attempt_at",
    owner=None,
    order=("next_attempt_at", "id"),
    on_claim=("attempts = attempts + 1",),
)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        signals: Signals,
        notifiers: NotifierService,
        sender: Sender,
        *,
        max_attempts: int = 5,
        jitter: Callable[[float], float] = equal_jitter,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.db = db
        self.clock = clock
        self.signals = signals
        self.notifiers = notifiers
        self.sender = sender
        self.max_attempts = max_attempts
        self.backoff = RetryBackoff(BACKOFF_BASE, BACKOFF_MAX, jitter)
        self.outbox = LeasedQueue(db, NOTIFICATIONS, None, CLAIM_FOR)

    async def run(self) -> None:
        """Deliver what is due, then sleep until the next is due or a new one is queued."""
        failures = RoundFailures("notifications")
        while True:
            self.signals.notifications_queued.clear()
            try:
                await self.deliver_due()
                wake = await self.next_due()
                failures.succeeded()
            except Exception as exc:  # one bad round must not stop delivery for good
                wake = self.clock.now() + timedelta(seconds=failures.failed(exc))
            cap = self.clock.now() + POLL
            await self.clock.sleep_until(
                min(wake, cap) if wake else cap, self.signals.notifications_queued
            )

    async def deliver_due(self) -> int:
        """Claim and send every due notification; return how many were attempted."""
        total = 0
        while True:
            claimed = await self._claim(self.clock.now())
            if not claimed:
                return total
            await asyncio.gather(*(self._attempt(row) for row in claimed))
            total += len(claimed)

    async def next_due(self) -> datetime | None:
        return await self.outbox.next_due()

    async def _claim(self, now: datetime) -> list[Any]:
        async with self.db.write() as conn:
            claimed = [row.id for row in await self.outbox.claim_in(conn, now, BATCH)]
            if not claimed:
                return []
            return list(
                (
                    await conn.execute(
                        select(Notification).where(col(Notification.id).in_(claimed))
                    )
                ).all()
            )

    async def _attempt(self, row: Any) -> None:
        notifier = await self._notifier(row.notifier_id)
        if notifier is None or not notifier.enabled:
            await self._give_up(row, "the notifier is disabled or deleted")
            return
        try:
            attempt = await self.sender.send(
                notifier.type,
                self.notifiers.target_of(notifier),
                row.payload,
                self.notifiers.secret_of(notifier),
            )
        except Exception as exc:  # a bug or a bad key: recorded, not raised
            log.exception("notification send failed", extra={"notification_id": row.id})
            attempt = Attempt(False, None, None, f"{type(exc).__name__}: {exc}"[:300], 0)
        await self._record(row, notifier, attempt)

    async def _notifier(self, notifier_id: int) -> Any:
        async with self.db.read() as conn:
            return (
                await conn.execute(select(Notifier).where(col(Notifier.id) == notifier_id))
            ).first()

    async def _record(self, row: Any, notifier: Any, attempt: Attempt) -> None:
        now = self.clock.now()
        entry = {
            "at": now.isoformat(),
            "status_code": attempt.status_code,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
        }
        values: dict[str, Any] = {
            "http_status": attempt.status_code,
            "error": attempt.error,
            "attempt_log": [*row.attempt_log, entry],
        }
        if attempt.ok:
            values.update(status="sent", sent_at=now)
        elif attempt.retryable and row.attempts < self.max_attempts:
            delay = self._delay(row.attempts, attempt)
            values.update(status="pending", next_attempt_at=now + delay)
        else:
            values["status"] = "failed"
        async with self.db.write() as conn:
            await conn.execute(
                update(Notification).where(col(Notification.id) == row.id).values(**values)
            )
            await self._count(conn, notifier, attempt.ok, now)
        if self.metrics is not None:
            outcome = {"sent": "sent", "pending": "retry"}.get(values["status"], "failed")
            self.metrics.notifications.labels(notifier.type, outcome).inc()
        log.info(
            "notification attempt",
            extra={
                "notification_id": row.id,
                "notifier_id": notifier.id,
                "event": row.event,
                "ok": attempt.ok,
                "status_code": attempt.status_code,
                "attempt": row.attempts,
                "outcome": values["status"],
            },
        )

    async def _count(self, conn: Any, notifier: Any, ok: bool, now: datetime) -> None:
        """Success resets the failure count; the tenth failure in a row disables."""
        if ok:
            await conn.execute(
                update(Notifier)
                .where(col(Notifier.id) == notifier.id)
                .values(failure_count=0, last_used_at=now)
            )
            return
        failures = int(
            await conn.scalar(
                update(Notifier)
                .where(col(Notifier.id) == notifier.id)
                .values(failure_count=col(Notifier.failure_count) + 1, last_used_at=now)
                .returning(col(Notifier.failure_count))
            )
            or 0
        )
        if failures >= DISABLE_AFTER and notifier.enabled:
            await conn.execute(
                update(Notifier)
                .where(col(Notifier.id) == notifier.id)
                .values(enabled=False, updated_at=now)
            )
            await conn.execute(
                table_of(AuditEntry)
                .insert()
                .values(
                    actor="ghapp",
                    action="notifier.disable",
                    object_type="notifier",
                    object_id=str(notifier.id),
                    before={"enabled": True},
                    after={"enabled": False, "reason": f"{failures} failed attempts in a row"},
                    created_at=now,
                )
            )
            log.warning(
                "notifier disabled", extra={"notifier_id": notifier.id, "failures": failures}
            )

    async def _give_up(self, row: Any, reason: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(Notification)
                .where(col(Notification.id) == row.id)
                .values(status="failed", error=reason)
            )

    def _delay(self, attempts: int, attempt: Attempt) -> timedelta:
        if attempt.retry_after is not None:
            return timedelta(seconds=min(attempt.retry_after, BACKOFF_MAX.total_seconds()))
        return self.backoff.delay(attempts)
