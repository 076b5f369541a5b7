"""``GET /events``: server-sent events telling open pages that runs or jobs changed.

Each stream looks at a cheap fingerprint of the run queue about once a second — the newest
run id, and the count and id sum of the queued and running runs (all answered from
indexes) — plus the jobs version every job change bumps. Any process's change shows up
there, so a run started from the API, the CLI, a webhook or another tab reaches every open
page. An in-process change (``state.signals``) wakes the stream at once.

Events: ``hello`` (the stream's starting point, when the page did not say where it
stands with ``?since=``), ``change`` (something changed since: re-fetch the page's
fragment) and, while runs are running, ``tick`` every few seconds (a run page re-fetches
to show the growing event log). A stream ends when the client goes away, and by itself after
:data:`STREAM_SECONDS` — the browser reconnects at once, sending the last fingerprint —
so a server shutting down never waits on it for long.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from starlette.responses import Response, StreamingResponse

from ghapp.dashboard.core import Ctx
from ghapp.db.models import AuditEntry, Run, RunStatus, SchedulerState
from ghapp.jobs.service import JOBS_VERSION

POLL_SECONDS = 1.0
TICK_SECONDS = 2.0
PING_SECONDS = 15.0
STREAM_SECONDS = 25.0
RETRY_MS = 1000


async def fingerprint(ctx: Ctx) -> str:
    """Changes whenever a run is added or changes state, or a job changes — among what the
    signed-in token may see: a tenant's stream says nothing about other repositories."""
    unfinished = (RunStatus.queued.value, RunStatus.running.value)
    scope = await ctx.scope()
    runs = select(col(Run.status), func.count(), func.sum(col(Run.id))).where(
        col(Run.status).in_(unfinished)
    )
    newest = select(func.max(col(Run.id)))
    if scope.repo_ids is not None:
        visible = sorted(scope.repo_ids)
        runs, newest = (
            runs.where(col(Run.repo_id).in_(visible)),
            newest.where(col(Run.repo_id).in_(visible)),
        )
        # Every change to a job is audited with its repository: the newest such entry
        # moves with any of them, and only with theirs.
        changes = select(func.max(col(AuditEntry.id))).where(col(AuditEntry.repo_id).in_(visible))
    async with ctx.state.db.read() as conn:
        newest_id = await conn.scalar(newest)
        rows = await conn.execute(runs.group_by(col(Run.status)))
        counts = {status: (int(count), int(total or 0)) for status, count, total in rows}
        if scope.repo_ids is None:  # every job change bumps this one number
            version = await conn.scalar(
                select(col(SchedulerState.value)).where(col(SchedulerState.key) == JOBS_VERSION)
            )
        else:
            version = f"a{await conn.scalar(changes) or 0}"
    parts = [
        newest_id or 0,
        *counts.get("queued", (0, 0)),
        *counts.get("running", (0, 0)),
        version or 0,
    ]
    return ".".join(str(part) for part in parts)


def _running(mark: str) -> bool:
    parts = mark.split(".")
    return len(parts) == 6 and parts[3] != "0"


def _event(kind: str, data: Any, event_id: str | None = None) -> str:
    lines = [f"event: {kind}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data)}")
    return "\n".join(lines) + "\n\n"


async def events(ctx: Ctx) -> Response:
    request = ctx.request
    signals = ctx.state.signals
    loop = asyncio.get_running_loop()
    # Where the page stands: the fingerprint it was rendered at, or the last one this
    # browser was sent (EventSource reconnects with Last-Event-ID).
    last = request.headers.get("last-event-id") or request.query_params.get("since") or None
    if last is not None and len(last) > 200:
        last = None

    async def wake_or_wait(seconds: float) -> None:
        """Sleep up to ``seconds``; wake early when this process queues runs or changes jobs.
        (An event someone left set would wake every time: then simply sleep.)"""
        watched = [
            event
            for event in (signals.work_available, signals.scheduler_wake)
            if not event.is_set()
        ]
        if not watched:
            await asyncio.sleep(seconds)
            return
        waiters = [asyncio.ensure_future(event.wait()) for event in watched]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def stream() -> AsyncIterator[str]:
        nonlocal last
        started = loop.time()
        last_sent = last_tick = started
        yield f"retry: {RETRY_MS}\n\n"
        while loop.time() - started < STREAM_SECONDS:
            if await request.is_disconnected():
                return
            mark = await fingerprint(ctx)
            now = loop.time()
            if mark != last:
                if last is not None:  # the first look only sets the baseline
                    yield _event("change", {"fingerprint": mark}, mark)
                    last_sent = now
                else:
                    yield _event("hello", {"fingerprint": mark}, mark)
                    last_sent = now
                last = mark
            elif _running(mark) and now - last_tick >= TICK_SECONDS:
                yield _event("tick", {"fingerprint": mark}, mark)
                last_tick = last_sent = now
            elif now - last_sent >= PING_SECONDS:
                yield ": ping\n\n"
                last_sent = now
            await wake_or_wait(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
