"""Issue and pull request comments, with an installation token: list (oldest first,
``since``), create (as the app's bot), get and update one. :meth:`CommentRoutes._comment`
finds the comment a ``/issues/comments/{id}`` path names, within the path's repository.
"""

from __future__ import annotations

from typing import Any

from ghapp.standins.github._utils import (
    Call,
    Reply,
    check_body_length,
    not_found,
    now,
    parse_moment,
    validation,
)
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World


class CommentRoutes:
    world: World
    render: Renderer

    def _list_comments(self, call: Call) -> Reply:
        """Oldest first, paginated; ``since`` keeps those updated at or after it."""
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        comments = self.world.comments_of(issue)
        since = call.query.get("since")
        if since:
            moment = parse_moment(since, now())
            comments = [c for c in comments if c["updated_at"] >= moment]
        page, headers = self.render.page(call, [self.render.comment(c) for c in comments])
        return Reply(200, page, headers)

    def _create_comment(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        body = _checked_body(call)
        comment = self.world.new_comment(issue, body, self.render.bot_login(), "Bot")
        return Reply(201, self.render.comment(comment))

    def _get_comment(self, call: Call) -> Reply:
        return Reply(200, self.render.comment(self._comment(call)))

    def _update_comment(self, call: Call) -> Reply:
        comment = self._comment(call)
        comment["body"] = _checked_body(call)
        comment["updated_at"] = now()
        return Reply(200, self.render.comment(comment))

    def _comment(self, call: Call) -> dict[str, Any]:
        assert call.repo is not None
        comment = self.world.comments.get(int(call.params["id"]))
        if comment is None or comment["repo"] != call.repo["full_name"].lower():
            raise not_found()
        return comment


def _checked_body(call: Call) -> str:
    """A comment's ``body``: present, a string, and within GitHub's length limit."""
    body = call.body().get("body")
    if not isinstance(body, str) or not body:
        raise validation("IssueComment", "body", "missing_field")
    check_body_length("IssueComment", body)
    return body
