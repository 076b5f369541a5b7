"""The demo's directory: every run starts from a fresh database in it.

The demo sends the same sample deliveries each time; in the last run's database they would
all be duplicates (same bodies), so nothing would run. The database is removed first — but
only one the demo made: the demo's repository (``remote/…``, made by every run before its
database) beside it says so. The repository and the generated secrets are kept.
"""

from __future__ import annotations

from pathlib import Path

DATABASE = "ghapp.db"
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")  # the database and SQLite's side files
NOT_THE_DEMOS = (
    "{database} was not made by the demo (there is no {repository} beside it), and the demo "
    "starts each run from a fresh database: it leaves this one alone. Run it with --dir "
    "naming a new directory or one the demo made."
)


class DemoError(Exception):
    """Something the demo cannot go on from; its message says what and what to do."""


def start_clean(directory: Path, repository: Path) -> bool:
    """Remove the last run's database, if there is one (True then); refuse one the demo did
    not make. ``repository`` is the demo's own, relative to ``directory``."""
    database = directory / DATABASE
    if not database.exists():
        return False
    if not (directory / repository).is_dir():
        raise DemoError(NOT_THE_DEMOS.format(database=database, repository=repository))
    for suffix in SQLITE_SUFFIXES:
        (directory / f"{DATABASE}{suffix}").unlink(missing_ok=True)
    return True
