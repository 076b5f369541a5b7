"""Putting a worker together: the GitHub client, the executor, the pool."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.github.app import GitHubApp
from ghapp.settings import Settings
from ghapp.signals import Signals
from ghapp.worker.claim import Limits, RunQueue
from ghapp.worker.execute import SessionExecutor
from ghapp.worker.pool import PoolSettings, WorkerPool


@dataclass
class Worker:
    pool: WorkerPool
    github: GitHubApp

    async def close(self) -> None:
        await self.pool.stop()
        await self.github.aclose()


def build_worker(
    settings: Settings, db: Database, clock: Clock, signals: Signals, concurrency: int = 4
) -> Worker:
    github = GitHubApp(settings, clock)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    executor = SessionExecutor(db, settings, github, clock)
    limits = Limits(
        per_installation=settings.max_running_per_installation,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        running=settings.max_running,
    )
    pool_settings = PoolSettings(
        concurrency=concurrency, heartbeat=timedelta(seconds=settings.worker_heartbeat_seconds)
    )
    pool = WorkerPool(db, clock, signals, RunQueue(db, owner, limits), executor, pool_settings)
    return Worker(pool, github)
