"""Chaos: deliveries keep arriving while the database is cut twice and GitHub is down.

A real ``ghapp serve`` (web, scheduler, 4 worker slots) on PostgreSQL, reached through a TCP
proxy that can cut its connections (the machine's PostgreSQL is never restarted). GitHub is
the stand-in; sessions replay the Claude Code stand-in's stream (0.2 s each).

Scenario (defaults): 10 signed ``issues.opened`` deliveries a second for 60 s; at 10 s the
database is cut for 0.3 s; from 20 s GitHub answers 503 to everything for 30 s; at 30 s the
database is cut for 5 s. Then it waits for the backlog to drain.

Prints: answers by status, runs per stored delivery, comments per session, the time from
the last delivery until nothing is queued or running, and live worker slots before and
after. Run: ``python bench/chaos.py [--rate 10] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from ghapp.standins.cluster import deliver, free_port, issue_deliveries, loopback, outcome
from ghapp.standins.tcpfault import TcpFaultProxy

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def live_slots(base: str) -> int:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    match = re.search(r"^ghapp_worker_slots_live (\d+)", text, re.M)
    return int(float(match.group(1))) if match else -1


async def scenario(base: str, proxy: TcpFaultProxy, github, rate: float, seconds: float):
    """Send deliveries for ``seconds`` while the faults happen on their schedule."""
    items = issue_deliveries(range(1, int(rate * seconds) + 1))
    timeline: list[tuple[float, str]] = []
    began = time.monotonic()

    def note(what: str) -> None:
        timeline.append((time.monotonic() - began, what))

    async def faults() -> None:
        await asyncio.sleep(seconds * 10 / 60)  # pacing the scenario's timeline
        note("database cut (0.3 s)")
        await asyncio.to_thread(proxy.cut_for(0.3).wait, 10)
        await asyncio.sleep(seconds * 10 / 60)
        note("GitHub down (30 s)")
        github.start_outage(503)
        await asyncio.sleep(seconds * 10 / 60)
        note("database cut (5 s)")
        await asyncio.to_thread(proxy.cut_for(5.0).wait, 20)
        note("database back")
        await asyncio.sleep(max(0.0, seconds * 20 / 60 - 5))
        github.end_outage()
        note("GitHub back")

    answers, _ = await asyncio.gather(deliver(base, items, rate=rate), faults())
    note("last delivery sent")
    return answers, timeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they arrive")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make a database on")
    parser.add_argument("--drain-limit", type=float, default=600.0, help="give up after (s)")
    args = parser.parse_args()

    name = f"ghapp_chaos_{uuid.uuid4().hex[:8]}"
    admin = make_url(args.admin_url)
    asyncio.run(_admin(args.admin_url, f'CREATE DATABASE "{name}"'))
    direct = admin.set(drivername="postgresql+asyncpg", database=name)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ghapp-chaos-") as tmp,
            TcpFaultProxy(admin.host or "127.0.0.1", admin.port or 5432) as proxy,
        ):
            via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
            direct_url = direct.render_as_string(hide_password=False)
            issues = int(args.rate * args.seconds)
            with loopback(
                Path(tmp), via_proxy, issues=issues, direct_url=direct_url, session_delay_s=0.2
            ) as world:
                port = free_port()
                server = world.serve("serve", port, "--concurrency", "4")
                base = f"http://127.0.0.1:{port}"
                before = live_slots(base)
                answers, timeline = asyncio.run(
                    scenario(base, proxy, world.github, args.rate, args.seconds)
                )
                sent_done = time.monotonic()
                stored = {n for n, status in answers.items() if status == 202}
                drained = _drain(world, direct_url, stored, args.drain_limit)
                drain_s = time.monotonic() - sent_done
                after = live_slots(base)
                result = asyncio.run(outcome(direct_url))
                comments = world.bot_comments_per_issue()
                alive = server.alive()
        _report(answers, timeline, result, comments, stored, drained, drain_s, before, after)
        print(f"server alive at the end: {alive}; proxy cut {proxy.cut_connections} connections")
        return 0 if drained and alive else 1
    finally:
        asyncio.run(_admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _drain(world, direct_url: str, stored: set[int], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        statuses = asyncio.run(outcome(direct_url))["statuses"]
        busy = statuses.get("queued", 0) + statuses.get("running", 0)
        if busy == 0 and len(world.bot_comments_per_issue()) >= len(stored):
            return True
        time.sleep(0.2)  # polling the processes' progress, bounded by the limit
    return False


def _report(answers, timeline, result, comments, stored, drained, drain_s, before, after):
    print("timeline:")
    for at, what in timeline:
        print(f"  {at:6.1f} s  {what}")
    by_status = Counter(answers.values())
    print("answers:", ", ".join(f"{code}: {n}" for code, n in sorted(by_status.items())))
    runs = Counter(result["runs_per_delivery"].values())
    print("runs per stored delivery:", dict(sorted(runs.items())), f"(stored: {len(stored)})")
    print("runs by status:", dict(sorted(result["statuses"].items())))
    sessions = Counter(result["sessions_per_run"].values())
    print("sessions per run:", dict(sorted(sessions.items())))
    per_session = Counter(comments.values())
    missing = len(stored - set(comments))
    print("comments per session:", dict(sorted(per_session.items())), f"(missing: {missing})")
    state = "drained" if drained else "NOT drained"
    print(f"backlog {state} {drain_s:.1f} s after the last delivery")
    print(f"live worker slots: before {before}, after {after}")


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
