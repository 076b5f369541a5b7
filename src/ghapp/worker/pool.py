"""The worker pool: claim runs, keep their leases alive, execute them, record the end.

What a run *does* (find items, run sessions, report back) is an :class:`Executor`; this
module is the machinery around it, the same for every kind of run:

* ``concurrency`` slots claim runs from the :class:`RunQueue` (global limit per process;
  the per-installation limit is part of the claim itself);
* while a run executes, a heartbeat renews its lease and watches for cancellation; a lost
  lease (another worker took the run over) stops the execution;
* a failure the executor calls retryable is queued again with exponential backoff and
  full jitter until the job's ``max_retries`` are used; anything else ends the run through
  :func:`ghapp.runs.finish_run`, which also queues the jobs that run after it;
* :meth:`WorkerPool.stop` stops claiming and hands runs still executing after the grace
  period back to the queue (their lease released), so a deploy loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select, text

from ghapp import logs
from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.models import Job, Run, RunStatus
from ghapp.metrics import Metrics
from ghapp.notify.outbox import queue_event
from ghapp.runs import finish_run
from ghapp.signals import Signals
from ghapp.worker.claim import Claimed, RunQueue, bind_params

log = logging.getLogger("ghapp.worker")

CANCELLED = "cancelled"

_REQUEUE = """
UPDATE runs SET status = 'queued', run_after = :run_after, attempt = attempt + 1,
       lease_owner = NULL, lease_expires_at = NULL, error = :error
WHERE id = :run_id AND lease_owner = :owner AND status = 'running'
"""


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
    retryable: bool = False  # a transient failure (GitHub down, say): try again later
    counters: dict[str, Any] = field(default_factory=dict)  # items_found, cost_usd …


class Executor(Protocol):
    async def execute(self, context: RunContext) -> RunResult: ...


@dataclass(frozen=True)
class PoolSettings:
    concurrency: int = 4
    heartbeat: timedelta = timedelta(seconds=20)
    poll: timedelta = timedelta(seconds=5)  # fallback when no wake-up arrives
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(minutes=30)
    public_url: str = ""  # for links in notifications


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
        self.jitter = jitter or (lambda cap: random.uniform(0, cap))
        self._stopping = asyncio.Event()
        self._listening = asyncio.Lock()
        self._slots: list[asyncio.Task[None]] = []
        self._executing: dict[int, asyncio.Task[RunResult]] = {}
        self._processing: set[asyncio.Task[None]] = set()
        self.finished: list[tuple[int, str]] = []  # (run id, status), for views and tests

    def start(self) -> None:
        self._slots = [
            asyncio.create_task(self._slot(), name=f"worker-slot-{n}")
            for n in range(self.settings.concurrency)
        ]

    async def stop(self, grace: timedelta = timedelta(seconds=30)) -> None:
        """Stop claiming; let running runs finish within ``grace``, then hand them back."""
        self._stopping.set()
        self.signals.work_available.set()
        executing = list(self._executing.values())
        if executing:
            await asyncio.wait(executing, timeout=grace.total_seconds())
        for run_id, task in list(self._executing.items()):
            if not task.done():
                task.cancel()
                await self.queue.release(run_id)
                log.info("run handed back", extra={"run_id": run_id})
        if self._processing:  # finished runs are still being recorded
            await asyncio.wait(list(self._processing))
        for slot in self._slots:
            slot.cancel()
        await asyncio.gather(*self._slots, return_exceptions=True)

    async def _slot(self) -> None:
        while not self._stopping.is_set():
            claimed = await self.queue.claim(self.clock.now())
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
            await self._notify_start(context)
        execution = asyncio.create_task(self.executor.execute(context))
        self._executing[claimed.run_id] = execution
        beating = asyncio.create_task(self._heartbeat(claimed.run_id, context, execution))
        try:
            result = await execution
        except asyncio.CancelledError:
            if self._stopping.is_set() or context.cancel.is_set():
                return  # handed back by stop(), or the lease was lost
            raise
        except Exception as exc:  # a bug must end the run with its reason, not strand it
            log.exception("run execution failed", extra={"run_id": claimed.run_id})
            error = f"internal error: {type(exc).__name__}: {exc}"
            result = RunResult(RunStatus.failed, error=error)
        finally:
            beating.cancel()
            self._executing.pop(claimed.run_id, None)
        await self._record(claimed, context, result)

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
            run = (await conn.execute(select(Run).where(Run.id == claimed.run_id))).one_or_none()
            job = (await conn.execute(select(Job).where(Job.id == claimed.job_id))).one_or_none()
        if run is None or job is None:
            return None
        return RunContext(run=run, job=job)

    async def _heartbeat(
        self, run_id: int, context: RunContext, execution: asyncio.Task[RunResult]
    ) -> None:
        while True:
            # A cancel request anywhere wakes every heartbeat: each looks at its own run now
            # rather than at its next beat, so a cancelled session stops within moments.
            await self.clock.sleep_until(
                self.clock.now() + self.settings.heartbeat, self.signals.cancel_requested
            )
            kept = await self.queue.heartbeat(run_id, self.clock.now())
            if not kept or await self._cancel_requested(run_id):
                context.cancel.set()  # the executor stops its session and reports
                if not kept:
                    log.warning("lease lost", extra={"run_id": run_id})
                    execution.cancel()
                return

    async def _cancel_requested(self, run_id: int) -> bool:
        async with self.db.read() as conn:
            requested = await conn.scalar(select(Run.cancel_requested_at).where(Run.id == run_id))
        return requested is not None

    async def _record(self, claimed: Claimed, context: RunContext, result: RunResult) -> None:
        now = self.clock.now()
        if result.retryable and claimed.attempt <= context.job.max_retries:
            delay = self._backoff(claimed.attempt)
            params = {
                "run_after": now + delay,
                "error": result.error,
                "run_id": claimed.run_id,
                "owner": self.queue.owner,
            }
            async with self.db.write() as conn:
                await conn.execute(text(_REQUEUE), bind_params(conn, params))
            log.info(
                "run will be retried",
                extra={
                    "run_id": claimed.run_id,
                    "attempt": claimed.attempt,
                    "in_s": round(delay.total_seconds(), 1),
                },
            )
            self.finished.append((claimed.run_id, "retrying"))
            return
        async with self.db.write() as conn:
            dependents = await finish_run(
                conn,
                claimed.run_id,
                result.status,
                now,
                error=result.error,
                public_url=self.settings.public_url,
                **result.counters,
            )
        self.finished.append((claimed.run_id, result.status.value))
        if self.metrics is not None:
            self.metrics.runs_finished.labels(result.status.value).inc()
        self.signals.notifications_queued.set()
        if dependents:
            self.signals.runs_queued()

    def _backoff(self, attempt: int) -> timedelta:
        """Exponential with full jitter: a random wait up to base · 2^(attempt-1)."""
        cap = min(
            self.settings.backoff_max.total_seconds(),
            self.settings.backoff_base.total_seconds() * 2 ** (attempt - 1),
        )
        return timedelta(seconds=self.jitter(cap))


async def run_pool_until_stopped(pool: WorkerPool, stop: asyncio.Event) -> None:
    """Start ``pool``, wait for ``stop``, shut it down gracefully."""
    pool.start()
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    await pool.stop()
