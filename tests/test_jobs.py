"""Jobs: validation on save (a job that cannot run cannot be saved), timing, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import select

from ghapp.clock import FakeClock
from ghapp.db.models import AuditEntry
from ghapp.jobs.service import JobError, JobService, jobs_version
from ghapp.signals import Signals
from tests.support import add_repository

NOW = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)  # a Monday, 08:00 in Berlin
REPO = 186853002


def cron_job(**changes: object) -> dict[str, object]:
    job: dict[str, object] = {
        "name": "Daily triage",
        "repo_id": REPO,
        "cron_expression": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "target_type": "issues",
        "filter_query": "state:open label:needs-triage",
        "command_id": "issue/triage",
    }
    job.update(changes)
    return job


@pytest.fixture
async def service(db):
    await add_repository(db)
    return JobService(db, FakeClock(NOW), Signals())


async def test_create_computes_next_run_in_utc(service) -> None:
    job = await service.create(cron_job(), actor="token:ci")
    assert job.id is not None
    assert job.next_run_at == datetime(2025, 6, 2, 7, 0, tzinfo=UTC)  # 09:00 CEST
    stored = await service.get(job.id)
    assert stored.next_run_at == job.next_run_at
    assert stored.filter_query == "state:open label:needs-triage"


async def test_create_is_audited_and_bumps_the_jobs_version(service, db) -> None:
    async with db.read() as conn:
        before = await jobs_version(conn)
    job = await service.create(cron_job(), actor="token:ci")
    async with db.read_session() as session:
        entry = (await session.exec(select(AuditEntry))).one()
    assert (entry.actor, entry.action, entry.object_id) == ("token:ci", "job.create", str(job.id))
    assert entry.before is None and entry.after["cron_expression"] == "0 9 * * 1-5"
    async with db.read() as conn:
        assert await jobs_version(conn) == before + 1


async def test_creating_wakes_the_scheduler(db) -> None:
    await add_repository(db)
    signals = Signals()
    service = JobService(db, FakeClock(NOW), signals)
    assert not signals.scheduler_wake.is_set()
    await service.create(cron_job(), actor="t")
    assert signals.scheduler_wake.is_set()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression", "61"),
        ({"cron_expression": "* * * * * *"}, "cron_expression", "expected 5"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"cron_expression": None, "interval_minutes": 0}, "interval_minutes", "greater than"),
        ({"filter_query": "state:open lable:bug"}, "filter_query", "lable:bug"),
        ({"max_items": 51}, "max_items", "50"),
        ({"max_items": 0}, "max_items", "1"),
        ({"command_id": "issue/nope"}, "", "unknown command_id 'issue/nope'"),
        ({"command_id": "pr/review"}, "", "target_type prs"),
        ({"command_id": None}, "", "command_id or a custom_prompt"),
        ({"interval_minutes": 60}, "", "at most one time trigger"),
        ({"event_triggers": [{"event": "issues.exploded"}]}, "event_triggers", "exploded"),
        ({"event_triggers": [{"event": "nonsense"}]}, "event_triggers", "unknown event"),
        ({"command_triggers": ["triage"]}, "command_triggers", "triage"),
        ({"permission_mode": "yolo"}, "permission_mode", "yolo"),
        ({"allowed_tools": ["rm -rf"]}, "allowed_tools", "rm -rf"),
        ({"repo_id": None}, "", "repo_id is required"),
        (
            {
                "cron_expression": None,
                "threshold": {
                    "metric": "context_score",
                    "operator": "under",
                    "value": 60,
                    "check_cron": "0 * * * *",
                },
            },
            "threshold.operator",
            "'lt', 'gt'",
        ),
        (
            {
                "cron_expression": None,
                "threshold": {
                    "metric": "mood",
                    "operator": "lt",
                    "value": 60,
                    "check_cron": "0 * * * *",
                },
            },
            "threshold",
            "unknown metric 'mood'",
        ),
    ],
)
async def test_invalid_jobs_are_refused_naming_the_problem(service, changes, field, words) -> None:
    with pytest.raises(ValidationError) as refused:
        await service.create(cron_job(**changes), actor="t")
    error = refused.value.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    assert location.startswith(field)
    assert words in error["msg"]


async def test_unknown_repository_is_refused(service) -> None:
    with pytest.raises(JobError, match="unknown repository 4242"):
        await service.create(cron_job(repo_id=4242), actor="t")


async def test_installation_wide_job_needs_its_repositories(service) -> None:
    job = await service.create(
        cron_job(repo_id=None, installation_id=957387, repo_selection="all"), actor="t"
    )
    assert job.repo_selection == "all"
    with pytest.raises(JobError, match="not in installation"):
        await service.create(
            cron_job(repo_id=None, installation_id=957387, repo_selection="list", repo_ids=[99]),
            actor="t",
        )


async def test_after_cycle_is_refused(service) -> None:
    first = await service.create(cron_job(name="A"), actor="t")
    second = await service.create(cron_job(name="B", after_job_id=first.id), actor="t")
    with pytest.raises(JobError, match="cycle"):
        await service.update(first.id, {"after_job_id": second.id}, actor="t")


async def test_pause_and_resume(service) -> None:
    clock = service.clock
    job = await service.create(cron_job(), actor="t")
    paused = await service.pause(job.id, actor="t")
    assert paused.status == "paused" and paused.next_run_at is None
    clock.advance(timedelta(days=2))  # Wednesday 08:00 in Berlin
    resumed = await service.resume(job.id, actor="t")
    assert resumed.status == "active"
    assert resumed.next_run_at == datetime(2025, 6, 4, 7, 0, tzinfo=UTC)  # no catch-up


async def test_editing_the_schedule_recomputes_next_run(service) -> None:
    job = await service.create(cron_job(), actor="t")
    edited = await service.update(job.id, {"cron_expression": "@hourly"}, actor="t")
    assert edited.next_run_at == datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    assert edited.cron_expression == "0 * * * *"


async def test_interval_counts_from_when_it_was_set(service) -> None:
    job = await service.create(cron_job(cron_expression=None, interval_minutes=90), actor="t")
    assert job.next_run_at == NOW + timedelta(minutes=90)


async def test_delete_cancels_queued_runs(service, db) -> None:
    from sqlalchemy import insert

    from ghapp.db.models import Run

    job = await service.create(cron_job(), actor="t")
    async with db.write() as conn:
        await conn.execute(insert(Run).values(job_id=job.id, trigger_type="manual"))
    await service.delete(job.id, actor="t")
    async with db.read_session() as session:
        assert (await session.exec(select(Run))).all() == []  # runs go with their job
        actions = [e.action for e in (await session.exec(select(AuditEntry))).all()]
    assert actions == ["job.create", "job.delete"]


async def test_concurrent_changes_bump_the_jobs_version_once_each(service):
    import asyncio

    await asyncio.gather(*(service.create(cron_job(name=f"job {i}"), actor="t") for i in range(8)))
    async with service.db.read() as conn:
        assert await jobs_version(conn) == 8  # no lost increment, no clash creating the row
