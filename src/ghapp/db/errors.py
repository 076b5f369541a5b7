"""Telling database trouble that passes from bugs, and naming it as the driver does.

A PostgreSQL restart, a cut connection, a full disk or a read-only SQLite file are
conditions of the moment: the work waits and tries again. They must reach the log and the
run as what they are ("database or disk is full"), not as whatever a later step raised
while cleaning up.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy.exc

_SQLITE_PASSING = (
    "database or disk is full",
    "readonly database",
    "read-only",
    "disk i/o error",
    "database is locked",
    "unable to open database",
)


def is_database_trouble(exc: BaseException) -> bool:
    """True for connection and capacity failures that another try may not meet."""
    import asyncpg

    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and is_database_trouble(exc.orig)
    if isinstance(exc, sqlalchemy.exc.TimeoutError | sqlalchemy.exc.DisconnectionError):
        return True  # no connection could be had from the pool in time
    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in _SQLITE_PASSING)
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError
        | asyncpg.ReadOnlySQLTransactionError
        | asyncpg.DiskFullError,
    ):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and is_database_trouble(cause)


def describe(exc: BaseException) -> str:
    """The driver's own words: ``OperationalError: database or disk is full``."""
    inner: BaseException = exc
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        inner = exc.orig
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__
