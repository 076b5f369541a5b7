"""A ghapp deployment on loopback, made of real processes, for fault tests and benchmarks.

Faults worth testing happen between processes: a database connection cut while a worker
claims, a disk that fills while deliveries arrive, SIGTERM while PostgreSQL is away. A
:class:`Loopback` puts together what such a test needs and nothing of the machine's own:
the GitHub stand-in (in a thread), a bare repository to clone, a Claude Code stand-in that
replays a recorded stream, the database prepared with one repository and one triage job,
and ``ghapp`` processes started with exactly that configuration, each logging to its own
file so a failing test can say what the process said.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from ghapp.db import Database
from ghapp.db.core import upsert_row
from ghapp.db.migrate import upgrade
from ghapp.db.models import Delivery, Installation, Repository, Run, Session, table_of
from ghapp.db.types import utcnow
from ghapp.signing import delivery_headers
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn

REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
SECRET = "loopback-secret"  # noqa: S105 (a test deployment's webhook secret)
APP_ID = 7
OPENED = Path(__file__).parent.parent / "demo" / "payloads" / "issues.opened.json"


@dataclass
class Process:
    """One ``ghapp`` process and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signum)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if it is still running after ``timeout`` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Loopback:
    root: Path
    database_url: str  # what the ghapp processes connect to (maybe through a fault proxy)
    github: GitHubStandIn
    api_url: str
    git_url: str
    claude_bin: str
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
        base.update(
            GHAPP_DATABASE_URL=self.database_url,
            GHAPP_WEBHOOK_SECRET=SECRET,
            GHAPP_GITHUB_API_URL=self.api_url,
            GHAPP_GIT_URL=self.git_url,
            GHAPP_CLAUDE_BIN=self.claude_bin,
            GHAPP_APP_ID=str(APP_ID),
            GHAPP_PRIVATE_KEY=self.github.private_key_pem,
            GHAPP_DATA_DIR=str(self.root / "data"),
            GHAPP_WORK_DIR=str(self.root / "work"),
            GHAPP_LOG_LEVEL="info",
            **self.settings,
        )
        base.update(overrides)
        return base

    def spawn(self, name: str, *args: str, **env: str) -> Process:
        """Start ``ghapp ARGS`` in its own process group, output to ``logs/NAME.log``."""
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        log = logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(  # noqa: S603 (our own command line)
                [sys.executable, "-m", "ghapp", *args],
                cwd=self.root,
                env=self.env(**env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def serve(self, name: str, port: int, *args: str, **env: str) -> Process:
        process = self.spawn(name, "serve", "--port", str(port), *args, **env)
        wait_until(lambda: ready(f"http://127.0.0.1:{port}") or not process.alive(), 60)
        if not process.alive():
            raise RuntimeError(f"{name} exited at start:\n{process.output()[-3000:]}")
        return process

    def stop_all(self, timeout: float = 30) -> None:
        for process in self.processes:
            process.signal(signal.SIGTERM)
        for process in self.processes:
            if process.wait(timeout) is None:
                process.signal(signal.SIGKILL)
                process.wait(timeout)

    def bot_comments_per_issue(self) -> dict[int, int]:
        per_issue: dict[int, int] = {}
        for comment in self.github.comments:
            if comment["user"]["type"] == "Bot":
                number = int(comment["issue_url"].rsplit("/", 1)[1])
                per_issue[number] = per_issue.get(number, 0) + 1
        return per_issue


@contextlib.contextmanager
def loopback(
    root: Path,
    database_url: str,
    *,
    issues: int,
    direct_url: str | None = None,
    session_delay_s: float = 0.0,
    settings: dict[str, str] | None = None,
) -> Iterator[Loopback]:
    """A prepared deployment: ``issues`` issues on the stand-in, the database migrated with
    the repository and a triage job (through ``direct_url`` when ``database_url`` goes
    through a fault proxy). Every process started is stopped on exit."""
    github = GitHubStandIn(app_id=APP_ID)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    for number in range(1, issues + 1):
        github.add_issue(REPO, number, title=f"Issue {number}", user="Codertocat")
    git_url = bare_repository(root, REPO, files={"README.md": "# Hello-World\n"})
    (root / "claude").mkdir(exist_ok=True)  # a folder of its own: the sandbox shows it
    claude = write_replay_executable(root / "claude", delay_s=session_delay_s)
    asyncio.run(prepare(direct_url or database_url))
    with github.serve_in_thread() as api_url:
        world = Loopback(
            root, database_url, github, api_url, git_url, str(claude), dict(settings or {})
        )
        try:
            yield world
        finally:
            world.stop_all()


async def prepare(database_url: str) -> None:
    """Migrate, then add the installation, the repository and an ``issues.opened`` job."""
    from ghapp.clock import SystemClock
    from ghapp.jobs.service import JobService
    from ghapp.signals import Signals

    db = Database(database_url)
    try:
        await upgrade(db)
        now = utcnow()
        async with db.write() as conn:
            installation = {"id": INSTALLATION, "account_login": "Codertocat", "permissions": {}}
            await upsert_row(
                conn,
                table_of(Installation),
                {**installation, "events": [], "created_at": now, "updated_at": now},
            )
            await upsert_row(
                conn,
                table_of(Repository),
                {
                    "id": REPO_ID,
                    "full_name": REPO,
                    "installation_id": INSTALLATION,
                    "default_branch": "master",
                    "created_at": now,
                    "updated_at": now,
                },
            )
        jobs = JobService(db, SystemClock(), Signals())
        await jobs.create(
            {
                "name": "Triage",
                "repo_id": REPO_ID,
                "target_type": "issues",
                "command_id": "issue/triage",
                "event_triggers": [{"event": "issues.opened"}],
            },
            actor="loopback",
        )
    finally:
        await db.dispose()


def issue_deliveries(numbers: range) -> list[tuple[str, int, bytes]]:
    """(delivery id, issue number, signed body) of an ``issues.opened`` per issue."""
    template = json.loads(OPENED.read_text())
    out = []
    for number in numbers:
        data = copy.deepcopy(template)
        data["installation"] = {"id": INSTALLATION}
        data["repository"].update(id=REPO_ID, full_name=REPO)
        data["issue"].update(number=number, id=10_000 + number, title=f"Issue {number}")
        body = json.dumps(data).encode()
        out.append((f"delivery-{number}", number, body))
    return out


async def deliver(
    base: str, items: list[tuple[str, int, bytes]], *, rate: float, answer_within: float = 15
) -> dict[int, int]:
    """POST each delivery, ``rate`` per second, concurrently; issue number → status (0 when
    no answer came: a connection refused or timed out)."""
    answers: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=answer_within) as http:

        async def post(delivery: str, number: int, body: bytes) -> None:
            headers = delivery_headers("issues", body, SECRET, delivery)
            try:
                answer = await http.post(f"{base}/webhooks/github", content=body, headers=headers)
                answers[number] = answer.status_code
            except httpx.HTTPError:
                answers[number] = 0

        pending = []
        started = time.monotonic()
        for index, item in enumerate(items):
            due = started + index / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))  # pacing a load, not a sync
            pending.append(asyncio.create_task(post(*item)))
        await asyncio.gather(*pending)
    return answers


async def outcome(database_url: str) -> dict[str, Any]:
    """Runs by status, deliveries stored, and runs and sessions per delivery."""
    db = Database(database_url)
    try:
        async with db.read() as conn:
            statuses = dict(
                (
                    await conn.execute(
                        select(col(Run.status), func.count()).group_by(col(Run.status))
                    )
                ).all()
            )
            deliveries = await conn.scalar(select(func.count()).select_from(Delivery))
            per_delivery = dict(
                (
                    await conn.execute(
                        select(col(Run.delivery_id), func.count()).group_by(col(Run.delivery_id))
                    )
                ).all()
            )
            sessions = dict(
                (
                    await conn.execute(
                        select(col(Session.run_id), func.count()).group_by(col(Session.run_id))
                    )
                ).all()
            )
        return {
            "statuses": statuses,
            "deliveries": deliveries,
            "runs_per_delivery": per_delivery,
            "sessions_per_run": sessions,
        }
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str = "") -> float:
    """Poll ``condition`` (real processes' progress) until true; seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or condition}")
        time.sleep(0.05)  # polling other processes' progress, bounded by the timeout
    return time.monotonic() - started
