"""Slash commands: writers get 👀, others a polite reply, once, and the answer is cached."""

from __future__ import annotations

from ghapp.worker.authorize import REFUSED_REPLY, Authorizer
from tests.github_support import REPO


async def decide(app, authorizer, login: str, comment_id: int = 77):
    gh = await app.for_installation(11)
    return await authorizer.decide(
        gh, repo=REPO, issue_number=1, comment_id=comment_id, login=login, command="/triage"
    )


async def test_writer_is_accepted_with_eyes(app, github) -> None:
    github.set_permission(REPO, "maintainer", "write")
    comment = github.add_comment(REPO, 1, "/triage", user="maintainer")
    decision = await decide(app, Authorizer(), "maintainer", comment["id"])
    assert decision.allowed and decision.permission == "write"
    assert [r["content"] for r in github.reactions_on(comment["id"])] == ["eyes"]
    assert [c["id"] for c in github.comments_on(REPO, 1)] == [comment["id"]]  # no reply


async def test_reader_is_refused_politely_once(app, github) -> None:
    github.set_permission(REPO, "visitor", "read")
    authorizer = Authorizer()
    first = await decide(app, authorizer, "visitor")
    again = await decide(app, authorizer, "visitor")  # a retried run
    assert not first.allowed and "read permission" in first.reason
    replies = [c["body"] for c in github.comments_on(REPO, 1)]
    assert len(replies) == 1
    assert replies[0].startswith(REFUSED_REPLY.format(login="visitor", command="/triage"))
    assert not again.allowed
    # The permission was asked once; the second decision came from the cache.
    assert len(github.find_requests("GET", r"/collaborators/visitor/permission$")) == 1


async def test_stranger_without_any_role_is_refused(app, github) -> None:
    decision = await decide(app, Authorizer(), "stranger")
    assert not decision.allowed and decision.permission == "none"
