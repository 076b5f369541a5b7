"""``INSERT … ON CONFLICT`` for both backends (their dialects spell it the same way)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


async def upsert(
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
