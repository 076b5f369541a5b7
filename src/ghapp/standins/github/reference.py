"""openapi-core's own verdict on the stand-in, once per operation and status.

The contract (:mod:`.contract`) checks every request and answer quickly: it finds the
operation and reads path and query parameters with its own code, and checks bodies with
jsonschema-rs. So that this code and GitHub's description cannot drift apart unnoticed,
the first call of each operation answered with each status in a process is also handed to
openapi-core, the maintained OpenAPI validator, which finds the operation, parameters,
body and answer through the whole description itself (about 15 ms a call, too slow for
every one). Whatever it objects to is a violation like any other.

openapi-core is in the test extra only, imported when the first call is confirmed.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import orjson

from ghapp.standins.github.contract import DESCRIPTION_BUGS, SLASHED

_cache: dict[Path, Reference] = {}
_cache_lock = threading.Lock()


class Reference:
    def __init__(self, source: Path) -> None:
        self.source = source
        self._seen: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._api: Any = None
        self._server = ""  # scheme and host of the description's server
        self._base = ""  # and its path, below which the API lives (GHES: /api/v3)

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        key = Path(path).resolve()
        with _cache_lock:
            if key not in _cache:
                _cache[key] = cls(key)
            return _cache[key]

    def first(self, operation_id: str, status: int) -> bool:
        """Whether this is the first call of the operation answered with this status."""
        with self._lock:
            if (operation_id, status) in self._seen:
                return False
            self._seen.add((operation_id, status))
            return True

    def problems(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
        status: int,
        answer: bytes,
        documented: set[str],
        template: str = "",
    ) -> list[str]:
        """openapi-core's objections to one request (``path`` below the API's prefix) and
        the stand-in's answer to it (``documented``: the statuses described for it;
        ``template``: the operation's path as the contract found it)."""
        from openapi_core.testing import MockRequest, MockResponse
        from werkzeug.datastructures import ImmutableMultiDict

        api = self._openapi()
        request = MockRequest(
            self._server,
            method.lower(),
            self._base + path,
            args=ImmutableMultiDict(query),
            headers=headers,
            data=body or None,
            **_slashed(template, path, self._base),
            content_type="application/json",
        )
        found = [f"request: {error}" for error in _errors(api.validate_request, request)]
        if status >= 400 and str(status) not in documented:
            return found  # GitHub may always answer 401, 403, 404, 5xx… (as the contract says)
        response = MockResponse(answer, status_code=status, content_type="application/json")
        found += [
            f"answer {status}: {error}"
            for error in _errors(api.validate_response, request, response)
        ]
        return found

    def _openapi(self) -> Any:
        if self._api is None:
            from openapi_core import Config, OpenAPI

            description = orjson.loads(self.source.read_bytes())
            for pointer, (replacement, _why) in DESCRIPTION_BUGS.items():
                _replace(description, pointer, {"$ref": f"#{replacement}"})
            _as_github_means_it(description)
            server = description["servers"][0]
            url = server["url"]
            for name, variable in server.get("variables", {}).items():
                url = url.replace("{" + name + "}", variable["default"])
            scheme, _, rest = url.partition("://")
            host, _, base = rest.partition("/")
            self._server, self._base = f"{scheme}://{host}", f"/{base}".rstrip("/")
            self._api = OpenAPI.from_dict(description, config=Config(spec_validator_cls=None))
        return self._api


def _errors(validate: Any, *args: Any) -> list[str]:
    try:
        validate(*args)
    except Exception as exc:  # openapi-core's errors carry their causes
        return [_describe(exc)]
    return []


def _describe(exc: BaseException) -> str:
    """The error's kind and what each schema said, without the (long) value itself."""
    messages: list[str] = []
    cause: BaseException | None = exc
    while cause is not None:
        for error in getattr(cause, "schema_errors", None) or ():
            where = "/".join(str(p) for p in getattr(error, "absolute_path", ()))
            messages.append(f"{where or '(top)'}: {error.message}"[:300])
        cause = cause.__cause__
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: " + ("; ".join(messages) if messages else first)


def _slashed(template: str, path: str, base: str) -> dict[str, Any]:
    """openapi-core reads no ``/`` into a path parameter, but GitHub's description has
    some that take one (a file's path, a ref): for those, name the template and the
    values, as a web framework's router would, and let openapi-core check the rest."""
    names = re.findall(r"\{(\w+)\}", template)
    if not SLASHED.intersection(names):
        return {}
    pattern = re.escape(template)
    for name in names:
        part = "(.+)" if name in SLASHED else "([^/]+)"
        pattern = pattern.replace(re.escape("{" + name + "}"), part, 1)
    match = re.fullmatch(pattern, path)
    if match is None:
        return {}
    return {
        "path_pattern": base + template,
        "view_args": dict(zip(names, match.groups(), strict=True)),
    }


def _as_github_means_it(node: Any) -> None:
    """Two idioms of GitHub's description that openapi-core reads by the letter:

    * OpenAPI 3.0.3 lets null through a ``nullable`` enum only if the enum lists it; GitHub
      leaves it out everywhere (``conclusion: null`` of a check run in progress) and means
      null is allowed, as its answers show;
    * a ``oneOf`` whose discriminator maps ``array`` (a folder's contents: a list, or one
      file's object) cannot be discriminated by a property of a list; the alternatives
      themselves tell a list from an object.
    """
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            node["enum"] = [*enum, None]
        if "array" in (node.get("discriminator") or {}).get("mapping", {}):
            del node["discriminator"]
        for value in node.values():
            _as_github_means_it(value)
    elif isinstance(node, list):
        for value in node:
            _as_github_means_it(value)


def _replace(document: dict[str, Any], pointer: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/")]
    node: Any = document
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return  # not in this description
    if isinstance(node, dict) and parts[-1] in node:
        node[parts[-1]] = value
