"""Follow-ups: a comment addressed to ghapp continues the session it is about.

Decided while the delivery is stored (one indexed query, no GitHub call). A comment is a
follow-up when a person (never a bot, so never the app itself) wrote it and it is:

* a reply in a review thread (``pull_request_review_comment.created`` with
  ``in_reply_to_id``) on a pull request a ghapp session opened: a reply to ghapp's code is
  addressed to its author;
* a review of that pull request with a body (``pull_request_review.submitted``), unless it
  is an approval that does not mention the app. The review's new comments in the diff come
  with it (the worker reads them): GitHub sends each of them as an event of its own too,
  and a review is one request, not one session per comment, racing to push;
* a comment mentioning the app (``@<app-slug>``, outside code and quotes) on that pull
  request, or on an issue or pull request where a session of the job ran and left its
  tracking comment.

A plain comment on ghapp's pull request that does not mention the app is not one: people
talk to each other there too (claude-code-action also waits for its mention).

The follow-up continues the newest session on that pull request or item (follow-ups
chain), preferring one that completed; a run of that session's job is queued if the job
is still active and accepts follow-ups. Whether the person may ask (writers only) is the
worker's to check, as for slash commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, select
from sqlmodel import col

from ghapp.db import Database
from ghapp.db.models import Job, JobStatus, Run, Session, SessionStatus
from ghapp.webhooks.normalize import ItemEvent

THREAD = "review_thread"  # a reply in a review thread (or a new one mentioning the app)
REVIEW = "review"  # a review's own text
COMMENT = "comment"  # a comment mentioning the app


@dataclass(frozen=True)
class FollowUp:
    job_id: int
    parent_session_id: int
    detail: dict[str, Any]  # the run's trigger_detail


def addressed(item: ItemEvent, mention: str | None) -> str | None:
    """What kind of follow-up the comment could be (before looking for a session), or None."""
    if not item.is_comment or item.actor_is_bot or item.comment_id is None:
        return None
    if item.event == "pull_request_review_comment" and item.action == "created":
        # A new thread's comment is part of a review (its own event brings it), unless it
        # mentions the app itself.
        return THREAD if item.in_reply_to_id is not None or mention is not None else None
    if item.event == "pull_request_review" and item.action == "submitted":
        approval = (item.review_state or "").lower() == "approved"
        if (item.comment_body or "").strip() and (mention is not None or not approval):
            return REVIEW
        return None
    if item.event == "issue_comment" and item.action == "created" and mention is not None:
        return COMMENT
    return None


async def find_follow_up(db: Database, item: ItemEvent, mention: str | None) -> FollowUp | None:
    """The follow-up this comment is, or None. ``mention``: the text after ``@<app-slug>``
    in the comment (None: the app is not mentioned)."""
    kind = addressed(item, mention)
    if kind is None:
        return None
    async with db.read() as conn:
        parent = await _newest(conn, _on_pull(item)) if item.item_kind == "pr" else None
        if parent is None and mention is not None:
            parent = await _newest(conn, _on_item(item))
    if parent is None:
        return None
    session_id, job_id, status, follow_ups = parent
    if status != JobStatus.active.value or not follow_ups:
        return None
    return FollowUp(job_id, session_id, _detail(item, kind, session_id, mention))


def _on_pull(item: ItemEvent) -> Any:
    """Sessions that published to this pull request (an indexed column)."""
    return (col(Session.pr_number) == item.number, col(Run.repo_id) == item.repo_id)


def _on_item(item: ItemEvent) -> Any:
    """Sessions that worked on this item and left their tracking comment on it."""
    return (
        col(Run.repo_id) == item.repo_id,
        col(Session.item_kind) == item.item_kind,
        col(Session.item_number) == item.number,
        col(Session.comment_id).is_not(None),
    )


async def _newest(conn: Any, where: Any) -> tuple[int, int, str, bool] | None:
    """(session, its job, the job's status, whether it accepts follow-ups) of the newest
    session matching ``where``: a completed one first (a failed follow-up keeps no
    transcript worth resuming)."""
    completed = case((col(Session.status) == SessionStatus.completed.value, 1), else_=0)
    row = (
        await conn.execute(
            select(col(Session.id), col(Job.id), col(Job.status), col(Job.follow_ups))
            .join(Run, col(Run.id) == col(Session.run_id))
            .join(Job, col(Job.id) == col(Run.job_id))
            .where(*where)
            .order_by(completed.desc(), col(Session.id).desc())
            .limit(1)
        )
    ).first()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]), bool(row[3]))


def _detail(item: ItemEvent, kind: str, parent_id: int, mention: str | None) -> dict[str, Any]:
    request = mention if mention is not None and kind == COMMENT else item.comment_body
    return {
        "parent_session_id": parent_id,
        "kind": kind,
        "event": f"{item.event}.{item.action}",
        "comment_id": item.comment_id,
        # GitHub takes replies on a thread's first comment only.
        "thread_id": (item.in_reply_to_id or item.comment_id) if kind == THREAD else None,
        "requested_by": item.actor_login,
        "author_association": item.author_association,
        "request": (request or "").strip(),
    }
