"""Hand-written standard SQL for the hot path (same text on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from ghapp.db.batch import Statement

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@lru_cache(maxsize=128)
def _upsert_sql(
    table: str, columns: tuple[str, ...], key: tuple[str, ...], update: tuple[str, ...]
) -> str:
    # Names come from our code, never from payloads; checked anyway.
    if not all(_IDENTIFIER.match(name) for name in (table, *columns, *key)):
        raise ValueError("not an SQL identifier")
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) "
    )
    if not update:
        return sql + "DO NOTHING"
    return sql + "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)


def upsert(
    table: str,
    values: dict[str, object],
    *,
    key: Sequence[str] = ("id",),
    update: Sequence[str] | None = None,
) -> Statement:
    """Insert ``values``, or update the ``update`` columns of the row with the same key."""
    changing = tuple(c for c in (update if update is not None else values) if c not in key)
    return Statement(_upsert_sql(table, tuple(values), tuple(key), changing), values)
