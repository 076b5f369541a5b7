"""Commands from the repository's ``.claude/commands``: parsed, overriding built-ins, listed
by target type, accepted when a job is saved, and used by the session in the checkout."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from ghapp.app import create_app
from ghapp.db.models import Session
from ghapp.repo_commands import command_id_of, from_checkout, merge, parse_command
from ghapp.runqueue.claim import RunQueue
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from ghapp.worker.execute import SessionExecutor
from ghapp.worker.pool import WorkerPool
from tests.conftest import make_settings
from tests.end_to_end_support import INSTALLATION, REPO, REPO_ID, opened_issue, work_off
from tests.support import add_repository, load, send

TRIAGE = """---
description: Triage the way this project does it
allowed-tools: Read, Grep
model: claude-sonnet-4-5
argument-hint: "[area]"
---
Label this issue for the Hello-World team. Focus: $ARGUMENTS.
Never change files.
"""
LABEL = "Pick one label from bug, docs, question.\n"


def test_a_command_file_gives_id_front_matter_and_targets():
    command = parse_command("issue/triage.md", TRIAGE)
    assert (command.id, command.source, command.targets) == (
        "issue/triage",
        "repository",
        frozenset({"issues"}),
    )
    assert command.description == "Triage the way this project does it"
    assert command.allowed_tools == ("Read", "Grep") and command.model == "claude-sonnet-4-5"
    assert command.argument_hint == "[area]"
    prompt = command.render({"number": 3, "title": "Crash", "body": "It crashes."}, "parser")
    assert prompt.startswith("Label this issue for the Hello-World team. Focus: parser.")
    assert "ISSUE #3: Crash" in prompt and "It crashes." in prompt
    assert command_id_of("deploy.md") == "repo/deploy"
    assert command_id_of("Ops/Check Deps.md") == "ops/check-deps"
    assert command_id_of("notes.txt") is None
    assert parse_command("ops/check.md", "Check.\n").targets == frozenset()  # any target


def test_repository_commands_override_built_ins_and_bad_files_are_reported(tmp_path):
    root = tmp_path / ".claude" / "commands"
    (root / "issue").mkdir(parents=True)
    (root / "issue" / "triage.md").write_text(TRIAGE)
    (root / "issue" / "label.md").write_text(LABEL)
    (root / "broken.md").write_text("---\n: [\n---\nbody\n")
    catalog = from_checkout(tmp_path)
    assert catalog.commands["issue/triage"].source == "repository"
    assert catalog.commands["pr/review"].source == "builtin"
    assert [c.id for c in catalog.for_target("issues")] == [
        "code/ask",
        "issue/label",
        "issue/root-cause",
        "issue/triage",
    ]
    assert "codebase/health-check" in [c.id for c in catalog.for_target("codebase")]
    assert len(catalog.problems) == 1 and "broken.md" not in catalog.commands
    assert merge({}).commands["issue/triage"].source == "builtin"


def test_templates_in_repository_commands_are_not_rendered():
    command = parse_command("issue/x.md", "{{ config.__class__ }} {% for x in y %}$ARGUMENTS\n")
    prompt = command.render(None, "a")
    assert prompt.startswith("{{ config.__class__ }} {% for x in y %}a")


@pytest.fixture
async def world(db_url, db, tmp_path, claude_bin, model):
    await add_repository(db)
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    github.add_issue(REPO, 1, title="Spelling error in the README file", user="Codertocat")
    files = {
        "README.md": "# Hello-World\n",
        ".claude/commands/issue/triage.md": TRIAGE,
        ".claude/commands/issue/label.md": LABEL,
    }
    for path, text in files.items():
        github.add_file(REPO, path, text)
    async with github.serve() as base_url:
        settings = make_settings(
            db_url,
            tmp_path,
            github_api_url=base_url,
            git_url=bare_repository(tmp_path, REPO, files=files),
            claude_bin=claude_bin,
            app_id=99,
            private_key=github.private_key_pem,
            admin_token="adm",
        )
        app = create_app(settings, db=db)
        state = app.state.ghapp
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            executor = SessionExecutor(db, settings, state.github, state.clock)
            pool = WorkerPool(db, state.clock, state.signals, RunQueue(db, "w"), executor)
            yield http, state, pool, model
            await state.github.aclose()


async def test_the_api_lists_commands_by_target_with_the_repositorys_own(world):
    http, _state, _pool, _model = world
    answer = await http.get(
        f"/api/repos/{REPO_ID}/commands?target=issues", headers={"Authorization": "Bearer adm"}
    )
    assert answer.status_code == 200, answer.text
    listed = {c["id"]: c for c in answer.json()["commands"]}
    assert list(listed) == ["code/ask", "issue/label", "issue/root-cause", "issue/triage"]
    assert listed["issue/triage"]["source"] == "repository"
    assert listed["issue/triage"]["path"] == ".claude/commands/issue/triage.md"
    assert listed["issue/root-cause"]["source"] == "builtin"


async def test_a_job_may_use_a_repository_command_and_sessions_run_it(world):
    http, state, pool, model = world
    job = await state.jobs.create(
        {
            "name": "Label",
            "repo_id": REPO_ID,
            "target_type": "issues",
            "command_id": "issue/triage",
            "event_triggers": [{"event": "issues.opened"}],
        },
        actor="t",
    )
    label = await state.jobs.create(
        {"name": "Label", "repo_id": REPO_ID, "command_id": "issue/label"}, actor="t"
    )
    assert label.command_id == "issue/label"  # a repository-only id is accepted on save
    with pytest.raises(Exception, match="unknown command_id 'issue/nope'"):
        await state.jobs.create(
            {"name": "x", "repo_id": REPO_ID, "command_id": "issue/nope"}, actor="t"
        )
    assert (await send(http, "issues", opened_issue())).status_code == 202
    await work_off(pool)
    async with state.db.read() as conn:
        [session] = (await conn.execute(select(Session))).all()
    assert session.status == "completed", session.error
    assert session.prompt.startswith("Label this issue for the Hello-World team. Focus: .")
    kinds = [event["type"] for event in session.event_log]  # the log the dashboard shows live
    assert kinds[0] == "system" and kinds[-1] == "result" and "assistant" in kinds
    assert session.agent_session_id and session.num_turns >= 1
    [request] = model.conversation()
    assert "Label this issue for the Hello-World team" in request.prompt
    assert request.model == "claude-sonnet-4-5"  # the command's front matter
    assert job.id is not None and load("issues/opened.payload.json")["issue"]["number"] == 1
