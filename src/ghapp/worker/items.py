"""The items a scheduled issues/PRs run works on: its filter query, searched on GitHub.

The job's filter query becomes a GitHub search query (relative dates made
absolute, ``assignee:none`` → ``no:assignee``, comma OR, negation); results are paged
through 100 at a time, oldest first so a backlog is worked off in order. A page GitHub
marks ``incomplete_results`` (its search timed out) is asked for once more; if it is still
incomplete the run goes on with what came back and says so. Each result is checked
against the query again (search is eventually consistent), items this job processed
recently are skipped, and at most ``max_items`` are kept.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gidgethub.abc import GitHubAPI

from ghapp.jobs.filters import matches, parse_filter, to_search_query

PER_PAGE = 100
MAX_PAGES = 10  # GitHub search serves the first 1,000 results only


@dataclass
class Found:
    items: list[dict[str, Any]] = field(default_factory=list)
    found: int = 0  # GitHub's count of matches (before skipping and max_items)
    skipped: int = 0  # processed recently
    incomplete: bool = False  # GitHub said some results may be missing
    query: str = ""


async def search_items(
    gh: GitHubAPI,
    *,
    repo: str,
    target: Literal["issues", "prs"],
    filter_query: str | None,
    max_items: int,
    now: datetime,
    recently_processed: Collection[int] = (),
) -> Found:
    query = parse_filter(filter_query)
    result = Found(query=to_search_query(query, repo=repo, target=target, now=now))
    for page in range(1, MAX_PAGES + 1):
        data = await _page(gh, result.query, page)
        if data.get("incomplete_results"):
            data = await _page(gh, result.query, page)  # GitHub: try again
            result.incomplete = result.incomplete or bool(data.get("incomplete_results"))
        if page == 1:
            result.found = int(data.get("total_count") or 0)
        batch = [item for item in data.get("items") or [] if matches(query, item, now)]
        for item in batch:
            if item["number"] in recently_processed:
                result.skipped += 1
            elif len(result.items) < max_items:
                result.items.append(item)
        if len(data.get("items") or []) < PER_PAGE or len(result.items) >= max_items:
            break
    return result


async def _page(gh: GitHubAPI, q: str, page: int) -> dict[str, Any]:
    params = urllib.parse.urlencode(
        {"q": q, "sort": "created", "order": "asc", "per_page": PER_PAGE, "page": page}
    )
    data: dict[str, Any] = await gh.getitem(f"/search/issues?{params}")
    return data
