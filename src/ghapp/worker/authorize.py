"""May this person run this slash command? (Write or admin permission.)

Asked of GitHub's collaborator-permission endpoint and cached briefly (a minute), so a
burst of commands costs one call per person. Accepted → an 👀 reaction on the comment (on
the endpoint of its kind: a comment in a PR's diff is a *pull request review comment*, a
review has no reactions at all); refused → a polite reply on the issue and a skipped run,
with the reason recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import TTLCache
from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

ALLOWED = frozenset({"admin", "write"})  # GitHub reports "maintain" as "write"
PERMISSION_TTL_S = 60.0
REFUSED_REPLY = (
    "Sorry @{login}, `{command}` can only be run by people with write access to this "
    "repository, so I did not start it. A maintainer can run it for you."
)
REFUSED_MARKER = "<!-- ghapp:refused={comment_id} -->"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    permission: str
    reason: str | None = None


class Authorizer:
    def __init__(self, ttl: float = PERMISSION_TTL_S) -> None:
        self._cache: TTLCache[tuple[str, str], str] = TTLCache(maxsize=10_000, ttl=ttl)

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
    ) -> Decision:
        """Check, then answer on GitHub: 👀 when accepted, a polite reply when refused.
        ``event`` is the webhook event the command came in, which says what kind of
        comment ``comment_id`` is."""
        permission = await self.permission(gh, repo, login)
        if permission in ALLOWED:
            path = reaction_path(repo, event, comment_id)
            if path is not None:
                await gh.post(path, data={"content": "eyes"})
            return Decision(True, permission)
        body = REFUSED_REPLY.format(login=login, command=command)
        marker = REFUSED_MARKER.format(comment_id=comment_id)
        if not await _already_replied(gh, repo, issue_number, marker):
            await gh.post(
                f"/repos/{repo}/issues/{issue_number}/comments",
                data={"body": f"{body}\n\n{marker}"},
            )
        reason = f"{login} has {permission} permission; commands need write or admin"
        return Decision(False, permission, reason)


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
