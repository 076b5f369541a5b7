"""The GitHub stand-in itself: :class:`GitHubStandIn` puts the world, its renderer, the
credentials, the rate limits, the helpers and the routes together behind one lock and one
Starlette app, serves it on loopback (:meth:`~GitHubStandIn.serve`,
:meth:`~GitHubStandIn.serve_in_thread`), answers each request (path prefix, JSON body,
authentication, rate limit, route, repository scope, GitHub's response headers), records
it as a :class:`Recorded`, and replaces answers on demand: injected faults
(:meth:`~GitHubStandIn.inject` and the rate-limit shortcuts) and outages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from ghapp.standins.github._utils import (
    DOCS,
    NOT_ACCESSIBLE,
    RATE_DOCS,
    AuthKind,
    Call,
    GitHubError,
    Reply,
    not_found,
)
from ghapp.standins.github.auth import Credentials, app_key, authorise
from ghapp.standins.github.contract import Contract, Operation, Violation
from ghapp.standins.github.helpers import Helpers
from ghapp.standins.github.limits import Bucket, RateLimits
from ghapp.standins.github.reference import Reference
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.routes import Routes, find_route
from ghapp.standins.github.world import World
from ghapp.standins.serving import in_loop, in_thread, loopback_config

# The environment variables that set a stand-in's contract up by default (the test plugin
# tests/github_contract.py sets them for a run, subprocesses included): GitHub's
# description (api.github.com; GHES for a stand-in with a path prefix), and the files that
# collect each violation (JSON lines) and each operation used (a line each, repeated
# across stand-ins).
CONTRACT = "GHAPP_STANDIN_CONTRACT"
CONTRACT_GHES = "GHAPP_STANDIN_CONTRACT_GHES"
VIOLATIONS_FILE = "GHAPP_STANDIN_VIOLATIONS"
OPERATIONS_FILE = "GHAPP_STANDIN_OPERATIONS"


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


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: Any
    apply: bool = False  # carry the request out, then answer with the fault anyway


class GitHubStandIn(Helpers, Routes):
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
        contract: Contract | None = None,
    ) -> None:
        """``path_prefix`` (e.g. ``"/api/v3"``) serves the API below a path, as GitHub
        Enterprise Server does, to check that clients keep the path of their base URL.

        ``contract`` holds every request and answer to GitHub's description (see
        :mod:`.contract`); by default the one the file ``GHAPP_STANDIN_CONTRACT`` names
        (``GHAPP_STANDIN_CONTRACT_GHES`` with a path prefix), so that stand-ins in other
        processes are checked too, and none if it is unset."""
        self.app_id = app_id
        self.private_key_pem, self.public_key = app_key(private_key_pem)
        self.app_slug = app_slug
        self.client_id = f"Iv1.standin{app_id:08d}"
        self.web_url = web_url.rstrip("/")
        self.path_prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        self.base_url: str | None = None  # set while serving
        self.requests: list[Recorded] = []
        self.statuses: list[dict[str, Any]] = []
        self.created_apps: list[dict[str, Any]] = []  # manifest conversions' answers
        self.contract = contract if contract is not None else _contract_from_env(self.path_prefix)
        self.reference = _reference_from_env(self.path_prefix) if contract is None else None
        self.violations: list[Violation] = []  # of the contract, by requests and answers
        self._operations: set[str] = set()  # "operationId METHOD /template" used so far

        self._lock = threading.RLock()
        self.world = World()
        self.render = Renderer(
            self.world,
            app_id=app_id,
            app_slug=app_slug,
            web_url=self.web_url,
            path_prefix=self.path_prefix,
        )
        self.credentials = Credentials(app_id, self.client_id, self.public_key)
        self.limits = RateLimits()
        self._faults: list[Fault] = []
        self._outage: int | None = None
        self._routes = self._build_routes()
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        self.app = Starlette(
            routes=[
                StarletteRoute("/", self._endpoint, methods=methods),
                StarletteRoute("/{path:path}", self._endpoint, methods=methods),
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
                Fault(
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

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.method in ("*", method) and fault.pattern.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # == request handling ===============================================================

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            return self._handle(request, raw)

    def _handle(self, request: Request, raw: bytes) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        full_path = request.url.path
        path, outside = self._strip_prefix(full_path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query_items = list(request.query_params.multi_items())
        parsed, bad_json = _parse_json(raw)
        origin = self.base_url or (str(request.base_url).rstrip("/") + self.path_prefix)
        self.render.api = origin
        auth = self.credentials.authenticate(headers.get("authorization"))
        bucket = self.limits.bucket(auth.kind, auth.installation_id)
        call = Call(method, full_path, {}, dict(query_items), query_items, parsed, auth, origin)
        operation, refusal = self._check_request(
            method, path, outside, query_items, headers, parsed, bad_json
        )
        injected = False
        if outside:  # a request that misses the API's path prefix: 404
            reply = Reply(404, not_found().body)
        elif refusal is not None:  # GitHub would not carry it out
            reply = refusal
        else:
            reply, injected = self._answer(path, call, bad_json, bucket)
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
            **bucket.headers(),
            **reply.headers,
        }
        content = b"" if reply.status == 204 else json.dumps(reply.body).encode()
        if operation is not None and refusal is None and not injected:
            self._check_response(operation, method, path, reply.status, content)
            self._confirm(operation, method, path, query_items, headers, raw, reply.status, content)
        return Response(content, status_code=reply.status, headers=out)

    # == the contract ===================================================================

    def _check_request(
        self,
        method: str,
        path: str,
        outside: bool,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: Any,
        bad_json: bool,
    ) -> tuple[Operation | None, Reply | None]:
        """The request's operation in GitHub's description, and GitHub's answer if it would
        refuse the request; each problem is recorded as a violation."""
        if self.contract is None:
            return None, None
        if outside:
            self._violate("request", "", method, path, f"outside {self.path_prefix}", 404)
            return None, None
        check = self.contract.check_request(method, path, query, headers, body, unparsable=bad_json)
        refusal = None
        if check.refusal is not None:
            status, message = check.refusal
            refusal = Reply(status, {"message": message, "documentation_url": DOCS})
        operation_id = check.operation.operation_id if check.operation else ""
        for problem in check.problems:
            status = refusal.status if refusal else 0
            self._violate("request", operation_id, method, path, problem, status)
        if check.operation is not None and refusal is None:
            self._used(check.operation)
        return check.operation, refusal

    def _check_response(
        self, operation: Operation, method: str, path: str, status: int, content: bytes
    ) -> None:
        assert self.contract is not None
        for problem in self.contract.check_response(operation, status, content):
            self._violate("response", operation.operation_id, method, path, problem, status)

    def _confirm(
        self,
        operation: Operation,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        raw: bytes,
        status: int,
        content: bytes,
    ) -> None:
        """openapi-core's verdict too, on the first call of each operation and status."""
        if self.reference is None or not self.reference.first(operation.operation_id, status):
            return
        documented = set(operation.responses)
        found = self.reference.problems(
            method, path, query, headers, raw, status, content, documented, operation.template
        )
        for problem in found:
            self._violate("openapi-core", operation.operation_id, method, path, problem, status)

    def _violate(
        self, side: str, operation: str, method: str, path: str, problem: str, status: int
    ) -> None:
        violation = Violation(side, operation, method, path, problem, status)
        self.violations.append(violation)
        _append_line(VIOLATIONS_FILE, json.dumps(violation.as_json()))

    def _used(self, operation: Operation) -> None:
        line = f"{operation.operation_id} {operation.method} {operation.template}"
        if line not in self._operations:
            self._operations.add(line)
            _append_line(OPERATIONS_FILE, line)

    def take_violations(self) -> list[Violation]:
        """The violations so far, which no longer count against the test that made them:
        for a test that breaks the contract on purpose (and asserts that it was caught)."""
        with self._lock:
            taken, self.violations = self.violations, []
        for violation in taken:
            _append_line(VIOLATIONS_FILE, json.dumps({"withdrawn": violation.key}))
        return taken

    def _strip_prefix(self, full_path: str) -> tuple[str, bool]:
        """The path below the API's prefix, and whether the request missed the prefix."""
        if not self.path_prefix:
            return full_path, False
        if not full_path.startswith(self.path_prefix + "/"):
            return full_path, True
        return full_path.removeprefix(self.path_prefix), False

    def _answer(self, path: str, call: Call, bad_json: bool, bucket: Bucket) -> tuple[Reply, bool]:
        """The reply to a request inside the API, and whether a fault or outage gave it."""
        fault = self._take_fault(call.method, path)
        if fault is None and self._outage is not None:
            fault = Fault(call.method, re.compile(""), self._outage, 1, {}, None)
        if fault is None:
            try:
                return self._dispatch(path, call, bad_json, bucket), False
            except GitHubError as exc:
                return Reply(exc.status, exc.body, exc.headers), False
        if fault.apply:
            with contextlib.suppress(GitHubError):
                self._dispatch(path, call, bad_json, bucket)
        bucket.remaining = max(0, bucket.remaining - 1)
        body = fault.body if fault.body is not None else {"message": _reason(fault.status)}
        return Reply(fault.status, body, dict(fault.headers)), True

    def _dispatch(self, path: str, call: Call, bad_json: bool, bucket: Bucket) -> Reply:
        """Rate limit, route, credentials, body and repository scope; then the handler."""
        bucket.spend(call.auth)
        route, match = find_route(self._routes, call.method, path)
        authorise(route.auth, call.auth)
        if bad_json:
            raise GitHubError(400, "Problems parsing JSON")
        call.params = match.groupdict()
        if route.repo_scope != "none":
            call.repo = self.world.repo_for(call.params["owner"], call.params["repo"])
            if call.repo is None:
                raise not_found()
            if (
                route.repo_scope == "installation"
                and call.repo["installation_id"] != call.auth.installation_id
            ):
                raise GitHubError(403, NOT_ACCESSIBLE)
        return route.handler(call)


def _contract_from_env(path_prefix: str) -> Contract | None:
    name = os.environ.get(CONTRACT_GHES if path_prefix else CONTRACT)
    return Contract.load(name) if name else None


def _reference_from_env(path_prefix: str) -> Reference | None:
    name = os.environ.get(CONTRACT_GHES if path_prefix else CONTRACT)
    return Reference.load(name) if name else None


def _append_line(variable: str, line: str) -> None:
    """One line at the end of the file the environment variable names, if it names one
    (several processes may append at once: one write each)."""
    name = os.environ.get(variable)
    if name:
        with open(name, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def _parse_json(raw: bytes) -> tuple[Any, bool]:
    """A request body parsed as JSON (None if empty), and whether it failed to parse."""
    if not raw.strip():
        return None, False
    try:
        return json.loads(raw), False
    except ValueError:
        return None, True


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _request_id() -> str:
    parts = (secrets.token_hex(2), secrets.token_hex(2), secrets.token_hex(3))
    return ":".join(p.upper() for p in (*parts, secrets.token_hex(3), secrets.token_hex(4)))
