"""The command line starts quickly because it imports nothing heavy it does not use.

A timing test would pass or fail with the machine's load; what makes the start slow is which
modules get imported, and that is checked exactly: each command runs in a fresh interpreter
that reports, as it exits, which of the heavy modules were imported.
(``bench/cli_startup.py`` prints the timings.)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from ghapp.app import create_app
from tests.cli_support import cli_env
from tests.conftest import make_settings
from tests.support import add_repository, live_server

# The server's stack, and what only some commands need.
SERVER_STACK = ("sqlalchemy", "starlette", "uvicorn", "alembic", "jinja2", "gidgethub", "sqlmodel")
NOT_FOR_HELP = (*SERVER_STACK, "httpx", "pydantic_settings", "croniter", "asyncio", "rich.console")
ADMIN = "admin-token-for-the-startup-tests"
REPORT = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: sys.__stderr__.write(
    "IMPORTED " + json.dumps([m for m in heavy if m in sys.modules]) + "\\n"))
sys.argv = ["ghapp", *{args!r}]
from ghapp.cli.main import main
main()
"""


def imported(args: list[str], heavy: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """Run ``ghapp ARGS`` in a fresh interpreter; which of ``heavy`` it imported."""
    code = REPORT.format(heavy=heavy, args=args)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED ")]
    return list(json.loads(line.removeprefix("IMPORTED ")))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["schedule", "--help"],
        ["schedule", "edit", "--help"],
        ["schedule", "notifiers", "--help"],
        ["token", "--help"],
        ["serve", "--help"],
    ],
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    assert imported(args, NOT_FOR_HELP, cli_env("http://127.0.0.1:9", None)) == []


def test_the_check_sees_what_is_imported() -> None:
    """The same look at sys.modules finds the server's stack where it is imported."""
    code = "import sys; import ghapp.app; print(sorted(m for m in %r if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code % (SERVER_STACK,)], capture_output=True, text=True, check=True
    ).stdout
    assert "starlette" in out and "sqlalchemy" in out


async def test_api_commands_import_no_server_stack(db_url, db, tmp_path) -> None:
    await add_repository(db)
    settings = make_settings(db_url, tmp_path, admin_token=ADMIN)
    async with live_server(create_app(settings, db=db)) as base:
        env = cli_env(base, ADMIN)
        for args in (
            ["schedule", "list"],
            ["schedule", "status"],
            ["schedule", "notifiers", "list"],
        ):
            found = await asyncio.to_thread(imported, args, (*SERVER_STACK, "httpx"), env)
            assert found == [], args
