"""Installation and Repository rows follow installation events and every repository event."""

from __future__ import annotations

import copy

from sqlmodel import select

from ghapp.db import Database
from ghapp.db.models import Delivery, Installation, Repository
from tests.support import load, send

CREATED = load("installation/created.payload.json")  # installation 957387, Codertocat
INSTALLATION_ID = CREATED["installation"]["id"]


def with_installation(payload: dict, installation_id: int = INSTALLATION_ID) -> dict:
    data = copy.deepcopy(payload)
    data["installation"] = {"id": installation_id, "node_id": "x"}
    return data


async def installation(db: Database, installation_id: int = INSTALLATION_ID) -> Installation:
    async with db.read_session() as session:
        return (
            await session.exec(select(Installation).where(Installation.id == installation_id))
        ).one()


async def repositories(db: Database) -> dict[str, Repository]:
    async with db.read_session() as session:
        return {r.full_name: r for r in (await session.exec(select(Repository))).all()}


async def test_created_records_installation_and_repositories(client, db) -> None:
    assert (await send(client, "installation", CREATED)).status_code == 202
    row = await installation(db)
    assert (row.account_login, row.account_type) == ("Codertocat", "User")
    assert row.repository_selection == "selected"
    assert row.permissions == CREATED["installation"]["permissions"]
    assert row.events == CREATED["installation"]["events"]
    assert row.suspended_at is None and row.deleted_at is None
    repos = await repositories(db)
    assert set(repos) == {"Codertocat/Hello-World"}
    assert repos["Codertocat/Hello-World"].installation_id == INSTALLATION_ID
    assert repos["Codertocat/Hello-World"].active


async def test_repositories_added_and_removed(client, db) -> None:
    await send(client, "installation", CREATED)
    added = load("installation_repositories/added.payload.json")
    assert (await send(client, "installation_repositories", added)).status_code == 202
    assert (await repositories(db))["Codertocat/Space"].active

    removed = copy.deepcopy(added)
    removed["action"] = "removed"
    removed["repositories_removed"], removed["repositories_added"] = added["repositories_added"], []
    assert (await send(client, "installation_repositories", removed)).status_code == 202
    repos = await repositories(db)
    assert not repos["Codertocat/Space"].active  # kept, not deleted
    assert repos["Codertocat/Hello-World"].active


async def test_suspend_unsuspend_and_delete_keep_rows(client, db) -> None:
    await send(client, "installation", CREATED)
    suspend = copy.deepcopy(load("installation/suspend.payload.json"))
    suspend["installation"]["id"] = INSTALLATION_ID
    await send(client, "installation", suspend)
    assert (await installation(db)).suspended_at is not None

    unsuspend = copy.deepcopy(load("installation/unsuspend.payload.json"))
    unsuspend["installation"]["id"] = INSTALLATION_ID
    await send(client, "installation", unsuspend)
    assert (await installation(db)).suspended_at is None

    deleted = copy.deepcopy(load("installation/deleted.payload.json"))
    deleted["installation"]["id"] = INSTALLATION_ID
    await send(client, "installation", deleted)
    row = await installation(db)
    assert row.deleted_at is not None
    assert not (await repositories(db))["Codertocat/Hello-World"].active

    # Installed again: live again, same rows.
    again = copy.deepcopy(CREATED)
    again["marker"] = "reinstalled"  # a different delivery body
    await send(client, "installation", again)
    row = await installation(db)
    assert row.deleted_at is None
    assert (await repositories(db))["Codertocat/Hello-World"].active


async def test_new_permissions_accepted_updates_permissions(client, db) -> None:
    await send(client, "installation", CREATED)
    accepted = copy.deepcopy(load("installation/new_permissions_accepted.payload.json"))
    accepted["installation"]["permissions"] = {"issues": "write", "contents": "read"}
    await send(client, "installation", accepted)
    assert (await installation(db)).permissions == {"issues": "write", "contents": "read"}


async def test_repository_events_keep_name_and_default_branch_current(client, db) -> None:
    await send(client, "installation", CREATED)
    issue = with_installation(load("issues/opened.payload.json"))
    assert issue["repository"]["id"] == 186853002
    await send(client, "issues", issue)
    assert (await repositories(db))["Codertocat/Hello-World"].default_branch == "master"

    renamed = copy.deepcopy(issue)
    renamed["repository"]["full_name"] = "Codertocat/Hello-Universe"
    renamed["repository"]["default_branch"] = "trunk"
    await send(client, "issues", renamed)
    repos = await repositories(db)
    assert set(repos) == {"Codertocat/Hello-Universe"}
    repo = repos["Codertocat/Hello-Universe"]
    assert repo.default_branch == "trunk"
    assert repo.installation_id == INSTALLATION_ID


async def test_event_without_installation_uses_the_repositorys_installation(client, db) -> None:
    """A plain repository webhook carries no installation: look it up from our rows."""
    await send(client, "installation", CREATED)
    plain = load("issues/opened.payload.json")
    assert "installation" not in plain
    await send(client, "issues", plain)
    async with db.read_session() as session:
        delivery = (await session.exec(select(Delivery).where(Delivery.event == "issues"))).one()
    assert delivery.installation_id is None  # as received
    repo = (await repositories(db))["Codertocat/Hello-World"]
    assert repo.installation_id == INSTALLATION_ID  # not overwritten with nothing


async def test_event_from_unknown_installation_creates_it(client, db) -> None:
    issue = with_installation(load("issues/opened.payload.json"), installation_id=4242)
    await send(client, "issues", issue)
    row = await installation(db, 4242)
    assert row.account_login == "Codertocat"  # the repository owner, until GitHub tells more
    assert (await repositories(db))["Codertocat/Hello-World"].installation_id == 4242
