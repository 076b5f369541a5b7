"""Faults injected into real ghapp processes while deliveries arrive and runs execute.

* PostgreSQL's connections are cut twice (0.3 s, then 3 s) by a TCP proxy between ghapp and
  the machine's PostgreSQL (the service itself is never restarted).
* SQLite's disk fills up (a small tmpfs) and is freed again.
* SIGTERM arrives during a database outage, and after one.

Afterwards every delivery answered ``202`` has exactly one completed run and exactly one
comment, the deliveries refused meanwhile were refused with ``503`` (never ``500``) and
stored nothing, and the worker slots are all alive. Sessions are the Claude Code stand-in's
recorded stream replayed by bash (what is under test here is ghapp around the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from ghapp.db import Database
from ghapp.db.models import Session
from ghapp.standins.claude import write_replay_executable
from ghapp.standins.cluster import (
    Loopback,
    deliver,
    free_port,
    issue_deliveries,
    loopback,
    outcome,
    ready,
    wait_until,
)
from ghapp.standins.tcpfault import TcpFaultProxy

DRAIN_S = 120  # an upper bound for a failing test, not a synchronisation delay
FAST_LEASES = {"GHAPP_WORKER_LEASE_SECONDS": "6", "GHAPP_WORKER_HEARTBEAT_SECONDS": "2"}


@contextlib.contextmanager
def through_proxy(url: str) -> Iterator[tuple[TcpFaultProxy, str]]:
    target = make_url(url)
    with TcpFaultProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        yield proxy, target.set(port=proxy.port).render_as_string(hide_password=False)


def settled(world: Loopback, direct_url: str, stored: set[int]) -> bool:
    result = asyncio.run(outcome(direct_url))
    busy = result["statuses"].get("queued", 0) + result["statuses"].get("running", 0)
    finished = sum(
        1 for n, count in world.bot_comments_per_issue().items() if n in stored and count
    )
    return busy == 0 and finished >= len(stored)


def assert_each_accepted_delivery_ran_once(
    world: Loopback, direct_url: str, answers: dict[int, int]
) -> None:
    assert set(answers.values()) <= {202, 503}, answers  # never a 500, never no answer
    stored = {n for n, status in answers.items() if status == 202}
    result = asyncio.run(outcome(direct_url))
    assert result["deliveries"] == len(stored)
    assert result["statuses"] == {"completed": len(stored)}, result["statuses"]
    assert result["runs_per_delivery"] == {f"delivery-{n}": 1 for n in stored}
    comments = world.bot_comments_per_issue()
    assert comments == {n: 1 for n in stored}, comments
    finished = [c for c in world.github.comments if c["user"]["type"] == "Bot"]
    assert all("✅ **Triage** finished." in c["body"] for c in finished)


def session_started(url: str) -> bool:
    """The session is named just before its process starts; after that no database write
    stands between the session and its end."""

    async def named() -> bool:
        db = Database(url)
        try:
            async with db.read() as conn:
                found = await conn.scalar(select(Session.agent_session_id).limit(1))
                return found is not None
        finally:
            await db.dispose()

    return asyncio.run(named())


def live_slots(base: str) -> int:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    match = re.search(r"^ghapp_worker_slots_live (\d+)", text, re.M)
    assert match, text[-2000:]
    return int(float(match.group(1)))


# -- PostgreSQL connections cut --------------------------------------------------------------


def test_postgresql_cut_twice_while_deliveries_arrive_and_runs_execute(pg_url, tmp_path) -> None:
    with (
        through_proxy(pg_url) as (proxy, via_proxy),
        loopback(
            tmp_path,
            via_proxy,
            issues=70,
            direct_url=pg_url,
            session_delay_s=0.3,
            settings=FAST_LEASES,
        ) as world,
    ):
        port = free_port()
        server = world.serve("serve", port)
        base = f"http://127.0.0.1:{port}"
        items = issue_deliveries(range(1, 71))

        async def scenario() -> dict[int, int]:
            answers = await deliver(base, items[:20], rate=20)
            short = proxy.cut_for(0.3)
            answers |= await deliver(base, items[20:40], rate=20)
            assert short.wait(10)
            long = proxy.cut_for(3.0)
            async with httpx.AsyncClient() as http:
                during = await http.get(f"{base}/readyz", timeout=10)
            assert during.status_code == 503 and during.json()["reason"].startswith("database: ")
            answers |= await deliver(base, items[40:60], rate=20)
            assert long.wait(10)
            answers |= await deliver(base, items[60:], rate=20)
            return answers

        answers = asyncio.run(scenario())
        assert proxy.cut_connections > 0 and list(answers.values()).count(503) > 0
        stored = {n for n, status in answers.items() if status == 202}
        wait_until(lambda: settled(world, pg_url, stored), DRAIN_S, "every stored run to end")
        assert_each_accepted_delivery_ran_once(world, pg_url, answers)
        assert ready(base) and live_slots(base) == 4
        assert server.alive()
        assert "unhandled error" not in server.output()


# -- SQLite's disk full -----------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file (remove it to free the disk)."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:
        while True:
            out.write(b"\0" * 65536)  # unbuffered: the write that fails is this one
    return filler


def test_sqlite_disk_full_while_deliveries_arrive(tmp_path) -> None:
    with small_disk(tmp_path / "disk", "24m") as disk:
        url = f"sqlite+aiosqlite:///{disk / 'ghapp.db'}"
        with loopback(tmp_path, url, issues=60, session_delay_s=0.2, settings=FAST_LEASES) as world:
            port = free_port()
            server = world.serve("serve", port)
            base = f"http://127.0.0.1:{port}"
            items = issue_deliveries(range(1, 61))
            answers = asyncio.run(deliver(base, items[:20], rate=20))
            filler = fill(disk)
            answers |= asyncio.run(deliver(base, items[20:40], rate=20))
            refused = httpx.get(f"{base}/readyz", timeout=5)
            filler.unlink()
            answers |= asyncio.run(deliver(base, items[40:], rate=20))
            stored = {n for n, status in answers.items() if status == 202}
            wait_until(lambda: settled(world, url, stored), DRAIN_S, "every stored run to end")
        assert refused.status_code == 503
        assert refused.json()["reason"] == ("database: OperationalError: database or disk is full")
        assert list(answers.values()).count(503) > 0
        assert_each_accepted_delivery_ran_once(world, url, answers)
        assert "database or disk is full" in server.output()
        assert "cannot rollback" not in server.output()


# -- SIGTERM during and after a database outage -------------------------------------------------


@pytest.mark.parametrize("when", ["during", "after"])
def test_sigterm_with_a_database_outage_exits_within_the_grace_and_the_session_is_taken_over(
    pg_url, tmp_path, when
) -> None:
    grace = 3
    with (
        through_proxy(pg_url) as (proxy, via_proxy),
        loopback(
            tmp_path,
            via_proxy,
            issues=1,
            direct_url=pg_url,
            session_delay_s=120,  # a session that is still running when SIGTERM comes
            settings={**FAST_LEASES, "GHAPP_SHUTDOWN_GRACE_SECONDS": str(grace)},
        ) as world,
    ):
        port = free_port()
        world.serve("web", port, "--no-worker")
        first = world.spawn("worker-1", "worker", "--concurrency", "1")
        [(delivery, number, body)] = issue_deliveries(range(1, 2))
        answers = asyncio.run(
            deliver(f"http://127.0.0.1:{port}", [(delivery, number, body)], rate=1)
        )
        assert answers == {1: 202}
        wait_until(lambda: session_started(pg_url), 60, "the session's process to start")

        proxy.cut()
        if when == "after":
            proxy.restore()
        began = time.monotonic()
        first.signal(signal.SIGTERM)
        status = first.wait(timeout=grace + 15)
        took = time.monotonic() - began
        assert status is not None, f"worker still running after {took:.1f} s:\n{first.output()}"
        print(f"SIGTERM {when} an outage: exited {status} after {took:.2f} s")
        assert grace * 0.9 <= took < grace + 12, took  # the session's grace, then bounded steps
        proxy.restore()

        fast = world.root / "fast"
        fast.mkdir()  # a folder of its own: the sandbox shows sessions only that
        quick = write_replay_executable(fast)
        world.spawn("worker-2", "worker", "--concurrency", "1", GHAPP_CLAUDE_BIN=str(quick))
        wait_until(lambda: settled(world, pg_url, {1}), DRAIN_S, "the run to be taken over")
        assert_each_accepted_delivery_ran_once(world, pg_url, answers)
