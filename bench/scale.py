"""Scale-out on PostgreSQL: sessions/s with 1, 2, 3 worker processes; event → session start.

Run ``python bench/scale.py [--workers 1,2,3] [--events 300] [--concurrency 4] [--rate 10]
[--seconds 20]``.

Method
------
Every phase starts from nothing: a scratch database ``ghapp_bench_scale`` on 127.0.0.1:5432
(trust auth) is dropped and created through an asyncpg admin connection to ``postgres``,
migrated, given an installation, its repository and one ``issues.opened`` job (command
``issue/triage``) through the job service, and dropped again at the end of the phase. The
**GitHub stand-in** (:class:`ghapp.standins.github.GitHubStandIn`) serves from a thread of
this process on a loopback port; a subclass notes ``time.time()`` when an issue's tracking
comment is edited to say "finished". Sessions clone a local bare repository
(:func:`ghapp.standins.git.bare_repository`) and run the bash replay of the Claude Code
stand-in's ``success`` stream (:func:`ghapp.standins.claude.write_replay_executable`) with
``delay_s=0.2``: a session of 200 ms that costs almost no CPU itself.

Then the real processes start, configured through the environment like
``tests/test_scale_out.py``: one web process (``python -m ghapp serve --no-worker``, uvloop)
and N worker processes (``python -m ghapp worker --concurrency C --metrics-port P``; the
metrics port tells when a worker is up and, at the end, how many runs each one completed).
``GHAPP_MAX_RUNNING_PER_INSTALLATION`` is N x C unless ``--per-installation`` says otherwise:
the default (4) caps the whole installation at 4 running sessions, whatever the number of
workers, and every event here is for one installation. Each event is a distinct issue
(number, title, body, delivery id), signed with :func:`ghapp.signing.delivery_headers`.

1. **Throughput**, for each N in ``--workers``: ``--events`` deliveries are sent as fast as the
   web process takes them (32 in flight on keep-alive connections), then the bench waits for
   every issue's "finished" comment. sessions/s = finished sessions / (last finished
   comment - first send); speed-up = sessions/s over the first N's.
2. **Latency** with separate processes: web + 2 workers, open-loop load (event ``i`` is sent
   at ``start + i / rate``) for ``--seconds``. The replay appends, per session, the issue
   number and its process start time (``/proc/self/stat``, clock ticks since boot, 10 ms
   resolution: the moment the worker spawned it), converted to wall time as
   ``bench/latency.py`` does. Printed: 202 latency, event → run queued (``runs.queued_at``,
   the web process's clock) → run claimed (``runs.started_at``, the worker's clock) →
   session spawn → replay running → finished comment (p50/p90/p99/max), and the goal from
   issue 4 (event → session start p50 < 50 ms, p99 < 250 ms, judged on the spawn time). A
   queued run reaches the idle workers through PostgreSQL ``LISTEN/NOTIFY``
   (``ghapp.db.wakeups``), not their 5 s poll.

Per phase it also prints the CPU used over the measured span, in cores: the machine, the
web process, the worker processes, their reaped children (git clones, the replay), the
PostgreSQL server processes of the scratch database and the shared ones (WAL writer,
checkpointer…), this process (stand-in and sender), and *other* (the rest of the machine);
our CPU per session and the ceiling it sets (CPUs / CPU per session) next to the one the
slots set (N x C / 0.2 s); PostgreSQL transactions per session (``pg_stat_database``, read
after the processes exit); and runs completed per worker (its ``/metrics``).

Before each phase the bench waits (up to 30 s, a second at a time) for the machine to be
idle (< 0.2 cores busy); a warning says when something else used more than 0.15 cores
before or during the phase: the figures are then low. Every process started is stopped with
SIGTERM (its process group), then SIGKILL after 45 s; the scratch database is dropped, also
on errors.

Exit status: 0 whatever the goals say; 1 if a delivery was not answered 202, an event did
not end in a finished comment, or a process did not start or died.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
SESSION_S = 0.2  # what the stand-in session takes
PG_SERVER = "postgres@127.0.0.1:5432"
PG_DATABASE = "ghapp_bench_scale"
IN_FLIGHT = 32  # concurrent deliveries in the throughput phase
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 45  # SIGTERM → SIGKILL (a worker's grace period is 30 s)
DRAIN_S = 300  # at most this long for the sessions after the last send
LATENCY_WORKERS = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")


# == PostgreSQL scratch database =========================================================


async def _pg(create: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()


async def prepare(settings: Any) -> None:
    """Migrate; the installation and repository as the installation events leave them; the
    job (before any process starts, so none has to be told about it)."""
    from ghapp.clock import SystemClock
    from ghapp.db import Database
    from ghapp.db.core import upsert_row
    from ghapp.db.models import Installation, Repository
    from ghapp.db.types import utcnow
    from ghapp.runtime import AppState
    from ghapp.server import prepare_database

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
                "created_at": now,
                "updated_at": now,
            },
        )
    state = AppState.build(settings, db, SystemClock())
    job = {
        "name": "Triage",
        "repo_id": REPO_ID,
        "target_type": "issues",
        "command_id": "issue/triage",
        "event_triggers": [{"event": "issues.opened"}],
    }
    await state.jobs.create(job, actor="bench")
    await state.store.close()
    await db.dispose()


# == processes ===========================================================================


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Cluster:
    """One web process and some worker processes, each in its own process group."""

    env: dict[str, str]
    cwd: Path
    web_port: int = field(default_factory=free_port)
    web: subprocess.Popen[bytes] | None = None
    workers: list[tuple[subprocess.Popen[bytes], int]] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.cwd / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "ghapp", *args],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in [self.web, *(w for w, _ in self.workers)] if p is not None]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, workers: int, concurrency: int) -> None:
        self.web = self._spawn("web", ["serve", "--no-worker", "--port", str(self.web_port)])
        for n in range(workers):
            port = free_port()
            process = self._spawn(
                f"worker-{n + 1}",
                ["worker", "--concurrency", str(concurrency), "--metrics-port", str(port)],
            )
            self.workers.append((process, port))
        urls = [f"{self.base}/readyz", *(f"http://127.0.0.1:{p}/metrics" for _, p in self.workers)]
        deadline = time.monotonic() + START_TIMEOUT_S
        for url in urls:
            while not answers(url):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S} s")
                time.sleep(0.05)  # polling a starting process, bounded by the deadline

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                name = "web" if process is self.web else f"worker-{self._worker_number(process)}"
                log = (self.cwd / f"{name}.log").read_text(errors="replace").strip()
                tail = "\n".join(log.splitlines()[-15:])
                raise RuntimeError(
                    f"the {name} process exited with {process.returncode}; "
                    f"the end of its output:\n{tail}"
                )

    def _worker_number(self, process: subprocess.Popen[bytes]) -> int:
        return 1 + [w for w, _ in self.workers].index(process)

    def completed_per_worker(self) -> list[int]:
        out = []
        for _, port in self.workers:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                out.append(-1)
                continue
            match = re.search(
                r'^ghapp_runs_finished_total\{status="completed"\} (\S+)$', text, re.MULTILINE
            )
            out.append(int(float(match.group(1))) if match else 0)
        return out

    def stop(self) -> None:
        """SIGTERM to each process group, SIGKILL to whatever is left after the timeout."""
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# == load ================================================================================


def build_requests(first: int, count: int) -> list[tuple[int, bytes, dict[str, str]]]:
    base = json.loads(PAYLOAD.read_text())
    base["installation"] = {"id": INSTALLATION}
    built = []
    for number in range(first, first + count):
        data = copy.deepcopy(base)
        data["issue"].update(
            number=number,
            id=10_000_000 + number,
            title=f"Bench issue {number}",
            body=f"Bench body {number} {time.time_ns()}",
        )
        body = json.dumps(data, separators=(",", ":")).encode()
        headers = delivery_headers("issues", body, SECRET, f"bench-scale-{number}-{time.time_ns()}")
        built.append((number, body, headers))
    return built


async def drive(base: str, requests: list, rate: float | None) -> dict[int, dict[str, Any]]:
    """Send every request: ``IN_FLIGHT`` at a time (rate None) or event i at start + i / rate.
    The event time is the moment its request is sent."""
    sent: dict[int, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    gate = asyncio.Semaphore(IN_FLIGHT if rate is None else len(requests) or 1)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one(number: int, body: bytes, headers: dict[str, str]) -> None:
            async with gate:
                t0 = time.time()
                sent[number] = {"sent": t0}
                try:
                    response = await http.post("/webhooks/github", content=body, headers=headers)
                    sent[number]["status"] = response.status_code
                except httpx.HTTPError as exc:
                    sent[number]["status"] = type(exc).__name__
                sent[number]["answered"] = time.time() - t0

        if rate is None:
            await asyncio.gather(*(one(*request) for request in requests))
            return sent
        start = time.perf_counter() + 0.05
        tasks = []
        for i, request in enumerate(requests):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(*request)))
        await asyncio.gather(*tasks)
    return sent


# == measuring ===========================================================================


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (not idle, not iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def process_cpu(pid: int, own: bool = True, children: bool = True) -> float:
    """CPU seconds of a process itself and/or its reaped children; 0 if it is gone."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    fields = (parts[11:13] if own else []) + (parts[13:15] if children else [])
    return sum(int(v) for v in fields) / CLK_TCK


def background_load(quiet: float = 0.2, patience_s: float = 30.0) -> float:
    """Cores busy while this bench does nothing, sampled a second at a time until below
    ``quiet`` or ``patience_s`` has passed (other work on the machine skews the figures)."""
    deadline = time.monotonic() + patience_s
    while True:
        before = machine_busy()
        time.sleep(1.0)  # sampling the idle machine
        busy = machine_busy() - before
        if busy < quiet or time.monotonic() > deadline:
            return busy


async def _run_times() -> dict[int, tuple[float, float | None]]:
    """Per issue: when the web process queued its run and when a worker claimed it (each
    process's own clock, as ``runs.queued_at`` and ``runs.started_at`` record them)."""
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/{PG_DATABASE}")
    try:
        rows = await conn.fetch("SELECT delivery_id, queued_at, started_at FROM runs")
    finally:
        await conn.close()
    out: dict[int, tuple[float, float | None]] = {}
    for row in rows:
        match = re.fullmatch(r"bench-scale-(\d+)-\d+", row["delivery_id"] or "")
        if match:
            claimed = row["started_at"].timestamp() if row["started_at"] else None
            out[int(match.group(1))] = (row["queued_at"].timestamp(), claimed)
    return out


async def _pg_activity() -> tuple[list[int], int]:
    """The PostgreSQL server's processes working for the scratch database (its backends)
    or for every database (WAL writer, checkpointer, …), not other databases' backends; and
    the transactions the scratch database has seen (statistics lag by up to a second)."""
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 OR datname IS NULL", PG_DATABASE
        )
        xacts = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            PG_DATABASE,
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows], int(xacts or 0)


def ms(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 0.5) * 1e3:7.1f}  p90 {pct(values, 0.9) * 1e3:7.1f}  "
        f"p99 {pct(values, 0.99) * 1e3:7.1f}  max {pct(values, 1) * 1e3:7.1f} ms"
    )


@dataclass
class Phase:
    workers: int
    count: int
    sent: dict[int, dict[str, Any]]
    finished: dict[int, float]
    started: dict[int, dict[str, float]]
    runs: dict[int, tuple[float, float | None]]  # queued, claimed
    span: float  # first send → last finished comment
    send_span: float
    cpu: dict[str, float]  # cores over the span
    per_worker: list[int]
    background: float

    @property
    def rejected(self) -> list[int]:
        return [n for n, s in self.sent.items() if s.get("status") != 202]

    @property
    def missing(self) -> list[int]:
        return sorted(set(self.sent) - set(self.finished))

    @property
    def rate(self) -> float:
        return len(self.finished) / self.span if self.span > 0 else 0.0


def run_phase(
    root: Path,
    workers: int,
    concurrency: int,
    count: int,
    rate: float | None,
    per_installation: int,
) -> Phase:
    """One scratch database, stand-in and set of processes; send, wait, measure, clean up."""
    from ghapp.settings import Settings

    root.mkdir()
    record = root / "sessions.jsonl"
    replay = write_replay_executable(root, record=record, delay_s=SESSION_S)
    git_url = bare_repository(root, REPO, files={"README.md": "# Hello-World\n"})
    github = TimedGitHub(app_id=APP_ID)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    for number in range(FIRST_ISSUE, FIRST_ISSUE + count):
        github.add_issue(REPO, number, title=f"Bench issue {number}", user="Codertocat")
    requests = build_requests(FIRST_ISSUE, count)
    background = background_load()
    db_url = f"postgresql+asyncpg://{PG_SERVER}/{PG_DATABASE}"
    cluster: Cluster | None = None
    asyncio.run(_pg(create=True))
    try:
        with github.serve_in_thread() as api_url:
            values = {
                "database_url": db_url,
                "webhook_secret": SECRET,
                "data_dir": str(root / "data"),
                "github_api_url": api_url,
                "git_url": git_url,
                "claude_bin": str(replay),
                "app_id": APP_ID,
                "private_key": github.private_key_pem,
            }
            asyncio.run(prepare(Settings(_env_file=None, **values)))  # type: ignore[call-arg]
            env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_")}
            env.update({f"GHAPP_{k.upper()}": str(v) for k, v in values.items()})
            env.update(
                GHAPP_LOG_LEVEL="warning", GHAPP_MAX_RUNNING_PER_INSTALLATION=str(per_installation)
            )
            cluster = Cluster(env, root)
            cluster.start(workers, concurrency)
            pids = {
                "web": [cluster.processes[0].pid],
                "workers": [p.pid for p, _ in cluster.workers],
            }

            def sample() -> dict[str, float]:
                return {
                    "machine": machine_busy(),
                    "bench": process_cpu(os.getpid()),
                    "web": sum(process_cpu(p) for p in pids["web"]),
                    "workers": sum(process_cpu(p, children=False) for p in pids["workers"]),
                    "children": sum(process_cpu(p, own=False) for p in pids["workers"]),
                }

            pids0, xacts0 = asyncio.run(_pg_activity())
            pg0 = {pid: process_cpu(pid) for pid in pids0}
            cpu0, wall0 = sample(), time.time()
            sent = asyncio.run(drive(cluster.base, requests, rate))
            send_end = time.time()
            deadline = time.monotonic() + DRAIN_S
            while len(github.finished) < count and time.monotonic() < deadline:
                cluster.check_alive()
                time.sleep(0.1)  # polling the stand-in's record, bounded by the deadline
            finished = dict(github.finished)
            first = min(s["sent"] for s in sent.values())
            last = max(finished.values(), default=send_end)
            cpu1, wall = sample(), time.time() - wall0
            # A backend that started meanwhile counts from 0; one that ended is missed.
            pg1 = {pid: process_cpu(pid) for pid in asyncio.run(_pg_activity())[0]}
            per_worker = cluster.completed_per_worker()
            runs = asyncio.run(_run_times())
            cluster.stop()  # its backends end and flush their statistics: count transactions
            xacts1 = asyncio.run(_pg_activity())[1]
    finally:
        if cluster is not None:
            cluster.stop()
        asyncio.run(_pg(create=False))
    cpu = {k: (cpu1[k] - cpu0[k]) / wall for k in cpu0}
    cpu["postgres"] = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) / wall
    cpu["ours"] = sum(cpu[k] for k in ("web", "workers", "children", "bench", "postgres"))
    cpu["other"] = cpu["machine"] - cpu["ours"]
    cpu["per_session"] = cpu["ours"] * wall / max(1, len(finished))  # seconds
    cpu["xacts_per_session"] = (xacts1 - xacts0) / max(1, len(finished))
    boot_offset = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    started: dict[int, dict[str, float]] = {}
    lines = record.read_text().splitlines() if record.exists() else []
    for line in map(json.loads, lines):
        if line["issue"] is not None:
            line["spawned"] = boot_offset + int(line["ticks"]) / CLK_TCK
            started.setdefault(int(line["issue"]), line)
    return Phase(
        workers,
        count,
        sent,
        finished,
        started,
        runs,
        last - first,
        send_end - first,
        cpu,
        per_worker,
        background,
    )


def describe(phase: Phase) -> None:
    cores = os.cpu_count() or 1
    cpu = phase.cpu
    print(
        f"  sent {len(phase.sent)} in {phase.send_span:.2f} s "
        f"({len(phase.sent) / phase.send_span:.0f}/s), {len(phase.sent) - len(phase.rejected)} "
        f"answered 202; {len(phase.finished)} finished comments; runs completed per worker: "
        f"{' / '.join(map(str, phase.per_worker))}"
    )
    print(
        f"  CPU (cores): machine {cpu['machine']:.2f} of {cores} = web {cpu['web']:.2f} + "
        f"workers {cpu['workers']:.2f} + their children (git, replay) {cpu['children']:.2f}"
        f" + PostgreSQL {cpu['postgres']:.2f}"
        f" + bench (stand-in, sender) {cpu['bench']:.2f} + other {cpu['other']:.2f}; "
        f"{cpu['per_session'] * 1e3:.0f} ms of CPU per session (without other: "
        f"{cores / max(cpu['per_session'], 1e-9):.0f}/s would use every CPU), "
        f"{cpu['xacts_per_session']:.0f} PostgreSQL transactions per session"
    )
    if max(phase.background, cpu["other"]) > 0.15:
        print(
            f"  WARNING: something else used the machine ({phase.background:.2f} cores "
            f"before the phase, {cpu['other']:.2f} during it): the figures are low"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--workers",
        default="1,2,3",
        help="worker process counts for the throughput phase (comma-separated)",
    )
    parser.add_argument("--events", type=int, default=300, help="events per throughput run")
    parser.add_argument("--concurrency", type=int, default=4, help="slots per worker process")
    parser.add_argument("--rate", type=float, default=10.0, help="events/s, latency phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency phase length")
    parser.add_argument(
        "--per-installation",
        type=int,
        default=0,
        help="GHAPP_MAX_RUNNING_PER_INSTALLATION (default: workers x "
        "concurrency, so that it does not bind)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    c = args.concurrency
    t0 = time.monotonic()
    print(
        f"PostgreSQL {PG_SERVER}, {os.cpu_count()} CPUs, sessions of {SESSION_S * 1e3:.0f} ms "
        f"(bash replay), {c} slots per worker, one web process"
    )
    failed = False
    results: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="ghapp-bench-scale-") as tmp:
        try:
            for n in counts:
                limit = args.per_installation or n * c
                print(
                    f"\n== throughput: {n} worker process{'es' if n > 1 else ''} x {c} slots, "
                    f"{args.events} events as fast as accepted, per-installation limit "
                    f"{limit} =="
                )
                phase = run_phase(Path(tmp) / f"workers-{n}", n, c, args.events, None, limit)
                results.append(phase)
                ceiling = min(n * c, limit) / SESSION_S
                speedup = phase.rate / results[0].rate if results[0].rate else float("nan")
                print(
                    f"  sessions/s {phase.rate:.1f} ({len(phase.finished)} in {phase.span:.1f} s"
                    f"; slots allow < {ceiling:.0f}/s), speed-up vs {results[0].workers} "
                    f"worker{'s' if results[0].workers > 1 else ''}: "
                    f"{speedup:.2f}x"
                )
                describe(phase)
                failed |= report_losses(phase)

            count = max(1, int(args.rate * args.seconds))
            limit = args.per_installation or LATENCY_WORKERS * c
            print(
                f"\n== latency: web + {LATENCY_WORKERS} workers x {c} slots, {count} events at "
                f"{args.rate:g}/s (open loop), per-installation limit {limit} =="
            )
            phase = run_phase(Path(tmp) / "latency", LATENCY_WORKERS, c, count, args.rate, limit)
            spawn, running, done, queued, claimed, to_spawn = [], [], [], [], [], []
            for number, s in phase.sent.items():
                if number in phase.runs:
                    queued_at, claimed_at = phase.runs[number]
                    queued.append(queued_at - s["sent"])
                    if claimed_at is not None:
                        claimed.append(claimed_at - s["sent"])
                        if number in phase.started:
                            to_spawn.append(phase.started[number]["spawned"] - claimed_at)
                if number in phase.started:
                    spawn.append(phase.started[number]["spawned"] - s["sent"])
                    running.append(phase.started[number]["started"] - s["sent"])
                if number in phase.finished:
                    done.append(phase.finished[number] - s["sent"])
            answer = [s["answered"] for s in phase.sent.values() if "answered" in s]
            print(f"  202 latency               {ms(answer)}")
            print(f"  event → run queued        {ms(queued)}  (web process, before its commit)")
            print(f"  event → run claimed       {ms(claimed)}  (a worker woke and claimed it)")
            print(f"  claimed → session spawn   {ms(to_spawn)}  (session row, comment + clone)")
            print(f"  event → session spawn     {ms(spawn)}  (/proc start time, 10 ms ticks)")
            print(f"  event → replay running    {ms(running)}  (bash's $EPOCHREALTIME)")
            print(f"  event → finished comment  {ms(done)}  (includes the 200 ms session)")
            print(f"  sessions/s {phase.rate:.1f} sustained (offered {args.rate:g}/s)")
            describe(phase)
            p50, p99 = pct(spawn, 0.5), pct(spawn, 0.99)
            print(
                f"  goal event → session start p50 < 50 ms:  "
                f"{'MET' if p50 < 0.05 else 'NOT MET'} ({p50 * 1e3:.1f} ms)"
            )
            print(
                f"  goal event → session start p99 < 250 ms: "
                f"{'MET' if p99 < 0.25 else 'NOT MET'} ({p99 * 1e3:.1f} ms)"
            )
            failed |= report_losses(phase)
            if len(phase.started) < phase.count:
                failed = True
                print(f"  LOST: {phase.count - len(phase.started)} sessions not recorded")
        except RuntimeError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1

    if len(results) > 1 and results[0].rate > 0:
        print("\nworkers  sessions/s  speed-up  machine CPU")
        for phase in results:
            print(
                f"{phase.workers:7d}  {phase.rate:10.1f}  {phase.rate / results[0].rate:7.2f}x"
                f"  {phase.cpu['machine']:.2f} cores"
            )
    print(f"\nbench took {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


def report_losses(phase: Phase) -> bool:
    if not phase.rejected and not phase.missing:
        return False
    statuses: dict[str, int] = {}
    for number in phase.rejected:
        key = str(phase.sent[number].get("status"))
        statuses[key] = statuses.get(key, 0) + 1
    print(
        f"  LOST: {len(phase.rejected)} not answered 202 {statuses or ''}, "
        f"{len(phase.missing)} without a finished comment (first: {phase.missing[:10]})"
    )
    return True


if __name__ == "__main__":
    sys.exit(main())
