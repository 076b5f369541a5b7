"""The scheduler fires each occurrence once: on time, across DST, restarts and replicas."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from ghapp.db.models import Installation, Run
from ghapp.scheduler.loop import Scheduler, set_stopped
from tests.scheduler_support import START, World, job_spec
from tests.support import add_repository, runs_of


@pytest.fixture
async def world(db):
    await add_repository(db)
    return World(db)


async def test_fires_on_time_once_and_moves_on(world) -> None:
    job = await world.jobs.create(job_spec(), actor="t")
    scheduler = world.scheduler()
    assert await scheduler.tick() == datetime(2025, 6, 2, 9, tzinfo=UTC)
    assert await world.fired() == []
    world.clock.set(datetime(2025, 6, 2, 9, tzinfo=UTC))
    assert await scheduler.tick() == datetime(2025, 6, 3, 9, tzinfo=UTC)
    assert await scheduler.tick() == datetime(2025, 6, 3, 9, tzinfo=UTC)  # nothing more
    runs = await runs_of(world.db, job.id)
    assert [(r.trigger_type, r.status, r.scheduled_for) for r in runs] == [
        ("scheduled", "queued", datetime(2025, 6, 2, 9, tzinfo=UTC))
    ]
    assert (await world.jobs.get(job.id)).run_count == 1


async def test_three_schedulers_fire_each_occurrence_once(world) -> None:
    job = await world.jobs.create(job_spec(cron_expression="*/10 * * * *"), actor="t")
    schedulers = [world.scheduler() for _ in range(3)]
    await world.run_until(START + timedelta(hours=2), schedulers)
    expected = [START + timedelta(minutes=10 * k) for k in range(1, 13)]
    assert await world.fired(job.id) == expected
    assert sum(s.fired for s in schedulers) == 12


async def test_restart_after_three_hours_coalesces_within_the_grace_window(world) -> None:
    hourly = await world.jobs.create(
        job_spec(name="hourly", cron_expression="0 * * * *"), actor="t"
    )
    daily = await world.jobs.create(job_spec(name="daily", cron_expression="0 7 * * *"), actor="t")
    strict = await world.jobs.create(
        job_spec(name="strict", cron_expression="30 * * * *", misfire_grace_seconds=0), actor="t"
    )
    # The scheduler was down from 06:00 to 09:20.
    world.clock.set(datetime(2025, 6, 2, 9, 20, tzinfo=UTC))
    await world.scheduler().tick()
    # hourly: 07:00, 08:00, 09:00 missed → one run for 09:00 (20 min late, within 1 h).
    runs = await runs_of(world.db, hourly.id)
    assert [r.scheduled_for for r in runs] == [datetime(2025, 6, 2, 9, tzinfo=UTC)]
    assert runs[0].trigger_detail == {"coalesced": 2}
    # daily: 07:00 is 2 h 20 min late, beyond the 1 h window → skipped, next is tomorrow.
    assert await world.fired(daily.id) == []
    assert (await world.jobs.get(daily.id)).next_run_at == datetime(2025, 6, 3, 7, tzinfo=UTC)
    # strict (no grace): every missed occurrence is skipped.
    assert await world.fired(strict.id) == []
    assert (await world.jobs.get(strict.id)).next_run_at == datetime(2025, 6, 2, 9, 30, tzinfo=UTC)


async def test_interval_jobs_do_not_drift_when_fired_late(world) -> None:
    job = await world.jobs.create(job_spec(cron_expression=None, interval_minutes=30), actor="t")
    scheduler = world.scheduler()
    for late in (7, 3, 11):  # the scheduler wakes a little late each time
        due = await scheduler.next_due()
        world.clock.set(due + timedelta(minutes=late))
        await scheduler.tick()
    assert await world.fired(job.id) == [START + timedelta(minutes=30 * k) for k in (1, 2, 3)]


@pytest.mark.parametrize(
    ("policy", "statuses"),
    [
        ("skip", ["queued", "skipped", "skipped"]),
        ("queue", ["queued", "skipped", "skipped"]),
        ("allow", ["queued", "queued", "queued"]),
        ("cancel", ["cancelled", "cancelled", "queued"]),
    ],
)
async def test_concurrency_policy_when_the_previous_run_is_still_queued(
    world, policy, statuses
) -> None:
    job = await world.jobs.create(
        job_spec(cron_expression="0 * * * *", concurrency_policy=policy), actor="t"
    )
    scheduler = world.scheduler()
    for hour in (7, 8, 9):
        world.clock.set(datetime(2025, 6, 2, hour, tzinfo=UTC))
        await scheduler.tick()
    assert [r.status for r in await runs_of(world.db, job.id)] == statuses


async def test_queue_policy_queues_one_behind_a_running_run(world) -> None:
    job = await world.jobs.create(
        job_spec(cron_expression="0 * * * *", concurrency_policy="queue"), actor="t"
    )
    scheduler = world.scheduler()
    world.clock.set(datetime(2025, 6, 2, 7, tzinfo=UTC))
    await scheduler.tick()
    async with world.db.write() as conn:
        await conn.execute(update(Run).values(status="running"))
    for hour in (8, 9):
        world.clock.set(datetime(2025, 6, 2, hour, tzinfo=UTC))
        await scheduler.tick()
    assert [r.status for r in await runs_of(world.db, job.id)] == ["running", "queued", "skipped"]


async def test_paused_jobs_and_a_stopped_scheduler_do_not_fire(world) -> None:
    job = await world.jobs.create(job_spec(cron_expression="0 * * * *"), actor="t")
    scheduler = world.scheduler()
    await world.jobs.pause(job.id, actor="t")
    world.clock.set(datetime(2025, 6, 2, 7, 30, tzinfo=UTC))
    assert await scheduler.tick() is None
    await world.jobs.resume(job.id, actor="t")
    assert await scheduler.tick() == datetime(2025, 6, 2, 8, tzinfo=UTC)

    await set_stopped(world.db, True, world.clock.now())
    world.clock.set(datetime(2025, 6, 2, 8, 0, tzinfo=UTC))
    assert await scheduler.tick() is None and await world.fired() == []
    await set_stopped(world.db, False, world.clock.now())
    await scheduler.tick()
    assert await world.fired() == [datetime(2025, 6, 2, 8, tzinfo=UTC)]


async def test_suspended_installation_stops_its_jobs_and_unsuspend_resumes(world) -> None:
    job = await world.jobs.create(job_spec(cron_expression="0 * * * *"), actor="t")
    scheduler = world.scheduler()
    async with world.db.write() as conn:
        await conn.execute(update(Installation).values(suspended_at=world.clock.now()))
    world.clock.set(datetime(2025, 6, 2, 7, tzinfo=UTC))
    assert await scheduler.tick() is None  # nothing eligible, nothing spinning
    assert await world.fired(job.id) == []
    async with world.db.write() as conn:
        await conn.execute(update(Installation).values(suspended_at=None))
    world.clock.set(datetime(2025, 6, 2, 7, 10, tzinfo=UTC))
    await scheduler.tick()
    assert await world.fired(job.id) == [datetime(2025, 6, 2, 7, tzinfo=UTC)]


async def test_loop_sleeps_until_due_and_wakes_on_changes(world) -> None:
    signals = world.signals
    scheduler = Scheduler(world.db, world.clock, signals, fallback_poll=timedelta(hours=1))
    loop = asyncio.create_task(scheduler.run())
    try:
        # An empty database: the loop sleeps only until its fallback poll.
        await asyncio.wait_for(world.clock.wait_for_sleeper(START + timedelta(hours=1)), 10)
        # A new job wakes it at once; it then sleeps exactly until the job is due.
        await world.jobs.create(job_spec(cron_expression="15 6 * * *"), actor="t")
        due = datetime(2025, 6, 2, 6, 15, tzinfo=UTC)
        await asyncio.wait_for(world.clock.wait_for_sleeper(due), 10)
        signals.work_available.clear()
        world.clock.set(datetime(2025, 6, 2, 6, 15, tzinfo=UTC))
        await asyncio.wait_for(signals.work_available.wait(), timeout=10)
        assert await world.fired() == [datetime(2025, 6, 2, 6, 15, tzinfo=UTC)]
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


NEW_YORK_DAYS = [
    # (expression, local day, expected UTC firings that day)
    ("0 2 * * *", "2025-03-09", ["07:00"]),  # skipped 02:00 fires at the jump, 03:00 EDT
    ("30 2 * * *", "2025-03-09", ["07:00"]),
    ("30 1 * * *", "2025-11-02", ["05:30"]),  # repeated 01:30 fires once (EDT)
    ("0 2 * * *", "2025-03-08", ["07:00"]),  # an ordinary day, EST
    ("0 2 * * *", "2025-03-10", ["06:00"]),  # an ordinary day, EDT
]


@pytest.mark.parametrize(("expression", "day", "expected"), NEW_YORK_DAYS)
async def test_dst_through_the_scheduler(world, expression, day, expected) -> None:
    """The scheduler fires what the schedule says across DST, tick by tick."""
    from zoneinfo import ZoneInfo

    world = World(world.db, start=datetime(2025, 1, 1, tzinfo=UTC))
    zone = ZoneInfo("America/New_York")
    local_midnight = datetime.fromisoformat(day).replace(tzinfo=zone)
    start, end = (
        local_midnight.astimezone(UTC),
        (local_midnight + timedelta(days=1)).astimezone(UTC),
    )
    world.clock.set(start - timedelta(minutes=1))
    job = await world.jobs.create(
        job_spec(cron_expression=expression, timezone="America/New_York"), actor="t"
    )
    await world.run_until(end, [world.scheduler()])
    fired = [t for t in await world.fired(job.id) if start <= t < end]
    assert [t.strftime("%H:%M") for t in fired] == expected


async def test_hourly_job_across_both_dst_days(world) -> None:
    from zoneinfo import ZoneInfo

    world = World(world.db, start=datetime(2025, 1, 1, tzinfo=UTC))
    zone = ZoneInfo("America/New_York")
    counts = []
    for day in ("2025-03-09", "2025-11-02"):
        local = datetime.fromisoformat(day).replace(tzinfo=zone)
        start, end = local.astimezone(UTC), (local + timedelta(days=1)).astimezone(UTC)
        world.clock.set(start - timedelta(seconds=1))
        job = await world.jobs.create(
            job_spec(
                name=f"hourly {day}", cron_expression="0 * * * *", timezone="America/New_York"
            ),
            actor="t",
        )
        await world.run_until(end - timedelta(seconds=1), [world.scheduler()])
        fired = await world.fired(job.id)
        await world.jobs.pause(job.id, actor="t")
        counts.append(len(fired))
        assert len(set(fired)) == len(fired)
        assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(fired))
    assert counts == [23, 25]


async def test_upcoming_lists_every_occurrence_in_the_window(world) -> None:
    from ghapp.scheduler.upcoming import upcoming

    a = await world.jobs.create(job_spec(name="a", cron_expression="0 */6 * * *"), actor="t")
    b = await world.jobs.create(
        job_spec(name="b", cron_expression=None, interval_minutes=300), actor="t"
    )
    paused = await world.jobs.create(job_spec(name="p", cron_expression="* * * * *"), actor="t")
    await world.jobs.pause(paused.id, actor="t")
    items = await upcoming(world.db, START, hours=12)
    assert [(u.at.hour, u.at.minute, u.name) for u in items] == [
        (11, 0, "b"),
        (12, 0, "a"),
        (16, 0, "b"),
        (18, 0, "a"),
    ]
    assert {u.job_id for u in items} == {a.id, b.id}


async def test_run_now_works_even_when_paused(world) -> None:
    job = await world.jobs.create(job_spec(), actor="t")
    await world.jobs.pause(job.id, actor="t")
    run_id = await world.jobs.run_now(job.id, actor="token:me")
    [run] = await runs_of(world.db, job.id)
    assert (run.id, run.trigger_type, run.status) == (run_id, "manual", "queued")
    assert run.trigger_detail == {"requested_by": "token:me"}
    assert world.signals.work_available.is_set()
