"""Metric providers for threshold triggers against the GitHub stand-in and a local bare
repository, and a ``context_score`` threshold job that fires on the edge only."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from ghapp.analysis.metrics import (
    ClaudeMdTokens,
    ContextScore,
    OpenIssues,
    StalePrs,
    build_metric_providers,
)
from ghapp.analysis.results import trend
from ghapp.clock import FakeClock, SystemClock
from ghapp.db.models import ThresholdCheck
from ghapp.github.app import GitHubApp
from ghapp.github.transport import RetryPolicy
from ghapp.jobs.service import JobService
from ghapp.scheduler.loop import Scheduler
from ghapp.scheduler.thresholds import ThresholdChecker
from ghapp.signals import Signals
from ghapp.standins.git import bare_repository
from ghapp.standins.github import GitHubStandIn
from tests.conftest import make_settings
from tests.scheduler_support import START
from tests.support import add_repository, runs_of

REPO = "Codertocat/Hello-World"
REPO_ID = 186853002
INSTALLATION = 957387
NOW = START  # 2025-06-02 06:00 UTC

GOOD = "# Project\n\nUse `src/app.py` for the entry point of the service.\n"


def context(missing: int = 0, oversized: bool = False, duplicates: int = 0) -> str:
    """A CLAUDE.md whose score is 100 - 5 x missing paths (at most 30) - 30 if over
    10,000 tokens - 2 x repeated lines."""
    lines = [GOOD]
    lines += [f"See `docs/missing-{i}.md` for part {i}." for i in range(missing)]
    lines += ["Always run the whole test suite before pushing."] * (duplicates + bool(duplicates))
    if oversized:
        lines += [
            f"Rule {i}: module number {i} keeps its public functions small." for i in range(800)
        ]
    return "\n".join(lines) + "\n"


class World:
    def __init__(self, db, github: GitHubStandIn, settings, tmp_path: Path) -> None:
        self.db = db
        self.github = github
        self.settings = settings
        self.tmp_path = tmp_path
        self.clock = FakeClock(NOW)
        self.signals = Signals()
        self.jobs = JobService(db, self.clock, self.signals)
        self.app = GitHubApp(settings, SystemClock(), RetryPolicy(attempts=2, base_delay=0.01))
        self.providers = build_metric_providers(settings, db, self.clock, self.app)

    def push(self, claude_md: str) -> None:
        """A new commit on the bare repository's master with this CLAUDE.md."""
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        work = self.tmp_path / "pusher"
        bare = self.tmp_path / "remote" / f"{REPO}.git"
        if not work.exists():
            subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, env=env)
        (work / "CLAUDE.md").write_text(claude_md)
        for args in (
            ["add", "-A"],
            ["commit", "-qm", "update CLAUDE.md"],
            ["push", "-q", "origin", "HEAD:master"],
        ):
            subprocess.run(["git", *args], cwd=work, check=True, env=env, capture_output=True)


@pytest.fixture
async def world(db_url, db, tmp_path):
    await add_repository(db)
    github = GitHubStandIn(app_id=99)
    github.add_installation(INSTALLATION, "Codertocat")
    github.add_repo(REPO, INSTALLATION, repo_id=REPO_ID, default_branch="master")
    git_url = bare_repository(tmp_path, REPO, files={"CLAUDE.md": GOOD, "src/app.py": ""})
    async with github.serve() as base_url:
        settings = make_settings(
            db_url,
            tmp_path,
            github_api_url=base_url,
            git_url=git_url,
            app_id=99,
            private_key=github.private_key_pem,
        )
        world = World(db, github, settings, tmp_path)
        yield world
        await world.app.aclose()


def job(threshold: dict | None = None, repo_id: int | None = REPO_ID) -> SimpleNamespace:
    return SimpleNamespace(
        id=None, repo_id=repo_id, installation_id=None, threshold=threshold or {}
    )


def test_the_factory_covers_the_builtin_metrics(world) -> None:
    from ghapp.jobs.spec import BUILTIN_METRICS

    assert set(world.providers) == set(BUILTIN_METRICS)
    assert isinstance(world.providers["context_score"], ContextScore)
    assert isinstance(world.providers["claude_md_tokens"], ClaudeMdTokens)


async def test_context_score_and_tokens_measure_a_fresh_checkout(world) -> None:
    score, tokens = world.providers["context_score"], world.providers["claude_md_tokens"]
    assert await score.measure(job()) == 100.0
    assert await tokens.measure(job()) == 17.0  # GOOD: 64 chars -> 16; 18 pieces -> 17
    world.push(context(missing=3))
    world.clock.advance(timedelta(hours=1))
    assert await score.measure(job()) == 85.0
    rows = await trend(world.db, REPO_ID)
    assert [(r.score, r.files) for r in rows] == [(85, 1), (100, 1), (100, 1)]
    assert rows[0].created_at == NOW + timedelta(hours=1)  # the provider's clock
    assert rows[0].commit_sha != rows[1].commit_sha == rows[2].commit_sha
    assert [i["kind"] for i in rows[0].issues] == ["missing_path"] * 3


async def test_context_metrics_need_one_repository(world) -> None:
    with pytest.raises(LookupError, match="measures one repository"):
        await world.providers["context_score"].measure(job(repo_id=None))


async def test_open_issues_counts_the_filter_query(world) -> None:
    github = world.github
    github.add_issue(REPO, 1, title="a", labels=["bug"])
    github.add_issue(REPO, 2, title="b", labels=["bug", "wontfix"])
    github.add_issue(REPO, 3, title="c", labels=["enhancement"])
    github.add_issue(REPO, 4, title="d", labels=["bug"], state="closed")
    github.add_issue(REPO, 5, title="e", labels=["bug"], pull=True)  # a PR: not an issue
    github.add_issue(REPO, 6, title="f", updated_at=NOW - timedelta(days=40))
    provider = world.providers["open_issues"]
    assert await provider.measure(job()) == 4.0  # open issues: 1, 2, 3, 6
    assert await provider.measure(job({"filter_query": "label:bug"})) == 2.0
    assert await provider.measure(job({"filter_query": "label:bug -label:wontfix"})) == 1.0
    assert await provider.measure(job({"filter_query": "state:all label:bug"})) == 3.0
    assert await provider.measure(job({"filter_query": "updated:>30d"})) == 1.0  # the clock's
    assert isinstance(provider, OpenIssues)
    assert provider.query(job({"filter_query": "label:bug"}), REPO) == (
        f"repo:{REPO} is:issue is:open label:bug"
    )
    [request, *_] = github.find_requests("GET", r"/search/issues")
    assert request.query["per_page"] == "1"  # only the count is wanted


async def test_stale_prs_counts_open_prs_not_updated_for_n_days(world) -> None:
    github = world.github
    for number, days, state in (
        (1, 30, "open"),
        (2, 15, "open"),
        (3, 14, "open"),
        (4, 2, "open"),
        (5, 30, "closed"),
    ):
        github.add_issue(
            REPO,
            number,
            title=f"pr {number}",
            pull=True,
            state=state,
            updated_at=NOW - timedelta(days=days),
        )
    github.add_issue(REPO, 6, title="an issue", updated_at=NOW - timedelta(days=30))
    provider = world.providers["stale_prs"]
    assert isinstance(provider, StalePrs)
    assert provider.query(job(), REPO) == f"repo:{REPO} is:pr is:open updated:<2025-05-19"
    assert await provider.measure(job()) == 2.0  # default 14 days: PRs 1 and 2
    assert await provider.measure(job({"stale_days": 20})) == 1.0
    assert await provider.measure(job({"stale_days": 1})) == 4.0
    world.clock.advance(timedelta(days=1))
    assert await provider.measure(job()) == 3.0  # PR 3 is stale a day later


async def test_an_incomplete_search_is_asked_again(world) -> None:
    world.github.add_issue(REPO, 1, title="a")
    world.github.set_incomplete_results(True)
    assert await world.providers["open_issues"].measure(job()) == 1.0
    assert len(world.github.find_requests("GET", r"/search/issues")) == 2


# -- a threshold job on context_score ------------------------------------------------------


async def test_a_context_score_threshold_fires_on_downward_crossings_only(world) -> None:
    threshold_job = await world.jobs.create(
        {
            "name": "context alert",
            "repo_id": REPO_ID,
            "target_type": "codebase",
            "runner": "builtin",
            "command_id": "context/analyze",
            "concurrency_policy": "allow",
            "threshold": {
                "metric": "context_score",
                "operator": "lt",
                "value": 60,
                "check_interval_minutes": 10,
            },
        },
        actor="t",
    )
    checker = ThresholdChecker(world.db, world.clock, world.signals, world.providers)
    scheduler = Scheduler(world.db, world.clock, world.signals, thresholds=checker)
    versions = [
        context(missing=2),  # 90
        context(missing=6, oversized=True),  # 40: crosses below 60
        None,  # unchanged: still 40, no new edge
        context(missing=4),  # 80
        context(missing=6, oversized=True, duplicates=5),  # 30: crosses again
    ]
    for step, claude_md in enumerate(versions, start=1):
        if claude_md is not None:
            world.push(claude_md)
        world.clock.set(START + timedelta(minutes=10 * step))
        await scheduler.tick()
        await checker.drain()
    async with world.db.read() as conn:
        checks = list(
            await conn.execute(select(ThresholdCheck).order_by(ThresholdCheck.scheduled_for))
        )
    assert [c.status for c in checks] == ["done"] * 5, [c.error for c in checks]
    assert [c.value for c in checks] == [90, 40, 40, 80, 30]
    assert [c.fired for c in checks] == [False, True, False, False, True]
    runs = await runs_of(world.db, threshold_job.id)
    assert [r.trigger_detail["value"] for r in runs] == [40.0, 30.0]
    assert [r.id for r in runs] == [c.run_id for c in checks if c.fired]
    history = await trend(world.db, REPO_ID)  # every check left a result: the trend
    assert [r.score for r in history] == [30, 80, 40, 40, 90]
    assert {r.job_id for r in history} == {threshold_job.id}
