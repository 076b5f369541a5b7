"""End-to-end latency: webhook receipt → session process start → result comment posted.

Run ``python bench/latency.py [--rate 50] [--seconds 60] [--workers 8] [--database-url URL]``.

Method
------
* The **ghapp server** (``ghapp.server.uvicorn_config``: the real app with its scheduler and
  ``--workers`` worker slots) runs in its own process (multiprocessing *spawn*), on a fresh
  migrated SQLite file in a temporary directory, or on a scratch PostgreSQL database that
  the script creates and drops (``--database-url postgresql://postgres@127.0.0.1:5432/NAME``).
  One ``issues.opened`` job (command ``issue/triage``) is created through the job service.
* The **GitHub stand-in** runs in this (bench) process on a loopback port, in a thread. A
  subclass notes ``time.time()`` when a comment body containing "finished" is written.
* **Claude Code** is the stand-in (scenario ``success``) behind a tiny wrapper executable that
  appends one JSON line per invocation to a file: the issue number (from ``ISSUE #N`` in the
  prompt), the process creation time read from ``/proc/self/stat`` (10 ms resolution; it is
  the moment the worker spawned the process, before the interpreter started) and the time
  its first Python line ran (after interpreter start-up).
* Load is open loop: event ``i`` is due at ``start + i / rate``; each is a distinct issue
  (its number, title and body differ) signed with :func:`ghapp.signing.delivery_headers`.
  The receipt time is the moment the request is sent; the 202 latency is reported too.

Figures: event → session spawn / wrapper start (p50, p90, p99, max), event → "finished"
comment (p50, p99), 202 latency, and sessions/s sustained = completed sessions / (last
comment - first send). The goals are event → session start p50 < 50 ms and p99 < 250 ms
(judged on the spawn time). Each session is a clone plus a stand-in process: on a small
machine the CPU saturates well below 50 sessions/s, and then queueing, not ghapp's own
overhead, dominates; the script prints the CPU used and says so.

Exit status: 0 when every event got a 202, a session and a finished comment; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from common import TimedGitHub, free_port, pct  # bench/ is on sys.path when a bench runs

from ghapp.signing import delivery_headers
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.git import bare_repository

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = ROOT / "tests" / "fixtures" / "github-payloads" / "issues" / "opened.payload.json"
REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
APP_ID = 99
SECRET = "bench-secret"
FIRST_ISSUE = 1000

WRAPPER = """#!{python}
import json, os, re, sys, time
_now = time.time()
_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
with open("/proc/self/stat") as f:
    _ticks = int(f.read().rsplit(")", 1)[1].split()[19])
_spawned = _now - (_boot - _ticks / os.sysconf("SC_CLK_TCK"))
_m = re.search(r"ISSUE #(\\d+)", " ".join(sys.argv))
with open({record!r}, "a") as f:
    f.write(json.dumps({{"issue": int(_m.group(1)) if _m else None,
                        "spawned": _spawned, "started": _now}}) + "\\n")
from ghapp.standins.claude import main
raise SystemExit(main())
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


# == load ================================================================================


def build_requests(count: int) -> list[tuple[int, bytes, dict[str, str]]]:
    base = json.loads(PAYLOAD.read_text())
    base["installation"] = {"id": INSTALLATION}
    built = []
    for i in range(count):
        number = FIRST_ISSUE + i
        data = copy.deepcopy(base)
        data["issue"].update(
            number=number,
            id=10_000_000 + i,
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
            sent[number] = {"sent": t0}
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


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of a process and its reaped children (pid None: the whole machine, busy)."""
    if pid is None:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        values = [int(v) for v in fields]
        return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in parts[11:15]) / os.sysconf("SC_CLK_TCK")


def ms(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 0.5) * 1e3:8.1f}  p90 {pct(values, 0.9) * 1e3:8.1f}  "
        f"p99 {pct(values, 0.99) * 1e3:8.1f}  max {pct(values, 1) * 1e3:8.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--workers", type=int, default=8, help="worker slots in the server")
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="at most this long to wait for sessions after the last event",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL of a scratch database to create and drop "
        "(default: SQLite file in a temporary directory)",
    )
    parser.add_argument(
        "--claude",
        choices=["bash", "python"],
        default="bash",
        help="the Claude Code stand-in: the Python one behind a Python wrapper, "
        "or its success stream replayed by a bash script (default)",
    )
    args = parser.parse_args()
    count = max(1, int(args.rate * args.seconds))

    with tempfile.TemporaryDirectory(prefix="ghapp-bench-latency-") as tmp:
        root = Path(tmp)
        record = root / "sessions.jsonl"
        if args.claude == "bash":
            wrapper = write_replay_executable(root, record=record)
        else:
            wrapper = root / "claude"
            wrapper.write_text(WRAPPER.format(python=sys.executable, record=str(record)))
            wrapper.chmod(0o755)
        git_url = bare_repository(root, REPO)
        if args.database_url:
            asyncio.run(_pg(args.database_url, create=True))
            db_url = sqlalchemy_url(args.database_url)
        else:
            db_url = f"sqlite+aiosqlite:///{root / 'ghapp.db'}"

        github = TimedGitHub(app_id=APP_ID)
        github.add_installation(INSTALLATION, "Codertocat")
        github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
        for i in range(count):
            github.add_issue(REPO, FIRST_ISSUE + i, title=f"Bench issue {FIRST_ISSUE + i}")
        requests = build_requests(count)
        print(
            f"{count} events at {args.rate:g}/s for {args.seconds:g} s, {args.workers} worker "
            f"slots, {'PostgreSQL' if args.database_url else 'SQLite'}, "
            f"{os.cpu_count()} CPUs"
        )

        port = free_port()
        server = None
        try:
            with github.serve_in_thread() as api_url:
                values = {
                    "database_url": db_url,
                    "webhook_secret": SECRET,
                    "data_dir": str(root / "data"),
                    "github_api_url": api_url,
                    "git_url": git_url,
                    "claude_bin": str(wrapper),
                    "app_id": APP_ID,
                    "private_key": github.private_key_pem,
                }
                env = {"GHAPP_FAKE_CLAUDE_SCENARIO": "success"}
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

                machine0, server0, wall0 = cpu_seconds(), cpu_seconds(server.pid), time.time()
                sent = asyncio.run(drive(base, requests, args.rate))
                send_end = time.time()
                deadline = time.monotonic() + args.drain
                while len(github.finished) < count and time.monotonic() < deadline:
                    if not server.is_alive():
                        break
                    time.sleep(0.2)
                wall = time.time() - wall0
                machine_cpu = (cpu_seconds() - machine0) / wall
                server_cpu = (cpu_seconds(server.pid) - server0) / wall
                finished = dict(github.finished)
        finally:
            if server is not None and server.is_alive():
                server.terminate()
                server.join(timeout=40)
                if server.is_alive():
                    server.kill()
            if args.database_url:
                asyncio.run(_pg(args.database_url, create=False))
        starts = (
            [json.loads(line) for line in record.read_text().splitlines()]
            if record.exists()
            else []
        )
    boot_offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    for line in starts:
        if "ticks" in line:  # the bash wrapper leaves the conversion to us
            line["spawned"] = boot_offset + int(line["ticks"]) / os.sysconf("SC_CLK_TCK")
    started: dict[int, dict[str, float]] = {}
    for line in starts:
        if line["issue"] is not None:
            started.setdefault(line["issue"], line)

    rejected = [n for n, s in sent.items() if s.get("status") != 202]
    spawn = [started[n]["spawned"] - s["sent"] for n, s in sent.items() if n in started]
    boot = [started[n]["started"] - s["sent"] for n, s in sent.items() if n in started]
    done = [finished[n] - s["sent"] for n, s in sent.items() if n in finished]
    answer = [s["answered"] for s in sent.values() if "answered" in s]
    first = min(s["sent"] for s in sent.values())
    last = max(finished.values(), default=first)
    span = last - first
    send_span = send_end - first
    print(
        f"sent {len(sent)} in {send_span:.1f} s ({len(sent) / send_span:.1f}/s), "
        f"{len(sent) - len(rejected)} answered 202; {len(started)} sessions started, "
        f"{len(finished)} finished comments"
    )
    print(f"202 latency               {ms(answer)}")
    print(f"event → session spawn     {ms(spawn)}   (/proc start time, 10 ms resolution)")
    print(f"event → wrapper running   {ms(boot)}   (after Python start-up)")
    print(f"event → comment finished  {ms(done)}")
    rate = len(finished) / span if span > 0 else 0.0
    print(
        f"sessions/s sustained      {rate:.2f}  ({len(finished)} in {span:.1f} s from first "
        f"event to last finished comment; offered {args.rate:g}/s)"
    )
    print(
        f"CPU (cores, over {wall:.0f} s)  machine busy {machine_cpu:.2f} of {os.cpu_count()}, "
        f"server process + its reaped children {server_cpu:.2f}"
    )
    saturated = rate < 0.9 * args.rate or machine_cpu > 0.75 * (os.cpu_count() or 1)
    if saturated:
        print(
            "SATURATED: the machine did not keep up with the offered rate (each session is a "
            "git clone plus a stand-in process); latencies include queueing. "
            "Use a lower --rate to see the unloaded figures."
        )
    p50, p99 = pct(spawn, 0.5), pct(spawn, 0.99)
    print(
        f"goal event → session start p50 < 50 ms:  {'MET' if p50 < 0.05 else 'NOT MET'} "
        f"({p50 * 1e3:.1f} ms)"
    )
    print(
        f"goal event → session start p99 < 250 ms: {'MET' if p99 < 0.25 else 'NOT MET'} "
        f"({p99 * 1e3:.1f} ms)"
    )
    lost = count - len(finished)
    if rejected or len(started) < count or lost:
        missing = sorted(set(range(FIRST_ISSUE, FIRST_ISSUE + count)) - set(finished))
        print(
            f"LOST: {len(rejected)} not 202, {count - len(started)} without a session, "
            f"{lost} without a finished comment (first: {missing[:10]})"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
