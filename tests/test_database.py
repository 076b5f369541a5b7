"""The database layer behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from ghapp.db import Database, normalise_url
from ghapp.db.migrate import current_revision, head_revision, upgrade
from ghapp.db.models import Job, Run


def test_url_normalisation() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgres://u:p@h:5433/db") == "postgresql+asyncpg://u:p@h:5433/db"
    assert normalise_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        normalise_url("mysql://u@h/db")


async def test_migrated_to_head(db: Database) -> None:
    assert await current_revision(db) == head_revision()


async def test_migrations_match_the_models(db: Database) -> None:
    """Autogenerate finds nothing to do: the migrations create exactly the models."""
    async with db.read() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )
    assert diff == []


async def test_upgrade_is_idempotent(db: Database) -> None:
    await upgrade(db)
    await upgrade(db)
    assert await current_revision(db) == head_revision()


async def test_sqlite_pragmas(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.read() as conn:
            assert (await conn.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(text("PRAGMA foreign_keys"))) == 1
            assert (await conn.scalar(text("PRAGMA busy_timeout"))) == 5000
    finally:
        await db.dispose()


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2025, 3, 9, 1, 30, tzinfo=eastern)
    async with db.write() as conn:
        job_id = (
            await conn.execute(insert(Job).values(name="j", next_run_at=moment))
        ).inserted_primary_key[0]
    async with db.read() as conn:
        stored = await conn.scalar(select(Job.next_run_at).where(Job.id == job_id))
    assert stored == moment
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == datetime(2025, 3, 9, 6, 30, tzinfo=UTC)


async def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with db.write() as conn:
            await conn.execute(insert(Job).values(name="j", next_run_at=datetime(2025, 1, 1)))


async def test_one_run_per_job_and_scheduled_time(db: Database) -> None:
    """The unique key that lets any number of schedulers fire an occurrence once."""
    when = datetime(2025, 1, 1, 9, tzinfo=UTC)
    async with db.write() as conn:
        job_id = (await conn.execute(insert(Job).values(name="j"))).inserted_primary_key[0]
        await conn.execute(
            insert(Run).values(job_id=job_id, trigger_type="scheduled", scheduled_for=when)
        )
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(
                insert(Run).values(job_id=job_id, trigger_type="scheduled", scheduled_for=when)
            )
    async with db.write() as conn:  # event runs carry no scheduled time: never conflict
        for _ in range(2):
            await conn.execute(insert(Run).values(job_id=job_id, trigger_type="event"))
        assert (await conn.scalar(text("SELECT count(*) FROM runs"))) == 3


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(insert(Run).values(job_id=424242, trigger_type="manual"))


async def test_deleting_a_job_deletes_its_runs(db: Database) -> None:
    async with db.write() as conn:
        job_id = (await conn.execute(insert(Job).values(name="j"))).inserted_primary_key[0]
        await conn.execute(insert(Run).values(job_id=job_id, trigger_type="manual"))
    async with db.write() as conn:
        await conn.execute(text("DELETE FROM jobs WHERE id = :id"), {"id": job_id})
    async with db.read() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM runs"))) == 0


async def test_failed_write_rolls_back_everything(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(insert(Job).values(name="rolled back"))
            raise RuntimeError("boom")
    async with db.read() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM jobs"))) == 0
