"""Putting a worker together: the GitHub client, the executor, the pool."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import httpx

from ghapp.clock import Clock
from ghapp.config.sync import ConfigSyncer, build_config_syncer
from ghapp.db import Database
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.metrics import Metrics
from ghapp.notify.crypto import SecretBox
from ghapp.notify.dispatch import Dispatcher
from ghapp.notify.outbound import Outbound
from ghapp.notify.sender import Sender
from ghapp.notify.service import NotifierService
from ghapp.runners import build_runners
from ghapp.runqueue.claim import Limits, RunQueue
from ghapp.settings import Settings
from ghapp.signals import Signals
from ghapp.supervise import supervise
from ghapp.worker import transcripts
from ghapp.worker.checkout import WorkDir
from ghapp.worker.execute import SessionExecutor
from ghapp.worker.pool import PoolSettings, WorkerPool, within


@dataclass
class Worker:
    pool: WorkerPool
    github: GitHubApp
    dispatcher: Dispatcher
    http: httpx.AsyncClient
    config: ConfigSyncer | None = None
    work: WorkDir | None = None  # this process's checkouts; dead processes' are swept
    prune: Callable[[], Awaitable[None]] | None = None  # old transcripts go (retention)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.pool.start()
        self._supervise("notifications", self.dispatcher.run)
        if self.config is not None:  # .github/ghapp.yml syncs queued by webhooks
            self._supervise("config-sync", self.config.run)
        if self.prune is not None:
            self._supervise("transcripts", self.prune)

    def _supervise(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        restarts = self.pool.health.restarts
        task = supervise(name, body, self.pool.clock, restarts=restarts)
        self._tasks.append(asyncio.create_task(task, name=name))

    async def close(self, grace: timedelta = timedelta(seconds=20)) -> None:
        """Stop: running sessions get ``grace``, then everything ends within seconds."""
        await self.pool.stop(grace)
        for task in self._tasks:
            task.cancel()
        await within(5.0, _settle(self._tasks))
        await self.github.aclose()
        await self.http.aclose()
        if self.work is not None:
            self.work.close()


async def _settle(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def build_worker(
    settings: Settings,
    db: Database,
    clock: Clock,
    signals: Signals,
    concurrency: int = 4,
    metrics: Metrics | None = None,
    *,
    retry: RetryPolicy | None = None,
    jitter: Callable[[float], float] | None = None,
) -> Worker:
    """A worker: its own GitHub client, the executor with the runners, the pool, the
    notification dispatcher and the config syncer. ``retry`` and ``jitter`` are for tests
    that want GitHub's hiccups retried at once."""
    github = GitHubApp(settings, clock, retry)
    if metrics is not None:
        metrics.watch_github(github)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    work = WorkDir(settings.work_root)
    runners = build_runners(settings, db)  # one per name a job may give in ``runner``
    executor = SessionExecutor(
        db, settings, github, clock, metrics=metrics, work_dir=work.open(), runners=runners
    )
    limits = Limits(
        per_installation=settings.max_running_per_installation,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        running=settings.max_running,
    )
    pool_settings = PoolSettings(
        concurrency=concurrency,
        heartbeat=timedelta(seconds=settings.worker_heartbeat_seconds),
        retry_window=timedelta(seconds=settings.retry_window_seconds),
        public_url=settings.public_url,
    )
    queue = RunQueue(db, owner, limits)
    pool = WorkerPool(
        db, clock, signals, queue, executor, pool_settings, jitter=jitter, metrics=metrics
    )
    http, dispatcher = build_dispatcher(settings, db, clock, signals, metrics)
    config = build_config_syncer(db, clock, signals, github, owner=f"{owner}:config")
    prune = partial(transcripts.keep_pruning, db, clock, settings.transcript_retention_days)
    return Worker(pool, github, dispatcher, http, config, work, prune)


def build_dispatcher(
    settings: Settings, db: Database, clock: Clock, signals: Signals, metrics: Metrics | None = None
) -> tuple[httpx.AsyncClient, Dispatcher]:
    http = Outbound.from_settings(settings).client()  # checked destinations, no redirects
    sender = Sender.from_settings(http, settings)
    dispatcher = Dispatcher(
        db,
        clock,
        signals,
        notifier_service(settings, db, clock),
        sender,
        max_attempts=settings.notify_max_attempts,
        metrics=metrics,
    )
    return http, dispatcher


def notifier_service(settings: Settings, db: Database, clock: Clock) -> NotifierService:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    outbound = Outbound.from_settings(settings)
    return NotifierService(db, clock, SecretBox(key), settings.public_url, outbound)
