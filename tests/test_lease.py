"""The leased-claim helper on its own, on SQLite and PostgreSQL: a table of chores made for
the test, claimed by workers under leases on a clock moved by hand (no sleeps)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update

from ghapp.clock import FakeClock
from ghapp.config.sync import CONFIG_SYNCS
from ghapp.db import Database
from ghapp.db.lease import (
    LeasedQueue,
    LeasedTable,
    RetryBackoff,
    equal_jitter,
    full_jitter,
    statements,
)
from ghapp.db.types import UTCDateTime
from ghapp.notify.dispatch import NOTIFICATIONS
from ghapp.runqueue.sql import RUNS

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)

metadata = MetaData()
CHORES = Table(
    "chores",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("run_after", UTCDateTime(), nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("note", String(64)),
)
# An outbox-like table: the claim's deadline kept in the due column, no owner column.
LETTERS = Table(
    "letters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("send_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
)

CHORE_QUEUE = LeasedTable(
    name="chores",
    ready="waiting",
    held="working",
    due="run_after",
    order=("run_after", "id"),
    returning=("id", "attempts", "status"),
    condition="c.kind <> :skipped_kind",
    on_claim=("attempts = attempts + 1",),
    on_retry=("note = :note",),
    on_finish=("note = :note",),
)
LETTER_QUEUE = LeasedTable(
    name="letters",
    ready="pending",
    held="sending",
    due="send_at",
    lease="send_at",
    owner=None,
    order=("send_at", "id"),
    on_claim=("attempts = attempts + 1",),
)


@pytest.fixture
async def tables(db: Database) -> Database:
    async with db.write() as conn:
        await conn.run_sync(metadata.create_all)
    return db


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


async def add_chores(db: Database, count: int, **values: object) -> list[int]:
    row = {"status": "waiting", "run_after": NOW, "attempts": 0, "kind": "plain", **values}
    ids = []
    async with db.write() as conn:
        for _ in range(count):
            result = await conn.execute(CHORES.insert().values(**row))
            ids.append(result.inserted_primary_key[0])
    return ids


async def chore(db: Database, chore_id: int) -> object:
    async with db.read() as conn:
        return (await conn.execute(select(CHORES).where(CHORES.c.id == chore_id))).one()


def worker(db: Database, owner: str) -> LeasedQueue:
    return LeasedQueue(db, CHORE_QUEUE, owner, LEASE)


async def claim(queue: LeasedQueue, clock: FakeClock):
    return await queue.claim(clock.now(), skipped_kind="never")


# -- claiming --------------------------------------------------------------------------------


async def test_competing_claimers_never_get_the_same_row(tables, clock) -> None:
    ids = await add_chores(tables, 24)
    workers = [worker(tables, f"w{i}") for i in range(4)]
    got: list[tuple[str, int]] = []

    async def drain(queue: LeasedQueue) -> None:
        while (row := await claim(queue, clock)) is not None:
            got.append((queue.owner or "", row.id))

    await asyncio.gather(*(drain(queue) for queue in workers))
    assert sorted(chore_id for _, chore_id in got) == ids  # each once, none left out
    for owner, chore_id in got:
        row = await chore(tables, chore_id)
        assert (row.status, row.lease_owner, row.attempts) == ("working", owner, 1)
        assert row.lease_expires_at == NOW + LEASE


# PostgreSQL only: SQLite has one writer at a time, its write transaction is the lock.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_row_locked_by_a_claim_in_flight_is_skipped_not_waited_for(tables, clock) -> None:
    first, second = await add_chores(tables, 2)
    one, two = worker(tables, "one"), worker(tables, "two")
    async with tables.write() as conn:  # the first claim is not committed yet
        [mine] = await one.claim_in(conn, clock.now(), skipped_kind="never")
        theirs = await asyncio.wait_for(claim(two, clock), timeout=30)
    assert (mine.id, theirs.id) == (first, second)


async def test_rows_come_in_the_declared_order_and_not_before_they_are_due(tables, clock) -> None:
    [later] = await add_chores(tables, 1, run_after=NOW + timedelta(seconds=5))
    [sooner] = await add_chores(tables, 1)  # queued after, due before: it comes first
    queue = worker(tables, "w")
    assert (await claim(queue, clock)).id == sooner
    assert await claim(queue, clock) is None  # the other is not due yet
    assert await queue.next_due() == NOW + timedelta(seconds=5)
    clock.advance(timedelta(seconds=5))
    assert (await claim(queue, clock)).id == later


async def test_the_declared_condition_and_its_parameters_are_part_of_the_claim(
    tables, clock
) -> None:
    [odd] = await add_chores(tables, 1, kind="odd")
    [plain] = await add_chores(tables, 1, run_after=NOW + timedelta(seconds=1))
    clock.advance(timedelta(seconds=1))
    queue = worker(tables, "w")
    assert (await queue.claim(clock.now(), skipped_kind="odd")).id == plain
    assert await queue.claim(clock.now(), skipped_kind="odd") is None
    assert (await queue.claim(clock.now(), skipped_kind="plain")).id == odd


# -- leases ----------------------------------------------------------------------------------


async def test_a_lapsed_lease_is_taken_over_and_the_old_holder_learns_it(tables, clock) -> None:
    [chore_id] = await add_chores(tables, 1)
    first, second = worker(tables, "first"), worker(tables, "second")
    assert (await claim(first, clock)).attempts == 1
    clock.advance(LEASE)
    assert await claim(second, clock) is None  # the lease holds until its deadline
    clock.advance(timedelta(microseconds=1))  # the first worker died: no heartbeat came
    taken = await claim(second, clock)
    assert (taken.id, taken.attempts, taken.status) == (chore_id, 2, "working")
    assert not await first.heartbeat(chore_id, clock.now())
    assert await second.heartbeat(chore_id, clock.now())
    row = await chore(tables, chore_id)
    assert (row.lease_owner, row.lease_expires_at) == ("second", clock.now() + LEASE)


async def test_a_heartbeat_renews_only_its_holders_lease(tables, clock) -> None:
    [chore_id] = await add_chores(tables, 1)
    holder, other = worker(tables, "holder"), worker(tables, "other")
    await claim(holder, clock)
    clock.advance(timedelta(seconds=50))
    assert not await other.heartbeat(chore_id, clock.now())
    assert (await chore(tables, chore_id)).lease_expires_at == NOW + LEASE  # untouched
    assert await holder.heartbeat(chore_id, clock.now())
    assert (await chore(tables, chore_id)).lease_expires_at == clock.now() + LEASE
    clock.advance(timedelta(seconds=30))  # past the first deadline, within the renewed one
    assert await claim(other, clock) is None


async def test_release_returns_the_row_due_as_it_was(tables, clock) -> None:
    [chore_id] = await add_chores(tables, 1)
    holder, other = worker(tables, "holder"), worker(tables, "other")
    await claim(holder, clock)
    assert not await other.release(chore_id)  # only the holder can hand it back
    assert await holder.release(chore_id)
    row = await chore(tables, chore_id)
    assert (row.status, row.lease_owner, row.lease_expires_at) == ("waiting", None, None)
    assert row.run_after == NOW
    assert not await holder.heartbeat(chore_id, clock.now())  # no longer held
    assert (await claim(other, clock)).id == chore_id  # at once, by anyone


async def test_retry_hands_the_row_back_due_later_and_finish_ends_it(tables, clock) -> None:
    [chore_id] = await add_chores(tables, 1)
    holder, other = worker(tables, "holder"), worker(tables, "other")
    await claim(holder, clock)
    due = clock.now() + timedelta(seconds=30)
    assert not await other.retry(chore_id, due, note="not mine")
    assert await holder.retry(chore_id, due, note="GitHub was down")
    row = await chore(tables, chore_id)
    assert (row.status, row.run_after, row.lease_owner, row.note) == (
        "waiting",
        due,
        None,
        "GitHub was down",
    )
    assert await holder.next_due() == due
    assert await claim(other, clock) is None
    clock.set(due)
    assert (await claim(other, clock)).attempts == 2
    assert not await holder.finish(chore_id, "done", note="not mine")
    async with tables.write() as conn:  # inside the caller's transaction
        assert await other.finish(chore_id, "done", conn, note="all good")
    row = await chore(tables, chore_id)
    assert (row.status, row.lease_owner, row.lease_expires_at, row.note) == (
        "done",
        None,
        None,
        "all good",
    )
    assert await other.next_due() is None
    assert await claim(other, clock) is None


async def test_next_due_is_the_earliest_due_row_or_lapsing_lease(tables, clock) -> None:
    [held, waiting] = await add_chores(tables, 2)
    async with tables.write() as conn:
        await conn.execute(
            update(CHORES)
            .where(CHORES.c.id == waiting)
            .values(run_after=NOW + timedelta(minutes=5))
        )
    queue = worker(tables, "w")
    assert await queue.next_due() == NOW
    assert (await claim(queue, clock)).id == held
    assert await queue.next_due() == NOW + LEASE  # the lease lapses before the other is due
    for beat in range(1, 11):  # its holder keeps it for ten minutes, a heartbeat a minute
        assert await queue.heartbeat(held, NOW + beat * LEASE)
    assert await queue.next_due() == NOW + timedelta(minutes=5)


async def test_a_lease_that_ran_out_is_not_renewed_by_a_late_heartbeat(tables, clock) -> None:
    [held] = await add_chores(tables, 1)
    queue = worker(tables, "w")
    assert (await claim(queue, clock)).id == held
    assert not await queue.heartbeat(held, NOW + LEASE + timedelta(seconds=1))
    # Nobody took it yet, yet its holder is told to stop: the row is claimable again.
    clock.advance(LEASE + timedelta(seconds=2))
    assert (await claim(worker(tables, "w2"), clock)).id == held


# -- a lease kept in the due column (the outbox) ---------------------------------------------


async def test_a_lease_in_the_due_column_is_claimable_again_at_its_deadline(tables, clock) -> None:
    async with tables.write() as conn:
        for _ in range(3):
            await conn.execute(LETTERS.insert().values(status="pending", send_at=NOW, attempts=0))
    outbox = LeasedQueue(tables, LETTER_QUEUE, None, LEASE)
    async with tables.write() as conn:
        batch = await outbox.claim_in(conn, clock.now(), limit=2)
    assert [row.id for row in batch] == [1, 2]
    async with tables.read() as conn:
        rows = (await conn.execute(select(LETTERS).order_by(LETTERS.c.id))).all()
    assert [(r.status, r.send_at, r.attempts) for r in rows] == [
        ("sending", NOW + LEASE, 1),
        ("sending", NOW + LEASE, 1),
        ("pending", NOW, 0),
    ]
    assert await outbox.next_due() == NOW
    assert [row.id for row in await _claim_all(outbox, clock)] == [3]
    assert await _claim_all(outbox, clock) == []
    clock.advance(LEASE)  # the sender died mid-send: due again at the deadline
    assert [row.id for row in await _claim_all(outbox, clock)] == [1, 2, 3]
    with pytest.raises(TypeError, match="no owner column"):
        await outbox.heartbeat(1, clock.now())


async def _claim_all(outbox: LeasedQueue, clock: FakeClock) -> list:
    async with outbox.db.write() as conn:
        return await outbox.claim_in(conn, clock.now(), limit=10)


# -- declarations and retry timing ------------------------------------------------------------


def test_declarations_are_identifiers_and_an_owner_column_needs_an_owner() -> None:
    with pytest.raises(ValueError, match="not SQL identifiers"):
        LeasedTable(name="runs; DROP TABLE runs", ready="a", held="b", due="d", order=("id",))
    with pytest.raises(ValueError, match="give an owner"):
        LeasedQueue(Database("sqlite+aiosqlite://"), CHORE_QUEUE, None, LEASE)


@pytest.mark.parametrize("table", [RUNS, NOTIFICATIONS, CONFIG_SYNCS, CHORE_QUEUE])
def test_each_queue_gets_its_statements_from_its_declaration(table: LeasedTable) -> None:
    for sqlite in (True, False):
        made = statements(table, sqlite)
        claim_sql = str(made.claim)
        assert claim_sql.strip().startswith(f"UPDATE {table.name} SET")
        assert ("FOR UPDATE SKIP LOCKED" in claim_sql) is not sqlite
        assert (made.heartbeat is None) is (table.owner is None)


def test_retry_backoff_doubles_up_to_its_cap_with_the_queues_jitter() -> None:
    backoff = RetryBackoff(timedelta(seconds=10), timedelta(minutes=2), jitter=lambda cap: cap)
    assert [backoff.delay(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 80, 120]
    assert backoff.delay(30) == timedelta(minutes=2)
    for _ in range(200):
        assert 0 <= full_jitter(8.0) <= 8.0
        assert 4.0 <= equal_jitter(8.0) <= 8.0
    equal = RetryBackoff(timedelta(seconds=5), timedelta(minutes=10))  # the default jitter
    assert all(timedelta(seconds=10) <= equal.delay(3) <= timedelta(seconds=20) for _ in range(200))
