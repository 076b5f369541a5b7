"""The end-to-end world: ghapp's app and a worker pool, GitHub as the stand-in, sessions
running the real Claude Code CLI against the model stand-in; and the helpers its tests share.

Registered as a plugin in ``conftest.py``, so test modules use ``world`` by name (a module
with a ``world`` of its own uses that one).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ghapp.app import create_app
from ghapp.clock import SystemClock
from ghapp.github.transport import RetryPolicy
from ghapp.standins.git import bare_repository as standin_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.standins.model import ModelRequest, Turn
from ghapp.worker.pool import WorkerPool
from ghapp.worker.service import build_worker
from tests.conftest import make_settings
from tests.support import add_repository, load

REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
ADMIN = "end-to-end-admin-token"


def bare_repository(root: Path) -> str:
    """Codertocat/Hello-World with a README on master and PR #2's head."""
    return standin_repository(
        root,
        REPO,
        files={"README.md": "# Hello-World\n"},
        pull_requests={2: {"pr-change.txt": "changed in pull request 2\n"}},
    )


@pytest.fixture
async def world(db_url, db, tmp_path, claude_bin, model):
    """ghapp's app and a worker pool; GitHub is the stand-in, sessions run the real Claude
    Code CLI against the model stand-in (``model``: script it per test)."""
    await add_repository(db)  # as the installation delivery leaves it
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    github.add_issue(REPO, 1, title="Spelling error in the README file", user="Codertocat")
    async with github.serve() as base_url:
        settings = make_settings(
            db_url,
            tmp_path,
            github_api_url=base_url,
            git_url=bare_repository(tmp_path),
            claude_bin=claude_bin,
            admin_token=ADMIN,
            app_id=99,
            private_key=github.private_key_pem,
        )
        app = create_app(settings, db=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            state = app.state.ghapp
            # The worker as `ghapp serve` builds it; GitHub's hiccups retried at once, and a
            # run retried after one is due again at once (no backoff).
            worker = build_worker(
                settings,
                db,
                SystemClock(),
                state.signals,
                concurrency=1,
                retry=RetryPolicy(attempts=2, base_delay=0.01),
                jitter=lambda cap: 0.0,
            )
            try:
                yield github, http, state, worker.pool
            finally:
                await worker.close()


async def work_off(pool: WorkerPool) -> None:
    while (claimed := await pool.queue.claim(datetime.now(UTC))) is not None:
        await pool.process(claimed)


def triage_job(**changes: object) -> dict:
    job: dict[str, object] = {
        "name": "Triage",
        "repo_id": REPO_ID,
        "target_type": "issues",
        "command_id": "issue/triage",
        "event_triggers": [{"event": "issues.opened"}],
    }
    job.update(changes)
    return job


def opened_issue() -> dict:
    data = copy.deepcopy(load("issues/opened.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    return data


def tidy(request: ModelRequest) -> Turn:
    """The model reads README.md, edits it with the CLI's real Edit tool, then says so."""
    readme = f"{request.cwd}/README.md"
    done = [r.name for r in request.tool_results]
    if "Read" not in done:
        return Turn.tool("Read", {"file_path": readme})
    if "Edit" not in done:
        change = f"# Hello-World\n\nTidied in session {request.session_id}.\n"
        return Turn.tool(
            "Edit", {"file_path": readme, "old_string": "# Hello-World\n", "new_string": change}
        )
    return Turn.text("Tidied the README.")
