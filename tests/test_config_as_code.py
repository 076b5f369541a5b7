""".github/ghapp.yml end to end: deliveries over HTTP queue syncs, a ConfigSyncer reads the
file from the GitHub stand-in, the jobs follow it, and the pushed commit gets a status."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlmodel import select as select_models

from ghapp.clock import FakeClock, SystemClock
from ghapp.config.schema import CONFIG_PATH
from ghapp.db import Database
from ghapp.db.models import AuditEntry, ConfigSync, Job
from tests.config_support import (
    ADMIN_TOKEN,
    CREATED,
    INSTALLATION,
    REPO,
    REPO_ID,
    V1,
    World,
    install,
    push,
    push_file,
    sha,
    statuses_for,
    syncs,
)
from tests.support import load, send

ACTOR = f"config:{REPO}"

V2 = """\
version: 1
jobs:
  - name: Triage
    events: [issues.opened]
    commands: ["/triage"]
    command: issue/triage
    max_turns: 5
  - name: Weekly sweep
    cron: "0 9 * * 1"
    filter: "label:bug"
    prompt: Is this still a bug?
  - name: Review
    events: [pull_request.opened]
    target: prs
    command: pr/review
"""


@pytest.fixture
def world(config_world: World) -> World:
    """This module's name for ``config_world`` (``tests/config_support.py``)."""
    return config_world


async def jobs_of(db: Database, repo_id: int = REPO_ID) -> dict[tuple[str, str], Job]:
    async with db.read_session() as session:
        rows = (await session.exec(select_models(Job).where(Job.repo_id == repo_id))).all()
        return {(job.source, job.name): job for job in rows}


async def audit(db: Database, actor: str = ACTOR) -> list[tuple[str, str | None]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(AuditEntry.action, AuditEntry.object_id)
            .where(AuditEntry.actor == actor)
            .order_by(AuditEntry.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


# -- installation ----------------------------------------------------------------------


async def test_installation_reads_the_file_and_creates_the_jobs(world, db) -> None:
    await install(world)
    jobs = await jobs_of(db)
    assert set(jobs) == {
        ("config", "Triage"),
        ("config", "Nightly health"),
        ("config", "Weekly sweep"),
    }
    triage = jobs[("config", "Triage")]
    assert triage.created_by == ACTOR
    assert (triage.command_id, triage.event_triggers[0]["event"]) == (
        "issue/triage",
        "issues.opened",
    )
    nightly = jobs[("config", "Nightly health")]
    assert nightly.cron_expression == "0 3 * * *" and nightly.next_run_at is not None
    assert jobs[("config", "Weekly sweep")].filter_query == "label:bug"
    assert [action for action, _ in await audit(db)] == ["job.create"] * 3
    [row] = await syncs(db)
    assert (row.status, row.reason, row.sha, row.summary) == (
        "done",
        "installation",
        None,
        "3 jobs in sync (3 created)",
    )
    assert world.github.statuses == []  # no commit to report on
    # The file was read from the default branch through the contents API.
    [read] = world.github.find_requests("GET", r"/contents/\.github/ghapp\.yml")
    assert "ref" not in read.query


async def test_installation_without_a_file_does_nothing(world, db) -> None:
    await install(world, content=None)
    assert await jobs_of(db) == {}
    [row] = await syncs(db)
    assert (row.status, row.summary) == ("done", f"no {CONFIG_PATH}")
    assert world.github.statuses == [] and await audit(db) == []


async def test_a_repository_added_to_the_installation_is_read(world, db) -> None:
    await install(world, content=None)
    added = load("installation_repositories/added.payload.json")  # Codertocat/Space
    space = added["repositories_added"][0]
    world.github.add_repo(space["full_name"], INSTALLATION, repo_id=space["id"])
    world.github.add_file(space["full_name"], CONFIG_PATH, V2)
    assert (await send(world.http, "installation_repositories", added)).status_code == 202
    assert await world.syncer.run_pending() == 1
    assert {name for _, name in await jobs_of(db, space["id"])} == {
        "Triage",
        "Weekly sweep",
        "Review",
    }
    assert [r.reason for r in await syncs(db)] == ["installation", "repositories_added"]


# -- pushes ------------------------------------------------------------------------------


async def test_a_push_changing_the_file_updates_adds_and_removes_jobs(world, db) -> None:
    await install(world)
    api_job = await world.state.jobs.create(
        {
            "name": "Triage",
            "repo_id": REPO_ID,
            "command_id": "issue/triage",
            "command_triggers": ["/triage"],
        },
        actor="token:admin",
    )
    before = await jobs_of(db)
    await world.state.jobs.pause(before[("config", "Weekly sweep")].id, actor="token:admin")

    commit = await push_file(world, "v2", V2)
    assert await world.syncer.run_pending() == 1

    after = await jobs_of(db)
    assert set(after) == {
        ("api", "Triage"),
        ("config", "Triage"),
        ("config", "Weekly sweep"),
        ("config", "Review"),
    }
    triage = after[("config", "Triage")]
    assert triage.id == before[("config", "Triage")].id  # updated in place, history kept
    assert (triage.max_turns, triage.command_triggers) == (5, ["/triage"])
    sweep = after[("config", "Weekly sweep")]
    assert sweep.status == "paused"  # the file does not say: paused by hand stays paused
    assert sweep.updated_at == (await world.state.jobs.get(sweep.id)).updated_at
    untouched = after[("api", "Triage")]
    assert (untouched.updated_at, untouched.command_triggers) == (api_job.updated_at, ["/triage"])
    assert statuses_for(world.github, commit) == [
        ("ghapp/config", "success", "3 jobs in sync (1 created, 1 updated, 1 removed)")
    ]
    nightly_id = str(before[("config", "Nightly health")].id)
    changes = (await audit(db))[3:]
    assert ("job.update", str(triage.id)) in changes and ("job.delete", nightly_id) in changes
    assert len(changes) == 3
    [_, row] = await syncs(db)
    assert (row.reason, row.sha, row.status) == ("push", commit, "done")
    read = world.github.find_requests("GET", r"/contents/\.github/ghapp\.yml")[-1]
    assert read.query["ref"] == commit

    # The same file again: nothing to change, nothing audited, still reported.
    again = await push_file(world, "v2-again", V2)
    assert await world.syncer.run_pending() == 1
    assert len(await audit(db)) == 6
    assert statuses_for(world.github, again) == [("ghapp/config", "success", "3 jobs in sync")]


BROKEN = [
    pytest.param(
        V1.replace('"0 3 * * *"', '"0 25 * * *"'),
        "line 7: jobs[1].cron: cron expression '0 25 * * *': hour 25 out of range 0-23",
        id="bad-cron",
    ),
    pytest.param(
        V1.replace('"0 3 * * *"', "*/5 * * * *"),
        "line 7: invalid YAML: expected alphabetic or numeric character, but found '/'",
        id="invalid-yaml",
    ),
    pytest.param(
        V1.replace("    target: codebase\n", "    target: codebase\n    every: day\n"),
        "line 9: jobs[1].every: unknown key",
        id="unknown-key",
    ),
]


@pytest.mark.parametrize(("content", "problem"), BROKEN)
async def test_a_broken_file_is_reported_on_the_commit_and_changes_nothing(
    world, db, content: str, problem: str
) -> None:
    await install(world)
    before = {
        key: (job.id, job.updated_at, job.cron_expression)
        for key, job in (await jobs_of(db)).items()
    }

    commit = await push_file(world, "broken", content)
    assert await world.syncer.run_pending() == 1

    after = {
        key: (job.id, job.updated_at, job.cron_expression)
        for key, job in (await jobs_of(db)).items()
    }
    assert after == before
    [(context, state, description)] = statuses_for(world.github, commit)
    assert (context, state) == ("ghapp/config", "failure")
    assert description.startswith(problem) and len(description) <= 140
    row = (await syncs(db))[-1]
    assert row.status == "failed" and row.error.startswith(problem)
    assert (await audit(db))[-1] == ("config.invalid", str(REPO_ID))

    # Fixed in the next commit: the jobs follow again.
    fixed = await push_file(world, "fixed", V2)
    assert await world.syncer.run_pending() == 1
    assert statuses_for(world.github, fixed)[0][1] == "success"
    assert ("config", "Review") in await jobs_of(db)


async def test_the_status_description_fits_githubs_limit(world, db) -> None:
    await install(world)
    long = V1.replace("issues.opened", "pull_request.nope").replace("0 3 *", "0 25 *")
    commit = await push_file(world, "long", long)
    await world.syncer.run_pending()
    [(_, state, description)] = statuses_for(world.github, commit)
    assert state == "failure" and len(description) == 140
    assert description.startswith("line 4: jobs[0].events[0]: unknown action 'nope'")
    assert description.endswith("… (+1 more)")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(push(sha("x"), modified=("README.md",)), id="file-not-touched"),
        pytest.param(
            push(sha("x"), modified=(CONFIG_PATH,), ref="refs/heads/feature"), id="other-branch"
        ),
        pytest.param(push(sha("x"), modified=(CONFIG_PATH,), ref="refs/tags/v1"), id="tag"),
        pytest.param(push("0" * 40, removed=(CONFIG_PATH,), deleted=True), id="deleted"),
        pytest.param(push(sha("x"), modified=(".github/ghapp.yml.bak",)), id="other-file"),
    ],
)
async def test_pushes_that_do_not_change_the_file_queue_nothing(world, db, payload) -> None:
    world.state.signals.work_available.clear()
    assert (await send(world.http, "push", payload)).status_code == 202
    assert await syncs(db) == []
    assert not world.state.signals.work_available.is_set()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param({"added": (CONFIG_PATH,)}, id="added"),
        pytest.param({"forced": True}, id="forced"),  # commits may have gone
        pytest.param({"created": True}, id="created"),
        pytest.param({"commits": None}, id="no-commit-list"),
    ],
)
async def test_pushes_that_may_change_the_file_queue_a_sync(world, db, kind) -> None:
    world.state.signals.work_available.clear()
    commit = sha("maybe")
    assert (await send(world.http, "push", push(commit, **kind))).status_code == 202
    [row] = await syncs(db)
    assert (row.sha, row.status, row.installation_id) == (commit, "pending", INSTALLATION)
    assert world.state.signals.work_available.is_set()  # workers wake at once


async def test_a_redelivered_push_syncs_once(world, db) -> None:
    await install(world)
    commit = sha("v2")
    world.github.add_file(REPO, CONFIG_PATH, V2, ref=commit)
    payload = push(commit, modified=(CONFIG_PATH,))
    assert (await send(world.http, "push", payload, delivery="d-1")).status_code == 202
    assert (await send(world.http, "push", payload, delivery="d-1")).status_code == 200
    # The same push in another delivery body (a second hook, say): still one sync queued.
    other = {**payload, "hook_id": 2}
    assert (await send(world.http, "push", other, delivery="d-2")).status_code == 202
    assert [r.status for r in await syncs(db)] == ["done", "pending"]
    assert await world.syncer.run_pending() == 1
    assert await world.syncer.run_pending() == 0
    assert len(statuses_for(world.github, commit)) == 1

    # Later the branch is force-pushed back to that commit: it is read again.
    back = {**payload, "forced": True, "before": sha("v3")}
    assert (await send(world.http, "push", back, delivery="d-3")).status_code == 202
    assert [r.status for r in await syncs(db)] == ["done", "pending"]
    assert await world.syncer.run_pending() == 1
    assert len(statuses_for(world.github, commit)) == 2


async def test_removing_the_file_removes_the_config_jobs_only(world, db) -> None:
    await install(world)
    await world.state.jobs.create(
        {"name": "Mine", "repo_id": REPO_ID, "custom_prompt": "hi"}, actor="token:admin"
    )
    commit = await push_file(world, "rm", None)
    assert await world.syncer.run_pending() == 1
    assert set(await jobs_of(db)) == {("api", "Mine")}
    assert statuses_for(world.github, commit) == [
        ("ghapp/config", "success", f"no {CONFIG_PATH}: 3 config jobs removed")
    ]
    assert [a for a, _ in await audit(db)][-3:] == ["job.delete"] * 3


async def test_config_jobs_are_read_only_in_the_api(world, db) -> None:
    await install(world)
    job = (await jobs_of(db))[("config", "Triage")]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    url = f"/api/repos/{REPO_ID}/schedules/{job.id}"
    answer = await world.http.patch(url, json={"max_items": 3}, headers=admin)
    assert answer.status_code == 409 and ".github/ghapp.yml" in answer.text
    assert (await world.http.delete(url, headers=admin)).status_code == 409
    assert (await world.http.get(url, headers=admin)).json()["source"] == "config"


async def test_jobs_may_use_the_repositorys_own_commands(world, db) -> None:
    """A command added in .claude/commands with the job that uses it: both in one push."""
    await install(world)
    world.state.commands.TTL_S = 3600  # a catalog cached before the push is read afresh
    assert "issue/label" not in (await world.state.commands.of(REPO_ID)).targets()
    world.github.add_file(
        REPO,
        ".claude/commands/issue/label.md",
        "---\ndescription: Label it\n---\nLabel this issue.\n",
    )
    uses = V1 + "  - name: Labels\n    events: [issues.opened]\n    command: issue/label\n"
    commit = await push_file(world, "labels", uses)
    assert await world.syncer.run_pending() == 1
    assert statuses_for(world.github, commit)[0][1:] == ("success", "4 jobs in sync (1 created)")
    assert (await jobs_of(db))[("config", "Labels")].command_id == "issue/label"

    wrong = uses.replace("issue/label", "issue/lable")
    commit = await push_file(world, "typo", wrong)
    assert await world.syncer.run_pending() == 1
    [(_, state, description)] = statuses_for(world.github, commit)
    assert state == "failure"
    assert description.startswith("line 16: jobs[3].command: unknown command 'issue/lable'")


async def test_a_workers_syncer_has_its_own_job_service(world, db) -> None:
    from ghapp.config.sync import build_config_syncer

    syncer = build_config_syncer(
        db, SystemClock(), world.state.signals, world.client, owner="worker"
    )
    world.github.add_file(REPO, CONFIG_PATH, V1)
    await send(world.http, "installation", CREATED)
    assert await syncer.run_pending() == 1
    assert len(await jobs_of(db)) == 3
    assert syncer.jobs is not world.state.jobs


# -- GitHub failures, leases, several workers ----------------------------------------------


async def test_github_failures_are_retried_later(world, db) -> None:
    world.github.inject("GET", r"/contents/\.github/ghapp\.yml", 502, times=2)
    world.github.add_file(REPO, CONFIG_PATH, V1)
    await send(world.http, "installation", CREATED)
    clock = FakeClock(datetime.now(UTC))
    syncer = world.syncer_with(clock=clock, owner="w1")
    assert await syncer.run_pending() == 1
    [row] = await syncs(db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "502" in row.error or "GitHubBroken" in row.error
    assert row.run_after > clock.now()
    assert await syncer.run_pending() == 0  # not due yet
    assert await syncer.next_due() == row.run_after
    clock.advance(timedelta(minutes=10))
    assert await syncer.run_pending() == 1
    [row] = await syncs(db)
    assert (row.status, row.attempts) == ("done", 2)
    assert len(await jobs_of(db)) == 3


async def test_a_sync_whose_worker_died_is_taken_over(world, db) -> None:
    world.github.add_file(REPO, CONFIG_PATH, V1)
    await send(world.http, "installation", CREATED)
    clock = FakeClock(datetime.now(UTC))
    first = world.syncer_with(clock=clock, owner="w1", lease=timedelta(minutes=5))
    second = world.syncer_with(clock=clock, owner="w2", lease=timedelta(minutes=5))
    claimed = await first.claim()
    assert claimed is not None and await second.claim() is None  # held under a lease
    clock.advance(timedelta(minutes=6))  # w1 died mid-sync
    taken = await second.claim()
    assert taken is not None and (taken.id, taken.attempts) == (claimed.id, 2)
    assert (await first.sync_once(claimed)).status == "lost"  # too late: w2 has it
    assert (await second.sync_once(taken)).status == "done"
    [row] = await syncs(db)
    assert row.status == "done" and row.lease_owner is None


async def test_two_syncers_never_take_the_same_row(world, db) -> None:
    """Concurrent claims from two workers: each row once, one per repository at a time."""
    repos = [(f"Codertocat/repo-{n}", 5000 + n) for n in range(5)]
    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(
            insert(ConfigSync),
            [
                {
                    "repo_id": repo_id,
                    "installation_id": INSTALLATION,
                    "sha": sha(f"{repo_id}-{k}"),
                    "reason": "push",
                    "status": "pending",
                    "attempts": 0,
                    "run_after": now - timedelta(minutes=1),
                    "queued_at": now + timedelta(seconds=k),
                }
                for _, repo_id in repos
                for k in range(3)
            ],
        )
    one = world.syncer_with(owner="w1")
    two = world.syncer_with(owner="w2")
    claims = await asyncio.gather(*(s.claim() for s in (one, two) * 8))
    taken = [c for c in claims if c is not None]
    assert len(taken) == len({c.id for c in taken}) == 5  # the first of each repository
    assert sorted(c.repo_id for c in taken) == [repo_id for _, repo_id in repos]
    assert all(c.sha == sha(f"{c.repo_id}-0") for c in taken)


async def test_two_syncers_sync_every_push_once_and_in_order(world, db) -> None:
    repos = [(f"Codertocat/repo-{n}", 6000 + n) for n in range(4)]
    installed = copy.deepcopy(CREATED)
    installed["repositories"] = [
        {
            "id": repo_id,
            "node_id": "x",
            "name": name.split("/")[1],
            "full_name": name,
            "private": False,
        }
        for name, repo_id in repos
    ]
    for name, repo_id in repos:
        world.github.add_repo(name, INSTALLATION, repo_id=repo_id)
        world.github.add_file(name, CONFIG_PATH, V1)
    await send(world.http, "installation", installed)
    pushed: list[str] = []
    for version, content in (("a", V2), ("b", V1.replace("Weekly sweep", "Sweep"))):
        for name, repo_id in repos:
            commit = sha(f"{name}-{version}")
            world.github.add_file(name, CONFIG_PATH, content, ref=commit)
            payload = push(commit, modified=(CONFIG_PATH,), repo=(name, repo_id))
            payload["repository"]["default_branch"] = "main"
            payload["ref"] = "refs/heads/main"
            assert (await send(world.http, "push", payload)).status_code == 202
            pushed.append(commit)

    done: list[tuple[str, int]] = []
    # A retry (two workers' job changes racing on the database) is due at once here.
    one = world.syncer_with(owner="w1", backoff_base=timedelta(0))
    two = world.syncer_with(owner="w2", backoff_base=timedelta(0))
    for syncer in (one, two):
        original = syncer.sync_once

        async def tracked(claimed, original=original, owner=syncer.owner):
            done.append((owner, claimed.id))
            return await original(claimed)

        syncer.sync_once = tracked  # type: ignore[method-assign]
    total = 0
    for _ in range(len(pushed) + len(repos)):  # a repository's next sync waits for its last
        total += sum(await asyncio.gather(one.run_pending(), two.run_pending()))
    rows = await syncs(db)
    assert len(rows) == len({i for _, i in done}) == 12
    assert total == len(done)  # a retried sync counts again, but never ran twice at once
    assert {r.status for r in rows} == {"done"}
    for commit in pushed:
        assert len(statuses_for(world.github, commit)) == 1
    for _, repo_id in repos:  # the last push won everywhere
        assert {n for _, n in await jobs_of(db, repo_id)} == {"Triage", "Nightly health", "Sweep"}


async def test_the_loop_wakes_on_a_queued_sync(world, db) -> None:
    """``run()`` sleeps on the worker wake-up; a push delivery wakes it at once."""
    await install(world)
    clock = FakeClock(datetime.now(UTC))
    syncer = world.syncer_with(clock=clock, owner="loop", poll=timedelta(minutes=1))
    world.state.signals.work_available.clear()  # the installation's wake-up is used up
    loop = asyncio.create_task(syncer.run())
    try:
        await clock.wait_for_sleeper(until=clock.now() + timedelta(minutes=1))  # idle
        clock.advance(timedelta(seconds=30))  # the next sleep has another deadline
        commit = await push_file(world, "v2", V2)  # stored → signals.work_available
        await clock.wait_for_sleeper(until=clock.now() + timedelta(minutes=1))  # synced
        assert statuses_for(world.github, commit)[0][1] == "success"
        assert ("config", "Review") in await jobs_of(db)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
