"""What a run does: find its items, run one session per item, report back on GitHub.

1. The repository and installation (looked up on GitHub when the event carried none).
2. The items: the event's issue or PR; for a slash command, only after the permission
   check (refused → skipped, with a polite reply); for scheduled issue/PR jobs, a search
   with the job's filter query; for codebase and custom jobs, one item.
3. Per item: a Session row (the same row again when a run is retried or taken over, so
   the tracking comment is reused), the tracking comment, a fresh checkout, the runner
   (Claude Code or a shell command), the comment edited with the result.

The run's repository is the run's own (``run.repo_id``), never its job's default: an
installation-wide job's run works on the repository it was made for, and so do the items
it searches, the items it remembers as done and the report issue it keeps.

What goes wrong, and what follows:

* GitHub or database trouble (after the client's own retries) anywhere makes the run
  retryable: the pool queues it again within its retry window, and a session that was
  under way is run again in the same row;
* anything else while the run prepares (the repository, the items, a job's prompt that
  cannot be rendered) ends the run ``failed`` with the reason;
* anything else while a session prepares or ends (its prompt for this item, the checkout,
  publishing its changes) ends that session ``failed`` with the reason, said on its
  tracking comment; the run goes on with its other items and ends ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from gidgethub import BadRequest, GitHubBroken, RateLimitExceeded
from gidgethub.abc import GitHubAPI
from sqlalchemy import and_, insert, or_, select, update

from ghapp import logs, prompts, repo_commands
from ghapp.clock import Clock
from ghapp.commands import render_prompt
from ghapp.db import Database
from ghapp.db.errors import describe, is_database_trouble
from ghapp.db.models import Repository, RunStatus, Session, SessionStatus, TriggerType
from ghapp.github.app import GitHubApp, NotConfigured
from ghapp.github.transport import RateLimited
from ghapp.metrics import Metrics
from ghapp.repo_commands import Command
from ghapp.runners.builtin import run_builtin
from ghapp.runners.claude import (
    Outcome,
    Progress,
    SessionOptions,
    run_claude,
    session_environment,
)
from ghapp.runners.shell import run_shell
from ghapp.sandbox import Sandbox, probe
from ghapp.settings import Settings
from ghapp.worker import budget
from ghapp.worker.authorize import Authorizer
from ghapp.worker.checkout import CheckoutError, checkout, head_commit
from ghapp.worker.items import search_items
from ghapp.worker.pool import RunContext, RunResult
from ghapp.worker.publish import Published, comment_section, publish_changes
from ghapp.worker.report import (
    Posted,
    facts_line,
    finish_comment,
    publish_report,
    result_text,
    start_comment,
)
from ghapp.worker.trust import Policy, Trust, policy, trust_of

log = logging.getLogger("ghapp.worker")

GITHUB_TROUBLE = (GitHubBroken, RateLimitExceeded, RateLimited, httpx.TransportError)
RECENT = timedelta(days=7)  # items a job processed this recently are not redone


PROGRESS_EVERY_S = 1.0  # how often a running session's event log is written
EVENT_LOG_KEPT = 200  # the latest events of a session's log


class ProgressLog:
    """Stores a running session's event log as it goes (the dashboard shows it live):
    the first event at once, then at most once a second, and everything at the end."""

    def __init__(self, executor: SessionExecutor, session_id: int | None) -> None:
        self.executor = executor
        self.session_id = session_id
        self.progress: Progress | None = None
        self.written_at: float | None = None

    async def on_event(self, progress: Progress, event: dict[str, Any]) -> None:
        self.progress = progress
        now = time.monotonic()
        if self.written_at is None or now - self.written_at >= PROGRESS_EVERY_S:
            self.written_at = now
            await self.flush()

    async def flush(self) -> None:
        if self.progress is None or self.session_id is None:
            return
        try:
            await self.executor.store_progress(self.session_id, self.progress)
        except Exception as exc:  # the live log is a view: a session never fails for it
            log.warning("progress not stored", extra={"error": describe(exc)})


@dataclass(frozen=True)
class Item:
    kind: str  # issue | pr | codebase | custom
    number: int | None
    title: str
    data: dict[str, Any] | None  # the issue/PR as GitHub or the event described it
    trust: Trust = field(default_factory=Trust)  # who wrote it, where its head lives

    @property
    def fork(self) -> bool:
        return not self.trust.head


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
    ) -> None:
        self.work_dir = work_dir  # where checkouts go (None: the system's temporary folder)
        self.sandbox = sandbox or probe(settings.sandbox)
        self.db = db
        self.settings = settings
        self.github = github
        self.clock = clock
        self.metrics = metrics
        self.authorizer = authorizer or Authorizer()

    async def execute(self, context: RunContext) -> RunResult:
        run, job = context.run, context.job
        problem = self.settings.github_app_problem()
        if problem is not None:  # no retry can fix a setting: fail now, naming it
            return RunResult(RunStatus.failed, error=problem)
        try:
            prompt_problem = _prompt_problem(job)
            if prompt_problem is not None:  # a job saved before prompts were checked
                return RunResult(RunStatus.failed, error=prompt_problem)
            repo = await self._repository(run_repository(run, job))
            installation_id = run.installation_id or repo.installation_id
            if installation_id is None:
                installation_id = await self.github.installation_of(repo.full_name)
            gh = await self.github.for_installation(installation_id)
            refusal = await self._authorize(gh, run, repo.full_name)
            if refusal is not None:
                return RunResult(RunStatus.skipped, error=refusal)
            items, found = await self._items(gh, run, job, repo)
            return await self._sessions(gh, context, repo, installation_id, items, found)
        except GITHUB_TROUBLE as exc:
            return RunResult(RunStatus.failed, error=f"GitHub: {exc}", retryable=True)
        except NotConfigured as exc:
            return RunResult(RunStatus.failed, error=str(exc))
        except Exception as exc:
            if is_database_trouble(exc):
                raise  # the pool retries database trouble within its window
            return RunResult(RunStatus.failed, error=failure_reason(exc))

    async def _repository(self, repo_id: int | None) -> Any:
        if repo_id is None:
            raise LookupError("the run names no repository (an installation-wide job's run)")
        async with self.db.read() as conn:
            repo = (
                await conn.execute(select(Repository).where(Repository.id == repo_id))
            ).one_or_none()
        if repo is None:
            raise LookupError(f"repository {repo_id} is not known")
        return repo

    async def _authorize(self, gh: GitHubAPI, run: Any, repo: str) -> str | None:
        if run.trigger_type != TriggerType.command.value:
            return None
        detail, item = run.trigger_detail, run.item or {}
        decision = await self.authorizer.decide(
            gh,
            repo=repo,
            issue_number=item["number"],
            comment_id=detail["comment_id"],
            login=detail["requested_by"],
            command=detail["command"],
        )
        return None if decision.allowed else decision.reason

    async def _items(
        self, gh: GitHubAPI, run: Any, job: Any, repository: Any
    ) -> tuple[list[Item], dict[str, int]]:
        repo = repository.full_name
        if run.item:
            event = run.item
            item = await self._item(gh, repo, event["item_kind"], event, event.get("author_login"))
            return [item], {"items_found": 1}
        if job.target_type in ("codebase", "custom"):
            return [Item(job.target_type, None, job.name, None)], {"items_found": 1}
        recent = await self._recently_processed(job, repository.id)
        found = await search_items(
            gh,
            repo=repo,
            target=job.target_type,
            filter_query=job.filter_query,
            max_items=job.max_items,
            now=self.clock.now(),
            recently_processed=recent,
        )
        kind = "pr" if job.target_type == "prs" else "issue"
        items = [
            await self._item(
                gh, repo, kind, found_item, (found_item.get("user") or {}).get("login")
            )
            for found_item in found.items
        ]
        return items, {"items_found": found.found, "items_skipped": found.skipped}

    async def _item(
        self, gh: GitHubAPI, repo: str, kind: str, data: dict[str, Any], author: str | None
    ) -> Item:
        """An item with its trust asked of GitHub: where a PR's head lives (even when the
        event was a comment), and whether its author may write to the repository."""
        number = data["number"]
        trust, _pull = await trust_of(gh, self.authorizer, repo, kind, number, author)
        if not trust.writes:
            log.info("item is untrusted", extra={"number": number, "why": trust.reason})
        return Item(kind, number, data.get("title", ""), data, trust)

    async def _recently_processed(self, job: Any, repo_id: int) -> set[int]:
        """Numbers this job finished recently in this repository (an installation-wide
        job's issue #5 elsewhere is another issue)."""
        from ghapp.db.models import Run

        since = self.clock.now() - RECENT
        same_repo = Run.repo_id == repo_id
        if _only_repository(job) == repo_id:  # its runs that name none were on this one
            same_repo = or_(same_repo, Run.repo_id.is_(None))
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(Session.item_number)
                .join(Run, Run.id == Session.run_id)
                .where(
                    Run.job_id == job.id,
                    same_repo,
                    Session.status == SessionStatus.completed.value,
                    Session.completed_at >= since,
                )
            )
            return {number for (number,) in rows if number is not None}

    async def _sessions(
        self,
        gh: GitHubAPI,
        context: RunContext,
        repo: Any,
        installation_id: int,
        items: list[Item],
        found: dict[str, int],
    ) -> RunResult:
        processed = failed = 0
        cost = 0.0
        errors: list[str] = []
        budget_note = None
        for item in items:
            if context.cancel.is_set():
                break
            budget_note = await budget.exhausted(self.db, self.settings, self.clock.now())
            if budget_note:
                break
            outcome = await self._one(gh, context, repo, installation_id, item)
            cost += outcome.cost_usd
            if outcome.ok:
                processed += 1
            else:
                failed += 1
                where = f"{item.kind} #{item.number}" if item.number else item.kind
                errors.append(f"{where}: {outcome.error}")
        counters = {**found, "items_processed": processed, "items_failed": failed, "cost_usd": cost}
        if context.cancel.is_set():
            return RunResult(RunStatus.cancelled, error="cancelled", counters=counters)
        if budget_note and not processed and not failed:
            return RunResult(RunStatus.skipped, error=budget_note, counters=counters)
        status = RunStatus.failed if failed else RunStatus.completed
        if budget_note:
            errors.append(budget_note)
        return RunResult(status, error="\n".join(errors)[:4000] or None, counters=counters)

    async def _one(
        self, gh: GitHubAPI, context: RunContext, repo: Any, installation_id: int, item: Item
    ) -> Outcome:
        run, job = context.run, context.job
        earlier = await self._finished_session(run.id, item)
        if earlier is not None:
            # Run before this attempt (the run was retried or taken over): its result is
            # stored. The session is never run again for it; only an unsent report is sent.
            with logs.bind(session_id=earlier.id):
                if earlier.reported_at is None and earlier.report_text is not None:
                    await self._report(gh, job, repo, item, earlier, run.id)
                return _stored_outcome(earlier)
        prompt, problem = _prompt_for(run, job, item, repo)
        session_id = await self._session_row(run.id, item, prompt, job.runner)
        with logs.bind(session_id=session_id):
            if problem is not None:
                return await self._end_session(gh, job, repo, item, session_id, problem, run.id)
            try:
                return await self._session(
                    gh, context, repo, installation_id, item, prompt, session_id
                )
            except Exception as exc:
                if transient(exc):
                    raise  # the run is retried, and this session with it (the same row)
                reason = failure_reason(exc)
                return await self._end_session(gh, job, repo, item, session_id, reason, run.id)

    async def _end_session(
        self,
        gh: GitHubAPI,
        job: Any,
        repo: Any,
        item: Item,
        session_id: int,
        reason: str,
        run_id: int,
    ) -> Outcome:
        """A session that could not run or finish: ended ``failed`` with the reason, and
        said so where its report goes (its tracking comment, the job's report issue)."""
        run_url = f"{self.settings.public_url}/runs/{run_id}"
        facts = facts_line(turns=0, cost_usd=0.0, duration_ms=0)
        text = result_text(
            job.name, ok=False, result=None, error=reason, facts=facts, run_url=run_url
        )
        async with self.db.write() as conn:
            ended = await conn.execute(
                update(Session)
                .where(Session.id == session_id, Session.completed_at.is_(None))
                .values(
                    status=SessionStatus.failed.value,
                    error=reason,
                    completed_at=self.clock.now(),
                    report_text=text,
                )
            )
            session = (await conn.execute(select(Session).where(Session.id == session_id))).one()
        # A session that had ended already (its report failed to go out) keeps its result.
        if ended.rowcount:
            await self._report(gh, job, repo, item, session, run_id)
        return refused(reason)

    async def _finished_session(self, run_id: int, item: Item) -> Any:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(Session).where(
                        _same_item(run_id, item), Session.completed_at.is_not(None)
                    )
                )
            ).one_or_none()

    async def _report(
        self, gh: GitHubAPI, job: Any, repo: Any, item: Item, session: Any, run_id: int
    ) -> None:
        """Post a finished session's stored report; marked sent once GitHub took it."""
        run_url = f"{self.settings.public_url}/runs/{run_id}"
        text = session.report_text
        if session.comment_id is not None:
            await finish_comment(gh, repo.full_name, session.comment_id, session.id, text, run_url)
        elif item.number is None and job.report == "issue":
            await self._report_issue(gh, job, repo, text)
        await self._update_session(session.id, reported_at=self.clock.now())

    async def _session(
        self,
        gh: GitHubAPI,
        context: RunContext,
        repo: Any,
        installation_id: int,
        item: Item,
        prompt: str,
        session_id: int,
    ) -> Outcome:
        run, job = context.run, context.job
        run_url = f"{self.settings.public_url}/runs/{run.id}"
        token = await self.github.token(installation_id)
        pull_number = item.number if item.kind == "pr" else None
        # The tracking comment is posted while the checkout is made: the session starts
        # as soon as both are done, not one after the other.
        commenting = asyncio.ensure_future(
            self._track(gh, repo.full_name, item, session_id, job, run_url)
        )
        try:
            async with checkout(
                self.settings.git_url,
                repo.full_name,
                token,
                pull_number=pull_number,
                parent=self.work_dir,
                # A fork's .claude/, .mcp.json and CLAUDE.md never reach a session: the
                # default branch's replace them (and repository commands come from there).
                config_from=None if item.trust.head else repo.default_branch,
            ) as work:
                base_commit = await head_commit(work)  # before the session can change .git
                comment = await commenting
                command = await self._repository_command(job, work, item, run, session_id)
                if command is not None:
                    prompt = command.render(item.data, (run.trigger_detail or {}).get("args", ""))
                rules = policy(job, command, item.trust)
                outcome = await self._run(
                    job, prompt, work, item, context.cancel, command, rules, session_id=session_id
                )
                published = None
                if outcome.ok and rules.writes:  # and publish_changes asks the job too
                    published, outcome = await self._publish(
                        gh, work, repo, token, job, item, session_id, base_commit, outcome
                    )
        except Exception:
            # The session ends with this error (see _one), said on the tracking comment: let
            # the comment be posted first, so that it is not left saying "working" for ever.
            with contextlib.suppress(Exception):
                await commenting
            raise
        finally:
            if not commenting.done():
                commenting.cancel()
        facts = facts_line(
            turns=outcome.num_turns, cost_usd=outcome.cost_usd, duration_ms=outcome.duration_ms
        )
        text = result_text(
            job.name,
            ok=outcome.ok,
            result=outcome.result_text,
            error=outcome.error,
            facts=facts,
            run_url=run_url,
        )
        if published is not None and (section := comment_section(published)):
            text = f"{text}\n\n{section}"
        # The result and its report are stored before anything is sent to GitHub: if the
        # edit fails, the run is retried and only the report is sent again (see _one).
        await self._update_session(
            session_id,
            status=outcome.status,
            agent_session_id=outcome.agent_session_id,
            result_text=outcome.result_text,
            error=outcome.error,
            cost_usd=outcome.cost_usd,
            num_turns=outcome.num_turns,
            duration_ms=outcome.duration_ms,
            exit_code=outcome.exit_code,
            usage=outcome.usage,
            permission_denials=outcome.permission_denials,
            result_subtype=outcome.subtype,
            completed_at=self.clock.now(),
            report_text=text,
        )
        if self.metrics is not None:
            self.metrics.session_seconds.labels(job.runner, str(outcome.status)).observe(
                (outcome.duration_ms or 0) / 1000
            )
        if comment is not None:
            await finish_comment(gh, repo.full_name, comment.comment_id, session_id, text, run_url)
            await self._update_session(session_id, reported_at=self.clock.now())
        elif item.number is None and job.report == "issue":
            await self._report_issue(gh, job, repo, text)
            await self._update_session(session_id, reported_at=self.clock.now())
        return outcome

    async def _publish(
        self,
        gh: GitHubAPI,
        work: Path,
        repo: Any,
        token: str,
        job: Any,
        item: Item,
        session_id: int,
        base_commit: str | None,
        outcome: Outcome,
    ) -> tuple[Published | None, Outcome]:
        """Publish the session's changes. If that fails, whatever the cause, the session
        ends ``failed`` naming it: running it again would not publish anything else, and
        its result stays stored."""
        try:
            published = await publish_changes(
                gh,
                work,
                repo=repo.full_name,
                default_branch=repo.default_branch,
                token=token,
                job=job,
                item=item,
                settings=self.settings,
                session_id=session_id,
                base_commit=base_commit,
            )
        except Exception as exc:
            error = f"the changes could not be published: {failure_reason(exc)}"
            return None, dataclasses.replace(outcome, ok=False, status="failed", error=error)
        return published, outcome

    async def _report_issue(self, gh: GitHubAPI, job: Any, repo: Any, text: str) -> None:
        """One report issue per job and repository (codebase and custom jobs), updated on
        every run. Kept by repository: an installation-wide job's issue number in one
        repository is some other issue in the next."""
        from ghapp.db.models import Job

        async with self.db.read() as conn:
            config = await conn.scalar(select(Job.task_config).where(Job.id == job.id)) or {}
        numbers = dict(config.get("report_issues") or {})
        known = numbers.get(str(repo.id))
        if known is None and job.repo_selection == "one" and job.repo_id == repo.id:
            known = config.get("report_issue")  # where jobs kept it before, one repository
        number = await publish_report(gh, repo.full_name, job.id, job.name, text, known)
        if known != number:
            numbers[str(repo.id)] = number
            async with self.db.write() as conn:
                await conn.execute(
                    update(Job)
                    .where(Job.id == job.id)
                    .values(task_config={**config, "report_issues": numbers})
                )

    async def _track(
        self, gh: GitHubAPI, repo: str, item: Item, session_id: int, job: Any, run_url: str
    ) -> Posted | None:
        if item.number is None or job.report != "comment":
            return None
        comment = await start_comment(
            gh, repo, item.number, session_id, job=job.name, run_url=run_url
        )
        await self._update_session(
            session_id, comment_id=comment.comment_id, comment_url=comment.url
        )
        return comment

    async def _repository_command(
        self, job: Any, work: Path, item: Item, run: Any, session_id: int
    ) -> Command | None:
        """The repository's own command of this id, if it has one (it overrides a built-in)."""
        if not job.command_id or job.runner != "claude":
            return None
        command = repo_commands.from_checkout(work).commands.get(job.command_id)
        if command is None or command.source != "repository":
            return None
        arguments = (run.trigger_detail or {}).get("args", "")
        await self._update_session(session_id, prompt=command.render(item.data, arguments))
        return command

    async def _run(
        self,
        job: Any,
        prompt: str,
        work: Path,
        item: Item,
        cancel: asyncio.Event,
        command: Command | None,
        rules: Policy,
        *,
        session_id: int | None = None,
    ) -> Outcome:
        if job.runner == "builtin":  # ghapp's own code, reading the checkout
            return await run_builtin(job.command_id, work, job, db=self.db)
        if self.sandbox.mode == "required" and not self.sandbox.active:
            return refused(f"GHAPP_SANDBOX=required, and {self.sandbox.problem}")
        wrap = partial(self.sandbox.wrap, scratch=work.parent, cwd=work)
        env = session_environment(extra=self.settings.session_env_names, scratch=work.parent)
        if job.runner == "shell":
            return await run_shell(
                job.shell_command,
                work,
                time_limit=job.timeout_seconds,
                cancel=cancel,
                env=env,
                wrap=wrap,
            )
        agent_session = str(uuid.uuid4())  # named now: the run page shows it from the start
        if session_id is not None:
            await self._update_session(session_id, agent_session_id=agent_session)
        budget = job.max_budget_usd or self.settings.max_budget_usd or None
        options = SessionOptions(
            permission_mode=rules.permission_mode,
            allowed_tools=rules.allowed_tools,
            disallowed_tools=rules.disallowed_tools,
            max_turns=job.max_turns,
            model=job.model or (command.model if command else None),
            append_system_prompt=job.append_system_prompt,
            session_id=agent_session,
            max_budget_usd=budget,
            tools=rules.tools,
            project_settings=rules.project_settings,
        )
        log_progress = ProgressLog(self, session_id)
        outcome = await run_claude(
            self.settings.claude_bin,
            prompt,
            work,
            options,
            time_limit=job.timeout_seconds,
            cancel=cancel,
            on_event=log_progress.on_event,
            env=env,
            wrap=wrap,
        )
        await log_progress.flush()
        return outcome

    async def store_progress(self, session_id: int, progress: Progress) -> None:
        await self._update_session(
            session_id,
            event_log=progress.events[-EVENT_LOG_KEPT:],
            agent_session_id=progress.agent_session_id,
            num_turns=progress.turns,
        )

    async def _session_row(self, run_id: int, item: Item, prompt: str, runner: str) -> int:
        """The run's session for this item: reused when the run is retried or taken over."""
        async with self.db.write() as conn:
            existing = await conn.scalar(select(Session.id).where(_same_item(run_id, item)))
            if existing is not None:
                await conn.execute(
                    update(Session)
                    .where(Session.id == existing)
                    .values(status=SessionStatus.running.value, started_at=self.clock.now())
                )
                return int(existing)
            result = await conn.execute(
                insert(Session).values(
                    run_id=run_id,
                    item_kind=item.kind,
                    item_number=item.number,
                    item_title=item.title,
                    prompt=prompt,
                    runner=runner,
                    status=SessionStatus.running.value,
                    started_at=self.clock.now(),
                )
            )
            return int(result.inserted_primary_key[0])

    async def _update_session(self, session_id: int, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Session).where(Session.id == session_id).values(**values))


def run_repository(run: Any, job: Any) -> int | None:
    """The repository a run works on: its own. A job's ``repo_id`` only stands in for a
    run that names none (rows from before runs did) when it is the job's only one."""
    if run.repo_id is not None:
        return int(run.repo_id)
    return _only_repository(job)


def _only_repository(job: Any) -> int | None:
    return job.repo_id if job.repo_selection == "one" else None


def _prompt_for(run: Any, job: Any, item: Item, repo: Any) -> tuple[str, str | None]:
    """(the session's prompt, None), or ("", why it cannot be made for this item)."""
    arguments = (run.trigger_detail or {}).get("args", "")
    try:
        return render_prompt(job.command_id, job.custom_prompt, item.data, arguments, repo), None
    except prompts.PromptError as exc:  # this item's values make it too long
        return "", f"custom_prompt: {exc}"


def _prompt_problem(job: Any) -> str | None:
    """Why the job's own prompt cannot be rendered (a job saved before prompts were
    checked when saved), or None."""
    if job.command_id or not job.custom_prompt:
        return None
    try:
        prompts.parse(job.custom_prompt)
    except prompts.PromptError as exc:
        return f"custom_prompt: {exc}"
    return None


def transient(exc: BaseException) -> bool:
    """GitHub or database trouble: another try, later, may not meet it."""
    return isinstance(exc, GITHUB_TROUBLE) or is_database_trouble(exc)


def failure_reason(exc: Exception) -> str:
    """What a run or session records when ``exc`` ended it: readable, one line. Errors
    nobody expected are logged with their traceback (they are bugs to fix)."""
    if not isinstance(exc, BadRequest | CheckoutError | LookupError | OSError):
        log.exception("unexpected error", extra={"error": describe(exc)})
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:1000]


def refused(reason: str) -> Outcome:
    """A session that was not started, and why."""
    return Outcome(False, "failed", None, reason, None, 0, 0.0, 0, None)


def _same_item(run_id: int, item: Item) -> Any:
    """The run's session row for this item (one per item, reused across attempts)."""
    number = Session.item_number
    return and_(
        Session.run_id == run_id,
        Session.item_kind == item.kind,
        number.is_(None) if item.number is None else number == item.number,
    )


def _stored_outcome(session: Any) -> Outcome:
    return Outcome(
        ok=session.status == SessionStatus.completed.value,
        status=session.status,
        result_text=session.result_text,
        error=session.error,
        agent_session_id=session.agent_session_id,
        num_turns=session.num_turns,
        cost_usd=session.cost_usd,
        duration_ms=session.duration_ms or 0,
        exit_code=session.exit_code,
    )
