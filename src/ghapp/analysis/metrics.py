"""Metric providers for threshold triggers : what a threshold job measures.

Each provider measures the job's repository (a threshold job is on one repository):

* ``context_score``: the ``context/analyze`` score (0-100) of a fresh shallow checkout
  of the default branch; the result is stored like every analysis, so the checks make
  the repository's trend.
* ``claude_md_tokens``: the same analysis's estimated tokens over all CLAUDE.md files.
* ``open_issues``: how many issues match the threshold's ``filter_query`` (default: the
  open ones): GitHub search's ``total_count`` for the query ``ghapp.jobs.filters``
  translates (``repo:OWNER/NAME is:issue is:open …``, ages made absolute by the clock).
* ``stale_prs``: open pull requests not updated for ``stale_days`` days (default 14):
  ``repo:OWNER/NAME is:pr is:open updated:<YYYY-MM-DD`` with the day ``stale_days``
  before today (UTC, by the clock). Dates are whole days, as GitHub's date qualifiers
  are: a PR last updated on the cut-off day itself is not yet stale.

Search answers GitHub marks ``incomplete_results`` are asked for once more. Errors
(GitHub down, clone failed, a job on several repositories) propagate: the threshold
checker records the check as failed and fires nothing.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gidgethub.abc import GitHubAPI
from sqlalchemy import select
from sqlmodel import col

from ghapp.analysis.claude_md import Analysis, analyze, head_commit
from ghapp.analysis.results import store_result
from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.models import Repository
from ghapp.github.app import GitHubApp
from ghapp.jobs.filters import parse_filter, to_search_query
from ghapp.scheduler.thresholds import MetricProvider
from ghapp.settings import Settings
from ghapp.worker.checkout import checkout

DEFAULT_STALE_DAYS = 14


@dataclass(frozen=True)
class _Repo:
    id: int
    full_name: str
    installation_id: int


class RepositoryMetric:
    """A metric of the threshold job's repository."""

    metric = ""

    def __init__(self, settings: Settings, db: Database, clock: Clock, github: GitHubApp) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.github = github

    async def measure(self, job: Any) -> float:
        raise NotImplementedError

    async def repository(self, job: Any) -> _Repo:
        if job.repo_id is None:
            raise LookupError(f"{self.metric} measures one repository; the job has none")
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(Repository).where(col(Repository.id) == job.repo_id))
            ).one_or_none()
        if row is None:
            raise LookupError(f"repository {job.repo_id} is not known")
        installation_id = row.installation_id or job.installation_id
        if installation_id is None:
            installation_id = await self.github.installation_of(row.full_name)
        return _Repo(int(row.id), row.full_name, int(installation_id))

    async def search_count(self, repo: _Repo, query: str) -> int:
        """GitHub search's ``total_count`` for ``query`` (one result asked for)."""
        gh = await self.github.for_installation(repo.installation_id)
        data = await _search(gh, query)
        if data.get("incomplete_results"):
            data = await _search(gh, query)  # GitHub's search timed out: ask once more
        return int(data.get("total_count") or 0)


class ContextMetric(RepositoryMetric):
    """Analyse a fresh checkout of the default branch and store the result."""

    async def analyze(self, job: Any) -> Analysis:
        repo = await self.repository(job)
        token = await self.github.token(repo.installation_id)
        async with checkout(self.settings.git_url, repo.full_name, token) as work:
            analysis = await asyncio.to_thread(analyze, work)
            commit = await head_commit(work)
        await store_result(
            self.db,
            analysis,
            repo_id=repo.id,
            job_id=job.id,
            commit_sha=commit,
            created_at=self.clock.now(),
        )
        return analysis


class ContextScore(ContextMetric):
    metric = "context_score"

    async def measure(self, job: Any) -> float:
        return float((await self.analyze(job)).score)


class ClaudeMdTokens(ContextMetric):
    metric = "claude_md_tokens"

    async def measure(self, job: Any) -> float:
        return float((await self.analyze(job)).total_tokens)


class OpenIssues(RepositoryMetric):
    metric = "open_issues"

    def query(self, job: Any, full_name: str) -> str:
        filter_query = (job.threshold or {}).get("filter_query")
        return to_search_query(
            parse_filter(filter_query), repo=full_name, target="issues", now=self.clock.now()
        )

    async def measure(self, job: Any) -> float:
        repo = await self.repository(job)
        return float(await self.search_count(repo, self.query(job, repo.full_name)))


class StalePrs(RepositoryMetric):
    metric = "stale_prs"

    def query(self, job: Any, full_name: str) -> str:
        days = int((job.threshold or {}).get("stale_days") or DEFAULT_STALE_DAYS)
        cutoff = (self.clock.now() - timedelta(days=days)).date()
        return f"repo:{full_name} is:pr is:open updated:<{cutoff.isoformat()}"

    async def measure(self, job: Any) -> float:
        repo = await self.repository(job)
        return float(await self.search_count(repo, self.query(job, repo.full_name)))


def build_metric_providers(
    settings: Settings, db: Database, clock: Clock, github: GitHubApp
) -> dict[str, MetricProvider]:
    """The providers for ``ThresholdChecker(db, clock, signals, providers=…)``."""
    providers: list[RepositoryMetric] = [
        ContextScore(settings, db, clock, github),
        ClaudeMdTokens(settings, db, clock, github),
        OpenIssues(settings, db, clock, github),
        StalePrs(settings, db, clock, github),
    ]
    return {provider.metric: provider for provider in providers}


async def _search(gh: GitHubAPI, query: str) -> dict[str, Any]:
    params = urllib.parse.urlencode({"q": query, "per_page": 1})
    data: dict[str, Any] = await gh.getitem(f"/search/issues?{params}")
    return data
