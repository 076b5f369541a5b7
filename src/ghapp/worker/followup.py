"""Running a follow-up: the session that continues an earlier one (``ghapp.webhooks.followups``
decided that a comment is one).

* **Who may ask**: the same rules as slash commands: writers only (a polite reply to anyone
  else, and no session), bots never (they are not even queued).
* **No fork's head**: a follow-up on a pull request whose head lives in a fork is refused
  with a polite reply. ghapp's own pull requests are never forks; a fork's code is only
  ever read by a read-only session of its own, never continued by a conversation that
  could end in a push.
* **Where**: a checkout of the branch the earlier session published to (so the session
  sees its own commits), and its new changes pushed to that branch, a fast-forward; the
  pull request's body is updated, no new one is opened. On ghapp's own pull request the
  session may write as the job allows: the code is ghapp's, the person asking a writer.
* **What it is told**: the earlier session's transcript is restored and resumed
  (``claude --resume``) with the new comment, fenced as untrusted text, as the prompt.
  When the transcript is gone (kept no longer, or the earlier session was not a Claude
  session) a new session starts and is given the conversation so far (the item's body,
  its comments and the review thread, fenced and capped), and the answer says so
  (:data:`TRANSCRIPT_GONE`).
* **Where the answer goes**: a reply in the review thread for a comment in one (posted
  once: a hidden marker is looked for first), else the session's tracking comment.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gidgethub.abc import GitHubAPI
from sqlalchemy import select
from sqlmodel import col

from ghapp.db import Database
from ghapp.db.models import Session
from ghapp.untrusted import clean, fence
from ghapp.worker.report import marker, with_marker
from ghapp.worker.transcripts import Resume, load

log = logging.getLogger("ghapp.worker")

REFUSED_REPLY = (
    "Sorry @{login}, only people with write access to this repository can ask me to "
    "continue this work, so I did not start it. A maintainer can ask for you."
)
FORK_REPLY = (
    "Sorry @{login}, this pull request's head is in a fork, so I do not continue work on it: "
    "ghapp never runs a follow-up on a fork's code."
)
TRANSCRIPT_GONE = (
    "The earlier session's transcript is no longer kept; this answer starts a new session "
    "that was given the conversation so far."
)
CONVERSATION_LIMIT = 40_000  # characters of earlier conversation a new session is given
REQUEST_LIMIT = 20_000  # characters of the new comment


@dataclass(frozen=True)
class Parent:
    """The session a follow-up continues."""

    id: int
    runner: str
    branch: str | None  # where it published (follow-ups push there)
    pr_number: int | None  # the pull request it opened or updated


@dataclass(frozen=True)
class FollowUp:
    """A follow-up run, ready for its session."""

    parent: Parent | None  # None: the earlier session is gone (its run was deleted)
    kind: str  # review_thread | review | comment (ghapp.webhooks.followups)
    comment_id: int
    thread_id: int | None  # the review thread's first comment: the answer is a reply there
    requested_by: str
    request: str
    pull_number: int | None  # the pull request the comment is on
    resume: Resume | None = None  # None: a new session, given the conversation so far
    conversation: str = ""

    @property
    def in_thread(self) -> bool:
        return self.thread_id is not None and self.pull_number is not None

    @property
    def branch(self) -> str | None:
        return self.parent.branch if self.parent is not None else None

    def prompt(self, task: str) -> str:
        """The session's prompt: the new comment alone when the session is resumed (it
        knows the rest), else the job's task, the conversation so far and the comment."""
        asked = fence(clean(self.request)[:REQUEST_LIMIT], "The new comment")
        lead = (
            f"@{self.requested_by} (who may write to this repository) replied to your work "
            f"on GitHub ({_where(self.kind)}). Do what the comment asks: change the code if "
            "it asks for changes, and answer briefly; your answer is posted as the reply."
        )
        if self.resume is not None:
            return f"{lead}\n\n{asked}"
        earlier = fence(self.conversation, "The conversation so far") if self.conversation else ""
        return (
            f"{task}\n\n---\n\nAn earlier session worked on this; its own record is no longer "
            f"kept, so here is the conversation so far instead.\n\n{earlier}\n\n{lead}\n\n{asked}"
        )

    def answer(self, text: str) -> str:
        return text if self.resume is not None else f"{TRANSCRIPT_GONE}\n\n{text}"


def _where(kind: str) -> str:
    return {
        "review_thread": "a comment in a review thread of the pull request",
        "review": "a review of the pull request",
    }.get(kind, "a comment mentioning the app")


async def parent_of(db: Database, session_id: int | None) -> Parent | None:
    if session_id is None:
        return None
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(col(Session.runner), col(Session.branch), col(Session.pr_number)).where(
                    col(Session.id) == session_id
                )
            )
        ).first()
    return None if row is None else Parent(session_id, str(row[0]), row[1], row[2])


async def prepare_follow_up(
    db: Database, gh: GitHubAPI, repo: str, detail: dict[str, Any], item: dict[str, Any]
) -> FollowUp:
    """The follow-up of this run: its parent, and the parent's transcript or, when that is
    gone, the conversation so far (read from GitHub)."""
    parent = await parent_of(db, _int(detail.get("parent_session_id")))
    number = _int(item.get("number"))
    follow = FollowUp(
        parent=parent,
        kind=str(detail.get("kind") or "comment"),
        comment_id=int(detail["comment_id"]),
        thread_id=_int(detail.get("thread_id")),
        requested_by=str(detail.get("requested_by") or ""),
        request=str(detail.get("request") or ""),
        pull_number=number if item.get("item_kind") == "pr" else None,
    )
    if follow.kind == "review" and follow.pull_number is not None:
        follow = _replace(follow, request=await _with_review_comments(gh, repo, follow))
    resume = None
    if parent is not None and parent.runner == "claude":
        resume = await load(db, parent.id)
    if resume is not None:
        return _replace(follow, resume=resume)
    conversation = await conversation_so_far(gh, repo, item, follow)
    return _replace(follow, conversation=conversation)


async def _with_review_comments(gh: GitHubAPI, repo: str, follow: FollowUp) -> str:
    """A review's text and the new comments it made in the diff (not its replies in
    threads: each of those is a follow-up of its own)."""
    parts = [follow.request] if follow.request else []
    async for comment in gh.getiter(
        f"/repos/{repo}/pulls/{follow.pull_number}/comments?per_page=100"
    ):
        if (
            comment.get("pull_request_review_id") == follow.comment_id
            and comment.get("in_reply_to_id") is None
        ):
            parts.append(f"On `{comment.get('path', '')}`: {comment.get('body') or ''}")
    return "\n\n".join(parts)


def _replace(follow: FollowUp, **changes: Any) -> FollowUp:
    return dataclasses.replace(follow, **changes)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def conversation_so_far(
    gh: GitHubAPI, repo: str, item: dict[str, Any], follow: FollowUp
) -> str:
    """The item's body, its comments and the review thread, oldest first; cut from the
    start to :data:`CONVERSATION_LIMIT` (the latest matter most). The new comment itself
    is left out: it is the request."""
    number = item.get("number")
    parts = [
        f"{str(item.get('item_kind', 'issue')).upper()} #{number} by "
        f"{item.get('author_login', '')}: {item.get('title', '')}\n\n{item.get('body', '')}"
    ]
    async for comment in gh.getiter(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
        if comment.get("id") != follow.comment_id:
            parts.append(_said(comment))
    if follow.in_thread:
        thread = [
            c
            async for c in gh.getiter(
                f"/repos/{repo}/pulls/{follow.pull_number}/comments?per_page=100"
            )
            if follow.thread_id in (c.get("id"), c.get("in_reply_to_id"))
            and c.get("id") != follow.comment_id
        ]
        if thread:
            parts.append(f"The review thread on `{thread[0].get('path', '')}`:")
            parts.extend(_said(c) for c in thread)
    text = clean("\n\n".join(parts))
    if len(text) > CONVERSATION_LIMIT:
        text = "… (earlier conversation cut)\n\n" + text[-CONVERSATION_LIMIT:]
    return text


def _review_comments(gh: GitHubAPI, repo: str, follow: FollowUp) -> AsyncIterator[Any]:
    """The pull request's review comments, oldest first (every thread's)."""
    return gh.getiter(f"/repos/{repo}/pulls/{follow.pull_number}/comments?per_page=100")


def _said(comment: dict[str, Any]) -> str:
    login = (comment.get("user") or {}).get("login", "someone")
    return f"@{login} wrote:\n{comment.get('body') or ''}"


async def answer_in_thread(
    gh: GitHubAPI, repo: str, follow: FollowUp, session_id: int, text: str
) -> None:
    """The answer as a reply in the review thread, once: a retried run finds the session's
    marker there first."""
    async for comment in gh.getiter(
        f"/repos/{repo}/pulls/{follow.pull_number}/comments?per_page=100"
    ):
        if marker(session_id) in (comment.get("body") or ""):
            return
    body = {"body": with_marker(text, session_id)}
    number, thread = follow.pull_number, follow.thread_id
    await gh.post(f"/repos/{repo}/pulls/{number}/comments/{thread}/replies", data=body)
