"""Issues, with an installation token: get, list (pull requests too, as GitHub lists them
here), create (as the app's bot) and update. :func:`apply_issue_changes` is the update
both issues and pull requests go through (title, body, labels, assignees, state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ghapp.standins.github._utils import (
    Call,
    Reply,
    check_body_length,
    label_names,
    now,
    validation,
)
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World


class IssueRoutes:
    world: World
    render: Renderer
    add_issue: Callable[..., dict[str, Any]]  # GitHubStandIn.add_issue (helpers.py)

    def _get_issue(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        return Reply(200, self.render.issue(issue))

    def _list_issues(self, call: Call) -> Reply:
        """``?state=open|closed|all&sort=created&direction=asc|desc`` (pull requests too,
        as GitHub lists them here)."""
        assert call.repo is not None
        state = call.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation("Issue", "state", "invalid")
        found = [
            i for i in self.world.issues_of(call.repo) if state == "all" or i["state"] == state
        ]
        found.sort(key=lambda i: i["number"], reverse=call.query.get("direction", "desc") == "desc")
        page, headers = self.render.page(call, [self.render.issue(i) for i in found])
        return Reply(200, page, headers)

    def _create_issue(self, call: Call) -> Reply:
        assert call.repo is not None
        data = call.body()
        if not data.get("title"):
            raise validation("Issue", "title", "missing_field")
        check_body_length("Issue", data.get("body"))
        created = self.add_issue(
            call.repo["full_name"],
            title=str(data["title"]),
            body=data.get("body") or "",
            labels=label_names(data.get("labels") or []),
            assignees=data.get("assignees") or [],
            user=self.render.bot_login(),
            user_type="Bot",
        )
        return Reply(201, created)

    def _update_issue(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        apply_issue_changes(issue, call.body(), "Issue")
        return Reply(200, self.render.issue(issue))


def apply_issue_changes(issue: dict[str, Any], data: dict[str, Any], kind: str) -> None:
    """A ``PATCH`` of an issue or pull request (``kind`` names it in validation errors)."""
    if "body" in data:
        check_body_length(kind, data["body"])
    if "state" in data and data["state"] not in ("open", "closed"):
        raise validation(kind, "state", "invalid")
    if "title" in data:
        if not data["title"]:
            raise validation(kind, "title", "missing_field")
        issue["title"] = str(data["title"])
    if "body" in data:
        issue["body"] = data["body"] or ""
    if "labels" in data:
        issue["labels"] = label_names(data["labels"] or [])
    if "assignees" in data:
        issue["assignees"] = list(data["assignees"] or [])
    state = data.get("state")
    if state is not None and state != issue["state"]:
        issue["state"] = state
        issue["closed_at"] = now() if state == "closed" else None
        issue["state_reason"] = (
            data.get("state_reason") or "completed" if state == "closed" else "reopened"
        )
    issue["updated_at"] = now()
