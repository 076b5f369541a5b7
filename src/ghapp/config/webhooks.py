"""Which deliveries mean ``.github/ghapp.yml`` must be read: a ``config_syncs`` row each.

* ``installation.created``: every repository of the installation (the default branch's
  head; no commit is known);
* ``installation_repositories.added``: each added repository, the same way;
* ``push`` to the repository's default branch whose commits add, modify or remove the file
  (or that GitHub may not list completely: a forced push, a new branch, a push of more
  commits than a payload lists): the pushed commit (``after``).

Like every delivery handler this only adds statements to the delivery's transaction: the
row exists if and only if the delivery was stored, and the same push delivered again
queues nothing more (``config_syncs`` is unique on ``(repo_id, sha)``). Reading the file
is a worker's job (:class:`ghapp.config.sync.ConfigSyncer`).
"""

from __future__ import annotations

import re
from typing import Any

from gidgethub import routing, sansio

from ghapp.config.schema import CONFIG_PATH
from ghapp.db.batch import Statement
from ghapp.webhooks import fields
from ghapp.webhooks.context import DeliveryContext

router = routing.Router()

# Webhook deliveries list at most this many commits; a push of more may hide the change.
MAX_LISTED_COMMITS = 2048
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_ZERO = re.compile(r"^0+$")

_COLUMNS = (
    "INSERT INTO config_syncs (repo_id, installation_id, sha, reason, delivery_id, status, "
    "attempts, run_after, queued_at) VALUES (:repo_id, COALESCE(:installation_id, "
    "(SELECT installation_id FROM repositories WHERE id = :repo_id)), :sha, :reason, "
    ":delivery_id, 'pending', 0, :now, :now) "
)
# The default branch's head: nothing to deduplicate on (a NULL sha is never equal).
QUEUE_HEAD = _COLUMNS + "ON CONFLICT DO NOTHING"
# A commit: once per (repo, sha); a commit synced before and pushed again (a force push
# back to it) is synced again, a commit still waiting is not queued twice.
QUEUE_COMMIT = _COLUMNS + (
    "ON CONFLICT (repo_id, sha) DO UPDATE SET status = 'pending', attempts = 0, "
    "error = NULL, summary = NULL, done_at = NULL, reason = excluded.reason, "
    "delivery_id = excluded.delivery_id, run_after = excluded.run_after, "
    "queued_at = excluded.queued_at "
    "WHERE config_syncs.status IN ('done', 'failed')"
)


@router.register("installation", action="created")
async def installation_created(event: sansio.Event, ctx: DeliveryContext) -> None:
    installation_id = fields.int_id(fields.obj(event.data, "installation"))
    for repo in _objects(event.data, "repositories"):
        queue_sync(ctx, event, fields.int_id(repo), installation_id, None, "installation")


@router.register("installation_repositories", action="added")
async def repositories_added(event: sansio.Event, ctx: DeliveryContext) -> None:
    installation_id = fields.int_id(fields.obj(event.data, "installation"))
    for repo in _objects(event.data, "repositories_added"):
        queue_sync(ctx, event, fields.int_id(repo), installation_id, None, "repositories_added")


@router.register("push")
async def pushed(event: sansio.Event, ctx: DeliveryContext) -> None:
    data = event.data
    repo = data.get("repository")
    if not isinstance(repo, dict):
        return
    sha = data.get("after")
    if not isinstance(sha, str) or not _SHA.match(sha) or _ZERO.match(sha):
        return  # a deleted branch, or not a commit we could read
    if not pushes_config(data, repo.get("default_branch")):
        return
    queue_sync(ctx, event, fields.int_id(repo), ctx.installation_id, sha, "push")


def pushes_config(data: dict[str, Any], default_branch: Any) -> bool:
    """A push to the default branch that may have changed ``.github/ghapp.yml``."""
    if not isinstance(default_branch, str) or data.get("ref") != f"refs/heads/{default_branch}":
        return False
    commits = data.get("commits")
    if not isinstance(commits, list):
        return True  # nothing says what changed: read the file to be sure
    if data.get("forced") is True or data.get("created") is True:
        return True  # commits may have gone (reset) or not all be listed (new branch)
    if len(commits) >= MAX_LISTED_COMMITS:
        return True
    for commit in commits:
        if not isinstance(commit, dict):
            continue
        for key in ("added", "modified", "removed"):
            paths = commit.get(key)
            if isinstance(paths, list) and CONFIG_PATH in paths:
                return True
    return False


def queue_sync(
    ctx: DeliveryContext,
    event: sansio.Event,
    repo_id: int,
    installation_id: int | None,
    sha: str | None,
    reason: str,
) -> None:
    params = {
        "repo_id": repo_id,
        "installation_id": installation_id,
        "sha": sha,
        "reason": reason,
        "delivery_id": (event.delivery_id or "")[:64] or None,
        "now": ctx.received_at,
    }
    ctx.add(Statement(QUEUE_COMMIT if sha else QUEUE_HEAD, params))
    ctx.config_syncs_queued += 1


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list of objects")
    return [item for item in value if isinstance(item, dict)]
