"""Workers claim runs under leases: once each, limits respected, crashed ones taken over."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from ghapp.db.models import Job, Run
from ghapp.runqueue.claim import Limits, RunQueue
from tests.support import add_repository, runs_of

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def job_id(db) -> int:
    await add_repository(db)
    async with db.write() as conn:
        result = await conn.execute(insert(Job).values(name="j", repo_id=186853002))
        return result.inserted_primary_key[0]


async def queue(db, job_id: int, count: int, **values) -> list[int]:
    ids = []
    async with db.write() as conn:
        for _ in range(count):
            row = {"job_id": job_id, "trigger_type": "manual", "run_after": NOW, "queued_at": NOW}
            row.update(values)
            ids.append((await conn.execute(insert(Run).values(**row))).inserted_primary_key[0])
    return ids


async def test_each_run_is_claimed_once_by_competing_workers(db, job_id) -> None:
    ids = await queue(db, job_id, 20)
    workers = [RunQueue(db, f"w{i}", Limits(per_installation=100)) for i in range(4)]
    claimed = []

    async def drain(worker: RunQueue) -> None:
        while (got := await worker.claim(NOW)) is not None:
            claimed.append((worker.owner, got.run_id))

    await asyncio.gather(*(drain(w) for w in workers))
    assert sorted(run_id for _, run_id in claimed) == ids
    runs = await runs_of(db, job_id)
    assert all(
        r.status == "running" and r.lease_expires_at == NOW + timedelta(seconds=60) for r in runs
    )
    assert {r.lease_owner for r in runs} <= {"w0", "w1", "w2", "w3"}


async def test_runs_waiting_for_backoff_are_not_claimed_early(db, job_id) -> None:
    [run_id] = await queue(db, job_id, 1, run_after=NOW + timedelta(seconds=30))
    worker = RunQueue(db, "w")
    assert await worker.claim(NOW) is None
    assert (await worker.claim(NOW + timedelta(seconds=30))).run_id == run_id


async def test_expired_lease_is_taken_over_and_heartbeat_keeps_it(db, job_id) -> None:
    [run_id] = await queue(db, job_id, 1)
    first, second = RunQueue(db, "first"), RunQueue(db, "second")
    assert (await first.claim(NOW)).attempt == 1
    later = NOW + timedelta(seconds=50)
    assert await first.heartbeat(run_id, later)  # renewed until later + 60 s
    assert await second.claim(later + timedelta(seconds=30)) is None
    dead = later + timedelta(seconds=61)  # the first worker died: no more heartbeats
    taken = await second.claim(dead)
    assert (taken.run_id, taken.attempt) == (run_id, 2)
    assert not await first.heartbeat(run_id, dead)  # the old owner learns it lost the run


async def test_per_installation_limit(db, job_id) -> None:
    await queue(db, job_id, 3, installation_id=957387)
    worker = RunQueue(db, "w", Limits(per_installation=2))
    assert await worker.claim(NOW) is not None
    assert await worker.claim(NOW) is not None
    assert await worker.claim(NOW) is None  # two already running for this installation


async def test_runs_asked_to_stop_are_claimed_to_be_ended_and_release_hands_back(
    db, job_id
) -> None:
    # A run with a cancel request is claimed like any other: the pool that takes it ends
    # it cancelled without running anything (a run whose worker died must still end).
    cancelled, kept = await queue(db, job_id, 2)
    async with db.write() as conn:
        await conn.execute(update(Run).where(Run.id == cancelled).values(cancel_requested_at=NOW))
    worker = RunQueue(db, "w")
    assert (await worker.claim(NOW)).run_id == cancelled
    assert (await worker.claim(NOW)).run_id == kept
    assert await worker.release(kept)
    [_, run] = await runs_of(db, job_id)
    assert (run.status, run.lease_owner) == ("queued", None)
    assert (await worker.claim(NOW)).attempt == 1  # a hand-back is not a failed attempt


async def test_global_limit_across_workers(db, job_id) -> None:
    await queue(db, job_id, 3)
    first, second = (RunQueue(db, name, Limits(per_installation=10, running=2)) for name in "ab")
    assert await first.claim(NOW) is not None
    assert await second.claim(NOW) is not None
    assert await first.claim(NOW) is None  # two running, whoever runs them
