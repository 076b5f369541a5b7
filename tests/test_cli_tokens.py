"""``ghapp token …`` on the database, checked against a live API server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from ghapp.app import create_app
from ghapp.cli.main import app as cli_app
from ghapp.db.models import ApiToken, AuditEntry
from tests.cli_support import table_rows
from tests.conftest import make_settings
from tests.support import add_repository, live_server

REPO = "Codertocat/Hello-World"
runner = CliRunner()


def token_env(db_url: str | None, tmp_path: Path, **extra: str | None) -> dict[str, Any]:
    """Only the database (and where generated secrets go): no other GHAPP_* leaks in."""
    env: dict[str, Any] = {
        name: None
        for name in os.environ
        if name.startswith("GHAPP_") and not name.startswith("GHAPP_TEST_")
    }
    env.update(GHAPP_DATABASE_URL=db_url, GHAPP_DATA_DIR=str(tmp_path / "data"), COLUMNS="240")
    env.update(extra)
    return env


async def token_cli(env: dict[str, Any], *args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, cli_app, ["token", *args], env=env)


@pytest.fixture
async def live(db_url, db, tmp_path, monkeypatch):
    """A live API server on the test database; the CLI runs in an empty directory."""
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    await add_repository(db)
    app = create_app(make_settings(db_url, tmp_path), db=db)  # no admin token: only ours
    async with live_server(app) as base, httpx.AsyncClient(base_url=base) as http:
        yield http, token_env(db_url, tmp_path)


async def rows(db) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(ApiToken).order_by(ApiToken.id))).all())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_created_token_works_is_stored_hashed_listed_and_revoked(live, db) -> None:
    http, env = live
    created = await token_cli(env, "create", "ci", "--admin")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()  # stdout is the token alone, for scripts
    assert token.startswith("ghapp_") and len(token) > 40
    assert "only time the token is shown" in created.stderr

    answer = await http.get("/api/scheduler/tasks", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    [row] = await rows(db)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps([str(value) for value in row])  # only the hash is kept
    async with db.read() as conn:
        [audit] = (await conn.execute(select(AuditEntry))).all()
    assert (audit.actor, audit.action, audit.object_id) == ("cli", "token.create", str(row.id))

    listed = await token_cli(env, "list")
    assert listed.exit_code == 0, listed.output
    [line] = table_rows(listed.stdout)
    assert line[:5] == [str(row.id), "ci", row.prefix, "yes", "—"]  # admin, no repo list
    assert token not in listed.output and row.token_hash not in listed.output
    shown = json.loads((await token_cli(env, "list", "--json")).stdout)
    assert [(t["id"], t["name"], t["admin"], t["revokedAt"]) for t in shown] == [
        (row.id, "ci", True, None)
    ]
    assert shown[0]["lastUsedAt"] is not None  # the request above
    assert not {"token", "tokenHash", "token_hash", "hash"} & set(shown[0])

    revoked = await token_cli(env, "revoke", "ci")
    assert revoked.exit_code == 0 and f"revoked token {row.id} 'ci'" in revoked.stdout
    refused = await http.get("/api/scheduler/tasks", headers=bearer(token))
    assert refused.status_code == 401
    after = json.loads((await token_cli(env, "list", "--json")).stdout)
    assert after[0]["revokedAt"] is not None


async def test_repository_scoped_token_drives_the_schedule_commands(live, db) -> None:
    http, env = live
    created = await token_cli(env, "create", "alice", "--repo", REPO, "--repo", "other/repo")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    [row] = await rows(db)
    assert (row.is_admin, row.repos) == (False, [REPO, "other/repo"])

    base = str(http.base_url).rstrip("/")
    schedule = {**env, "GHAPP_URL": base, "GHAPP_TOKEN": token}
    made = await asyncio.to_thread(
        runner.invoke,
        cli_app,
        [
            "schedule",
            "create",
            "--name",
            "Alice's",
            "--type",
            "analyze",
            "--repo",
            REPO,
            "--cron",
            "0 9 * * *",
        ],
        env=schedule,
    )
    assert made.exit_code == 0, made.output
    stop = await asyncio.to_thread(runner.invoke, cli_app, ["schedule", "stop"], env=schedule)
    assert (
        stop.exit_code == 1
        and stop.stderr.strip()
        == "ghapp schedule stop: starting and stopping the scheduler affects every repository: this needs an admin token"
    )


def last_line(result: Result) -> str:
    """The error: the last line on stderr (the first command may note generated secrets)."""
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


async def test_refusals_are_one_line(live, db) -> None:
    _http, env = live
    unscoped = await token_cli(env, "create", "nobody")
    assert unscoped.exit_code == 2
    assert last_line(unscoped) == (
        "ghapp token create: give at least one --repo, or --admin for a token that sees everything"
    )
    bad_repo = await token_cli(env, "create", "x", "--repo", "no-slash")
    assert bad_repo.exit_code == 2 and "is not a repository name like owner/name" in bad_repo.stderr
    unknown = await token_cli(env, "revoke", "ghost")
    assert unknown.exit_code == 1
    assert last_line(unknown) == "ghapp token revoke: no active token 'ghost'"
    await token_cli(env, "create", "twin", "--admin")
    await token_cli(env, "create", "twin", "--admin")
    twins = await token_cli(env, "revoke", "twin")
    assert twins.exit_code == 1 and "2 active tokens are named 'twin': revoke by id" in twins.stderr
    assert [row.revoked_at for row in await rows(db)] == [None, None]
    empty = await token_cli(env, "list")
    assert "twin" in empty.stdout


async def test_embedded_default_is_migrated_first(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = token_env(None, tmp_path)  # the default database: ./ghapp.db, not there yet
    assert not (tmp_path / "ghapp.db").exists()
    listed = await token_cli(env, "list")
    assert listed.exit_code == 0, listed.output
    assert "no tokens" in listed.stdout
    assert (tmp_path / "ghapp.db").exists()
    assert "generated a webhook secret" in listed.stderr  # as `ghapp serve` would
    created = await token_cli(env, "create", "laptop", "--admin")
    assert created.exit_code == 0 and created.stdout.startswith("ghapp_")


async def test_unreachable_database_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = token_env("postgresql://nobody@127.0.0.1:9/none", tmp_path)
    result = await token_cli(env, "list")
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ghapp token list: the database postgresql")
    assert "is not usable" in line
