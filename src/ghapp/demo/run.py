"""``ghapp demo``: the whole product, offline, on the embedded default.

A real ghapp server (uvicorn, SQLite in ``--dir``, scheduler and workers) talks to a
GitHub stand-in on loopback (``GHAPP_GITHUB_API_URL``), clones from a local bare
repository (``GHAPP_GIT_URL=file://…``) and runs Claude Code (``GHAPP_CLAUDE_BIN``): the
real CLI when one is installed (``GHAPP_CLAUDE_BIN``, ``claude`` on ``PATH``, or the one this
repository pins in ``npm/claude-code``), its model answered by the model stand-in on
loopback (``ANTHROPIC_BASE_URL``: no account, no network); otherwise ghapp's built-in
stand-in of the CLI, and it says so in one line. It receives signed deliveries the way
GitHub sends them — plus a redelivery, a replayed body and a forgery — and shows what
happened: an opened issue gets
its tracking comment edited with a result, ``/triage`` from a writer runs and from a
reader is refused, and a cron job fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import update
from sqlmodel import col, select

from ghapp import logs
from ghapp.db import Database
from ghapp.db.models import Job, Run, Session
from ghapp.server import prepare_database, uvicorn_config
from ghapp.settings import Settings, ensure_generated_secrets
from ghapp.signing import delivery_headers
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.standins.model import ModelRequest, ModelStandIn, Turn

PAYLOADS = resources.files("ghapp.demo") / "payloads"
PINNED_CLI = Path("npm") / "claude-code" / "node_modules" / ".bin" / "claude"  # in a checkout
REPO, REPO_ID, INSTALLATION = "Codertocat/Hello-World", 186853002, 957387
WAIT_S = 90.0
DEMO_README = "# Hello-World\n\nA repository for the ghapp demo.\n"


async def run_demo(directory: Path, console: Console) -> int:
    directory = await asyncio.to_thread(directory.resolve)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    logs.configure("error")  # the tables below say what happened
    github = _github()
    claude = await _claude(directory, console)
    with github.serve_in_thread() as api_url, _model(claude is not None):
        settings = await _settings(directory, api_url, github, console, claude)
        server = uvicorn.Server(uvicorn_config(settings, workers=2, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.01)  # waiting for uvicorn's flag, not for time to pass
        url = f"http://{settings.host}:{settings.port}"
        console.print(f"[bold]ghapp demo[/]: server {url}, GitHub stand-in {api_url}")
        try:
            state = server.config.loaded_app.app.state.ghapp
            failures = await _scenario(url, settings, state, github, console)
        finally:
            server.should_exit = True
            await serving
    console.print(
        f"Database: {directory / 'ghapp.db'}. Next: [bold]ghapp serve[/] runs the server; "
        "[bold]ghapp receive EVENT FILE.json[/] sends it a signed delivery."
    )
    return 1 if failures else 0


def _github() -> GitHubStandIn:
    github = GitHubStandIn(app_id=1)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    github.add_issue(REPO, 1, title="Spelling error in the README file", user="Codertocat")
    github.set_permission(REPO, "maintainer", "write")
    github.set_permission(REPO, "visitor", "read")
    return github


async def _claude(directory: Path, console: Console) -> str | None:
    """The real Claude Code CLI if there is one (said in one line either way)."""
    candidates = [os.environ.get("GHAPP_CLAUDE_BIN"), shutil.which("claude"), str(PINNED_CLI)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            version = await _version(candidate)
            if version:
                console.print(
                    f"Claude Code: {candidate} ({version}), its model answered by a stand-in "
                    "on loopback"
                )
                return await asyncio.to_thread(os.path.realpath, candidate)
    console.print(
        "Claude Code: not installed, so ghapp's built-in stand-in plays it (for the real one: "
        "npm install -g @anthropic-ai/claude-code, or set GHAPP_CLAUDE_BIN)"
    )
    return None


async def _version(binary: str) -> str | None:
    process = await asyncio.create_subprocess_exec(
        binary,
        "--version",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "DISABLE_AUTOUPDATER": "1"},
    )
    out, _ = await process.communicate()
    return out.decode().strip() if process.returncode == 0 and out.strip() else None


def triage_model(request: ModelRequest) -> Turn:
    """The demo's model: reads the README with the CLI's real Read tool, then answers."""
    if request.last_tool_result is None and request.cwd:
        return Turn.tool("Read", {"file_path": f"{request.cwd}/README.md"}, say="Checking.")
    lines = (request.last_tool_result.content if request.last_tool_result else "").splitlines()
    return Turn.text(
        "**Kind:** documentation · **Severity:** low\n\nThe README "
        f"({len(lines)} lines) is the only file affected; a one-word fix."
    )


@contextlib.contextmanager
def _model(wanted: bool) -> Iterator[None]:
    """The model stand-in, reached by sessions through ANTHROPIC_BASE_URL."""
    if not wanted:
        yield
        return
    model = ModelStandIn(triage_model)
    with model.serve_in_thread() as base_url:
        saved = {k: os.environ.get(k) for k in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")}
        os.environ.update(ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="demo-key")
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _stand_in(directory: Path) -> str:
    """ghapp's stand-in of the CLI, replayed by bash from a folder of its own (sessions run
    in the sandbox, which shows them that folder and nothing else of the demo's)."""
    folder = directory / "claude-stand-in"
    folder.mkdir(exist_ok=True)
    return str(write_replay_executable(folder))


async def _settings(
    directory: Path, api_url: str, github: GitHubStandIn, console: Console, claude: str | None
) -> Settings:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{directory / 'ghapp.db'}",
        data_dir=directory / ".ghapp",
        port=_free_port(),
        github_api_url=api_url,
        git_url=await asyncio.to_thread(
            bare_repository, directory, REPO, files={"README.md": DEMO_README}
        ),
        claude_bin=claude or await asyncio.to_thread(_stand_in, directory),
        app_id=github.app_id,
        private_key=github.private_key_pem,
        public_url="http://127.0.0.1",
    )
    for note in ensure_generated_secrets(settings):
        console.print(f"[dim]ghapp demo: {note}[/]")
    await prepare_database(settings, migrate=True)
    return settings


async def _scenario(
    url: str, settings: Settings, state: Any, github: GitHubStandIn, console: Console
) -> int:
    secret = settings.webhook_secrets[0]
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        failures = await _send_deliveries(client, secret, console)
        await _create_jobs(state)
        failures += await _send_commands(client, secret, github, console)
        await _wait_for_runs(state, console)
    await _show(settings, github, console)
    return failures


async def _send_deliveries(client: httpx.AsyncClient, secret: str, console: Console) -> int:
    table = Table(title="Deliveries sent to POST /webhooks/github")
    for column in ("what", "event", "HTTP", "answer"):
        table.add_column(column)
    failures, previous = 0, ""
    for what, event, file, expected, tamper in (
        ("app installed", "installation", "installation.created.json", 202, None),
        ("GitHub redelivers it", "installation", "installation.created.json", 200, "redeliver"),
        ("forged signature", "issues", "issues.opened.json", 401, "forge"),
    ):
        body = (PAYLOADS / file).read_bytes()
        headers = delivery_headers(event, body, "not-the-secret" if tamper == "forge" else secret)
        if tamper == "redeliver":
            headers["X-GitHub-Delivery"] = previous
        response = await client.post("/webhooks/github", content=body, headers=headers)
        previous = headers["X-GitHub-Delivery"]
        failures += _row(table, what, event, response, expected)
    console.print(table)
    return failures


async def _create_jobs(state: Any) -> None:
    base = {"repo_id": REPO_ID, "target_type": "issues", "command_id": "issue/triage"}
    await state.jobs.create(
        {**base, "name": "Triage new issues", "event_triggers": [{"event": "issues.opened"}]},
        actor="demo",
    )
    await state.jobs.create(
        {**base, "name": "/triage", "command_triggers": ["/triage"]}, actor="demo"
    )
    cron = await state.jobs.create(
        {
            "repo_id": REPO_ID,
            "name": "Daily health check",
            # Daily, not every minute: a demo that runs past a minute's end must still show
            # one firing, the one made below.
            "cron_expression": "0 9 * * *",
            "target_type": "codebase",
            "command_id": "codebase/health-check",
            "report": "none",
        },
        actor="demo",
    )
    # So the demo need not wait until 09:00: treat an occurrence at the start of this
    # minute as missed. The scheduler fires a missed occurrence within the job's misfire
    # grace at once, as it does after any downtime, and the next one is tomorrow's.
    this_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    async with state.db.write() as conn:
        await conn.execute(
            update(Job).where(col(Job.id) == cron.id).values(next_run_at=this_minute)
        )
    state.signals.job_changed()


async def _send_commands(
    client: httpx.AsyncClient, secret: str, github: GitHubStandIn, console: Console
) -> int:
    table = Table(title="Events that start sessions")
    for column in ("what", "event", "HTTP", "answer"):
        table.add_column(column)
    failures = 0
    opened = (PAYLOADS / "issues.opened.json").read_bytes()
    response = await client.post(
        "/webhooks/github", content=opened, headers=delivery_headers("issues", opened, secret)
    )
    failures += _row(table, "issue #1 opened", "issues", response, 202)
    for login, text in (("maintainer", "/triage focus on the README"), ("visitor", "/triage")):
        posted = github.add_comment(REPO, 1, text, user=login)
        data = json.loads((PAYLOADS / "issue_comment.created.json").read_text())
        data = copy.deepcopy(data)
        data["comment"].update(id=posted["id"], body=text, user={"login": login, "type": "User"})
        data["sender"] = {"login": login, "type": "User"}
        body = json.dumps(data).encode()
        headers = delivery_headers("issue_comment", body, secret)
        response = await client.post("/webhooks/github", content=body, headers=headers)
        failures += _row(table, f"{login} comments {text!r}", "issue_comment", response, 202)
    console.print(table)
    return failures


async def _wait_for_runs(state: Any, console: Console) -> None:
    """Until the event runs have ended and the cron job has fired once."""
    due = datetime.now(UTC).replace(second=0, microsecond=0)
    console.print(
        f"[dim]waiting for the sessions and for the cron job's {due:%H:%M} UTC occurrence…[/]"
    )
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        async with state.db.read_session() as session:
            runs = (await session.exec(select(Run))).all()
        ended = [r for r in runs if r.status not in ("queued", "running")]
        if len(runs) >= 4 and len(ended) == len(runs):
            return
        await asyncio.sleep(0.2)  # a demo watching progress, not synchronising a test


async def _show(settings: Settings, github: GitHubStandIn, console: Console) -> None:
    db = Database(settings.database_url)
    try:
        async with db.read_session() as session:
            runs = (await session.exec(select(Run).order_by(col(Run.id)))).all()
            sessions = (await session.exec(select(Session))).all()
    finally:
        await db.dispose()
    table = Table(title="Runs")
    for column in ("run", "trigger", "status", "sessions", "cost", "note"):
        table.add_column(column)
    per_run = {r.id: [s for s in sessions if s.run_id == r.id] for r in runs}
    for run in runs:
        note = (run.error or "").splitlines()[0] if run.error else ""
        table.add_row(
            str(run.id),
            run.trigger_type,
            run.status,
            str(len(per_run[run.id])),
            f"${run.cost_usd:.4f}",
            note[:70],
        )
    console.print(table)
    console.print("[bold]Comments on issue #1 at the GitHub stand-in[/]:")
    for comment in github.comments_on(REPO, 1):
        first = comment["body"].splitlines()[0]
        console.print(f"  @{comment['user']['login']}: {first[:100]}")


def _row(table: Table, what: str, event: str, response: httpx.Response, expected: int) -> int:
    ok = response.status_code == expected
    answer = response.json()
    table.add_row(
        what,
        event,
        f"[{'green' if ok else 'red'}]{response.status_code}[/]",
        str(answer.get("status") or answer.get("error", "")),
    )
    return 0 if ok else 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
