"""REST API latency with 1,000 jobs and 100,000 runs, on SQLite and PostgreSQL.

Run ``python bench/api.py [--backend both] [--requests 200] [--jobs 1000] [--runs 100000]``.

Method
------
For each backend (a SQLite file in a temporary directory, then a scratch PostgreSQL
database ``ghapp_bench_api`` on 127.0.0.1:5432, created and dropped by the script):

1. **Setup.** Migrate (:func:`ghapp.db.migrate.upgrade`), then bulk-insert with SQLAlchemy
   Core (executemany in chunks, one transaction): an installation, ``REPOS`` repositories,
   ``--jobs`` jobs spread over them (cron, event, command and manual jobs; 85 % active,
   10 % paused, 5 % disabled; ``run_count`` / ``last_run_*`` filled in), ``--runs`` runs
   over 90 days of history in id order (one *hot* every-5-minutes job has 10 % of them,
   the others share the rest unevenly; 82 % completed, 9 % failed, 5 % skipped, then
   cancelled, timed out, a few retries, and running / queued at the newest end; event and
   command runs carry an item and a delivery id) and ``--sessions`` sessions on 70 % as
   many finished runs (1 to 3 each, with a prompt of ~1.5 kB and a result of ~1 kB, as
   the worker stores them). PostgreSQL is ``ANALYZE``d afterwards (autovacuum would do it
   after such an insert); SQLite is left as ghapp leaves it (no ``ANALYZE``).
2. **Server.** The real app (``ghapp.server.uvicorn_config(settings, workers=0)``: web only,
   uvloop, httptools, no scheduler) runs in its own process (multiprocessing *spawn*) on a
   loopback port, so the client does not share its interpreter. Requests carry the
   settings' ``admin_token`` as ``Authorization: Bearer``.
3. **Pagination check.** The run history is walked from the first page to the last with
   ``GET /api/scheduler/executions?limit=200`` and each ``nextCursor``: every run id must
   come exactly once, newest first (``--no-walk`` skips it). The first page's
   ``nextCursor`` must be the ``i<last id>`` the deep-page cursors below are computed as.
4. **Latency.** One ``httpx.Client`` (keep-alive), requests one after the other: per
   endpoint ``--warmup`` requests, then ``--requests`` timed ones (send → body read):

   * ``GET /api/scheduler/tasks``: the first page of jobs (100 of ``--jobs``; ``total``);
   * ``GET /api/repos/{repo_id}/schedules``: one repository's jobs (repositories in turn);
   * ``GET /api/scheduler/executions?limit=50``: the newest page of the run history;
   * the same with ``cursor=`` at ~99 % depth (the page below run id ``runs / 100``);
   * the same filtered by ``status=completed`` (what 82 % of the runs are; a filter
     that needs an index matching ``WHERE status = ? ORDER BY id DESC``);
   * ``GET /api/repos/{repo_id}/schedules/{job_id}/runs?limit=20``: the hot job's
     newest page, and its page at ~99 % depth;
   * ``GET /api/scheduler/executions/{id}``: a random run each time (with its sessions).

   Every answer must be 200 with the expected number of items (and the expected ids).

It prints, per backend and endpoint, the items and bytes per answer, p50 / p90 / p99 / max
latency, the server process's CPU per request (and PostgreSQL's, summed over its
processes), the CPU the rest of the machine used meanwhile (a warning above 15 % of a core:
the tails are then partly theirs), and whether the goal holds: p99 < 50 ms for each
endpoint. A summary gives p50 / p99 of both backends side by side.

Exit status: 0 whatever the goals say; 1 if an answer was not 200, did not hold the expected
items, or the pagination check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common import free_port  # bench/ is on sys.path when a bench runs
from sqlalchemy import insert, text

from ghapp.commands import BUILTIN
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.db.models import Installation, Job, Repository, Run, Session
from ghapp.jobs.spec import JobSpec

PG_SERVER = "postgres@127.0.0.1:5432"
PG_DATABASE = "ghapp_bench_api"
ADMIN_TOKEN = "bench-admin-token"
INSTALLATION_ID = 8_000_001
REPOS = 4
REPO_IDS = tuple(8_000_101 + index for index in range(REPOS))
HOT_JOB_ID = 1
HOT_SHARE = 0.10
HISTORY = timedelta(days=90)
INSERT_CHUNK = 2000
EXECUTIONS_LIMIT = 50
TASKS_PAGE = 100  # the API's default page of tasks
JOB_RUNS_LIMIT = 20
WALK_LIMIT = 200
DEPTH = 0.99
FILTER_STATUS = "completed"  # the run history filtered by status (most runs have this one)
GOAL_P99_S = 0.050
OTHER_CPU_WARN = 0.15  # cores

STATUSES = (("completed", 82), ("failed", 9), ("skipped", 5), ("cancelled", 2), ("timed_out", 2))
ERRORS = {
    "failed": "claude exited with status 1: API error (overloaded), retried twice",
    "timed_out": "the session ran past timeout_seconds (900 s) and was stopped",
    "cancelled": "cancelled by token:admin",
}
PROMPT_BODY = "The app crashes on start when the config directory is missing. " * 13
RESULT = (
    "## Triage\n\n**Kind:** bug · **Severity:** medium · **Area:** `src/loader/config.py`\n\n"
    "The crash comes from `load_config()` reading `settings.toml` before the directory "
    "exists on a fresh install; `Path.read_text` raises `FileNotFoundError`, which the CLI "
    "reports as an unexpected error. Proposed labels: `bug`, `good first issue`.\n\n"
    "Next step: create the directory in `ensure_home()` (called from `main`) and add a test "
    "that starts the CLI with an empty `$HOME`. " * 2
)


# --------------------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------------------


@dataclass
class DataSet:
    jobs: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    sessions_per_run: Counter[int]
    jobs_per_repo: Counter[int]
    hot_run_ids: list[int]  # ascending


def job_kind(rng: random.Random, job_id: int) -> dict[str, Any]:
    """The trigger and work of one job (the hot job: a codebase check every 5 minutes)."""
    roll = 0.0 if job_id == HOT_JOB_ID else rng.random()
    if roll < 0.55:
        minute = rng.randrange(60)
        cron = rng.choice(
            (
                "*/5 * * * *",
                f"{minute} * * * *",
                f"{minute} {rng.randrange(24)} * * *",
                f"{minute} {rng.randrange(24)} * * 1-5",
            )
        )
        if job_id == HOT_JOB_ID:
            cron = "*/5 * * * *"
        return {
            "cron_expression": cron,
            "target_type": "codebase",
            "command_id": rng.choice(("codebase/health-check", "context/analyze")),
            "task_type": rng.choice(("health_check", "analyze", "custom")),
            "timezone": rng.choice(("UTC", "Europe/Berlin", "America/New_York")),
        }
    if roll < 0.85:
        pr = rng.random() < 0.4
        return {
            "event_triggers": [{"event": "pull_request.opened" if pr else "issues.opened"}],
            "target_type": "prs" if pr else "issues",
            "command_id": "pr/review" if pr else "issue/triage",
        }
    if roll < 0.95:
        return {
            "command_triggers": ["/triage"],
            "target_type": "issues",
            "command_id": "issue/root-cause",
        }
    return {
        "target_type": "custom",
        "runner": "shell",
        "shell_command": "make lint && make test",
        "command_id": None,
    }


def job_row(job_id: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """Every NOT NULL column of ``jobs`` spelled out (JSON columns as lists / dicts)."""
    roll = rng.random()
    status = (
        "active" if roll < 0.85 or job_id == HOT_JOB_ID else "paused" if roll < 0.95 else "disabled"
    )
    row: dict[str, Any] = {
        "id": job_id,
        "repo_id": REPO_IDS[job_id % REPOS],
        "installation_id": None,
        "repo_selection": "one",
        "repo_ids": [],
        "name": f"bench job {job_id}",
        "description": "A job of the API bench." if job_id % 3 == 0 else None,
        "status": status,
        "task_type": "custom",
        "cron_expression": None,
        "timezone": "UTC",
        "interval_minutes": None,
        "threshold": None,
        "event_triggers": [],
        "command_triggers": [],
        "after_job_id": None,
        "after_only_on_success": True,
        "target_type": "issues",
        "filter_query": "state:open label:bug" if job_id % 5 == 0 else None,
        "command_id": "issue/triage",
        "max_items": 10,
        "runner": "claude",
        "shell_command": None,
        "permission_mode": None,
        "append_system_prompt": None,
        "custom_prompt": None,
        "allowed_tools": ["Read", "Grep", "Glob"] if job_id % 2 else [],
        "disallowed_tools": [],
        "max_turns": 30,
        "model": None,
        "task_config": {},
        "report": "comment",
        "notify_on_success": False,
        "notify_on_failure": True,
        "notifier_ids": [],
        "concurrency_policy": "skip",
        "misfire_grace_seconds": 3600,
        "timeout_seconds": 900,
        "max_retries": 2,
        "next_run_at": None,
        "last_run_at": None,
        "last_run_status": None,
        "run_count": 0,
        "source": "config" if job_id % 10 == 0 else "api",
        "created_by": "bench",
        "created_at": now - HISTORY - timedelta(days=1),
        "updated_at": now - HISTORY - timedelta(days=1),
    }
    row.update(job_kind(rng, job_id))
    if row["target_type"] not in ("issues", "prs"):
        row["filter_query"] = None
    # As the job service stores it: validated, JSON columns in their dumped shape.
    # Fields newer than this data set (max_budget_usd, checks) take their defaults.
    spec = JobSpec.model_validate({name: row[name] for name in JobSpec.model_fields if name in row})
    row.update(spec.model_dump())
    if row["cron_expression"] and status == "active":
        row["next_run_at"] = now + timedelta(seconds=rng.randrange(1, 86_400))
    return row


def build_data(jobs: int, runs: int, sessions: int, seed: int) -> DataSet:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    job_rows = [job_row(job_id, rng, now) for job_id in range(1, jobs + 1)]
    by_id = {row["id"]: row for row in job_rows}
    others = list(range(2, jobs + 1)) or [HOT_JOB_ID]
    weights = [rng.lognormvariate(0, 1) for _ in others]
    statuses = [name for name, _ in STATUSES]
    status_weights = [weight for _, weight in STATUSES]
    start = now - HISTORY
    step = HISTORY / max(1, runs)
    last_of_job: dict[int, int] = {}
    run_rows: list[dict[str, Any]] = []
    picks = rng.choices(others, weights, k=runs)
    for index in range(runs):
        run_id = index + 1
        job_id = HOT_JOB_ID if rng.random() < HOT_SHARE else picks[index]
        job = by_id[job_id]
        queued = start + step * index
        newest = runs - index
        status = (
            "queued"
            if newest <= 5
            else "running"
            if newest <= 8
            else rng.choices(statuses, status_weights)[0]
        )
        trigger, detail, item, delivery = "manual", {}, None, None
        if job["cron_expression"]:
            trigger = "scheduled" if rng.random() < 0.95 else "manual"
        elif job["event_triggers"] or job["command_triggers"]:
            number = rng.randrange(1, 5000)
            kind = "pr" if job["target_type"] == "prs" else "issue"
            item = {"kind": kind, "number": number, "title": f"Crash on start #{number}"}
            if job["event_triggers"]:
                trigger = "event"
                delivery = f"{rng.getrandbits(128):032x}"
                detail = {"delivery_id": delivery, "event": job["event_triggers"][0]["event"]}
            else:
                trigger = "command"
                detail = {"comment_id": rng.getrandbits(40), "requested_by": "octocat"}
        else:
            trigger = rng.choice(("manual", "api"))
        retry_of = last_of_job.get(job_id) if status != "queued" and rng.random() < 0.02 else None
        if retry_of is not None:
            trigger = "retry"
        started = (
            None
            if status in ("queued", "skipped")
            else queued + timedelta(milliseconds=rng.randrange(50, 3000))
        )
        duration = None
        completed = None
        if started is not None and status != "running":
            duration = int(rng.lognormvariate(11, 0.8)) if status != "timed_out" else 900_000
            completed = started + timedelta(milliseconds=duration)
        agent = job["runner"] == "claude" and status not in ("queued", "skipped")
        found = rng.randrange(0, 6) if status != "queued" else 0
        run_rows.append(
            {
                "id": run_id,
                "job_id": job_id,
                "repo_id": job["repo_id"],
                "installation_id": INSTALLATION_ID,
                "trigger_type": trigger,
                "trigger_detail": detail,
                "delivery_id": delivery,
                "scheduled_for": queued if trigger == "scheduled" else None,
                "item": item,
                "status": status,
                "items_found": found,
                "items_processed": found if status == "completed" else 0,
                "items_skipped": 1 if status == "skipped" else 0,
                "items_failed": 1 if status in ("failed", "timed_out") else 0,
                "error": ERRORS.get(status),
                "attempt": 2 if retry_of else 1,
                "retry_of_id": retry_of,
                "cost_usd": round(rng.uniform(0.01, 0.6), 4) if agent else 0.0,
                "run_after": queued,
                "lease_owner": "worker-1:1234" if status == "running" else None,
                "lease_expires_at": now + timedelta(seconds=60) if status == "running" else None,
                "cancel_requested_at": None,
                "queued_at": queued,
                "started_at": started,
                "completed_at": completed,
                "duration_ms": duration,
            }
        )
        last_of_job[job_id] = run_id
    counts = Counter(row["job_id"] for row in run_rows)
    for row in run_rows:  # newest last: the last write wins
        job = by_id[row["job_id"]]
        if row["completed_at"] is not None:
            job["last_run_at"], job["last_run_status"] = row["started_at"], row["status"]
    for job_id, count in counts.items():
        by_id[job_id]["run_count"] = count
    session_rows, per_run = build_sessions(run_rows, by_id, sessions, rng)
    hot = [row["id"] for row in run_rows if row["job_id"] == HOT_JOB_ID]
    return DataSet(
        job_rows, run_rows, session_rows, per_run, Counter(row["repo_id"] for row in job_rows), hot
    )


def session_row(
    session_id: int, run: dict[str, Any], job: dict[str, Any], offset: int, rng: random.Random
) -> dict[str, Any]:
    """A session as the worker leaves it: the rendered prompt, the result, the comment."""
    item = run["item"] or {"kind": "codebase", "number": None, "title": None}
    number = item["number"] + offset if item["number"] is not None else None
    status = run["status"]
    template = BUILTIN.get(job["command_id"] or "", "make lint && make test")
    url = f"https://github.com/bench-org/repo/issues/{number}#issuecomment-{session_id}"
    return {
        "id": session_id,
        "run_id": run["id"],
        "item_kind": item["kind"],
        "item_number": number,
        "item_title": item["title"],
        "prompt": f"{template}\n\nISSUE #{number}: {item['title']}\n\n" + PROMPT_BODY,
        "runner": job["runner"],
        "status": status,
        "agent_session_id": f"{rng.getrandbits(128):032x}",
        "result_text": RESULT if status == "completed" else None,
        "error": ERRORS.get(status),
        "cost_usd": run["cost_usd"],
        "num_turns": rng.randrange(1, 30),
        "duration_ms": run["duration_ms"],
        "exit_code": 0 if status == "completed" else 1,
        "event_log": [],
        "comment_id": rng.getrandbits(40) if number is not None else None,
        "comment_url": url if number is not None else None,
        "started_at": run["started_at"],
        "completed_at": run["completed_at"],
        "created_at": run["started_at"],
    }


def build_sessions(
    runs: list[dict[str, Any]], jobs: dict[int, dict[str, Any]], total: int, rng: random.Random
) -> tuple[list[dict[str, Any]], Counter[int]]:
    """``total`` sessions on 70 % as many finished runs (1 to 3 each), in run order."""
    eligible = [row for row in runs if row["started_at"] is not None]
    if not eligible or total <= 0:
        return [], Counter()
    chosen = rng.sample(eligible, min(len(eligible), max(1, int(total * 0.7))))
    per_run: Counter[int] = Counter({row["id"]: 1 for row in chosen})
    extra = rng.choices(chosen, k=max(0, total - len(chosen)))
    per_run.update(row["id"] for row in extra)
    chosen.sort(key=lambda row: row["id"])
    rows: list[dict[str, Any]] = []
    for run in chosen:
        for offset in range(per_run[run["id"]]):
            rows.append(session_row(len(rows) + 1, run, jobs[run["job_id"]], offset, rng))
    return rows, per_run


# --------------------------------------------------------------------------------------
# Database setup
# --------------------------------------------------------------------------------------


async def pg_database(create: bool) -> str:
    conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_SERVER}/{PG_DATABASE}"


async def load(url: str, data: DataSet) -> tuple[float, float]:
    """Migrate and insert everything; return ``(migrate seconds, insert seconds)``."""
    db = Database(url)
    try:
        started = time.perf_counter()
        await upgrade(db)
        migrated = time.perf_counter() - started
        started = time.perf_counter()
        async with db.write() as conn:
            await conn.execute(
                insert(Installation.__table__).values(
                    id=INSTALLATION_ID,
                    account_login="bench-org",
                    account_type="Organization",
                    repository_selection="all",
                    permissions={"issues": "write"},
                    events=[],
                )
            )
            await conn.execute(
                insert(Repository.__table__),
                [
                    {
                        "id": repo_id,
                        "installation_id": INSTALLATION_ID,
                        "full_name": f"bench-org/repo-{index}",
                        "default_branch": "main",
                        "private": False,
                        "active": True,
                    }
                    for index, repo_id in enumerate(REPO_IDS)
                ],
            )
            for table, rows in ((Job, data.jobs), (Run, data.runs), (Session, data.sessions)):
                for chunk in range(0, len(rows), INSERT_CHUNK):
                    await conn.execute(insert(table.__table__), rows[chunk : chunk + INSERT_CHUNK])
            if not db.is_sqlite:  # ids were given: move the sequences past them
                for table in ("jobs", "runs", "sessions"):
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT coalesce(max(id), 1) FROM {table}))"
                        )
                    )
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
        return migrated, time.perf_counter() - started
    finally:
        await db.dispose()


# --------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------


def server_main(values: dict[str, Any], port: int) -> None:
    import uvicorn

    from ghapp.server import uvicorn_config
    from ghapp.settings import Settings

    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    config = uvicorn_config(settings, workers=0, host="127.0.0.1", port=port, log_level="warning")
    uvicorn.Server(config).run()


def wait_ready(base: str, server: Any) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.is_alive():
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return False


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine (every core; idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL backends serving the bench database (by their title)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if title.startswith("postgres: ") and f" {PG_DATABASE} " in title:
                total += cpu_of(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


# --------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------

Check = Callable[[int, Any], str | None]  # (request index, answer JSON) → problem or None


@dataclass
class Probe:
    label: str
    path: Callable[[int], str]  # request index → path and query
    check: Check
    items: Callable[[Any], int] = lambda body: len(
        body if isinstance(body, list) else next(v for v in body.values() if isinstance(v, list))
    )


@dataclass
class Measured:
    label: str
    seconds: list[float] = field(default_factory=list)
    items: int = 0
    size: int = 0
    server_cpu: float = 0.0  # seconds per request
    pg_cpu: float | None = None
    other_cpu: float = 0.0  # cores busy with anything but server, client and PostgreSQL
    problems: list[str] = field(default_factory=list)

    def pct(self, share: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(1, math.ceil(len(ordered) * share)) - 1] if ordered else math.nan

    @property
    def met(self) -> bool:
        return self.pct(0.99) < GOAL_P99_S


def ids_check(key: str, expected: Callable[[int], list[int]]) -> Check:
    def check(index: int, body: Any) -> str | None:
        got = [entry["id"] for entry in body.get(key, [])]
        want = expected(index)
        if got != want:
            return f"{len(got)} {key} (ids {got[:2]}…), expected {len(want)} (ids {want[:2]}…)"
        return None

    return check


def probes(data: DataSet, rng: random.Random, count: int) -> list[Probe]:
    runs = len(data.runs)
    jobs = len(data.jobs)
    newest = list(range(runs, max(0, runs - EXECUTIONS_LIMIT), -1))
    deep_below = max(EXECUTIONS_LIMIT + 1, round(runs * (1 - DEPTH)))
    deep = list(range(deep_below - 1, max(0, deep_below - 1 - EXECUTIONS_LIMIT), -1))
    filtered = [row["id"] for row in reversed(data.runs) if row["status"] == FILTER_STATUS]
    filtered = filtered[:EXECUTIONS_LIMIT]
    hot = data.hot_run_ids
    hot_newest = hot[::-1][:JOB_RUNS_LIMIT]
    hot_cut = max(JOB_RUNS_LIMIT, round(len(hot) * (1 - DEPTH)))
    hot_deep = hot[:hot_cut][::-1][:JOB_RUNS_LIMIT]
    hot_repo = REPO_IDS[HOT_JOB_ID % REPOS]
    targets = [rng.randrange(1, runs + 1) for _ in range(count)]

    def tasks(index: int, body: Any) -> str | None:
        got = len(body.get("tasks", []))
        want = min(jobs, TASKS_PAGE)  # the first page; ``total`` counts them all
        ok = got == want and body.get("total") == jobs
        return None if ok else f"{got} tasks of {body.get('total')}, expected {want} of {jobs}"

    def schedules(index: int, body: Any) -> str | None:
        want = data.jobs_per_repo[REPO_IDS[index % REPOS]]
        return None if len(body) == want else f"{len(body)} jobs, expected {want}"

    def one_run(index: int, body: Any) -> str | None:
        run_id = targets[index]
        want = data.sessions_per_run[run_id]
        if body.get("id") != run_id or len(body.get("sessions", [])) != want:
            return (
                f"run {body.get('id')} with {len(body.get('sessions', []))} sessions, "
                f"expected run {run_id} with {want}"
            )
        return None

    jobs_path = f"/api/repos/{hot_repo}/schedules/{HOT_JOB_ID}/runs?limit={JOB_RUNS_LIMIT}"
    hot_cursor = f"i{hot[hot_cut] if hot_cut < len(hot) else hot[-1] + 1}"
    executions = f"/api/scheduler/executions?limit={EXECUTIONS_LIMIT}"
    return [
        Probe("jobs, all: /api/scheduler/tasks", lambda i: "/api/scheduler/tasks", tasks),
        Probe(
            "jobs, one repo: /api/repos/R/schedules",
            lambda i: f"/api/repos/{REPO_IDS[i % REPOS]}/schedules",
            schedules,
        ),
        Probe(
            f"runs, page 1: {executions}",
            lambda i: executions,
            ids_check("executions", lambda i: newest),
        ),
        Probe(
            f"runs, 99 % deep: …&cursor=i{deep_below}",
            lambda i: f"{executions}&cursor=i{deep_below}",
            ids_check("executions", lambda i: deep),
        ),
        Probe(
            f"runs, filtered: …&status={FILTER_STATUS}",
            lambda i: f"{executions}&status={FILTER_STATUS}",
            ids_check("executions", lambda i: filtered),
        ),
        Probe(
            f"job's runs, page 1: …/schedules/{HOT_JOB_ID}/runs?limit={JOB_RUNS_LIMIT}",
            lambda i: jobs_path,
            ids_check("runs", lambda i: hot_newest),
        ),
        Probe(
            f"job's runs, 99 % deep: …&cursor={hot_cursor}",
            lambda i: f"{jobs_path}&cursor={hot_cursor}",
            ids_check("runs", lambda i: hot_deep),
        ),
        Probe(
            "get run: /api/scheduler/executions/{id}",
            lambda i: f"/api/scheduler/executions/{targets[i]}",
            one_run,
            lambda body: 1,
        ),
    ]


def get(client: httpx.Client, path: str) -> tuple[int, bytes]:
    """``(status, body)``; a transport error is status 0 with the error as the body."""
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        return 0, f"{type(exc).__name__}: {exc}".encode()
    return response.status_code, response.content


def measure(
    client: httpx.Client, probe: Probe, count: int, warmup: int, server_pid: int, pg: bool
) -> Measured:
    result = Measured(probe.label)
    for index in range(warmup):
        get(client, probe.path(index % count))
    cpu0 = cpu_of(server_pid)
    pg0 = postgres_cpu() if pg else 0.0
    machine0, client0, wall0 = machine_busy(), time.process_time(), time.perf_counter()
    answers: list[tuple[int, int, bytes]] = []
    for index in range(count):
        path = probe.path(index)
        started = time.perf_counter()
        status, content = get(client, path)
        result.seconds.append(time.perf_counter() - started)
        answers.append((index, status, content))
    wall = time.perf_counter() - wall0
    machine, client_cpu = machine_busy() - machine0, time.process_time() - client0
    server_cpu = cpu_of(server_pid) - cpu0
    pg_cpu = postgres_cpu() - pg0 if pg else 0.0
    result.server_cpu = server_cpu / count
    result.pg_cpu = pg_cpu / count if pg else None
    result.other_cpu = max(0.0, machine - server_cpu - pg_cpu - client_cpu) / wall
    for index, status, content in answers:
        if status != 200:
            result.problems.append(f"request {index}: HTTP {status}: {content[:200]!r}")
            continue
        body = httpx.Response(200, content=content).json()
        problem = probe.check(index, body)
        if problem:
            result.problems.append(f"request {index}: {problem}")
    last = answers[-1][2] if answers else b""
    result.size = len(last)
    if answers and answers[-1][1] == 200:
        result.items = probe.items(httpx.Response(200, content=last).json())
    return result


def walk(client: httpx.Client, runs: int) -> tuple[str | None, int, float]:
    """Walk the whole history; return ``(problem, pages, seconds)``."""
    started = time.perf_counter()
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"limit={WALK_LIMIT}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(f"/api/scheduler/executions?{query}")
        pages += 1
        if response.status_code != 200:
            return f"page {pages}: HTTP {response.status_code}", pages, 0.0
        body = response.json()
        ids = [entry["id"] for entry in body["executions"]]
        if pages == 1 and body["nextCursor"] is not None and body["nextCursor"] != f"i{ids[-1]}":
            return f"cursor {body['nextCursor']!r} is not 'i<last id>'", pages, 0.0
        seen.extend(ids)
        cursor = body["nextCursor"]
        if cursor is None or pages > runs:
            break
    if seen != list(range(runs, 0, -1)):
        dupes = len(seen) - len(set(seen))
        return f"walked {len(seen):,} ids ({dupes} twice), expected {runs:,}", pages, 0.0
    return None, pages, time.perf_counter() - started


def cursor_format(client: httpx.Client) -> str | None:
    body = client.get(f"/api/scheduler/executions?limit={EXECUTIONS_LIMIT}").json()
    ids = [entry["id"] for entry in body["executions"]]
    if ids and body["nextCursor"] not in (None, f"i{ids[-1]}"):
        return f"cursor {body['nextCursor']!r} is not 'i<last id>': deep pages cannot be computed"
    return None


# --------------------------------------------------------------------------------------
# One backend
# --------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    name: str
    measured: list[Measured]
    problems: list[str]


def bench_backend(
    name: str, url: str, data: DataSet, args: argparse.Namespace, directory: Path
) -> BackendResult:
    print(f"\n== {name} ==")
    migrated, inserted = asyncio.run(load(url, data))
    print(
        f"setup: migrated in {migrated:.1f} s; {len(data.jobs):,} jobs, {len(data.runs):,} "
        f"runs, {len(data.sessions):,} sessions inserted in {inserted:.1f} s"
        + ("; ANALYZE done" if name == "postgresql" else "; no ANALYZE (as ghapp leaves it)")
    )
    port = free_port()
    values = {
        "database_url": url,
        "admin_token": ADMIN_TOKEN,
        "data_dir": str(directory / "data"),
        "webhook_secret": "bench-secret",
        "secret_key": None,
        "log_level": "warning",
    }
    server = multiprocessing.get_context("spawn").Process(target=server_main, args=(values, port))
    server.start()
    problems: list[str] = []
    measured: list[Measured] = []
    try:
        base = f"http://127.0.0.1:{port}"
        if not wait_ready(base, server):
            return BackendResult(name, [], ["the server did not start"])
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            problem = cursor_format(client)
            if problem:
                return BackendResult(name, [], [problem])
            if args.walk:
                problem, pages, seconds = walk(client, len(data.runs))
                if problem:
                    problems.append(f"pagination walk: {problem}")
                else:
                    print(
                        f"pagination: walked {len(data.runs):,} runs in {pages} pages of "
                        f"{WALK_LIMIT} in {seconds:.1f} s ({1000 * seconds / pages:.1f} ms a "
                        "page), each id once, newest first"
                    )
            rng = random.Random(args.seed + 1)
            for probe in probes(data, rng, args.requests):
                result = measure(
                    client, probe, args.requests, args.warmup, server.pid, pg=name == "postgresql"
                )
                measured.append(result)
                problems.extend(f"{probe.label}: {p}" for p in result.problems[:3])
    finally:
        if server.is_alive():
            server.terminate()
            server.join(timeout=30)
            if server.is_alive():
                server.kill()
    print_table(measured)
    return BackendResult(name, measured, problems)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def size_of(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"


def print_table(measured: list[Measured]) -> None:
    print(
        f"  {'endpoint':<52}{'items':>6}{'bytes':>9}{'p50':>7}{'p90':>7}{'p99':>7}{'max':>7}"
        f"{'app CPU':>9}{'pg CPU':>8}{'other':>7}  goal p99 < 50 ms"
    )
    for row in measured:
        pg = f"{1000 * row.pg_cpu:.1f}" if row.pg_cpu is not None else "-"
        print(
            f"  {row.label:<52}{row.items:>6,}{size_of(row.size):>9}"
            f"{1000 * row.pct(0.5):>7.1f}{1000 * row.pct(0.9):>7.1f}"
            f"{1000 * row.pct(0.99):>7.1f}{1000 * max(row.seconds, default=math.nan):>7.1f}"
            f"{1000 * row.server_cpu:>9.1f}{pg:>8}{100 * row.other_cpu:>6.0f}%"
            f"  {'MET' if row.met else 'NOT MET'}"
        )
    print(
        "  (latency and CPU per request in ms; app CPU: the server process, pg CPU: its PostgreSQL "
        "backends;\n   other: the rest of the machine while measuring, % of a core)"
    )
    busy = max((row.other_cpu for row in measured), default=0.0)
    if busy > OTHER_CPU_WARN:
        print(
            f"  warning: other processes used up to {100 * busy:.0f} % of a core while measuring;"
            " the tails are theirs too: run the bench on an idle machine"
        )


def print_summary(results: list[BackendResult]) -> None:
    print("\nsummary: p50 / p99 ms")
    names = [result.name for result in results]
    print(f"  {'endpoint':<52}" + "".join(f"{name:>22}" for name in names))
    labels = [row.label for row in results[0].measured] if results else []
    for index, label in enumerate(labels):
        cells = []
        for result in results:
            if index >= len(result.measured):
                cells.append(f"{'-':>22}")
                continue
            row = result.measured[index]
            cell = f"{1000 * row.pct(0.5):.1f} / {1000 * row.pct(0.99):.1f}"
            cells.append(f"{cell + ('' if row.met else ' NOT MET'):>22}")
        print(f"  {label:<52}" + "".join(cells))
    unmet = [(r.name, m.label) for r in results for m in r.measured if not m.met]
    print(
        f"  goal p99 < {1000 * GOAL_P99_S:.0f} ms: "
        + (
            "MET for every endpoint"
            if not unmet
            else "NOT MET for " + "; ".join(f"{name}: {label}" for name, label in unmet)
        )
    )


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per endpoint")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument(
        "--no-walk",
        dest="walk",
        action="store_false",
        help="skip walking the whole run history page by page",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data set")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.runs < 2 * EXECUTIONS_LIMIT + 2 or args.requests < 1:
        parser.error(f"needs --jobs ≥ 1, --runs ≥ {2 * EXECUTIONS_LIMIT + 2}, --requests ≥ 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    print("ghapp REST API latency benchmark")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs; {args.requests} timed "
        f"requests per endpoint after {args.warmup} warm-up, one keep-alive connection"
    )
    started = time.perf_counter()
    data = build_data(args.jobs, args.runs, args.sessions, args.seed)
    statuses = Counter(row["status"] for row in data.runs)
    print(
        f"data set built in {time.perf_counter() - started:.1f} s: {len(data.jobs):,} jobs on "
        f"{REPOS} repositories, {len(data.runs):,} runs over {HISTORY.days} days (hot job "
        f"{HOT_JOB_ID}: {len(data.hot_run_ids):,} runs), {len(data.sessions):,} sessions on "
        f"{len(data.sessions_per_run):,} runs"
    )
    print("  run statuses: " + ", ".join(f"{k} {v:,}" for k, v in statuses.most_common()))
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="ghapp-bench-api-") as tmp:
        directory = Path(tmp)
        if args.backend in ("both", "sqlite"):
            url = f"sqlite+aiosqlite:///{directory / 'ghapp.db'}"
            results.append(bench_backend("sqlite", url, data, args, directory))
        if args.backend in ("both", "postgresql"):
            url = asyncio.run(pg_database(create=True))
            try:
                results.append(bench_backend("postgresql", url, data, args, directory))
            finally:
                asyncio.run(pg_database(create=False))
    print_summary(results)
    problems = [f"{result.name}: {problem}" for result in results for problem in result.problems]
    for problem in problems:
        print(f"FAILED {problem}")
    print(f"bench runtime {time.perf_counter() - began:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
