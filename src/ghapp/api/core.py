"""The small framework every ``/api`` route is declared with.

A route is an :class:`Endpoint`: method, path, handler, and the pydantic models of its query,
body and response. From that one declaration come the Starlette route, the parsing and
validation of the request (``422`` naming the field and the reason), the authentication
(``401`` / ``403``), the JSON response (aliases applied) and its ``/openapi.json`` entry —
so the document cannot drift from what the code does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ghapp.access import Scope
from ghapp.api.auth import authenticate
from ghapp.api.errors import ApiError, details, invalid, problem
from ghapp.bodies import MAX_JSON_DEPTH, BodyRefused, nested_deeper_than, read_body
from ghapp.jobs.service import JobError, JobForbidden, JobNotFound
from ghapp.notify.crypto import SecretKeyError
from ghapp.tokens import Principal

if TYPE_CHECKING:
    from ghapp.runtime import AppState

log = logging.getLogger("ghapp.api")

MAX_BODY = 1_000_000
MAX_ID = 2**63 - 1  # ids are BIGINT; larger numbers cannot name anything
# Services validate what they are given against these; their errors are the client's.
INPUT_MODELS = frozenset({"JobSpec", "NotifierSpec"})


@dataclass
class Call:
    """What a handler gets: the parsed request and who made it."""

    request: Request
    state: AppState
    principal: Principal
    path: dict[str, int]
    query: Any
    parsed_body: Any = None
    body_error: ApiError | None = None

    @property
    def actor(self) -> str:
        return self.principal.actor

    async def scope(self) -> Scope:
        return await self.principal.scope(self.state.db)

    @property
    def body(self) -> Any:
        """The validated body. Parsed up front, but a bad body is reported only when the
        handler reads it — after its scope checks, so a token learns nothing (403 first)."""
        if self.body_error is not None:
            raise self.body_error
        return self.parsed_body


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI form: /api/repos/{repo_id}/schedules
    handler: Handler
    summary: str
    tag: str
    response: Any = None  # a type for pydantic's TypeAdapter; None: no body
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()  # besides 401/403/422, which every route may answer
    description: str = ""
    # How the client spells a service's field names (the scheduler routes speak camelCase).
    field_names: Callable[[str], str] | None = None

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass
class Api:
    """A set of endpoints; modules add theirs with :meth:`route`."""

    endpoints: list[Endpoint] = field(default_factory=list)
    field_names: Callable[[str], str] | None = None  # the default for its endpoints

    def route(self, method: str, path: str, *, summary: str, tag: str, **options: Any) -> Any:
        options.setdefault("field_names", self.field_names)

        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler, summary, tag, **options))
            return handler

        return register

    def include(self, other: Api) -> None:
        self.endpoints.extend(other.endpoints)

    def starlette_routes(self) -> list[Route]:
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in self.endpoints:
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        # Path parameters match as strings and are checked in _path_params, so /tasks/abc
        # gets the same JSON 404 as an unknown id.
        return [
            Route(path, _dispatcher(methods), methods=list(methods))
            for path, methods in by_path.items()
        ]


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        endpoint = methods[request.method if request.method != "HEAD" else "GET"]
        try:
            return await _handle(endpoint, request)
        except ApiError as exc:
            return problem(exc)

    return dispatch


async def _handle(endpoint: Endpoint, request: Request) -> Response:
    state: AppState = request.app.state.ghapp
    principal = await authenticate(request, state)
    path = _path_params(endpoint, request)
    query = _parse(endpoint.query, dict(request.query_params), "query") if endpoint.query else None
    call = Call(request, state, principal, path, query)
    if endpoint.body:
        try:
            call.parsed_body = await _body(endpoint, request)
        except ApiError as exc:
            call.body_error = exc
    try:
        result = await endpoint.handler(call)
    except JobNotFound:
        raise ApiError(404, "not found") from None
    except SecretKeyError as exc:
        raise ApiError(503, str(exc)) from None
    except JobForbidden as exc:
        field = endpoint.field_names(exc.field) if endpoint.field_names else exc.field
        raise ApiError(
            403, exc.reason, [{"field": field, "reason": exc.reason, "in": "body"}]
        ) from None
    except JobError as exc:
        field = endpoint.field_names(exc.field) if endpoint.field_names else exc.field
        raise invalid(field, exc.reason) from None
    except ValidationError as exc:
        if exc.title not in INPUT_MODELS:  # a response that does not fit its model: our bug
            raise
        problems = details(exc, "body")
        if endpoint.field_names:
            for problem_ in problems:
                problem_["field"] = endpoint.field_names(problem_["field"])
        raise ApiError(422, "invalid input", problems) from None
    if isinstance(result, Response):
        return result
    if endpoint.response is None:
        return Response(status_code=endpoint.status if endpoint.status != 200 else 204)
    # Straight to JSON bytes in pydantic's core: a quarter of dump_python + json.dumps.
    content = _adapter(endpoint.response).dump_json(result, by_alias=True)
    return Response(content, status_code=endpoint.status, media_type="application/json")


def _path_params(endpoint: Endpoint, request: Request) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in endpoint.path_params:
        raw = str(request.path_params[name])
        # isdigit() alone admits "³" and other Unicode digits that int() refuses (a 500).
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_ID:
            raise ApiError(404, "not found")
        out[name] = int(raw)
    return out


async def _body(endpoint: Endpoint, request: Request) -> Any:
    """The parsed body. Read with a running count (a 300 MB body was read whole before its
    size was checked) within the body deadline, and measured for nesting before parsing
    (``json.loads`` recursed into a ``RecursionError``: a 500)."""
    timeout_s = request.app.state.ghapp.settings.body_timeout_seconds
    try:
        raw = b"".join(await read_body(request, MAX_BODY, timeout_s))
    except BodyRefused as refusal:
        if refusal.client_gone:
            # Nobody reads the answer and nothing went wrong here: no error, no traceback.
            log.debug("api client went away mid-body", extra={"path": request.url.path})
        reason = refusal.reason
        if refusal.status == 413:
            reason = f"the body is larger than {MAX_BODY} bytes"
        # The rest of the body must not be read as the next request: close the connection.
        raise ApiError(refusal.status, reason, headers={"Connection": "close"}) from None
    if nested_deeper_than(raw):
        raise ApiError(400, f"the body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON") from None
    assert endpoint.body is not None
    return _parse(endpoint.body, data, "body")


def _parse(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid input", details(exc, where)) from None


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]
