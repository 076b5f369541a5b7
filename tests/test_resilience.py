"""GitHub and database trouble cost time, never work: retries by time, no duplicate comments,
sessions that are never run twice for the cheap part, and loops that survive any error.

The pool runs on a fake clock moved by hand (its backoffs, leases and retry window); the
GitHub client's own retries sleep on a clock that skips ahead at once. GitHub is the
stand-in with faults: an outage, or a gateway that applies a ``POST`` and answers ``502``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from gidgethub import GitHubBroken
from sqlalchemy import select

from ghapp.app import create_app
from ghapp.clock import FakeClock, SystemClock
from ghapp.db.models import Run, Session
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.runqueue.claim import RunQueue
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.standins.model import ModelStandIn
from ghapp.supervise import Backoff, Restarts, supervise
from ghapp.worker.execute import SessionExecutor
from ghapp.worker.pool import PoolSettings, WorkerPool
from ghapp.worker.report import publish_report, start_comment
from tests.conftest import make_settings
from tests.support import add_repository, load, runs_of, send, sign_in

REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
ADMIN = "resilience-admin-token"


class SkippingClock(FakeClock):
    """The GitHub client's clock: its retry waits pass at once, and are written down."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))
        self.slept: list[float] = []

    async def sleep_until(self, when, wake) -> bool:
        if when is not None and when > self.now():
            self.slept.append((when - self.now()).total_seconds())
            self.set(when)
        return False


class World:
    def __init__(self, github, http, state, pool, clock, model: ModelStandIn) -> None:
        self.github, self.http, self.state, self.pool, self.clock = github, http, state, pool, clock
        self.model = model

    async def step(self) -> bool:
        """Claim and process one run that is due now; False if none is."""
        claimed = await self.pool.queue.claim(self.clock.now())
        if claimed is None:
            return False
        await self.pool.process(claimed)
        return True

    async def next_due(self) -> datetime | None:
        async with self.state.db.read() as conn:
            return await conn.scalar(
                select(Run.run_after).where(Run.status == "queued").order_by(Run.run_after)
            )

    async def run_until_quiet(self, *, until: datetime | None = None) -> list[str]:
        """Process runs, jumping the clock to each retry, until nothing is queued (or the
        clock would pass ``until``). The statuses seen after each step."""
        seen = []
        while True:
            if not await self.step():
                due = await self.next_due()
                if due is None or (until is not None and due > until):
                    return seen
                self.clock.set(max(due, self.clock.now()))
                continue
            seen += [run.status for run in await runs_of(self.state.db)]

    def claude_invocations(self) -> int:
        """How many Claude Code sessions reached the model."""
        return len({request.session_id for request in self.model.conversation()})


@pytest.fixture
async def world(db_url, db, tmp_path, claude_bin, model):
    await add_repository(db)
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    github.add_issue(REPO, 1, title="Spelling error in the README file", user="Codertocat")
    git_url = bare_repository(tmp_path, REPO, files={"README.md": "# Hello-World\n"})
    async with github.serve() as base_url:
        settings = make_settings(
            db_url,
            tmp_path,
            github_api_url=base_url,
            git_url=git_url,
            claude_bin=claude_bin,
            admin_token=ADMIN,
            app_id=99,
            private_key=github.private_key_pem,
        )
        app = create_app(settings, db=db)
        clock = FakeClock(datetime.now(UTC) + timedelta(seconds=1))
        client = GitHubApp(settings, SkippingClock(), RetryPolicy(attempts=3, base_delay=1.0))
        state = app.state.ghapp
        executor = SessionExecutor(db, settings, client, clock)
        pool = WorkerPool(
            db, clock, state.signals, RunQueue(db, "w"), executor, PoolSettings(concurrency=1)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield World(github, http, state, pool, clock, model)
        await client.aclose()


def triage_job() -> dict:
    return {
        "name": "Triage",
        "repo_id": REPO_ID,
        "target_type": "issues",
        "command_id": "issue/triage",
        "event_triggers": [{"event": "issues.opened"}],
    }


def opened_issue() -> dict:
    data = load("issues/opened.payload.json")
    data["installation"] = {"id": INSTALLATION}
    return data


# -- retries by time --------------------------------------------------------------------------


async def test_a_five_minute_github_outage_fails_no_run(world) -> None:
    await world.state.jobs.create(triage_job(), actor="t")
    world.github.start_outage(503)
    assert (await send(world.http, "issues", opened_issue())).status_code == 202
    began = world.clock.now()
    seen = await world.run_until_quiet(until=began + timedelta(minutes=5))
    assert seen and set(seen) == {"queued"}  # tried, waiting again, never failed
    [waiting] = await runs_of(world.state.db)
    assert waiting.attempt >= 3
    assert waiting.retrying_since == began
    assert waiting.error.startswith("GitHub: ") and "retrying at " in waiting.error
    await sign_in(world.http, ADMIN)
    page = (await world.http.get(f"/runs/{waiting.id}")).text
    assert "Waiting to retry" in page and "retrying at " in page
    world.github.end_outage()
    world.clock.set(max(world.clock.now(), began + timedelta(minutes=5)))
    await world.run_until_quiet()
    [run] = await runs_of(world.state.db)
    assert (run.status, run.error) == ("completed", None)
    [comment] = world.github.comments_on(REPO, 1)
    assert "✅ **Triage** finished." in comment["body"]
    assert world.claude_invocations() == 1


async def test_trouble_that_outlasts_the_window_fails_the_run_saying_so(world) -> None:
    job = await world.state.jobs.create({**triage_job(), "max_retries": 0}, actor="t")
    world.github.start_outage(503)
    await send(world.http, "issues", opened_issue())
    await world.run_until_quiet()
    [run] = await runs_of(world.state.db, job.id)
    assert run.status == "failed"
    assert run.error.startswith("GitHub: ")
    assert re.search(r" \(still failing after retrying for 1[5-7] min\)$", run.error), run.error
    assert world.clock.now() - run.retrying_since >= timedelta(minutes=15)
    assert world.github.comments_on(REPO, 1) == []


# -- no duplicates, no second session -----------------------------------------------------------


async def test_a_comment_post_applied_but_answered_502_makes_one_comment(world) -> None:
    await world.state.jobs.create(triage_job(), actor="t")
    world.github.inject("POST", r"/issues/1/comments$", 502, apply=True)
    await send(world.http, "issues", opened_issue())
    await world.run_until_quiet()
    [run] = await runs_of(world.state.db)
    assert run.status == "completed", run.error
    [comment] = world.github.comments_on(REPO, 1)
    assert "✅ **Triage** finished." in comment["body"]
    assert len(world.github.find_requests("POST", r"/issues/1/comments$")) == 1  # not repeated


async def test_a_failed_final_edit_is_sent_again_without_running_the_session_again(world) -> None:
    await world.state.jobs.create(triage_job(), actor="t")
    # The edit fails through every retry of the client: the run is retried.
    world.github.inject("PATCH", r"/issues/comments/\d+$", 502, times=3)
    await send(world.http, "issues", opened_issue())
    seen = await world.run_until_quiet()
    assert seen[0] == "queued"  # waited for GitHub once
    [run] = await runs_of(world.state.db)
    assert (run.status, run.attempt) == ("completed", 2)
    assert world.claude_invocations() == 1  # the expensive part ran once
    [comment] = world.github.comments_on(REPO, 1)
    assert "✅ **Triage** finished." in comment["body"]
    async with world.state.db.read() as conn:
        [session] = (await conn.execute(select(Session))).all()
    assert session.reported_at is not None and session.report_text in comment["body"]


async def test_a_retried_slash_command_reply_is_not_repeated(world) -> None:
    job = await world.state.jobs.create(
        {**triage_job(), "event_triggers": [], "command_triggers": ["/triage"]}, actor="t"
    )
    world.github.set_permission(REPO, "visitor", "read")
    asked = world.github.add_comment(REPO, 1, "/triage", user="visitor")
    world.github.inject("POST", r"/issues/1/comments$", 502, apply=True)
    payload = load("issue_comment/created.payload.json")
    payload["installation"] = {"id": INSTALLATION}
    payload["comment"].update(body="/triage", id=asked["id"], user={"login": "visitor"})
    payload["sender"] = {"login": "visitor", "type": "User"}
    await send(world.http, "issue_comment", payload)
    await world.run_until_quiet()
    [run] = await runs_of(world.state.db, job.id)
    assert run.status == "skipped"
    replies = [c for c in world.github.comments_on(REPO, 1) if "Sorry @visitor" in c["body"]]
    assert len(replies) == 1


async def test_a_report_issue_created_but_answered_502_is_found_not_repeated(world) -> None:
    gh = await world.pool.executor.github.for_installation(INSTALLATION)
    world.github.inject("POST", r"/repos/[^/]+/[^/]+/issues$", 502, apply=True)
    number = await publish_report(gh, REPO, 7, "Weekly report", "All good.", None)
    reports = [i for i in world.github.issues(REPO) if "ghapp:report-job=7" in (i["body"] or "")]
    assert [i["number"] for i in reports] == [number]


async def test_a_comment_that_was_not_applied_is_not_invented(world) -> None:
    gh = await world.pool.executor.github.for_installation(INSTALLATION)
    world.github.inject("POST", r"/issues/1/comments$", 502)  # refused, nothing created
    with pytest.raises(GitHubBroken):
        await start_comment(gh, REPO, 1, 42, job="Triage", run_url="http://t/runs/1")
    assert world.github.comments_on(REPO, 1) == []


# -- loops survive --------------------------------------------------------------------------


async def test_a_supervised_loop_is_restarted_after_an_error_with_a_backoff() -> None:
    clock = FakeClock(datetime.now(UTC))
    restarts = Restarts()
    calls = []

    async def flaky() -> None:
        calls.append(clock.now())
        if len(calls) < 3:
            raise OSError("database restarting")

    task = asyncio.create_task(
        supervise("flaky", flaky, clock, backoff=Backoff(base=1, cap=8), restarts=restarts)
    )
    for _ in range(2):
        await clock.wait_for_sleeper()
        clock.set(clock.next_deadline)
    await task
    assert len(calls) == 3 and restarts["flaky"] == 2
    assert 0.5 <= (calls[1] - calls[0]).total_seconds() <= 1  # base, with jitter
    assert 1 <= (calls[2] - calls[1]).total_seconds() <= 2  # doubled


async def test_a_cancel_arriving_as_the_sleep_wakes_is_not_swallowed() -> None:
    # asyncio.wait_for on Python 3.11 can drop a cancel that lands while it completes; the
    # task then carries on and the process cannot stop.
    clock = SystemClock()
    wake = asyncio.Event()
    later = clock.now() + timedelta(seconds=100)
    sleeper = asyncio.create_task(clock.sleep_until(later, wake))
    await asyncio.sleep(0)  # let it start waiting
    wake.set()
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert sleeper.cancelled()
