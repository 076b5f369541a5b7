"""Reactions by the app's bot, with an installation token, on an issue comment, on a
pull request review comment (``/pulls/comments/{id}``: a comment in the diff, which the
``/issues/comments/{id}`` endpoints do not know) or on an issue or pull request itself:
``201`` with a new reaction, ``200`` with the existing one when the bot already reacted
with that content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ghapp.standins.github._utils import Call, Reply, not_found, now, validation
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World

REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})


class ReactionRoutes:
    world: World
    render: Renderer
    _comment: Callable[[Call], dict[str, Any]]  # CommentRoutes._comment

    def _react_comment(self, call: Call) -> Reply:
        comment = self._comment(call)
        return self._react(("comment", comment["id"]), call)

    def _react_review_comment(self, call: Call) -> Reply:
        assert call.repo is not None
        comment = self.world.review_comments.get(int(call.params["id"]))
        if comment is None or comment["repo"] != call.repo["full_name"].lower():
            raise not_found()
        return self._react(("review_comment", comment["id"]), call)

    def _react_issue(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        return self._react(("issue", issue["repo"], issue["number"]), call)

    def _react(self, key: tuple[Any, ...], call: Call) -> Reply:
        """201 for a new reaction, 200 with the existing one if the app already reacted so."""
        content = call.body().get("content")
        if content not in REACTIONS:
            raise validation("Reaction", "content", "invalid")
        login = self.render.bot_login()
        reactions = self.world.reactions.setdefault(key, [])
        for reaction in reactions:
            if reaction["user"] == login and reaction["content"] == content:
                return Reply(200, self.render.reaction(reaction))
        reaction = {
            "id": self.world.next_id(),
            "user": login,
            "user_type": "Bot",
            "content": content,
            "created_at": now(),
        }
        reactions.append(reaction)
        return Reply(201, self.render.reaction(reaction))
