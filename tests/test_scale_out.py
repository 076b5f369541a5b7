"""Scale-out with real processes on PostgreSQL: two web replicas, three workers.

400 signed deliveries (360 distinct issues, 40 of them delivered a second time to the
other web replica) are spread over both web processes while three worker processes run the
sessions (the numbers are kept small enough for the suite: bench/ pushes them, this test
holds the guarantees). Midway one worker is SIGKILLed and another is restarted (SIGTERM, then a new
process). At the end every issue's run was executed exactly once, the GitHub stand-in shows
exactly one comment per session, and no run is left queued or running.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from ghapp.clock import SystemClock
from ghapp.db import Database
from ghapp.db.models import Delivery, Run, Session
from ghapp.runtime import AppState
from ghapp.signing import delivery_headers
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.github import GitHubStandIn
from tests.conftest import make_settings
from tests.end_to_end_support import INSTALLATION, REPO, REPO_ID, bare_repository, triage_job
from tests.support import add_repository, load

DISTINCT = 360
DUPLICATES = 40
SECRET = "scale-secret"
DEADLINE_S = 240  # an upper bound for a failing run, not a synchronisation delay


def stand_in_folder(tmp_path: Path) -> Path:
    """The replayed CLI in a folder of its own: sessions' sandbox shows them only that."""
    folder = tmp_path / "claude"
    folder.mkdir(exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ghapp", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until(condition: Any, what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling real processes' progress, bounded by the deadline


def deliveries() -> list[tuple[str, bytes]]:
    template = load("issues/opened.payload.json")
    out = []
    for number in range(1, DISTINCT + 1):
        data = copy.deepcopy(template)
        data["installation"] = {"id": INSTALLATION}
        data["issue"].update(
            number=number,
            id=10_000 + number,
            title=f"Issue {number}",
            body=f"Something is wrong, take {number}.",
        )
        out.append((f"delivery-{number}", httpx.Request("POST", "/", json=data).content))
    return out


async def send_all(bases: list[str], items: list[tuple[str, bytes]]) -> dict[str, list[int]]:
    """Each delivery to one web process; the first 100 again to the other, concurrently."""
    answers: dict[str, list[int]] = {}
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30) as http:

        async def post(base: str, delivery: str, body: bytes) -> None:
            headers = delivery_headers("issues", body, SECRET, delivery)
            async with limit:
                answer = await http.post(f"{base}/webhooks/github", content=body, headers=headers)
            answers.setdefault(delivery, []).append(answer.status_code)

        jobs = []
        for index, (delivery, body) in enumerate(items):
            jobs.append(post(bases[index % 2], delivery, body))
            if index < DUPLICATES:
                jobs.append(post(bases[(index + 1) % 2], delivery, body))
        await asyncio.gather(*jobs)
    return answers


async def prepare(settings: Any) -> None:
    db = Database(settings.database_url)
    await add_repository(db)
    state = AppState.build(settings, db, SystemClock())
    await state.jobs.create(triage_job(), actor="test")
    await state.store.close()
    await db.dispose()


async def counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.read() as conn:
            by_status = dict(
                (await conn.execute(select(Run.status, func.count()).group_by(Run.status))).all()
            )
            by_status["deliveries"] = await conn.scalar(select(func.count()).select_from(Delivery))
            by_status["sessions"] = await conn.scalar(select(func.count()).select_from(Session))
            per_run = (
                await conn.execute(
                    select(Session.run_id, func.count())
                    .group_by(Session.run_id)
                    .having(func.count() > 1)
                )
            ).all()
            by_status["runs with several sessions"] = len(per_run)
            return by_status
    finally:
        await db.dispose()


def test_two_web_and_three_worker_processes_run_everything_once(pg_url: str, tmp_path: Path):
    github = GitHubStandIn(app_id=7)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    for number in range(1, DISTINCT + 1):
        github.add_issue(REPO, number, title=f"Issue {number}", user="Codertocat")
    with github.serve_in_thread() as api_url:
        settings = make_settings(
            pg_url,
            tmp_path,
            webhook_secret=SECRET,
            github_api_url=api_url,
            git_url=bare_repository(tmp_path),
            app_id=7,
            claude_bin=str(write_replay_executable(stand_in_folder(tmp_path))),
            private_key=github.private_key_pem,
        )
        asyncio.run(prepare(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
        env.update(
            GHAPP_DATABASE_URL=pg_url,
            GHAPP_WEBHOOK_SECRET=SECRET,
            GHAPP_GITHUB_API_URL=api_url,
            GHAPP_GIT_URL=settings.git_url,
            GHAPP_CLAUDE_BIN=settings.claude_bin,
            GHAPP_APP_ID="7",
            GHAPP_PRIVATE_KEY=github.private_key_pem,
            GHAPP_LOG_LEVEL="warning",
            GHAPP_WORKER_LEASE_SECONDS="5",
            GHAPP_WORKER_HEARTBEAT_SECONDS="1",
            GHAPP_DATA_DIR=str(tmp_path / "data"),
        )
        ports = [free_port(), free_port()]
        webs = [spawn(["serve", "--no-worker", "--port", str(p)], env, tmp_path) for p in ports]
        workers = [spawn(["worker", "--concurrency", "3"], env, tmp_path) for _ in range(3)]
        processes = [*webs, *workers]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for base in bases:
                wait_until(lambda base=base: _ready(base), f"{base} to answer", 60)
            answers = asyncio.run(send_all(bases, deliveries()))

            def finished() -> int:
                return sum("finished" in c["body"] for c in bot_comments(github))

            wait_until(lambda: finished() >= DISTINCT // 3, "a third of the sessions")
            os.killpg(workers[0].pid, signal.SIGKILL)  # mid-session, no goodbye
            workers[1].send_signal(signal.SIGTERM)  # a restart: hand back, then a new process
            assert workers[1].wait(timeout=90) == 0
            workers.append(spawn(["worker", "--concurrency", "3"], env, tmp_path))
            processes.append(workers[-1])
            wait_until(lambda: finished() >= DISTINCT, "every session to finish")
            wait_until(lambda: _settled(pg_url), "no run queued or running")
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        comments = bot_comments(github)

    patterns: dict[tuple[int, ...], int] = {}
    for codes in answers.values():
        key = tuple(sorted(codes))
        patterns[key] = patterns.get(key, 0) + 1
    # A delivery sent twice: one 202 (stored), one 200 (the duplicate), whichever came first.
    assert patterns == {(200, 202): DUPLICATES, (202,): DISTINCT - DUPLICATES}
    result = asyncio.run(counts(pg_url))
    assert result["deliveries"] == DISTINCT
    assert result.get("completed") == DISTINCT, result
    assert not result.get("queued") and not result.get("running") and not result.get("failed")
    per_issue: dict[int, int] = {}
    for comment in comments:
        number = int(comment["issue_url"].rsplit("/", 1)[1])
        per_issue[number] = per_issue.get(number, 0) + 1
    assert per_issue == {number: 1 for number in range(1, DISTINCT + 1)}  # one per session
    assert all("finished" in comment["body"] for comment in comments)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _settled(url: str) -> bool:
    result = asyncio.run(counts(url))
    return not result.get("queued") and not result.get("running")


def bot_comments(github: GitHubStandIn) -> list[dict[str, Any]]:
    return [c for c in github.comments if c["user"]["type"] == "Bot"]
