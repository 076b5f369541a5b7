"""Scheduler benchmark: firing lateness with 10,000 cron jobs, and CPU use while idle.

Run ``python bench/scheduler.py [--minutes 3] [--idle-seconds 30] [--backend both]``.

Method
------
For each backend (a SQLite file in a temporary directory, then a scratch PostgreSQL
database ``ghapp_bench_sched`` created on 127.0.0.1:5432 and dropped afterwards):

1. **Setup.** Migrate, insert one installation and one repository, then bulk-insert
   ``--jobs`` active cron jobs with SQLAlchemy Core (the job service validates and
   audits each job and would take minutes). The mix (printed) spreads expressions over
   every-minute, ``*/2``, ``*/5``, ``*/10``, ``*/15``, one or two random minutes an hour,
   and daily / weekday jobs at a random time, each in a random timezone among seven
   (including the half-hour offsets of Asia/Kolkata and Australia/Lord_Howe). Every minute
   boundary then has about 400 to 1,800 jobs due at once (the largest bursts at :00 and
   :30 UTC; the profile over the next hour is printed). ``next_run_at`` is each job's
   first occurrence strictly after ``base`` (what :func:`ghapp.jobs.schedules.first_run`
   computes), ``base`` lying a few seconds after the insert, so nothing is overdue when
   the loop starts. ``--align N`` moves ``base`` to 10 s before the next minute that is a
   multiple of N, to put the largest bursts in the window.
2. **Firing window.** The real :meth:`Scheduler.run` loop runs in this process with the
   :class:`SystemClock` (on uvloop, as ``ghapp serve`` does) for ``--minutes`` real
   minutes after ``base``. A subclass wraps ``_fire_batch``: the moment the parent returns
   (its transaction has committed, so the batch's Run rows exist) is recorded with the
   number of runs created. Nothing is read back during the window: this scheduler is the
   only writer and its batches run one after the other, so afterwards the Run rows in id
   order are split among the batches by those counts. Lateness of a run = commit moment of
   its batch - ``scheduled_for``. Per minute boundary, the last run's lateness is the time
   to fire the whole burst. Just after the window the loop is woken once and stopped when
   that tick is over (never inside a tick), so every occurrence due inside the window has
   had its chance.
3. **Checks.** No ``(job_id, scheduled_for)`` pair twice; every occurrence in
   ``(base, window end]`` (from ``schedule_of(job).occurrences``) fired; nothing fired
   that is not an occurrence in ``(base, stop]``.
4. **Idle CPU.** Every job is moved an hour ahead (``next_run_at``), a fresh scheduler is
   started and, once its first tick is done, the process CPU time
   (``time.process_time``: every thread, the aiosqlite one included) is compared with
   wall time over ``--idle-seconds``. Only the scheduler runs in the process then; its
   fallback poll still wakes it every 30 s (the wake-ups are counted). PostgreSQL's own
   server processes are not in these figures.

Also printed: the loop's CPU during the firing window, the time per due job of a batch,
and, measured separately on 500 jobs, how much of it is pure Python planning
(:func:`ghapp.scheduler.loop.plan`: building the cron schedule and the next occurrence).

Goals: p99 lateness < 1 s; idle CPU < 2 % of one core. The exit status is 0 whether or not
the goals hold, and 1 if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from sqlalchemy import insert, select, update

from ghapp.clock import SystemClock
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.db.models import Installation, Job, Repository, Run
from ghapp.jobs.schedules import Schedule, schedule_of
from ghapp.scheduler.loop import Scheduler, plan
from ghapp.signals import Signals

PG_SERVER = "postgres@127.0.0.1:5432"
PG_DATABASE = "ghapp_bench_sched"
INSTALLATION_ID = 7_000_001
REPO_ID = 7_000_002
TIMEZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Tokyo",
)
REFERENCE_JOBS = 10_000
START_MARGIN = timedelta(seconds=5)  # base = end of the insert + this
ALIGN_LEAD = timedelta(seconds=10)  # --align: the window starts this long before the boundary
STOP_WAKE_AFTER = timedelta(seconds=1)  # wake the loop this long after the window
IDLE_AHEAD = timedelta(hours=1)
SETTLE_S = 0.5  # after the idle scheduler's first tick, before measuring
PLAN_SAMPLE = 500
INSERT_CHUNK = 1000

LATENESS_GOAL_S = 1.0
IDLE_CPU_GOAL_PERCENT = 2.0


# --------------------------------------------------------------------------------------
# The job mix
# --------------------------------------------------------------------------------------


def _two_minutes(rng: random.Random) -> str:
    first, second = sorted(rng.sample(range(60), 2))
    return f"{first},{second} * * * *"


@dataclass(frozen=True)
class Kind:
    label: str
    count: int  # out of REFERENCE_JOBS
    make: Callable[[random.Random], str]


MIX: tuple[Kind, ...] = (
    Kind("every minute", 300, lambda rng: "* * * * *"),
    Kind("every 2 minutes", 400, lambda rng: "*/2 * * * *"),
    Kind("every 5 minutes", 400, lambda rng: "*/5 * * * *"),
    Kind("every 10 minutes", 300, lambda rng: "*/10 * * * *"),
    Kind("every 15 minutes", 300, lambda rng: "*/15 * * * *"),
    Kind("hourly at M", 3000, lambda rng: f"{rng.randrange(60)} * * * *"),
    Kind("twice hourly M,M2", 2300, _two_minutes),
    Kind("daily at H:M", 2000, lambda rng: f"{rng.randrange(60)} {rng.randrange(24)} * * *"),
    Kind("weekdays at H:M", 1000, lambda rng: f"{rng.randrange(60)} {rng.randrange(24)} * * 1-5"),
)


@dataclass(frozen=True)
class JobSpec:
    """The fields :func:`schedule_of` reads, for a job not yet inserted."""

    kind: str
    cron_expression: str
    timezone: str
    interval_minutes: int | None = None
    threshold: dict[str, Any] | None = None
    schedule_anchor: datetime | None = None


def kind_counts(total: int) -> list[tuple[Kind, int]]:
    """The mix scaled to ``total`` jobs (the last kind takes the rounding)."""
    counts = [round(kind.count * total / REFERENCE_JOBS) for kind in MIX]
    counts[-1] = total - sum(counts[:-1])
    return list(zip(MIX, counts, strict=True))


def build_specs(total: int, rng: random.Random) -> list[JobSpec]:
    specs = [
        JobSpec(kind.label, kind.make(rng), rng.choice(TIMEZONES))
        for kind, count in kind_counts(total)
        for _ in range(count)
    ]
    rng.shuffle(specs)  # ids do not follow the kinds
    return specs


def cron_of(spec: JobSpec) -> Schedule:
    schedule = schedule_of(spec)
    assert schedule is not None  # every spec has a cron expression
    return schedule


def print_hour_profile(specs: list[JobSpec]) -> None:
    """Jobs due per minute boundary over the next hour: how large the bursts get."""
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    cache: dict[tuple[str, str], Schedule] = {}
    due: Counter[datetime] = Counter()
    for spec in specs:
        key = (spec.cron_expression, spec.timezone)
        schedule = cache.get(key) or cache.setdefault(key, cron_of(spec))
        due.update(schedule.occurrences(start, start + timedelta(hours=1)))
    sizes = sorted(due.values())
    largest = max(due, key=lambda moment: (due[moment], -moment.timestamp()))
    print(
        f"  due per minute boundary over the next hour: min {sizes[0]:,}, median "
        f"{sizes[len(sizes) // 2]:,}, max {sizes[-1]:,} (at :{largest.minute:02d} UTC); "
        f"{sum(sizes):,} firings an hour"
    )


def print_mix(specs: list[JobSpec]) -> None:
    kinds = Counter(spec.kind for spec in specs)
    examples = {spec.kind: spec.cron_expression for spec in reversed(specs)}
    print(f"job mix ({len(specs):,} active cron jobs, concurrency policy 'allow'):")
    for kind in MIX:
        print(f"  {kind.label:<18} {kinds[kind.label]:>6,}   e.g. {examples[kind.label]!r}")
    zones = Counter(spec.timezone for spec in specs)
    print("  timezones: " + ", ".join(f"{zone} {zones[zone]:,}" for zone in TIMEZONES))


# --------------------------------------------------------------------------------------
# Database setup
# --------------------------------------------------------------------------------------


async def create_pg_database() -> str:
    conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
        await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{PG_SERVER}/{PG_DATABASE}"


async def drop_pg_database() -> None:
    conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
    finally:
        await conn.close()


def job_row(index: int, spec: JobSpec, next_run_at: datetime) -> dict[str, Any]:
    """Every NOT NULL column of ``jobs`` spelled out (JSON columns as lists / dicts)."""
    return {
        "repo_id": REPO_ID,
        "installation_id": None,
        "repo_selection": "one",
        "repo_ids": [],
        "name": f"bench job {index}",
        "status": "active",
        "task_type": "custom",
        "cron_expression": spec.cron_expression,
        "timezone": spec.timezone,
        "event_triggers": [],
        "command_triggers": [],
        "after_only_on_success": True,
        "target_type": "codebase",
        "command_id": "codebase/health-check",
        "max_items": 10,
        "runner": "claude",
        "allowed_tools": [],
        "disallowed_tools": [],
        "task_config": {},
        "report": "none",
        "notify_on_success": False,
        "notify_on_failure": False,
        "notifier_ids": [],
        "concurrency_policy": "allow",
        "misfire_grace_seconds": 3600,
        "timeout_seconds": 900,
        "max_retries": 2,
        "next_run_at": next_run_at,
        "run_count": 0,
        "source": "api",
        "created_by": "bench",
    }


async def insert_owner(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(
            insert(Installation.__table__).values(
                id=INSTALLATION_ID,
                account_login="bench-org",
                account_type="Organization",
                repository_selection="all",
                permissions={"contents": "read"},
                events=[],
            )
        )
        await conn.execute(
            insert(Repository.__table__).values(
                id=REPO_ID,
                installation_id=INSTALLATION_ID,
                full_name="bench-org/bench-repo",
                default_branch="main",
                private=False,
                active=True,
            )
        )


def aligned(moment: datetime, every_minutes: int) -> datetime:
    """Shortly before the first boundary at a multiple of ``every_minutes`` after ``moment``."""
    minutes = every_minutes - (moment.minute % every_minutes)
    boundary = moment.replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    return max(moment, boundary - ALIGN_LEAD)


async def insert_jobs(
    db: Database, specs: list[JobSpec], schedules: list[Schedule], align: int
) -> tuple[datetime, float]:
    """Insert the jobs, first due strictly after ``base``; return ``(base, seconds)``.

    ``base`` is set from a timed dry run of the slow part (computing next occurrences) so
    that it still lies ahead when the last row is in; with ``align`` it is moved to just
    before the next boundary at a multiple of ``align`` minutes (the large bursts).
    """
    started = time.perf_counter()
    for schedule in schedules[:200]:
        schedule.next_after(datetime.now(UTC))
    estimate = (time.perf_counter() - started) * len(schedules) / 200
    started = time.perf_counter()
    base = datetime.now(UTC) + START_MARGIN + timedelta(seconds=estimate * 2 + 1)
    if align:
        base = aligned(base, align)
    rows = [
        job_row(index, spec, schedule.next_after(base))
        for index, (spec, schedule) in enumerate(zip(specs, schedules, strict=True))
    ]
    async with db.write() as conn:
        for chunk in range(0, len(rows), INSERT_CHUNK):
            await conn.execute(insert(Job.__table__), rows[chunk : chunk + INSERT_CHUNK])
    return base, time.perf_counter() - started


# --------------------------------------------------------------------------------------
# The instrumented scheduler
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One ``_fire_batch`` call that handled due jobs."""

    committed: datetime
    seconds: float
    handled: int
    created: int


class TimedScheduler(Scheduler):
    """The real scheduler, recording each batch's commit moment and each tick."""

    def __init__(self, db: Database, batch_size: int) -> None:
        super().__init__(db, SystemClock(), Signals(), batch_size=batch_size)
        self.batches: list[Batch] = []
        self.ticks_started = self.ticks_done = 0
        self.in_tick = False

    async def tick(self) -> datetime | None:
        self.in_tick = True
        self.ticks_started += 1
        try:
            return await super().tick()
        finally:
            self.in_tick = False
            self.ticks_done += 1

    async def _fire_batch(self, now: datetime) -> int:
        fired_before = self.fired
        started = time.perf_counter()
        handled = await super()._fire_batch(now)
        committed = self.clock.now()  # the transaction is over: the Run rows exist
        if handled:
            seconds = time.perf_counter() - started
            self.batches.append(Batch(committed, seconds, handled, self.fired - fired_before))
        return handled

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Wake the loop, let that tick finish, cancel it while it sleeps."""
        target = self.ticks_started + 1  # a tick that starts after this moment
        self.signals.scheduler_wake.set()
        while self.ticks_done < target or self.in_tick:
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------


@dataclass
class Window:
    base: datetime
    end: datetime
    stop: datetime
    cpu_percent: float
    batches: list[Batch]


async def fire_window(db: Database, base: datetime, minutes: float, batch_size: int) -> Window:
    """Run the loop over (base, base + minutes], then stop it cleanly."""
    scheduler = TimedScheduler(db, batch_size)
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(scheduler.run(), name="scheduler")
    end = base + timedelta(minutes=minutes)
    await sleep_until(end + STOP_WAKE_AFTER)
    stop = datetime.now(UTC)
    await scheduler.stop(task)
    cpu = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return Window(base, end, stop, cpu, scheduler.batches)


@dataclass(frozen=True)
class Idle:
    seconds: float
    cpu_percent: float
    wakes: int


async def measure_idle(db: Database, seconds: float, batch_size: int) -> Idle:
    async with db.write() as conn:
        await conn.execute(update(Job).values(next_run_at=datetime.now(UTC) + IDLE_AHEAD))
    scheduler = TimedScheduler(db, batch_size)
    task = asyncio.create_task(scheduler.run(), name="idle-scheduler")
    while scheduler.ticks_done < 1:
        await asyncio.sleep(0.01)
    await asyncio.sleep(SETTLE_S)
    gc.collect()
    ticks0 = scheduler.ticks_started
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    wakes = scheduler.ticks_started - ticks0
    await scheduler.stop(task)
    return Idle(wall, 100 * cpu / wall, wakes)


async def plan_cost(db: Database) -> float:
    """Milliseconds of pure-Python :func:`plan` per due job (no database)."""
    async with db.read() as conn:
        jobs = (await conn.execute(select(Job).order_by(Job.id).limit(PLAN_SAMPLE))).all()
    started = time.perf_counter()
    for job in jobs:
        plan(job, job.next_run_at)
    return 1000 * (time.perf_counter() - started) / max(1, len(jobs))


# --------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    job_id: int
    scheduled_for: datetime
    batch: int
    lateness: float  # seconds


async def read_runs(db: Database, batches: list[Batch]) -> list[Fired]:
    """Every Run row, with the commit moment of the batch that created it."""
    async with db.read() as conn:
        rows = (await conn.execute(select(Run.job_id, Run.scheduled_for).order_by(Run.id))).all()
    owners = [index for index, batch in enumerate(batches) for _ in range(batch.created)]
    if len(owners) != len(rows):
        raise RuntimeError(f"{len(rows)} Run rows but the batches created {len(owners)}")
    return [
        Fired(job_id, when, owner, (batches[owner].committed - when).total_seconds())
        for (job_id, when), owner in zip(rows, owners, strict=True)
    ]


@dataclass(frozen=True)
class Check:
    expected: int
    missing: int
    duplicates: int
    unexpected: int
    after_window: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.unexpected)


async def check_runs(db: Database, fired: list[Fired], window: Window) -> Check:
    async with db.read() as conn:
        jobs = (await conn.execute(select(Job.id, Job.cron_expression, Job.timezone))).all()
    cache: dict[tuple[str, str], Schedule | None] = {}
    expected: set[tuple[int, datetime]] = set()
    possible: set[tuple[int, datetime]] = set()
    for job in jobs:
        key = (job.cron_expression, job.timezone)
        if key not in cache:
            cache[key] = schedule_of(job)
        schedule = cache[key]
        assert schedule is not None
        for moment in schedule.occurrences(window.base, window.stop):
            possible.add((job.id, moment))
            if moment <= window.end:
                expected.add((job.id, moment))
    pairs = [(run.job_id, run.scheduled_for) for run in fired]
    seen = set(pairs)
    return Check(
        expected=len(expected),
        missing=len(expected - seen),
        duplicates=len(pairs) - len(seen),
        unexpected=len(seen - possible),
        after_window=sum(1 for _, when in seen if when > window.end),
    )


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


@dataclass(frozen=True)
class Lateness:
    count: int
    p50: float
    p90: float
    p99: float
    max: float


def lateness_of(fired: list[Fired]) -> Lateness:
    values = [run.lateness for run in fired] or [float("nan")]
    return Lateness(
        len(fired),
        percentile(values, 0.50),
        percentile(values, 0.90),
        percentile(values, 0.99),
        max(values),
    )


# --------------------------------------------------------------------------------------
# One backend
# --------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    name: str
    lateness: Lateness
    idle: Idle
    check: Check
    window: Window

    @property
    def goals_met(self) -> bool:
        return self.lateness.p99 < LATENESS_GOAL_S and self.idle.cpu_percent < IDLE_CPU_GOAL_PERCENT


async def bench_backend(
    name: str, url: str, specs: list[JobSpec], args: argparse.Namespace
) -> BackendResult:
    print(f"\n== {name} ==")
    db = Database(url)
    try:
        started = time.perf_counter()
        await upgrade(db)
        await insert_owner(db)
        migrated = time.perf_counter() - started
        started = time.perf_counter()
        schedules = [cron_of(spec) for spec in specs]
        built = time.perf_counter() - started
        base, inserted = await insert_jobs(db, specs, schedules, args.align)
        print(
            f"setup: migrated in {migrated:.1f} s; {len(specs):,} schedules built in "
            f"{built:.1f} s; jobs inserted in {inserted:.1f} s"
        )
        if datetime.now(UTC) >= base:
            print("  warning: the insert ran past base; the first firings may be late")
        window = await fire_window(db, base, args.minutes, args.batch_size)
        fired = await read_runs(db, window.batches)
        check = await check_runs(db, fired, window)
        result = BackendResult(name, lateness_of(fired), Idle(0, 0, 0), check, window)
        print_window(result, fired)
        print_batches(window.batches, await plan_cost(db))
        result.idle = await measure_idle(db, args.idle_seconds, args.batch_size)
        print_idle(result.idle)
        return result
    finally:
        await db.dispose()


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{1000 * seconds:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def clock_time(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


def print_window(result: BackendResult, fired: list[Fired]) -> None:
    window, check, late = result.window, result.check, result.lateness
    print(
        f"window: {clock_time(window.base)} → {clock_time(window.end)} UTC "
        f"({(window.end - window.base).total_seconds():.0f} s), loop stopped at "
        f"{clock_time(window.stop)}; loop CPU during the window {window.cpu_percent:.1f} % "
        "of a core"
    )
    print(
        f"checks: {check.expected:,} occurrences due in the window, {check.missing} missing, "
        f"{check.duplicates} duplicate (job, scheduled_for), {check.unexpected} not an "
        f"occurrence; {check.after_window} fired after the window (measured too)"
    )
    print(
        f"lateness over {late.count:,} runs: p50 {ms(late.p50)}, p90 {ms(late.p90)}, "
        f"p99 {ms(late.p99)}, max {ms(late.max)}"
    )
    by_moment: dict[datetime, list[Fired]] = defaultdict(list)
    for run in fired:
        by_moment[run.scheduled_for].append(run)
    print("  boundary (UTC)   runs  batches  first run  whole burst")
    for moment in sorted(by_moment):
        runs = by_moment[moment]
        lateness = [run.lateness for run in runs]
        batches = len({run.batch for run in runs})
        print(
            f"  {clock_time(moment):<14} {len(runs):>6,}  {batches:>7}  "
            f"{ms(min(lateness)):>9}  {ms(max(lateness)):>11}"
        )


def print_batches(batches: list[Batch], plan_ms: float) -> None:
    handled = sum(batch.handled for batch in batches)
    seconds = sum(batch.seconds for batch in batches)
    if not handled:
        return
    print(
        f"batches: {len(batches)} (largest {max(b.handled for b in batches)} jobs), "
        f"{1000 * seconds / handled:.2f} ms per due job; of which plan() (cron schedule + "
        f"next occurrence, pure Python) ≈ {plan_ms:.2f} ms"
    )


def print_idle(idle: Idle) -> None:
    print(
        f"idle: {idle.seconds:.1f} s with nothing due for an hour: CPU {idle.cpu_percent:.3f} % "
        f"of a core, {idle.wakes} wake-up(s) (fallback poll every 30 s)"
    )


def print_summary(results: list[BackendResult]) -> None:
    print("\nsummary")
    header = (
        f"  {'backend':<11}{'runs':>7}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}"
        f"{'idle CPU':>11}  goals"
    )
    print(header)
    for result in results:
        late = result.lateness
        print(
            f"  {result.name:<11}{late.count:>7,}{ms(late.p50):>10}{ms(late.p90):>10}"
            f"{ms(late.p99):>10}{ms(late.max):>10}{result.idle.cpu_percent:>9.3f} %  "
            f"{'met' if result.goals_met else 'NOT met'}"
        )
    print(
        f"  goals: p99 lateness < {LATENESS_GOAL_S:.0f} s; idle CPU < "
        f"{IDLE_CPU_GOAL_PERCENT:.0f} % of a core"
    )


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=3.0, help="firing window (real time)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="idle CPU phase")
    parser.add_argument("--jobs", type=int, default=REFERENCE_JOBS, help="active cron jobs")
    parser.add_argument("--batch-size", type=int, default=500, help="Scheduler batch_size")
    parser.add_argument(
        "--backend", choices=("both", "sqlite", "postgresql"), default="both", help="databases"
    )
    parser.add_argument(
        "--align",
        type=int,
        default=0,
        metavar="N",
        help="start the window just before the next minute that is a multiple of N "
        "(15 or 30 catches the largest bursts; waits up to N minutes)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the job mix")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> list[BackendResult]:
    specs = build_specs(args.jobs, random.Random(args.seed))
    print_mix(specs)
    print_hour_profile(specs)
    results = []
    if args.backend in ("both", "sqlite"):
        with tempfile.TemporaryDirectory(prefix="ghapp-bench-sched-") as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'ghapp.db'}"
            results.append(await bench_backend("sqlite", url, specs, args))
    if args.backend in ("both", "postgresql"):
        url = await create_pg_database()
        try:
            results.append(await bench_backend("postgresql", url, specs, args))
        finally:
            await drop_pg_database()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("ghapp scheduler benchmark")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, uvloop; "
        f"{args.minutes:g} min firing window, {args.idle_seconds:g} s idle, "
        f"batch size {args.batch_size}"
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(args))
    print_summary(results)
    return 0 if all(result.check.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
