"""Installation and Repository rows, kept current from the deliveries themselves.

``installation`` and ``installation_repositories`` events maintain the rows; every other
event that carries a repository refreshes its name and default branch. Nothing is ever
deleted: an uninstalled installation is marked deleted and its repositories inactive, so
their jobs stop firing but keep their history.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio
from sqlalchemy import update

from ghapp.db.models import Installation, Repository
from ghapp.db.upsert import upsert
from ghapp.webhooks import fields
from ghapp.webhooks.context import DeliveryContext

router = routing.Router()

INSTALLATIONS = Installation.__table__  # type: ignore[attr-defined]
REPOSITORIES = Repository.__table__  # type: ignore[attr-defined]


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
async def installation_active(event: sansio.Event, ctx: DeliveryContext) -> None:
    """(Re)install or permissions change: the installation is live again."""
    await save_installation(
        ctx, fields.obj(event.data, "installation"), suspended=False, deleted=False
    )
    for repo in _objects(event.data, "repositories"):
        await save_repository(ctx, repo, ctx.installation_id, active=True)
    ctx.acted = True


@router.register("installation", action="suspend")
async def installation_suspended(event: sansio.Event, ctx: DeliveryContext) -> None:
    await save_installation(
        ctx, fields.obj(event.data, "installation"), suspended=True, deleted=False
    )
    ctx.acted = True


@router.register("installation", action="deleted")
async def installation_deleted(event: sansio.Event, ctx: DeliveryContext) -> None:
    installation = fields.obj(event.data, "installation")
    await save_installation(ctx, installation, suspended=None, deleted=True)
    await ctx.conn.execute(
        update(REPOSITORIES)
        .where(REPOSITORIES.c.installation_id == fields.int_id(installation))
        .values(active=False, updated_at=ctx.received_at)
    )
    ctx.acted = True


@router.register("installation_repositories", action="added")
@router.register("installation_repositories", action="removed")
async def repositories_changed(event: sansio.Event, ctx: DeliveryContext) -> None:
    data = event.data
    installation = fields.obj(data, "installation")
    if data.get("repository_selection"):
        installation = {**installation, "repository_selection": data["repository_selection"]}
    await save_installation(ctx, installation, suspended=None, deleted=None)
    for repo in _objects(data, "repositories_added"):
        await save_repository(ctx, repo, ctx.installation_id, active=True)
    for repo in _objects(data, "repositories_removed"):
        await save_repository(ctx, repo, ctx.installation_id, active=False)
    ctx.acted = True


async def refresh_from_event(event: sansio.Event, ctx: DeliveryContext) -> None:
    """Any event: make sure its installation and repository rows exist and are current."""
    data = event.data
    if "installation" in data and event.event != "installation":
        installation = fields.obj(data, "installation")
        owner = ((data.get("repository") or {}).get("owner") or {}).get("login")
        await save_installation(ctx, installation, suspended=None, deleted=None, login=owner)
    if "repository" in data:
        await save_repository(ctx, fields.obj(data, "repository"), ctx.installation_id, active=None)


async def save_installation(
    ctx: DeliveryContext,
    data: dict[str, Any],
    *,
    suspended: bool | None,
    deleted: bool | None,
    login: str | None = None,
) -> None:
    """Upsert an installation; ``None`` for a flag leaves it as it was."""
    account = fields.obj(data, "account") if "account" in data else {}
    values: dict[str, Any] = {
        "id": fields.int_id(data),
        "account_login": fields.text(account, "login", default=login or ""),
        "account_type": fields.text(account, "type", limit=32, default="User"),
        "updated_at": ctx.received_at,
    }
    full = "account" in data  # events other than ``installation`` carry only the id
    if "repository_selection" in data:
        values["repository_selection"] = fields.text(data, "repository_selection", limit=16)
    for key, kind in (("permissions", dict), ("events", list)):
        if key in data:
            if not isinstance(data[key], kind):
                raise ValueError(f"{key!r} must be a {kind.__name__}")
            values[key] = data[key]
    if suspended is not None:
        values["suspended_at"] = ctx.received_at if suspended else None
    if deleted is not None:
        values["deleted_at"] = ctx.received_at if deleted else None
    changing = [k for k in values if k != "id" and (full or k in ("suspended_at", "deleted_at"))]
    insert_values = {"permissions": {}, "events": [], "created_at": ctx.received_at, **values}
    await upsert(ctx.conn, INSTALLATIONS, insert_values, update=changing)


async def save_repository(
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
    insert_values = {"default_branch": "main", "active": True, "created_at": ctx.received_at}
    await upsert(ctx.conn, REPOSITORIES, {**insert_values, **values}, update=changing)


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{key!r} must be a list of objects")
    return value
