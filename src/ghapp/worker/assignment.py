"""May the one who assigned an issue to the app start its work? (Write or admin, as for a
slash command; GitHub lets people with triage assign too, and a reader's tier is not
enough for work that may publish.)

Refused: a polite reply on the issue (once, even when the run is retried: a hidden marker
says it was sent) and a skipped run, with the reason recorded.
"""

from __future__ import annotations

from gidgethub.abc import GitHubAPI

from ghapp.worker.authorize import ALLOWED, Authorizer, post_once

ASSIGN_REFUSED_REPLY = (
    "Sorry @{login}, issues can be assigned to me only by people with write access to "
    "this repository, so I did not start. A maintainer can assign it for you."
)
ASSIGN_REFUSED_MARKER = "<!-- ghapp:refused-assignment={run_id} -->"


async def assigner_refusal(
    gh: GitHubAPI, authorizer: Authorizer, repo: str, number: int, login: str, run_id: int
) -> str | None:
    """Why the assignment starts nothing (the reply sent), or None when ``login`` may write."""
    permission = await authorizer.permission(gh, repo, login)
    if permission in ALLOWED:
        return None
    reply, marker = ASSIGN_REFUSED_REPLY.format(login=login), ASSIGN_REFUSED_MARKER
    await post_once(gh, repo, number, reply, marker.format(run_id=run_id))
    return f"{login} has {permission} permission; assigning work needs write or admin"
