"""The worker pool around any executor: completion, retries, cancellation, hand-back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from ghapp.clock import FakeClock
from ghapp.db.models import Job, Run, RunStatus
from ghapp.runqueue.claim import RunQueue
from ghapp.signals import Signals
from ghapp.worker.pool import PoolSettings, RunResult, WorkerPool
from tests.support import add_repository, runs_of

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


class Scripted:
    """An executor that answers from a list, or waits until told to stop."""

    def __init__(self, results: list[RunResult | str]) -> None:
        self.results = list(results)
        self.started = asyncio.Event()
        self.calls = 0

    async def execute(self, context) -> RunResult:
        self.calls += 1
        self.started.set()
        result = self.results.pop(0)
        if result == "wait-for-cancel":
            await context.cancel.wait()
            return RunResult(RunStatus.cancelled, error="cancelled on request")
        if result == "hang":
            await asyncio.Event().wait()
        return result


@pytest.fixture
async def setup(db):
    await add_repository(db)
    async with db.write() as conn:
        job_id = (
            await conn.execute(insert(Job).values(name="j", repo_id=186853002, max_retries=2))
        ).inserted_primary_key[0]
        run_id = (
            await conn.execute(
                insert(Run).values(
                    job_id=job_id, trigger_type="manual", run_after=NOW, queued_at=NOW
                )
            )
        ).inserted_primary_key[0]
    clock = FakeClock(NOW)
    return db, clock, job_id, run_id


def pool(db, clock, executor, owner="w1", **settings) -> WorkerPool:
    return WorkerPool(
        db,
        clock,
        Signals(),
        RunQueue(db, owner),
        executor,
        PoolSettings(concurrency=1, **settings),
        jitter=lambda cap: cap,
    )


async def test_completed_run_is_recorded_and_after_jobs_queued(setup) -> None:
    db, clock, job_id, _run_id = setup
    async with db.write() as conn:
        await conn.execute(insert(Job).values(name="next", repo_id=186853002, after_job_id=job_id))
    workers = pool(
        db, clock, Scripted([RunResult(RunStatus.completed, counters={"items_found": 3})])
    )
    await workers.process(await workers.queue.claim(clock.now()))
    run = (await runs_of(db, job_id))[0]
    assert (run.status, run.items_found, run.lease_owner) == ("completed", 3, None)
    assert [r.trigger_type for r in await runs_of(db) if r.job_id != job_id] == ["dependency"]


async def test_retryable_failures_back_off_until_the_window_has_passed(setup) -> None:
    db, clock, job_id, run_id = setup
    fail = RunResult(RunStatus.failed, error="GitHub answered 502", retryable=True)
    workers = pool(db, clock, Scripted([fail] * 4), retry_window=timedelta(seconds=60))
    began = clock.now()
    waits = []
    for _ in range(4):
        claimed = await workers.queue.claim(clock.now())
        assert claimed is not None and claimed.run_id == run_id
        await workers.process(claimed)
        run = (await runs_of(db, job_id))[0]
        if run.status == "queued":
            assert run.retrying_since == began  # when the trouble began, kept across tries
            assert run.error == f"GitHub answered 502 — retrying at {run.run_after:%H:%M:%S} UTC"
            waits.append(run.run_after - clock.now())
            assert await workers.queue.claim(clock.now()) is None  # not before the backoff
            clock.set(run.run_after)
    # 10 s · 2^(n-1); the fourth try comes 70 s after the first, past the 60 s window.
    assert waits == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]
    assert (run.status, run.attempt) == ("failed", 4)
    assert run.error == "GitHub answered 502 (still failing after retrying for 1 min)"


async def test_backoff_is_capped_so_the_end_of_an_outage_is_noticed_soon(setup) -> None:
    db, clock, _job_id, _run_id = setup
    workers = pool(db, clock, Scripted([]))
    assert workers._backoff(1) == timedelta(seconds=10)
    assert workers._backoff(8) == timedelta(minutes=2)  # not 10 s · 2^7


async def test_cancellation_is_seen_at_the_heartbeat(setup) -> None:
    db, clock, job_id, _run_id = setup
    executor = Scripted(["wait-for-cancel"])
    workers = pool(db, clock, executor)
    processing = asyncio.create_task(workers.process(await workers.queue.claim(clock.now())))
    await executor.started.wait()
    async with db.write() as conn:
        await conn.execute(update(Run).values(cancel_requested_at=clock.now()))
    await clock.wait_for_sleeper(NOW + workers.settings.heartbeat)
    clock.advance(workers.settings.heartbeat)
    await asyncio.wait_for(processing, 10)
    assert (await runs_of(db, job_id))[0].status == "cancelled"


async def test_a_lost_lease_stops_the_execution_and_records_nothing(setup) -> None:
    db, clock, job_id, run_id = setup
    executor = Scripted(["hang"])
    workers = pool(db, clock, executor)
    processing = asyncio.create_task(workers.process(await workers.queue.claim(clock.now())))
    await executor.started.wait()
    await clock.wait_for_sleeper(NOW + workers.settings.heartbeat)
    clock.advance(timedelta(seconds=61))  # the lease (60 s) ran out before the heartbeat
    other = RunQueue(db, "w2")
    assert (await other.claim(clock.now())).run_id == run_id  # taken over
    await asyncio.wait_for(processing, 10)
    run = (await runs_of(db, job_id))[0]
    assert (run.status, run.lease_owner, run.attempt) == ("running", "w2", 2)
    assert workers.finished == []


async def test_stop_hands_unfinished_runs_back(setup) -> None:
    db, clock, job_id, _run_id = setup
    executor = Scripted(["hang"])
    workers = pool(db, clock, executor)
    workers.start()
    workers.signals.work_available.set()
    await executor.started.wait()
    await workers.stop(grace=timedelta(0))
    run = (await runs_of(db, job_id))[0]
    assert (run.status, run.lease_owner, run.attempt) == ("queued", None, 1)


async def test_slots_drain_the_queue(setup) -> None:
    db, clock, job_id, _ = setup
    async with db.write() as conn:
        for _ in range(5):
            await conn.execute(
                insert(Run).values(
                    job_id=job_id, trigger_type="manual", run_after=NOW, queued_at=NOW
                )
            )
    done = asyncio.Event()

    class Counting:
        count = 0

        async def execute(self, context) -> RunResult:
            Counting.count += 1
            if Counting.count == 6:
                done.set()
            return RunResult(RunStatus.completed)

    workers = WorkerPool(
        db, clock, Signals(), RunQueue(db, "w"), Counting(), PoolSettings(concurrency=3)
    )
    workers.start()
    await asyncio.wait_for(done.wait(), 20)
    await workers.stop()
    assert sorted(status for _, status in workers.finished) == ["completed"] * 6
    assert {r.status for r in await runs_of(db, job_id)} == {"completed"}
