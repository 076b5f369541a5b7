"""Webhook delivery recovery: deliveries refused while the database was down come back.

GitHub sends nothing twice on its own. The GitHub stand-in sends deliveries to a live ghapp
as GitHub does and keeps each attempt; the database is taken away (PostgreSQL: a TCP proxy
that cuts its connections; SQLite: its disk filled), deliveries are answered ``503``, the
database comes back, and the recovery pass asks the stand-in to redeliver. Every event is
then stored and queues its run exactly once, and the next pass asks for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from gidgethub import BadRequest
from prometheus_client import generate_latest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ghapp.app import create_app
from ghapp.clock import FakeClock
from ghapp.db import Database
from ghapp.db.migrate import upgrade
from ghapp.db.models import Delivery, Redelivery, Run
from ghapp.github.app import GitHubApp
from ghapp.metrics import Metrics
from ghapp.settings import Settings
from ghapp.standins.cluster import free_port
from ghapp.standins.github import GitHubStandIn
from ghapp.standins.tcpfault import TcpFaultProxy
from ghapp.webhooks.recovery import Attempt, DeliveryRecovery, failed_guids
from tests.conftest import make_settings, run_in_thread
from tests.github_support import SkippingClock
from tests.support import SECRET, add_repository, load, send
from tests.test_faults import fill, small_disk

REPO = 186853002
INSTALLATION = 957387
APP_ID = 4242


def issue_opened(number: int) -> dict[str, Any]:
    """A distinct ``issues.opened`` payload per number (a body is stored once: by digest)."""
    data = copy.deepcopy(load("issues/opened.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["issue"]["number"] = number
    data["issue"]["id"] = 444500000 + number
    return data


def job_spec() -> dict[str, object]:
    return {
        "name": "triage new issues",
        "repo_id": REPO,
        "target_type": "issues",
        "command_id": "issue/triage",
        "event_triggers": [{"event": "issues.opened"}],
    }


def app_settings(db_url: str, tmp_path: Path, standin: GitHubStandIn, **more: object) -> Settings:
    return make_settings(
        db_url,
        tmp_path,
        app_id=standin.app_id,
        private_key=standin.private_key_pem,
        github_api_url=standin.base_url,
        **more,
    )


def recovery_of(
    settings: Settings, db: Database, clock: Any, owner: str = "replica-a"
) -> tuple[DeliveryRecovery, Metrics]:
    metrics = Metrics()
    github = GitHubApp(settings, clock)
    return DeliveryRecovery(settings, db, clock, github, metrics, owner), metrics


@contextlib.asynccontextmanager
async def ghapp_at(app: Any, port: int) -> AsyncIterator[str]:
    """``app`` served by uvicorn on ``port`` (known before it starts: GitHub's webhook URL
    must be set before a worker's start-up pass can redeliver to it)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped before starting")
        await asyncio.sleep(0.005)  # polling a flag uvicorn sets; not a timing assumption
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def ghapp_serving(app: Any) -> AsyncIterator[str]:
    async with ghapp_at(app, free_port()) as url:
        yield url


@pytest.fixture
async def standin() -> AsyncIterator[GitHubStandIn]:
    github = GitHubStandIn(app_id=APP_ID)
    async with github.serve():
        yield github


async def stored_per_guid(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(Delivery.delivery_id, func.count()).group_by(Delivery.delivery_id)
        )
        return {guid: count for guid, count in rows}


async def runs_per_delivery(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(select(Run.delivery_id, func.count()).group_by(Run.delivery_id))
        return {guid: count for guid, count in rows}


async def redelivery_rows(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(Redelivery).order_by(Redelivery.id))).all())


def attempts_asked(standin: GitHubStandIn) -> list[str]:
    return [r.path for r in standin.requests if r.method == "POST" and r.path.endswith("/attempts")]


def counter(metrics: Metrics, outcome: str) -> float:
    text = generate_latest(metrics.registry).decode()
    for line in text.splitlines():
        if line.startswith(f'ghapp_webhook_redeliveries_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


# -- the database away, and back ----------------------------------------------------------


@dataclass
class Outage:
    url: str  # the database ghapp is given
    direct_url: str  # the same database, not through the fault (for the test's own reads)
    cut: Callable[[], None]
    restore: Callable[[], None]


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "postgresql":
        pg_url = request.getfixturevalue("pg_url")
        target = make_url(pg_url)
        with TcpFaultProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            via = target.set(port=proxy.port).render_as_string(hide_password=False)
            yield Outage(via, pg_url, proxy.cut, proxy.restore)
        return
    with small_disk(tmp_path / "disk", "24m") as disk:
        url = f"sqlite+aiosqlite:///{disk / 'ghapp.db'}"

        async def migrate() -> None:
            db = Database(url)
            await upgrade(db)
            await db.dispose()

        run_in_thread(migrate())

        def cut() -> None:
            fill(disk)

        yield Outage(url, url, cut, (disk / "filler").unlink)


async def test_deliveries_refused_while_the_database_is_down_run_once_after_recovery(
    outage: Outage, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(outage.url, tmp_path, standin)
    db = Database(outage.direct_url)
    await add_repository(db)
    app_db, recovery_db = Database(outage.url), Database(outage.url)
    app = create_app(settings, db=app_db)
    await app.state.ghapp.jobs.create(job_spec(), actor="test")
    clock = SkippingClock()
    async with ghapp_serving(app) as base:
        standin.set_webhook(f"{base}/webhooks/github", SECRET)
        before = await standin.deliver("issues", issue_opened(1))
        outage.cut()
        refused = [await standin.deliver("issues", issue_opened(n)) for n in range(2, 6)]
        outage.restore()
        after = await standin.deliver("issues", issue_opened(6))

        recovery, metrics = recovery_of(settings, recovery_db, clock)
        first = await recovery.pass_once()
        await standin.hook_sends_settled()
        second = await recovery.pass_once()
        await standin.hook_sends_settled()

    assert (before["status_code"], after["status_code"]) == (202, 202)
    assert [d["status_code"] for d in refused] == [503] * 4
    assert (first.ran, first.requested, first.failed) == (True, 4, 0)
    assert (second.ran, second.requested, second.failed) == (True, 0, 0)
    assert len(attempts_asked(standin)) == 4  # one per refused GUID, never again
    for delivery in refused:
        attempts = standin.hook_deliveries(delivery["guid"])
        assert [(a["redelivery"], a["status_code"]) for a in attempts] == [
            (True, 202),
            (False, 503),
        ]
    guids = [d["guid"] for d in [before, *refused, after]]
    assert await stored_per_guid(db) == {guid: 1 for guid in guids}
    assert await runs_per_delivery(db) == {guid: 1 for guid in guids}
    rows = await redelivery_rows(db)
    assert sorted(r.guid for r in rows) == sorted(d["guid"] for d in refused)
    assert {(r.result, r.http_status, r.failed_status_code, r.event) for r in rows} == {
        ("requested", 202, 503, "issues")
    }
    assert counter(metrics, "requested") == 4 and counter(metrics, "failed") == 0
    for database in (db, app_db, recovery_db):
        await database.dispose()


# -- the listing: pages, window, what counts as failed --------------------------------------


async def test_the_listing_is_followed_page_by_page_and_stops_at_the_window(
    db_url: str, db: Database, standin: GitHubStandIn, tmp_path: Path
) -> None:
    """110 failed deliveries within the window (two pages of 100), 20 older ones beyond
    it: the 110 are redelivered, the older ones are not even listed past the page that
    reaches them."""
    settings = app_settings(
        db_url,
        tmp_path,
        standin,
        delivery_recovery_lookback_hours=2,
        delivery_recovery_per_minute=600,
    )
    clock = SkippingClock()
    now = clock.now()
    old = [
        standin.add_hook_delivery(
            "issues", issue_opened(n), status_code=503, delivered_at=now - timedelta(hours=5)
        )
        for n in range(1000, 1020)
    ]
    recent = [
        standin.add_hook_delivery(
            "issues", issue_opened(n), status_code=503, delivered_at=now - timedelta(minutes=30)
        )
        for n in range(1, 111)
    ]
    app = create_app(settings, db=db)
    async with ghapp_serving(app) as base:
        standin.set_webhook(f"{base}/webhooks/github", SECRET)
        recovery, _ = recovery_of(settings, db, clock)
        report = await recovery.pass_once()
        await standin.hook_sends_settled()

    listings = [r for r in standin.requests if r.path == "/app/hook/deliveries"]
    assert [r.query.get("per_page") for r in listings] == ["100", "100"]
    assert "cursor" not in listings[0].query and listings[1].query["cursor"].startswith("v1_")
    assert all(r.auth == "app-jwt" and r.status == 200 for r in listings)
    assert report.requested == 110 and report.listed == 110
    assert await stored_per_guid(db) == {d["guid"]: 1 for d in recent}
    assert all(len(standin.hook_deliveries(d["guid"])) == 1 for d in old)


async def test_redeliveries_are_paced_by_the_rate_setting(
    db: Database, db_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(db_url, tmp_path, standin, delivery_recovery_per_minute=12)
    clock = SkippingClock()
    for n in range(1, 6):
        standin.add_hook_delivery("issues", issue_opened(n), status_code=0)
    recovery, _ = recovery_of(settings, db, clock)
    first = await recovery.pass_once()
    for n in range(6, 8):
        standin.add_hook_delivery("issues", issue_opened(n), status_code=502)
    clock.advance(timedelta(seconds=1))  # the next pass comes 1 s after the last request
    second = await recovery.pass_once()

    assert (first.requested, second.requested) == (5, 2)
    # 12 a minute: 5 s between two requests, in a pass and from one pass to the next.
    assert clock.slept == [5.0, 5.0, 5.0, 5.0, 4.0, 5.0]
    times = [row.requested_at for row in await redelivery_rows(db)]
    assert all(b - a >= timedelta(seconds=5) for a, b in itertools.pairwise(times))


async def test_the_first_pass_looks_back_to_the_last_stored_delivery_then_to_the_last_pass(
    db: Database, db_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(db_url, tmp_path, standin)
    app = create_app(settings, db=db)
    clock = SkippingClock()
    async with ghapp_serving(app) as base:
        standin.set_webhook(f"{base}/webhooks/github", SECRET)
        stored = await standin.deliver("issues", issue_opened(1))  # received now
        now = clock.now()
        before = standin.add_hook_delivery(  # failed long before the last stored delivery
            "issues", issue_opened(2), status_code=503, delivered_at=now - timedelta(hours=2)
        )
        since = standin.add_hook_delivery(
            "issues", issue_opened(3), status_code=503, delivered_at=now - timedelta(minutes=5)
        )
        recovery, _ = recovery_of(settings, db, clock)
        first = await recovery.pass_once()
        await standin.hook_sends_settled()
        clock.advance(timedelta(hours=1))
        late = standin.add_hook_delivery(  # after the first pass began, and an hour before now
            "issues", issue_opened(4), status_code=503, delivered_at=now + timedelta(minutes=1)
        )
        second = await recovery.pass_once()
        await standin.hook_sends_settled()

    assert stored["status_code"] == 202
    assert first.since is not None and now - first.since < timedelta(minutes=11)
    assert second.since is not None and second.since < now
    assert (first.requested, second.requested) == (1, 1)
    assert sorted(r.guid for r in await redelivery_rows(db)) == sorted(
        [since["guid"], late["guid"]]
    )
    assert len(standin.hook_deliveries(before["guid"])) == 1  # never asked for


def test_a_guid_with_any_successful_attempt_is_not_failed() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def attempt(n: int, guid: str, code: int, minutes: int) -> Attempt:
        return Attempt(n, guid, at + timedelta(minutes=minutes), code, "issues", "opened", n > 1)

    chosen = failed_guids(
        [
            attempt(1, "a", 503, 0),
            attempt(2, "a", 200, 5),  # a later attempt succeeded
            attempt(3, "b", 503, 0),
            attempt(4, "b", 0, 9),  # failed again, later: the latest failure is kept
            attempt(5, "c", 302, 0),  # 3xx counts as success, as GitHub's filter has it
            attempt(6, "d", 401, 0),
        ]
    )
    assert {guid: a.id for guid, a in chosen.items()} == {"b": 4, "d": 6}


async def test_a_delivery_that_succeeded_on_a_later_attempt_is_not_redelivered(
    db: Database, db_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(db_url, tmp_path, standin)
    clock = SkippingClock()
    now = clock.now()
    saved = standin.add_hook_delivery(
        "issues", issue_opened(1), status_code=503, delivered_at=now - timedelta(minutes=3)
    )
    standin.add_hook_delivery(
        "issues",
        issue_opened(1),
        status_code=202,
        guid=saved["guid"],
        redelivery=True,
        delivered_at=now - timedelta(minutes=2),
    )
    lost = standin.add_hook_delivery("issues", issue_opened(2), status_code=503)
    recovery, _ = recovery_of(settings, db, clock)
    report = await recovery.pass_once()

    assert report.requested == 1
    assert attempts_asked(standin) == [f"/app/hook/deliveries/{lost['id']}/attempts"]
    assert [r.guid for r in await redelivery_rows(db)] == [lost["guid"]]


async def test_a_refused_redelivery_is_counted_recorded_and_never_asked_again(
    db: Database, db_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(db_url, tmp_path, standin)
    clock = SkippingClock()
    lost = standin.add_hook_delivery("issues", issue_opened(1), status_code=503)
    standin.inject("POST", r"/attempts$", 422, body={"message": "Validation Failed"})
    recovery, metrics = recovery_of(settings, db, clock)
    first = await recovery.pass_once()
    clock.advance(timedelta(minutes=10))
    second = await recovery.pass_once()

    assert (first.failed, first.requested, second.failed, second.requested) == (1, 0, 0, 0)
    assert len(attempts_asked(standin)) == 1
    [row] = await redelivery_rows(db)
    assert (row.guid, row.result, row.http_status) == (lost["guid"], "failed", 422)
    assert "Validation Failed" in (row.error or "")
    assert counter(metrics, "failed") == 1 and counter(metrics, "requested") == 0


# -- one replica at a time --------------------------------------------------------------------


async def test_only_one_replica_recovers_at_a_time_on_postgresql(
    pg_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(pg_url, tmp_path, standin, delivery_recovery_interval_seconds=300)
    for n in range(1, 4):
        standin.add_hook_delivery("issues", issue_opened(n), status_code=503)
    clock = SkippingClock()
    # Two replicas: each its own engine (its own connections), the same database.
    replicas = [
        recovery_of(settings, Database(pg_url), clock, owner=f"replica-{n}")[0] for n in "ab"
    ]
    reports = await asyncio.gather(*(r.pass_once() for r in replicas))

    assert sorted(r.ran for r in reports) == [False, True]
    assert sum(r.requested for r in reports) == 3
    assert len(attempts_asked(standin)) == 3
    holder, other = (replicas[0], replicas[1]) if reports[0].ran else (replicas[1], replicas[0])
    # Held until the holder's next pass is due: the other's passes meanwhile do nothing...
    clock.advance(timedelta(seconds=299))
    assert not (await other.pass_once()).ran
    # ...and once the holder is gone past its lease, the other takes over.
    clock.advance(timedelta(seconds=2))
    standin.add_hook_delivery("issues", issue_opened(4), status_code=503)
    takeover = await other.pass_once()
    assert (takeover.ran, takeover.requested) == (True, 1)
    assert not (await holder.pass_once()).ran
    for replica in replicas:
        await replica.db.dispose()


# -- the worker runs it -------------------------------------------------------------------------


async def test_a_worker_recovers_failed_deliveries_at_start_up(
    db: Database, db_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    settings = app_settings(db_url, tmp_path, standin)
    lost = standin.add_hook_delivery(
        "issues",
        issue_opened(1),
        status_code=503,
        delivered_at=datetime.now(UTC) - timedelta(hours=1),
    )
    port = free_port()
    standin.set_webhook(f"http://127.0.0.1:{port}/webhooks/github", SECRET)
    clock = FakeClock(datetime.now(UTC))
    app = create_app(settings, db=db, clock=clock, workers=1)
    async with ghapp_at(app, port):
        await standin.hook_delivery_made(
            lambda made: any(d["redelivery"] and d["guid"] == lost["guid"] for d in made)
        )
        await standin.hook_sends_settled()

    assert [d["status_code"] for d in standin.hook_deliveries(lost["guid"])] == [202, 503]
    assert await stored_per_guid(db) == {lost["guid"]: 1}
    metrics = generate_latest(app.state.ghapp.metrics.registry).decode()
    assert 'ghapp_webhook_redeliveries_total{outcome="requested"} 1.0' in metrics


async def test_without_app_credentials_the_recovery_says_so_once_and_ends(
    db: Database, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(db_url, tmp_path)  # no app id, no private key
    recovery, _ = recovery_of(settings, db, FakeClock(datetime.now(UTC)))
    with caplog.at_level(logging.INFO, logger="ghapp.webhooks.recovery"):
        await asyncio.wait_for(recovery.run(), timeout=30)  # returns: nothing to do
    said = [r.getMessage() for r in caplog.records if r.name == "ghapp.webhooks.recovery"]
    assert len(said) == 1 and said[0].startswith("webhook delivery recovery is off")


# -- the stand-in's side, as GitHub documents it --------------------------------------------


async def test_the_stand_in_lists_shows_and_refuses_deliveries_as_github_does(
    standin: GitHubStandIn, tmp_path: Path
) -> None:
    """Answers are held to GitHub's description by the stand-in's contract check; here what
    the description cannot say: order, filters, the cursor, one attempt's request."""
    settings = app_settings("sqlite+aiosqlite:///unused.db", tmp_path, standin)
    github = GitHubApp(settings, FakeClock(datetime.now(UTC)))
    gh, jwt = github.as_app(), github.jwt()
    failed = standin.add_hook_delivery("issues", issue_opened(1), status_code=503)
    ok = standin.add_hook_delivery("issues", issue_opened(2), status_code=202)

    listed = await gh.getitem("/app/hook/deliveries", jwt=jwt)
    failures = await gh.getitem("/app/hook/deliveries?status=failure", jwt=jwt)
    one = await gh.getitem(f"/app/hook/deliveries/{failed['id']}", jwt=jwt)
    page = await gh.getitem(f"/app/hook/deliveries?per_page=1&cursor=v1_{failed['id']}", jwt=jwt)
    with pytest.raises(BadRequest) as bad_cursor:
        await gh.getitem("/app/hook/deliveries?cursor=nonsense", jwt=jwt)
    with pytest.raises(BadRequest) as unknown:
        await gh.post("/app/hook/deliveries/12345/attempts", data=b"", jwt=jwt)
    await github.aclose()

    assert [d["id"] for d in listed] == [ok["id"], failed["id"]]  # newest first
    assert [d["id"] for d in failures] == [failed["id"]]
    assert [d["id"] for d in page] == [failed["id"]]
    assert (one["guid"], one["status_code"], one["status"]) == (
        failed["guid"],
        503,
        "Invalid HTTP Response: 503",
    )
    assert one["request"]["payload"]["issue"]["number"] == 1 and one["redelivery"] is False
    assert (one["installation_id"], one["repository_id"]) == (INSTALLATION, REPO)
    assert bad_cursor.value.status_code == 400 and unknown.value.status_code == 404
    tokens = {r.auth for r in standin.requests if r.path.startswith("/app/hook/")}
    assert tokens == {"app-jwt"}


# -- a follow-up's lookup meets the outage --------------------------------------------------------


def mention_comment(number: int, slug: str) -> dict[str, Any]:
    data = copy.deepcopy(load("issue_comment/created.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["issue"].update(number=number, id=444600000 + number)
    data["issue"].pop("pull_request", None)
    data["comment"].update(id=555000 + number, body=f"@{slug} also handle the empty list")
    data["comment"]["user"] = {"login": "octocat", "type": "User"}
    data["sender"] = {"login": "octocat", "type": "User"}
    return data


async def test_a_follow_up_lookup_during_an_outage_is_a_503_and_stores_nothing(
    pg_url: str, standin: GitHubStandIn, tmp_path: Path
) -> None:
    """Whether a comment continues an earlier session is read from the database while the
    delivery is decided: that read failing is the database's trouble (503, redelivered
    later), never a 500."""
    target = make_url(pg_url)
    with TcpFaultProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        via = target.set(port=proxy.port).render_as_string(hide_password=False)
        settings = app_settings(via, tmp_path, standin, app_slug="ghapp-standin")
        direct = Database(pg_url)
        await add_repository(direct)
        app = create_app(settings, db=Database(via))
        state = app.state.ghapp
        state.index.refresh_every = 3600.0  # fresh for the test: only the lookup reads
        await state.index.ensure_fresh()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            proxy.cut()
            answer = await send(http, "issue_comment", mention_comment(7, "ghapp-standin"))
            proxy.restore()
            again = await send(http, "issue_comment", mention_comment(7, "ghapp-standin"))
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"].startswith("the database is unavailable")
        assert again.status_code == 202, again.text  # the same delivery, sent again: stored
        assert await stored_per_guid(direct) != {}
        await direct.dispose()
