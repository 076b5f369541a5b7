"""Prometheus metrics (``GET /metrics``), one registry per app so tests can build many.

Counters and histograms are bumped where things happen (webhook ingress, run ends, sessions,
notification attempts); gauges that describe the database (runs by status, queue depth)
are read when scraped, and GitHub's remaining rate limit per installation comes from the
GitHub clients of this process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col

from ghapp.db import Database
from ghapp.db.models import Run, RunStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SESSION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


class _Snapshot(Collector):
    """Gauges read from the database and the GitHub clients at scrape time."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.queue_depth = 0
        self.github_apps: list[Any] = []
        self.pools: list[Any] = []  # PoolHealth of this process's worker pools
        self.restarts: list[Mapping[str, int]] = []  # supervised tasks' restart counts

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("ghapp_runs", "Runs in the database by status", labels=["status"])
        for status in RunStatus:
            runs.add_metric([status.value], self.runs.get(status.value, 0))
        yield runs
        yield GaugeMetricFamily(
            "ghapp_queue_depth", "Queued runs that may start now", value=self.queue_depth
        )
        remaining = GaugeMetricFamily(
            "ghapp_github_rate_limit_remaining",
            "GitHub API requests left in the current window, per installation",
            labels=["installation"],
        )
        for app in self.github_apps:
            for installation, left in dict(app.rate_limit_remaining).items():
                remaining.add_metric([str(installation or "app")], left)
        yield remaining
        yield from self._workers()

    def _workers(self) -> Iterator[Metric]:
        live = GaugeMetricFamily("ghapp_worker_slots_live", "Worker slots alive in this process")
        live.add_metric([], sum(pool.live_slots for pool in self.pools))
        yield live
        claimed = [pool.last_claim_ok for pool in self.pools if pool.last_claim_ok is not None]
        last = GaugeMetricFamily(
            "ghapp_worker_last_claim_ok_timestamp_seconds",
            "When a worker slot of this process last claimed successfully (Unix time)",
        )
        if claimed:
            last.add_metric([], max(claimed).timestamp())
        yield last
        restarts = CounterMetricFamily(
            "ghapp_task_restarts", "Restarts of long-lived tasks after an error", labels=["task"]
        )
        totals: dict[str, int] = {}
        for counts in self.restarts:
            for task, count in counts.items():
                totals[task] = totals.get(task, 0) + count
        for task, count in sorted(totals.items()):
            restarts.add_metric([task], count)
        yield restarts


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter(
            "ghapp_webhook_deliveries",
            "Webhook deliveries by event and outcome",
            ["event", "outcome"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "ghapp_webhook_seconds",
            "Time to answer a webhook delivery",
            buckets=WEBHOOK_BUCKETS,
            registry=r,
        )
        self.runs_finished = Counter(
            "ghapp_runs_finished",
            "Runs ended by this process, by status",
            ["status"],
            registry=r,
        )
        self.session_seconds = Histogram(
            "ghapp_session_seconds",
            "Session durations",
            ["runner", "status"],
            buckets=SESSION_BUCKETS,
            registry=r,
        )
        self.notifications = Counter(
            "ghapp_notifications",
            "Notification attempts by notifier type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.redeliveries = Counter(
            "ghapp_webhook_redeliveries",
            "Failed webhook deliveries this process asked GitHub to redeliver, by outcome "
            "(requested: GitHub accepted; failed: GitHub refused or could not be reached)",
            ["outcome"],
            registry=r,
        )
        self.installation_syncs = Counter(
            "ghapp_installation_syncs",
            "Installation sync passes this process made, by outcome (ok; failed: GitHub or "
            "the database could not be reached, or the app's credentials were refused)",
            ["outcome"],
            registry=r,
        )
        self.snapshot = _Snapshot()
        r.register(self.snapshot)

    def watch_github(self, app: Any) -> None:
        self.snapshot.github_apps.append(app)

    def watch_tasks(self, restarts: Mapping[str, int], pool: Any = None) -> None:
        """Count this process's task restarts, and a worker pool's slots and claims."""
        self.snapshot.restarts.append(restarts)
        if pool is not None:
            self.snapshot.pools.append(pool)

    async def refresh(self, db: Database, now: datetime) -> None:
        async with db.read() as conn:
            rows = await conn.execute(
                select(col(Run.status), func.count()).group_by(col(Run.status))
            )
            self.snapshot.runs = {status: count for status, count in rows}
            self.snapshot.queue_depth = int(
                await conn.scalar(
                    select(func.count())
                    .select_from(Run)
                    .where(col(Run.status) == RunStatus.queued.value, col(Run.run_after) <= now)
                )
                or 0
            )

    def render(self) -> bytes:
        return generate_latest(self.registry)
