"""Threshold triggers fire on the edge (or after a cooldown); ``after`` chains jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from ghapp.db.models import Run, RunStatus, ThresholdCheck
from ghapp.runqueue.finish import finish_run
from ghapp.scheduler.loop import Scheduler
from ghapp.scheduler.thresholds import ThresholdChecker
from tests.scheduler_support import START, World, job_spec
from tests.support import add_repository, runs_of


class Scripted:
    """A metric provider that returns the values it was given, in order."""

    def __init__(self, values: list[float | Exception]) -> None:
        self.values = list(values)
        self.calls = 0

    async def measure(self, job) -> float:
        self.calls += 1
        value = self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


def threshold_spec(**threshold: object) -> dict[str, object]:
    rule = {"metric": "context_score", "operator": "lt", "value": 4, "check_interval_minutes": 10}
    rule.update(threshold)
    return job_spec(
        name="low score", cron_expression=None, threshold=rule, command_id="context/analyze"
    )


async def run_checks(world: World, provider: Scripted, count: int, replicas: int = 1) -> list:
    schedulers = [
        Scheduler(
            world.db,
            world.clock,
            world.signals,
            thresholds=ThresholdChecker(
                world.db, world.clock, world.signals, {"context_score": provider}
            ),
        )
        for _ in range(replicas)
    ]
    for step in range(1, count + 1):
        world.clock.set(START + timedelta(minutes=10 * step))
        for scheduler in schedulers:
            await scheduler.tick()
        for scheduler in schedulers:
            await scheduler.thresholds.drain()
    async with world.db.read() as conn:
        return list(
            (
                await conn.execute(select(ThresholdCheck).order_by(ThresholdCheck.scheduled_for))
            ).all()
        )


@pytest.fixture
async def world(db):
    await add_repository(db)
    return World(db)


async def test_fires_only_when_the_condition_becomes_true(world) -> None:
    job = await world.jobs.create(threshold_spec(), actor="t")
    checks = await run_checks(world, Scripted([5, 3, 3, 7, 2]), 5)
    assert [c.value for c in checks] == [5, 3, 3, 7, 2]
    assert [c.condition_met for c in checks] == [False, True, True, False, True]
    assert [c.fired for c in checks] == [False, True, False, False, True]
    runs = await runs_of(world.db, job.id)
    assert [(r.trigger_type, r.trigger_detail["value"]) for r in runs] == [
        ("threshold", 3.0),
        ("threshold", 2.0),
    ]
    assert [r.id for r in runs] == [c.run_id for c in checks if c.fired]


async def test_fires_again_while_true_only_after_the_cooldown(world) -> None:
    await world.jobs.create(threshold_spec(cooldown_minutes=20), actor="t")
    checks = await run_checks(world, Scripted([3, 3, 3, 3, 3]), 5)
    assert [c.fired for c in checks] == [True, False, True, False, True]


async def test_each_check_happens_once_with_three_schedulers(world) -> None:
    await world.jobs.create(threshold_spec(), actor="t")
    provider = Scripted([5, 3, 5, 3])
    checks = await run_checks(world, provider, 4, replicas=3)
    assert provider.calls == 4 and len(checks) == 4
    assert [c.fired for c in checks] == [False, True, False, True]


async def test_a_failed_measurement_is_recorded_and_fires_nothing(world) -> None:
    job = await world.jobs.create(threshold_spec(), actor="t")
    checks = await run_checks(world, Scripted([RuntimeError("GitHub unreachable"), 3]), 2)
    assert [c.status for c in checks] == ["failed", "done"]
    assert "GitHub unreachable" in checks[0].error
    assert [c.fired for c in checks] == [False, True]  # no earlier successful check: an edge
    assert len(await runs_of(world.db, job.id)) == 1


async def manual_run(world: World, job_id: int) -> int:
    async with world.db.write() as conn:
        result = await conn.execute(
            insert(Run).values(
                job_id=job_id, trigger_type="manual", status="running", started_at=world.clock.now()
            )
        )
        return result.inserted_primary_key[0]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(RunStatus.completed, {"on success", "always"}), (RunStatus.failed, {"always"})],
)
async def test_after_triggers_chain_jobs(world, outcome, expected) -> None:
    upstream = await world.jobs.create(job_spec(name="build", cron_expression=None), actor="t")
    names = {}
    for name, only_success in (("on success", True), ("always", False)):
        job = await world.jobs.create(
            job_spec(
                name=name,
                cron_expression=None,
                after_job_id=upstream.id,
                after_only_on_success=only_success,
            ),
            actor="t",
        )
        names[job.id] = name
    run_id = await manual_run(world, upstream.id)
    world.clock.advance(timedelta(seconds=42))
    async with world.db.write() as conn:
        queued = await finish_run(conn, run_id, outcome, world.clock.now())
    async with world.db.write() as conn:  # finishing twice queues nothing twice
        assert await finish_run(conn, run_id, outcome, world.clock.now()) == []
    runs = [r for r in await runs_of(world.db) if r.trigger_type == "dependency"]
    assert {names[r.job_id] for r in runs} == expected
    assert sorted(r.id for r in runs) == sorted(queued)
    assert all(r.trigger_detail["after_run_id"] == run_id for r in runs)
    finished = (await runs_of(world.db, upstream.id))[0]
    assert finished.status == outcome.value and finished.duration_ms == 42_000
    assert (await world.jobs.get(upstream.id)).last_run_status == outcome.value


async def test_a_crossing_queues_a_threshold_triggered_notification(world) -> None:
    from cryptography.fernet import Fernet

    from ghapp.db.models import Notification
    from ghapp.notify.crypto import SecretBox
    from ghapp.notify.service import NotifierService

    service = NotifierService(world.db, world.clock, SecretBox(Fernet.generate_key().decode()))
    alerts = await service.create(
        {
            "name": "alerts",
            "type": "n8n",
            "url": "https://n8n.example/h",
            "event_types": ["threshold_triggered"],
        },
        actor="t",
    )
    await world.jobs.create({**threshold_spec(), "notifier_ids": [alerts.id]}, actor="t")
    await run_checks(world, Scripted([5, 3, 3]), 3)
    async with world.db.read() as conn:
        rows = list((await conn.execute(select(Notification))).all())
    [row] = rows  # one crossing, one message (the second low reading is not an edge)
    assert row.event == "threshold_triggered" and row.status == "pending"
    assert row.payload["message"] == "context_score is 3 (lt 4)"
    assert row.payload["threshold"] == {
        "metric": "context_score",
        "operator": "lt",
        "value": 4,
        "measured": 3.0,
    }
    assert world.signals.notifications_queued.is_set()
