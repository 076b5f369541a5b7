"""One ghapp process, whatever it runs: built once, started and stopped in one order.

A process has roles: ``web`` (webhooks, the API, the dashboard), ``scheduler`` (fires timed
jobs) and ``worker`` (runs sessions, sends notifications, reads config files). ``ghapp
serve`` is all three, ``ghapp serve --no-worker`` is ``web`` alone, ``ghapp worker`` is
``scheduler`` and ``worker``; the demo and the end-to-end tests build theirs the same way.
:class:`AppState` holds the services every role shares; :class:`Runtime` starts what the
roles need and stops it all in one order, bounded in every state (the database may be gone).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from ghapp.analysis.metrics import build_metric_providers
from ghapp.clock import Clock, SystemClock
from ghapp.db import Database
from ghapp.db.wakeups import PgWakeups
from ghapp.github.app import GitHubApp
from ghapp.installation_sync import InstallationSync
from ghapp.jobs.service import JobService
from ghapp.metrics import Metrics
from ghapp.notify.service import NotifierService
from ghapp.repo_commands import CommandCatalogs
from ghapp.scheduler.loop import Scheduler
from ghapp.scheduler.thresholds import ThresholdChecker
from ghapp.settings import Settings
from ghapp.signals import Signals
from ghapp.supervise import Restarts, supervise
from ghapp.throttle import Throttle
from ghapp.triggers.index import JobIndex
from ghapp.webhooks.ingress import Intake, intake_for
from ghapp.webhooks.recovery import DeliveryRecovery
from ghapp.webhooks.store import DeliveryStore
from ghapp.worker.pool import PoolHealth, within
from ghapp.worker.service import Worker, build_worker, notifier_service

log = logging.getLogger("ghapp")

STOP_STEP_S = 5.0  # the longest any one shutdown step may take after the sessions' grace


class Role(StrEnum):
    web = "web"
    scheduler = "scheduler"
    worker = "worker"


@dataclass
class AppState:
    """Everything a request handler may need, reachable as ``request.app.state.ghapp``."""

    settings: Settings
    db: Database
    clock: Clock
    signals: Signals
    jobs: JobService
    index: JobIndex
    store: DeliveryStore
    scheduler: Scheduler
    github: GitHubApp  # for metric providers and command catalogs; workers keep their own
    commands: CommandCatalogs
    notifiers: NotifierService
    metrics: Metrics
    throttle: Throttle
    intake: Intake  # webhook requests in flight, against their limits
    restarts: Restarts = field(default_factory=Restarts)
    pool_health: PoolHealth | None = None  # set when this process runs workers
    installation_sync: InstallationSync | None = None  # set when this process runs it

    def __post_init__(self) -> None:
        self.metrics.watch_tasks(self.restarts)

    def supervised(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """A long-lived task of this process, restarted after any error."""
        task = supervise(name, body, self.clock, restarts=self.restarts)
        return asyncio.create_task(task, name=name)

    @classmethod
    def build(cls, settings: Settings, db: Database, clock: Clock) -> AppState:
        signals = Signals()
        index = JobIndex(db, app_slug=settings.app_slug)
        signals.jobs_changed.append(index.invalidate)
        github = GitHubApp(settings, clock)  # no network until a check measures something
        providers = build_metric_providers(settings, db, clock, github)
        thresholds = ThresholdChecker(db, clock, signals, providers=providers)
        commands = CommandCatalogs(db, github, clock)
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            signals=signals,
            jobs=JobService(db, clock, signals, repository_commands=commands),
            index=index,
            store=DeliveryStore(db, index, signals, app_id=settings.app_id),
            scheduler=Scheduler(db, clock, signals, thresholds=thresholds),
            github=github,
            commands=commands,
            notifiers=notifier_service(settings, db, clock),
            metrics=Metrics(),
            throttle=Throttle(
                clock, settings.auth_failure_limit, settings.auth_failure_window_seconds
            ),
            intake=intake_for(settings),
        )


async def stop_everything(
    state: AppState,
    worker: Worker | None,
    background: list[asyncio.Task[None]],
    wakeups: PgWakeups | None,
    *,
    dispose: bool,
) -> None:
    """One shutdown order for every process, bounded in every state (the database may be
    gone): running sessions get the grace period, everything else a few seconds."""
    settle = STOP_STEP_S
    if worker is not None:
        await worker.close(timedelta(seconds=state.settings.shutdown_grace_seconds))
    for task in background:
        task.cancel()
    await within(settle, asyncio.gather(*background, return_exceptions=True))
    await within(settle, state.scheduler.thresholds.drain())
    await within(settle, state.store.close())
    await within(settle, state.github.aclose())
    if wakeups is not None:
        await within(settle, wakeups.close())
    if dispose:  # we made it, we close it
        await within(settle, state.db.dispose())


async def start_wakeups(state: AppState) -> PgWakeups | None:
    """On PostgreSQL, wake-ups reach the other replicas through LISTEN/NOTIFY."""
    if state.db.dialect != "postgresql":
        return None
    wakeups = PgWakeups(state.settings.database_url, state.signals)
    await wakeups.start()
    return wakeups


@dataclass
class Runtime:
    """A process's roles, the services they share, and what it started."""

    state: AppState
    roles: frozenset[Role]
    concurrency: int = 4  # worker slots, for the worker role
    owns_db: bool = True  # made here, so disposed of here
    worker: Worker | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    wakeups: PgWakeups | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        roles: Iterable[Role | str],
        *,
        db: Database | None = None,
        clock: Clock | None = None,
        concurrency: int = 4,
    ) -> Runtime:
        database = db or Database(settings.database_url)
        state = AppState.build(settings, database, clock or SystemClock())
        wanted = frozenset(Role(role) for role in roles)
        if concurrency <= 0:
            wanted -= {Role.worker}
        return cls(state, wanted, concurrency, owns_db=db is None)

    async def start(self) -> None:
        """Start what the roles need: wake-ups between replicas, the scheduler, the worker."""
        state = self.state
        self.wakeups = await start_wakeups(state)
        if Role.scheduler in self.roles:
            self.background.append(state.supervised("scheduler", state.scheduler.run))
        if Role.worker in self.roles:
            self.worker = build_worker(
                state.settings,
                state.db,
                state.clock,
                state.signals,
                self.concurrency,
                metrics=state.metrics,
            )
            state.pool_health = self.worker.pool.health
            state.metrics.watch_tasks(self.worker.pool.health.restarts, self.worker.pool.health)
            self.worker.start()
            if state.settings.delivery_recovery:
                # The shared GitHub client: it is closed after the background tasks stop.
                owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
                recovery = DeliveryRecovery(
                    state.settings, state.db, state.clock, state.github, state.metrics, owner
                )
                self.background.append(state.supervised("delivery-recovery", recovery.run))

        if Role.scheduler in self.roles or Role.worker in self.roles:
            self.start_installation_sync()

    def start_installation_sync(self) -> None:
        """At start-up and every interval, learn the app's installations from GitHub (one
        replica at a time; off without the app's credentials or with an interval of 0)."""
        state = self.state
        owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        sync = InstallationSync(
            state.settings, state.db, state.clock, state.github, state.metrics, owner
        )
        state.installation_sync = sync
        self.background.append(state.supervised("installation-sync", sync.run))

    async def stop(self) -> None:
        await stop_everything(
            self.state, self.worker, self.background, self.wakeups, dispose=self.owns_db
        )
