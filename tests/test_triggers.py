"""Event and slash-command triggers queue runs in the delivery's own transaction."""

from __future__ import annotations

import copy
import json

import httpx
import pytest

from ghapp.app import create_app
from tests.support import add_repository, load, runs_of, send

REPO = 186853002
INSTALLATION = 957387


@pytest.fixture
async def app(settings, db):
    await add_repository(db)
    return create_app(settings, db=db)


@pytest.fixture
async def http(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ghapp.test") as client:
        yield client


def spec(**changes: object) -> dict[str, object]:
    job: dict[str, object] = {
        "name": "triage new issues",
        "repo_id": REPO,
        "target_type": "issues",
        "command_id": "issue/triage",
    }
    job.update(changes)
    return job


def issue_opened(**changes: object) -> dict:
    data = copy.deepcopy(load("issues/opened.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data.update(changes)
    return data


def comment(body: str, *, action: str = "created", bot: bool = False) -> dict:
    data = copy.deepcopy(load("issue_comment/created.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["action"] = action
    data["comment"]["body"] = body
    data["comment"]["id"] = abs(hash(body)) % 10**9 + 1
    if bot:
        data["sender"] = {"login": "ghapp[bot]", "type": "Bot", "id": 2}
        data["comment"]["user"] = data["sender"]
    return data


async def test_issue_opened_queues_a_run_with_the_issue_as_item(app, http, db) -> None:
    jobs = app.state.ghapp.jobs
    job = await jobs.create(spec(event_triggers=[{"event": "issues.opened"}]), actor="t")
    other = await jobs.create(
        spec(name="on close", event_triggers=[{"event": "issues.closed"}]), actor="t"
    )
    response = await send(http, "issues", issue_opened(), delivery="d-1")
    assert response.status_code == 202 and response.json()["runs"] == 1
    [run] = await runs_of(db)
    assert (run.job_id, run.trigger_type, run.status) == (job.id, "event", "queued")
    assert (run.repo_id, run.installation_id, run.delivery_id) == (REPO, INSTALLATION, "d-1")
    assert run.item["number"] == 1 and run.item["item_kind"] == "issue"
    assert run.item["title"] == "Spelling error in the README file"
    assert run.trigger_detail == {"event": "issues.opened", "actor": "Codertocat"}
    assert await runs_of(db, other.id) == []
    assert (await jobs.get(job.id)).run_count == 1


async def test_redelivery_queues_nothing_more(app, http, db) -> None:
    await app.state.ghapp.jobs.create(spec(event_triggers=[{"event": "issues"}]), actor="t")
    for _ in range(3):
        await send(http, "issues", issue_opened(), delivery="same")
    assert len(await runs_of(db)) == 1


async def test_event_conditions(app, http, db) -> None:
    jobs = app.state.ghapp.jobs
    bug = await jobs.create(
        spec(name="bugs", event_triggers=[{"event": "issues.opened", "labels": ["BUG"]}]),
        actor="t",
    )
    docs = await jobs.create(
        spec(name="docs", event_triggers=[{"event": "issues.opened", "labels": ["docs"]}]),
        actor="t",
    )
    members = await jobs.create(
        spec(
            name="members",
            event_triggers=[{"event": "issues.opened", "author_association": ["member"]}],
        ),
        actor="t",
    )
    await send(http, "issues", issue_opened())  # labelled "bug", opened by the OWNER
    assert [r.job_id for r in await runs_of(db)] == [bug.id]
    assert not await runs_of(db, docs.id) and not await runs_of(db, members.id)


async def test_pull_request_conditions(app, http, db) -> None:
    jobs = app.state.ghapp.jobs
    pr_spec = {"target_type": "prs", "command_id": "pr/review"}
    ready = await jobs.create(
        spec(
            name="ready",
            **pr_spec,
            event_triggers=[
                {
                    "event": "pull_request.opened",
                    "draft": False,
                    "base_branches": ["master", "release/*"],
                }
            ],
        ),
        actor="t",
    )
    drafts = await jobs.create(
        spec(
            name="drafts",
            **pr_spec,
            event_triggers=[{"event": "pull_request.opened", "draft": True}],
        ),
        actor="t",
    )
    await send(http, "pull_request", load("pull_request/opened.payload.json"))
    assert [r.job_id for r in await runs_of(db)] == [ready.id]
    assert not await runs_of(db, drafts.id)
    [run] = await runs_of(db)
    assert run.item["pull"]["base_ref"] == "master" and run.item["item_kind"] == "pr"


async def test_events_caused_by_bots_are_ignored_unless_asked_for(app, http, db) -> None:
    jobs = app.state.ghapp.jobs
    await jobs.create(spec(event_triggers=[{"event": "issues.opened"}]), actor="t")
    bots = await jobs.create(
        spec(name="incl bots", event_triggers=[{"event": "issues.opened", "include_bots": True}]),
        actor="t",
    )
    await send(http, "issues", issue_opened(sender={"login": "renovate[bot]", "type": "Bot"}))
    assert [r.job_id for r in await runs_of(db)] == [bots.id]


@pytest.mark.parametrize(
    ("body", "expected_args"),
    [
        ("/triage", [""]),
        ("Thanks!\n/triage please look at the logs\n", ["please look at the logs"]),
        ("/TRIAGE now", ["now"]),
    ],
)
async def test_slash_command_queues_a_run_recording_who_asked(
    app, http, db, body, expected_args
) -> None:
    job = await app.state.ghapp.jobs.create(spec(command_triggers=["/triage"]), actor="t")
    response = await send(http, "issue_comment", comment(body))
    assert response.json()["runs"] == 1
    [run] = await runs_of(db)
    assert (run.job_id, run.trigger_type) == (job.id, "command")
    assert run.trigger_detail["requested_by"] == "Codertocat"
    assert run.trigger_detail["author_association"] == "OWNER"
    assert [run.trigger_detail["args"]] == expected_args
    assert run.trigger_detail["comment_id"] == run.item["comment_id"]


@pytest.mark.parametrize(
    ("body", "action", "bot"),
    [
        ("```\n/triage\n```", "created", False),  # fenced code
        ("> /triage\nquoting someone", "created", False),  # a quote
        ("please /triage", "created", False),  # not at the start of a line
        ("/triage", "edited", False),  # only new comments
        ("/triage", "created", True),  # bots, our own app included
        ("/triaged", "created", False),  # another command
    ],
)
async def test_what_is_not_a_command(app, http, db, body, action, bot) -> None:
    await app.state.ghapp.jobs.create(spec(command_triggers=["/triage"]), actor="t")
    response = await send(http, "issue_comment", comment(body, action=action, bot=bot))
    assert response.status_code == 202 and response.json()["runs"] == 0
    assert await runs_of(db) == []


async def test_most_specific_command_wins(app, http, db) -> None:
    jobs = app.state.ghapp.jobs
    pr = {"target_type": "prs", "command_id": "pr/review"}
    general = await jobs.create(spec(name="review", command_triggers=["/review"], **pr), actor="t")
    security = await jobs.create(
        spec(name="security", command_triggers=["/review security"], **pr), actor="t"
    )
    await send(http, "issue_comment", comment("/review security deeply"))
    await send(http, "issue_comment", comment("/review style"))
    runs = await runs_of(db)
    assert [(r.job_id, r.trigger_detail["args"]) for r in runs] == [
        (security.id, "deeply"),
        (general.id, "style"),
    ]


async def test_installation_wide_job_covers_its_selected_repositories(app, http, db) -> None:
    await add_repository(db, repo_id=555, full_name="Codertocat/Other")
    jobs = app.state.ghapp.jobs
    everywhere = await jobs.create(
        spec(
            name="all",
            repo_id=None,
            installation_id=INSTALLATION,
            repo_selection="all",
            event_triggers=[{"event": "issues.opened"}],
        ),
        actor="t",
    )
    elsewhere = await jobs.create(
        spec(
            name="list",
            repo_id=None,
            installation_id=INSTALLATION,
            repo_selection="list",
            repo_ids=[555],
            event_triggers=[{"event": "issues.opened"}],
        ),
        actor="t",
    )
    plain = load("issues/opened.payload.json")  # a plain repository webhook: no installation
    await send(http, "issues", plain)
    runs = await runs_of(db)
    assert [r.job_id for r in runs] == [everywhere.id]
    assert runs[0].installation_id == INSTALLATION  # looked up from the repository
    assert not await runs_of(db, elsewhere.id)


async def test_paused_job_is_not_triggered_and_resume_is_seen_at_once(app, http, db) -> None:
    jobs = app.state.ghapp.jobs
    job = await jobs.create(spec(event_triggers=[{"event": "issues.opened"}]), actor="t")
    await jobs.pause(job.id, actor="t")
    await send(http, "issues", issue_opened(), delivery="while-paused")
    assert await runs_of(db) == []
    await jobs.resume(job.id, actor="t")
    await send(http, "issues", issue_opened(marker=1), delivery="after-resume")
    assert len(await runs_of(db)) == 1


async def test_job_created_by_another_process_is_seen(app, http, db, settings) -> None:
    """Another app on the same database (another replica) creates the job."""
    other = create_app(settings, db=db)
    await other.state.ghapp.jobs.create(spec(event_triggers=[{"event": "issues"}]), actor="t")
    index = app.state.ghapp.index
    index.refresh_every = 0  # the check interval is what bounds the delay; here: none
    await send(http, "issues", issue_opened())
    assert len(await runs_of(db)) == 1
    assert json.dumps((await runs_of(db))[0].item)  # the item is plain JSON
