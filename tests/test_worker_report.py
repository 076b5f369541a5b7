"""Tracking comments: created once, edited in place, reused after a retry, cut to fit."""

from __future__ import annotations

from ghapp.worker.report import (
    GITHUB_COMMENT_LIMIT,
    facts_line,
    finish_comment,
    marker,
    result_text,
    start_comment,
    with_marker,
)
from tests.github_support import REPO

RUN_URL = "http://ghapp.test/runs/7"


async def test_comment_is_created_then_edited_with_the_result(app, github) -> None:
    gh = await app.for_installation(11)
    posted = await start_comment(gh, REPO, 1, 42, job="Triage", run_url=RUN_URL)
    assert not posted.reused
    [comment] = github.comments_on(REPO, 1)
    assert "is working on this" in comment["body"] and marker(42) in comment["body"]
    text = result_text(
        "Triage",
        ok=True,
        result="Looks like a typo.",
        error=None,
        facts=facts_line(turns=2, cost_usd=0.0123, duration_ms=4200),
        run_url=RUN_URL,
    )
    await finish_comment(gh, REPO, posted.comment_id, 42, text)
    [comment] = github.comments_on(REPO, 1)
    assert (
        "Looks like a typo." in comment["body"] and "2 turns · $0.0123 · 4.2 s" in comment["body"]
    )
    assert comment["body"].endswith(marker(42))


async def test_a_retried_session_reuses_its_comment(app, github) -> None:
    gh = await app.for_installation(11)
    first = await start_comment(gh, REPO, 1, 42, job="Triage", run_url=RUN_URL)
    other = await start_comment(gh, REPO, 1, 43, job="Triage", run_url=RUN_URL)
    again = await start_comment(gh, REPO, 1, 42, job="Triage", run_url=RUN_URL)
    assert again.reused and again.comment_id == first.comment_id
    assert other.comment_id != first.comment_id
    assert len(github.comments_on(REPO, 1)) == 2


async def test_long_results_are_cut_to_githubs_limit(app, github) -> None:
    gh = await app.for_installation(11)
    posted = await start_comment(gh, REPO, 1, 42, job="Triage", run_url=RUN_URL)
    body = with_marker("x" * 100_000, 42, RUN_URL)
    assert len(body) == GITHUB_COMMENT_LIMIT and "read all of it" in body
    await finish_comment(gh, REPO, posted.comment_id, 42, "y" * 100_000)  # accepted by GitHub
    assert len(github.comments_on(REPO, 1)[0]["body"]) <= GITHUB_COMMENT_LIMIT


def test_failure_text_says_why() -> None:
    text = result_text(
        "Triage",
        ok=False,
        result=None,
        error="timed out after 900 s",
        facts="0 turns",
        run_url=RUN_URL,
    )
    assert text.startswith("❌ **Triage** did not finish: timed out after 900 s")
