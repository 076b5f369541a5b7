"""The GitHub stand-in's REST endpoints: :class:`Routes` gathers the handlers of each API
area (one module each: the app and its installations, repositories and contents, issues,
labels and assignees, comments, reactions, pull requests, check runs, search) and
:meth:`Routes._build_routes` is the one table of method, path template, handler, the
credentials it wants ("jwt", "token" or "none") and which repositories it may reach
("installation": the token's own; "any"; "none"). :func:`find_route` matches a request
against that table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ghapp.standins.github._utils import Call, Reply, not_found
from ghapp.standins.github.routes.app import AppRoutes
from ghapp.standins.github.routes.checks import CheckRoutes
from ghapp.standins.github.routes.comments import CommentRoutes
from ghapp.standins.github.routes.hooks import HookRoutes
from ghapp.standins.github.routes.issues import IssueRoutes
from ghapp.standins.github.routes.labels import LabelRoutes
from ghapp.standins.github.routes.pulls import PullRoutes
from ghapp.standins.github.routes.reactions import ReactionRoutes
from ghapp.standins.github.routes.repos import RepoRoutes
from ghapp.standins.github.routes.search import SearchRoutes

Handler = Callable[[Call], Reply]


@dataclass
class Route:
    method: str
    template: str  # as written in the table, e.g. "/repos/{owner}/{repo}/issues/{number:int}"
    pattern: re.Pattern[str]
    handler: Handler
    auth: str  # "jwt" (the app JWT) or "token" (an installation token)
    repo_scope: str  # "installation": the token's own repos; "any": any repo; "none"


def compile_template(template: str) -> re.Pattern[str]:
    """``/repos/{owner}/{repo}/issues/{number:int}`` -> a full-match regex."""

    def group(match: re.Match[str]) -> str:
        name, _, kind = match.group(1).partition(":")
        body = {"int": r"\d+", "path": r".*"}.get(kind, r"[^/]+")
        return f"(?P<{name}>{body})"

    return re.compile(re.sub(r"\{([^}]+)\}", group, template))


def find_route(routes: list[Route], method: str, path: str) -> tuple[Route, re.Match[str]]:
    """The first route for ``method`` whose template matches all of ``path``, or a 404."""
    for route in routes:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match
    raise not_found()


class Routes(
    AppRoutes,
    RepoRoutes,
    IssueRoutes,
    LabelRoutes,
    CommentRoutes,
    ReactionRoutes,
    PullRoutes,
    SearchRoutes,
    CheckRoutes,
    HookRoutes,
):
    """Every endpoint's handler, as methods (so a subclass may wrap one)."""

    def _build_routes(self) -> list[Route]:
        r = "/repos/{owner}/{repo}"
        table: list[tuple[str, str, Handler, str, str]] = [
            # the app itself (JWT)
            ("GET", "/app", self._get_app, "jwt", "none"),
            ("GET", "/app/installations", self._list_installations, "jwt", "none"),
            ("GET", "/app/installations/{id:int}", self._get_installation, "jwt", "none"),
            (
                "POST",
                "/app/installations/{id:int}/access_tokens",
                self._create_token,
                "jwt",
                "none",
            ),
            ("GET", f"{r}/installation", self._repo_installation, "jwt", "any"),
            # the app's webhook deliveries (JWT)
            ("GET", "/app/hook/deliveries", self._list_hook_deliveries, "jwt", "none"),
            (
                "GET",
                "/app/hook/deliveries/{delivery_id:int}",
                self._get_hook_delivery,
                "jwt",
                "none",
            ),
            (
                "POST",
                "/app/hook/deliveries/{delivery_id:int}/attempts",
                self._redeliver_hook_delivery,
                "jwt",
                "none",
            ),
            # the manifest flow (no credentials)
            ("POST", "/app-manifests/{code}/conversions", self._convert_manifest, "none", "none"),
            # installation (token)
            ("GET", "/installation/repositories", self._installation_repos, "token", "none"),
            ("GET", "/search/issues", self._search_issues, "token", "none"),
            ("GET", r, self._get_repo, "token", "installation"),
            ("GET", f"{r}/issues", self._list_issues, "token", "installation"),
            ("POST", f"{r}/issues", self._create_issue, "token", "installation"),
            ("GET", f"{r}/issues/comments/{{id:int}}", self._get_comment, "token", "installation"),
            (
                "PATCH",
                f"{r}/issues/comments/{{id:int}}",
                self._update_comment,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/issues/comments/{{id:int}}/reactions",
                self._react_comment,
                "token",
                "installation",
            ),
            ("GET", f"{r}/issues/{{number:int}}", self._get_issue, "token", "installation"),
            ("PATCH", f"{r}/issues/{{number:int}}", self._update_issue, "token", "installation"),
            # labels and assignees (routes/labels.py)
            ("GET", f"{r}/labels", self._list_repo_labels, "token", "installation"),
            (
                "POST",
                f"{r}/issues/{{number:int}}/labels",
                self._add_issue_labels,
                "token",
                "installation",
            ),
            ("GET", f"{r}/assignees/{{assignee}}", self._check_assignee, "token", "installation"),
            (
                "POST",
                f"{r}/issues/{{number:int}}/assignees",
                self._add_issue_assignees,
                "token",
                "installation",
            ),
            (
                "GET",
                f"{r}/issues/{{number:int}}/comments",
                self._list_comments,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/issues/{{number:int}}/comments",
                self._create_comment,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/issues/{{number:int}}/reactions",
                self._react_issue,
                "token",
                "installation",
            ),
            ("GET", f"{r}/pulls", self._list_pulls, "token", "installation"),
            ("POST", f"{r}/pulls", self._create_pull, "token", "installation"),
            ("GET", f"{r}/pulls/{{number:int}}", self._get_pull, "token", "installation"),
            ("PATCH", f"{r}/pulls/{{number:int}}", self._update_pull, "token", "installation"),
            ("GET", f"{r}/pulls/{{number:int}}/files", self._pull_files, "token", "installation"),
            (
                "GET",
                f"{r}/pulls/{{number:int}}/comments",
                self._list_review_comments,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/pulls/{{number:int}}/comments/{{comment_id:int}}/replies",
                self._reply_to_review_comment,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/pulls/comments/{{id:int}}/reactions",
                self._react_review_comment,
                "token",
                "installation",
            ),
            (
                "GET",
                f"{r}/collaborators/{{username}}/permission",
                self._permission,
                "token",
                "installation",
            ),
            ("GET", f"{r}/contents/{{path:path}}", self._contents, "token", "installation"),
            ("POST", f"{r}/statuses/{{sha}}", self._create_status, "token", "installation"),
            ("POST", f"{r}/check-runs", self._create_check_run, "token", "installation"),
            (
                "PATCH",
                f"{r}/check-runs/{{check_run_id:int}}",
                self._update_check_run,
                "token",
                "installation",
            ),
            (
                "GET",
                f"{r}/check-runs/{{check_run_id:int}}",
                self._get_check_run,
                "token",
                "installation",
            ),
            (
                "GET",
                f"{r}/commits/{{ref}}/check-runs",
                self._list_check_runs_for_ref,
                "token",
                "installation",
            ),
            (
                "GET",
                f"{r}/check-suites/{{check_suite_id:int}}/check-runs",
                self._list_check_runs_for_suite,
                "token",
                "installation",
            ),
        ]
        return [
            Route(method, template, compile_template(template), handler, auth, scope)
            for method, template, handler, auth, scope in table
        ]
