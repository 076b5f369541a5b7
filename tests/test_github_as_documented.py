"""Three paths that once only worked against a GitHub stand-in written by ghapp's own
authors, each end to end as GitHub documents it: a slash command in a pull request's diff
(reacted to on the *review comment* endpoint), a pull-request trigger's ``paths:``
(applied from every page of the PR's files), and the address a prompt gives of an item
(the page people open, never the API's)."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from ghapp.db.models import Session
from ghapp.worker.paths import any_matches
from tests.end_to_end_support import INSTALLATION, REPO, REPO_ID, triage_job, work_off
from tests.support import load, runs_of, send


def review_comment(body: str, login: str, comment_id: int) -> dict:
    data = copy.deepcopy(load("pull_request_review_comment/created.payload.json"))
    data["installation"] = {"id": INSTALLATION}
    data["comment"].update(body=body, id=comment_id, user={"login": login, "type": "User"})
    data["sender"] = {"login": login, "type": "User"}
    return data


def pr_job(name: str, **changes: object) -> dict:
    job: dict[str, object] = {
        "name": name,
        "repo_id": REPO_ID,
        "target_type": "prs",
        "runner": "shell",
        "shell_command": "cat pr-change.txt",
    }
    job.update(changes)
    return job


async def test_a_command_in_a_pull_request_diff_is_reacted_to_on_the_review_comment(
    world, db
) -> None:
    github, http, state, pool = world
    github.add_issue(REPO, 2, title="Update the README", pull=True, head="changes", base="master")
    github.set_permission(REPO, "maintainer", "write")
    job = await state.jobs.create(pr_job("Review", command_triggers=["/review"]), actor="t")
    asked = github.add_review_comment(REPO, 2, "/review this hunk", user="maintainer")
    sent = await send(
        http,
        "pull_request_review_comment",
        review_comment("/review this hunk", "maintainer", asked["id"]),
    )
    assert sent.json()["runs"] == 1
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    assert [r["content"] for r in github.reactions_on_review_comment(asked["id"])] == ["eyes"]
    assert github.find_requests("POST", r"/issues/comments/\d+/reactions$") == []
    [posted] = github.comments_on(REPO, 2)
    assert "changed in pull request 2" in posted["body"]


async def test_paths_are_applied_from_every_page_of_the_pull_request_s_files(world, db) -> None:
    github, http, state, pool = world
    github.add_issue(REPO, 2, title="Update the README", pull=True, head="changes", base="master")
    files = [f"docs/page-{n}.md" for n in range(150)]
    files[120] = "src/app.py"  # only on the second page of 100
    github.set_pr_files(REPO, 2, files)
    opened = {"event": "pull_request.opened"}
    in_src = await state.jobs.create(
        pr_job("Source review", event_triggers=[{**opened, "paths": ["src/**"]}]), actor="t"
    )
    in_lib = await state.jobs.create(
        pr_job("Library review", event_triggers=[{**opened, "paths": ["lib/**", "*.py"]}]),
        actor="t",
    )
    payload = copy.deepcopy(load("pull_request/opened.payload.json"))
    payload["installation"] = {"id": INSTALLATION}
    assert (await send(http, "pull_request", payload)).json()["runs"] == 2
    await work_off(pool)
    [ran] = await runs_of(db, in_src.id)
    [skipped] = await runs_of(db, in_lib.id)
    assert ran.status == "completed", ran.error
    assert skipped.status == "skipped"
    assert skipped.error == (
        "no file this pull request changes matches paths lib/**, *.py (150 files changed)"
    )
    pages = [r.query.get("page", "1") for r in github.find_requests("GET", r"/pulls/2/files$")]
    assert pages == ["1", "2", "1", "2"]  # both runs read both pages
    async with db.read() as conn:
        sessions = (await conn.execute(select(Session.run_id))).scalars().all()
    assert sessions == [ran.id]  # no session started for the skipped run
    [posted] = github.comments_on(REPO, 2)  # and nothing said on the PR for it
    assert "Source review" in posted["body"]


@pytest.mark.parametrize(
    ("globs", "paths", "expected"),
    [
        (["src/**"], ["src/a/b.py"], True),
        (["src/**"], ["docs/src/a.py"], False),
        (["*.md"], ["README.md"], True),
        (["*.md"], ["docs/README.md"], False),  # * stays within one folder
        (["**/*.md"], ["README.md", "x"], True),
        (["**/*.md"], ["docs/deep/a.md"], True),
        (["docs/?.txt"], ["docs/ab.txt"], False),
        (["/src/**"], ["src/x"], True),  # a leading slash means the repository's root
        (["src/**"], [], False),
    ],
)
def test_paths_globs_read_as_in_a_github_actions_workflow(globs, paths, expected) -> None:
    assert any_matches(globs, paths) is expected


async def test_a_scheduled_prompt_links_the_item_s_page_not_its_api_address(world, db) -> None:
    github, _http, state, pool = world
    github.add_issue(REPO, 4, title="Flaky test", labels=["needs-triage"])
    job = await state.jobs.create(
        {
            "name": "Morning triage",
            "repo_id": REPO_ID,
            "cron_expression": "0 9 * * 1-5",
            "target_type": "issues",
            "filter_query": "label:needs-triage",
            "command_id": "issue/triage",
        },
        actor="t",
    )
    await state.jobs.run_now(job.id, actor="t")
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "completed", run.error
    async with db.read() as conn:
        prompt = await conn.scalar(select(Session.prompt).where(Session.run_id == run.id))
    assert f"URL: https://github.com/{REPO}/issues/4\n" in prompt
    assert "/repos/" not in prompt


async def test_an_event_prompt_links_the_item_s_page(world, db) -> None:
    _github, http, state, pool = world
    job = await state.jobs.create(triage_job(), actor="t")
    payload = copy.deepcopy(load("issues/opened.payload.json"))
    payload["installation"] = {"id": INSTALLATION}
    await send(http, "issues", payload)
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    async with db.read() as conn:
        prompt = await conn.scalar(select(Session.prompt).where(Session.run_id == run.id))
    assert f"URL: {payload['issue']['html_url']}\n" in prompt
