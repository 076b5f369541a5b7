"""Scheduled issue jobs find their items through GitHub search, page after page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ghapp.worker.items import search_items
from tests.github_support import REPO

NOW = datetime.now(UTC)


@pytest.fixture
def backlog(github):
    start = NOW - timedelta(days=30)
    for n in range(2, 252):  # 250 open issues needing triage, oldest first
        github.add_issue(
            REPO,
            n,
            title=f"Issue {n}",
            labels=["needs-triage"],
            created_at=start + timedelta(minutes=n),
            updated_at=start + timedelta(minutes=n),
        )
    for n in range(252, 262):  # not matching: closed, or another label
        github.add_issue(
            REPO,
            n,
            title=f"Other {n}",
            labels=["bug"] if n % 2 else ["needs-triage"],
            state="open" if n % 2 else "closed",
        )
    return github


async def test_pages_through_search_skipping_recent_items(app, backlog) -> None:
    gh = await app.for_installation(11)
    found = await search_items(
        gh,
        repo=REPO,
        target="issues",
        filter_query="state:open label:needs-triage",
        max_items=50,
        now=NOW,
        recently_processed=set(range(2, 182)),
    )
    assert found.query == f"repo:{REPO} is:issue is:open label:needs-triage"
    assert found.found == 250 and found.skipped == 180
    assert [item["number"] for item in found.items] == list(range(182, 232))
    pages = [r.query["page"] for r in backlog.find_requests("GET", r"^/search/issues$")]
    assert pages == ["1", "2", "3"]
    assert not found.incomplete


async def test_max_items_stops_early(app, backlog) -> None:
    gh = await app.for_installation(11)
    found = await search_items(
        gh, repo=REPO, target="issues", filter_query="label:needs-triage", max_items=10, now=NOW
    )
    assert [item["number"] for item in found.items] == list(range(2, 12))
    assert len(backlog.find_requests("GET", r"^/search/issues$")) == 1


async def test_incomplete_results_are_retried_then_reported(app, backlog) -> None:
    backlog.set_incomplete_results(True)
    gh = await app.for_installation(11)
    found = await search_items(
        gh, repo=REPO, target="issues", filter_query="label:needs-triage", max_items=5, now=NOW
    )
    assert found.incomplete and len(found.items) == 5
    assert len(backlog.find_requests("GET", r"^/search/issues$")) == 2  # asked twice


async def test_relative_dates_and_no_assignee_reach_github(app, backlog) -> None:
    gh = await app.for_installation(11)
    found = await search_items(
        gh,
        repo=REPO,
        target="issues",
        filter_query="updated:<7d assignee:none",
        max_items=5,
        now=NOW,
    )
    assert "no:assignee" in found.query and "updated:>" in found.query
    numbers = {item["number"] for item in found.items}
    assert numbers and not numbers & set(range(2, 252))  # the backlog is weeks old
