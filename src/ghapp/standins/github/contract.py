"""GitHub's own API description as a contract for the stand-in: :class:`Contract` loads an
OpenAPI 3.0 description (``@octokit/openapi``'s ``api.github.com.json`` or
``ghes-3.17.json``, once per file and process) and checks each request the stand-in
receives (a documented path and method; path and query parameters of the documented form;
the body against the documented schema; the ``Accept`` and ``X-GitHub-Api-Version``
headers GitHub asks for) and each answer it gives (the schema documented for its status).

Schemas are checked by ``jsonschema_rs`` (compiled once per schema, about 0.1 ms for a pull
request) after turning OpenAPI 3.0's ``nullable`` into JSON Schema's ``null`` type;
openapi-core, which does the same per call through the whole description, costs ~6 ms per
request and as much per answer, so it confirms only the first call of each operation and
status (:mod:`.reference`). jsonschema-rs is in the test extra only: the stand-in also
serves the offline demo, where no contract is used, so it is imported when a
:class:`Contract` is made. A contract made in a test process adds about 0.4 ms per request
and 0.2 ms per answer (measured over test_end_to_end, test_checks and test_github_standin),
after about 0.7 s to load each description once.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

# Where GitHub's description cannot be right: the schema at a JSON pointer is replaced by a
# reference to another place in the same description, which describes the same thing
# correctly. One field each, and why.
DESCRIPTION_BUGS: dict[str, tuple[str, str]] = {
    # GET /app/installations inlines the installation with its account as "allOf" the
    # simple-user and enterprise schemas (an account both a user and an enterprise); the
    # installation schema itself, and GET /app/installations/{id}, say "anyOf".
    "/paths/~1app~1installations/get/responses/200/content/application~1json/schema/items"
    "/properties/account": (
        "/components/schemas/installation/properties/account",
        "an account is a user or an enterprise, not both",
    ),
}

GITHUB_MEDIA_TYPE = re.compile(r"application/vnd\.github(\.[\w.+-]+|\+json)")
API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
# Path parameters whose values GitHub takes with slashes in them: a file's path, a branch
# or ref ("feature/x"), "base...head".
SLASHED = frozenset({"path", "ref", "branch", "basehead", "file_path"})
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_URI = "urn:github-description"


@dataclass(frozen=True)
class Violation:
    """One way a request or an answer departs from GitHub's description."""

    side: str  # "request" or "response"
    operation: str  # the operationId, "" for an undocumented path or method
    method: str
    path: str  # below the API's path prefix
    problem: str
    status: int  # what the stand-in answered; 0 if it carried the request out
    key: str = field(default_factory=lambda: secrets.token_hex(8), compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "side": self.side,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "problem": self.problem,
            "status": self.status,
        }

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" + (f" ({self.operation})" if self.operation else "")
        return f"{self.side} {where} -> {self.status}: {self.problem}"


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # "path" or "query"
    required: bool
    schema: dict[str, Any]
    pointer: str  # of its schema, in the converted description


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    template: str  # as GitHub writes it, e.g. "/repos/{owner}/{repo}/issues/{issue_number}"
    parameters: tuple[Parameter, ...]
    body: str | None  # pointer to the JSON request body's schema
    body_required: bool
    responses: dict[str, str | None]  # status ("200", "4XX", "default") -> schema pointer


@dataclass
class RequestCheck:
    """What the contract makes of a request: its operation, if documented, and what is
    wrong with it. ``refusal`` is GitHub's answer to a request it would not carry out
    (``(status, message)``), None if it would (problems GitHub ignores, like a missing
    header, are still violations)."""

    operation: Operation | None
    problems: list[str] = field(default_factory=list)
    refusal: tuple[int, str] | None = None

    def refuse(self, status: int, problem: str, message: str) -> None:
        self.problems.append(problem)
        if self.refusal is None:
            self.refusal = (status, message)


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    rank: tuple[int, ...]  # 0 per literal segment, 1 per parameter: the least is the most specific
    template: str
    operations: dict[str, Operation]  # by upper-case method


_cache: dict[Path, Contract] = {}
_cache_lock = threading.Lock()


class Contract:
    """One OpenAPI description, ready to check requests and answers against."""

    def __init__(self, description: dict[str, Any], name: str) -> None:
        import jsonschema_rs  # the test extra's; see the module's docstring

        self.name = name
        converted = {
            "paths": _json_schema(description["paths"]),
            "components": _json_schema(description["components"]),
        }
        self._description = converted
        for pointer, (replacement, _why) in DESCRIPTION_BUGS.items():
            parent, _, key = pointer.rpartition("/")
            with contextlib.suppress(KeyError, TypeError):  # not in this description
                self._at(parent)[key] = {"$ref": f"#{replacement}"}
        self._registry = jsonschema_rs.Registry([(_URI, converted)], draft=jsonschema_rs.Draft4)
        self._validators: dict[str, Callable[[Any], list[str]]] = {}
        self._lock = threading.Lock()
        self._strict: dict[int, list[_Route]] = {}  # by segment count
        self._loose: list[_Route] = []  # the routes with a SLASHED parameter
        for template, item in converted["paths"].items():
            self._add_route(template, item)

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """The contract of the description at ``path``, loaded once per process."""
        key = Path(path).resolve()
        with _cache_lock:
            if key not in _cache:
                _cache[key] = cls(orjson.loads(key.read_bytes()), key.name)
            return _cache[key]

    # == the description ================================================================

    def _add_route(self, template: str, item: dict[str, Any]) -> None:
        shared = item.get("parameters", [])
        operations = {}
        for method in _METHODS:
            if method in item:
                operations[method.upper()] = self._operation(template, method, item, shared)
        segments = template.strip("/").split("/")
        rank = tuple(1 if "{" in s else 0 for s in segments)
        strict = re.compile(_template_regex(template, loose=False))
        self._strict.setdefault(len(segments), []).append(
            _Route(strict, rank, template, operations)
        )
        if any(f"{{{name}}}" in template for name in SLASHED):
            loose = re.compile(_template_regex(template, loose=True))
            self._loose.append(_Route(loose, rank, template, operations))

    def _operation(
        self, template: str, method: str, item: dict[str, Any], shared: list[Any]
    ) -> Operation:
        op = item[method]
        base = f"/paths/{_escape(template)}"
        params: dict[tuple[str, str], Parameter] = {}
        for where, raw_list in (
            (f"{base}/parameters", shared),
            (f"{base}/{method}/parameters", op.get("parameters", [])),
        ):
            for index, raw in enumerate(raw_list):
                pointer = f"{where}/{index}"
                if "$ref" in raw:
                    pointer = raw["$ref"].removeprefix("#")
                    raw = self._at(pointer)
                if raw["in"] not in ("path", "query"):
                    continue  # headers and cookies: none that ghapp sends are described
                params[(raw["in"], raw["name"])] = Parameter(
                    raw["name"],
                    raw["in"],
                    bool(raw.get("required")),
                    raw.get("schema", {}),
                    f"{pointer}/schema",
                )
        body: str | None = None
        body_required = False
        request_body = op.get("requestBody")
        if request_body is not None:
            pointer = f"{base}/{method}/requestBody"
            if "$ref" in request_body:
                pointer = request_body["$ref"].removeprefix("#")
                request_body = self._at(pointer)
            body_required = bool(request_body.get("required"))
            if "application/json" in request_body.get("content", {}):
                body = f"{pointer}/content/application~1json/schema"
        responses: dict[str, str | None] = {}
        for status, response in op.get("responses", {}).items():
            pointer = f"{base}/{method}/responses/{status}"
            if "$ref" in response:
                pointer = response["$ref"].removeprefix("#")
                response = self._at(pointer)
            content = response.get("content", {})
            json_type = next((t for t in content if t.endswith("json")), None)
            schema = f"{pointer}/content/{_escape(json_type)}/schema" if json_type else None
            responses[status] = schema if json_type and "schema" in content[json_type] else None
        return Operation(
            op["operationId"],
            method.upper(),
            template,
            tuple(params.values()),
            body,
            body_required,
            responses,
        )

    def _at(self, pointer: str) -> Any:
        node: Any = self._description
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _validator(self, pointer: str) -> Callable[[Any], list[str]]:
        """A compiled check of a value against the schema at ``pointer``: its problems."""
        with self._lock:
            check = self._validators.get(pointer)
            if check is None:
                import jsonschema_rs

                compiled = jsonschema_rs.Draft4Validator(
                    {"$ref": f"{_URI}#{quote(pointer, safe='/~')}"},
                    registry=self._registry,
                    validate_formats=True,
                )

                def check(value: Any) -> list[str]:
                    return [m for error in compiled.iter_errors(value) for m in _messages(error)]

                self._validators[pointer] = check
            return check

    # == requests =======================================================================

    def find(self, method: str, path: str) -> tuple[Operation | None, str]:
        """The operation for a request, or None and why not."""
        _, operation, why = self._locate(method, path)
        return operation, why

    def _locate(self, method: str, path: str) -> tuple[re.Match[str] | None, Operation | None, str]:
        route = self._route(path)
        if route is None:
            return None, None, f"{path} is not a path GitHub's {self.name} describes"
        operation = route.operations.get(method)
        if operation is None:
            return None, None, f"{method} is not described for {route.template}"
        return route.pattern.fullmatch(path), operation, ""

    def _route(self, path: str) -> _Route | None:
        candidates = self._strict.get(len(path.strip("/").split("/")), [])
        found = [r for r in candidates if r.pattern.fullmatch(path)]
        if not found:
            found = [r for r in self._loose if r.pattern.fullmatch(path)]
        return min(found, key=lambda r: r.rank) if found else None

    def check_request(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: dict[str, str],
        body: Any,
        *,
        unparsable: bool = False,
    ) -> RequestCheck:
        """Check one request (``headers`` with lower-case names, ``body`` parsed JSON or
        None if there was none or, ``unparsable``, it was not JSON) against the
        description."""
        values, operation, why = self._locate(method, path)
        result = RequestCheck(operation)
        _check_headers(headers, result.problems)
        if operation is None or values is None:
            result.refuse(404, why, "Not Found")
            return result
        query_values: dict[str, list[str]] = {}
        for name, value in query:
            query_values.setdefault(name, []).append(value)
        known = set()
        for param in operation.parameters:
            if param.location == "path":
                self._check_path_parameter(param, values.group(_group(param.name)), result)
            else:
                known.add(param.name)
                self._check_query_parameter(param, query_values.get(param.name), result)
        for name in sorted(set(query_values) - known):
            # GitHub ignores it: the call does not do what its author thinks.
            result.problems.append(f"query parameter {name!r} is not described")
        if unparsable:
            result.refuse(400, "the body is not JSON", "Problems parsing JSON")
        else:
            self._check_body(operation, body, result)
        return result

    def _check_path_parameter(self, param: Parameter, raw: str, result: RequestCheck) -> None:
        if not self._parameter_fits(param, [raw]):
            result.refuse(
                404, f"path parameter {param.name}={raw!r} is not {_kind(param)}", "Not Found"
            )

    def _check_query_parameter(
        self, param: Parameter, raw: list[str] | None, result: RequestCheck
    ) -> None:
        if raw is None:
            if param.required:
                problem = f"query parameter {param.name!r} is required"
                result.refuse(422, problem, f"Invalid request.\n\n{problem}")
            return
        if not self._parameter_fits(param, raw):
            problem = f"query parameter {param.name}={','.join(raw)!r} is not {_kind(param)}"
            result.refuse(422, problem, f"Invalid request.\n\n{problem}")

    def _parameter_fits(self, param: Parameter, raw: list[str]) -> bool:
        """Whether the text of a parameter is one of the values its schema allows."""
        check = self._validator(param.pointer)
        if param.schema.get("type") == "array":
            return not check([_cast(v, param.schema.get("items", {})) for v in raw])
        if len(raw) > 1:
            return False
        return any(not check(value) for value in _readings(raw[0], param.schema))

    def _check_body(self, operation: Operation, body: Any, result: RequestCheck) -> None:
        if body is None:
            if operation.body_required:
                result.refuse(422, "a request body is required", "Invalid request.\n\nNo body.")
            return
        if operation.body is None:
            result.problems.append("the operation takes no request body")
            return
        problems = self._validator(operation.body)(body)
        if problems:
            result.refuse(422, f"body {problems[0]}", "Invalid request.\n\n" + "\n".join(problems))

    # == answers ========================================================================

    def check_response(self, operation: Operation, status: int, body: bytes) -> list[str]:
        """What is wrong with an answer the stand-in gave to a described request."""
        key = str(status)
        if key not in operation.responses:
            if status >= 400:
                return []  # GitHub may always answer 401, 403, 404, 5xx…
            return [f"status {status} is not described for {operation.operation_id}"]
        pointer = operation.responses[key]
        if pointer is None:
            return [] if not body else [f"status {status} is described without a body"]
        if not body:
            return [f"status {status} is described with a body, none was sent"]
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ["the body is not JSON"]
        return self._validator(pointer)(value)


def _check_headers(headers: dict[str, str], problems: list[str]) -> None:
    """The headers GitHub documents for every REST call (it answers without them too)."""
    accept = headers.get("accept", "")
    if not GITHUB_MEDIA_TYPE.search(accept):
        problems.append(f"Accept {accept!r} names no application/vnd.github media type")
    version = headers.get("x-github-api-version")
    if version is None:
        problems.append("no X-GitHub-Api-Version header")
    elif not API_VERSION.fullmatch(version):
        problems.append(f"X-GitHub-Api-Version {version!r} is not a version date")


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schemas as JSON Schema draft 4: ``nullable: true`` becomes ``null``
    among the allowed types (and values, for an ``enum``)."""
    if isinstance(node, list):
        return [_json_schema(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items()}
    if out.get("nullable") is True:
        del out["nullable"]
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif any(key in out for key in ("oneOf", "anyOf", "allOf", "$ref")):
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _template_regex(template: str, *, loose: bool) -> str:
    """A path template as a regex; ``loose``: the parameters of :data:`SLASHED` may take
    slashes."""

    def parameter(name: str) -> str:
        return f"(?P<{_group(name)}>{'.+' if loose and name in SLASHED else '[^/]+'})"

    parts = re.split(r"(\{[^}]+\})", template)
    return "".join(parameter(p[1:-1]) if p.startswith("{") else re.escape(p) for p in parts)


def _messages(error: Any) -> list[str]:
    """An error's messages; for a value none of ``oneOf``/``anyOf``'s schemas take, those of
    the schema it came closest to (the fewest errors), not "valid under none"."""
    branches = getattr(error.kind, "context", None)
    if branches:
        # A schema of another type altogether (null, for a nullable object) is no guide.
        same_type = [
            branch
            for branch in branches
            if not any(
                type(sub.kind).__name__ == "Type" and sub.instance_path == error.instance_path
                for sub in branch
            )
        ]
        closest = min(same_type or branches, key=len)
        return [m for sub in closest for m in _messages(sub)]
    message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    return [f"{_json_path(error.instance_path)}: {message}"]


def _json_path(parts: Iterable[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _kind(param: Parameter) -> str:
    schema = param.schema
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    kind = str(schema.get("type") or "value of the described form")
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _cast(raw: str, schema: dict[str, Any]) -> Any:
    """A parameter's text as the type its schema names (unchanged if it does not read)."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if kind == "number" and re.fullmatch(r"-?\d+(\.\d+)?", raw):
        return float(raw)
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _readings(raw: str, schema: dict[str, Any]) -> list[Any]:
    """The values a parameter's text may stand for: typed per the schema, or, for a schema
    of several types (``anyOf``…), each reading."""
    if "type" in schema:
        return [_cast(raw, schema)]
    return [raw, *(_cast(raw, {"type": t}) for t in ("integer", "number", "boolean"))]
