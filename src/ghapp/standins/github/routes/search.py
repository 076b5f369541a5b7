"""``GET /search/issues``, with an installation token, over its installation's repositories:
the query's filters (:mod:`..search`), GitHub's sort orders, paging, the 1000-result cap,
and ``incomplete_results`` when a test asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ghapp.standins.github._utils import Call, GitHubError, Reply, page_params, validation
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.search import invalid_query, search_filters
from ghapp.standins.github.world import World

SEARCH_RESULT_CAP = 1000  # GitHub serves only the first 1000 search results

_SORT_KEYS: dict[str | None, Callable[[dict[str, Any]], Any]] = {
    "created": lambda i: (i["created_at"], i["id"]),
    "updated": lambda i: (i["updated_at"], i["id"]),
    "comments": lambda i: (i["comments"], i["id"]),
}


class SearchRoutes:
    world: World
    render: Renderer

    def _search_issues(self, call: Call) -> Reply:
        """``GET /search/issues`` over the token's installation's repositories.

        Supports the qualifiers ghapp sends (see :func:`.search.search_filters`); an
        unsupported qualifier is a 422 naming it, so a test never passes on a silently
        ignored filter.
        """
        q = call.query.get("q", "").strip()
        if not q:
            raise validation("Search", "q", "missing")
        filters = search_filters(q, self._repo_for_search(call.auth.installation_id))
        found = [
            i
            for i in self.world.issues.values()
            if self.world.repos[i["repo"]]["installation_id"] == call.auth.installation_id
            and all(f(i) for f in filters)
        ]
        sort, order = call.query.get("sort"), call.query.get("order", "desc")
        if sort in _SORT_KEYS:
            found.sort(key=_SORT_KEYS[sort], reverse=order != "asc")
        else:  # "best match": we have no relevance, so newest number first
            found.sort(key=lambda i: (i["number"], i["repo"]), reverse=True)
        per_page, page = page_params(call)
        if (page - 1) * per_page >= SEARCH_RESULT_CAP:
            raise GitHubError(422, "Only the first 1000 search results are available")
        items, headers = self.render.page(
            call, found[:SEARCH_RESULT_CAP], render=lambda i: {**self.render.issue(i), "score": 1.0}
        )
        return Reply(
            200,
            {
                "total_count": len(found),
                "incomplete_results": self.world.incomplete_results,
                "items": items,
                "search_type": "lexical",  # GitHub's default: no semantic search asked for
            },
            headers,
        )

    def _repo_for_search(self, installation_id: int | None) -> Callable[[str], str]:
        """Resolve a ``repo:`` qualifier to a visible repository's key, or refuse."""

        def resolve(full_name: str) -> str:
            repo = self.world.repos.get(full_name.lower())
            if repo is None or repo["installation_id"] != installation_id:
                raise invalid_query(
                    "The listed users and repositories cannot be searched either because the "
                    "resources do not exist or you do not have permission to view them."
                )
            return full_name.lower()

        return resolve
