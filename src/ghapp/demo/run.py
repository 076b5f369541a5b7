"""``ghapp demo``: the whole product, offline, on the embedded default.

A real ghapp server (uvicorn, SQLite in ``--dir``, scheduler and workers) talks to a
GitHub stand-in on loopback (``GHAPP_GITHUB_API_URL``), clones from a local bare
repository (``GHAPP_GIT_URL=file://…``) and runs Claude Code (``GHAPP_CLAUDE_BIN``): the
real CLI when one is installed (``GHAPP_CLAUDE_BIN``, ``claude`` on ``PATH``, or the one this
repository pins in ``npm/claude-code``), its model answered by the model stand-in on
loopback (``ANTHROPIC_BASE_URL``: no account, no network); otherwise ghapp's built-in
stand-in of the CLI, and it says so in one line. It receives signed deliveries the way
GitHub sends them — plus a redelivery, a replayed body and a forgery — and shows what
happened (:mod:`ghapp.demo.show`): the 👀 reaction to a writer's ``/triage``, the tracking
comments edited in place with their hidden markers, the refusals (a reader's ``/triage``,
the forgery, the replay), and a cron job that fires. It ends with the dashboard's address
and a sign-in token; ``--keep`` leaves the server up until Ctrl-C.

Each run starts from a fresh database in ``--dir`` (:mod:`ghapp.demo.directory`), so the
demo runs again and again the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from rich.console import Console
from rich.markup import escape
from sqlalchemy import update
from sqlmodel import col, select

from ghapp import logs
from ghapp.db.models import Job, Run, Session
from ghapp.demo import show
from ghapp.demo.directory import DATABASE, DemoError, start_clean
from ghapp.demo.show import Command, Sent
from ghapp.server import prepare_database, uvicorn_config
from ghapp.settings import Settings, ensure_generated_secrets
from ghapp.signing import delivery_headers
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.standins.model import ModelRequest, ModelStandIn, Turn
from ghapp.tokens import create_token

T = TypeVar("T")
log = logging.getLogger("ghapp.demo")

PAYLOADS = resources.files("ghapp.demo") / "payloads"
PINNED_CLI = Path("npm") / "claude-code" / "node_modules" / ".bin" / "claude"  # in a checkout
REPO, REPO_ID, INSTALLATION = "Codertocat/Hello-World", 186853002, 957387
REPOSITORY = Path("remote") / f"{REPO}.git"  # bare_repository's layout, under --dir
WAIT_S = 90.0
DEMO_README = "# Hello-World\n\nA repository for the ghapp demo.\n"
COMMANDS = (  # (login, permission, comment): a writer's command runs, a reader's is refused
    ("maintainer", "write", "/triage focus on the README"),
    ("visitor", "read", "/triage"),
)

FRESH = "[dim]ghapp demo: a fresh database, {database} (each run starts clean{replaced})[/]"
REPLACED = "; the last run's was removed"
SERVING = "[bold]ghapp demo[/]: server {url}, GitHub stand-in {api_url}"
NOT_STARTED = "the demo's server did not start{why}"
NOT_FINISHED = "the sessions had not all ended after {seconds:.0f} s"
FAILED = "ghapp demo failed: {error} (the log lines above on stderr say more)"
INTERRUPTED = "ghapp demo: interrupted; the server has stopped."
NEXT = (
    "Next: [bold]ghapp serve[/] runs the server for real; [bold]ghapp receive EVENT "
    "FILE.json[/] sends it a signed delivery."
)
DASHBOARD_LIVE = "Dashboard: {url}/login (serving until Ctrl-C)"
DASHBOARD_LATER = (
    "Dashboard: http://127.0.0.1:8000/login once `cd {directory} && ghapp serve` runs "
    "(this run's server has stopped; `ghapp demo --keep` leaves it running)"
)
SIGN_IN = "Sign-in token: {token} (an admin token in the demo's database, shown only here)"
STOPPED = "ghapp demo: stopped."
REPLAYED, FORGED = "its body replayed, new delivery id", "forged signature"
DEMO_TOKEN_NAME = "ghapp demo"  # noqa: S105 (a name, not a secret)


async def run_demo(directory: Path, console: Console, *, keep: bool = False) -> int:
    """Run the demo; its exit status (0: everything happened as the README promises)."""
    logs.configure("error")  # the tables below say what happened
    try:
        return await _demo(directory, console, keep)
    except DemoError as exc:
        console.print(f"[bold red]ghapp demo:[/] {escape(str(exc))}")
    except Exception as exc:
        log.exception("ghapp demo failed")
        console.print(f"[bold red]{escape(FAILED.format(error=f'{type(exc).__name__}: {exc}'))}[/]")
    return 1


async def _demo(directory: Path, console: Console, keep: bool) -> int:
    directory = await asyncio.to_thread(directory.resolve)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    replaced = await asyncio.to_thread(start_clean, directory, REPOSITORY)
    github = _github()
    claude = await _claude(directory, console)
    database = escape(str(directory / DATABASE))
    console.print(FRESH.format(database=database, replaced=REPLACED if replaced else ""))
    with github.serve_in_thread() as api_url, _model(claude is not None), _signals() as stop:
        settings = await _settings(directory, api_url, github, console, claude)
        async with _serving(settings) as state:
            url = settings.public_url
            console.print(SERVING.format(url=url, api_url=api_url))
            problems = await _until(stop, _scenario(url, settings, state, github, console))
            if problems is None:
                console.print(INTERRUPTED)
                return 130
            await _where_to_look(console, state, url if keep else None, directory, problems)
            if keep:
                await stop.wait()
                console.print(STOPPED)
    return 1 if problems else 0


async def _where_to_look(
    console: Console, state: Any, live_url: str | None, directory: Path, problems: list[str]
) -> None:
    """What did not go as promised, if anything; then the dashboard and a token for it (made
    now in the demo's database, printed here once and logged nowhere)."""
    created = await create_token(state.db, DEMO_TOKEN_NAME, [], True, actor="demo")
    if problems:
        show.print_wrapped(console, show.problems_block(problems))
    console.print(NEXT)
    if live_url:
        console.print(escape(DASHBOARD_LIVE.format(url=live_url)))
    else:
        console.print(escape(DASHBOARD_LATER.format(directory=directory)))
    console.print(SIGN_IN.format(token=created.token), highlight=False)


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
        env={
            "PATH": os.environ.get("PATH", ""),
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # offline: no telemetry
        },
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
    port = _free_port()
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{directory / DATABASE}",
        data_dir=directory / ".ghapp",
        port=port,
        github_api_url=api_url,
        git_url=await asyncio.to_thread(
            bare_repository, directory, REPO, files={"README.md": DEMO_README}
        ),
        claude_bin=claude or await asyncio.to_thread(_stand_in, directory),
        app_id=github.app_id,
        private_key=github.private_key_pem,
        public_url=f"http://127.0.0.1:{port}",  # the runs' links in comments lead here
    )
    for note in ensure_generated_secrets(settings):
        console.print(f"[dim]ghapp demo: {escape(note)}[/]")
    await prepare_database(settings, migrate=True)
    return settings


class _DemoServer(uvicorn.Server):
    """Ctrl-C is the demo's (:func:`_signals`): it ends the scenario or ``--keep``'s wait,
    then the demo stops this server, and nothing is re-raised after."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[Any]:
    """The ghapp server, started; its app state."""
    server = _DemoServer(uvicorn_config(settings, workers=2, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            error = None if serving.cancelled() else serving.exception()
            raise DemoError(NOT_STARTED.format(why=f": {error}" if error else ""))
        await asyncio.sleep(0.01)  # waiting for uvicorn's flag, not for time to pass
    try:
        yield server.config.loaded_app.app.state.ghapp
    finally:
        server.should_exit = True
        await serving


@contextlib.contextmanager
def _signals() -> Iterator[asyncio.Event]:
    """An event set by Ctrl-C (SIGINT) or SIGTERM while the demo runs."""
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _until(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """``work``'s result, or None if ``stop`` is set first (``work`` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _scenario(
    url: str, settings: Settings, state: Any, github: GitHubStandIn, console: Console
) -> list[str]:
    """Send the deliveries, wait for the runs, show what happened; what did not go as
    promised."""
    secret = settings.webhook_secrets[0]
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        deliveries = await _send_deliveries(client, secret)
        show.print_wrapped(
            console, show.sent_table("Deliveries sent to POST /webhooks/github", deliveries)
        )
        await _create_jobs(state)
        events, commands = await _send_commands(client, secret, github)
        show.print_wrapped(console, show.sent_table("Events that start sessions", events))
        finished = await _wait_for_runs(state, console)
    async with state.db.read_session() as session:
        runs = (await session.exec(select(Run).order_by(col(Run.id)))).all()
        sessions = (await session.exec(select(Session))).all()
    show.print_wrapped(console, show.runs_table(runs, sessions))
    refused = [d for d in deliveries if d.what in (REPLAYED, FORGED)]
    story, problems = show.on_github(github, REPO, commands, runs, refused)
    show.print_wrapped(console, story)
    problems = show.wrong_answers([*deliveries, *events]) + show.wrong_runs(runs) + problems
    if not finished:
        problems.insert(0, NOT_FINISHED.format(seconds=WAIT_S))
    return problems


async def _send_deliveries(client: httpx.AsyncClient, secret: str) -> list[Sent]:
    """The app installed, GitHub's redelivery of that, a replay of its body under a new
    delivery id, and a forgery."""
    sent, previous = [], ""
    for what, event, file, expected, tamper in (
        ("app installed", "installation", "installation.created.json", 202, None),
        ("GitHub redelivers it", "installation", "installation.created.json", 200, "redeliver"),
        (REPLAYED, "installation", "installation.created.json", 200, None),
        (FORGED, "issues", "issues.opened.json", 401, "forge"),
    ):
        body = (PAYLOADS / file).read_bytes()
        headers = delivery_headers(event, body, "not-the-secret" if tamper == "forge" else secret)
        if tamper == "redeliver":
            headers["X-GitHub-Delivery"] = previous
        response = await client.post("/webhooks/github", content=body, headers=headers)
        previous = headers["X-GitHub-Delivery"]
        sent.append(_sent(what, event, response, expected))
    return sent


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
    client: httpx.AsyncClient, secret: str, github: GitHubStandIn
) -> tuple[list[Sent], list[Command]]:
    opened = (PAYLOADS / "issues.opened.json").read_bytes()
    response = await client.post(
        "/webhooks/github", content=opened, headers=delivery_headers("issues", opened, secret)
    )
    sent = [_sent("issue #1 opened", "issues", response, 202)]
    commands = []
    template = json.loads((PAYLOADS / "issue_comment.created.json").read_text())
    for login, permission, text in COMMANDS:
        posted = github.add_comment(REPO, 1, text, user=login)
        data = copy.deepcopy(template)
        data["comment"].update(id=posted["id"], body=text, user={"login": login, "type": "User"})
        data["sender"] = {"login": login, "type": "User"}
        body = json.dumps(data).encode()
        headers = delivery_headers("issue_comment", body, secret)
        response = await client.post("/webhooks/github", content=body, headers=headers)
        sent.append(_sent(f"{login} comments {text!r}", "issue_comment", response, 202))
        allowed = permission in ("write", "admin")
        commands.append(Command(login, permission, text, int(posted["id"]), allowed))
    return sent, commands


async def _wait_for_runs(state: Any, console: Console) -> bool:
    """Until the event runs have ended and the cron job has fired once (False: time ran out)."""
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
            return True
        await asyncio.sleep(0.05)  # a demo watching progress, not synchronising a test
    return False


def _sent(what: str, event: str, response: httpx.Response, expected: int) -> Sent:
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    said = (
        str(answer.get("status") or answer.get("error") or "") if isinstance(answer, dict) else ""
    )
    if isinstance(answer, dict) and answer.get("reason"):
        said += f": {answer['reason']}"
    return Sent(what, event, response.status_code, said, expected)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
