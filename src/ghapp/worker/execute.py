"""What a run does: prepare its items, then per item: the item's trust decides what its
session may do, the job's runner runs the session in a fresh checkout, the session's
changes are published, its report goes to the tracking comment (or the job's report issue),
and the run counts how it went. A session on a pull request shows as a check run on its head
(:mod:`ghapp.worker.checks`), in progress while it runs, with its conclusion once it ends.

What goes wrong, and what follows:

* GitHub or database trouble (after the client's own retries) anywhere makes the run
  retryable: the pool queues it again within its retry window, and a session that was
  under way is run again in the same row;
* anything else while the run prepares (the repository, the items, a job's prompt that
  cannot be rendered, a runner ghapp does not have) ends the run ``failed`` with the reason;
* anything else while a session prepares or ends (its prompt for this item, the checkout,
  publishing its changes) ends that session ``failed`` with the reason, said on its
  tracking comment; the run goes on with its other items and ends ``failed``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ghapp import logs, structured
from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.errors import is_database_trouble
from ghapp.db.models import RunStatus
from ghapp.github.app import GitHubApp, NotConfigured
from ghapp.metrics import Metrics
from ghapp.runners import build_runners
from ghapp.runners.base import Outcome, Runner, SessionRequest, refused
from ghapp.sandbox import Sandbox, probe
from ghapp.settings import Settings
from ghapp.worker import budget
from ghapp.worker.actions import act
from ghapp.worker.authorize import Authorizer
from ghapp.worker.checkout import branch_exists
from ghapp.worker.checks import CheckRuns
from ghapp.worker.failures import GITHUB_TROUBLE, failure_reason, transient
from ghapp.worker.followup import FollowUp
from ghapp.worker.pool import RunContext, RunResult
from ghapp.worker.prepare import (
    Item,
    Preparation,
    Prepared,
    Workspace,
    prompt_for,
    prompt_problem,
    repository_command,
    workspace,
)
from ghapp.worker.publish import Published, publish_changes
from ghapp.worker.report import Posted
from ghapp.worker.reporting import Reports
from ghapp.worker.rows import JobRow, RunRow, SessionRow
from ghapp.worker.session import SessionRecords, alongside, stored_outcome
from ghapp.worker.tally import Tally
from ghapp.worker.trust import policy, reader_job


class SessionExecutor:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        github: GitHubApp,
        clock: Clock,
        authorizer: Authorizer | None = None,
        metrics: Metrics | None = None,
        work_dir: Path | None = None,
        sandbox: Sandbox | None = None,
        runners: Mapping[str, Runner] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.github = github
        self.clock = clock
        self.work_dir = work_dir  # where checkouts go (None: the system's temporary folder)
        self.sandbox = sandbox or probe(settings.sandbox)
        self.runners = build_runners(settings, db) if runners is None else runners
        self.preparation = Preparation(db, github, authorizer or Authorizer(), clock)
        self.records = SessionRecords(db, clock, metrics)
        self.reports = Reports(db, settings)
        self.checks = CheckRuns(db, clock, self.reports.run_url)

    async def execute(self, context: RunContext) -> RunResult:
        problem = self.settings.github_app_problem()
        if problem is not None:  # no retry can fix a setting: fail now, naming it
            return RunResult(RunStatus.failed, error=problem)
        try:
            run, job = RunRow.of(context.run), JobRow.of(context.job)
            problem = prompt_problem(job) or self._unknown_runner(job)
            if problem is not None:  # a job saved before its prompt or runner was checked
                return RunResult(RunStatus.failed, error=problem)
            prepared = await self.preparation.prepare(run, job)
            if prepared.refusal is not None:
                await self.checks.skipped(prepared, prepared.refusal)
                return RunResult(RunStatus.skipped, error=prepared.refusal)
            return await self._sessions(prepared, context.cancel)
        except GITHUB_TROUBLE as exc:
            return RunResult(RunStatus.failed, error=f"GitHub: {exc}", retryable=True)
        except NotConfigured as exc:
            return RunResult(RunStatus.failed, error=str(exc))
        except Exception as exc:
            if is_database_trouble(exc):
                raise  # the pool retries database trouble within its window
            return RunResult(RunStatus.failed, error=failure_reason(exc))

    def _unknown_runner(self, job: JobRow) -> str | None:
        if job.runner in self.runners:
            return None
        return f"runner {job.runner!r} is not one of {', '.join(sorted(self.runners))}"

    async def _sessions(self, prepared: Prepared, cancel: asyncio.Event) -> RunResult:
        tally = Tally(prepared.found)
        for item in prepared.items:
            if cancel.is_set():
                break
            tally.budget_note = await budget.exhausted(self.db, self.settings, self.clock.now())
            if tally.budget_note:
                break
            tally.add(item, await self._item(prepared, item, cancel))
        return tally.result(cancelled=cancel.is_set())

    async def _item(self, prepared: Prepared, item: Item, cancel: asyncio.Event) -> Outcome:
        run, job = prepared.run, prepared.job
        earlier = await self.records.finished(run.id, item)
        if earlier is not None:
            # Run before this attempt (the run was retried or taken over): its result is
            # stored. The session is never run again for it; only an unsent report is sent.
            with logs.bind(session_id=earlier.id):
                if earlier.reported_at is None and earlier.report_text is not None:
                    await self._report(prepared, item, earlier)
                return stored_outcome(earlier)
        prompt, reason = prompt_for(run, job, item, prepared.repo)
        if prepared.follow_up is not None and reason is None:
            prompt = prepared.follow_up.prompt(prompt)
        session_id = await self.records.start(run.id, item, prompt, job.runner)
        if prepared.follow_up is not None:
            await self._continues(session_id, prepared.follow_up)
        with logs.bind(session_id=session_id):
            if reason is None:
                try:
                    return await self._session(prepared, item, prompt, session_id, cancel)
                except Exception as exc:
                    if transient(exc):
                        raise  # the run is retried, and this session with it (the same row)
                    reason = failure_reason(exc)
            return await self._fail(prepared, item, session_id, reason)

    async def _session(
        self, prepared: Prepared, item: Item, prompt: str, session_id: int, cancel: asyncio.Event
    ) -> Outcome:
        run, job, repo, gh = prepared.run, prepared.job, prepared.repo, prepared.gh
        job = reader_job(job, item.trust)  # a reader's report goes to a comment, nowhere else
        token = await self.github.token(prepared.installation_id)  # for this session's checkout
        run_url = self.reports.run_url(run.id)
        check_problem = await self.checks.start(prepared, item, session_id)
        follow = prepared.follow_up
        tracking = (
            _no_comment()  # a follow-up in a review thread is answered there
            if follow is not None and follow.in_thread
            else self.records.track(gh, repo.full_name, item, session_id, job, run_url)
        )
        branch = await self._branch_of(follow, repo.full_name, token)
        # The session starts as soon as both its tracking comment and its checkout are made.
        async with (
            alongside(tracking) as commenting,
            workspace(self.settings, repo, token, item, self.work_dir, branch) as space,
        ):
            comment = await commenting
            command = repository_command(job, space.checkout)
            if follow is None and (reader := reader_job(job, item.trust, command)) is not job:
                job = reader  # a repository command open to readers reports in a comment too
                comment = await self.records.track(
                    gh, repo.full_name, item, session_id, job, run_url
                )
            if command is not None and follow is None:  # a follow-up's prompt is the comment
                prompt = command.render(item.data, run.arguments)
                await self.records.update(session_id, prompt=prompt)
            rules = policy(job, command, item.trust)
            log = self.records.log(session_id)
            request = SessionRequest(
                space.checkout,
                prompt,
                job,
                rules,
                command,
                self.sandbox,
                cancel,
                log,
                resume=follow.resume if follow is not None else None,
            )
            outcome = await self.runners[job.runner].run(request)
            if outcome.status == "cancelled":
                outcome = await self._cancelled(run.id, outcome)
            published = None
            if outcome.ok and rules.writes:  # and publish_changes asks the job too
                published, outcome = await self._publish(prepared, item, space, session_id, outcome)
        acted = await act(self.db, self.clock, gh, job, repo, item, command, session_id, outcome)
        text = self.reports.text(job, outcome, published, run.id)
        if section := structured.actions_section(acted):  # what it did with its result
            text = f"{text}\n\n{section}"
        if follow is not None:
            text = follow.answer(text)  # says so when the earlier transcript was gone
        if check_problem is not None:  # the session went on without its check run
            text = f"{text}\n\n⚠️ {check_problem}"
        await self.records.end(session_id, job.runner, outcome, text)
        await self.checks.finish(prepared, item, session_id, outcome)
        comment_id = comment.comment_id if comment is not None else None
        sent = await self.reports.send(
            gh, job, repo, item, comment_id, session_id, text, run.id, follow
        )
        if sent:
            await self.records.reported(session_id)
        return outcome

    async def _branch_of(self, follow: FollowUp | None, repo: str, token: str) -> str | None:
        """A follow-up's checkout: its earlier session's branch, if it still exists (a
        merged one may be deleted: then the item's usual checkout, and publishing makes
        the branch again)."""
        if follow is None or follow.branch is None:
            return None
        exists = await branch_exists(self.settings.git_url, repo, token, follow.branch)
        return follow.branch if exists else None

    async def _continues(self, session_id: int, follow: FollowUp) -> None:
        """A follow-up's session records the one it continues, and its pull request and
        branch (where it publishes), so the next follow-up finds it as the newest."""
        parent = follow.parent
        await self.records.update(
            session_id,
            parent_session_id=parent.id if parent is not None else None,
            pr_number=parent.pr_number if parent is not None else None,
            branch=parent.branch if parent is not None else None,
        )

    async def _cancelled(self, run_id: int, outcome: Outcome) -> Outcome:
        """A cancelled session's report says why, when whoever stopped it said so (a newer
        push, the app unassigned from the issue)."""
        why = await self.checks.cancel_reason(run_id)
        if not why:
            return outcome
        error = why if why.startswith("cancelled") else f"cancelled: {why}"
        return dataclasses.replace(outcome, error=error)

    async def _publish(
        self, prepared: Prepared, item: Item, space: Workspace, session_id: int, outcome: Outcome
    ) -> tuple[Published | None, Outcome]:
        """Publish the session's changes. If that fails, whatever the cause, the session
        ends ``failed`` naming it: running it again would not publish anything else, and
        its result stays stored."""
        try:
            published = await publish_changes(
                prepared.gh,
                space.checkout,
                repo=prepared.repo.full_name,
                default_branch=prepared.repo.default_branch,
                token=space.token,
                job=prepared.job,
                item=item,
                settings=self.settings,
                session_id=session_id,
                base_commit=space.base_commit,
                branch=prepared.follow_up.branch if prepared.follow_up is not None else None,
            )
        except Exception as exc:
            error = f"the changes could not be published: {failure_reason(exc)}"
            return None, dataclasses.replace(outcome, ok=False, status="failed", error=error)
        if published.action in ("opened", "updated"):  # what a follow-up continues
            await self.records.update(
                session_id, pr_number=published.pr_number, branch=published.branch
            )
        return published, outcome

    async def _fail(self, prepared: Prepared, item: Item, session_id: int, reason: str) -> Outcome:
        """A session that could not run or finish: ended ``failed`` with the reason, and
        said so where its report goes (its tracking comment, the job's report issue)."""
        text = self.reports.failure(prepared.job, reason, prepared.run.id)
        session = await self.records.fail(session_id, reason, text)
        if session is not None:  # else it had ended already, and keeps its result
            await self._report(prepared, item, session)
        return refused(reason)

    async def _report(self, prepared: Prepared, item: Item, session: SessionRow) -> None:
        """End its check run and send a finished session's stored report; marked sent once
        GitHub took both."""
        await self.checks.finish(prepared, item, session.id, stored_outcome(session))
        job, repo, run_id = prepared.job, prepared.repo, prepared.run.id
        text, comment_id = session.report_text or "", session.comment_id
        await self.reports.send(
            prepared.gh, job, repo, item, comment_id, session.id, text, run_id, prepared.follow_up
        )
        await self.records.reported(session.id)


async def _no_comment() -> Posted | None:
    return None
