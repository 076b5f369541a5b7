"""A worker killed with SIGKILL mid-session: another worker finishes the run, and GitHub
sees exactly one comment for that session (real processes, PostgreSQL, the real Claude Code
CLI against the model stand-in: the first session's model stalls, the second answers)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.standins.github import GitHubStandIn
from ghapp.standins.model import Fault, ModelRequest, ModelStandIn
from tests.claude_cli import API_KEY, echo
from tests.conftest import make_settings
from tests.end_to_end_support import (
    INSTALLATION,
    REPO,
    REPO_ID,
    bare_repository,
    opened_issue,
    triage_job,
)
from tests.support import add_repository, runs_of, send


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    """Poll a condition on real processes, bounded by a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ghapp", "worker", "--concurrency", "1"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def bot_comments(github: GitHubStandIn) -> list[dict]:
    return [c for c in github.comments_on(REPO, 1) if c["user"]["type"] == "Bot"]


def test_killed_worker_run_is_taken_over_with_one_comment(
    pg_url: str, tmp_path: Path, claude_bin: str
) -> None:
    stalling = [True]  # the first worker's session hangs on the model; later ones do not

    def model_answer(request: ModelRequest) -> object:
        return Fault.stall() if stalling[0] else echo(request)

    model = ModelStandIn(model_answer)
    github = GitHubStandIn(app_id=7)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    github.add_issue(REPO, 1, title="Spelling error in the README file", user="Codertocat")
    with github.serve_in_thread() as api_url, model.serve_in_thread() as model_url:
        settings = make_settings(
            pg_url,
            tmp_path,
            github_api_url=api_url,
            git_url=bare_repository(tmp_path),
            claude_bin=claude_bin,
            app_id=7,
            private_key=github.private_key_pem,
        )

        async def queue_a_run() -> int:
            db = Database(pg_url)
            await add_repository(db)
            app = create_app(settings, db=db)
            job = await app.state.ghapp.jobs.create(triage_job(), actor="t")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                assert (await send(http, "issues", opened_issue())).json()["runs"] == 1
            await app.state.ghapp.store.close()
            await db.dispose()
            return job.id

        job_id = asyncio.run(queue_a_run())
        env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
        env.update(
            GHAPP_DATABASE_URL=pg_url,
            GHAPP_WEBHOOK_SECRET="s",
            GHAPP_GITHUB_API_URL=api_url,
            GHAPP_GIT_URL=settings.git_url,
            GHAPP_CLAUDE_BIN=settings.claude_bin,
            GHAPP_APP_ID="7",
            GHAPP_PRIVATE_KEY=github.private_key_pem,
            GHAPP_WORKER_LEASE_SECONDS="5",
            GHAPP_WORKER_HEARTBEAT_SECONDS="1",
            GHAPP_LOG_LEVEL="warning",
            ANTHROPIC_BASE_URL=model_url,
            ANTHROPIC_API_KEY=API_KEY,
        )
        first = start_worker(env, tmp_path)
        try:
            wait_for(lambda: model.stalled > 0, "the first worker's session to be thinking")
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # mid-session, no goodbye
            first.wait()
        [tracking] = bot_comments(github)
        assert "is working on this" in tracking["body"]

        stalling[0] = False
        model.release_stalls()  # its CLI lost its worker; let it go
        second = start_worker(env, tmp_path)
        try:
            wait_for(
                lambda: any("finished" in c["body"] for c in bot_comments(github)),
                "the second worker to finish the run",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            _, stderr = second.communicate(timeout=60)

    [final] = bot_comments(github)
    assert final["id"] == tracking["id"]  # the same comment, edited: never a duplicate
    assert "✅ **Triage** finished." in final["body"]

    async def the_run():
        db = Database(pg_url)
        [run] = await runs_of(db, job_id)
        await db.dispose()
        return run

    run = asyncio.run(the_run())
    assert (run.status, run.attempt, run.items_processed) == ("completed", 2, 1)
    assert second.returncode == 0, stderr
