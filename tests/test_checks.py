"""A pull request's sessions as check runs: made in progress when the session starts, ended
with the session's conclusion and a summary, re-run from GitHub (one check run, a whole
suite), superseded by a newer push, and not made when the job says ``checks: false``.

The world is the end-to-end one (the app over HTTP, a worker pool, the GitHub stand-in);
most sessions here are shell sessions, which cost no model. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from typing import Any

from sqlalchemy import select, update

from ghapp.clock import SystemClock
from ghapp.db.models import Delivery, Repository, Session
from ghapp.runners.base import Outcome
from ghapp.standins.model import Fault
from ghapp.worker.checks import CONCLUSIONS, CheckRuns, title
from tests.end_to_end_support import INSTALLATION, REPO, REPO_ID, work_off
from tests.support import load, runs_of, send

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # PR #2's head in the payloads
NEWER = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e"
APP_ID = 99  # the world's app


def pr_job(**changes: object) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "PR check",
        "repo_id": REPO_ID,
        "target_type": "prs",
        "runner": "shell",
        "shell_command": "cat pr-change.txt",
        "event_triggers": [{"event": "pull_request.opened"}],
    }
    job.update(changes)
    return job


def pull_request(action: str = "opened", head: str = HEAD) -> dict[str, Any]:
    data = copy.deepcopy(load(f"pull_request/{action}.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["pull_request"]["head"]["sha"] = head
    return data


def rerequested(kind: str, *, app_id: int = APP_ID, **fields: Any) -> dict[str, Any]:
    """GitHub's ``check_run`` / ``check_suite`` ``rerequested`` payload, for our repository
    and installation, PR #2 listed as GitHub lists it."""
    data = copy.deepcopy(load(f"{kind}/rerequested.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["repository"] = copy.deepcopy(load("pull_request/opened.payload.json")["repository"])
    data[kind]["app"]["id"] = app_id
    data[kind]["head_sha"] = HEAD
    data[kind]["pull_requests"] = [
        {
            "url": f"https://api.github.com/repos/{REPO}/pulls/2",
            "id": 279147437,
            "number": 2,
            "head": {"ref": "changes", "sha": HEAD, "repo": {"id": REPO_ID, "url": "", "name": ""}},
            "base": {
                "ref": "master",
                "sha": "f" * 40,
                "repo": {"id": REPO_ID, "url": "", "name": ""},
            },
        }
    ]
    data[kind].update(fields)
    return data


async def sessions(db) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(Session).order_by(Session.id))).all())


def add_pull(github) -> None:
    github.add_issue(
        REPO, 2, title="Update the README", pull=True, head="changes", base="master", head_sha=HEAD
    )


async def test_a_pr_session_is_a_check_run_in_progress_then_successful(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(pr_job(), actor="t")
    assert (await send(http, "pull_request", pull_request())).json()["runs"] == 1
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    [session] = await sessions(db)
    [check] = github.check_runs(REPO, HEAD)
    assert (check["name"], check["status"], check["conclusion"]) == (
        "PR check",
        "completed",
        "success",
    )
    assert check["external_id"] == f"ghapp/run/{run.id}/session/{session.id}"
    assert check["details_url"] == f"{state.settings.public_url}/runs/{run.id}"
    assert check["output"]["title"] == "Finished"
    summary = check["output"]["summary"]
    assert "changed in pull request 2" in summary  # the session's result
    assert "0 turns · $0.0000" in summary and f"[run]({check['details_url']})" in summary
    assert (session.check_run_id, session.head_sha) == (check["id"], HEAD)
    # Made in progress when the session started, then edited once with its end.
    [created] = github.find_requests("POST", r"/check-runs$")
    assert (created.json["status"], created.json["head_sha"]) == ("in_progress", HEAD)
    assert check["updates"] == 1


async def test_a_failed_session_fails_its_check_run_with_the_reason(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    await state.jobs.create(pr_job(shell_command="echo broken >&2; exit 3"), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [check] = github.check_runs(REPO, HEAD)
    assert check["conclusion"] == "failure"
    assert check["output"]["title"].startswith("Failed: ")
    assert "Failed: " in check["output"]["summary"] and "exit" in check["output"]["summary"]


async def test_a_run_its_paths_do_not_match_is_a_skipped_check_run_saying_why(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    github.set_pr_files(REPO, 2, ["README.md"])
    job = await state.jobs.create(
        pr_job(event_triggers=[{"event": "pull_request.opened", "paths": ["docs/**"]}]),
        actor="t",
    )
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "skipped"
    [check] = github.check_runs(REPO, HEAD)
    assert (check["status"], check["conclusion"]) == ("completed", "skipped")
    assert check["output"]["summary"] == f"Skipped: {run.error}"
    assert "docs/**" in check["output"]["summary"]
    assert check["external_id"] == f"ghapp/run/{run.id}"


async def test_checks_off_makes_no_check_run(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(pr_job(checks=False), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    assert github.check_runs(REPO) == []
    assert github.comments_on(REPO, 2)  # the session reported as ever


async def test_a_check_run_github_refuses_does_not_fail_the_session(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    github.refuse_checks()  # an installation that has not granted checks: write yet
    job = await state.jobs.create(pr_job(), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    assert github.check_runs(REPO) == []
    [posted] = github.comments_on(REPO, 2)
    assert "changed in pull request 2" in posted["body"]
    assert "The check run could not be made or updated: " in posted["body"]


async def test_re_run_of_a_check_run_runs_the_job_again_on_the_same_head(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(pr_job(), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [first] = github.check_runs(REPO, HEAD)
    payload = rerequested("check_run", id=first["id"], external_id=first["external_id"])
    assert (await send(http, "check_run", payload)).json()["runs"] == 1
    await work_off(pool)
    old, new = await runs_of(db, job.id)
    assert (new.status, new.trigger_type, new.retry_of_id) == ("completed", "retry", old.id)
    assert new.item["number"] == 2 and new.item == old.item
    checks = github.check_runs(REPO, HEAD)
    assert [c["conclusion"] for c in checks] == ["success", "success"]
    assert checks[1]["external_id"].startswith(f"ghapp/run/{new.id}/session/")


async def test_re_run_of_a_check_suite_runs_each_job_with_a_check_run_on_it(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    first = await state.jobs.create(pr_job(), actor="t")
    second = await state.jobs.create(pr_job(name="PR lint"), actor="t")
    quiet = await state.jobs.create(pr_job(name="No checks", checks=False), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    assert len(github.check_runs(REPO, HEAD)) == 2
    assert (await send(http, "check_suite", rerequested("check_suite"))).json()["runs"] == 1
    await work_off(pool)
    for job in (first, second):
        old, new = await runs_of(db, job.id)
        assert (new.status, new.retry_of_id) == ("completed", old.id)
    assert len(await runs_of(db, quiet.id)) == 1  # it made no check run: not in the suite
    assert sorted(c["name"] for c in github.check_runs(REPO, HEAD)) == [
        "PR check",
        "PR check",
        "PR lint",
        "PR lint",
    ]


async def test_re_runs_asked_on_another_app_s_check_runs_are_ignored(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(pr_job(), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [ours] = github.check_runs(REPO, HEAD)
    foreign = rerequested("check_run", app_id=12345, external_id=ours["external_id"])
    assert (await send(http, "check_run", foreign)).json()["runs"] == 0
    foreign_suite = rerequested("check_suite", app_id=12345)
    assert (await send(http, "check_suite", foreign_suite)).json()["runs"] == 0
    not_ours = rerequested("check_run", external_id="build-7")  # our app id, not our id
    assert (await send(http, "check_run", not_ours)).json()["runs"] == 0
    assert len(await runs_of(db, job.id)) == 1
    async with db.read() as conn:
        outcomes = (await conn.execute(select(Delivery.event, Delivery.outcome))).all()
    assert ("check_run", "stored") in outcomes and ("check_suite", "stored") in outcomes


async def test_re_runs_from_a_repository_the_installation_no_longer_covers(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(pr_job(), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [ours] = github.check_runs(REPO, HEAD)
    async with db.write() as conn:  # as installation_repositories.removed leaves it
        await conn.execute(update(Repository).values(active=False))
    payload = rerequested("check_run", id=ours["id"], external_id=ours["external_id"])
    await send(http, "check_run", payload)
    await send(http, "check_suite", rerequested("check_suite"))
    await work_off(pool)
    assert len(await runs_of(db, job.id)) == 1


async def test_a_new_push_cancels_the_old_head_s_session_and_its_check_run(
    world, db, model
) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(
        pr_job(
            runner="claude",
            shell_command=None,
            custom_prompt="Review {{ item.title }}",
            event_triggers=[
                {"event": "pull_request.opened"},
                {"event": "pull_request.synchronize"},
            ],
            concurrency_policy="cancel",
        ),
        actor="t",
    )
    model.fail(Fault.stall(), times=1)  # the old head's session waits on the model
    await send(http, "pull_request", pull_request())
    claimed = await pool.queue.claim(pool.clock.now())
    assert claimed is not None
    old_head = asyncio.create_task(pool.process(claimed))
    await asyncio.to_thread(model.wait_until, lambda: model.stalled == 1, 60.0)
    [running] = github.check_runs(REPO, HEAD)
    assert running["status"] == "in_progress"

    github.move_head(REPO, 2, NEWER)
    assert (await send(http, "pull_request", pull_request("synchronize", NEWER))).json()[
        "runs"
    ] == 1
    await asyncio.wait_for(old_head, 60)  # the cancel wakes its heartbeat at once
    await work_off(pool)  # the new head's run
    old, new = await runs_of(db, job.id)
    assert (old.status, new.status) == ("cancelled", "completed"), (old.error, new.error)
    [cancelled] = github.check_runs(REPO, HEAD)
    assert (cancelled["status"], cancelled["conclusion"]) == ("completed", "cancelled")
    assert "superseded by a newer push (0d1e2f3)" in cancelled["output"]["summary"]
    [newer] = github.check_runs(REPO, NEWER)
    assert newer["conclusion"] == "success"


async def test_a_new_push_cancels_a_queued_run_at_once_unless_the_job_allows_both(
    world, db
) -> None:
    github, http, state, _pool = world
    add_pull(github)
    events = [{"event": "pull_request.opened"}, {"event": "pull_request.synchronize"}]
    cancel = await state.jobs.create(pr_job(event_triggers=events), actor="t")
    both = await state.jobs.create(
        pr_job(name="Both", event_triggers=events, concurrency_policy="allow"), actor="t"
    )
    await send(http, "pull_request", pull_request())
    await send(http, "pull_request", pull_request("synchronize", NEWER))
    old, new = await runs_of(db, cancel.id)
    assert (old.status, new.status) == ("cancelled", "queued")
    assert old.error == "superseded by a newer push (0d1e2f3)"
    assert [run.status for run in await runs_of(db, both.id)] == ["queued", "queued"]


def test_each_session_status_has_its_conclusion_and_title() -> None:
    assert CONCLUSIONS == {
        "completed": "success",
        "failed": "failure",
        "timed_out": "timed_out",
        "cancelled": "cancelled",
        "skipped": "skipped",
    }
    assert title("timed_out", "timed out after 10 s") == "Timed out"
    assert title("failure", "exit 3\nmore") == "Failed: exit 3"
    assert len(title("failure", "x" * 500)) == 200


def test_a_timed_out_session_s_summary_says_so() -> None:
    checks = CheckRuns(None, SystemClock(), lambda run_id: f"https://ghapp.example/runs/{run_id}")
    outcome = Outcome(False, "timed_out", None, "timed out after 10 s", None, 3, 0.25, 10_000, None)
    summary = checks.summary(7, outcome, "timed_out", None)
    assert summary.startswith("Timed out: timed out after 10 s")
    assert summary.endswith("3 turns · $0.2500 · 10.0 s · [run](https://ghapp.example/runs/7)")
    assert (
        len(checks.summary(7, dataclasses.replace(outcome, error="x" * 70_000), "failure", None))
        == 65_535
    )


async def test_a_create_github_answered_502_to_is_found_by_its_external_id(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    github.inject("POST", r"/check-runs$", 502, apply=True)  # made, but answered 502
    job = await state.jobs.create(pr_job(), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    [check] = github.check_runs(REPO, HEAD)  # one, not a second made by a retry
    assert check["conclusion"] == "success"
    assert len(github.find_requests("GET", rf"/commits/{HEAD}/check-runs$")) == 1


async def test_an_end_github_fails_to_take_is_sent_again_by_the_retried_run(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(pr_job(), actor="t")
    github.inject("PATCH", r"/check-runs/\d+$", 502, times=2)  # every try of the first run
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert (run.status, run.attempt) == ("completed", 2), run.error
    [check] = github.check_runs(REPO, HEAD)
    assert (check["status"], check["conclusion"]) == ("completed", "success")
    assert len(github.find_requests("POST", r"/check-runs$")) == 1
    [posted] = github.comments_on(REPO, 2)  # the session ran once; its report went once
    assert "changed in pull request 2" in posted["body"]


async def test_the_stand_in_reads_back_check_runs_as_github_does(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    await state.jobs.create(pr_job(), actor="t")
    await send(http, "pull_request", pull_request())
    await work_off(pool)
    [made] = github.check_runs(REPO, HEAD)
    gh = await pool.executor.github.for_installation(INSTALLATION)
    check = await gh.getitem(f"/repos/{REPO}/check-runs/{made['id']}")
    assert (check["conclusion"], check["app"]["id"], check["external_id"]) == (
        "success",
        APP_ID,
        made["external_id"],
    )
    assert [pull["number"] for pull in check["pull_requests"]] == [2]
    suite = check["check_suite"]["id"]
    listed = [
        c
        async for c in gh.getiter(
            f"/repos/{REPO}/check-suites/{suite}/check-runs", iterable_key="check_runs"
        )
    ]
    assert [c["id"] for c in listed] == [made["id"]]


async def test_a_scheduled_pr_job_s_check_run_and_its_re_run_on_that_pull_request(
    world, db
) -> None:
    github, http, state, pool = world
    add_pull(github)
    job = await state.jobs.create(
        pr_job(event_triggers=[], cron_expression="0 9 * * 1-5", filter_query="state:open"),
        actor="t",
    )
    await state.jobs.run_now(job.id, actor="t")
    await work_off(pool)
    [first] = github.check_runs(REPO, HEAD)  # the head GitHub gave for the searched PR
    assert first["conclusion"] == "success"
    payload = rerequested("check_run", id=first["id"], external_id=first["external_id"])
    await send(http, "check_run", payload)
    await work_off(pool)
    old, new = await runs_of(db, job.id)
    assert old.item is None  # it searched; its re-run works on the PR it was asked on
    assert (new.status, new.item["number"], new.items_processed) == ("completed", 2, 1)
    assert [c["conclusion"] for c in github.check_runs(REPO, HEAD)] == ["success", "success"]


async def test_a_new_push_asks_a_running_run_to_stop_unless_the_job_queues(world, db) -> None:
    github, http, state, pool = world
    add_pull(github)
    events = [{"event": "pull_request.opened"}, {"event": "pull_request.synchronize"}]
    cancel = await state.jobs.create(pr_job(event_triggers=events), actor="t")
    queue = await state.jobs.create(
        pr_job(name="Queue", event_triggers=events, concurrency_policy="queue"), actor="t"
    )
    await send(http, "pull_request", pull_request())
    for _ in range(2):  # both running (claimed; their worker has not begun)
        assert await pool.queue.claim(pool.clock.now()) is not None
    await send(http, "pull_request", pull_request("synchronize", NEWER))
    [stopping, _] = await runs_of(db, cancel.id)
    assert stopping.status == "running" and stopping.cancel_requested_at is not None
    assert stopping.error == "superseded by a newer push (0d1e2f3)"
    [finishing, _] = await runs_of(db, queue.id)
    assert (finishing.status, finishing.cancel_requested_at) == ("running", None)
