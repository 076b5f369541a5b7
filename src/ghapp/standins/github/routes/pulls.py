"""Pull requests, with an installation token: get, list (``state``, ``head``, ``base``),
create (as the app's bot; ``422`` if an open one from the same head into the same base
exists), update, and list a pull request's files; a pull request's review comments
(comments in its diff) listed oldest first, and a reply in a review thread (as the app's
bot; only on a thread's first comment, as GitHub takes it). A pull request is an issue record with
pull details, so plain issues are 404 here, as on GitHub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ghapp.standins.github._utils import (
    Call,
    GitHubError,
    Reply,
    check_body_length,
    fake_sha,
    not_found,
    validation,
)
from ghapp.standins.github.render import Renderer, head_label
from ghapp.standins.github.routes.issues import apply_issue_changes
from ghapp.standins.github.world import World


class PullRoutes:
    world: World
    render: Renderer
    web_url: str
    add_issue: Callable[..., dict[str, Any]]  # GitHubStandIn.add_issue (helpers.py)

    def _get_pull(self, call: Call) -> Reply:
        assert call.repo is not None
        pull = self.world.pull(call.repo, int(call.params["number"]))
        return Reply(200, self.render.pull(pull))

    def _pull_files(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.pull(call.repo, int(call.params["number"]))
        files = [
            {
                "sha": fake_sha(f["filename"]),
                "filename": f["filename"],
                "status": f["status"],
                "additions": 1,
                "deletions": 0 if f["status"] == "added" else 1,
                "changes": 1 if f["status"] == "added" else 2,
                "blob_url": f"{self.web_url}/{call.repo['full_name']}/blob/"
                f"{issue['pull']['head_sha']}/{quote(f['filename'])}",
                "raw_url": f"{self.web_url}/{call.repo['full_name']}/raw/"
                f"{issue['pull']['head_sha']}/{quote(f['filename'])}",
                "contents_url": f"{call.api}/repos/{call.repo['full_name']}/contents/"
                f"{quote(f['filename'])}?ref={issue['pull']['head_sha']}",
            }
            for f in self.world.pr_files.get((issue["repo"], issue["number"]), [])
        ]
        page, headers = self.render.page(call, files)
        return Reply(200, page, headers)

    def _list_review_comments(self, call: Call) -> Reply:
        assert call.repo is not None
        pull = self.world.pull(call.repo, int(call.params["number"]))
        comments = [self.render.review_comment(c) for c in self.world.review_comments_of(pull)]
        page, headers = self.render.page(call, comments)
        return Reply(200, page, headers)

    def _reply_to_review_comment(self, call: Call) -> Reply:
        """404 unless the comment is a thread's first one on this pull request."""
        assert call.repo is not None
        pull = self.world.pull(call.repo, int(call.params["number"]))
        first = self.world.review_comments.get(int(call.params["comment_id"]))
        if (
            first is None
            or (first["repo"], first["number"]) != (pull["repo"], pull["number"])
            or first.get("in_reply_to_id") is not None
        ):
            raise not_found()
        body = call.body().get("body")
        if not isinstance(body, str) or not body:
            raise validation("PullRequestReviewComment", "body", "missing_field")
        check_body_length("PullRequestReviewComment", body)
        reply = self.world.new_review_comment(
            pull, body, self.render.bot_login(), "Bot", first["id"]
        )
        return Reply(201, self.render.review_comment(reply))

    def _list_pulls(self, call: Call) -> Reply:
        """``?state=open|closed|all&head=owner:branch&base=branch``, newest first."""
        assert call.repo is not None
        state = call.query.get("state", "open")
        head = call.query.get("head")
        base = call.query.get("base")
        found = []
        for issue in self.world.issues_of(call.repo):
            if issue["pull"] is None or (state != "all" and issue["state"] != state):
                continue
            if head and head.lower() != head_label(issue).lower():
                continue
            if base and base != issue["pull"]["base_ref"]:
                continue
            found.append(issue)
        found.sort(key=lambda i: i["number"], reverse=True)
        page, headers = self.render.page(call, [self.render.pull(i) for i in found])
        return Reply(200, page, headers)

    def _create_pull(self, call: Call) -> Reply:
        """422 if an open pull request from the same head into the same base exists."""
        assert call.repo is not None
        data = call.body()
        for name in ("title", "head", "base"):
            if not data.get(name):
                raise validation("PullRequest", name, "missing_field")
        check_body_length("PullRequest", data.get("body"))
        head = str(data["head"])
        owner, sep, branch = head.partition(":")
        if not sep:
            owner, branch = call.repo["owner"], head
        self._refuse_duplicate(call.repo, f"{owner}:{branch}", data["base"])
        head_repo = (
            call.repo["full_name"]
            if owner.lower() == call.repo["owner"].lower()
            else f"{owner}/{call.repo['name']}"
        )
        created = self.add_issue(
            call.repo["full_name"],
            title=str(data["title"]),
            body=data.get("body") or "",
            user=self.render.bot_login(),
            user_type="Bot",
            pull=True,
            head=branch,
            base=data["base"],
            draft=bool(data.get("draft")),
            head_repo=head_repo,
        )
        return Reply(201, self.render.pull(self.world.pull(call.repo, created["number"])))

    def _refuse_duplicate(self, repo: dict[str, Any], label: str, base: Any) -> None:
        """GitHub's 422 when an open pull request from ``label`` into ``base`` exists."""
        for issue in self.world.issues_of(repo):
            if (
                issue["pull"] is not None
                and issue["state"] == "open"
                and head_label(issue).lower() == label.lower()
                and issue["pull"]["base_ref"] == base
            ):
                raise GitHubError(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {label}.",
                        }
                    ],
                )

    def _update_pull(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.pull(call.repo, int(call.params["number"]))
        data = call.body()
        apply_issue_changes(issue, data, "PullRequest")
        if data.get("base"):
            issue["pull"]["base_ref"] = data["base"]
        return Reply(200, self.render.pull(issue))
