"""A pull request's sessions as check runs on its head, so branch protection can require a
job and GitHub's *Re-run* queues it again (:mod:`ghapp.webhooks.checks`).

A job's sessions on pull requests make one check run each (unless the job says
``checks: false``), named after the job, on the head GitHub gave for the pull request:
``in_progress`` when the session starts, ``completed`` with its conclusion when it ends
(success, failure, timed_out, cancelled; a run refused before any session, such as a
``paths:`` trigger no changed file matches, is ``skipped`` and says why). Its
``external_id`` names the run and session, its ``details_url`` is the run's page.

The session row keeps the check run's id and head: a retried or taken-over run edits the
same check run. A create that may have reached GitHub unanswered is looked up by its
``external_id`` before it is tried again. GitHub trouble makes the run retryable, as
everywhere; any other refusal (an installation that has not granted ``checks: write``
yet) is logged and said in the session's report, and the session goes on without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gidgethub.abc import GitHubAPI
from sqlalchemy import select, update
from sqlmodel import col

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.models import Run, Session, TriggerType
from ghapp.runners.base import Outcome
from ghapp.webhooks.checks import external_id
from ghapp.worker.failures import failure_reason, transient
from ghapp.worker.prepare import Item, Prepared
from ghapp.worker.report import MAYBE_APPLIED, facts_line

log = logging.getLogger("ghapp.worker")

SUMMARY_LIMIT = 65_535  # GitHub's, for output.summary
TITLE_LIMIT = 200  # ours: a title is one line in GitHub's checks list

# A session's status → the check run's conclusion.
CONCLUSIONS = {
    "completed": "success",
    "failed": "failure",
    "timed_out": "timed_out",
    "cancelled": "cancelled",
    "skipped": "skipped",
}
# How cancelling runs words their reason: a newer push, an unassignment of the app.
CANCEL_REASONS = ("superseded", "cancelled", "unassigned")
TITLES = {
    "success": "Finished",
    "failure": "Failed",
    "timed_out": "Timed out",
    "cancelled": "Cancelled",
    "skipped": "Skipped",
}


@dataclass(frozen=True)
class Stored:
    check_run_id: int | None
    head_sha: str | None


def wanted(prepared: Prepared, item: Item) -> bool:
    """The job asks for check runs and the item is a pull request."""
    return prepared.job.checks and item.kind == "pr" and item.number is not None


def head_of(item: Item) -> str | None:
    """The head the session's check run goes on: the one the event was about, else the
    one GitHub gave when the item's trust was asked (a comment, a search, a re-run)."""
    pull = (item.data or {}).get("pull") or {}
    return str(pull.get("head_sha") or "") or item.trust.head_sha


class CheckRuns:
    def __init__(self, db: Database, clock: Clock, run_url: Callable[[int], str]) -> None:
        self.db = db
        self.clock = clock
        self.run_url = run_url  # run id -> the run's page (details_url)

    async def start(self, prepared: Prepared, item: Item, session_id: int) -> str | None:
        """The session's check run, ``in_progress`` (the one an earlier attempt made, or a
        new one). Returns what to say in the report when GitHub refused it, else None."""
        target = await self._target(prepared, item, session_id)
        if target is None:
            return None
        stored, head = target
        body = {
            "status": "in_progress",
            "started_at": self._now(),
            "output": {
                "title": "Running",
                "summary": f"**{prepared.job.name}** is working on this pull request. "
                f"[Follow the run]({self.run_url(prepared.run.id)}).",
            },
        }
        return await self._send(prepared, item, session_id, stored, head, body)

    async def finish(
        self, prepared: Prepared, item: Item, session_id: int, outcome: Outcome
    ) -> str | None:
        """End the session's check run with the session's conclusion (made now if the
        session ended before it could start one)."""
        target = await self._target(prepared, item, session_id)
        if target is None:
            return None
        stored, head = target
        conclusion = CONCLUSIONS.get(outcome.status, "failure")
        why = await self.cancel_reason(prepared.run.id) if conclusion == "cancelled" else None
        body = {
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": self._now(),
            "output": {
                "title": title(conclusion, outcome.error),
                "summary": self.summary(prepared.run.id, outcome, conclusion, why),
            },
        }
        return await self._send(prepared, item, session_id, stored, head, body)

    async def skipped(self, prepared: Prepared, reason: str) -> None:
        """A run refused before any session on an event's pull request (a ``paths:``
        trigger no changed file matches…): one completed check run, ``skipped``, saying
        why, so a required check is not left waiting for ever. A refused slash command
        says so on its comment instead."""
        item = prepared.run.item or {}
        head = (item.get("pull") or {}).get("head_sha")
        if (
            not prepared.job.checks
            or item.get("item_kind") != "pr"
            or not head
            or prepared.run.trigger_type == TriggerType.command.value
        ):
            return
        body = {
            "name": prepared.job.name,
            "head_sha": head,
            "external_id": external_id(prepared.run.id),
            "details_url": self.run_url(prepared.run.id),
            "status": "completed",
            "conclusion": "skipped",
            "completed_at": self._now(),
            "output": {"title": title("skipped", reason), "summary": f"Skipped: {reason}"},
        }
        repo = prepared.repo.full_name
        try:
            await prepared.gh.post(f"/repos/{repo}/check-runs", data=body)
        except Exception as exc:
            if transient(exc):
                raise
            log.warning("check run not made", extra={"error": failure_reason(exc)})

    def summary(self, run_id: int, outcome: Outcome, conclusion: str, why: str | None) -> str:
        """What the check run's page says: the result (or the error), cost, turns, time."""
        facts = facts_line(
            turns=outcome.num_turns, cost_usd=outcome.cost_usd, duration_ms=outcome.duration_ms
        )
        if conclusion == "success":
            said = (outcome.result_text or "").strip() or "Done."
        elif conclusion == "cancelled":
            said = f"Cancelled: {why}." if why else "Cancelled."
        else:
            error = (outcome.error or "unknown error").strip()
            said = f"{TITLES.get(conclusion, 'Failed')}: {error}"
        tail = f"\n\n{facts} · [run]({self.run_url(run_id)})"
        room = SUMMARY_LIMIT - len(tail)
        if len(said) > room:
            said = said[: room - 1] + "…"
        return said + tail

    async def _send(
        self,
        prepared: Prepared,
        item: Item,
        session_id: int,
        stored: Stored,
        head: str,
        body: dict[str, Any],
    ) -> str | None:
        gh, repo = prepared.gh, prepared.repo.full_name
        try:
            check_id = stored.check_run_id
            if check_id is not None:
                await gh.patch(f"/repos/{repo}/check-runs/{check_id}", data=body)
                return None
            ours = external_id(prepared.run.id, session_id)
            created = {
                "name": prepared.job.name,
                "head_sha": head,
                "external_id": ours,
                "details_url": self.run_url(prepared.run.id),
                **body,
            }
            try:
                check = await gh.post(f"/repos/{repo}/check-runs", data=created)
            except MAYBE_APPLIED:
                # GitHub may have made it and failed to say so: look before a second try.
                check = await find(gh, repo, head, prepared.job.name, ours)
                if check is None:
                    raise
                check_id = check["id"]
                await gh.patch(f"/repos/{repo}/check-runs/{check_id}", data=body)
            await self._remember(session_id, int(check["id"]), head)
        except Exception as exc:
            if transient(exc):
                raise  # the run is retried, and this session with its check run
            reason = failure_reason(exc)
            log.warning("check run not made or not updated", extra={"error": reason})
            return f"The check run could not be made or updated: {reason}"
        return None

    async def _target(
        self, prepared: Prepared, item: Item, session_id: int
    ) -> tuple[Stored, str] | None:
        """What the session's check run is on (what an earlier attempt stored, and the
        head), or None if it has none: the job does not want one, or the head is unknown."""
        if not wanted(prepared, item):
            return None
        stored = await self._stored(session_id)
        head = stored.head_sha or head_of(item)
        return None if head is None else (stored, head)

    async def _stored(self, session_id: int) -> Stored:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(col(Session.check_run_id), col(Session.head_sha)).where(
                        col(Session.id) == session_id
                    )
                )
            ).one()
        return Stored(row.check_run_id, row.head_sha)

    async def _remember(self, session_id: int, check_run_id: int, head: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(Session)
                .where(col(Session.id) == session_id)
                .values(check_run_id=check_run_id, head_sha=head)
            )

    async def cancel_reason(self, run_id: int) -> str | None:
        """Why the run was asked to stop, when whoever asked said so (a newer push); an
        error left from an earlier attempt is not a reason."""
        async with self.db.read() as conn:
            error = await conn.scalar(select(col(Run.error)).where(col(Run.id) == run_id))
        return error if error and error.startswith(CANCEL_REASONS) else None

    def _now(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def title(conclusion: str, error: str | None) -> str:
    """One line: how it ended, and for a failure or a skip, why."""
    words = TITLES.get(conclusion, "Failed")
    if conclusion in ("failure", "skipped") and error:
        first = error.strip().splitlines()[0] if error.strip() else ""
        words = f"{words}: {first}" if first else words
    return words if len(words) <= TITLE_LIMIT else words[: TITLE_LIMIT - 1] + "…"


async def find(gh: GitHubAPI, repo: str, head: str, name: str, ours: str) -> dict[str, Any] | None:
    """The check run with ``external_id`` ``ours`` on ``head``, if GitHub has it."""
    async for check in gh.getiter(
        f"/repos/{repo}/commits/{head}/check-runs?check_name={quote(name)}&filter=all&per_page=100",
        iterable_key="check_runs",
    ):
        if check.get("external_id") == ours:
            return dict(check)
    return None
