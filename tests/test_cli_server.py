"""The server commands as a user runs them: real processes, real ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghapp.doctor import NO_APP, NO_APP_FIX, NO_SIGN_IN_TOKEN
from tests.cli_support import serve_first_lines
from tests.support import PAYLOADS

GHAPP = [sys.executable, "-m", "ghapp"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
    env.update(values)
    return env


def ghapp(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GHAPP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    """Poll /healthz until the server answers (or the process dies)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.communicate()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a condition, bounded by the deadline
    raise AssertionError("server did not become healthy")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """``ghapp serve`` on the embedded default, in an empty working directory."""
    port = free_port()
    env = clean_env(GHAPP_PORT=str(port))
    process = subprocess.Popen(
        [*GHAPP, "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, tmp_path, env
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit says why.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Finished server process" in stderr


def test_serve_creates_its_database_and_secret(served) -> None:
    url, cwd, _ = served
    assert (cwd / "ghapp.db").exists()  # SQLite in the working directory
    assert (cwd / ".ghapp" / "webhook-secret").exists()
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "database": "sqlite",
        "github_app": "the GitHub App is not configured: GHAPP_APP_ID and GHAPP_PRIVATE_KEY "
        "(or GHAPP_PRIVATE_KEY_PATH) are not set (`ghapp setup` registers an app and writes them)",
    }


def test_serve_says_first_that_the_app_is_not_configured(tmp_path: Path) -> None:
    env = clean_env(GHAPP_PORT=str(free_port()), COLUMNS="300")
    lines = serve_first_lines(tmp_path, env)
    warning = f"ghapp: {NO_APP} {NO_APP_FIX}"
    assert warning in lines
    # Among the first things said, before the sign-in line and "serving on …".
    assert lines.index(warning) < len(lines) - 2
    assert lines[-2] == f"ghapp: {NO_SIGN_IN_TOKEN}"


def test_receive_signs_and_posts_a_payload(served) -> None:
    _url, cwd, env = served
    payload = str(PAYLOADS / "issues" / "opened.payload.json")
    sent = ghapp("receive", "issues", payload, "--delivery", "cli-1", cwd=cwd, env=env)
    assert sent.returncode == 0, sent.stderr
    assert "cli-1 → 202" in sent.stdout and '"accepted"' in sent.stdout

    again = ghapp("receive", "issues", payload, "--delivery", "cli-1", cwd=cwd, env=env)
    assert again.returncode == 0 and "duplicate" in again.stdout

    forged = ghapp("receive", "issues", payload, "--secret", "wrong", cwd=cwd, env=env)
    assert forged.returncode == 1 and "401" in forged.stdout


def test_receive_rejects_a_file_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = ghapp("receive", "issues", str(bad), "--secret", "s", cwd=tmp_path, env=clean_env())
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_receive_reports_an_unreachable_server(tmp_path: Path) -> None:
    payload = str(PAYLOADS / "issues" / "opened.payload.json")
    url = f"http://127.0.0.1:{free_port()}/webhooks/github"
    result = ghapp(
        "receive", "issues", payload, "--secret", "s", "--url", url, cwd=tmp_path, env=clean_env()
    )
    assert result.returncode == 2 and "could not reach" in result.stderr


def test_db_upgrade_then_serve_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    env = clean_env(GHAPP_DATABASE_URL=pg_url, GHAPP_WEBHOOK_SECRET="s")
    upgraded = ghapp("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision" in upgraded.stderr


def test_serve_refuses_an_unmigrated_postgresql(pg_template: str, tmp_path: Path) -> None:
    import asyncio

    from tests.conftest import PG_URL, _admin, _asyncpg_dsn

    assert PG_URL
    name = f"ghapp_empty_{os.getpid()}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        env = clean_env(GHAPP_DATABASE_URL=_asyncpg_dsn(PG_URL, name), GHAPP_PORT=str(free_port()))
        result = ghapp("serve", cwd=tmp_path, env=env)
        assert result.returncode == 1
        assert "run `ghapp db upgrade`" in result.stderr
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
