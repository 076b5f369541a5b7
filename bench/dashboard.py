"""Dashboard page latency with 1,000 jobs and 100,000 runs, on SQLite and PostgreSQL.

Run ``python bench/dashboard.py [--backend both] [--requests 100] [--jobs 1000] [--runs 100000]``.

Method
------
The data set, its loading and the server process are ``bench/api.py``'s (see its
docstring): the same jobs over four repositories, runs over 90 days of history with
sessions, PostgreSQL ``ANALYZE``d, SQLite as ghapp leaves it; the real app in its own
process (web only). The client signs in on ``/login`` with the admin token (a session
cookie, as a browser) and then, one request after the other on one keep-alive
connection, per page ``--warmup`` untimed requests and ``--requests`` timed ones (send →
body read):

* ``GET /``: the overview — scheduler status, today's counts and every job (all 1,000,
  grouped by repository, each with its schedule in words, last run and next run);
* ``GET /?fragment=live``: what an open overview re-fetches when runs change;
* ``GET /runs``: the newest page of the run history (50 runs);
* ``GET /runs?status=failed``: the history filtered by status;
* ``GET /runs/{id}``: a random run with its sessions (results rendered from Markdown).

Every answer must be 200 and hold what the page shows (the jobs' rows, 50 run rows). It
prints p50 / p95 / p99 / max per page and whether the goal holds: p95 < 150 ms.

Exit status: 0 whatever the goal says; 1 if an answer was wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import (  # bench/api.py, a script beside this one
    ADMIN_TOKEN,
    build_data,
    free_port,
    load,
    pg_database,
    server_main,
    wait_ready,
)

GOAL_MS = 150.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: httpx.Client) -> None:
    form = client.get("/login")
    token = CSRF.search(form.text)
    assert token, "no sign-in form"
    answer = client.post("/login", data={"csrf_token": token.group(1), "token": ADMIN_TOKEN})
    assert answer.status_code == 303, answer.status_code
    assert client.get("/").status_code == 200


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bench_backend(name: str, url: str, args: argparse.Namespace, directory: Path) -> list[str]:
    print(f"\n== {name} ==")
    data = build_data(args.jobs, args.runs, args.runs // 2, args.seed)
    migrated, inserted = asyncio.run(load(url, data))
    print(
        f"setup: {len(data.jobs):,} jobs, {len(data.runs):,} runs, {len(data.sessions):,} "
        f"sessions in {migrated + inserted:.1f} s"
    )
    port = free_port()
    values = {
        "database_url": url,
        "admin_token": ADMIN_TOKEN,
        "data_dir": str(directory / "d"),
        "webhook_secret": "bench-secret",
        "secret_key": None,
        "log_level": "warning",
    }
    server = multiprocessing.get_context("spawn").Process(target=server_main, args=(values, port))
    server.start()
    problems: list[str] = []
    rng = random.Random(args.seed + 2)
    run_ids = [row["id"] for row in data.runs]
    pages = {
        "GET /": (lambda: "/", lambda text: text.count('<tr id="job-') == len(data.jobs)),
        "GET /?fragment=live": (
            lambda: "/?fragment=live",
            lambda text: text.count('<tr id="job-') == len(data.jobs),
        ),
        "GET /runs": (lambda: "/runs", lambda text: text.count('<tr id="run-') == 50),
        "GET /runs?status=failed": (
            lambda: "/runs?status=failed",
            lambda text: text.count('data-status="failed"') == 50,
        ),
        "GET /runs/{id}": (
            lambda: f"/runs/{rng.choice(run_ids)}",
            lambda text: "<h1>Run #" in text,
        ),
    }
    try:
        base = f"http://127.0.0.1:{port}"
        if not wait_ready(base, server):
            return ["the server did not start"]
        with httpx.Client(base_url=base, timeout=60) as client:
            sign_in(client)
            print(f"{'page':<26} {'kB':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  goal")
            for label, (path, check) in pages.items():
                timings: list[float] = []
                size = 0
                for index in range(args.warmup + args.requests):
                    started = time.perf_counter()
                    answer = client.get(path())
                    elapsed = (time.perf_counter() - started) * 1000
                    if answer.status_code != 200 or not check(answer.text):
                        problems.append(f"{label}: {answer.status_code}, unexpected page")
                        break
                    size = len(answer.content)
                    if index >= args.warmup:
                        timings.append(elapsed)
                if not timings:
                    continue
                p95 = percentile(timings, 0.95)
                print(
                    f"{label:<26} {size / 1000:>7.1f} {statistics.median(timings):>6.1f}ms "
                    f"{p95:>6.1f}ms {percentile(timings, 0.99):>6.1f}ms {max(timings):>6.1f}ms"
                    f"  {'ok' if p95 < GOAL_MS else 'MISSED'}"
                )
    finally:
        if server.is_alive():
            server.terminate()
            server.join(timeout=30)
            if server.is_alive():
                server.kill()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
            problems += bench_backend("sqlite", url, args, directory)
        if args.backend in ("postgresql", "both"):
            url = asyncio.run(pg_database(create=True))
            try:
                problems += bench_backend("postgresql", url, args, directory)
            finally:
                asyncio.run(pg_database(create=False))
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
