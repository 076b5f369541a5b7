"""``context/analyze``: CLAUDE.md files with known defects, the report, stored results, and
the analyzer as a ``runner: builtin`` job in the worker."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from ghapp.analysis.claude_md import (
    Issue,
    Section,
    analyze,
    count_tokens,
    render_report,
    score,
)
from ghapp.analysis.models import AnalysisResult
from ghapp.analysis.results import store_result, trend
from ghapp.runners.builtin import run_builtin
from ghapp.standins.git import bare_repository
from tests.support import add_repository, runs_of

REPO = "Codertocat/Hello-World"
REPO_ID = 186853002

ROOT_CLAUDE_MD = """\
# Guide

Read `src/app.py` before changing `src/old_module.py:12`.
See [the style guide](docs/style.md) and [setup](docs/setup.md#install).
Imports: @README.md and @docs/gone.md
Not paths: `https://example.com/x`, `src/**/*.py`, `Node.js`, `owner/repo`, `<path>`, \
`~/.claude/x.md`, `dist/app.js`, `npm run build`.

```sh
cat docs/in-a-fence.md `src/fenced.py`
```

## Commands
Always run the whole test suite before pushing.

## Empty

## Tiny
Yes.
"""
# 2 lines: "# Claude settings" (17 characters) and a 47-character line, each ending in "\n":
# 66 characters -> ceil(66/4) = 17; pieces: # Claude settings (3) + 8 words + "." = 12;
# ceil((17 + 12) / 2) = 15 tokens.
DOT_CLAUDE_MD = "# Claude settings\nAlways run the whole test suite before pushing.\n"


def package_claude_md() -> str:
    """Over 5,000 tokens (not 10,000), with one line repeated within the file."""
    lines = ["# Package", "", "See `../README.md`.", "Keep the API stable across minor versions."]
    lines += [f"Rule {i}: module number {i} keeps its public functions small." for i in range(400)]
    lines += ["Keep the API stable across minor versions."]
    return "\n".join(lines) + "\n"


FIXTURE = {
    "CLAUDE.md": ROOT_CLAUDE_MD,
    ".claude/CLAUDE.md": DOT_CLAUDE_MD,
    "pkg/CLAUDE.md": package_claude_md(),
    "node_modules/lib/CLAUDE.md": "# Dependency\n",  # never read
    "build/CLAUDE.md": "# Generated\n",  # never read
    "src/app.py": "",
    "docs/style.md": "",
    "docs/setup.md": "",
    "README.md": "# Hello\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "work", FIXTURE)


def test_token_estimate() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello, world!") == 4  # 13 chars -> 4; Hello , world ! -> 4
    assert count_tokens("configuration") == 3  # 13 chars -> 4; one word -> 1; ceil(5/2)
    assert count_tokens("a|b|c|d") == 5  # 7 chars -> 2; 7 pieces; ceil(9/2)
    assert count_tokens(DOT_CLAUDE_MD) == 15


def test_files_tokens_and_sections(checkout: Path) -> None:
    analysis = analyze(checkout)
    assert [(f.path, f.tokens, f.lines) for f in analysis.files] == [
        ("CLAUDE.md", 144, 18),
        (".claude/CLAUDE.md", 15, 2),
        ("pkg/CLAUDE.md", 5502, 405),
    ]  # root first; node_modules/ and build/ are not entered
    assert analysis.total_tokens == 144 + 15 + 5502
    assert analysis.files[0].sections == [
        Section("Guide", 1, 1, 123),
        Section("Commands", 2, 12, 14),
        Section("Empty", 2, 15, 3),  # "## Empty\n": 9 chars -> 3; 3 pieces -> 3
        Section("Tiny", 2, 17, 4),  # "## Tiny\nYes.": 12 chars -> 3; 5 pieces -> 4
    ]
    assert analysis.files[1].sections == [Section("Claude settings", 1, 1, 15)]


def test_issues_and_score(checkout: Path) -> None:
    analysis = analyze(checkout)
    found = [(i.kind, i.file, i.line) for i in analysis.issues]
    assert found == [
        ("missing_path", "CLAUDE.md", 3),  # src/old_module.py (the :12 suffix dropped)
        ("missing_path", "CLAUDE.md", 5),  # @docs/gone.md
        ("empty_section", "CLAUDE.md", 15),
        ("short_section", "CLAUDE.md", 17),
        ("duplicate_line", ".claude/CLAUDE.md", 2),
        ("oversized_file", "pkg/CLAUDE.md", None),
        ("duplicate_line", "pkg/CLAUDE.md", 405),
    ]
    messages = [i.message for i in analysis.issues]
    assert messages[0] == "`src/old_module.py` does not exist in the checkout"
    assert messages[1] == "`docs/gone.md` does not exist in the checkout"
    assert messages[4] == "repeats `CLAUDE.md:13`"  # across files: file:line
    assert messages[6] == "repeats line 4"  # within the file
    assert "5,502 tokens" in messages[5]
    # Existing paths (src/app.py, docs/style.md, docs/setup.md#install, @README.md,
    # ../README.md from pkg/) and the non-paths on line 6 and in the fence are not issues.
    text = " ".join(messages)
    for fine in (
        "src/app.py",
        "style.md",
        "setup.md",
        "README",
        "example.com",
        "**",
        "Node.js",
        "owner/repo",
        "<path>",
        "~/",
        "dist/",
        "npm",
        "fence",
        "fenced",
    ):
        assert fine not in text, fine
    # 100 - 2x5 (paths) - 3 (empty) - 1 (short) - 2x2 (duplicates) - 15 (oversized)
    assert analysis.score == 67
    assert analysis.deductions == {
        "missing_path": 10,
        "empty_section": 3,
        "short_section": 1,
        "duplicate_line": 4,
        "oversized_file": 15,
    }


def test_very_oversized_and_capped_deductions(tmp_path: Path) -> None:
    big = "\n".join(
        f"Rule {i}: module number {i} keeps its public functions small." for i in range(800)
    )
    refs = "\n".join(f"- See `docs/missing-{i}.md`." for i in range(8))
    analysis = analyze(write_tree(tmp_path, {"CLAUDE.md": f"# Big\n{refs}\n{big}\n"}))
    kinds = [i.kind for i in analysis.issues]
    assert kinds.count("very_oversized_file") == 1 and "oversized_file" not in kinds
    assert kinds.count("missing_path") == 8
    assert analysis.deductions == {"missing_path": 30, "very_oversized_file": 30}  # 8x5 capped
    assert analysis.score == 40


def test_no_claude_md_scores_zero(tmp_path: Path) -> None:
    analysis = analyze(write_tree(tmp_path, {"README.md": "# Hi\n"}))
    assert analysis.files == [] and analysis.score == 0
    assert [i.kind for i in analysis.issues] == ["no_claude_md"]
    assert score([], 0) == (0, {"no_claude_md": 100})


def test_a_link_out_of_the_checkout_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET server file\n")
    work = write_tree(tmp_path / "work", {"CLAUDE.md": "# Ok\nSee `../secret.txt`.\n"})
    (work / "docs").mkdir()
    (work / "docs" / "CLAUDE.md").symlink_to(secret)
    analysis = analyze(work)
    assert [f.path for f in analysis.files] == ["CLAUDE.md"]
    assert [(i.kind, i.file) for i in analysis.issues] == [
        ("unreadable_file", "docs/CLAUDE.md"),
        ("missing_path", "CLAUDE.md"),  # ../secret.txt leaves the checkout: never probed
    ]
    assert "points outside the repository" in analysis.issues[1].message
    assert "TOP SECRET" not in render_report(analysis)


def test_report_markdown(checkout: Path) -> None:
    report = render_report(analyze(checkout), commit="0123456789abcdef0123")
    assert report.startswith("## CLAUDE.md analysis: 67/100\n")
    assert "3 files, 5,661 tokens at `0123456789ab` (estimated: ceil((ceil(characters / 4)" in (
        report
    )
    assert "| `CLAUDE.md` | 144 | 18 | 4 | 4 |" in report
    assert "| `pkg/CLAUDE.md` | 5,502 | 405 | 1 | 2 |" in report
    assert "### Issues (7)" in report
    assert (
        "- **missing_path** `CLAUDE.md:3`: `src/old_module.py` does not exist in the checkout"
    ) in report
    assert "- **duplicate_line** `.claude/CLAUDE.md:2`: repeats `CLAUDE.md:13`" in report
    assert "| 15 | `## Empty` | 3 |" in report
    assert report.endswith(
        "<sub>Score: 100 minus 10 for missing_path, 3 for empty_section, "
        "1 for short_section, 4 for duplicate_line, "
        "15 for oversized_file.</sub>"
    )


def test_report_keeps_repository_text_in_code_spans(tmp_path: Path) -> None:
    work = write_tree(tmp_path, {"CLAUDE.md": "# Ping @octocat | `x`\n\n## Also empty\n"})
    report = render_report(analyze(work))
    assert "| 1 | `` # Ping @octocat \\| `x` `` |" in report  # code span, pipe escaped
    assert "section `Also empty` is empty" in report
    assert "@octocat" not in report.replace("`` # Ping @octocat", "")


async def test_results_are_stored_and_trend_is_newest_first(db, checkout: Path) -> None:
    await add_repository(db)
    analysis = analyze(checkout)
    start = datetime(2025, 6, 2, 9, tzinfo=UTC)
    ids = [
        await store_result(
            db,
            analysis,
            repo_id=REPO_ID,
            commit_sha=f"{n:040x}",
            created_at=start + timedelta(days=n),
        )
        for n in (0, 2, 1)
    ]
    rows = await trend(db, REPO_ID)
    assert [r.id for r in rows] == [ids[1], ids[2], ids[0]]
    assert [r.id for r in await trend(db, REPO_ID, limit=2)] == [ids[1], ids[2]]
    assert await trend(db, 42) == []
    latest = rows[0]
    assert (latest.score, latest.total_tokens, latest.files) == (67, 5661, 3)
    assert latest.created_at == start + timedelta(days=2)
    assert (
        latest.issues[0]
        == Issue(
            "missing_path", "CLAUDE.md", 3, "`src/old_module.py` does not exist in the checkout"
        ).as_dict()
    )


async def test_the_builtin_analyzer_stores_a_result_per_run(db, tmp_path: Path) -> None:
    await add_repository(db)
    git_url = bare_repository(tmp_path, REPO, files=FIXTURE)
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", f"{git_url}/{REPO}.git", str(work)], check=True)
    one_repo = SimpleNamespace(id=None, repo_id=REPO_ID)
    outcome = await run_builtin("context/analyze", work, one_repo, db=db)
    assert outcome.ok, outcome.error
    assert outcome.result_text.startswith("## CLAUDE.md analysis: 67/100")
    # A job on several repositories has no repo_id: the checkout's origin names it.
    several = SimpleNamespace(id=None, repo_id=None)
    assert (await run_builtin("context/analyze", work, several, db=db)).ok
    assert (await run_builtin("context/analyze", work, several)).ok  # no db: nothing stored
    rows = await trend(db, REPO_ID)
    head = subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert len(rows) == 2 and {r.commit_sha for r in rows} == {head}
    assert all(r.score == 67 for r in rows)


# -- as a `runner: builtin` job in the worker ---------------------------------------------


@pytest.fixture
async def worker(db_url, db, tmp_path):
    from ghapp.clock import SystemClock
    from ghapp.github.app import GitHubApp
    from ghapp.github.transport import RetryPolicy
    from ghapp.jobs.service import JobService
    from ghapp.runqueue.claim import RunQueue
    from ghapp.signals import Signals
    from ghapp.standins.github import GitHubStandIn
    from ghapp.worker.execute import SessionExecutor
    from ghapp.worker.pool import WorkerPool
    from tests.conftest import make_settings

    await add_repository(db)
    github = GitHubStandIn(app_id=99)
    github.add_installation(957387, "Codertocat")
    github.add_repo(REPO, 957387, repo_id=REPO_ID, default_branch="master")
    git_url = bare_repository(tmp_path, REPO, files=FIXTURE)
    async with github.serve() as base_url:
        settings = make_settings(
            db_url,
            tmp_path,
            github_api_url=base_url,
            git_url=git_url,
            claude_bin=sys.executable,
            app_id=99,
            private_key=github.private_key_pem,
        )
        client = GitHubApp(settings, SystemClock(), RetryPolicy(attempts=2, base_delay=0.01))
        signals = Signals()
        executor = SessionExecutor(db, settings, client, SystemClock())
        pool = WorkerPool(db, SystemClock(), signals, RunQueue(db, "w"), executor)
        yield github, JobService(db, SystemClock(), signals), pool
        await client.aclose()


async def test_an_analyze_job_reports_and_stores_each_run(worker, db) -> None:
    github, jobs, pool = worker
    job = await jobs.create(
        {
            "name": "Context analysis",
            "repo_id": REPO_ID,
            "target_type": "codebase",
            "runner": "builtin",
            "command_id": "context/analyze",
            "report": "issue",
            "cron_expression": "0 9 * * *",
        },
        actor="t",
    )
    for _ in range(2):
        await jobs.run_now(job.id, actor="t")
        while (claimed := await pool.queue.claim(datetime.now(UTC))) is not None:
            await pool.process(claimed)
    runs = await runs_of(db, job.id)
    assert [r.status for r in runs] == ["completed", "completed"], [r.error for r in runs]
    [report_issue] = github.issues(REPO)
    assert "## CLAUDE.md analysis: 67/100" in report_issue["body"]
    assert "`src/old_module.py` does not exist in the checkout" in report_issue["body"]
    async with db.read() as conn:
        rows = list((await conn.execute(select(AnalysisResult))).all())
    assert [(r.repo_id, r.job_id, r.score, r.files) for r in rows] == [
        (REPO_ID, job.id, 67, 3),
        (REPO_ID, job.id, 67, 3),
    ]
