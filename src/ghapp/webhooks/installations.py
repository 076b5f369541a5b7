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
from ghapp.webhooks.context import DeliveryContext

router = routing.Router()

INSTALLATIONS = Installation.__table__  # type: ignore[attr-defined]
REPOSITORIES = Repository.__table__  # type: ignore[attr-defined]


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
async def installation_active(event: sansio.Event, ctx: DeliveryContext) -> None:
    """(Re)install or permissions change: the installation is live again."""
    await save_installation(ctx, event.data["installation"], suspended=False, deleted=False)
    for repo in event.data.get("repositories") or ():
        await save_repository(ctx, repo, ctx.installation_id, active=True)
    ctx.acted = True


@router.register("installation", action="suspend")
async def installation_suspended(event: sansio.Event, ctx: DeliveryContext) -> None:
    await save_installation(ctx, event.data["installation"], suspended=True, deleted=False)
    ctx.acted = True


@router.register("installation", action="deleted")
async def installation_deleted(event: sansio.Event, ctx: DeliveryContext) -> None:
    await save_installation(ctx, event.data["installation"], suspended=None, deleted=True)
    await ctx.conn.execute(
        update(REPOSITORIES)
        .where(REPOSITORIES.c.installation_id == event.data["installation"]["id"])
        .values(active=False, updated_at=ctx.received_at)
    )
    ctx.acted = True


@router.register("installation_repositories", action="added")
@router.register("installation_repositories", action="removed")
async def repositories_changed(event: sansio.Event, ctx: DeliveryContext) -> None:
    data = event.data
    await save_installation(ctx, data["installation"], suspended=None, deleted=None)
    if data.get("repository_selection"):
        await ctx.conn.execute(
            update(INSTALLATIONS)
            .where(INSTALLATIONS.c.id == data["installation"]["id"])
            .values(repository_selection=data["repository_selection"])
        )
    for repo in data.get("repositories_added") or ():
        await save_repository(ctx, repo, ctx.installation_id, active=True)
    for repo in data.get("repositories_removed") or ():
        await save_repository(ctx, repo, ctx.installation_id, active=False)
    ctx.acted = True


async def refresh_from_event(event: sansio.Event, ctx: DeliveryContext) -> None:
    """Any event: make sure its installation and repository rows exist and are current."""
    data = event.data
    installation = data.get("installation")
    if isinstance(installation, dict) and "id" in installation and event.event != "installation":
        owner = ((data.get("repository") or {}).get("owner") or {}).get("login")
        await save_installation(ctx, installation, suspended=None, deleted=None, login=owner)
    repo = data.get("repository")
    if isinstance(repo, dict) and "id" in repo and "full_name" in repo:
        await save_repository(ctx, repo, ctx.installation_id, active=None)


async def save_installation(
    ctx: DeliveryContext,
    data: dict[str, Any],
    *,
    suspended: bool | None,
    deleted: bool | None,
    login: str | None = None,
) -> None:
    """Upsert an installation; ``None`` for a flag leaves it as it was."""
    account = data.get("account") or {}
    values: dict[str, Any] = {
        "id": data["id"],
        "account_login": account.get("login") or login or "",
        "account_type": account.get("type") or "User",
        "updated_at": ctx.received_at,
    }
    full = "account" in data  # events other than ``installation`` carry only the id
    for key in ("repository_selection", "permissions", "events"):
        if key in data:
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
        "id": data["id"],
        "full_name": data["full_name"],
        "private": bool(data.get("private", False)),
        "updated_at": ctx.received_at,
    }
    if data.get("default_branch"):
        values["default_branch"] = data["default_branch"]
    if installation_id is not None:
        values["installation_id"] = installation_id
    if active is not None:
        values["active"] = active
    changing = list(values)
    insert_values = {"default_branch": "main", "active": True, "created_at": ctx.received_at}
    await upsert(ctx.conn, REPOSITORIES, {**insert_values, **values}, update=changing)
