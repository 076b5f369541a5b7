"""One shape for every issue-, PR- and comment-ish event (as Prow normalises them).

Triggers and commands match on :class:`ItemEvent` only, never on raw payloads, so the
differences between ``issues``, ``pull_request``, ``issue_comment``,
``pull_request_review_comment`` and ``pull_request_review`` live in this one module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gidgethub import sansio

from ghapp.webhooks import fields

ITEM_EVENTS = frozenset(
    {
        "issues",
        "pull_request",
        "issue_comment",
        "pull_request_review_comment",
        "pull_request_review",
    }
)


@dataclass(frozen=True)
class PullInfo:
    draft: bool
    base_ref: str
    head_ref: str
    head_sha: str
    head_repo_full_name: str | None
    is_fork: bool  # the head lives in another repository (or a deleted fork)


@dataclass(frozen=True)
class ItemEvent:
    event: str
    action: str | None
    delivery_id: str
    installation_id: int | None
    repo_id: int
    repo_full_name: str
    default_branch: str
    item_kind: str  # "issue" | "pr"
    number: int
    title: str
    body: str  # the issue or PR body
    html_url: str  # where a person opens it (never an API address)
    state: str
    labels: tuple[str, ...]
    author_login: str  # who opened the issue / PR
    actor_login: str  # who caused this event (``sender``)
    actor_is_bot: bool
    author_association: str  # of the actor's comment, or of the item's author
    comment_id: int | None = None
    comment_body: str | None = None
    label_name: str | None = None  # the label of ``labeled`` / ``unlabeled``
    assignee_login: str | None = None  # who was ``assigned`` / ``unassigned``
    pull: PullInfo | None = field(default=None)
    in_reply_to_id: int | None = None  # a review comment's thread (the comment it answers)
    review_state: str | None = None  # a review's: approved, changes_requested, commented

    @property
    def is_comment(self) -> bool:
        return self.comment_id is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemEvent:
        values = dict(data)
        if "url" in values:  # stored before the field was named html_url: the same address
            values.setdefault("html_url", values.pop("url"))
        values["labels"] = tuple(values.get("labels") or ())
        pull = values.get("pull")
        values["pull"] = PullInfo(**pull) if pull else None
        return cls(**values)


def is_bot(user: dict[str, Any] | None) -> bool:
    if not user:
        return False
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


def normalise(event: sansio.Event) -> ItemEvent | None:
    """The event as an :class:`ItemEvent`, or ``None`` if it is not about an issue or PR."""
    if event.event not in ITEM_EVENTS:
        return None
    data = event.data
    repo = data.get("repository")
    item = data.get("pull_request") or data.get("issue")
    if not isinstance(repo, dict) or not isinstance(item, dict):
        return None
    comment = data.get("comment") or data.get("review")
    sender = data.get("sender") or {}
    is_pr = "pull_request" in data or "pull_request" in item
    author = item.get("user") or {}
    association = (comment or item).get("author_association") or "NONE"
    installation = data.get("installation") or {}
    return ItemEvent(
        event=event.event,
        action=data.get("action"),
        delivery_id=event.delivery_id,
        installation_id=fields.int_id(installation) if installation else None,
        repo_id=fields.int_id(repo),
        repo_full_name=fields.text(repo, "full_name"),
        default_branch=fields.text(repo, "default_branch", default="main"),
        item_kind="pr" if is_pr else "issue",
        number=fields.int_id(item, "number"),
        title=item.get("title") or "",
        body=item.get("body") or "",
        html_url=item.get("html_url") or "",
        state=item.get("state") or "",
        labels=tuple(label["name"] for label in item.get("labels") or () if "name" in label),
        author_login=author.get("login", ""),
        actor_login=sender.get("login", ""),
        actor_is_bot=is_bot(sender) or is_bot((comment or {}).get("user")),
        author_association=association,
        comment_id=comment.get("id") if comment else None,
        comment_body=(comment.get("body") or "") if comment else None,
        label_name=(data.get("label") or {}).get("name"),
        assignee_login=_assignee(data),
        pull=_pull_info(data["pull_request"]) if "pull_request" in data else None,
        in_reply_to_id=_optional_int((comment or {}).get("in_reply_to_id")),
        review_state=str(data["review"].get("state") or "") if "review" in data else None,
    )


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _assignee(data: dict[str, Any]) -> str | None:
    """The login ``assigned`` / ``unassigned`` names (a wrong type: a shape error)."""
    assignee = data.get("assignee")
    return fields.optional_text(assignee, "login") if isinstance(assignee, dict) else None


def _pull_info(pr: dict[str, Any]) -> PullInfo:
    base = pr.get("base") or {}
    head = pr.get("head") or {}
    head_repo = head.get("repo")
    base_repo = base.get("repo") or {}
    # A deleted fork has ``head.repo: null``; treat it as foreign.
    is_fork = head_repo is None or head_repo.get("id") != base_repo.get("id")
    return PullInfo(
        draft=bool(pr.get("draft")),
        base_ref=base.get("ref", ""),
        head_ref=head.get("ref", ""),
        head_sha=head.get("sha", ""),
        head_repo_full_name=head_repo.get("full_name") if head_repo else None,
        is_fork=is_fork,
    )
