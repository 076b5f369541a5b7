"""Installation and Repository rows, kept current from the deliveries themselves.

``installation`` and ``installation_repositories`` events maintain the rows; every other
event that carries a repository refreshes its name and default branch. Nothing is ever
deleted: an uninstalled installation is marked deleted and its repositories inactive, so
their jobs stop firing but keep their history.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from ghapp.db.batch import Statement, json_text
from ghapp.db.sql import upsert
from ghapp.webhooks import fields
from ghapp.webhooks.context import DeliveryContext

router = routing.Router()


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
async def installation_active(event: sansio.Event, ctx: DeliveryContext) -> None:
    """(Re)installed, permissions accepted or unsuspended: the installation is live."""
    installation = fields.obj(event.data, "installation")
    save_installation(ctx, installation, suspended=False, deleted=False)
    for repo in _objects(event.data, "repositories"):
        save_repository(ctx, repo, fields.int_id(installation), active=True)


@router.register("installation", action="suspend")
async def installation_suspended(event: sansio.Event, ctx: DeliveryContext) -> None:
    save_installation(ctx, fields.obj(event.data, "installation"), suspended=True, deleted=False)


@router.register("installation", action="deleted")
async def installation_deleted(event: sansio.Event, ctx: DeliveryContext) -> None:
    installation = fields.obj(event.data, "installation")
    save_installation(ctx, installation, suspended=None, deleted=True)
    deactivate_repositories(ctx, DEACTIVATE_INSTALLATION_REPOS, fields.int_id(installation))


@router.register("installation_repositories", action="added")
@router.register("installation_repositories", action="removed")
async def repositories_changed(event: sansio.Event, ctx: DeliveryContext) -> None:
    data = event.data
    installation = fields.obj(data, "installation")
    if data.get("repository_selection"):
        installation = {**installation, "repository_selection": data["repository_selection"]}
    save_installation(ctx, installation, suspended=None, deleted=None)
    installation_id = fields.int_id(installation)
    for repo in _objects(data, "repositories_added"):
        save_repository(ctx, repo, installation_id, active=True)
    for repo in _objects(data, "repositories_removed"):
        save_repository(ctx, repo, installation_id, active=False)


def refresh_from_event(event: sansio.Event, ctx: DeliveryContext) -> None:
    """Any event: make sure its installation and repository rows exist and are current.

    Rows this process last wrote with the same values are not written again.
    """
    data = event.data
    if "installation" in data and event.event != "installation":
        installation = fields.obj(data, "installation")
        key = ("installation", fields.int_id(installation))
        if not ctx.known.unchanged(key, True):
            owner = ((data.get("repository") or {}).get("owner") or {}).get("login")
            save_installation(ctx, installation, suspended=None, deleted=None, login=owner)
            ctx.rows_written.append((key, True))
    if "repository" in data:
        repo = fields.obj(data, "repository")
        key = ("repository", fields.int_id(repo))
        values = (
            fields.text(repo, "full_name"),
            repo.get("default_branch"),
            repo.get("private") is True,
            ctx.installation_id,
        )
        if not ctx.known.unchanged(key, values):
            save_repository(ctx, repo, ctx.installation_id, active=None)
            ctx.rows_written.append((key, values))


def save_installation(
    ctx: DeliveryContext,
    data: dict[str, Any],
    *,
    suspended: bool | None,
    deleted: bool | None,
    login: str | None = None,
) -> None:
    """Upsert an installation; ``None`` for a flag leaves it as it was.

    Events other than ``installation*`` carry only the id: they create a minimal row if
    none exists (named after the repository owner) and change nothing otherwise.
    """
    full = "account" in data
    account = fields.obj(data, "account") if full else {}
    values: dict[str, Any] = {
        "id": fields.int_id(data),
        "account_login": fields.text(account, "login", default=login or ""),
        "account_type": fields.text(account, "type", limit=32, default="User"),
        "updated_at": ctx.received_at,
    }
    if "repository_selection" in data:
        values["repository_selection"] = fields.text(data, "repository_selection", limit=16)
    for key, kind in (("permissions", dict), ("events", list)):
        if key in data:
            if not isinstance(data[key], kind):
                raise ValueError(f"{key!r} must be a {kind.__name__}")
            values[key] = json_text(data[key])
    if suspended is not None:
        values["suspended_at"] = ctx.received_at if suspended else None
    if deleted is not None:
        values["deleted_at"] = ctx.received_at if deleted else None
    changing = [k for k in values if k != "id" and (full or k in ("suspended_at", "deleted_at"))]
    if changing:
        ctx.known.forget(("installation", values["id"]))
    insert = {"permissions": "{}", "events": "[]", "created_at": ctx.received_at, **values}
    ctx.add(upsert("installations", insert, update=changing))


def save_repository(
    ctx: DeliveryContext, data: dict[str, Any], installation_id: int | None, *, active: bool | None
) -> None:
    """Upsert a repository row; a known installation or flag is never overwritten by None."""
    values: dict[str, Any] = {
        "id": fields.int_id(data),
        "full_name": fields.text(data, "full_name"),
        "private": data.get("private") is True,
        "updated_at": ctx.received_at,
    }
    if data.get("default_branch"):
        values["default_branch"] = fields.text(data, "default_branch")
    if installation_id is not None:
        values["installation_id"] = installation_id
    if active is not None:
        values["active"] = active
    changing = list(values)
    ctx.known.forget(("repository", values["id"]))
    insert = {"default_branch": "main", "active": True, "created_at": ctx.received_at, **values}
    ctx.add(upsert("repositories", insert, update=changing))


_DEACTIVATE = "UPDATE repositories SET active = :active, updated_at = :now WHERE "
DEACTIVATE_INSTALLATION_REPOS = _DEACTIVATE + "installation_id = :key"
DEACTIVATE_REPO = _DEACTIVATE + "id = :key"


def deactivate_repositories(ctx: DeliveryContext, sql: str, key: int) -> None:
    """Mark an installation's repositories (``DEACTIVATE_INSTALLATION_REPOS``) or one
    repository (``DEACTIVATE_REPO``) inactive: their jobs stop firing, their history stays."""
    if sql == DEACTIVATE_REPO:
        ctx.known.forget(("repository", key))
    ctx.add(Statement(sql, {"active": False, "now": ctx.received_at, "key": key}))


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{key!r} must be a list of objects")
    return value
