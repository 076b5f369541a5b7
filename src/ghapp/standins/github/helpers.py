"""The GitHub stand-in's helpers for test code, the demo and the benches: :class:`Helpers`
sets the world up (``add_installation``, ``add_repo``, ``add_issue``, ``add_comment``,
``set_permission``, ``add_file``, ``set_pr_files``, ``add_manifest_code``, rate limits,
tokens, ``move_head``, ``refuse_checks``) and reads back what the app did
(``comments_on``, ``reactions_on``, ``issue``, ``pull``, ``issues``, ``check_runs``,
``find_requests``), rendered as GitHub would. Each helper takes the
stand-in's lock, so they may be called while another thread serves.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ghapp.standins.github._utils import ROLES, AuthKind, fake_sha, now, parse_moment
from ghapp.standins.github.auth import Credentials
from ghapp.standins.github.limits import RateLimits
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import ManifestCode, World

if TYPE_CHECKING:
    from ghapp.standins.github.server import Recorded


class Helpers:
    """Set-up and inspection for :class:`~ghapp.standins.github.GitHubStandIn`."""

    world: World
    render: Renderer
    credentials: Credentials
    limits: RateLimits
    requests: list[Recorded]
    _lock: threading.RLock

    # == data set-up ====================================================================

    def add_installation(
        self, installation_id: int, account_login: str, account_type: str = "User"
    ) -> dict[str, Any]:
        with self._lock:
            record = {
                "id": installation_id,
                "account_login": account_login,
                "account_type": account_type,
                "created_at": now(),
            }
            self.world.installations[installation_id] = record
            return self.render.installation(record)

    def add_repo(
        self,
        full_name: str,
        installation_id: int,
        *,
        repo_id: int | None = None,
        default_branch: str = "main",
        private: bool = False,
    ) -> dict[str, Any]:
        if installation_id not in self.world.installations:
            raise KeyError(f"add_installation({installation_id}, ...) first")
        owner, _, name = full_name.partition("/")
        with self._lock:
            record = {
                "id": repo_id if repo_id is not None else self.world.next_id(),
                "full_name": full_name,
                "owner": owner,
                "name": name,
                "installation_id": installation_id,
                "default_branch": default_branch,
                "private": private,
                "next_number": 1,
            }
            self.world.repos[full_name.lower()] = record
            return self.render.repo(record)

    def suspend_installation(self, installation_id: int, suspended: bool = True) -> None:
        """Suspend (or unsuspend) an installation, as its owner can on GitHub."""
        with self._lock:
            self.world.installations[installation_id]["suspended_at"] = now() if suspended else None

    def remove_installation(self, installation_id: int) -> None:
        """Uninstall the app from an account: the installation and its repositories go."""
        with self._lock:
            del self.world.installations[installation_id]
            for key in [
                k for k, r in self.world.repos.items() if r["installation_id"] == installation_id
            ]:
                del self.world.repos[key]

    def remove_repo(self, full_name: str) -> None:
        """Take a repository out of its installation (GitHub lists it no more)."""
        with self._lock:
            del self.world.repos[full_name.lower()]

    def add_issue(
        self,
        full_name: str,
        number: int | None = None,
        *,
        title: str,
        body: str = "",
        labels: Iterable[str] = (),
        user: str = "octocat",
        state: str = "open",
        created_at: datetime | str | None = None,
        updated_at: datetime | str | None = None,
        assignees: Iterable[str] = (),
        pull: bool = False,
        head: str | None = None,
        base: str | None = None,
        draft: bool = False,
        head_repo: str | None = None,
        head_sha: str | None = None,
        user_type: str = "User",
    ) -> dict[str, Any]:
        """An issue, or with ``pull=True`` a pull request (an issue with PR details).

        ``head`` is the head branch (default ``branch-N``); ``head_repo`` the full name of
        the repository it lives in (a fork, default this repository); ``base`` defaults to
        the default branch. Returns the issue as ``GET .../issues/N`` would.
        """
        with self._lock:
            repo = self.world.repo(full_name)
            if number is None:
                number = repo["next_number"]
            if (repo["full_name"].lower(), number) in self.world.issues:
                raise ValueError(f"{full_name}#{number} exists")
            repo["next_number"] = max(repo["next_number"], number + 1)
            created = parse_moment(created_at, now())
            issue: dict[str, Any] = {
                "id": self.world.next_id(),
                "repo": repo["full_name"].lower(),
                "number": number,
                "title": title,
                "body": body,
                "state": state,
                "state_reason": "completed" if state == "closed" else None,
                "labels": list(labels),
                "user": user,
                "user_type": user_type,
                "assignees": list(assignees),
                "created_at": created,
                "updated_at": parse_moment(updated_at, created),
                "closed_at": created if state == "closed" else None,
                "comments": 0,
                "pull": None,
            }
            if pull:
                ref = head or f"branch-{number}"
                issue["pull"] = {
                    "id": self.world.next_id(),
                    "head_ref": ref,
                    "head_repo": head_repo or repo["full_name"],
                    "head_sha": head_sha or fake_sha(repo["full_name"], ref, number),
                    "base_ref": base or repo["default_branch"],
                    "draft": draft,
                    "merged_at": None,
                }
            self.world.issues[(issue["repo"], number)] = issue
            return self.render.issue(issue)

    def add_comment(
        self, full_name: str, number: int, body: str, *, user: str = "octocat"
    ) -> dict[str, Any]:
        """A comment by someone other than the app (e.g. a slash command)."""
        with self._lock:
            issue = self.world.issue(self.world.repo(full_name), number)
            return self.render.comment(self.world.new_comment(issue, body, user, "User"))

    def add_review_comment(
        self,
        full_name: str,
        number: int,
        body: str,
        *,
        user: str = "octocat",
        in_reply_to: int | None = None,
        path: str = "README.md",
        review_id: int | None = None,
    ) -> dict[str, Any]:
        """A comment in a pull request's diff (a *review comment*): GitHub keeps these apart
        from issue comments, with their own ids and endpoints (``/pulls/comments/{id}``).
        ``in_reply_to``: the thread's first comment, for a reply in its thread; ``review_id``:
        the review it was made in (else a review of its own, as GitHub makes). Returned as
        GitHub's API shows it (what a ``pull_request_review_comment`` event carries)."""
        with self._lock:
            pull = self.world.pull(self.world.repo(full_name), number)
            comment = self.world.new_review_comment(pull, body, user, "User", in_reply_to, path)
            comment["review_id"] = review_id or comment["review_id"]
            return self.render.review_comment(comment)

    def review_comments_on(self, full_name: str, number: int) -> list[dict[str, Any]]:
        """A pull request's review comments, oldest first, as GitHub's API shows them."""
        with self._lock:
            pull = self.world.pull(self.world.repo(full_name), number)
            return [self.render.review_comment(c) for c in self.world.review_comments_of(pull)]

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        """A collaborator's role: admin, maintain, write, triage, read or none.

        Users never given a role get 404 from the permission endpoint (as GitHub answers for
        logins that are not users); the owner of a user-owned repository is admin.
        """
        if permission not in ROLES:
            raise ValueError(f"unknown role {permission!r}")
        with self._lock:
            repo = self.world.repo(full_name)
            self.world.permissions[(repo["full_name"].lower(), login.lower())] = permission

    def add_file(self, full_name: str, path: str, content: str, ref: str | None = None) -> None:
        """A file for the contents API, on ``ref`` (default: the default branch)."""
        with self._lock:
            repo = self.world.repo(full_name)
            branch = ref or repo["default_branch"]
            files = self.world.files.setdefault((repo["full_name"].lower(), branch), {})
            files[path.strip("/")] = content

    def set_pr_files(
        self, full_name: str, number: int, paths: Iterable[str | tuple[str, str]]
    ) -> None:
        """The files of a pull request: paths (status "modified") or (path, status)."""
        with self._lock:
            issue = self.world.issue(self.world.repo(full_name), number)
            files = []
            for entry in paths:
                path, status = (entry, "modified") if isinstance(entry, str) else entry
                files.append({"filename": path, "status": status})
            self.world.pr_files[(issue["repo"], issue["number"])] = files

    def move_head(self, full_name: str, number: int, head_sha: str) -> None:
        """A new push to pull request ``number``: its head is now ``head_sha``."""
        with self._lock:
            self.world.pull(self.world.repo(full_name), number)["pull"]["head_sha"] = head_sha

    def close_issue(self, full_name: str, number: int, reason: str = "completed") -> None:
        """Someone closed issue ``number`` (``reason``: GitHub's ``state_reason``)."""
        with self._lock:
            issue = self.world.issue(self.world.repo(full_name), number)
            issue.update(state="closed", state_reason=reason)

    def refuse_checks(self, refused: bool = True) -> None:
        """Check run calls answer 403, as for an installation without ``checks: write``."""
        with self._lock:
            self.world.checks_refused = refused

    def set_incomplete_results(self, incomplete: bool = True) -> None:
        """Make search answers say ``incomplete_results: true`` (GitHub's search timed out)."""
        self.world.incomplete_results = incomplete

    def set_rate_limit(self, installation_id: int | None, remaining: int) -> None:
        """Set what is left of an installation's hourly budget (None: the app JWT's)."""
        kind: AuthKind = "app-jwt" if installation_id is None else "installation-token"
        with self._lock:
            self.limits.bucket(kind, installation_id).remaining = remaining

    def add_manifest_code(
        self,
        code: str,
        manifest: dict[str, Any] | None = None,
        *,
        owner: str = "octocat",
        owner_type: str = "User",
        issued_at: float | None = None,
    ) -> None:
        """A code GitHub's manifest flow would hand to ``redirect_url`` after someone
        registered an app from ``manifest`` (what the form posted). ``POST
        /app-manifests/{code}/conversions`` converts it once, within an hour of
        ``issued_at`` (a ``time.time()``, default now); unknown, used or expired: 404."""
        with self._lock:
            self.world.manifest_codes[code] = ManifestCode(
                dict(manifest or {}),
                owner,
                owner_type,
                time.time() if issued_at is None else issued_at,
            )

    # == tokens =========================================================================

    def expire_tokens(self) -> None:
        """Expire every installation token issued so far (their next use gets 401)."""
        with self._lock:
            self.credentials.expire_tokens()

    def issue_token(self, installation_id: int) -> str:
        """An installation token without the JWT dance, for tests of other endpoints."""
        with self._lock:
            return str(self.credentials.issue_token(installation_id)["token"])

    # == inspection =====================================================================

    def comments_on(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            issue = self.world.issue(self.world.repo(full_name), number)
            return [self.render.comment(c) for c in self.world.comments_of(issue)]

    @property
    def comments(self) -> list[dict[str, Any]]:
        """Every comment, in creation order, as GitHub renders it."""
        with self._lock:
            return [self.render.comment(c) for c in self.world.comments.values()]

    def reactions_on(self, comment_id: int) -> list[dict[str, Any]]:
        with self._lock:
            reactions = self.world.reactions.get(("comment", comment_id), [])
            return [self.render.reaction(r) for r in reactions]

    def reactions_on_review_comment(self, comment_id: int) -> list[dict[str, Any]]:
        with self._lock:
            reactions = self.world.reactions.get(("review_comment", comment_id), [])
            return [self.render.reaction(r) for r in reactions]

    def reactions_on_issue(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            key = ("issue", self.world.repo(full_name)["full_name"].lower(), number)
            return [self.render.reaction(r) for r in self.world.reactions.get(key, [])]

    def check_runs(self, full_name: str, head_sha: str | None = None) -> list[dict[str, Any]]:
        """The repository's check runs (on ``head_sha`` only, if given), oldest first: their
        ``id``, ``name``, ``head_sha``, ``status``, ``conclusion``, ``external_id``,
        ``details_url``, ``output`` (title, summary, text), ``check_suite`` (its id) and
        ``updates`` (how many times they were changed)."""
        key = full_name.lower()
        with self._lock:
            return [
                dict(record, output=dict(record["output"]))
                for record in sorted(self.world.check_runs.values(), key=lambda r: r["id"])
                if record["repo"] == key and head_sha in (None, record["head_sha"])
            ]

    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        with self._lock:
            return self.render.issue(self.world.issue(self.world.repo(full_name), number))

    def pull(self, full_name: str, number: int) -> dict[str, Any]:
        with self._lock:
            return self.render.pull(self.world.pull(self.world.repo(full_name), number))

    def issues(self, full_name: str) -> list[dict[str, Any]]:
        """Every issue and pull request of a repository, by number."""
        with self._lock:
            found = sorted(self.world.issues_of(self.world.repo(full_name)), key=_number)
            return [self.render.issue(i) for i in found]

    def find_requests(
        self, method: str | None = None, path_pattern: str | None = None
    ) -> list[Recorded]:
        """Recorded requests with this method and a path matching ``path_pattern``."""
        return [
            r
            for r in list(self.requests)
            if (method is None or r.method == method.upper())
            and (path_pattern is None or re.search(path_pattern, r.path))
        ]


def _number(issue: dict[str, Any]) -> int:
    return int(issue["number"])
