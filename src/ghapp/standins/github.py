"""A GitHub stand-in: a real HTTP server on loopback that answers like GitHub's REST API v3.

Tests and the offline demo point ``GHAPP_GITHUB_API_URL`` at it, exactly as a GitHub
Enterprise user points ghapp at ``https://HOST/api/v3``, so the code under test runs its
real HTTP stack (gidgethub, httpx, the retry transport) without reaching github.com.

What it mimics, and why:

* **Authentication as GitHub checks it.** App JWTs (RS256, ``iss`` = the app id, at most
  ten minutes between ``iat`` and ``exp``, ``iat`` at most 60 s in the future) are accepted
  only on the app endpoints; installation tokens (``ghs_…``, one hour) only on repository
  endpoints of *their* installation. Wrong credentials get GitHub's messages, so code that
  recognises "Bad credentials" (refresh the token) can be tested.
* **Rate limits.** Every response carries the ``x-ratelimit-*`` headers, counted per
  installation (5000 an hour), per app JWT (5000) and for anonymous callers (60); an
  exhausted bucket answers GitHub's primary-limit ``403``.
* **Faults on demand.** :meth:`GitHubStandIn.inject` replaces the next matching responses
  (502s, ``429 Retry-After``, secondary-limit ``403``…) to exercise retries.
* **Recording.** Every request is kept in :attr:`GitHubStandIn.requests` (a
  :class:`Recorded`), with how it authenticated and what it was answered.

The state is in memory and guarded by one lock, so helpers may be called from test code
while :meth:`GitHubStandIn.serve_in_thread` serves from another thread.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ghapp.standins.serving import in_loop, in_thread, loopback_config

__all__ = ["GitHubStandIn", "Recorded"]

AuthKind = Literal["app-jwt", "installation-token", "none"]

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
MAX_COMMENT_LENGTH = 65536  # GitHub's limit on issue, PR and comment bodies
JWT_MAX_LIFETIME = 600  # seconds between iat and exp that GitHub accepts
CLOCK_SKEW = 60  # seconds an iat may lie in the future
TOKEN_LIFETIME = 3600
MANIFEST_CODE_LIFETIME = 3600  # a manifest flow's code converts once, within the hour
SEARCH_RESULT_CAP = 1000  # GitHub serves only the first 1000 search results
REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
ROLES = {  # role_name -> the coarse "permission" GitHub reports for it
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
TOKEN_PERMISSIONS = {
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "write",
}
APP_EVENTS = ["issues", "issue_comment", "pull_request", "pull_request_review_comment", "push"]

_JWT_UNDECODABLE = "A JSON web token could not be decoded"
_JWT_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time "
    "at which the assertion expires"
)
_JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
_JWT_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
    "was issued"
)
_NOT_ACCESSIBLE = "Resource not accessible by integration"


@dataclass(frozen=True)
class Recorded:
    """One request the stand-in received, and what it answered."""

    method: str
    path: str  # without the stand-in's path prefix, e.g. "/repos/o/r/issues/1/comments"
    query: dict[str, str]  # the last value of each parameter
    json: Any  # the parsed body, None if empty or not JSON
    headers: dict[str, str]  # lower-case names
    auth: AuthKind  # the credentials that were *accepted*; "none" if absent or invalid
    installation_id: int | None  # set for installation-token requests
    status: int
    injected: bool = False  # answered by a fault from inject()


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


def _not_found() -> GitHubError:
    return GitHubError(404, "Not Found")


def _validation(resource: str, field_: str, code: str, message: str | None = None) -> GitHubError:
    error: dict[str, Any] = {"resource": resource, "code": code, "field": field_}
    if message is not None:
        error["message"] = message
    return GitHubError(422, "Validation Failed", errors=[error])


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Auth:
    kind: AuthKind = "none"
    installation_id: int | None = None
    error: str | None = None  # why presented credentials were refused
    presented: bool = False


@dataclass
class _Call:
    """What a handler needs from a request."""

    method: str
    path: str  # as requested, prefix included (for Link headers)
    params: dict[str, str]
    query: dict[str, str]
    query_items: list[tuple[str, str]]
    json: Any
    auth: _Auth
    api: str
    repo: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else {}


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: Any
    apply: bool = False  # carry the request out, then answer with the fault anyway


@dataclass
class _Token:
    installation_id: int
    expires_at: float


@dataclass
class _ManifestCode:
    manifest: dict[str, Any]
    owner: str
    owner_type: str
    issued_at: float


@dataclass
class _Bucket:
    limit: int
    remaining: int
    reset: int


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[_Call], _Reply]
    auth: str  # "jwt" (the app JWT) or "token" (an installation token)
    repo_scope: str  # "installation": the token's own repos; "any": any repo; "none"


def _compile(template: str) -> re.Pattern[str]:
    """``/repos/{owner}/{repo}/issues/{number:int}`` -> a full-match regex."""

    def group(match: re.Match[str]) -> str:
        name, _, kind = match.group(1).partition(":")
        body = {"int": r"\d+", "path": r".*"}.get(kind, r"[^/]+")
        return f"(?P<{name}>{body})"

    return re.compile(re.sub(r"\{([^}]+)\}", group, template))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_moment(value: datetime | str | None, default: datetime) -> datetime:
    if value is None:
        return default
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def _blob_sha(data: bytes) -> str:
    """The git blob id GitHub reports as a file's ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _request_id() -> str:
    parts = (secrets.token_hex(2), secrets.token_hex(2), secrets.token_hex(3))
    return ":".join(p.upper() for p in (*parts, secrets.token_hex(3), secrets.token_hex(4)))


class GitHubStandIn:
    """In-memory GitHub with a Starlette app (:attr:`app`) that serves its REST API.

    Set it up with the ``add_*``/``set_*`` helpers, serve it with :meth:`serve` (async) or
    :meth:`serve_in_thread` (sync), and inspect :attr:`requests`, :meth:`comments_on`,
    :meth:`reactions_on`... afterwards.
    """

    def __init__(
        self,
        app_id: int = 1,
        private_key_pem: str | None = None,
        *,
        app_slug: str = "ghapp-standin",
        web_url: str = "https://github.com",
        path_prefix: str = "",
    ) -> None:
        """``path_prefix`` (e.g. ``"/api/v3"``) serves the API below a path, as GitHub
        Enterprise Server does, to check that clients keep the path of their base URL."""
        if private_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        private_key = serialization.load_pem_private_key(private_key_pem.encode(), None)
        self.app_id = app_id
        self.private_key_pem = private_key_pem
        self.public_key = private_key.public_key()
        self.app_slug = app_slug
        self.client_id = f"Iv1.standin{app_id:08d}"
        self.web_url = web_url.rstrip("/")
        self.path_prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        self.base_url: str | None = None  # set while serving
        self.requests: list[Recorded] = []

        self._lock = threading.RLock()
        self._api = "http://127.0.0.1"
        self._ids = itertools.count(1_000_001)
        self._user_ids: dict[str, int] = {}
        self._installations: dict[int, dict[str, Any]] = {}
        self._repos: dict[str, dict[str, Any]] = {}  # lower-case full name -> repo
        self._issues: dict[tuple[str, int], dict[str, Any]] = {}
        self._comments: dict[int, dict[str, Any]] = {}
        self._reactions: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self._permissions: dict[tuple[str, str], str] = {}
        self._files: dict[tuple[str, str], dict[str, str]] = {}  # (repo, ref) -> path -> text
        self._pr_files: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.created_apps: list[dict[str, Any]] = []  # manifest conversions' answers
        self._manifest_codes: dict[str, _ManifestCode] = {}
        self._tokens: dict[str, _Token] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._faults: list[_Fault] = []
        self._outage: int | None = None
        self._incomplete_results = False
        self._routes = self._build_routes()
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        self.app = Starlette(
            routes=[
                Route("/", self._endpoint, methods=methods),
                Route("/{path:path}", self._endpoint, methods=methods),
            ]
        )

    # == serving ========================================================================

    def _config(self) -> uvicorn.Config:
        return loopback_config(self.app)

    def _started(self, server: uvicorn.Server) -> str:
        port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}{self.path_prefix}"
        return self.base_url

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve on a free loopback port in the running loop; yield the API base URL."""
        async with in_loop(uvicorn.Server(self._config()), "GitHub stand-in") as server:
            try:
                yield self._started(server)
            finally:
                self.base_url = None

    @contextmanager
    def serve_in_thread(self, startup_timeout: float = 10.0) -> Iterator[str]:
        """Serve from a background thread with its own event loop, for synchronous code
        (the demo, subprocess-based tests); yield the API base URL, stop cleanly on exit."""
        server = uvicorn.Server(self._config())
        with in_thread(server, "GitHub stand-in", startup_timeout):
            try:
                yield self._started(server)
            finally:
                self.base_url = None

    # == data set-up ====================================================================

    def add_installation(
        self, installation_id: int, account_login: str, account_type: str = "User"
    ) -> dict[str, Any]:
        with self._lock:
            record = {
                "id": installation_id,
                "account_login": account_login,
                "account_type": account_type,
                "created_at": _now(),
            }
            self._installations[installation_id] = record
            return self._installation_obj(record)

    def add_repo(
        self,
        full_name: str,
        installation_id: int,
        *,
        repo_id: int | None = None,
        default_branch: str = "main",
        private: bool = False,
    ) -> dict[str, Any]:
        if installation_id not in self._installations:
            raise KeyError(f"add_installation({installation_id}, ...) first")
        owner, _, name = full_name.partition("/")
        with self._lock:
            record = {
                "id": repo_id if repo_id is not None else next(self._ids),
                "full_name": full_name,
                "owner": owner,
                "name": name,
                "installation_id": installation_id,
                "default_branch": default_branch,
                "private": private,
                "next_number": 1,
            }
            self._repos[full_name.lower()] = record
            return self._repo_obj(record)

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
            repo = self._repo(full_name)
            if number is None:
                number = repo["next_number"]
            if (repo["full_name"].lower(), number) in self._issues:
                raise ValueError(f"{full_name}#{number} exists")
            repo["next_number"] = max(repo["next_number"], number + 1)
            created = _parse_moment(created_at, _now())
            issue: dict[str, Any] = {
                "id": next(self._ids),
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
                "updated_at": _parse_moment(updated_at, created),
                "closed_at": created if state == "closed" else None,
                "comments": 0,
                "pull": None,
            }
            if pull:
                ref = head or f"branch-{number}"
                issue["pull"] = {
                    "id": next(self._ids),
                    "head_ref": ref,
                    "head_repo": head_repo or repo["full_name"],
                    "head_sha": head_sha or _fake_sha(repo["full_name"], ref, number),
                    "base_ref": base or repo["default_branch"],
                    "draft": draft,
                    "merged_at": None,
                }
            self._issues[(issue["repo"], number)] = issue
            return self._issue_obj(issue)

    def add_comment(
        self, full_name: str, number: int, body: str, *, user: str = "octocat"
    ) -> dict[str, Any]:
        """A comment by someone other than the app (e.g. a slash command)."""
        with self._lock:
            issue = self._issue(self._repo(full_name), number)
            return self._comment_obj(self._new_comment(issue, body, user, "User"))

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        """A collaborator's role: admin, maintain, write, triage, read or none.

        Users never given a role get 404 from the permission endpoint (as GitHub answers for
        logins that are not users); the owner of a user-owned repository is admin.
        """
        if permission not in ROLES:
            raise ValueError(f"unknown role {permission!r}")
        with self._lock:
            repo = self._repo(full_name)
            self._permissions[(repo["full_name"].lower(), login.lower())] = permission

    def add_file(self, full_name: str, path: str, content: str, ref: str | None = None) -> None:
        """A file for the contents API, on ``ref`` (default: the default branch)."""
        with self._lock:
            repo = self._repo(full_name)
            branch = ref or repo["default_branch"]
            self._files.setdefault((repo["full_name"].lower(), branch), {})[path.strip("/")] = (
                content
            )

    def set_pr_files(
        self, full_name: str, number: int, paths: Iterable[str | tuple[str, str]]
    ) -> None:
        """The files of a pull request: paths (status "modified") or (path, status)."""
        with self._lock:
            issue = self._issue(self._repo(full_name), number)
            files = []
            for entry in paths:
                path, status = (entry, "modified") if isinstance(entry, str) else entry
                files.append({"filename": path, "status": status})
            self._pr_files[(issue["repo"], issue["number"])] = files

    def set_incomplete_results(self, incomplete: bool = True) -> None:
        """Make search answers say ``incomplete_results: true`` (GitHub's search timed out)."""
        self._incomplete_results = incomplete

    def set_rate_limit(self, installation_id: int | None, remaining: int) -> None:
        """Set what is left of an installation's hourly budget (None: the app JWT's)."""
        kind: AuthKind = "app-jwt" if installation_id is None else "installation-token"
        with self._lock:
            self._bucket(self._bucket_key(kind, installation_id)).remaining = remaining

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
            self._manifest_codes[code] = _ManifestCode(
                dict(manifest or {}),
                owner,
                owner_type,
                time.time() if issued_at is None else issued_at,
            )

    # == faults =========================================================================

    def inject(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        apply: bool = False,
    ) -> None:
        """Answer the next ``times`` requests whose method is ``method`` ("*" for any) and
        whose path (prefix excluded) matches ``path_pattern`` (``re.search``; anchor it
        with ``^…$`` if needed) with ``status``, ``headers`` and ``body`` (default
        ``{"message": …}``) instead of the real answer. Faults apply in order given.

        With ``apply`` the request is carried out first and only the answer is replaced:
        a gateway that passes a ``POST`` on to GitHub and then answers ``502`` anyway."""
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(),
                    re.compile(path_pattern),
                    status,
                    times,
                    {k.lower(): v for k, v in (headers or {}).items()},
                    body,
                    apply,
                )
            )

    def start_outage(self, status: int = 503) -> None:
        """Answer every request with ``status`` until :meth:`end_outage` (GitHub is down)."""
        with self._lock:
            self._outage = status

    def end_outage(self) -> None:
        with self._lock:
            self._outage = None

    def inject_secondary_rate_limit(
        self, method: str, path_pattern: str, *, retry_after: int = 1, times: int = 1
    ) -> None:
        """GitHub's secondary ("abuse") limit: 403, ``Retry-After``, quota left."""
        self.inject(
            method,
            path_pattern,
            403,
            times=times,
            headers={"retry-after": str(retry_after)},
            body={
                "message": "You have exceeded a secondary rate limit. Please wait a few "
                "minutes before you try again.",
                "documentation_url": RATE_DOCS,
            },
        )

    def inject_primary_rate_limit(
        self, method: str, path_pattern: str, *, reset_in: int = 60, times: int = 1
    ) -> None:
        """GitHub's primary limit: 403 with ``x-ratelimit-remaining: 0`` and the reset time."""
        self.inject(
            method,
            path_pattern,
            403,
            times=times,
            headers={
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(time.time()) + reset_in),
            },
            body={
                "message": "API rate limit exceeded for installation.",
                "documentation_url": RATE_DOCS,
            },
        )

    # == tokens =========================================================================

    def expire_tokens(self) -> None:
        """Expire every installation token issued so far (their next use gets 401)."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, time.time() - 1)

    def issue_token(self, installation_id: int) -> str:
        """An installation token without the JWT dance, for tests of other endpoints."""
        with self._lock:
            return self._issue_token(installation_id)["token"]

    # == inspection =====================================================================

    def comments_on(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            issue = self._issue(self._repo(full_name), number)
            return [self._comment_obj(c) for c in self._comments_of(issue)]

    @property
    def comments(self) -> list[dict[str, Any]]:
        """Every comment, in creation order, as GitHub renders it."""
        with self._lock:
            return [self._comment_obj(c) for c in self._comments.values()]

    def reactions_on(self, comment_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [self._reaction_obj(r) for r in self._reactions.get(("comment", comment_id), [])]

    def reactions_on_issue(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            key = ("issue", self._repo(full_name)["full_name"].lower(), number)
            return [self._reaction_obj(r) for r in self._reactions.get(key, [])]

    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        with self._lock:
            return self._issue_obj(self._issue(self._repo(full_name), number))

    def pull(self, full_name: str, number: int) -> dict[str, Any]:
        with self._lock:
            return self._pull_obj(self._pull(self._repo(full_name), number))

    def issues(self, full_name: str) -> list[dict[str, Any]]:
        """Every issue and pull request of a repository, by number."""
        with self._lock:
            key = self._repo(full_name)["full_name"].lower()
            found = sorted(
                (i for (r, _), i in self._issues.items() if r == key), key=lambda i: i["number"]
            )
            return [self._issue_obj(i) for i in found]

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

    # == request handling ===============================================================

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            return self._handle(request, raw)

    def _handle(self, request: Request, raw: bytes) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        full_path = request.url.path
        path = full_path
        outside = False  # a request that misses the API's path prefix: 404
        if self.path_prefix:
            outside = not full_path.startswith(self.path_prefix + "/")
            path = full_path if outside else full_path.removeprefix(self.path_prefix)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query_items = list(request.query_params.multi_items())
        parsed: Any = None
        bad_json = False
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                bad_json = True
        origin = self.base_url or (str(request.base_url).rstrip("/") + self.path_prefix)
        self._api = origin
        auth = self._authenticate(headers.get("authorization"))
        bucket = self._bucket(self._bucket_key(auth.kind, auth.installation_id))
        injected = False
        reply: _Reply
        fault = None if outside else self._take_fault(method, path)
        if fault is None and self._outage is not None and not outside:
            fault = _Fault(method, re.compile(""), self._outage, 1, {}, None)
        if outside:
            reply = _Reply(404, _not_found().body)
        elif fault is not None:
            injected = True
            if fault.apply:
                with contextlib.suppress(GitHubError):
                    self._dispatch(
                        method, path, full_path, query_items, parsed, bad_json, auth, bucket, origin
                    )
            bucket.remaining = max(0, bucket.remaining - 1)
            body = fault.body if fault.body is not None else {"message": _reason(fault.status)}
            reply = _Reply(fault.status, body, dict(fault.headers))
        else:
            try:
                reply = self._dispatch(
                    method, path, full_path, query_items, parsed, bad_json, auth, bucket, origin
                )
            except GitHubError as exc:
                reply = _Reply(exc.status, exc.body, exc.headers)
        self.requests.append(
            Recorded(
                method=method,
                path=path,
                query=dict(query_items),
                json=parsed,
                headers=headers,
                auth=auth.kind,
                installation_id=auth.installation_id,
                status=reply.status,
                injected=injected,
            )
        )
        out = {
            "content-type": "application/json; charset=utf-8",
            "x-github-request-id": _request_id(),
            "x-github-media-type": "github.v3; format=json",
            "x-github-api-version-selected": "2022-11-28",
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(bucket.remaining),
            "x-ratelimit-reset": str(bucket.reset),
            "x-ratelimit-used": str(bucket.limit - bucket.remaining),
            "x-ratelimit-resource": "core",
        }
        out.update(reply.headers)
        content = b"" if reply.status == 204 else json.dumps(reply.body).encode()
        return Response(content, status_code=reply.status, headers=out)

    def _dispatch(
        self,
        method: str,
        path: str,
        full_path: str,
        query_items: list[tuple[str, str]],
        parsed: Any,
        bad_json: bool,
        auth: _Auth,
        bucket: _Bucket,
        api: str,
    ) -> _Reply:
        if bucket.remaining <= 0:
            who = (
                f"installation ID {auth.installation_id}"
                if auth.installation_id is not None
                else "this app"
                if auth.kind == "app-jwt"
                else "127.0.0.1"
            )
            raise GitHubError(
                403, f"API rate limit exceeded for {who}.", documentation_url=RATE_DOCS
            )
        bucket.remaining -= 1
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match and route.method == method:
                break
        else:
            raise _not_found()
        self._authorise(route, auth)
        if bad_json:
            raise GitHubError(400, "Problems parsing JSON")
        call = _Call(
            method, full_path, match.groupdict(), dict(query_items), query_items, parsed, auth, api
        )
        if route.repo_scope != "none":
            call.repo = self._repo_for(call.params["owner"], call.params["repo"])
            if call.repo is None:
                raise _not_found()
            if (
                route.repo_scope == "installation"
                and call.repo["installation_id"] != auth.installation_id
            ):
                raise GitHubError(403, _NOT_ACCESSIBLE)
        return route.handler(call)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in ("*", method) and fault.pattern.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # == authentication =================================================================

    def _authenticate(self, header: str | None) -> _Auth:
        """Which credentials a request carries, and whether GitHub would accept them.

        ``Bearer`` with a three-part value is a JWT; ``token X`` and other ``Bearer``
        values are looked up as installation tokens.
        """
        if not header:
            return _Auth()
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and value.count(".") == 2:
            error = self._verify_jwt(value)
            if error is not None:
                return _Auth(error=error, presented=True)
            return _Auth(kind="app-jwt", presented=True)
        if scheme in ("bearer", "token"):
            token = self._tokens.get(value)
            if token is None or token.expires_at <= time.time():
                return _Auth(error="Bad credentials", presented=True)
            return _Auth("installation-token", token.installation_id, presented=True)
        return _Auth(error="Bad credentials", presented=True)

    def _verify_jwt(self, raw: str) -> str | None:
        """None if GitHub would accept this app JWT, else GitHub's complaint."""
        try:
            claims = jwt.decode(
                raw,
                self.public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                    "require": ["iat", "exp", "iss"],
                },
            )
        except jwt.PyJWTError:
            return _JWT_UNDECODABLE
        iat, exp, iss = claims["iat"], claims["exp"], claims["iss"]
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            return _JWT_IAT
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return _JWT_EXPIRED
        now = time.time()
        if str(iss) not in (str(self.app_id), self.client_id):
            return _JWT_UNDECODABLE
        if iat > now + CLOCK_SKEW:
            return _JWT_IAT
        if exp <= now:
            return _JWT_EXPIRED
        if exp - iat > JWT_MAX_LIFETIME:
            return _JWT_TOO_LONG
        return None

    def _authorise(self, route: _Route, auth: _Auth) -> None:
        """App endpoints want the app JWT; everything else an installation token."""
        if route.auth == "none":  # e.g. a manifest conversion: the code is the credential
            return
        wanted = "app-jwt" if route.auth == "jwt" else "installation-token"
        if auth.kind == wanted:
            return
        if auth.error is not None:
            raise GitHubError(401, auth.error)
        if not auth.presented:
            raise GitHubError(401, "Requires authentication")
        if route.auth == "jwt":  # an installation token where a JWT belongs
            raise GitHubError(401, _JWT_UNDECODABLE)
        raise GitHubError(403, _NOT_ACCESSIBLE)  # the app JWT where a token belongs

    def _bucket_key(self, kind: AuthKind, installation_id: int | None) -> str:
        if kind == "installation-token":
            return f"installation:{installation_id}"
        return "app" if kind == "app-jwt" else "anonymous"

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        now = int(time.time())
        if bucket is None or bucket.reset <= now:  # a new hour, a full budget
            limit = 60 if key == "anonymous" else 5000
            bucket = _Bucket(limit, limit, now + 3600)
            self._buckets[key] = bucket
        return bucket

    def _issue_token(self, installation_id: int) -> dict[str, Any]:
        token = "ghs_" + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(36)
        )
        expires = time.time() + TOKEN_LIFETIME
        self._tokens[token] = _Token(installation_id, expires)
        return {
            "token": token,
            "expires_at": _iso(datetime.fromtimestamp(int(expires), UTC)),
            "permissions": dict(TOKEN_PERMISSIONS),
            "repository_selection": "all",
        }

    # == routes =========================================================================

    def _build_routes(self) -> list[_Route]:
        r = "/repos/{owner}/{repo}"
        table: list[tuple[str, str, Callable[[_Call], _Reply], str, str]] = [
            # the app itself (JWT)
            ("GET", "/app", self._get_app, "jwt", "none"),
            ("GET", "/app/installations", self._list_installations, "jwt", "none"),
            ("GET", "/app/installations/{id:int}", self._get_installation, "jwt", "none"),
            (
                "POST",
                "/app/installations/{id:int}/access_tokens",
                self._create_token,
                "jwt",
                "none",
            ),
            ("GET", f"{r}/installation", self._repo_installation, "jwt", "any"),
            # the manifest flow (no credentials)
            ("POST", "/app-manifests/{code}/conversions", self._convert_manifest, "none", "none"),
            # installation (token)
            ("GET", "/installation/repositories", self._installation_repos, "token", "none"),
            ("GET", "/search/issues", self._search_issues, "token", "none"),
            ("GET", r, self._get_repo, "token", "installation"),
            ("GET", f"{r}/issues", self._list_issues, "token", "installation"),
            ("POST", f"{r}/issues", self._create_issue, "token", "installation"),
            ("GET", f"{r}/issues/comments/{{id:int}}", self._get_comment, "token", "installation"),
            (
                "PATCH",
                f"{r}/issues/comments/{{id:int}}",
                self._update_comment,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/issues/comments/{{id:int}}/reactions",
                self._react_comment,
                "token",
                "installation",
            ),
            ("GET", f"{r}/issues/{{number:int}}", self._get_issue, "token", "installation"),
            ("PATCH", f"{r}/issues/{{number:int}}", self._update_issue, "token", "installation"),
            (
                "GET",
                f"{r}/issues/{{number:int}}/comments",
                self._list_comments,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/issues/{{number:int}}/comments",
                self._create_comment,
                "token",
                "installation",
            ),
            (
                "POST",
                f"{r}/issues/{{number:int}}/reactions",
                self._react_issue,
                "token",
                "installation",
            ),
            ("GET", f"{r}/pulls", self._list_pulls, "token", "installation"),
            ("POST", f"{r}/pulls", self._create_pull, "token", "installation"),
            ("GET", f"{r}/pulls/{{number:int}}", self._get_pull, "token", "installation"),
            ("PATCH", f"{r}/pulls/{{number:int}}", self._update_pull, "token", "installation"),
            ("GET", f"{r}/pulls/{{number:int}}/files", self._pull_files, "token", "installation"),
            (
                "GET",
                f"{r}/collaborators/{{username}}/permission",
                self._permission,
                "token",
                "installation",
            ),
            ("GET", f"{r}/contents", self._contents, "token", "installation"),
            ("GET", f"{r}/contents/{{path:path}}", self._contents, "token", "installation"),
            ("POST", f"{r}/statuses/{{sha}}", self._create_status, "token", "installation"),
        ]
        return [
            _Route(method, _compile(template), handler, auth, scope)
            for method, template, handler, auth, scope in table
        ]

    # -- app -----------------------------------------------------------------------------

    def _get_app(self, call: _Call) -> _Reply:
        return _Reply(
            200,
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "client_id": self.client_id,
                "node_id": f"A_{self.app_id}",
                "name": self.app_slug,
                "owner": self._user("ghapp-owner", "Organization"),
                "description": "",
                "external_url": self.web_url,
                "html_url": f"{self.web_url}/apps/{self.app_slug}",
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "permissions": dict(TOKEN_PERMISSIONS),
                "events": APP_EVENTS,
                "installations_count": len(self._installations),
            },
        )

    def _convert_manifest(self, call: _Call) -> _Reply:
        """``POST /app-manifests/{code}/conversions``: the new app with its secrets and a
        fresh private key (PKCS#1 PEM, as GitHub sends it); 404 if the code is unknown,
        used or older than an hour."""
        entry = self._manifest_codes.pop(call.params["code"], None)
        if entry is None or time.time() - entry.issued_at > MANIFEST_CODE_LIFETIME:
            raise _not_found()
        manifest = entry.manifest
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        app_id = next(self._ids)
        name = str(manifest.get("name") or f"app-{app_id}")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"app-{app_id}"
        now = _iso(_now())
        created = {
            "id": app_id,
            "slug": slug,
            "node_id": f"A_{app_id}",
            "owner": self._user(entry.owner, entry.owner_type),
            "name": name,
            "description": manifest.get("description") or "",
            "external_url": manifest.get("url") or "",
            "html_url": f"{self.web_url}/apps/{slug}",
            "created_at": now,
            "updated_at": now,
            "permissions": {"metadata": "read", **(manifest.get("default_permissions") or {})},
            "events": list(manifest.get("default_events") or []),
            "installations_count": 0,
            "client_id": f"Iv1.{secrets.token_hex(8)}",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": pem,
        }
        self.created_apps.append(created)
        return _Reply(201, created)

    def _list_installations(self, call: _Call) -> _Reply:
        objs = [self._installation_obj(i) for i in self._installations.values()]
        page, headers = self._paginate(call, objs)
        return _Reply(200, page, headers)

    def _get_installation(self, call: _Call) -> _Reply:
        record = self._installations.get(int(call.params["id"]))
        if record is None:
            raise _not_found()
        return _Reply(200, self._installation_obj(record))

    def _create_token(self, call: _Call) -> _Reply:
        """``POST /app/installations/{id}/access_tokens``: an hour-long ``ghs_`` token."""
        installation_id = int(call.params["id"])
        if installation_id not in self._installations:
            raise _not_found()
        return _Reply(201, self._issue_token(installation_id))

    def _repo_installation(self, call: _Call) -> _Reply:
        assert call.repo is not None
        record = self._installations[call.repo["installation_id"]]
        return _Reply(200, self._installation_obj(record))

    def _installation_repos(self, call: _Call) -> _Reply:
        repos = [
            self._repo_obj(r)
            for r in self._repos.values()
            if r["installation_id"] == call.auth.installation_id
        ]
        page, headers = self._paginate(call, repos)
        return _Reply(
            200,
            {"total_count": len(repos), "repository_selection": "all", "repositories": page},
            headers,
        )

    # -- repositories --------------------------------------------------------------------

    def _get_repo(self, call: _Call) -> _Reply:
        assert call.repo is not None
        return _Reply(200, self._repo_obj(call.repo))

    def _permission(self, call: _Call) -> _Reply:
        """A collaborator's permission; 404 for logins never given a role."""
        assert call.repo is not None
        login = call.params["username"]
        role = self._role(call.repo, login)
        if role is None:
            raise _not_found()
        user = self._user(login)
        return _Reply(200, {"permission": ROLES[role], "role_name": role, "user": user})

    def _contents(self, call: _Call) -> _Reply:
        """A file (base64, wrapped at 60 columns like GitHub) or a directory listing."""
        assert call.repo is not None
        key = call.repo["full_name"].lower()
        ref = call.query.get("ref") or call.repo["default_branch"]
        known_refs = {r for (k, r) in self._files if k == key} | {call.repo["default_branch"]}
        if ref not in known_refs:
            raise GitHubError(404, f"No commit found for the ref {ref}")
        files = self._files.get((key, ref), {})
        path = call.params.get("path", "").strip("/")
        if path in files:
            return _Reply(200, self._file_obj(call.repo, ref, path, files[path]))
        prefix = f"{path}/" if path else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, text in files.items():
            if not name.startswith(prefix):
                continue
            child, _, rest = name[len(prefix) :].partition("/")
            child_path = prefix + child
            if rest:
                entries.setdefault(child, self._entry_obj(call.repo, ref, child_path, None))
            else:
                entries[child] = self._entry_obj(call.repo, ref, child_path, text)
        if not entries:
            raise _not_found()
        return _Reply(200, [entries[name] for name in sorted(entries)])

    def _create_status(self, call: _Call) -> _Reply:
        assert call.repo is not None
        data = call.body()
        state = data.get("state")
        if state not in ("error", "failure", "pending", "success"):
            raise _validation("Status", "state", "invalid")
        now = _iso(_now())
        status = {
            "id": next(self._ids),
            "state": state,
            "description": data.get("description"),
            "target_url": data.get("target_url"),
            "context": data.get("context", "default"),
            "created_at": now,
            "updated_at": now,
            "creator": self._bot(),
            "url": f"{call.api}/repos/{call.repo['full_name']}/statuses/{call.params['sha']}",
            "repository": call.repo["full_name"],
            "sha": call.params["sha"],
        }
        self.statuses.append(status)
        return _Reply(201, status)

    # -- issues --------------------------------------------------------------------------

    def _get_issue(self, call: _Call) -> _Reply:
        assert call.repo is not None
        return _Reply(200, self._issue_obj(self._issue(call.repo, int(call.params["number"]))))

    def _list_issues(self, call: _Call) -> _Reply:
        """``?state=open|closed|all&sort=created&direction=asc|desc`` (pull requests too,
        as GitHub lists them here)."""
        assert call.repo is not None
        state = call.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation("Issue", "state", "invalid")
        found = [i for i in self._issues_of(call.repo) if state == "all" or i["state"] == state]
        found.sort(key=lambda i: i["number"], reverse=call.query.get("direction", "desc") == "desc")
        page, headers = self._paginate(call, [self._issue_obj(i) for i in found])
        return _Reply(200, page, headers)

    def _create_issue(self, call: _Call) -> _Reply:
        assert call.repo is not None
        data = call.body()
        if not data.get("title"):
            raise _validation("Issue", "title", "missing_field")
        _check_body_length("Issue", data.get("body"))
        created = self.add_issue(
            call.repo["full_name"],
            title=str(data["title"]),
            body=data.get("body") or "",
            labels=_label_names(data.get("labels") or []),
            assignees=data.get("assignees") or [],
            user=self._bot_login(),
            user_type="Bot",
        )
        return _Reply(201, created)

    def _update_issue(self, call: _Call) -> _Reply:
        assert call.repo is not None
        issue = self._issue(call.repo, int(call.params["number"]))
        self._apply_issue_changes(issue, call.body(), "Issue")
        return _Reply(200, self._issue_obj(issue))

    def _apply_issue_changes(self, issue: dict[str, Any], data: dict[str, Any], kind: str) -> None:
        if "body" in data:
            _check_body_length(kind, data["body"])
        if "state" in data and data["state"] not in ("open", "closed"):
            raise _validation(kind, "state", "invalid")
        if "title" in data:
            if not data["title"]:
                raise _validation(kind, "title", "missing_field")
            issue["title"] = str(data["title"])
        if "body" in data:
            issue["body"] = data["body"] or ""
        if "labels" in data:
            issue["labels"] = _label_names(data["labels"] or [])
        if "assignees" in data:
            issue["assignees"] = list(data["assignees"] or [])
        state = data.get("state")
        if state is not None and state != issue["state"]:
            issue["state"] = state
            issue["closed_at"] = _now() if state == "closed" else None
            issue["state_reason"] = (
                data.get("state_reason") or "completed" if state == "closed" else "reopened"
            )
        issue["updated_at"] = _now()

    # -- comments ------------------------------------------------------------------------

    def _list_comments(self, call: _Call) -> _Reply:
        """Oldest first, paginated; ``since`` keeps those updated at or after it."""
        assert call.repo is not None
        issue = self._issue(call.repo, int(call.params["number"]))
        comments = self._comments_of(issue)
        since = call.query.get("since")
        if since:
            moment = _parse_moment(since, _now())
            comments = [c for c in comments if c["updated_at"] >= moment]
        page, headers = self._paginate(call, [self._comment_obj(c) for c in comments])
        return _Reply(200, page, headers)

    def _create_comment(self, call: _Call) -> _Reply:
        assert call.repo is not None
        issue = self._issue(call.repo, int(call.params["number"]))
        body = call.body().get("body")
        if not isinstance(body, str) or not body:
            raise _validation("IssueComment", "body", "missing_field")
        _check_body_length("IssueComment", body)
        comment = self._new_comment(issue, body, self._bot_login(), "Bot")
        return _Reply(201, self._comment_obj(comment))

    def _get_comment(self, call: _Call) -> _Reply:
        return _Reply(200, self._comment_obj(self._comment(call)))

    def _update_comment(self, call: _Call) -> _Reply:
        comment = self._comment(call)
        body = call.body().get("body")
        if not isinstance(body, str) or not body:
            raise _validation("IssueComment", "body", "missing_field")
        _check_body_length("IssueComment", body)
        comment["body"] = body
        comment["updated_at"] = _now()
        return _Reply(200, self._comment_obj(comment))

    def _new_comment(
        self, issue: dict[str, Any], body: str, user: str, user_type: str
    ) -> dict[str, Any]:
        now = _now()
        comment = {
            "id": next(self._ids),
            "repo": issue["repo"],
            "number": issue["number"],
            "body": body,
            "user": user,
            "user_type": user_type,
            "created_at": now,
            "updated_at": now,
        }
        self._comments[comment["id"]] = comment
        issue["comments"] += 1
        issue["updated_at"] = now  # a comment bumps the issue, as on GitHub
        return comment

    def _comment(self, call: _Call) -> dict[str, Any]:
        assert call.repo is not None
        comment = self._comments.get(int(call.params["id"]))
        if comment is None or comment["repo"] != call.repo["full_name"].lower():
            raise _not_found()
        return comment

    def _comments_of(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            c
            for c in self._comments.values()
            if c["repo"] == issue["repo"] and c["number"] == issue["number"]
        ]

    # -- reactions -----------------------------------------------------------------------

    def _react_comment(self, call: _Call) -> _Reply:
        comment = self._comment(call)
        return self._react(("comment", comment["id"]), call)

    def _react_issue(self, call: _Call) -> _Reply:
        assert call.repo is not None
        issue = self._issue(call.repo, int(call.params["number"]))
        return self._react(("issue", issue["repo"], issue["number"]), call)

    def _react(self, key: tuple[Any, ...], call: _Call) -> _Reply:
        """201 for a new reaction, 200 with the existing one if the app already reacted so."""
        content = call.body().get("content")
        if content not in REACTIONS:
            raise _validation("Reaction", "content", "invalid")
        login = self._bot_login()
        reactions = self._reactions.setdefault(key, [])
        for reaction in reactions:
            if reaction["user"] == login and reaction["content"] == content:
                return _Reply(200, self._reaction_obj(reaction))
        reaction = {
            "id": next(self._ids),
            "user": login,
            "user_type": "Bot",
            "content": content,
            "created_at": _now(),
        }
        reactions.append(reaction)
        return _Reply(201, self._reaction_obj(reaction))

    # -- pull requests -------------------------------------------------------------------

    def _get_pull(self, call: _Call) -> _Reply:
        assert call.repo is not None
        return _Reply(200, self._pull_obj(self._pull(call.repo, int(call.params["number"]))))

    def _pull_files(self, call: _Call) -> _Reply:
        assert call.repo is not None
        issue = self._pull(call.repo, int(call.params["number"]))
        files = [
            {
                "sha": _fake_sha(f["filename"]),
                "filename": f["filename"],
                "status": f["status"],
                "additions": 1,
                "deletions": 0 if f["status"] == "added" else 1,
                "changes": 2,
                "blob_url": f"{self.web_url}/{call.repo['full_name']}/blob/"
                f"{issue['pull']['head_sha']}/{f['filename']}",
            }
            for f in self._pr_files.get((issue["repo"], issue["number"]), [])
        ]
        page, headers = self._paginate(call, files)
        return _Reply(200, page, headers)

    def _list_pulls(self, call: _Call) -> _Reply:
        """``?state=open|closed|all&head=owner:branch&base=branch``, newest first."""
        assert call.repo is not None
        state = call.query.get("state", "open")
        head = call.query.get("head")
        base = call.query.get("base")
        found = []
        for issue in self._issues_of(call.repo):
            if issue["pull"] is None or (state != "all" and issue["state"] != state):
                continue
            if head and head.lower() != self._head_label(issue).lower():
                continue
            if base and base != issue["pull"]["base_ref"]:
                continue
            found.append(issue)
        found.sort(key=lambda i: i["number"], reverse=True)
        page, headers = self._paginate(call, [self._pull_obj(i) for i in found])
        return _Reply(200, page, headers)

    def _create_pull(self, call: _Call) -> _Reply:
        """422 if an open pull request from the same head into the same base exists."""
        assert call.repo is not None
        data = call.body()
        for name in ("title", "head", "base"):
            if not data.get(name):
                raise _validation("PullRequest", name, "missing_field")
        _check_body_length("PullRequest", data.get("body"))
        head = str(data["head"])
        owner, sep, branch = head.partition(":")
        if not sep:
            owner, branch = call.repo["owner"], head
        label = f"{owner}:{branch}"
        for issue in self._issues_of(call.repo):
            if (
                issue["pull"] is not None
                and issue["state"] == "open"
                and self._head_label(issue).lower() == label.lower()
                and issue["pull"]["base_ref"] == data["base"]
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
        head_repo = (
            call.repo["full_name"]
            if owner.lower() == call.repo["owner"].lower()
            else f"{owner}/{call.repo['name']}"
        )
        created = self.add_issue(
            call.repo["full_name"],
            title=str(data["title"]),
            body=data.get("body") or "",
            user=self._bot_login(),
            user_type="Bot",
            pull=True,
            head=branch,
            base=data["base"],
            draft=bool(data.get("draft")),
            head_repo=head_repo,
        )
        return _Reply(201, self._pull_obj(self._pull(call.repo, created["number"])))

    def _update_pull(self, call: _Call) -> _Reply:
        assert call.repo is not None
        issue = self._pull(call.repo, int(call.params["number"]))
        data = call.body()
        self._apply_issue_changes(issue, data, "PullRequest")
        if data.get("base"):
            issue["pull"]["base_ref"] = data["base"]
        return _Reply(200, self._pull_obj(issue))

    # -- search --------------------------------------------------------------------------

    def _search_issues(self, call: _Call) -> _Reply:
        """``GET /search/issues`` over the token's installation's repositories.

        Supports the qualifiers ghapp sends (see :func:`_search_filters`); an unsupported
        qualifier is a 422 naming it, so a test never passes on a silently ignored filter.
        """
        q = call.query.get("q", "").strip()
        if not q:
            raise _validation("Search", "q", "missing")
        filters = _search_filters(q, self._repo_for_search(call.auth.installation_id))
        found = [
            i
            for i in self._issues.values()
            if self._repos[i["repo"]]["installation_id"] == call.auth.installation_id
            and all(f(i) for f in filters)
        ]
        sort, order = call.query.get("sort"), call.query.get("order", "desc")
        keys: dict[str | None, Callable[[dict[str, Any]], Any]] = {
            "created": lambda i: (i["created_at"], i["id"]),
            "updated": lambda i: (i["updated_at"], i["id"]),
            "comments": lambda i: (i["comments"], i["id"]),
        }
        if sort in keys:
            found.sort(key=keys[sort], reverse=order != "asc")
        else:  # "best match": we have no relevance, so newest number first
            found.sort(key=lambda i: (i["number"], i["repo"]), reverse=True)
        per_page, page = _page_params(call)
        if (page - 1) * per_page >= SEARCH_RESULT_CAP:
            raise GitHubError(422, "Only the first 1000 search results are available")
        items, headers = self._paginate(
            call, found[:SEARCH_RESULT_CAP], render=lambda i: {**self._issue_obj(i), "score": 1.0}
        )
        return _Reply(
            200,
            {
                "total_count": len(found),
                "incomplete_results": self._incomplete_results,
                "items": items,
            },
            headers,
        )

    def _repo_for_search(self, installation_id: int | None) -> Callable[[str], str]:
        """Resolve a ``repo:`` qualifier to a visible repository's key, or refuse."""

        def resolve(full_name: str) -> str:
            repo = self._repos.get(full_name.lower())
            if repo is None or repo["installation_id"] != installation_id:
                raise _invalid_query(
                    "The listed users and repositories cannot be searched either because the "
                    "resources do not exist or you do not have permission to view them."
                )
            return full_name.lower()

        return resolve

    # == rendering ======================================================================

    def _paginate(
        self,
        call: _Call,
        items: list[Any],
        render: Callable[[Any], Any] | None = None,
    ) -> tuple[list[Any], dict[str, str]]:
        """One page of ``items`` and GitHub's ``Link`` header (prev, next, last, first)."""
        per_page, page = _page_params(call)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        if render is not None:
            chunk = [render(i) for i in chunk]

        def url(number: int) -> str:
            params = [(k, v) for k, v in call.query_items if k != "page"] + [("page", str(number))]
            origin = self._api.removesuffix(self.path_prefix) if self.path_prefix else self._api
            return f"<{origin}{call.path}?{urlencode(params)}>"

        links = []
        if page > 1:
            links.append(f'{url(page - 1)}; rel="prev"')
        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links.append(f'{url(1)}; rel="first"')
        return chunk, ({"link": ", ".join(links)} if links else {})

    def _user(self, login: str, kind: str = "User") -> dict[str, Any]:
        user_id = self._user_ids.setdefault(login.lower(), next(self._ids))
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "type": kind,
            "site_admin": False,
            "url": f"{self._api}/users/{login}",
            "html_url": f"{self.web_url}/{login}",
        }

    def _bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def _bot(self) -> dict[str, Any]:
        return self._user(self._bot_login(), "Bot")

    def _installation_obj(self, record: dict[str, Any]) -> dict[str, Any]:
        iid = record["id"]
        return {
            "id": iid,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "account": self._user(record["account_login"], record["account_type"]),
            "target_type": record["account_type"],
            "repository_selection": "all",
            "access_tokens_url": f"{self._api}/app/installations/{iid}/access_tokens",
            "repositories_url": f"{self._api}/installation/repositories",
            "html_url": f"{self.web_url}/settings/installations/{iid}",
            "permissions": dict(TOKEN_PERMISSIONS),
            "events": APP_EVENTS,
            "created_at": _iso(record["created_at"]),
            "updated_at": _iso(record["created_at"]),
            "suspended_at": None,
        }

    def _owner_type(self, owner: str) -> str:
        for record in self._installations.values():
            if record["account_login"].lower() == owner.lower():
                return str(record["account_type"])
        return "User"

    def _repo_obj(self, repo: dict[str, Any]) -> dict[str, Any]:
        full = repo["full_name"]
        return {
            "id": repo["id"],
            "node_id": f"R_{repo['id']}",
            "name": repo["name"],
            "full_name": full,
            "private": repo["private"],
            "visibility": "private" if repo["private"] else "public",
            "owner": self._user(repo["owner"], self._owner_type(repo["owner"])),
            "html_url": f"{self.web_url}/{full}",
            "description": None,
            "fork": False,
            "url": f"{self._api}/repos/{full}",
            "clone_url": f"{self.web_url}/{full}.git",
            "default_branch": repo["default_branch"],
            "archived": False,
            "disabled": False,
        }

    def _head_repo_obj(self, full_name: str) -> dict[str, Any]:
        repo = self._repos.get(full_name.lower())
        if repo is not None:
            return self._repo_obj(repo)
        owner, _, name = full_name.partition("/")
        return {  # a fork the stand-in knows nothing else about
            "id": _stable_id(full_name),
            "name": name,
            "full_name": full_name,
            "fork": True,
            "private": False,
            "owner": self._user(owner),
            "html_url": f"{self.web_url}/{full_name}",
            "url": f"{self._api}/repos/{full_name}",
            "clone_url": f"{self.web_url}/{full_name}.git",
            "default_branch": "main",
        }

    def _association(self, repo_key: str, login: str) -> str:
        repo = self._repos[repo_key]
        if login.lower() == repo["owner"].lower():
            return "OWNER"
        return (
            "COLLABORATOR"
            if self._permissions.get((repo_key, login.lower()), "none") != "none"
            else "NONE"
        )

    def _label_obj(self, name: str) -> dict[str, Any]:
        return {
            "id": _stable_id(name),
            "node_id": f"LA_{_stable_id(name)}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def _issue_obj(self, issue: dict[str, Any]) -> dict[str, Any]:
        full = self._repos[issue["repo"]]["full_name"]
        n = issue["number"]
        kind = "pull" if issue["pull"] else "issues"
        obj: dict[str, Any] = {
            "id": issue["id"],
            "node_id": f"I_{issue['id']}",
            "number": n,
            "url": f"{self._api}/repos/{full}/issues/{n}",
            "repository_url": f"{self._api}/repos/{full}",
            "comments_url": f"{self._api}/repos/{full}/issues/{n}/comments",
            "html_url": f"{self.web_url}/{full}/{kind}/{n}",
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "user": self._user(issue["user"], issue["user_type"]),
            "labels": [self._label_obj(name) for name in issue["labels"]],
            "assignee": self._user(issue["assignees"][0]) if issue["assignees"] else None,
            "assignees": [self._user(a) for a in issue["assignees"]],
            "comments": issue["comments"],
            "locked": False,
            "author_association": self._association(issue["repo"], issue["user"]),
            "created_at": _iso(issue["created_at"]),
            "updated_at": _iso(issue["updated_at"]),
            "closed_at": _iso(issue["closed_at"]),
        }
        if issue["pull"]:
            obj["draft"] = issue["pull"]["draft"]
            obj["pull_request"] = {
                "url": f"{self._api}/repos/{full}/pulls/{n}",
                "html_url": f"{self.web_url}/{full}/pull/{n}",
                "diff_url": f"{self.web_url}/{full}/pull/{n}.diff",
                "patch_url": f"{self.web_url}/{full}/pull/{n}.patch",
                "merged_at": _iso(issue["pull"]["merged_at"]),
            }
        return obj

    def _head_label(self, issue: dict[str, Any]) -> str:
        return f"{issue['pull']['head_repo'].partition('/')[0]}:{issue['pull']['head_ref']}"

    def _pull_obj(self, issue: dict[str, Any]) -> dict[str, Any]:
        repo = self._repos[issue["repo"]]
        pull = issue["pull"]
        full = repo["full_name"]
        n = issue["number"]
        base_obj = self._repo_obj(repo)
        head_obj = self._head_repo_obj(pull["head_repo"])
        files = self._pr_files.get((issue["repo"], n), [])
        plain = self._issue_obj(issue)
        return {
            "id": pull["id"],
            "node_id": f"PR_{pull['id']}",
            "number": n,
            "url": f"{self._api}/repos/{full}/pulls/{n}",
            "html_url": f"{self.web_url}/{full}/pull/{n}",
            "diff_url": f"{self.web_url}/{full}/pull/{n}.diff",
            "issue_url": plain["url"],
            "comments_url": plain["comments_url"],
            "state": issue["state"],
            "title": issue["title"],
            "body": issue["body"],
            "user": plain["user"],
            "labels": plain["labels"],
            "assignee": plain["assignee"],
            "assignees": plain["assignees"],
            "requested_reviewers": [],
            "locked": False,
            "draft": pull["draft"],
            "merged": pull["merged_at"] is not None,
            "merged_at": _iso(pull["merged_at"]),
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "draft" if pull["draft"] else "clean",
            "merge_commit_sha": None,
            "author_association": plain["author_association"],
            "head": {
                "label": self._head_label(issue),
                "ref": pull["head_ref"],
                "sha": pull["head_sha"],
                "user": head_obj["owner"],
                "repo": head_obj,
            },
            "base": {
                "label": f"{repo['owner']}:{pull['base_ref']}",
                "ref": pull["base_ref"],
                "sha": _fake_sha(full, pull["base_ref"]),
                "user": base_obj["owner"],
                "repo": base_obj,
            },
            "comments": issue["comments"],
            "review_comments": 0,
            "commits": 1,
            "additions": len(files),
            "deletions": len(files),
            "changed_files": len(files),
            "created_at": plain["created_at"],
            "updated_at": plain["updated_at"],
            "closed_at": plain["closed_at"],
        }

    def _comment_obj(self, comment: dict[str, Any]) -> dict[str, Any]:
        repo = self._repos[comment["repo"]]
        full, n, cid = repo["full_name"], comment["number"], comment["id"]
        kind = "pull" if self._issues[(comment["repo"], n)]["pull"] else "issues"
        return {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": comment["body"],
            "url": f"{self._api}/repos/{full}/issues/comments/{cid}",
            "html_url": f"{self.web_url}/{full}/{kind}/{n}#issuecomment-{cid}",
            "issue_url": f"{self._api}/repos/{full}/issues/{n}",
            "user": self._user(comment["user"], comment["user_type"]),
            "author_association": self._association(comment["repo"], comment["user"]),
            "created_at": _iso(comment["created_at"]),
            "updated_at": _iso(comment["updated_at"]),
        }

    def _reaction_obj(self, reaction: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": reaction["id"],
            "node_id": f"REA_{reaction['id']}",
            "user": self._user(reaction["user"], reaction["user_type"]),
            "content": reaction["content"],
            "created_at": _iso(reaction["created_at"]),
        }

    def _file_obj(self, repo: dict[str, Any], ref: str, path: str, text: str) -> dict[str, Any]:
        data = text.encode()
        encoded = base64.b64encode(data).decode()
        wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        return {**self._entry_obj(repo, ref, path, text), "encoding": "base64", "content": wrapped}

    def _entry_obj(
        self, repo: dict[str, Any], ref: str, path: str, text: str | None
    ) -> dict[str, Any]:
        """A directory-listing entry: a file if ``text`` is given, else a directory."""
        full = repo["full_name"]
        kind = "dir" if text is None else "file"
        sha = _fake_sha(full, ref, path) if text is None else _blob_sha(text.encode())
        url = f"{self._api}/repos/{full}/contents/{path}?ref={ref}"
        html = f"{self.web_url}/{full}/{'tree' if text is None else 'blob'}/{ref}/{path}"
        return {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": 0 if text is None else len(text.encode()),
            "url": url,
            "html_url": html,
            "git_url": f"{self._api}/repos/{full}/git/{'trees' if text is None else 'blobs'}/{sha}",
            "download_url": None
            if text is None
            else f"https://raw.githubusercontent.com/{full}/{ref}/{path}",
            "_links": {"self": url, "html": html},
        }

    # == lookups ========================================================================

    def _repo(self, full_name: str) -> dict[str, Any]:
        repo = self._repos.get(full_name.lower())
        if repo is None:
            raise KeyError(f"unknown repository {full_name!r}: add_repo() it first")
        return repo

    def _repo_for(self, owner: str, name: str) -> dict[str, Any] | None:
        return self._repos.get(f"{owner}/{name}".lower())

    def _issues_of(self, repo: dict[str, Any]) -> list[dict[str, Any]]:
        key = repo["full_name"].lower()
        return [i for (r, _), i in self._issues.items() if r == key]

    def _issue(self, repo: dict[str, Any], number: int) -> dict[str, Any]:
        issue = self._issues.get((repo["full_name"].lower(), number))
        if issue is None:
            raise _not_found()
        return issue

    def _pull(self, repo: dict[str, Any], number: int) -> dict[str, Any]:
        issue = self._issue(repo, number)
        if issue["pull"] is None:  # GitHub: /pulls/N of a plain issue is a 404
            raise _not_found()
        return issue

    def _role(self, repo: dict[str, Any], login: str) -> str | None:
        role = self._permissions.get((repo["full_name"].lower(), login.lower()))
        if role is None and login.lower() == repo["owner"].lower():
            if self._owner_type(repo["owner"]) == "User":
                return "admin"
        return role


# == helpers ============================================================================


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _stable_id(text: str) -> int:
    return int(_fake_sha(text)[:8], 16)


def _label_names(labels: Iterable[Any]) -> list[str]:
    return [str(label["name"]) if isinstance(label, dict) else str(label) for label in labels]


def _check_body_length(resource: str, body: Any) -> None:
    if isinstance(body, str) and len(body) > MAX_COMMENT_LENGTH:
        message = f"body is too long (maximum is {MAX_COMMENT_LENGTH} characters)"
        raise _validation(resource, "body", "custom", message)


def _page_params(call: _Call) -> tuple[int, int]:
    """GitHub's ``per_page`` (default 30, at most 100) and ``page`` (from 1)."""

    def number(name: str, default: int) -> int:
        value = call.query.get(name, "")
        return int(value) if value.isdigit() and int(value) > 0 else default

    return min(number("per_page", 30), 100), number("page", 1)


# -- search query language -------------------------------------------------------------

_TERM = re.compile(r'(-?)([A-Za-z_-]+):((?:"[^"]*"|[^\s"])+)|"([^"]*)"|(\S+)')
_VALUE = re.compile(r'"([^"]*)"|([^,]+)')

IssuePredicate = Callable[[dict[str, Any]], bool]


def _values(raw: str) -> list[str]:
    return [quoted or plain for quoted, plain in _VALUE.findall(raw)]


def _invalid_query(message: str) -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"message": message, "resource": "Search", "field": "q", "code": "invalid"}],
    )


def _search_filters(q: str, resolve_repo: Callable[[str], str]) -> list[IssuePredicate]:
    """Turn a search query into predicates over stored issues (all must hold).

    Qualifiers: ``repo:`` (several: any), ``user:``/``org:``, ``is:``/``type:`` issue|pr,
    ``is:``/``state:`` open|closed, ``label:a,b`` (any of; several ``label:`` all),
    ``-label:``, ``no:label``, ``author:``, ``assignee:``, ``no:assignee`` (negatable),
    ``created:``/``updated:``/``closed:`` with ``>``, ``>=``, ``<``, ``<=``, ``A..B`` or a
    day, on dates or ISO 8601 times; bare words and quoted phrases match title or body.
    """
    filters: list[IssuePredicate] = []
    repos: list[str] = []
    for neg, key, raw, phrase, word in _TERM.findall(q):
        if not key:
            text = (phrase or word).lower()
            filters.append(lambda i, t=text: t in i["title"].lower() or t in i["body"].lower())
            continue
        key = key.lower()
        values = _values(raw)
        lowered = [v.lower() for v in values]
        predicate: IssuePredicate
        if key == "repo":
            repos += [resolve_repo(v) for v in values]
            continue
        if key in ("user", "org"):
            predicate = lambda i, v=lowered: i["repo"].split("/")[0] in v  # noqa: E731
        elif key in ("is", "type", "state"):
            predicate = _is_filter(lowered[0] if lowered else "", raw)
        elif key == "label":
            predicate = lambda i, v=lowered: any(lab.lower() in v for lab in i["labels"])  # noqa: E731
        elif key == "author":
            predicate = lambda i, v=lowered: i["user"].lower() in v  # noqa: E731
        elif key == "assignee":
            predicate = lambda i, v=lowered: any(a.lower() in v for a in i["assignees"])  # noqa: E731
        elif key == "no" and lowered in (["assignee"], ["label"]):
            field_ = "assignees" if lowered == ["assignee"] else "labels"
            predicate = lambda i, f=field_: not i[f]  # noqa: E731
        elif key in ("created", "updated", "closed"):
            predicate = _date_filter(f"{key}_at", raw)
        else:
            raise _invalid_query(f"The GitHub stand-in does not support the qualifier {key}:{raw}")
        if neg:
            filters.append(lambda i, p=predicate: not p(i))
        else:
            filters.append(predicate)
    if repos:
        filters.append(lambda i: i["repo"] in repos)
    return filters


def _is_filter(value: str, raw: str) -> IssuePredicate:
    if value in ("issue", "issues"):
        return lambda i: i["pull"] is None
    if value in ("pr", "pull-request", "pull_request"):
        return lambda i: i["pull"] is not None
    if value in ("open", "closed"):
        return lambda i: i["state"] == value
    raise _invalid_query(f"The GitHub stand-in does not support is:{raw}")


def _bound(text: str) -> datetime | date:
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return date.fromisoformat(text)
    except ValueError:
        raise _invalid_query(f"Invalid date {text!r}") from None


def _compare(moment: datetime, bound: datetime | date) -> int:
    """-1, 0 or 1: ``moment`` against a day (compared by UTC day) or an instant."""
    left: Any = moment.astimezone(UTC).date() if type(bound) is date else moment
    return (left > bound) - (left < bound)


def _date_filter(attribute: str, spec: str) -> IssuePredicate:
    """``>D``, ``>=D``, ``<D``, ``<=D``, ``A..B`` (``*`` open), or ``D`` (that day/instant)."""
    tests: list[tuple[str, Callable[[int], bool]]] = [
        (">=", lambda c: c >= 0),
        ("<=", lambda c: c <= 0),
        (">", lambda c: c > 0),
        ("<", lambda c: c < 0),
    ]
    if ".." in spec:
        low, high = spec.split("..", 1)
        checks = []
        if low not in ("", "*"):
            checks.append(_moment_filter(attribute, _bound(low), tests[0][1]))
        if high not in ("", "*"):
            checks.append(_moment_filter(attribute, _bound(high), tests[1][1]))
        return lambda i: all(check(i) for check in checks) and i[attribute] is not None
    for op, test in tests:
        if spec.startswith(op):
            return _moment_filter(attribute, _bound(spec[len(op) :]), test)
    return _moment_filter(attribute, _bound(spec), lambda c: c == 0)


def _moment_filter(
    attribute: str, bound: datetime | date, test: Callable[[int], bool]
) -> IssuePredicate:
    def predicate(issue: dict[str, Any]) -> bool:
        moment = issue[attribute]
        return moment is not None and test(_compare(moment, bound))

    return predicate
