"""``ghapp doctor`` as a user runs it (a real process) against a world set up to pass, then
broken one setting at a time; and what ``ghapp serve`` says before it serves.

The world: a migrated database (SQLite and PostgreSQL), the GitHub stand-in with one
installation and repository, that repository as a local bare git repository, the real
Claude Code CLI, bubblewrap, and a ghapp answering ``/healthz`` at the public URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.doctor import FIX_DB_UPGRADE, NO_APP, NO_APP_FIX, NO_SIGN_IN_TOKEN
from ghapp.repo_hint import unknown_repository
from ghapp.standins.cluster import free_port
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from tests.claude_cli import claude_path
from tests.cli_support import serve_first_lines
from tests.conftest import make_settings, run_in_thread

GHAPP = [sys.executable, "-m", "ghapp"]
REPO = "octo/app"
INSTALLATION = 21
SECRET = "a-long-random-webhook-secret-for-the-doctor-tests"
ADMIN = "admin-token-for-the-doctor-tests"
# Most checks do not depend on the database's kind: those run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@dataclass
class Doctor:
    returncode: int
    stdout: str
    stderr: str
    checks: dict[str, dict[str, str]] = field(default_factory=dict)

    def status(self, name: str) -> str:
        return self.checks[name]["status"]


@dataclass
class World:
    tmp: Path
    standin: GitHubStandIn
    env: dict[str, str]

    async def doctor(self, *args: str, **env: str | None) -> Doctor:
        merged = {**self.env, **env}
        process = await asyncio.create_subprocess_exec(
            *GHAPP,
            "doctor",
            *args,
            cwd=self.tmp,
            env={k: v for k, v in merged.items() if v is not None},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        done = Doctor(process.returncode or 0, out.decode(), err.decode())
        if "--json" in args:
            done.checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        return done


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
    env.update(values)
    return env


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped before starting")
        await asyncio.sleep(0.005)  # polling a flag uvicorn sets; not a timing assumption
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    standin = GitHubStandIn(app_id=4242)
    standin.add_installation(INSTALLATION, "octo")
    standin.add_repo(REPO, INSTALLATION)
    git_url = bare_repository(tmp_path, REPO, branch="main")
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    async with standin.serve() as api_url:
        key = tmp_path / "app.pem"
        key.write_text(standin.private_key_pem)
        key.chmod(0o600)
        env = clean_env(
            GHAPP_DATABASE_URL=db_url,
            GHAPP_WEBHOOK_SECRET=SECRET,
            GHAPP_APP_ID=str(standin.app_id),
            GHAPP_PRIVATE_KEY_PATH=str(key),
            GHAPP_GITHUB_API_URL=api_url,
            GHAPP_GIT_URL=git_url,
            GHAPP_CLAUDE_BIN=claude_path(),
            GHAPP_SANDBOX="required",
            GHAPP_PUBLIC_URL=public_url,
            GHAPP_ADMIN_TOKEN=ADMIN,
            GHAPP_LOG_LEVEL="warning",
            COLUMNS="80",
        )
        settings = make_settings(db_url, tmp_path, admin_token=ADMIN)
        db = Database(db_url)
        try:
            async with serving(create_app(settings, db=db), port):
                yield World(tmp_path, standin, env)
        finally:
            await db.dispose()


def needs_bwrap() -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed here")


async def test_a_good_setup_passes_every_check_and_exits_0(world: World) -> None:
    needs_bwrap()
    done = await world.doctor("--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {name: c["status"] for name, c in done.checks.items()} == {
        "database": "ok",
        "webhook secret": "ok",
        "GitHub App": "ok",
        "Claude Code": "ok",
        "sandbox": "ok",
        "public URL": "ok",
        "dashboard sign-in": "ok",
        "GitHub App authentication": "ok",
        "installations": "ok",
        "clone access": "ok",
        "public URL reachable": "ok",
    }
    assert "app ghapp-standin (id 4242)" in done.checks["GitHub App authentication"]["detail"]
    assert done.checks["installations"]["detail"].startswith("1 installation(s), 1 repositories")
    version = done.checks["Claude Code"]["detail"]
    assert any(ch.isdigit() for ch in version.split("(")[0]), version  # `claude --version`
    lines = (await world.doctor()).stdout.splitlines()
    assert lines[-1] == "0 failed, 0 warnings, 11 ok"
    assert all(len(line) <= 80 for line in lines), lines


@SQLITE_ONLY
async def test_the_human_output_names_each_failure_with_its_fix(world: World) -> None:
    done = await world.doctor(GHAPP_APP_ID=None, GHAPP_PRIVATE_KEY_PATH=None)
    assert done.returncode == 1
    text = " ".join(done.stdout.split())  # lines wrapped at 80 columns
    assert f"fail GitHub App: {NO_APP}" in text
    assert f"fix: {NO_APP_FIX}" in text


@SQLITE_ONLY
async def test_an_unreachable_database_fails(world: World) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/ghapp"
    done = await world.doctor("--json", GHAPP_DATABASE_URL=url)
    assert done.returncode == 1
    assert done.status("database") == "fail"
    assert "not reachable" in done.checks["database"]["detail"]
    assert "GHAPP_DATABASE_URL" in done.checks["database"]["fix"]
    assert done.status("webhook secret") == "ok"
    missing = await world.doctor("--json", GHAPP_DATABASE_URL="sqlite+aiosqlite:///nothing.db")
    assert missing.status("database") == "fail"
    assert not (world.tmp / "nothing.db").exists()  # the doctor creates nothing


@SQLITE_ONLY
async def test_a_schema_behind_fails_and_is_not_migrated(world: World, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"

    async def old() -> None:
        db = Database(url)
        await upgrade(db, "0011")
        await db.dispose()

    run_in_thread(old())
    done = await world.doctor("--json", GHAPP_DATABASE_URL=url)
    assert done.returncode == 1
    assert done.checks["database"]["status"] == "fail"
    assert "schema at 0011" in done.checks["database"]["detail"]
    assert done.checks["database"]["fix"] == FIX_DB_UPGRADE
    again = await world.doctor("--json", GHAPP_DATABASE_URL=url)
    assert "schema at 0011" in again.checks["database"]["detail"]  # still: nothing migrated


@SQLITE_ONLY
async def test_no_or_a_weak_webhook_secret(world: World) -> None:
    pg_like = await world.doctor(
        "--json",
        GHAPP_WEBHOOK_SECRET=None,
        GHAPP_DATABASE_URL=f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/x",
    )
    assert pg_like.status("webhook secret") == "fail"
    assert "every delivery will be refused" in pg_like.checks["webhook secret"]["detail"]
    weak = await world.doctor("--json", GHAPP_WEBHOOK_SECRET="changeme")
    assert weak.status("webhook secret") == "warn"


@SQLITE_ONLY
async def test_a_wrong_key_or_app_id_fails_authentication(world: World) -> None:
    other = GitHubStandIn(app_id=4242)
    wrong_key = world.tmp / "other.pem"
    wrong_key.write_text(other.private_key_pem)
    for env in ({"GHAPP_PRIVATE_KEY_PATH": str(wrong_key)}, {"GHAPP_APP_ID": "999"}):
        done = await world.doctor("--json", **env)
        assert done.returncode == 1
        auth = done.checks["GitHub App authentication"]
        assert auth["status"] == "fail" and "401" in auth["detail"], auth
        assert "GHAPP_APP_ID" in auth["fix"]
        assert "installations" not in done.checks


async def test_no_installation_is_a_warning_with_the_install_link(world: World) -> None:
    world.standin.remove_installation(INSTALLATION)
    done = await world.doctor("--json")
    check = done.checks["installations"]
    assert check["status"] == "warn"
    assert check["fix"].endswith("/apps/ghapp-standin/installations/new")
    assert done.checks["clone access"]["status"] == "warn"  # nothing to try
    assert done.returncode == 0


@SQLITE_ONLY
async def test_clone_access_refused_fails(world: World) -> None:
    elsewhere = f"file://{world.tmp / 'no-such-remote'}"
    done = await world.doctor("--json", GHAPP_GIT_URL=elsewhere)
    assert done.returncode == 1
    check = done.checks["clone access"]
    assert check["status"] == "fail" and f"{elsewhere}/{REPO}.git" in check["detail"]
    assert "GHAPP_GIT_URL" in check["fix"]


@SQLITE_ONLY
async def test_a_missing_claude_executable_fails(world: World) -> None:
    done = await world.doctor("--json", GHAPP_CLAUDE_BIN=str(world.tmp / "no-claude"))
    assert done.returncode == 1
    assert done.status("Claude Code") == "fail"
    assert "GHAPP_CLAUDE_BIN" in done.checks["Claude Code"]["fix"]


@SQLITE_ONLY
async def test_a_required_sandbox_without_bubblewrap_fails(world: World) -> None:
    tools = world.tmp / "bin"  # PATH with git and node, without bwrap
    tools.mkdir()
    for name in ("git", "node", "env"):
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    done = await world.doctor("--json", PATH=str(tools))
    assert done.returncode == 1
    assert done.status("sandbox") == "fail"
    assert "bubblewrap is not installed" in done.checks["sandbox"]["detail"]
    auto = await world.doctor("--json", PATH=str(tools), GHAPP_SANDBOX="auto")
    assert auto.status("sandbox") == "warn"


@SQLITE_ONLY
async def test_the_public_url_missing_or_unreachable(world: World) -> None:
    unset = await world.doctor("--json", GHAPP_PUBLIC_URL=None)
    assert unset.status("public URL") == "warn"
    assert "GHAPP_PUBLIC_URL is not set" in unset.checks["public URL"]["detail"]
    away = f"http://127.0.0.1:{free_port()}"
    done = await world.doctor("--json", GHAPP_PUBLIC_URL=away)
    assert done.returncode == 1
    assert done.status("public URL reachable") == "fail"
    assert f"GET {away}/healthz" in done.checks["public URL reachable"]["detail"]
    plain = await world.doctor("--json", GHAPP_PUBLIC_URL="http://ghapp.example.com")
    assert plain.status("public URL") == "warn"


def test_serve_says_first_what_is_missing(tmp_path: Path) -> None:
    """No app, no token yet: sentences before "serving on", the token line last of them."""
    env = clean_env(
        GHAPP_PORT=str(free_port()),
        GHAPP_CLAUDE_BIN=str(tmp_path / "no-claude"),
        COLUMNS="300",
    )
    lines = serve_first_lines(tmp_path, env)
    said = [line for line in lines if line.startswith("ghapp: ")]
    assert f"ghapp: {NO_APP} {NO_APP_FIX}" in said
    assert any("GHAPP_CLAUDE_BIN=" in line and "not found" in line for line in said)
    assert said[-2] == f"ghapp: {NO_SIGN_IN_TOKEN}"
    assert said.index(f"ghapp: {NO_APP} {NO_APP_FIX}") < said.index(said[-2])


def test_the_hint_names_the_doctor() -> None:
    assert "`ghapp doctor`" in unknown_repository("octo/app")
