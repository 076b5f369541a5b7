"""May this person run this slash command? (Write or admin permission; for a command open
to readers, any permission GitHub reports from ``read`` up: see ``ghapp.tiers``.)

Asked of GitHub's collaborator-permission endpoint and cached briefly (a minute), so a
burst of commands costs one call per person. Accepted → an 👀 reaction on the comment (on
the endpoint of its kind: a comment in a PR's diff is a *pull request review comment*, a
review has no reactions at all); refused → a polite reply on the issue and a skipped run,
with the reason recorded.

On a public repository GitHub reports ``read`` for every GitHub user, so a reader's
commands are limited to :data:`READER_LIMIT` per person and repository in
:data:`READER_WINDOW_S` (counted in this process's memory, like ``ghapp.throttle``: with
several workers, once per worker); past it, a polite reply and a skipped run. Writers are
not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache
from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from ghapp.tiers import READER_PERMISSIONS, READERS, WRITERS

ALLOWED = frozenset({"admin", "write"})  # GitHub reports "maintain" as "write"
PERMISSION_TTL_S = 60.0
REFUSED_REPLY = (
    "Sorry @{login}, `{command}` can only be run by people with write access to this "
    "repository, so I did not start it. A maintainer can run it for you."
)
# A command open to readers, asked by someone GitHub gives no access at all (a private
# repository's outsider): saying "write access" would send them after the wrong thing.
REFUSED_READERS_REPLY = (
    "Sorry @{login}, `{command}` can only be run by people with access to this "
    "repository, so I did not start it."
)
REFUSED_MARKER = "<!-- ghapp:refused={comment_id} -->"
READER_LIMIT = 5
READER_WINDOW_S = 3600.0
THROTTLED_REPLY = (
    "Sorry @{login}, you have asked for `{command}` often in the last hour, so I did not "
    "start it this time. Please try again later."
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    permission: str
    reason: str | None = None
    reader: bool = False  # allowed as a reader: the session is read-only whatever else says


class ReaderQuota:
    """At most ``limit`` commands per (repository, person) in a sliding window."""

    def __init__(
        self,
        limit: int = READER_LIMIT,
        window: float = READER_WINDOW_S,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.timer = limit, window, timer
        self._times: TTLCache[tuple[str, str], list[float]] = TTLCache(
            maxsize=10_000, ttl=window, timer=timer
        )

    def take(self, repo: str, login: str) -> bool:
        """Count one command; False when the person has used up the window's."""
        key = (repo.lower(), login.lower())
        now = self.timer()
        recent = [t for t in self._times.get(key, []) if now - t < self.window]
        if len(recent) >= self.limit:
            return False
        self._times[key] = [*recent, now]
        return True


class Authorizer:
    def __init__(self, ttl: float = PERMISSION_TTL_S, quota: ReaderQuota | None = None) -> None:
        self._cache: TTLCache[tuple[str, str], str] = TTLCache(maxsize=10_000, ttl=ttl)
        self.quota = quota or ReaderQuota()

    async def permission(self, gh: GitHubAPI, repo: str, login: str) -> str:
        key = (repo.lower(), login.lower())
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            data = await gh.getitem(f"/repos/{repo}/collaborators/{login}/permission")
            permission = str(data.get("permission") or "none")
        except BadRequest as exc:
            if exc.status_code != 404:  # 404: not a collaborator at all
                raise
            permission = "none"
        self._cache[key] = permission
        return permission

    async def decide(
        self,
        gh: GitHubAPI,
        *,
        repo: str,
        issue_number: int,
        comment_id: int,
        login: str,
        command: str,
        event: str = "issue_comment",
        open_to: str = WRITERS,
        refused: str = REFUSED_REPLY,
    ) -> Decision:
        """Check, then answer on GitHub: 👀 when accepted, a polite reply when refused.
        ``event`` is the webhook event the command came in, which says what kind of
        comment ``comment_id`` is; ``open_to`` is the command's trust tier; ``refused`` the
        reply to a reader (a follow-up says it in its own words)."""
        permission = await self.permission(gh, repo, login)
        reader = permission not in ALLOWED
        if reader and open_to != READERS:
            reply = refused.format(login=login, command=command)
            reason = f"{login} has {permission} permission; commands need write or admin"
        elif reader and permission not in READER_PERMISSIONS:
            reply = REFUSED_READERS_REPLY.format(login=login, command=command)
            reason = f"{login} has {permission} permission; this command needs read or more"
        elif reader and not self.quota.take(repo, login):
            reply = THROTTLED_REPLY.format(login=login, command=command)
            reason = f"{login} (a reader) asked more than {self.quota.limit} times in an hour"
        else:
            path = reaction_path(repo, event, comment_id)
            if path is not None:
                await gh.post(path, data={"content": "eyes"})
            return Decision(True, permission, reader=reader)
        await reply_once(gh, repo, issue_number, comment_id, reply)
        return Decision(False, permission, reason)


async def reply_once(
    gh: GitHubAPI, repo: str, issue_number: int, comment_id: int, body: str
) -> None:
    """The refusal, with a hidden marker: a retried run must not reply twice."""
    await post_once(gh, repo, issue_number, body, REFUSED_MARKER.format(comment_id=comment_id))


async def post_once(gh: GitHubAPI, repo: str, issue_number: int, body: str, marker: str) -> None:
    """Comment ``body`` with its hidden ``marker``, unless a comment holds the marker already
    (a retried run)."""
    if not await _already_replied(gh, repo, issue_number, marker):
        await gh.post(
            f"/repos/{repo}/issues/{issue_number}/comments",
            data={"body": f"{body}\n\n{marker}"},
        )


def reaction_path(repo: str, event: str, comment_id: int) -> str | None:
    """Where GitHub takes a reaction on the comment a command came in; None for a review's
    own text, which GitHub offers no reactions for."""
    if event == "pull_request_review_comment":
        return f"/repos/{repo}/pulls/comments/{comment_id}/reactions"
    if event == "pull_request_review":
        return None
    return f"/repos/{repo}/issues/comments/{comment_id}/reactions"


async def _already_replied(gh: GitHubAPI, repo: str, issue_number: int, marker: str) -> bool:
    """A retried run must not reply twice: look for our hidden marker first."""
    async for comment in gh.getiter(f"/repos/{repo}/issues/{issue_number}/comments?per_page=100"):
        if marker in (comment.get("body") or ""):
            return True
    return False
