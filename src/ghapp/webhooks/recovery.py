"""Webhook delivery recovery: ask GitHub again for the deliveries ghapp failed to take.

GitHub does not retry a failed delivery. When ghapp answers an error (``503`` while its
database is down or while it is busy) or nothing at all, the event is lost unless somebody
presses *Redeliver*. GitHub's advice is a job that lists the app's recent deliveries and
redelivers the failed ones; this is that job, run by the worker role:

* **One process at a time**: a pass holds the ``delivery_recovery`` row of
  ``loop_leases`` (``db/loop_lease.py``) and keeps it until its next pass is due, so other
  replicas find it held and the passes keep one cadence; if its holder dies, another
  worker takes over once the lease lapses.
* **What is looked at**: ``GET /app/hook/deliveries`` (as the app, with its JWT), newest
  first, 100 a page, following the ``Link`` header's ``next`` (a ``cursor``), until the
  deliveries are older than the window: since the previous pass (``covered_until``), or
  at the very first pass since the last delivery stored, never more than
  ``GHAPP_DELIVERY_RECOVERY_LOOKBACK_HOURS`` back; a few minutes of overlap absorb the
  difference between GitHub's clock and ours.
* **What is redelivered**: a failed attempt (``status_code`` outside 200-399, 0 when there
  was no answer) whose GUID (GitHub's ``X-GitHub-Delivery``, the same on every attempt) is
  not among ghapp's stored deliveries, no attempt with the same GUID succeeded, and which
  was never asked for before: each GUID is asked for **at most once, ever** (its row in
  ``redeliveries``, written before asking, unique by GUID), so a delivery that fails again
  (the payload is refused, say) is not asked for in a loop.
* **How fast**: at most ``GHAPP_DELIVERY_RECOVERY_PER_MINUTE`` requests a minute, paced
  on the injected clock. ``POST /app/hook/deliveries/{id}/attempts`` only queues the
  redelivery: it arrives at ``POST /webhooks/github`` like any other delivery.

Without the app's id and private key there is no JWT to list deliveries with: the loop
says so once and ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gidgethub import GitHubException
from sqlalchemy import func, select, update
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.core import dialect_insert
from ghapp.db.errors import describe
from ghapp.db.loop_lease import LoopLeaseHolder
from ghapp.db.models import Delivery, Redelivery, table_of
from ghapp.github.app import GitHubApp
from ghapp.metrics import Metrics
from ghapp.settings import Settings
from ghapp.supervise import RoundFailures

log = logging.getLogger("ghapp.webhooks.recovery")

LEASE_NAME = "delivery_recovery"
PER_PAGE = 100  # GitHub's largest page
# Deliveries a little older than the window are looked at too: GitHub's clock and ours
# differ, and a delivery may show in the listing a moment after it was made.
OVERLAP = timedelta(minutes=10)
_IN_CHUNK = 500  # GUIDs per IN (...) list
JWT_REUSE_S = 300.0  # half the ten minutes GitHub accepts a JWT for


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt in GitHub's listing (``hook-delivery-item``)."""

    id: int
    guid: str
    delivered_at: datetime
    status_code: int
    event: str
    action: str | None
    redelivery: bool

    @classmethod
    def of(cls, item: dict[str, Any]) -> Attempt:
        return cls(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00")),
            status_code=int(item.get("status_code") or 0),
            event=str(item["event"]),
            action=item.get("action"),
            redelivery=bool(item.get("redelivery")),
        )

    @property
    def succeeded(self) -> bool:
        # GitHub's own split (its ``status=success`` filter): 200-399 is a success.
        return 200 <= self.status_code < 400


@dataclass
class PassReport:
    """What one pass did (for logs and tests)."""

    ran: bool  # False: another process holds the lease
    since: datetime | None = None
    listed: int = 0  # attempts looked at, within the window
    requested: int = 0  # redeliveries GitHub accepted
    failed: int = 0  # redeliveries GitHub refused, or could not be asked for
    lost_lease: bool = False


def failed_guids(attempts: Iterable[Attempt]) -> dict[str, Attempt]:
    """The latest failed attempt of each GUID none of whose attempts succeeded."""
    latest: dict[str, Attempt] = {}
    succeeded: set[str] = set()
    for attempt in attempts:
        if attempt.succeeded:
            succeeded.add(attempt.guid)
        elif attempt.guid not in latest or attempt.delivered_at > latest[attempt.guid].delivered_at:
            latest[attempt.guid] = attempt
    return {guid: attempt for guid, attempt in latest.items() if guid not in succeeded}


class DeliveryRecovery:
    """The recovery loop of one worker process (see the module's description)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        github: GitHubApp,
        metrics: Metrics,
        owner: str,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.github = github
        self.metrics = metrics
        self.owner = owner
        self.lease = LoopLeaseHolder(db, LEASE_NAME, owner)
        self.interval = timedelta(seconds=settings.delivery_recovery_interval_seconds)
        self.lookback = timedelta(hours=settings.delivery_recovery_lookback_hours)
        self.gap = timedelta(minutes=1) / settings.delivery_recovery_per_minute
        # Held this long from each renewal: longer than the wait between two requests, so
        # pacing never lets it lapse under a live holder.
        self.lease_span = max(self.interval, 2 * self.gap, timedelta(minutes=1))
        self._next_request: datetime | None = None  # pacing, across passes
        self._jwt: tuple[str, float] | None = None  # the app JWT and when it was made

    async def run(self) -> None:
        """A pass at start-up, then one every interval, for as long as the process runs."""
        problem = self.settings.github_app_problem()
        if problem is not None:
            log.info("webhook delivery recovery is off: %s", problem)
            return
        failures = RoundFailures("delivery-recovery")
        while True:
            try:
                await self.pass_once()
                failures.succeeded()
                wait = self.interval
            except Exception as exc:  # GitHub or the database is away; the next pass retries
                wait = timedelta(seconds=failures.failed(exc))
            await self.clock.sleep_until(self.clock.now() + wait, asyncio.Event())

    async def pass_once(self) -> PassReport:
        """Look for failed deliveries and ask for each once; a pass another process is
        making (it holds the lease) is left to it."""
        started = self.clock.now()
        if not await self.lease.take(started, started + self.lease_span):
            log.debug("webhook delivery recovery: another process holds the lease")
            return PassReport(ran=False)
        since = await self.window_start(started)
        report = PassReport(ran=True, since=since)
        attempts = await self.list_since(since, report)
        candidates = failed_guids(attempts)
        wanted = await self.not_yet_handled(list(candidates))
        for guid in sorted(wanted, key=lambda g: candidates[g].delivered_at):
            if not await self.lease.renew(self.clock.now() + self.lease_span):
                log.warning("webhook delivery recovery: lease lost to another process; stopping")
                report.lost_lease = True
                return report
            await self.redeliver(candidates[guid], report)
        # Held until the next pass is due: the other replicas' passes find it taken.
        await self.lease.renew(self.clock.now() + self.interval, covered_until=started)
        if report.requested or report.failed:
            log.info(
                "webhook delivery recovery pass",
                extra={
                    "since": since.isoformat(),
                    "listed": report.listed,
                    "requested": report.requested,
                    "failed": report.failed,
                },
            )
        return report

    def app_jwt(self) -> str:
        """The app's JWT, made again every few minutes rather than for every call: making
        one parses the private key (~50 ms), and GitHub accepts one for ten minutes."""
        made = time.monotonic()  # the JWT's life is GitHub's real time, not the loop's clock
        if self._jwt is None or made - self._jwt[1] > JWT_REUSE_S:
            self._jwt = (self.github.jwt(), made)
        return self._jwt[0]

    async def window_start(self, now: datetime) -> datetime:
        """Since the previous pass, or the last delivery stored; at most the look-back."""
        earliest = now - self.lookback
        reached = await self.lease.covered_until()
        if reached is None:
            async with self.db.read() as conn:
                reached = await conn.scalar(select(func.max(col(Delivery.received_at))))
        if reached is None:
            return earliest
        return max(earliest, reached - OVERLAP)

    async def list_since(self, since: datetime, report: PassReport) -> list[Attempt]:
        """Every attempt GitHub lists that was made at ``since`` or later (newest first;
        the listing is followed page by page only as far as that)."""
        gh = self.github.as_app()
        attempts: list[Attempt] = []
        listing = gh.getiter(
            f"/app/hook/deliveries?per_page={PER_PAGE}", jwt=self.app_jwt(), iterable_key=None
        )
        async with aclosing(listing):  # leaving early must not leave the generator open
            async for item in listing:
                attempt = Attempt.of(item)
                if attempt.delivered_at < since:
                    break  # newest first: everything after this is older still
                attempts.append(attempt)
        report.listed = len(attempts)
        return attempts

    async def not_yet_handled(self, guids: list[str]) -> set[str]:
        """Those of ``guids`` ghapp neither stored nor asked to be redelivered before."""
        known: set[str] = set()
        async with self.db.read() as conn:
            for start in range(0, len(guids), _IN_CHUNK):
                chunk = guids[start : start + _IN_CHUNK]
                stored = select(col(Delivery.delivery_id)).where(
                    col(Delivery.delivery_id).in_(chunk)
                )
                asked = select(col(Redelivery.guid)).where(col(Redelivery.guid).in_(chunk))
                known.update((await conn.scalars(stored)).all())
                known.update((await conn.scalars(asked)).all())
        return set(guids) - known

    async def redeliver(self, attempt: Attempt, report: PassReport) -> None:
        await self._paced()
        row_id = await self._claim(attempt)
        if row_id is None:  # another process asked for this GUID a moment ago
            return
        status: int | None = None
        error: str | None = None
        try:
            gh = self.github.as_app()
            delivery_id = attempt.id  # GitHub's id of the failed attempt, not the GUID
            await gh.post(
                f"/app/hook/deliveries/{delivery_id}/attempts", data=b"", jwt=self.app_jwt()
            )
            status = 202
        except GitHubException as exc:  # GitHub answered, and refused
            status = int(getattr(exc, "status_code", 0)) or None
            error = str(exc)[:500] or type(exc).__name__
        except Exception as exc:  # GitHub could not be reached (after the transport's retries)
            error = describe(exc)[:500]
        outcome = "requested" if error is None else "failed"
        async with self.db.write() as conn:
            await conn.execute(
                update(Redelivery)
                .where(col(Redelivery.id) == row_id)
                .values(result=outcome, http_status=status, error=error)
            )
        self.metrics.redeliveries.labels(outcome).inc()
        extra = {
            "delivery_id": attempt.guid,
            "github_delivery_id": attempt.id,
            "event": attempt.event,
            "failed_status_code": attempt.status_code,
        }
        if error is None:
            report.requested += 1
            log.info("webhook redelivery requested", extra=extra)
        else:
            report.failed += 1
            log.warning("webhook redelivery failed", extra={**extra, "error": error})

    async def _paced(self) -> None:
        """Wait until the next request is allowed (one every ``gap``)."""
        if self._next_request is not None:
            await self.clock.sleep_until(self._next_request, asyncio.Event())
        self._next_request = self.clock.now() + self.gap

    async def _claim(self, attempt: Attempt) -> int | None:
        """Write down that this GUID is being asked for; None if it already was."""
        table = table_of(Redelivery)
        async with self.db.write() as conn:
            statement = (
                dialect_insert(conn, table)
                .values(
                    guid=attempt.guid,
                    github_delivery_id=attempt.id,
                    event=attempt.event[:64],
                    action=(attempt.action or None) and str(attempt.action)[:64],
                    failed_status_code=attempt.status_code,
                    delivered_at=attempt.delivered_at,
                    requested_at=self.clock.now(),
                    requested_by=self.owner[:255],
                    result="requesting",
                )
                .on_conflict_do_nothing(index_elements=["guid"])
                .returning(table.c.id)
            )
            row_id: int | None = await conn.scalar(statement)
        return row_id
