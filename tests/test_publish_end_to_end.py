"""A session that edits files, end to end: the issue event → the stand-in Claude edits the
checkout → a branch is pushed to the bare repository and a PR opened at the GitHub stand-in,
linked in the tracking comment; retrying the run updates the same PR with a new commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.end_to_end_support import REPO, opened_issue, tidy, triage_job, work_off
from tests.support import send

BRANCH = "ghapp/tidy-the-readme/issue-1"


def bot_commits(bare: Path) -> list[str]:
    done = subprocess.run(
        ["git", "--git-dir", str(bare), "log", "--format=%an|%s", BRANCH],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line.startswith("ghapp[bot]|")]


async def test_a_session_that_edits_opens_and_then_updates_a_pull_request(
    world,
    model,
    tmp_path,
):
    github, http, state, pool = world
    model.set_default(tidy)
    job = await state.jobs.create(
        triage_job(
            name="Tidy the README", task_config={"publish": "pr"}, permission_mode="acceptEdits"
        ),
        actor="t",
    )
    assert (await send(http, "issues", opened_issue())).status_code == 202
    await work_off(pool)
    bare = tmp_path / "remote" / f"{REPO}.git"
    assert bot_commits(bare) == ["ghapp[bot]|ghapp: Tidy the README (issue #1)"]
    pulls = [i for i in github.issues(REPO) if i.get("pull_request")]
    assert len(pulls) == 1
    pull = github.pull(REPO, pulls[0]["number"])
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (BRANCH, "master")
    assert "Fixes #1" in pull["body"]  # merging it closes the issue
    [comment] = [c for c in github.comments_on(REPO, 1) if c["user"]["type"] == "Bot"]
    assert pull["html_url"] in comment["body"]
    default = subprocess.run(
        ["git", "--git-dir", str(bare), "log", "--format=%an", "master"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ghapp[bot]" not in default  # never the default branch

    [run] = [r for r in pool.finished if r[1] == "completed"]
    retried = await state.jobs.retry(run[0], actor="t")
    await work_off(pool)
    assert any(r == (retried, "completed") for r in pool.finished)
    assert len(bot_commits(bare)) == 2  # a new commit on the same branch, no force push
    again = [i for i in github.issues(REPO) if i.get("pull_request")]
    assert [p["number"] for p in again] == [pulls[0]["number"]]  # the same PR, updated
    assert job.task_config == {"publish": "pr"}
    edits = model.tool_results("Edit")
    assert len(edits) == 2 and not any(e.is_error for e in edits)  # the real tool, twice
