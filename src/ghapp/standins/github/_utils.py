"""What every part of the GitHub stand-in shares, holding no state of its own: GitHub's error
answer (:class:`GitHubError` and the 404/422 shortcuts), what a route handler is given and
gives back (:class:`Call`, :class:`Auth`, :class:`Reply`), the constants several parts
agree on (roles, the token's permissions, the app's events, the body length limit), and
small helpers for timestamps, fake SHAs, labels and page parameters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

AuthKind = Literal["app-jwt", "installation-token", "none"]

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
MAX_COMMENT_LENGTH = 65536  # GitHub's limit on issue, PR and comment bodies
ROLES = {  # role_name -> the coarse "permission" GitHub reports for it
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
TOKEN_PERMISSIONS = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "write",
}
APP_EVENTS = [
    "check_run",
    "check_suite",
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review_comment",
    "push",
]
NOT_ACCESSIBLE = "Resource not accessible by integration"
REACTION_CONTENTS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


class GitHubError(Exception):
    """An error answer in GitHub's shape: ``{"message", "documentation_url", "errors"?}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        documentation_url: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": documentation_url}
        if errors is not None:
            self.body["errors"] = errors
        self.headers = headers or {}


def not_found() -> GitHubError:
    return GitHubError(404, "Not Found")


def validation(resource: str, field_: str, code: str, message: str | None = None) -> GitHubError:
    error: dict[str, Any] = {"resource": resource, "code": code, "field": field_}
    if message is not None:
        error["message"] = message
    return GitHubError(422, "Validation Failed", errors=[error])


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Auth:
    kind: AuthKind = "none"
    installation_id: int | None = None
    error: str | None = None  # why presented credentials were refused
    presented: bool = False


@dataclass
class Call:
    """What a handler needs from a request."""

    method: str
    path: str  # as requested, prefix included (for Link headers)
    params: dict[str, str]
    query: dict[str, str]
    query_items: list[tuple[str, str]]
    json: Any
    auth: Auth
    api: str
    repo: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else {}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(value: datetime | str | None, default: datetime) -> datetime:
    if value is None:
        return default
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def fake_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def blob_sha(data: bytes) -> str:
    """The git blob id GitHub reports as a file's ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def stable_id(text: str) -> int:
    return int(fake_sha(text)[:8], 16)


def label_names(labels: Iterable[Any]) -> list[str]:
    return [str(label["name"]) if isinstance(label, dict) else str(label) for label in labels]


def check_body_length(resource: str, body: Any) -> None:
    if isinstance(body, str) and len(body) > MAX_COMMENT_LENGTH:
        message = f"body is too long (maximum is {MAX_COMMENT_LENGTH} characters)"
        raise validation(resource, "body", "custom", message)


def page_params(call: Call) -> tuple[int, int]:
    """GitHub's ``per_page`` (default 30, at most 100) and ``page`` (from 1)."""

    def number(name: str, default: int) -> int:
        value = call.query.get(name, "")
        return int(value) if value.isdigit() and int(value) > 0 else default

    return min(number("per_page", 30), 100), number("page", 1)
