"""SQLAlchemy Core helpers that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def inserted_id(result: CursorResult[*tuple[Any, ...]]) -> int:
    """The primary key of the row a single-row ``INSERT`` made."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the insert made no row")
    return int(key[0])


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """``INSERT`` with ``on_conflict_do_*`` (both dialects spell it the same way)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


async def upsert_row(
    conn: AsyncConnection,
    table: Table,
    values: dict[str, Any],
    *,
    key: Sequence[str] = ("id",),
    update: Iterable[str] | None = None,
) -> None:
    """Insert ``values``, or update the ``update`` columns of the row with the same key."""
    stmt = dialect_insert(conn, table).values(**values)
    columns = [c for c in (update if update is not None else values) if c not in key]
    if columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key), set_={c: stmt.excluded[c] for c in columns}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    await conn.execute(stmt)


async def insert_ignoring_conflicts(
    conn: AsyncConnection,
    table: Table,
    rows: list[dict[str, Any]],
    key: Sequence[str],
    returning: str = "job_id",
) -> dict[Any, int]:
    """Insert ``rows`` (one statement), skipping those whose ``key`` already exists.

    Returns ``{row[returning]: new id}`` for the rows actually inserted.
    """
    if not rows:
        return {}
    stmt = (
        dialect_insert(conn, table)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(table.c[returning], table.c.id)
    )
    result = await conn.execute(stmt, rows)
    return {row[0]: row[1] for row in result.all()}
