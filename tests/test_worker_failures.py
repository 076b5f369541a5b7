"""How runs and sessions end when something goes wrong, and on which repository they work.

The real worker pool and executor, the GitHub stand-in (which records every request) and
the real Claude Code CLI against the model stand-in, as in ``test_end_to_end``. Nothing is
left ``running``: a session that cannot run or finish ends ``failed`` with its reason, and
a run works on its own repository, never its job's default.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from ghapp.clock import FakeClock
from ghapp.db.models import Job, Run, RunStatus, Session
from ghapp.runqueue.claim import RunQueue
from ghapp.signals import Signals
from ghapp.standins.git import bare_repository
from ghapp.worker.pool import PoolSettings, RunResult, WorkerPool
from tests.end_to_end_support import (
    INSTALLATION,
    REPO,
    REPO_ID,
    opened_issue,
    tidy,
    triage_job,
    work_off,
)
from tests.support import add_repository, runs_of, send

OTHER = "Codertocat/Other"
OTHER_ID = 55501


async def sessions(db: Any) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(Session).order_by(Session.id))).all())


async def another_repository(github: Any, db: Any, tmp_path: Any, *, git: bool = True) -> None:
    """Codertocat/Other in the same installation: on GitHub, in ghapp, and (``git``) on the
    git server the checkouts come from."""
    github.add_repo(OTHER, INSTALLATION, repo_id=OTHER_ID, default_branch="master")
    await add_repository(db, repo_id=OTHER_ID, full_name=OTHER)
    if git:
        bare_repository(tmp_path, OTHER, files={"README.md": "# Other\n"})


def opened_on_other() -> dict[str, Any]:
    data = copy.deepcopy(opened_issue())
    data["repository"].update(id=OTHER_ID, full_name=OTHER, name="Other")
    return data


def repositories_asked(github: Any) -> set[str]:
    """Every repository the executor read or wrote through the API."""
    names = set()
    for request in github.find_requests(path_pattern=r"^/repos/"):
        owner, name = request.path.split("/")[2:4]
        names.add(f"{owner}/{name}")
    return names


# -- the run's repository -------------------------------------------------------------------


async def test_a_run_works_on_its_own_repository_not_the_job_s_default(
    world,
    db,
    model,
    tmp_path,
) -> None:
    github, http, state, pool = world
    await another_repository(github, db, tmp_path)
    github.add_issue(OTHER, 1, title="Other's issue", user="Codertocat")
    job = await state.jobs.create(
        {
            "name": "Triage everywhere",
            "repo_selection": "all",
            "installation_id": INSTALLATION,
            "repo_id": REPO_ID,  # a default repository; the event is on another one
            "target_type": "issues",
            "custom_prompt": "Triage {{ item.title }}.",
            "event_triggers": [{"event": "issues.opened"}],
        },
        actor="t",
    )
    assert (await send(http, "issues", opened_on_other())).json()["runs"] == 1
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert (run.status, run.repo_id) == ("completed", OTHER_ID), run.error
    [posted] = github.comments_on(OTHER, 1)
    assert "✅ **Triage everywhere** finished." in posted["body"]
    assert github.comments_on(REPO, 1) == []
    assert repositories_asked(github) == {OTHER}
    [request] = model.conversation()
    assert request.prompt.startswith("Triage Spelling error in the README file.")


async def test_an_installation_wide_job_keeps_a_report_issue_per_repository(
    world,
    db,
    tmp_path,
) -> None:
    github, _http, state, pool = world
    await another_repository(github, db, tmp_path)
    for number in (1, 2):  # someone's issues, numbered as the report in REPO will be
        github.add_issue(OTHER, number, title=f"Someone's bug {number}", body="Keep me.")
    job = await state.jobs.create(
        {
            "name": "Weekly health",
            "repo_selection": "all",
            "installation_id": INSTALLATION,
            "target_type": "codebase",
            "custom_prompt": "How healthy is this repository?",
            "report": "issue",
        },
        actor="t",
    )
    for repo_id in (REPO_ID, OTHER_ID):  # one run per repository, as a fan-out makes them
        now = datetime.now(UTC)
        async with db.write() as conn:
            await conn.execute(
                insert(Run).values(
                    job_id=job.id,
                    repo_id=repo_id,
                    installation_id=INSTALLATION,
                    trigger_type="manual",
                    queued_at=now,
                    run_after=now,
                )
            )
        await work_off(pool)
    assert [r.status for r in await runs_of(db, job.id)] == ["completed", "completed"]
    [mine] = [i for i in github.issues(REPO) if "ghapp:report-job=" in (i["body"] or "")]
    assert mine["number"] == 2 and "How healthy is this repository?" in mine["body"]
    theirs = github.issues(OTHER)
    assert [(i["title"], i["body"]) for i in theirs[:2]] == [
        ("Someone's bug 1", "Keep me."),
        ("Someone's bug 2", "Keep me."),
    ]
    [report] = [i for i in theirs if "ghapp:report-job=" in (i["body"] or "")]
    assert report["number"] == 3 and "How healthy is this repository?" in report["body"]
    async with db.read() as conn:
        config = await conn.scalar(select(Job.task_config).where(Job.id == job.id))
    assert config["report_issues"] == {str(REPO_ID): 2, str(OTHER_ID): 3}


# -- sessions that cannot run or finish ------------------------------------------------------


async def test_a_session_whose_checkout_fails_ends_failed_and_says_so(
    world,
    db,
    model,
    tmp_path,
) -> None:
    github, http, state, pool = world
    await another_repository(github, db, tmp_path, git=False)  # nothing to clone
    github.add_issue(OTHER, 1, title="Other's issue", user="Codertocat")
    job = await state.jobs.create(triage_job(repo_id=OTHER_ID), actor="t")
    await send(http, "issues", opened_on_other())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert (run.status, run.items_failed, run.attempt) == ("failed", 1, 1)
    assert run.error.startswith("issue #1: CheckoutError: ")
    [session] = await sessions(db)
    assert (session.status, session.completed_at is not None) == ("failed", True)
    assert session.error.startswith("CheckoutError: ") and session.reported_at is not None
    [posted] = github.comments_on(OTHER, 1)  # the tracking comment, not left "working"
    assert "❌ **Triage** did not finish: CheckoutError: " in posted["body"]
    assert model.conversation() == []


async def test_a_publish_error_ends_the_session_failed_with_its_reason(
    world,
    db,
    model,
) -> None:
    github, http, state, pool = world
    model.set_default(tidy)  # the session edits README.md: there is something to publish
    github.inject("POST", r"^/repos/[^/]+/[^/]+/pulls$", 403, body={"message": "Not allowed"})
    job = await state.jobs.create(
        triage_job(name="Tidy", task_config={"publish": "pr"}, permission_mode="acceptEdits"),
        actor="t",
    )
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert (run.status, run.items_processed, run.items_failed) == ("failed", 0, 1)
    assert run.error.startswith("issue #1: the changes could not be published: BadRequest: ")
    [session] = await sessions(db)
    assert (session.status, session.completed_at is not None) == ("failed", True)
    assert "Not allowed" in session.error
    assert session.result_text == "Tidied the README."  # what the session did is kept
    [posted] = github.comments_on(REPO, 1)
    assert "❌ **Tidy** did not finish: the changes could not be published" in posted["body"]


async def test_a_session_given_up_after_github_trouble_ends_with_its_run(
    world,
    db,
    model,
) -> None:
    github, http, state, pool = world
    pool.settings = dataclasses.replace(pool.settings, retry_window=timedelta(0))
    github.inject("POST", r"/issues/1/comments$", 502, times=100)  # GitHub stays broken
    job = await state.jobs.create(triage_job(max_retries=0), actor="t")
    await send(http, "issues", opened_issue())
    await work_off(pool)
    [run] = await runs_of(db, job.id)
    assert run.status == "failed" and run.error.startswith("GitHub: ")
    assert "still failing after retrying" in run.error
    [session] = await sessions(db)
    assert (session.status, session.error) == ("failed", run.error)
    assert session.completed_at == run.completed_at
    assert model.conversation() == []


# -- the pool --------------------------------------------------------------------------------


class Completes:
    async def execute(self, context: Any) -> RunResult:
        return RunResult(RunStatus.completed)


async def test_a_start_notice_that_cannot_be_queued_does_not_strand_the_run(db) -> None:
    await add_repository(db)
    now = datetime.now(UTC)
    async with db.write() as conn:
        # A notifier id no query can use: queueing the start notice raises.
        job_id = (
            await conn.execute(
                insert(Job).values(name="j", repo_id=REPO_ID, notifier_ids=[{"not": "an id"}])
            )
        ).inserted_primary_key[0]
        await conn.execute(
            insert(Run).values(job_id=job_id, trigger_type="manual", run_after=now, queued_at=now)
        )
    pool = WorkerPool(
        db, FakeClock(now), Signals(), RunQueue(db, "w1"), Completes(), PoolSettings(concurrency=1)
    )
    await pool.process(await pool.queue.claim(now))
    [run] = await runs_of(db, job_id)
    assert (run.status, run.lease_owner) == ("completed", None)
