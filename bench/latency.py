"""End to end with the real Claude Code CLI: event → session spawn → first model request →
finished comment at 1, 2 and 5 events/s, and the CPU a session costs in ghapp, git and the CLI.

Run ``python bench/latency.py [--claude real|replay] [--rates 1,2,5] [--seconds 30]
[--workers 8] [--per-installation 4] [--warmup 1] [--database-url URL]``.

Method
------
* The **ghapp server** (``ghapp.server.uvicorn_config``: the real app with its scheduler and
  ``--workers`` worker slots, of which the one installation may use ``--per-installation``,
  ghapp's default 4) runs in its own process (multiprocessing *spawn*), on a fresh migrated
  SQLite file in a temporary directory, or on a scratch PostgreSQL database that the script
  creates and drops (``--database-url postgresql://postgres@127.0.0.1:5432/NAME``). One
  ``issues.opened`` job (command ``issue/triage``) is created through the job service. One
  server serves every rate in turn; each phase is drained before the next one starts.
* The **GitHub stand-in** runs in this (bench) process on a loopback port, in a thread. A
  subclass notes ``time.time()`` when a comment body containing "finished" is written.
* **Claude Code**, ``--claude real`` (default): the CLI ``npm/claude-code`` pins (or
  ``--claude-bin``), started by ghapp as in production: in its sandbox when bubblewrap works
  here (``GHAPP_SANDBOX``, default ``auto``), with a fresh ``HOME`` and ``TMPDIR`` in the
  checkout's folder, and ``ANTHROPIC_*``/``CLAUDE_*`` passed on from ghapp's environment.
  The server process gets ``ANTHROPIC_BASE_URL`` (the **model stand-in**,
  :class:`ghapp.standins.model.ModelStandIn`, served from a thread of this process),
  ``ANTHROPIC_API_KEY`` and ``CLAUDE_CODE_MAX_RETRIES=1``. The model answers each request
  with one short text turn, no tools: a session is the CLI's start-up, one model round trip
  and its exit. ``--claude replay``, the previous method: the Python stand-in's ``success``
  stream replayed by bash (:func:`ghapp.standins.claude.write_replay_executable`).
* Load is open loop, after ``--warmup`` events (1) sent one by one and not measured (a fresh
  server's first session pays for imports and caches): at each rate, event ``i`` is due at
  ``start + i / rate`` for ``--seconds``. Each is a distinct issue (number, title, body,
  delivery id) signed with :func:`ghapp.signing.delivery_headers`. The receipt time is the
  moment the request is sent, noted with both ``time.monotonic()`` and ``time.time()``.

Latencies, per event (p50 / p90 / p99 / max at each rate):

* **event → session spawn**: the start time of the ``claude`` wrapper's process (below),
  which bash reads from ``/proc/self/stat`` (clock ticks since boot, 10 ms resolution),
  converted to ``CLOCK_MONOTONIC`` (``CLOCK_BOOTTIME`` minus ``CLOCK_MONOTONIC``: the same
  clock but for time suspended). In the sandbox this is when the session's process started
  inside it, bwrap's set-up done.
* **event → first model request** (real CLI): ``ModelRequest.received_at`` of the first
  ``/v1/messages`` request whose prompt holds ``ISSUE #N`` (the ``issue/triage`` prompt
  does). The stand-in notes ``time.monotonic()`` once it has read the body; it runs in this
  process, so it is compared with the monotonic send time as it is. **spawn → first request**
  is the CLI's own start-up.
* **event → finished comment**: the GitHub stand-in's ``time.time()`` minus the wall-clock
  send time.

CPU per session, in ms (a phase's totals divided by its finished sessions):

* **ghapp**: the server process's own ``utime + stime`` (``/proc/PID/stat``, all threads;
  10 ms ticks, < 0.4 ms per session over a phase of 30 sessions or more).
* **git** and **the CLI**: measured by wrappers with ``getrusage``. A bash ``git`` wrapper is
  first on the server's ``PATH``: ghapp runs ``git`` by name with ``PATH`` taken from its own
  environment (``worker/checkout.py``, ``git_environment``), and so does the CLI, which gets
  ghapp's ``PATH`` too (``runners/claude.py``, ``session_environment``): ``ls-files``,
  ``rev-parse``, ``config``, ``log``, ``status``, ``remote``, ~9 calls a session.
  ``GHAPP_CLAUDE_BIN`` is a bash ``claude`` wrapper. Each wrapper runs the real binary as its
  child (no ``exec``), waits, then sends bash's ``times`` (``getrusage`` of itself and of its
  reaped children: the binary and everything under it that was waited for, e.g. git's
  ``upload-pack``; the kernel's exact run time, printed to the ms) with its parent's pid to a
  collector in this process over loopback TCP (bash's ``/dev/tcp``: in the sandbox a
  session can write no file that outlives it). The wrappers, a hard link of the CLI and the
  replay script share one folder, as the sandbox shows a session only its executable's
  folder. A ``git`` whose parent is the server is **ghapp's git** (clone, ``rev-parse``);
  any other is **the CLI's git**. **CLI** = the ``claude`` wrapper's children minus the
  CLI's git wrappers (their git and their bash).
* **sandbox**: bwrap. With ``--unshare-pid`` bwrap exits as soon as its namespace's PID 1
  reports the session's exit status, without reaping that PID 1, so the sandboxed tree's CPU
  never reaches the server's reaped-children time (``cutime``). This process makes itself a
  child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``) before starting the server: the orphan
  comes here and is reaped with ``wait4``, whose rusage is the whole tree (PID 1, the
  wrapper, the CLI, its git). sandbox = the server's reaped children + those orphans minus
  every wrapper's account: the outer and inner bwrap, and whatever escaped the accounting
  (~0 without the sandbox), e.g. a git call of the CLI still running when the CLI exits,
  killed with the sandbox's PID namespace before its wrapper reported (printed when it
  happens: 0-2 in 150 sessions).
* Not in the figures, printed apart: the wrappers' own bash (~2 ms a call, ~11 calls a
  session), the bench process (stand-ins, sender; ``RUSAGE_SELF``) and other work on the
  machine (``/proc/stat`` busy time minus all of the above), to see whether it disturbed a
  phase (``NOISY`` above 0.15 cores).

Exit status: 0 when every event got a 202, a session, a finished comment and (real CLI) a
model request; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import json
import multiprocessing
import os
import re
import resource
import shlex
import shutil
import socketserver
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from common import TimedGitHub, free_port, pct  # bench/ is on sys.path when a bench runs

from ghapp.signing import delivery_headers
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.git import bare_repository
from ghapp.standins.model import ModelRequest, ModelStandIn, Turn

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = ROOT / "tests" / "fixtures" / "github-payloads" / "issues" / "opened.payload.json"
REAL_CLAUDE = ROOT / "npm" / "claude-code" / "node_modules" / ".bin" / "claude"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
APP_ID = 99
SECRET = "bench-secret"
FIRST_ISSUE = 1000
API_KEY = "sk-ant-bench-key-for-the-model-stand-in"
ANSWER = "Triage: a question, not a bug. Labels: question. Next step: answer it in the issue."
# CPU per session, in ms: ghapp's process, its git, the sandbox (bwrap: what the server's
# reaped children and the orphans used beyond the wrappers' accounts), the CLI, the CLI's git
PARTS = ("ghapp", "git (ghapp)", "sandbox", "CLI", "git (CLI)")
ISSUE_IN_PROMPT = re.compile(r"ISSUE #(\d+)")
HZ = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36

# Each wrapper runs the real binary as its child, then sends one record over loopback TCP to
# the bench (bash's /dev/tcp; a sandboxed session can write no file that outlives it): a
# header line, then bash's `times` (its own user/sys time, then its reaped children's). The
# claude wrapper also sends its process start time (field 22 of /proc/self/stat, clock ticks
# since boot), the issue number in its prompt and the name of PID 1 ("bwrap" in the sandbox).
GIT_WRAPPER = """#!/bin/bash
{real} "$@"
rc=$?
{{ printf 'git %s %s\\n' "$PPID" "$$"; times; }} 2>/dev/null >/dev/tcp/127.0.0.1/{port}
exit $rc
"""
CLAUDE_WRAPPER = """#!/bin/bash
read -r -a stat < /proc/self/stat
read -r init < /proc/1/comm
issue=0
[[ "$*" =~ ISSUE\\ \\#([0-9]+) ]] && issue=${{BASH_REMATCH[1]}}
{real} "$@"
rc=$?
{{ printf 'claude %s %s %s %s %s\\n' "$PPID" "$$" "$issue" "${{stat[21]}}" "${{init:-?}}"
  times; }} 2>/dev/null >/dev/tcp/127.0.0.1/{port}
exit $rc
"""

# == the server process ==================================================================


async def _serve(settings_values: dict[str, Any], workers: int, port: int) -> None:
    import uvicorn

    from ghapp.db import Database
    from ghapp.db.core import upsert_row
    from ghapp.db.models import Installation, Repository
    from ghapp.db.types import utcnow
    from ghapp.server import prepare_database, uvicorn_config
    from ghapp.settings import Settings

    settings = Settings(_env_file=None, **settings_values)  # type: ignore[call-arg]
    await prepare_database(settings, migrate=True)
    db = Database(settings.database_url)
    async with db.write() as conn:
        now = utcnow()
        await upsert_row(
            conn,
            Installation.__table__,
            {
                "id": INSTALLATION,
                "account_login": "Codertocat",
                "permissions": {},
                "events": [],
                "created_at": now,
                "updated_at": now,
            },
        )
        await upsert_row(
            conn,
            Repository.__table__,
            {
                "id": REPO_ID,
                "full_name": REPO,
                "installation_id": INSTALLATION,
                "default_branch": "master",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        )
    await db.dispose()
    config = uvicorn_config(
        settings,
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http="httptools",
    )
    job = {
        "name": "Triage",
        "repo_id": REPO_ID,
        "target_type": "issues",
        "command_id": "issue/triage",
        "event_triggers": [{"event": "issues.opened"}],
    }
    await config.app.state.ghapp.jobs.create(job, actor="bench")  # type: ignore[attr-defined]
    await uvicorn.Server(config).serve()


def server_main(settings_values: dict[str, Any], workers: int, port: int, env: dict) -> None:
    os.environ.update(env)
    import logging

    logging.disable(logging.WARNING)  # sessions log per event; keep the bench output readable
    # The asyncio loop, as `ghapp serve` with workers uses (see ghapp.server.uvicorn_config).
    asyncio.run(_serve(settings_values, workers, port))


# == PostgreSQL scratch database =========================================================


async def _pg(url: str, create: bool) -> None:
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def sqlalchemy_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+asyncpg://", url)


# == wrappers and their accounts =========================================================


def write_wrappers(folder: Path, target: str, port: int) -> Path:
    """The ``git`` and ``claude`` wrappers in ``folder`` (put first on the server's PATH), the
    session's executable hard-linked there as ``claude-real`` (copied across file systems):
    the sandbox shows a session only its executable's folder. Returns the claude wrapper."""
    real_git = shutil.which("git")
    if real_git is None:
        raise SystemExit("git is not on PATH")
    real = folder / "claude-real"
    try:
        os.link(os.path.realpath(target), real)
    except OSError:
        shutil.copy2(os.path.realpath(target), real)
    git = folder / "git"
    git.write_text(GIT_WRAPPER.format(real=shlex.quote(os.path.realpath(real_git)), port=port))
    claude = folder / "claude-wrapper"
    claude.write_text(CLAUDE_WRAPPER.format(real=shlex.quote(str(real)), port=port))
    for path in (git, claude):
        path.chmod(0o755)
    return claude


def _seconds(value: str) -> float:
    minutes, secs = re.fullmatch(r"(\d+)m([\d.]+)s", value).groups()  # type: ignore[union-attr]
    return int(minutes) * 60 + float(secs)


@dataclass
class Account:
    kind: str  # git | claude
    ppid: int
    pid: int
    self_cpu: float  # the wrapper's bash
    children_cpu: float  # the real binary and what it reaped
    issue: int = 0
    ticks: int = 0
    init: str = ""
    cut: bool = False


def parse_account(text: str) -> Account | None:
    """A wrapper's record; one with its header only (``cut``) came from a wrapper killed before
    it sent its times: a git call of the CLI still running when the sandbox's PID namespace
    ended with the CLI."""
    lines = text.splitlines()
    if not lines:
        return None
    head = lines[0].split()
    account = Account(head[0], int(head[1]), int(head[2]), 0.0, 0.0, cut=len(lines) < 3)
    if not account.cut:
        account.self_cpu = sum(_seconds(v) for v in lines[1].split())
        account.children_cpu = sum(_seconds(v) for v in lines[2].split())
    if account.kind == "claude":
        account.issue, account.ticks = int(head[3]), int(head[4])
        account.init = head[5] if len(head) > 5 else ""
    return account


class Collector(socketserver.ThreadingTCPServer):
    """Receives the wrappers' records on a loopback port (one connection each)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # bursts of git calls must not wait for a SYN retry

    def __init__(self) -> None:
        self.records: list[Account] = []
        self.broken: list[str] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                text = self.rfile.read().decode("utf-8", "replace")
                try:
                    account = parse_account(text)
                except (ValueError, IndexError, AttributeError):
                    account = None
                with collector.lock:
                    if account is None:
                        collector.broken.append(text)
                    else:
                        collector.records.append(account)

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = int(self.server_address[1])

    def take(self) -> list[Account]:
        """The records received since the last call."""
        with self.lock:
            taken, self.records = self.records, []
            return taken


class Reaper:
    """Makes this process a child subreaper and reaps the orphans that come to it.

    bwrap with ``--unshare-pid`` exits as soon as its namespace's PID 1 reports the session's
    exit status, without reaping that PID 1: the sandboxed tree's CPU never reaches the
    server's reaped-children time. Orphans go to the nearest subreaper among their
    ancestors: this process. ``wait4`` gives each one's CPU with everything it reaped (the
    whole sandbox: bwrap's PID 1, the wrapper, the CLI and its git)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self.cpu: list[float] = []
        self.lock = threading.Lock()
        self.mine: set[int] = set()

    def start(self, *mine: int | None) -> None:
        """Reap from now on every child but ``mine`` (the server, multiprocessing's resource
        tracker): they are this process's own, waited for elsewhere."""
        self.mine = {pid for pid in mine if pid}
        threading.Thread(target=self._run, name="reaper", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                time.sleep(0.05)
                continue
            if info is None:
                continue
            if info.si_pid in self.mine:
                return  # one of ours ended (the server, at the end): leave it to its owner
            _pid, _status, usage = os.wait4(info.si_pid, 0)
            with self.lock:
                self.cpu.append(usage.ru_utime + usage.ru_stime)

    def take(self) -> float:
        """CPU seconds of the orphans reaped since the last call."""
        with self.lock:
            total, self.cpu = sum(self.cpu), []
            return total


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own utime + stime, reaped children's cutime + cstime) of a process, in seconds."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    values = [int(v) for v in parts[11:15]]
    return (values[0] + values[1]) / HZ, (values[2] + values[3]) / HZ


def machine_busy() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in fields]
    return (sum(values) - values[3] - values[4]) / HZ


def bench_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# == load ================================================================================


def build_requests(numbers: range) -> list[tuple[int, bytes, dict[str, str]]]:
    base = json.loads(PAYLOAD.read_text())
    base["installation"] = {"id": INSTALLATION}
    built = []
    for number in numbers:
        data = copy.deepcopy(base)
        data["issue"].update(
            number=number,
            id=10_000_000 + number,
            title=f"Bench issue {number}",
            body=f"Bench body {number} {time.time_ns()}",
        )
        body = json.dumps(data, separators=(",", ":")).encode()
        built.append((number, body, delivery_headers("issues", body, SECRET)))
    return built


async def drive(base: str, requests: list, rate: float) -> dict[int, dict[str, Any]]:
    sent: dict[int, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one(number: int, body: bytes, headers: dict[str, str]) -> None:
            t0 = time.time()
            sent[number] = {"sent": t0, "mono": time.monotonic()}
            try:
                response = await http.post("/webhooks/github", content=body, headers=headers)
                sent[number]["status"] = response.status_code
            except httpx.HTTPError as exc:
                sent[number]["status"] = f"{type(exc).__name__}"
            sent[number]["answered"] = time.time() - t0

        start = time.perf_counter() + 0.05
        tasks = []
        for i, request in enumerate(requests):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(*request)))
        await asyncio.gather(*tasks)
    return sent


def first_requests(requests: list[ModelRequest]) -> dict[int, float]:
    """Issue number → ``received_at`` (monotonic) of its first Messages request."""
    first: dict[int, float] = {}
    for request in requests:
        if request.kind not in ("conversation", "side"):
            continue
        match = ISSUE_IN_PROMPT.search(request.prompt)
        if match:
            number = int(match.group(1))
            first[number] = min(first.get(number, request.received_at), request.received_at)
    return first


def ms(values: list[float]) -> str:
    if not values:
        return "—"
    return (
        f"p50 {pct(values, 0.5) * 1e3:8.1f}  p90 {pct(values, 0.9) * 1e3:8.1f}  "
        f"p99 {pct(values, 0.99) * 1e3:8.1f}  max {pct(values, 1) * 1e3:8.1f} ms"
    )


# == one rate ============================================================================


@dataclass
class Phase:
    rate: float
    numbers: range
    sent: dict[int, dict[str, Any]] = field(default_factory=dict)
    spawn: list[float] = field(default_factory=list)
    model: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # ms per session
    sustained: float = 0.0
    machine: float = 0.0
    other: float = 0.0
    sandboxed: int = 0
    orphans: float = 0.0  # ms per session
    lost: str = ""


def run_phase(
    phase: Phase,
    base: str,
    server_pid: int,
    github: TimedGitHub,
    model: ModelStandIn | None,
    collector: Collector,
    reaper: Reaper,
    drain: float,
) -> None:
    requests = build_requests(phase.numbers)
    count = len(requests)
    models_before = len(model.requests) if model is not None else 0
    machine0, server0, bench0 = machine_busy(), proc_cpu(server_pid), bench_cpu()
    wall0 = time.monotonic()
    phase.sent = sent = asyncio.run(drive(base, requests, phase.rate))
    send_end = time.time()
    deadline = time.monotonic() + drain
    wanted = set(phase.numbers)
    while not wanted <= github.finished.keys() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)  # the server reaps the wrapper and settles its rows after the comment
    wall = time.monotonic() - wall0
    machine1, server1, bench1 = machine_busy(), proc_cpu(server_pid), bench_cpu()
    finished = {n: t for n, t in github.finished.items() if n in wanted}
    new = collector.take()
    orphans = reaper.take()
    first = first_requests(model.requests[models_before:]) if model is not None else {}

    # spawn ticks (CLOCK_BOOTTIME) → CLOCK_MONOTONIC
    boot_minus_mono = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()
    spawned: dict[int, float] = {}
    for account in new:
        if account.kind == "claude" and account.issue in wanted:
            spawned.setdefault(account.issue, account.ticks / HZ - boot_minus_mono)
    phase.spawn = [spawned[n] - s["mono"] for n, s in sent.items() if n in spawned]
    phase.model = [first[n] - s["mono"] for n, s in sent.items() if n in first]
    phase.startup = [first[n] - spawned[n] for n in first if n in spawned]
    phase.done = [finished[n] - s["sent"] for n, s in sent.items() if n in finished]
    answer = [s["answered"] for s in sent.values() if "answered" in s]

    sessions = max(1, len(finished))
    ghapp_git = [a for a in new if a.kind == "git" and a.ppid == server_pid]
    cli_git = [a for a in new if a.kind == "git" and a.ppid != server_pid]
    claude = [a for a in new if a.kind == "claude"]
    phase.sandboxed = sum(a.init == "bwrap" for a in claude)
    server_children = server1[1] - server0[1]
    accounted = sum(a.self_cpu + a.children_cpu for a in ghapp_git + claude)
    phase.orphans = orphans * 1e3 / sessions
    cli_git_total = sum(a.self_cpu + a.children_cpu for a in cli_git)
    per = 1e3 / sessions
    phase.cpu = {
        "ghapp": (server1[0] - server0[0]) * per,
        "git (ghapp)": sum(a.children_cpu for a in ghapp_git) * per,
        "sandbox": (server_children + orphans - accounted) * per,
        "CLI": (sum(a.children_cpu for a in claude) - cli_git_total) * per,
        "git (CLI)": sum(a.children_cpu for a in cli_git) * per,
        "wrappers": sum(a.self_cpu for a in new) * per,
        "bench": (bench1 - bench0) * per,
        "cut": sum(a.cut for a in new),
        "ghapp git calls": len(ghapp_git) / sessions,
        "CLI git calls": len(cli_git) / sessions,
    }
    phase.cpu["total"] = sum(phase.cpu[k] for k in PARTS)
    phase.machine = (machine1 - machine0) / wall
    ours = sum(server1) - sum(server0) + orphans + bench1 - bench0
    phase.other = (machine1 - machine0 - ours) / wall

    first_sent = min(s["sent"] for s in sent.values())
    span = max(finished.values(), default=first_sent) - first_sent
    phase.sustained = len(finished) / span if span > 0 else 0.0
    rejected = [n for n, s in sent.items() if s.get("status") != 202]
    send_span = send_end - first_sent
    print(
        f"\n== {phase.rate:g} events/s: sent {len(sent)} in {send_span:.1f} s "
        f"({len(sent) / send_span:.2f}/s), {len(sent) - len(rejected)} answered 202; "
        f"{len(spawned)} sessions spawned, {len(first) if model else '-'} first model "
        f"requests, {len(finished)} finished comments"
    )
    print(f"202 latency                  {ms(answer)}")
    print(f"event → session spawn        {ms(phase.spawn)}   (/proc start time, 10 ms ticks)")
    if model is not None:
        print(f"event → first model request  {ms(phase.model)}")
        print(f"  spawn → first request      {ms(phase.startup)}   (the CLI's start-up)")
    print(f"event → comment finished     {ms(phase.done)}")
    print(
        f"sessions/s sustained         {phase.sustained:.2f}  ({len(finished)} in {span:.1f} s "
        f"from first event to last finished comment; offered {phase.rate:g}/s)"
    )
    c = phase.cpu
    print(
        f"CPU per session              ghapp {c['ghapp']:.1f}, git {c['git (ghapp)']:.1f} "
        f"({c['ghapp git calls']:.1f} calls), sandbox {c['sandbox']:.1f}, CLI {c['CLI']:.1f} "
        f"+ its git {c['git (CLI)']:.1f} ({c['CLI git calls']:.1f} calls): "
        f"{c['total']:.1f} ms"
    )
    print(
        f"  not in those               wrappers' own bash {c['wrappers']:.1f}, bench process "
        f"(stand-ins, sender) {c['bench']:.1f} ms; sessions in bwrap: {phase.sandboxed} of "
        f"{len(claude)} (their trees, reaped here: {phase.orphans:.1f} ms)"
    )
    if c["cut"]:
        print(
            f"  {c['cut']:.0f} wrappers were killed before they reported (the CLI's git calls "
            "still running when its sandbox ended): their CPU counts as sandbox"
        )
    print(
        f"CPU (cores, over {wall:.0f} s)     machine busy {phase.machine:.2f} of "
        f"{os.cpu_count()}, of which other work {phase.other:.2f}"
    )
    if phase.other > 0.15:
        print(f"NOISY: other work used {phase.other:.2f} cores during this phase")
    if phase.sustained < 0.9 * phase.rate:
        print(
            "SATURATED: the machine did not keep up with the offered rate; latencies include "
            "the queue (at most --per-installation sessions of the installation run at once)."
        )
    elif phase.machine > 0.75 * (os.cpu_count() or 1):
        print("BUSY: the CPUs were more than 75 % busy; latencies include waiting for a CPU.")
    if phase.spawn:
        p50, p99 = pct(phase.spawn, 0.5), pct(phase.spawn, 0.99)
        print(
            f"goal event → session spawn p50 < 50 ms: {'MET' if p50 < 0.05 else 'NOT MET'} "
            f"({p50 * 1e3:.1f} ms); p99 < 250 ms: {'MET' if p99 < 0.25 else 'NOT MET'} "
            f"({p99 * 1e3:.1f} ms)"
        )
    missing_model = count - len(first) if model is not None else 0
    if rejected or len(spawned) < count or len(finished) < count or missing_model:
        missing = sorted(wanted - finished.keys())
        phase.lost = (
            f"{len(rejected)} not 202, {count - len(spawned)} without a session, "
            f"{missing_model} without a model request, {count - len(finished)} without a "
            f"finished comment (first: {missing[:10]})"
        )
        print(f"LOST: {phase.lost}")
        if missing:
            comments = github.comments_on(REPO, missing[0])
            last = comments[-1]["body"] if comments else "(no comment)"
            print(f"  issue {missing[0]}'s last comment: {last[:600]}")


def summary(phases: list[Phase], real: bool) -> None:
    def p(values: list[float]) -> str:
        if not values:
            return "—"
        return " / ".join(f"{pct(values, q) * 1e3:.0f}" for q in (0.5, 0.9, 0.99, 1))

    print("\n== summary (p50 / p90 / p99 / max, ms)")
    heads = ["rate", "event → spawn"]
    if real:
        heads += ["event → first model request", "spawn → first request"]
    heads += ["event → finished", "sustained/s", "machine cores"]
    print(" | ".join(heads))
    for ph in phases:
        cells = [f"{ph.rate:g}/s", p(ph.spawn)]
        if real:
            cells += [p(ph.model), p(ph.startup)]
        cells += [p(ph.done), f"{ph.sustained:.2f}", f"{ph.machine:.2f} (other {ph.other:.2f})"]
        print(" | ".join(cells))
    print(f"\nCPU per session (ms): rate | {' | '.join(PARTS)} | total | wrappers' own bash")
    for ph in phases:
        cells = [f"{ph.cpu[k]:.1f}" for k in (*PARTS, "total", "wrappers")]
        print(f"{ph.rate:g}/s | {' | '.join(cells)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--rates", default="1,2,5", help="events per second, one phase each (default 1,2,5)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send per rate")
    parser.add_argument("--workers", type=int, default=8, help="worker slots in the server")
    parser.add_argument(
        "--per-installation",
        type=int,
        default=4,
        help="GHAPP_MAX_RUNNING_PER_INSTALLATION (default 4, ghapp's default): every event "
        "is for one installation",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="at most this long to wait for sessions after a phase's last event",
    )
    parser.add_argument(
        "--pause", type=float, default=3.0, help="seconds of quiet between two rates"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="events sent one by one, unmeasured, before the first rate (a fresh server's "
        "first session is slower: imports, caches)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL of a scratch database to create and drop "
        "(default: SQLite file in a temporary directory)",
    )
    parser.add_argument(
        "--claude",
        choices=["real", "replay"],
        default="real",
        help="the real Claude Code CLI against the model stand-in (default), or the Python "
        "stand-in's success stream replayed by bash",
    )
    parser.add_argument(
        "--claude-bin", default=str(REAL_CLAUDE), help="the real CLI (default: npm/claude-code's)"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    real = args.claude == "real"
    if real and not os.access(args.claude_bin, os.X_OK):
        print(
            f"the Claude Code CLI is not installed at {args.claude_bin}: run `npm ci` in "
            "npm/claude-code, or pass --claude-bin",
            file=sys.stderr,
        )
        return 1

    phases: list[Phase] = []
    next_issue = FIRST_ISSUE + args.warmup
    for rate in rates:
        count = max(1, int(rate * args.seconds))
        phases.append(Phase(rate, range(next_issue, next_issue + count)))
        next_issue += count

    reaper = Reaper()
    collector = Collector()
    threading.Thread(target=collector.serve_forever, name="accounts", daemon=True).start()
    with collector, tempfile.TemporaryDirectory(prefix="ghapp-bench-latency-") as tmp:
        root = Path(tmp)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        if real:
            target = args.claude_bin
        else:
            target = str(write_replay_executable(bin_dir))
        wrapper = write_wrappers(bin_dir, target, collector.port)
        git_url = bare_repository(root, REPO)
        if args.database_url:
            asyncio.run(_pg(args.database_url, create=True))
            db_url = sqlalchemy_url(args.database_url)
        else:
            db_url = f"sqlite+aiosqlite:///{root / 'ghapp.db'}"

        github = TimedGitHub(app_id=APP_ID)
        github.add_installation(INSTALLATION, "Codertocat")
        github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
        for number in range(FIRST_ISSUE, next_issue):  # warm-up events' issues too
            github.add_issue(REPO, number, title=f"Bench issue {number}")
        model = ModelStandIn(lambda request: Turn.text(ANSWER)) if real else None
        print(
            f"{args.claude} Claude Code, rates {', '.join(f'{r:g}/s' for r in rates)} for "
            f"{args.seconds:g} s each, {args.workers} worker slots, {args.per_installation} per "
            f"installation, {'PostgreSQL' if args.database_url else 'SQLite'}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )

        port = free_port()
        server = None
        try:
            serving_model = model.serve_in_thread() if model else contextlib.nullcontext(None)
            with github.serve_in_thread() as api_url, serving_model as model_url:
                values = {
                    "database_url": db_url,
                    "webhook_secret": SECRET,
                    "data_dir": str(root / "data"),
                    "github_api_url": api_url,
                    "git_url": git_url,
                    "claude_bin": str(wrapper),
                    "app_id": APP_ID,
                    "private_key": github.private_key_pem,
                    "max_running_per_installation": args.per_installation,
                }
                env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
                if model_url:
                    env.update(
                        ANTHROPIC_BASE_URL=model_url,
                        ANTHROPIC_API_KEY=API_KEY,
                        CLAUDE_CODE_MAX_RETRIES="1",
                    )
                else:
                    env["GHAPP_FAKE_CLAUDE_SCENARIO"] = "success"
                ctx = multiprocessing.get_context("spawn")
                server = ctx.Process(target=server_main, args=(values, args.workers, port, env))
                server.start()
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if not server.is_alive() or time.monotonic() > deadline:
                        print("the server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.05)
                assert server.pid is not None
                tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
                reaper.start(server.pid, tracker)  # then reaps the server's sandbox probe
                for number in range(FIRST_ISSUE, FIRST_ISSUE + args.warmup):
                    asyncio.run(drive(base, build_requests(range(number, number + 1)), 1.0))
                    deadline = time.monotonic() + 60
                    while number not in github.finished and time.monotonic() < deadline:
                        time.sleep(0.1)
                time.sleep(args.pause if args.warmup else 0)
                collector.take()
                reaper.take()
                for i, phase in enumerate(phases):
                    if i:
                        time.sleep(args.pause)
                    run_phase(phase, base, server.pid, github, model, collector, reaper, args.drain)
                    if not server.is_alive():
                        print("the server died", file=sys.stderr)
                        return 1
        finally:
            if server is not None and server.is_alive():
                server.terminate()
                server.join(timeout=40)
                if server.is_alive():
                    server.kill()
            if args.database_url:
                asyncio.run(_pg(args.database_url, create=False))
            collector.shutdown()
    empty = sum(not text for text in collector.broken)
    if empty:
        print(f"{empty} wrapper connections were empty (the wrapper was killed as it reported)")
    if len(collector.broken) > empty:
        unread = [text for text in collector.broken if text]
        print(f"{len(unread)} wrapper records could not be read, the first: {unread[0]!r}")
    summary(phases, real)
    return 1 if any(ph.lost for ph in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
