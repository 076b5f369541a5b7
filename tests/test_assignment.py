"""The assignment trigger: an issue assigned to the app's bot user runs the jobs that opt in,
and unassigning the bot stops them.

End to end with the real Claude Code CLI in the sandbox and the model stand-in (the world of
tests.test_attacks): a writer's assignment opens a pull request that closes the issue; an
unassignment while the session waits on the model cancels it; assigning someone else, or
by someone without write access, starts nothing.
"""

from __future__ import annotations

import asyncio
import copy

import pytest
from pydantic import ValidationError

from ghapp.api.views import schedule_type
from ghapp.clock import SystemClock
from ghapp.config.schema import ConfigInvalid, parse_config, validate_config
from ghapp.dashboard.describe import describe_trigger, is_manual
from ghapp.db.models import Job, TriggerType
from ghapp.jobs.spec import JobSpec
from ghapp.standins.model import Fault, ModelRequest, Turn
from ghapp.triggers.mentions import bot_login
from ghapp.webhooks.triggers import UNASSIGNED
from ghapp.worker.assignment import ASSIGN_REFUSED_REPLY
from tests.support import load, runs_of, send
from tests.test_attacks import INSTALLATION, REPO, REPO_ID, STRANGER, WRITER, world
from tests.test_mentions import learn_the_slug

__all__ = ["world"]  # the end-to-end world of tests.test_attacks, reused as it is

FIXED = "FIXED-a7: the parser no longer drops the last line."


def assignment(action: str, number: int, assignee: str, sender: str) -> dict:
    data = copy.deepcopy(load(f"issues/{action}.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["issue"].update(number=number, id=10_000 + number)
    data["issue"].pop("pull_request", None)
    data["assignee"] = {"login": assignee, "type": "Bot" if "[bot]" in assignee else "User"}
    data["issue"]["assignees"] = [data["assignee"]] if action == "assigned" else []
    data["sender"] = {"login": sender, "type": "User"}
    return data


def fix_job(**changes: object) -> dict:
    spec: dict = {
        "name": "Fix",
        "repo_id": REPO_ID,
        "target_type": "issues",
        "command_id": "issue/fix",  # the repository's own (.claude/commands/issue/fix.md)
        "allowed_tools": ["Bash", "Edit", "Write"],
        "task_config": {"publish": "pr"},
        "assignment_trigger": True,
    }
    spec.update(changes)
    return spec


def opened_pulls(world) -> list[dict]:
    """Pull requests ghapp opened (#2 is mallory's, from the world)."""
    return [i for i in world.github.issues(REPO) if i.get("pull_request") and i["number"] != 2]


def fixes(request: ModelRequest) -> Turn:
    """Write the fix with the CLI's real Write tool, then say so."""
    if request.last_tool_result is None:
        return Turn.tool("Write", {"file_path": f"{request.cwd}/FIXED.md", "content": FIXED})
    return Turn.text(FIXED)


async def test_an_issue_assigned_to_the_app_opens_a_pull_request_that_fixes_it(world) -> None:
    slug = await learn_the_slug(world)
    await world.state.jobs.create(fix_job(), actor="t")
    world.model.set_default(fixes)
    [run] = await world.run("issues", assignment("assigned", 1, bot_login(slug), WRITER))
    assert run.status == "completed", run.error
    assert (run.trigger_type, run.trigger_detail["requested_by"]) == (
        TriggerType.assignment.value,
        WRITER,
    )
    [written] = world.model.tool_results("Write")
    assert not written.is_error, written.content
    [pull] = opened_pulls(world)
    body = world.github.pull(REPO, pull["number"])["body"]
    assert "Fixes #1" in body  # merging it closes the issue
    assert "<!-- ghapp:publish job=" in body  # the existing marker kept
    [report] = [c for c in world.github.comments_on(REPO, 1) if c["user"]["type"] == "Bot"]
    assert FIXED in report["body"] and pull["html_url"] in report["body"]


async def test_unassigning_the_app_cancels_its_running_session(world) -> None:
    slug = await learn_the_slug(world)
    job = await world.state.jobs.create(fix_job(), actor="t")
    world.model.fail(Fault.stall(), times=1)  # the session waits on the model
    payload = assignment("assigned", 1, bot_login(slug), WRITER)
    assert (await send(world.http, "issues", payload)).json()["runs"] == 1
    claimed = await world.pool.queue.claim(SystemClock().now())
    assert claimed is not None
    working = asyncio.create_task(world.pool.process(claimed))
    await asyncio.to_thread(world.model.wait_until, lambda: world.model.stalled == 1, 60.0)

    # Anyone's unassignment stops it (GitHub lets only triage or more unassign): it only
    # stops work.
    gone = assignment("unassigned", 1, bot_login(slug), STRANGER)
    assert (await send(world.http, "issues", gone)).status_code == 202
    await asyncio.wait_for(working, 60)  # the cancel wakes the worker at once
    [run] = await runs_of(world.state.db, job.id)
    assert run.status == "cancelled", run.error
    [report] = [c for c in world.github.comments_on(REPO, 1) if c["user"]["type"] == "Bot"]
    assert f"cancelled: unassigned by @{STRANGER}" in report["body"]
    assert opened_pulls(world) == []


async def test_unassigning_cancels_a_queued_run_at_once(world) -> None:
    slug = await learn_the_slug(world)
    job = await world.state.jobs.create(fix_job(), actor="t")
    await send(world.http, "issues", assignment("assigned", 1, bot_login(slug), WRITER))
    await send(world.http, "issues", assignment("unassigned", 1, bot_login(slug), WRITER))
    [run] = await runs_of(world.state.db, job.id)
    assert (run.status, run.error) == ("cancelled", UNASSIGNED.format(login=WRITER))
    assert await world.pool.queue.claim(SystemClock().now()) is None


async def test_an_unassignment_stops_only_that_issue_s_assignment_runs(world) -> None:
    slug = await learn_the_slug(world)
    job = await world.state.jobs.create(fix_job(), actor="t")
    other = await world.state.jobs.create(
        fix_job(
            name="Triage",
            assignment_trigger=False,
            command_id="issue/triage",
            event_triggers=[{"event": "issues.unassigned"}],
            task_config={},
        ),
        actor="t",
    )
    await send(world.http, "issues", assignment("assigned", 1, bot_login(slug), WRITER))
    await send(world.http, "issues", assignment("assigned", 3, bot_login(slug), WRITER))
    await send(world.http, "issues", assignment("unassigned", 1, bot_login(slug), WRITER))
    statuses = {r.item["number"]: r.status for r in await runs_of(world.state.db, job.id)}
    assert statuses == {1: "cancelled", 3: "queued"}
    [event_run] = await runs_of(world.state.db, other.id)  # an event job on unassigned
    assert event_run.status == "queued"


async def test_assigning_someone_else_or_by_a_bot_starts_nothing(world) -> None:
    slug = await learn_the_slug(world)
    await world.state.jobs.create(fix_job(), actor="t")
    assert await world.run("issues", assignment("assigned", 1, WRITER, WRITER)) == []
    assert await world.run("issues", assignment("assigned", 1, f"{slug}-other[bot]", WRITER)) == []
    by_a_bot = assignment("assigned", 1, bot_login(slug), "renovate[bot]")
    by_a_bot["sender"]["type"] = "Bot"
    assert await world.run("issues", by_a_bot) == []
    # Unassigning someone else stops nothing.
    await send(world.http, "issues", assignment("assigned", 1, bot_login(slug), WRITER))
    await send(world.http, "issues", assignment("unassigned", 1, WRITER, WRITER))
    [run] = await runs_of(world.state.db)
    assert run.status == "queued"


async def test_an_assignment_by_someone_without_write_access_is_refused_politely(world) -> None:
    slug = await learn_the_slug(world)
    await world.state.jobs.create(fix_job(), actor="t")
    [run] = await world.run("issues", assignment("assigned", 1, bot_login(slug), STRANGER))
    assert run.status == "skipped" and "write or admin" in (run.error or "")
    reply = ASSIGN_REFUSED_REPLY.format(login=STRANGER)
    assert any(reply in c["body"] for c in world.github.comments_on(REPO, 1))
    assert world.model.conversation() == []  # no session


async def test_a_job_without_the_trigger_is_not_run_by_an_assignment(world) -> None:
    slug = await learn_the_slug(world)
    await world.state.jobs.create(fix_job(assignment_trigger=False), actor="t")
    assert await world.run("issues", assignment("assigned", 1, bot_login(slug), WRITER)) == []


def test_only_issues_are_assigned_to_the_app() -> None:
    with pytest.raises(ValidationError, match="assignment_trigger: issues are what is assigned"):
        JobSpec.model_validate(fix_job(target_type="prs", command_id="pr/review"))
    assert JobSpec.model_validate(fix_job(command_id="issue/triage")).assignment_trigger


def test_the_dashboard_and_the_task_api_say_how_such_a_job_starts() -> None:
    job = Job(**JobSpec.model_validate(fix_job(command_id="issue/triage")).model_dump())
    assert describe_trigger(job) == "when assigned"
    assert not is_manual(job) and schedule_type(job) == "event"
    job.mention_trigger = True
    assert describe_trigger(job) == "on @mention · when assigned"


def test_ghapp_yml_declares_both_triggers_and_names_the_line_of_a_wrong_one() -> None:
    text = (
        "version: 1\njobs:\n"
        "  - name: Fix when assigned\n    command: issue/triage\n"
        "    assignment_trigger: true\n    mention_trigger: true\n"
        "  - name: Reviews\n    target: prs\n    command: pr/review\n"
        "    assignment_trigger: true\n"
    )
    with pytest.raises(ConfigInvalid) as refused:
        validate_config(parse_config(text), REPO_ID)
    [problem] = refused.value.problems
    assert (problem.line, problem.where) == (10, "jobs[1].assignment_trigger")
    assert "issues are what is assigned" in problem.message
    [ok] = validate_config(parse_config(text.split("  - name: Reviews")[0]), REPO_ID)
    assert ok.spec.assignment_trigger and ok.spec.mention_trigger
