"""One session's record: its row from start to end, and its tracking comment.

A run has one Session row per item. When the run is retried or taken over, the same row is
used again, so the tracking comment is found again by its marker and edited, never posted
twice; a session that had ended already is not run again (its stored result stands).
The result and its report are stored before anything is sent to GitHub: if sending fails,
the run is retried and only the report goes out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from gidgethub.abc import GitHubAPI
from sqlalchemy import and_, insert, null, select, update
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.core import inserted_id
from ghapp.db.errors import describe
from ghapp.db.models import Session, SessionStatus
from ghapp.metrics import Metrics
from ghapp.runners.base import Outcome, Progress
from ghapp.worker import transcripts
from ghapp.worker.prepare import Item
from ghapp.worker.report import Posted, start_comment
from ghapp.worker.rows import JobRow, SessionRow

log = logging.getLogger("ghapp.worker")

PROGRESS_EVERY_S = 1.0  # how often a running session's event log is written
EVENT_LOG_KEPT = 200  # the latest events of a session's log

T = TypeVar("T")


class SessionRecords:
    def __init__(self, db: Database, clock: Clock, metrics: Metrics | None = None) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics

    async def finished(self, run_id: int, item: Item) -> SessionRow | None:
        """The run's session for this item if it ended in an earlier attempt, or None."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(Session).where(
                        same_item(run_id, item), col(Session.completed_at).is_not(None)
                    )
                )
            ).one_or_none()
        return None if row is None else SessionRow.of(row)

    async def start(self, run_id: int, item: Item, prompt: str, runner: str) -> int:
        """The run's session for this item: reused when the run is retried or taken over."""
        async with self.db.write() as conn:
            existing = await conn.scalar(select(col(Session.id)).where(same_item(run_id, item)))
            if existing is not None:
                await conn.execute(
                    update(Session)
                    .where(col(Session.id) == existing)
                    .values(status=SessionStatus.running.value, started_at=self.clock.now())
                )
                return int(existing)
            result = await conn.execute(
                insert(Session).values(
                    run_id=run_id,
                    item_kind=item.kind,
                    item_number=item.number,
                    item_title=item.title,
                    prompt=prompt,
                    runner=runner,
                    status=SessionStatus.running.value,
                    started_at=self.clock.now(),
                )
            )
            return inserted_id(result)

    async def track(
        self, gh: GitHubAPI, repo: str, item: Item, session_id: int, job: JobRow, run_url: str
    ) -> Posted | None:
        """The tracking comment on the issue or PR, when the job reports there."""
        if item.number is None or job.report != "comment":
            return None
        comment = await start_comment(
            gh, repo, item.number, session_id, job=job.name, run_url=run_url
        )
        await self.update(session_id, comment_id=comment.comment_id, comment_url=comment.url)
        return comment

    def log(self, session_id: int) -> ProgressLog:
        return ProgressLog(self, session_id)

    async def end(self, session_id: int, runner: str, outcome: Outcome, report: str) -> None:
        """Store how the session ended, with the report that is to go to GitHub."""
        await self.update(
            session_id,
            status=outcome.status,
            agent_session_id=outcome.agent_session_id,
            result_text=outcome.result_text,
            error=outcome.error,
            cost_usd=outcome.cost_usd,
            num_turns=outcome.num_turns,
            duration_ms=outcome.duration_ms,
            exit_code=outcome.exit_code,
            usage=outcome.usage,
            permission_denials=outcome.permission_denials,
            result_subtype=outcome.subtype,
            # SQL NULL, not JSON null: "has a structured result" is then a plain IS NOT NULL.
            structured_result=null()
            if outcome.structured_result is None
            else outcome.structured_result,
            structured_error=outcome.structured_error,
            completed_at=self.clock.now(),
            report_text=report,
        )
        if outcome.transcript is not None and outcome.agent_session_id:  # for a follow-up
            await transcripts.save(
                self.db, session_id, outcome.agent_session_id, outcome.transcript, self.clock.now()
            )
        if self.metrics is not None:
            self.metrics.session_seconds.labels(runner, str(outcome.status)).observe(
                (outcome.duration_ms or 0) / 1000
            )

    async def fail(self, session_id: int, reason: str, report: str) -> SessionRow | None:
        """End the session ``failed`` with the reason; returns its row, or None when it had
        ended already (its report failed to go out): then it keeps its result."""
        async with self.db.write() as conn:
            ended = await conn.execute(
                update(Session)
                .where(col(Session.id) == session_id, col(Session.completed_at).is_(None))
                .values(
                    status=SessionStatus.failed.value,
                    error=reason,
                    completed_at=self.clock.now(),
                    report_text=report,
                )
            )
            session = (
                await conn.execute(select(Session).where(col(Session.id) == session_id))
            ).one()
        return SessionRow.of(session) if ended.rowcount else None

    async def reported(self, session_id: int) -> None:
        """The report reached GitHub: a retry of the run does not send it again."""
        await self.update(session_id, reported_at=self.clock.now())

    async def store_progress(self, session_id: int, progress: Progress) -> None:
        await self.update(
            session_id,
            event_log=progress.events[-EVENT_LOG_KEPT:],
            agent_session_id=progress.agent_session_id,
            num_turns=progress.turns,
        )

    async def update(self, session_id: int, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(Session).where(col(Session.id) == session_id).values(**values)
            )


class ProgressLog:
    """Stores a running session's event log as it goes (the dashboard shows it live):
    the first event at once, then at most once a second, and everything at the end."""

    def __init__(self, records: SessionRecords, session_id: int) -> None:
        self.records = records
        self.session_id = session_id
        self.latest: Progress | None = None
        self.written_at: float | None = None

    async def named(self, agent_session_id: str) -> None:
        # Stored before the agent starts: the run page shows it from the start.
        await self.records.update(self.session_id, agent_session_id=agent_session_id)

    async def progress(self, progress: Progress, event: dict[str, Any]) -> None:
        self.latest = progress
        now = time.monotonic()
        if self.written_at is None or now - self.written_at >= PROGRESS_EVERY_S:
            self.written_at = now
            await self.flush()

    async def flush(self) -> None:
        if self.latest is None:
            return
        try:
            await self.records.store_progress(self.session_id, self.latest)
        except Exception as exc:  # the live log is a view: a session never fails for it
            log.warning("progress not stored", extra={"error": describe(exc)})


@asynccontextmanager
async def alongside(work: Awaitable[T]) -> AsyncIterator[asyncio.Future[T]]:
    """Run ``work`` while the block runs (the tracking comment is posted while the checkout
    is made). If the block fails, ``work`` is let finish first: the failure is said on the
    comment, which must not be left saying "working" for ever."""
    task = asyncio.ensure_future(work)
    try:
        yield task
    except Exception:
        with contextlib.suppress(Exception):
            await task
        raise
    finally:
        if not task.done():
            task.cancel()


def same_item(run_id: int, item: Item) -> Any:
    """The run's session row for this item (one per item, reused across attempts)."""
    number = col(Session.item_number)
    return and_(
        col(Session.run_id) == run_id,
        col(Session.item_kind) == item.kind,
        number.is_(None) if item.number is None else number == item.number,
    )


def stored_outcome(session: SessionRow) -> Outcome:
    """How a session that ended in an earlier attempt of the run ended."""
    return Outcome(
        ok=session.status == SessionStatus.completed.value,
        status=session.status,
        result_text=session.result_text,
        error=session.error,
        agent_session_id=session.agent_session_id,
        num_turns=session.num_turns,
        cost_usd=session.cost_usd,
        duration_ms=session.duration_ms or 0,
        exit_code=session.exit_code,
    )
