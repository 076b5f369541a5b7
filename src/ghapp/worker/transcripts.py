"""A Claude Code session's transcript, kept so that a follow-up can resume the conversation.

The CLI writes each session's conversation to ``$HOME/.claude/projects/<project>/<id>.jsonl``.
Every session gets a fresh, empty home (see ``ghapp.runners.claude``), so that file is gone
with the session's scratch folder: after the session the runner reads it back
(:attr:`~ghapp.runners.base.Outcome.transcript`), ghapp stores it gzipped in
``session_transcripts`` (:func:`save`), and a follow-up hands it to the next session
(:func:`load`, then ``SessionRequest.resume``), which restores it into its own fresh home and
runs ``claude --resume``.

A transcript may hold strangers' text and tool output: it is never logged and never shown
in the API or the dashboard. Transcripts older than ``GHAPP_TRANSCRIPT_RETENTION_DAYS`` are
deleted (:func:`prune`); a follow-up then finds none (:func:`load` says None) and starts a
new session instead.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.core import upsert_row
from ghapp.db.models import SessionTranscript, table_of

log = logging.getLogger("ghapp.worker")

PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Resume:
    """What a session needs to continue an earlier one."""

    agent_session_id: str  # the CLI session id to --resume
    transcript: bytes  # the CLI's .jsonl for that session, uncompressed

    def __repr__(self) -> str:
        # Never the transcript itself: a repr can end up in a log line.
        return f"Resume(agent_session_id={self.agent_session_id!r}, {len(self.transcript)} bytes)"


async def save(
    db: Database, session_id: int, agent_session_id: str, transcript: bytes, now: datetime
) -> None:
    """Store the session's transcript (gzipped), replacing the one it had (a retried run)."""
    values = {
        "session_id": session_id,
        "agent_session_id": agent_session_id,
        "data": gzip.compress(transcript),
        "size_bytes": len(transcript),
        "created_at": now,
    }
    async with db.write() as conn:
        await upsert_row(conn, table_of(SessionTranscript), values, key=("session_id",))


async def load(db: Database, session_id: int) -> Resume | None:
    """The session's transcript, or None when it is gone (never saved, deleted by
    retention, or unreadable)."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(col(SessionTranscript.agent_session_id), col(SessionTranscript.data)).where(
                    col(SessionTranscript.session_id) == session_id
                )
            )
        ).one_or_none()
    if row is None:
        return None
    try:
        data = gzip.decompress(row.data)
    except (OSError, EOFError, zlib.error) as exc:
        log.warning("transcript unreadable", extra={"session_id": session_id, "error": str(exc)})
        return None
    return Resume(agent_session_id=row.agent_session_id, transcript=data)


async def prune(db: Database, now: datetime, retention_days: int) -> int:
    """Delete transcripts older than ``retention_days`` (0 keeps them for ever); returns how
    many were deleted."""
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    async with db.write() as conn:
        result = await conn.execute(
            delete(table_of(SessionTranscript)).where(col(SessionTranscript.created_at) < cutoff)
        )
    return int(result.rowcount or 0)


async def keep_pruning(
    db: Database, clock: Clock, retention_days: int, every: timedelta = PRUNE_EVERY
) -> None:
    """Prune now and then every ``every``, for as long as the worker runs (supervised: a
    database outage costs a pause). Replicas may all prune: deleting twice is harmless."""
    if retention_days <= 0:
        return
    while True:
        deleted = await prune(db, clock.now(), retention_days)
        if deleted:
            log.info("transcripts deleted", extra={"count": deleted, "days": retention_days})
        await clock.sleep_until(clock.now() + every, asyncio.Event())
