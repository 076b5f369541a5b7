"""Alembic migrations, run from code (``ghapp db upgrade`` and on ``ghapp serve``).

alembic logs two lines of its context and one per revision at INFO; an upgrade logs one
line of its own instead (:data:`MIGRATED`), and nothing when there was nothing to do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ghapp.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: replicas starting at once take turns at migrating (PostgreSQL).
_PG_MIGRATION_LOCK = 7_466_501
MIGRATED = "database migrated from {before} to {after} ({count} migrations)"
log = logging.getLogger("ghapp.db")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run from several processes at once."""
    async with db.write() as conn:
        before, after = await conn.run_sync(_upgrade, revision)
    if before != after:
        count = len(
            list(ScriptDirectory.from_config(alembic_config()).iterate_revisions(after, before))
        )
        log.info(
            MIGRATED.format(before=before or "<none>", after=after, count=count),
            extra={"from_revision": before, "to_revision": after, "migrations": count},
        )


async def current_revision(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(_revision)


def _revision(connection: Connection) -> str | None:
    with _quiet_alembic():
        return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> tuple[str | None, str | None]:
    """Upgrade; the revisions before and after."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    before = _revision(connection)
    config = alembic_config()
    config.attributes["connection"] = connection
    with _quiet_alembic():
        command.upgrade(config, revision)
    return before, _revision(connection)


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    """alembic's INFO lines held back meanwhile (its warnings still pass)."""
    alembic_log = logging.getLogger("alembic")
    saved = alembic_log.level
    alembic_log.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        alembic_log.setLevel(saved)
