"""LISTEN/NOTIFY between processes' signals on a real PostgreSQL (one process per Signals)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ghapp.db.wakeups import PgWakeups, asyncpg_dsn
from ghapp.signals import Signals

WAIT_S = 10  # an upper bound for a failing test, not a synchronisation delay


@pytest.fixture
async def replicas(pg_url):  # LISTEN/NOTIFY is PostgreSQL's
    pairs = []
    for _ in range(2):
        signals = Signals()
        wakeups = PgWakeups(pg_url, signals)
        await wakeups.start()
        pairs.append((signals, wakeups))
    yield pairs
    for _, wakeups in pairs:
        await wakeups.close()


async def test_a_run_queued_in_one_process_wakes_the_workers_of_another(replicas):
    (web, _), (worker, _) = replicas
    web.runs_queued()
    await asyncio.wait_for(worker.work_available.wait(), WAIT_S)


async def test_a_job_change_wakes_every_scheduler_and_refreshes_trigger_caches(replicas):
    (api, _), (other, listener) = replicas
    invalidated = asyncio.Event()
    other.jobs_changed.append(invalidated.set)
    api.job_changed()
    await asyncio.wait_for(invalidated.wait(), WAIT_S)
    assert other.scheduler_wake.is_set()
    heard = listener.received
    other.scheduler_wake.clear()
    api.job_changed()
    await asyncio.wait_for(other.scheduler_wake.wait(), WAIT_S)
    assert listener.received == heard + 1  # heard once: hearing does not publish again


async def test_the_listener_reconnects_and_wakes_everyone_once(replicas, pg_url):
    (sender, _), (receiver, listener) = replicas
    admin = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        backend = await listener._conn.fetchval("select pg_backend_pid()")
        receiver.work_available.clear()
        await admin.execute("select pg_terminate_backend($1)", backend)
        # Losing the connection may have lost a wake-up: everyone is woken to look.
        await asyncio.wait_for(receiver.work_available.wait(), WAIT_S)
    finally:
        await admin.close()
    receiver.work_available.clear()
    while not receiver.work_available.is_set():  # once reconnected, notifications arrive again
        sender.runs_queued()
        try:
            await asyncio.wait_for(receiver.work_available.wait(), 0.5)
        except TimeoutError:
            continue
    assert listener._conn is not None and not listener._conn.is_closed()
