"""Formatting shared by the API commands: tables of plain text, times, counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ghapp.cli.output import out

NONE = "—"
WIDE = 120  # a terminal at least this wide shows the columns marked wide


@dataclass(frozen=True)
class Col:
    """A column: ``key`` ones (ids, times, states) never wrap; text wraps between words, and a
    word too long for the column ends in an ellipsis instead of breaking across lines."""

    header: str
    key: bool = False
    min_width: int | None = None
    wide: bool = False  # only on a wide terminal


def show_table(
    title: str, columns: Sequence[Col], rows: Iterable[Sequence[Any]], empty: str
) -> None:
    """A table on stdout (times in UTC); cells are plain text: a name like ``[red]`` stays."""
    cells = [[NONE if cell is None or cell == "" else str(cell) for cell in row] for row in rows]
    if not cells:
        say(empty)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    shown = [i for i, column in enumerate(columns) if not column.wide or out.width >= WIDE]
    table = Table(
        title=f"{title} (times in UTC)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        highlight=False,
        pad_edge=False,
    )
    for i in shown:
        column = columns[i]
        table.add_column(
            column.header,
            no_wrap=column.key,
            overflow="ellipsis",
            min_width=column.min_width or (len(column.header) if column.key else None),
        )
    for row in cells:
        table.add_row(*(Text(row[i]) for i in shown))
    out.print(table)


def say(text: str) -> None:
    """A line on stdout, printed as is (no markup, no highlighting)."""
    out.print(text, markup=False, highlight=False)


def when(value: str | datetime | None, zone: str = "") -> str:
    """A moment in UTC as ``2025-06-02 09:00`` (from the API's ISO strings or datetimes)."""
    if value is None or value == "":
        return NONE
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # the database hands back naive UTC on SQLite
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") + zone


def when_utc(value: str | datetime | None) -> str:
    """:func:`when` for a sentence: ``2025-06-02 09:00 UTC``."""
    return when(value, " UTC") if value else "—"


def duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return NONE
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def yes_no(value: bool) -> str:
    return "yes" if value else "no"
