"""An event arrives over HTTP; a worker runs Claude Code (the stand-in) on the issue in a
checkout; the tracking comment at the GitHub stand-in ends up with the result."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from ghapp.db.models import Session
from ghapp.standins.model import Fault, Turn, Usage
from tests.end_to_end_support import (
    ADMIN,
    INSTALLATION,
    REPO,
    REPO_ID,
    opened_issue,
    triage_job,
    work_off,
)
from tests.support import load, runs_of, send, sign_in


def comment(body: str, login: str, comment_id: int) -> dict:
    data = copy.deepcopy(load("issue_comment/created.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["comment"].update(body=body, id=comment_id, user={"login": login, "type": "User"})
    data["sender"] = {"login": login, "type": "User"}
    return data


async def test_issue_opened_gets_a_tracking_comment_with_the_result(world, db) -> None:
    github, http, state, pool = world
    job = await state.jobs.create(triage_job(), actor="t")
    assert (await send(http, "issues", opened_issue())).json()["runs"] == 1
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.error is None, run.error
    assert (run.status, run.items_processed, run.items_failed) == ("completed", 1, 0)
    assert run.cost_usd > 0
    [posted] = github.comments_on(REPO, 1)
    assert "✅ **Triage** finished." in posted["body"]
    assert "Triage this GitHub issue" in posted["body"]  # the stand-in echoes the prompt
    assert "<!-- ghapp:session=" in posted["body"]
    assert len(github.find_requests("PATCH", r"/issues/comments/")) == 1  # edited in place


async def test_the_session_ran_in_the_issue_s_checkout(world, db, model) -> None:
    # The model reads README.md with the CLI's real Read tool; what came back proves where
    # the session ran.
    github, http, state, pool = world
    model.set_default(
        lambda request: (
            Turn.text("It is a one-line README.")
            if request.last_tool_result
            else Turn.tool("Read", {"file_path": f"{request.cwd}/README.md"})
        )
    )
    job = await state.jobs.create(triage_job(), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    [read] = model.tool_results("Read")
    assert "# Hello-World" in read.content and not read.is_error
    [posted] = github.comments_on(REPO, 1)
    assert "It is a one-line README." in posted["body"]
    async with db.read() as conn:
        session = (await conn.execute(select(Session))).one()
    # Read, the answer, and the answer again when the CLI asks for triage's structured result
    # (this model never gives one: see test_structured_results.py).
    assert session.num_turns == 3 and session.cost_usd > 0 and session.usage["output_tokens"] > 0
    assert session.agent_session_id == model.conversation()[0].session_id  # ghapp named it
    kinds = [event["type"] for event in session.event_log]
    assert kinds[0] == "system" and kinds[-1] == "result" and "user" in kinds
    assert {"tool": "Read"} in [b for e in session.event_log for b in e.get("blocks", [])]


async def test_a_tool_the_job_does_not_allow_is_refused_and_the_run_page_says_so(
    world, db, model
) -> None:
    github, http, state, pool = world
    github.set_permission(REPO, "Codertocat", "write")  # a writer's issue: tools as the job says
    model.set_default(
        [Turn.tool("Bash", {"command": "echo pwned > pwned.txt"}), Turn.text("Could not run it.")]
    )
    job = await state.jobs.create(triage_job(allowed_tools=["Edit"]), actor="t")  # not Bash
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error  # a refusal is not a failure of the session
    [bash] = model.tool_results("Bash")
    assert bash.is_error and "needs approval" in bash.content
    async with db.read() as conn:
        session = (await conn.execute(select(Session))).one()
    assert [d["tool_name"] for d in session.permission_denials] == ["Bash"]
    await sign_in(http, ADMIN)
    page = (await http.get(f"/runs/{run.id}")).text
    assert "Claude Code refused 1 tool call" in page and "<code>Bash</code>" in page
    assert session.agent_session_id in page
    assert f"{session.usage['input_tokens']} in · {session.usage['output_tokens']} out" in page


async def test_a_session_that_keeps_calling_tools_ends_at_max_turns(world, db, model) -> None:
    github, http, state, pool = world
    model.set_default(lambda request: Turn.tool("Glob", {"pattern": "*.md"}))
    job = await state.jobs.create(triage_job(max_turns=2), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert (run.status, run.items_failed) == ("failed", 1)
    [posted] = github.comments_on(REPO, 1)
    assert (
        "❌ **Triage** did not finish: error_max_turns: Reached maximum number of turns (2)"
        in posted["body"]
    )


async def test_slash_command_from_a_writer_and_from_a_reader(world, db) -> None:
    github, http, state, pool = world
    github.set_permission(REPO, "maintainer", "write")
    github.set_permission(REPO, "visitor", "read")
    job = await state.jobs.create(
        triage_job(event_triggers=[], command_triggers=["/triage"]), actor="t"
    )
    asked = github.add_comment(REPO, 1, "/triage please", user="maintainer")
    other = github.add_comment(REPO, 1, "/triage", user="visitor")
    await send(http, "issue_comment", comment("/triage please", "maintainer", asked["id"]))
    await send(http, "issue_comment", comment("/triage", "visitor", other["id"]))
    await work_off(pool)
    writer, reader = await runs_of(db, job.id)
    assert writer.error is None, writer.error
    assert writer.status == "completed" and reader.status == "skipped"
    assert "visitor has read permission" in reader.error
    bodies = [c["body"] for c in github.comments_on(REPO, 1)]
    assert any("Sorry @visitor" in body for body in bodies)
    async with db.read() as conn:
        prompt = await conn.scalar(select(Session.prompt).where(Session.run_id == writer.id))
    assert "Requested with: please" in prompt  # the command's arguments reached the session
    assert [r["content"] for r in github.reactions_on(asked["id"])] == ["eyes"]
    assert github.reactions_on(other["id"]) == []


async def test_scheduled_issue_job_works_its_filter_and_skips_recent_items(world, db) -> None:
    github, _http, state, pool = world
    for number in (10, 11, 12):
        github.add_issue(REPO, number, title=f"Needs triage {number}", labels=["needs-triage"])
    github.add_issue(REPO, 13, title="Closed", labels=["needs-triage"], state="closed")
    github.add_issue(REPO, 14, title="Other label", labels=["bug"])
    job = await state.jobs.create(
        {
            "name": "Morning triage",
            "repo_id": REPO_ID,
            "cron_expression": "0 9 * * 1-5",
            "target_type": "issues",
            "filter_query": "state:open label:needs-triage",
            "command_id": "issue/triage",
            "max_items": 10,
        },
        actor="t",
    )
    await state.jobs.run_now(job.id, actor="t")
    await work_off(pool)
    await state.jobs.run_now(job.id, actor="t")  # again: the same items were done just now
    await work_off(pool)
    first, second = await runs_of(db, job.id)
    assert (first.status, first.items_found, first.items_processed) == ("completed", 3, 3)
    assert (second.status, second.items_processed, second.items_skipped) == ("completed", 0, 3)
    for number in (10, 11, 12):
        [posted] = github.comments_on(REPO, number)
        assert "✅ **Morning triage** finished." in posted["body"]
    assert github.comments_on(REPO, 13) == [] and github.comments_on(REPO, 14) == []


async def test_github_hiccups_are_retried_and_one_comment_is_posted(world, db) -> None:
    github, http, state, pool = world
    github.inject("POST", r"/issues/1/comments$", 502, times=1)
    github.inject_secondary_rate_limit("PATCH", r"/issues/comments/", retry_after=1)
    job = await state.jobs.create(triage_job(), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed"
    [posted] = github.comments_on(REPO, 1)
    assert "finished" in posted["body"]


async def test_daily_session_budget_skips_runs_beyond_it(world, db) -> None:
    github, http, state, pool = world
    pool.executor.settings.daily_session_limit = 1
    job = await state.jobs.create(triage_job(), actor="t")
    github.add_issue(REPO, 2, title="Second issue")
    await send(http, "issues", opened_issue())
    second = opened_issue()
    second["issue"] = dict(second["issue"], number=2, id=99)
    await send(http, "issues", second)
    await work_off(pool)
    first, beyond = await runs_of(db, job.id)
    assert first.status == "completed"
    assert beyond.status == "skipped" and "daily budget reached: 1 sessions today" in beyond.error
    assert github.comments_on(REPO, 2) == []


async def test_pull_request_opened_runs_on_the_pr_head(world, db) -> None:
    github, http, state, pool = world
    github.add_issue(REPO, 2, title="Update the README", pull=True, head="changes", base="master")
    job = await state.jobs.create(
        {
            "name": "Check the PR",
            "repo_id": REPO_ID,
            "target_type": "prs",
            "runner": "shell",
            "shell_command": "cat pr-change.txt",
            "event_triggers": [{"event": "pull_request.opened"}],
        },
        actor="t",
    )
    opened = copy.deepcopy(load("pull_request/opened.payload.json"))
    opened["installation"] = {"id": INSTALLATION}
    assert (await send(http, "pull_request", opened)).json()["runs"] == 1
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    [posted] = github.comments_on(REPO, 2)
    assert "changed in pull request 2" in posted["body"]  # the PR head was checked out


async def test_codebase_job_keeps_one_report_issue(world, db) -> None:
    github, _http, state, pool = world
    job = await state.jobs.create(
        {
            "name": "Weekly health report",
            "repo_id": REPO_ID,
            "target_type": "codebase",
            "command_id": "codebase/health-check",
            "report": "issue",
        },
        actor="t",
    )
    for _ in range(2):
        await state.jobs.run_now(job.id, actor="t")
        await work_off(pool)
    assert [r.status for r in await runs_of(db, job.id)] == ["completed", "completed"]
    created = github.find_requests("POST", r"/issues$")
    edited = github.find_requests("PATCH", r"/issues/\d+$")
    assert len(created) == 1 and len(edited) == 1  # one issue, updated by the second run
    number = int(edited[0].path.rsplit("/", 1)[1])
    report = github.issue(REPO, number)
    assert report["title"] == "Weekly health report" and "finished" in report["body"]


BIG = Usage(input_tokens=2_000_000, output_tokens=1_000_000)  # some $45 at Sonnet prices


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        ("overloaded", "API Error: 529"),
        ("api_error", "API Error: 500"),
        ("budget", "error_max_budget_usd: Reached maximum budget ($0.5)"),
        ("cut", "API Error"),
        ("missing", "the Claude Code executable '/nonexistent/claude' was not found"),
    ],
)
async def test_each_way_a_session_fails_is_reported(world, db, model, failure, words) -> None:
    github, http, state, pool = world
    job_changes: dict = {}
    if failure in ("overloaded", "api_error", "cut"):
        model.fail(getattr(Fault, failure)(), times=20)  # past the CLI's own retries
    elif failure == "budget":
        model.set_default([Turn.tool("Glob", {"pattern": "*"}, usage=BIG), Turn.text("Done.")])
        job_changes["max_budget_usd"] = 0.5
    else:
        pool.executor.settings.claude_bin = "/nonexistent/claude"
    job = await state.jobs.create(triage_job(**job_changes), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "failed" and words in run.error, run.error
    [posted] = github.comments_on(REPO, 1)
    assert "❌ **Triage** did not finish" in posted["body"] and words in posted["body"]


@pytest.mark.slow
async def test_a_model_that_stalls_is_stopped_by_the_job_s_timeout(world, db, model) -> None:
    github, http, state, pool = world
    model.fail(Fault.stall(), times=5)
    job = await state.jobs.create(triage_job(timeout_seconds=10), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "failed" and "timed out after 10 s" in run.error
    async with db.read() as conn:
        session = (await conn.execute(select(Session))).one()
    assert session.status == "timed_out"
    [posted] = github.comments_on(REPO, 1)
    assert "timed out after 10 s" in posted["body"]


async def test_builtin_runner_and_its_interface(world, db) -> None:
    from ghapp.runners.builtin import REGISTRY, analyzer

    github, _http, state, pool = world

    @analyzer("codebase/health-check")
    async def count_files(work, job) -> str:
        return f"{sum(1 for p in work.iterdir() if p.is_file())} files at the top level"

    try:
        job = await state.jobs.create(
            {
                "name": "Count",
                "repo_id": REPO_ID,
                "target_type": "codebase",
                "runner": "builtin",
                "command_id": "codebase/health-check",
                "report": "issue",
            },
            actor="t",
        )
        await state.jobs.run_now(job.id, actor="t")
        await work_off(pool)
    finally:
        REGISTRY.pop("codebase/health-check", None)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    [created] = github.find_requests("POST", r"/issues$")
    assert "1 files at the top level" in created.json["body"]  # README.md at master


async def test_fork_head_runs_without_write_tools(world, db, model) -> None:
    github, http, state, pool = world
    github.add_issue(
        REPO,
        2,
        title="From a fork",
        pull=True,
        head="changes",
        base="master",
        head_repo="mallory/Hello-World",
    )
    await state.jobs.create(
        {
            "name": "Review",
            "repo_id": REPO_ID,
            "target_type": "prs",
            "command_id": "pr/review",
            "allowed_tools": ["Read", "Bash(git diff:*)"],
            "event_triggers": [{"event": "pull_request.opened"}],
        },
        actor="t",
    )
    opened = copy.deepcopy(load("pull_request/opened.payload.json"))
    opened["installation"] = {"id": INSTALLATION}
    opened["pull_request"]["head"]["repo"] = dict(
        opened["pull_request"]["head"]["repo"], id=999, full_name="mallory/Hello-World"
    )
    await send(http, "pull_request", opened)
    await work_off(pool)
    [request] = model.conversation()
    # All the session even saw (the CLI adds a placeholder for tools it could load later).
    assert set(request.tools) - {"DeferredToolPlaceholder"} == {"Glob", "Grep", "Read"}


async def test_scheduled_job_pages_through_search_past_recent_items(world, db) -> None:
    from datetime import timedelta

    from sqlalchemy import insert, update

    from ghapp.clock import FakeClock
    from ghapp.db.models import Job, Run
    from ghapp.scheduler.loop import Scheduler

    github, _http, state, pool = world
    for number in range(100, 205):  # 105 open issues needing triage
        github.add_issue(REPO, number, title=f"Backlog {number}", labels=["needs-triage"])
    job = await state.jobs.create(
        {
            "name": "Backlog",
            "repo_id": REPO_ID,
            "cron_expression": "0 9 * * *",
            "target_type": "issues",
            "filter_query": "label:needs-triage",
            "command_id": "issue/triage",
            "max_items": 2,
        },
        actor="t",
    )
    now = datetime.now(UTC)
    async with db.write() as conn:  # an earlier run already did the 103 oldest
        earlier = (
            await conn.execute(
                insert(Run).values(job_id=job.id, trigger_type="manual", status="completed")
            )
        ).inserted_primary_key[0]
        await conn.execute(
            insert(Session),
            [
                {
                    "run_id": earlier,
                    "item_kind": "issue",
                    "item_number": n,
                    "status": "completed",
                    "completed_at": now,
                }
                for n in range(100, 203)
            ],
        )
        due = now - timedelta(seconds=1)  # the occurrence fell due a moment ago
        await conn.execute(update(Job).where(Job.id == job.id).values(next_run_at=due))
    await Scheduler(db, FakeClock(now), state.signals).tick()
    await work_off(pool)
    run = next(r for r in await runs_of(db, job.id) if r.trigger_type == "scheduled")
    assert (run.status, run.items_found, run.items_skipped, run.items_processed) == (
        "completed",
        105,
        103,
        2,
    )
    pages = [r.query["page"] for r in github.find_requests("GET", r"^/search/issues$")]
    assert pages == ["1", "2"]
    assert [len(github.comments_on(REPO, n)) for n in (203, 204)] == [1, 1]
