"""The worker pool: claim runs, keep their leases alive, execute them, record the end.

What a run *does* (find items, run sessions, report back) is an :class:`Executor`; this
module is the machinery around it, the same for every kind of run:

* ``concurrency`` slots claim runs from the :class:`RunQueue` (global limit per process;
  the per-installation limit is part of the claim itself). A slot survives any error: a
  failed claim (the database restarting, the disk full) is logged and retried after a
  bounded backoff, and a slot that still dies is restarted by its supervisor;
* while a run executes, a heartbeat renews its lease and watches for cancellation (a cancel
  request wakes it at once); a lost lease (another worker took the run over) stops the
  execution. A heartbeat that cannot reach the database tries again sooner;
* GitHub or database trouble makes a run *retryable*: it is queued again with exponential
  backoff and full jitter for as long as the retry window (``GHAPP_RETRY_WINDOW_SECONDS``)
  has not passed since the trouble began. Anything else ends the run through
  :func:`ghapp.runqueue.finish.finish_run`, which also queues the jobs that run after it; a
  session of the run still open then ends with it. Recording the end is itself retried until the
  database takes it, with the lease kept meanwhile;
* :meth:`WorkerPool.stop` stops claiming, lets running runs finish within the grace period
  and hands the rest back to the queue (their lease released), so a deploy loses nothing.
  Every step of it is bounded, even while the database is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from ghapp import logs
from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.errors import describe, is_database_trouble
from ghapp.db.lease import RetryBackoff, full_jitter
from ghapp.db.models import Job, Run, RunStatus, Session, SessionStatus
from ghapp.metrics import Metrics
from ghapp.notify.outbox import queue_event
from ghapp.runqueue.claim import Claimed, RunQueue
from ghapp.runqueue.finish import finish_run
from ghapp.signals import Signals
from ghapp.supervise import Backoff, Restarts, pause, supervise

log = logging.getLogger("ghapp.worker")

CANCELLED = "cancelled"


@dataclass
class RunContext:
    """What an executor gets: the run, its job, and a way to know it should stop."""

    run: Any
    job: Any
    cancel: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    error: str | None = None
    retryable: bool = False  # GitHub or database trouble: try again later (within the window)
    counters: dict[str, Any] = field(default_factory=dict)  # items_found, cost_usd …


class Executor(Protocol):
    async def execute(self, context: RunContext) -> RunResult: ...


@dataclass(frozen=True)
class PoolSettings:
    concurrency: int = 4
    heartbeat: timedelta = timedelta(seconds=20)
    poll: timedelta = timedelta(seconds=5)  # fallback when no wake-up arrives
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(minutes=2)  # an outage's end is noticed this soon
    retry_window: timedelta = timedelta(minutes=15)  # trouble retried this long, then failed
    public_url: str = ""  # for links in notifications
    database_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.2, cap=10.0))
    release_timeout: float = 5.0  # seconds to hand runs back at shutdown (the DB may be down)


@dataclass
class PoolHealth:
    """What readiness and metrics read: are the slots alive, can they claim?"""

    slots: list[asyncio.Task[None]] = field(default_factory=list)
    last_claim_ok: datetime | None = None
    claim_failing_since: datetime | None = None
    last_claim_error: str | None = None
    restarts: Restarts = field(default_factory=Restarts)

    @property
    def live_slots(self) -> int:
        return sum(1 for slot in self.slots if not slot.done())

    def problem(self) -> str | None:
        """Why this pool cannot work now, or None."""
        if self.slots and self.live_slots == 0:
            return "no worker slot is alive"
        if self.claim_failing_since is not None:
            return f"worker slots cannot claim runs: {self.last_claim_error}"
        return None


class WorkerPool:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        signals: Signals,
        queue: RunQueue,
        executor: Executor,
        settings: PoolSettings | None = None,
        *,
        jitter: Callable[[float], float] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.db = db
        self.clock = clock
        self.signals = signals
        self.queue = queue
        self.executor = executor
        self.settings = settings or PoolSettings()
        self.backoff = RetryBackoff(
            self.settings.backoff_base, self.settings.backoff_max, jitter or full_jitter
        )
        self._stopping = asyncio.Event()
        self._listening = asyncio.Lock()
        self._executing: dict[int, asyncio.Task[RunResult]] = {}
        self._processing: set[asyncio.Task[None]] = set()
        self.health = PoolHealth()
        self.finished: list[tuple[int, str]] = []  # (run id, status), for views and tests

    def start(self) -> None:
        self.health.slots = [
            asyncio.create_task(
                supervise(
                    f"worker-slot-{n}", self._slot, self.clock, restarts=self.health.restarts
                ),
                name=f"worker-slot-{n}",
            )
            for n in range(self.settings.concurrency)
        ]

    async def stop(self, grace: timedelta = timedelta(seconds=30)) -> None:
        """Stop claiming; let running runs finish within ``grace``, then hand them back.

        Bounded in every state: runs still going after ``grace`` are cancelled (their
        sessions killed) and released within ``release_timeout``; if the database cannot
        take that, their leases simply lapse and another worker takes them over.
        """
        self._stopping.set()
        self.signals.work_available.set()
        executing = list(self._executing.values())
        if executing:
            await asyncio.wait(executing, timeout=grace.total_seconds())
        handed_back = [run_id for run_id, task in self._executing.items() if not task.done()]
        for run_id in handed_back:
            self._executing[run_id].cancel()
        await within(self.settings.release_timeout, self._release(handed_back))
        if self._processing:  # finished runs are still being recorded
            await asyncio.wait(list(self._processing), timeout=self.settings.release_timeout)
        for task in [*self._processing, *self.health.slots]:
            task.cancel()
        await within(self.settings.release_timeout, self._settle(self._processing))
        await within(self.settings.release_timeout, self._settle(self.health.slots))

    async def _release(self, run_ids: list[int]) -> None:
        for run_id in run_ids:
            try:
                await self.queue.release(run_id)
                log.info("run handed back", extra={"run_id": run_id})
            except Exception as exc:  # its lease lapses instead
                log.warning(
                    "run not handed back; its lease will lapse",
                    extra={"run_id": run_id, "error": describe(exc)},
                )

    @staticmethod
    async def _settle(tasks: Iterable[asyncio.Task[Any]]) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _slot(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                claimed = await self.queue.claim(self.clock.now())
            except Exception as exc:  # the database is away: wait, then claim again
                failures += 1
                self._claim_failed(exc)
                await pause(self.clock, self.settings.database_backoff.delay(failures))
                continue
            failures = 0
            self._claim_succeeded()
            if claimed is None:
                # One idle slot listens for work; the others wait behind it. A wake-up
                # then costs one claim, not one per idle slot (which lost the race anyway).
                async with self._listening:
                    wake_at = self.clock.now() + self.settings.poll
                    await self.clock.sleep_until(wake_at, self.signals.work_available)
                continue
            self.signals.work_available.set()  # there may be more: wake a sibling slot
            task = asyncio.create_task(self.process(claimed))
            self._processing.add(task)
            task.add_done_callback(self._processing.discard)
            try:
                await asyncio.shield(task)  # stop() waits for the recording, not the slot
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one run must not take the slot down
                log.exception("run processing failed", extra={"run_id": claimed.run_id})

    def _claim_failed(self, exc: Exception) -> None:
        health = self.health
        health.last_claim_error = describe(exc)
        if health.claim_failing_since is None:
            health.claim_failing_since = self.clock.now()
            log.warning("cannot claim runs", extra={"error": health.last_claim_error})

    def _claim_succeeded(self) -> None:
        health = self.health
        if health.claim_failing_since is not None:
            log.info("claiming runs again", extra={"since": health.claim_failing_since.isoformat()})
        health.claim_failing_since = None
        health.last_claim_ok = self.clock.now()

    async def process(self, claimed: Claimed) -> None:
        """Execute one claimed run to its end (or until its lease is lost)."""
        with logs.bind(run_id=claimed.run_id):
            await self._process(claimed)

    async def _process(self, claimed: Claimed) -> None:
        context = await self._context(claimed)
        if context is None:  # the job was deleted under us
            return
        if context.run.cancel_requested_at is not None:
            # Cancelled while its worker was gone (or before a retry): end it, run nothing.
            await self._record(claimed, context, RunResult(RunStatus.cancelled, error=CANCELLED))
            return
        if context.job.notifier_ids:
            try:
                await self._notify_start(context)
            except Exception as exc:  # a notice is a side matter: the run goes on
                log.warning(
                    "start notification not queued",
                    extra={"run_id": claimed.run_id, "error": describe(exc)},
                )
        execution = asyncio.create_task(self.executor.execute(context))
        self._executing[claimed.run_id] = execution
        beating = asyncio.create_task(self._heartbeat(claimed.run_id, context, execution))
        try:
            try:
                result = await execution
            except asyncio.CancelledError:
                if self._stopping.is_set() or context.cancel.is_set():
                    return  # handed back by stop(), or the lease was lost
                raise
            except Exception as exc:  # the run ends with its reason, never stranded
                result = self._failure(claimed.run_id, exc)
            finally:
                self._executing.pop(claimed.run_id, None)
            await self._record_until_stored(claimed, context, result)
        finally:
            beating.cancel()  # kept beating while the end is recorded: the run stays ours

    def _failure(self, run_id: int, exc: Exception) -> RunResult:
        if is_database_trouble(exc):
            log.warning(
                "run met database trouble", extra={"run_id": run_id, "error": describe(exc)}
            )
            return RunResult(RunStatus.failed, error=f"database: {describe(exc)}", retryable=True)
        log.exception("run execution failed", extra={"run_id": run_id})
        return RunResult(RunStatus.failed, error=f"internal error: {describe(exc)}")

    async def _record_until_stored(
        self, claimed: Claimed, context: RunContext, result: RunResult
    ) -> None:
        """Record the end; while the database cannot take it, wait and try again. Given up
        only at shutdown: the lease then lapses, and the worker that takes the run over
        finds its sessions' results stored and does not run them again."""
        failures = 0
        while True:
            try:
                await self._record(claimed, context, result)
                return
            except Exception as exc:
                failures += 1
                log.warning(
                    "run end not recorded; trying again",
                    extra={"run_id": claimed.run_id, "error": describe(exc)},
                )
                if self._stopping.is_set():
                    return
                await pause(self.clock, self.settings.database_backoff.delay(failures))

    async def _notify_start(self, context: RunContext) -> None:
        async with self.db.write() as conn:
            queued = await queue_event(
                conn,
                "task_started",
                context.job,
                self.clock.now(),
                run=context.run,
                public_url=self.settings.public_url,
            )
        if queued:
            self.signals.notifications_queued.set()

    async def _context(self, claimed: Claimed) -> RunContext | None:
        async with self.db.read() as conn:
            run = (
                await conn.execute(select(Run).where(col(Run.id) == claimed.run_id))
            ).one_or_none()
            job = (
                await conn.execute(select(Job).where(col(Job.id) == claimed.job_id))
            ).one_or_none()
        if run is None or job is None:
            return None
        return RunContext(run=run, job=job)

    async def _heartbeat(
        self, run_id: int, context: RunContext, execution: asyncio.Task[RunResult]
    ) -> None:
        every = self.settings.heartbeat
        while True:
            # A cancel request anywhere wakes every heartbeat: each looks at its own run now
            # rather than at its next beat, so a cancelled session stops within moments.
            await self.clock.sleep_until(self.clock.now() + every, self.signals.cancel_requested)
            try:
                kept = await self.queue.heartbeat(run_id, self.clock.now())
                cancelled = kept and await self._cancel_requested(run_id)
            except Exception as exc:  # the database is away: beat again sooner
                log.warning("heartbeat failed", extra={"run_id": run_id, "error": describe(exc)})
                every = min(self.settings.heartbeat, timedelta(seconds=2))
                continue
            every = self.settings.heartbeat
            if not kept or cancelled:
                context.cancel.set()  # the executor stops its session and reports
                if not kept:
                    log.warning("lease lost", extra={"run_id": run_id})
                    execution.cancel()
                return

    async def _cancel_requested(self, run_id: int) -> bool:
        async with self.db.read() as conn:
            requested = await conn.scalar(
                select(col(Run.cancel_requested_at)).where(col(Run.id) == run_id)
            )
        return requested is not None

    async def _record(self, claimed: Claimed, context: RunContext, result: RunResult) -> None:
        now = self.clock.now()
        error = result.error
        if result.retryable:
            since = context.run.retrying_since or now
            in_window = now - since < self.settings.retry_window
            if in_window or claimed.attempt <= context.job.max_retries:
                await self._requeue(claimed, result, since, now)
                return
            minutes = (now - since).total_seconds() / 60
            error = f"{error} (still failing after retrying for {minutes:.0f} min)"
        async with self.db.write() as conn:
            dependents = await finish_run(
                conn,
                claimed.run_id,
                result.status,
                now,
                error=error,
                public_url=self.settings.public_url,
                **result.counters,
            )
            await end_open_sessions(conn, claimed.run_id, result.status, now, error)
        self.finished.append((claimed.run_id, result.status.value))
        if self.metrics is not None:
            self.metrics.runs_finished.labels(result.status.value).inc()
        self.signals.notifications_queued.set()
        if dependents:
            self.signals.runs_queued()

    async def _requeue(
        self, claimed: Claimed, result: RunResult, since: datetime, now: datetime
    ) -> None:
        """Queue the run again after a backoff; the run page says it waits, and why."""
        delay = self._backoff(claimed.attempt)
        retry_at = now + delay
        error = f"{result.error} — retrying at {retry_at:%H:%M:%S} UTC"
        await self.queue.retry(claimed.run_id, retry_at, error=error, since=since)
        log.info(
            "run will be retried",
            extra={
                "run_id": claimed.run_id,
                "attempt": claimed.attempt,
                "in_s": round(delay.total_seconds(), 1),
                "error": result.error,
            },
        )
        self.finished.append((claimed.run_id, "retrying"))

    def _backoff(self, attempt: int) -> timedelta:
        """Exponential with full jitter: a random wait up to base · 2^(attempt-1)."""
        return self.backoff.delay(attempt)


async def end_open_sessions(
    conn: AsyncConnection, run_id: int, status: RunStatus, now: datetime, error: str | None
) -> None:
    """A run's sessions still open when it ends will never finish (the run was given up
    after GitHub or database trouble, or failed mid-session): they end with it, so that no
    session shows ``running`` for ever."""
    ended = SessionStatus.cancelled if status == RunStatus.cancelled else SessionStatus.failed
    await conn.execute(
        update(Session)
        .where(col(Session.run_id) == run_id, col(Session.completed_at).is_(None))
        .values(status=ended.value, completed_at=now, error=error or f"the run {status.value}")
    )


async def within(seconds: float, work: Awaitable[object]) -> bool:
    """Await ``work`` for at most ``seconds`` (then cancel it); True if it finished."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=seconds)
        return False
    return not task.cancelled() and task.exception() is None


async def run_pool_until_stopped(pool: WorkerPool, stop: asyncio.Event) -> None:
    """Start ``pool``, wait for ``stop``, shut it down gracefully."""
    pool.start()
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    await pool.stop()
