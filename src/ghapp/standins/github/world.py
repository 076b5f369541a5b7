"""The GitHub stand-in's state: one :class:`World` holding every installation, repository,
issue and pull request, comment, reaction, collaborator role, file and pending manifest
code, in memory, plus the lookups over them that GitHub's answers depend on (a repository
by name, an issue or pull request by number, a login's role and author association).
Records are plain dicts; their shape is set where they are created (the ``add_*`` helpers
in :mod:`.helpers`, :meth:`World.new_comment`, the reaction route). The world takes no
lock: its owner, :class:`~ghapp.standins.github.GitHubStandIn`, holds one around every use.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ghapp.standins.github._utils import not_found, now


@dataclass
class ManifestCode:
    """A code GitHub's manifest flow handed out: what was registered, by whom, when."""

    manifest: dict[str, Any]
    owner: str
    owner_type: str
    issued_at: float


@dataclass
class HookLog:
    """The app's webhook (where deliveries go, signed with which secret) and every delivery
    made to it, by id; ids grow with time, as GitHub's do. A delivery record holds what was
    sent (``guid``, ``event``, ``action``, ``body``, request headers) and how it went
    (``status_code``, 0 when no answer came; ``status``; ``duration``; the response)."""

    url: str | None = None
    secret: str | None = None
    hook_id: int = 4_200_001
    deliveries: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(90_000_000_001))


@dataclass
class World:
    """Everything the stand-in knows, keyed as GitHub looks it up (names lower-cased)."""

    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1_000_001))
    user_ids: dict[str, int] = field(default_factory=dict)  # lower-case login -> id
    installations: dict[int, dict[str, Any]] = field(default_factory=dict)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case full name
    issues: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # and pulls
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    review_comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # in PR diffs
    reactions: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict)
    permissions: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, login)
    files: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (repo, ref)
    pr_files: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    manifest_codes: dict[str, ManifestCode] = field(default_factory=dict)
    hooks: HookLog = field(default_factory=HookLog)  # the app's webhook and its deliveries
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    check_suites: dict[tuple[str, str], int] = field(default_factory=dict)  # (repo, head sha)
    checks_refused: bool = False  # as for an installation without checks: write
    incomplete_results: bool = False  # search answers say GitHub's search timed out

    def next_id(self) -> int:
        return next(self.ids)

    def repo(self, full_name: str) -> dict[str, Any]:
        """A repository for the set-up helpers: a ``KeyError`` if it was never added."""
        repo = self.repos.get(full_name.lower())
        if repo is None:
            raise KeyError(f"unknown repository {full_name!r}: add_repo() it first")
        return repo

    def repo_for(self, owner: str, name: str) -> dict[str, Any] | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def issues_of(self, repo: dict[str, Any]) -> list[dict[str, Any]]:
        key = repo["full_name"].lower()
        return [i for (r, _), i in self.issues.items() if r == key]

    def issue(self, repo: dict[str, Any], number: int) -> dict[str, Any]:
        issue = self.issues.get((repo["full_name"].lower(), number))
        if issue is None:
            raise not_found()
        return issue

    def pull(self, repo: dict[str, Any], number: int) -> dict[str, Any]:
        issue = self.issue(repo, number)
        if issue["pull"] is None:  # GitHub: /pulls/N of a plain issue is a 404
            raise not_found()
        return issue

    def comments_of(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            c
            for c in self.comments.values()
            if c["repo"] == issue["repo"] and c["number"] == issue["number"]
        ]

    def new_comment(
        self, issue: dict[str, Any], body: str, user: str, user_type: str
    ) -> dict[str, Any]:
        moment = now()
        comment = {
            "id": self.next_id(),
            "repo": issue["repo"],
            "number": issue["number"],
            "body": body,
            "user": user,
            "user_type": user_type,
            "created_at": moment,
            "updated_at": moment,
        }
        self.comments[comment["id"]] = comment
        issue["comments"] += 1
        issue["updated_at"] = moment  # a comment bumps the issue, as on GitHub
        return comment

    def new_review_comment(
        self,
        pull: dict[str, Any],
        body: str,
        user: str,
        user_type: str,
        in_reply_to: int | None = None,
        path: str = "README.md",
    ) -> dict[str, Any]:
        """A comment in the pull request's diff; a reply takes its thread's path."""
        first = self.review_comments.get(in_reply_to) if in_reply_to is not None else None
        moment = now()
        comment = {
            "id": self.next_id(),
            "repo": pull["repo"],
            "number": pull["number"],
            "body": body,
            "user": user,
            "user_type": user_type,
            "in_reply_to_id": in_reply_to,
            "review_id": self.next_id(),  # GitHub makes a review for each single comment
            "path": first["path"] if first else path,
            "commit_id": pull["pull"]["head_sha"],
            "created_at": moment,
            "updated_at": moment,
        }
        self.review_comments[comment["id"]] = comment
        return comment

    def review_comments_of(self, pull: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(
            (
                c
                for c in self.review_comments.values()
                if c["repo"] == pull["repo"] and c["number"] == pull["number"]
            ),
            key=lambda c: c["id"],
        )

    def owner_type(self, owner: str) -> str:
        for record in self.installations.values():
            if record["account_login"].lower() == owner.lower():
                return str(record["account_type"])
        return "User"

    def role(self, repo: dict[str, Any], login: str) -> str | None:
        role = self.permissions.get((repo["full_name"].lower(), login.lower()))
        if role is None and login.lower() == repo["owner"].lower():
            if self.owner_type(repo["owner"]) == "User":
                return "admin"
        return role

    def association(self, repo_key: str, login: str) -> str:
        repo = self.repos[repo_key]
        if login.lower() == repo["owner"].lower():
            return "OWNER"
        return (
            "COLLABORATOR"
            if self.permissions.get((repo_key, login.lower()), "none") != "none"
            else "NONE"
        )
