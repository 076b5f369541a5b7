"""Every issue-, PR- and comment-ish event becomes one ItemEvent shape."""

from __future__ import annotations

import copy

import pytest
from gidgethub import sansio

from ghapp.webhooks.normalize import ItemEvent, normalise
from tests.support import event_of, load, payload_files


def event(relative: str, **changes: object) -> sansio.Event:
    data = copy.deepcopy(load(relative))
    data.update(changes)
    return sansio.Event(data, event=relative.split("/")[0], delivery_id="d-1")


def test_issue_opened() -> None:
    item = normalise(event("issues/opened.payload.json"))
    assert item is not None
    assert (item.event, item.action, item.item_kind, item.number) == (
        "issues",
        "opened",
        "issue",
        1,
    )
    assert item.repo_full_name == "Codertocat/Hello-World"
    assert item.repo_id == 186853002
    assert item.default_branch == "master"
    assert item.title == "Spelling error in the README file"
    assert item.author_login == "Codertocat"
    assert item.actor_login == "Codertocat" and not item.actor_is_bot
    assert item.author_association == "OWNER"
    assert item.labels == ("bug",)
    assert item.html_url == "https://github.com/Codertocat/Hello-World/issues/1"
    assert not item.is_comment and item.pull is None
    assert item.installation_id is None


def test_issue_with_empty_body() -> None:
    item = normalise(event("issues/opened.with-empty-body.payload.json"))
    assert item is not None and item.body == ""


def test_labeled_event_names_the_label() -> None:
    item = normalise(event("issues/labeled.payload.json"))
    assert item is not None and item.label_name == "bug"


def test_pull_request_opened_same_repository() -> None:
    item = normalise(event("pull_request/opened.payload.json"))
    assert item is not None
    assert (item.item_kind, item.number) == ("pr", 2)
    assert item.pull is not None
    assert item.pull.base_ref == "master" and item.pull.head_ref == "changes"
    assert item.pull.head_repo_full_name == "Codertocat/Hello-World"
    assert not item.pull.is_fork and not item.pull.draft
    assert item.installation_id is not None


def test_pull_request_from_a_fork() -> None:
    data = copy.deepcopy(load("pull_request/opened.payload.json"))
    data["pull_request"]["head"]["repo"] = dict(
        data["pull_request"]["head"]["repo"], id=999, full_name="mallory/Hello-World"
    )
    item = normalise(sansio.Event(data, event="pull_request", delivery_id="d"))
    assert item is not None and item.pull is not None
    assert item.pull.is_fork and item.pull.head_repo_full_name == "mallory/Hello-World"


def test_pull_request_from_a_deleted_fork_counts_as_fork() -> None:
    data = copy.deepcopy(load("pull_request/opened.payload.json"))
    data["pull_request"]["head"]["repo"] = None
    item = normalise(sansio.Event(data, event="pull_request", delivery_id="d"))
    assert item is not None and item.pull is not None and item.pull.is_fork


def test_draft_pull_request() -> None:
    item = normalise(event("pull_request/converted_to_draft.payload.json"))
    assert item is not None and item.pull is not None and item.pull.draft


def test_comment_on_issue() -> None:
    item = normalise(event("issue_comment/created.payload.json"))
    assert item is not None
    assert item.item_kind == "issue" and item.is_comment
    assert item.comment_id == 492700400
    assert item.comment_body is not None and item.comment_body.startswith("You are totally right")
    assert item.author_association == "OWNER"


def test_comment_on_pull_request_is_a_pr_item() -> None:
    data = copy.deepcopy(load("issue_comment/created.payload.json"))
    data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    item = normalise(sansio.Event(data, event="issue_comment", delivery_id="d"))
    assert item is not None and item.item_kind == "pr"
    assert item.pull is None  # the comment payload carries no PR details


def test_review_comment() -> None:
    item = normalise(event("pull_request_review_comment/created.payload.json"))
    assert item is not None
    assert item.item_kind == "pr" and item.comment_id == 284312630
    assert item.pull is not None


def test_review_with_empty_body() -> None:
    item = normalise(event("pull_request_review/submitted.payload.json"))
    assert item is not None and item.comment_id == 237895671 and item.comment_body == ""


def test_bot_sender_is_recognised() -> None:
    sender = {"login": "ghapp[bot]", "type": "Bot", "id": 1}
    item = normalise(event("issue_comment/created.payload.json", sender=sender))
    assert item is not None and item.actor_is_bot


def test_comment_authored_by_bot_is_recognised() -> None:
    data = copy.deepcopy(load("issue_comment/created.payload.json"))
    data["comment"]["user"] = {"login": "dependabot[bot]", "type": "Bot"}
    item = normalise(sansio.Event(data, event="issue_comment", delivery_id="d"))
    assert item is not None and item.actor_is_bot


def test_round_trip_through_dict() -> None:
    item = normalise(event("pull_request/opened.payload.json"))
    assert item is not None
    assert ItemEvent.from_dict(item.to_dict()) == item


@pytest.mark.parametrize("path", payload_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_payload_normalises_or_is_not_an_item(path) -> None:
    """Item events always normalise; everything else yields None, never an exception."""
    data = load(f"{path.parent.name}/{path.name}")
    item = normalise(sansio.Event(data, event=event_of(path), delivery_id="d"))
    if event_of(path) in {
        "issues",
        "pull_request",
        "issue_comment",
        "pull_request_review_comment",
        "pull_request_review",
    }:
        assert item is not None
        assert item.number > 0 and "/" in item.repo_full_name
    else:
        assert item is None
