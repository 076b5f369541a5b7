"""Where a session's report goes: its tracking comment on the issue or PR, or, for codebase
and custom jobs that ask for it, the job's report issue in the repository."""

from __future__ import annotations

from gidgethub.abc import GitHubAPI
from sqlalchemy import select, update
from sqlmodel import col

from ghapp import structured
from ghapp.db import Database
from ghapp.db.models import Job
from ghapp.runners.base import Outcome
from ghapp.settings import Settings
from ghapp.worker.followup import FollowUp, answer_in_thread
from ghapp.worker.prepare import Item
from ghapp.worker.publish import Published, comment_section
from ghapp.worker.report import facts_line, finish_comment, publish_report, result_text
from ghapp.worker.rows import JobRow, RepoRow


class Reports:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def run_url(self, run_id: int) -> str:
        return f"{self.settings.public_url}/runs/{run_id}"

    def text(self, job: JobRow, outcome: Outcome, published: Published | None, run_id: int) -> str:
        """The report of a session that ran: its result or error, its facts, and what
        publishing its changes did."""
        facts = facts_line(
            turns=outcome.num_turns, cost_usd=outcome.cost_usd, duration_ms=outcome.duration_ms
        )
        text = result_text(
            job.name,
            ok=outcome.ok,
            result=structured.in_report(
                outcome.result_text, outcome.structured_result, outcome.structured_error
            ),
            error=outcome.error,
            facts=facts,
            run_url=self.run_url(run_id),
        )
        if published is not None and (section := comment_section(published)):
            text = f"{text}\n\n{section}"
        return text

    def failure(self, job: JobRow, reason: str, run_id: int) -> str:
        """The report of a session that could not run or finish."""
        facts = facts_line(turns=0, cost_usd=0.0, duration_ms=0)
        return result_text(
            job.name, ok=False, result=None, error=reason, facts=facts, run_url=self.run_url(run_id)
        )

    async def send(
        self,
        gh: GitHubAPI,
        job: JobRow,
        repo: RepoRow,
        item: Item,
        comment_id: int | None,
        session_id: int,
        text: str,
        run_id: int,
        follow_up: FollowUp | None = None,
    ) -> bool:
        """Send the report where it goes; False when it goes nowhere (``report: none``).
        A follow-up in a review thread is answered in the thread."""
        if follow_up is not None and follow_up.in_thread:
            await answer_in_thread(gh, repo.full_name, follow_up, session_id, text)
            return True
        if comment_id is not None:
            run_url = self.run_url(run_id)
            await finish_comment(gh, repo.full_name, comment_id, session_id, text, run_url)
            return True
        if item.number is None and job.report == "issue":
            await self.report_issue(gh, job, repo, text)
            return True
        return False

    async def report_issue(self, gh: GitHubAPI, job: JobRow, repo: RepoRow, text: str) -> None:
        """One report issue per job and repository (codebase and custom jobs), updated on
        every run. Kept by repository: an installation-wide job's issue number in one
        repository is some other issue in the next."""
        async with self.db.read() as conn:
            config = (
                await conn.scalar(select(col(Job.task_config)).where(col(Job.id) == job.id)) or {}
            )
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
                    .where(col(Job.id) == job.id)
                    .values(task_config={**config, "report_issues": numbers})
                )
