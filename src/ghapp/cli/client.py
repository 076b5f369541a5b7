"""A small synchronous client of ghapp's REST API for the ``ghapp schedule …`` commands.

Where the server is: ``--url`` or ``GHAPP_URL`` [http://127.0.0.1:8000]; the API token:
``--token`` or ``GHAPP_TOKEN``. Whatever goes wrong (a refusal, an unknown id, a server that
is not there) ends as one line on stderr naming the command, and exit code 1; a mistake in
how the command was called is exit code 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import typer

from ghapp.cli.output import fail

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_SECONDS = 30.0
SERVER_FAILED = 1  # the server refused, or could not be reached
NOT_REACHABLE = "the server at {url} is not reachable ({why}): is `ghapp serve` running there?"
NO_TOKEN = "GHAPP_TOKEN is not set: the API needs a token (`ghapp token create NAME --admin`)"  # noqa: S105
BAD_TOKEN = "GHAPP_TOKEN was refused: {error} (`ghapp token list` shows the live tokens)"  # noqa: S105
BAD_URL = "the server URL {url!r} (--url, GHAPP_URL) is not an http:// or https:// URL"
NO_ROUTE = "the server at {url} has no {path} (is it an older ghapp?)"


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to authenticate; kept on the click context by the group."""

    url: str = DEFAULT_URL
    token: str | None = None


def command_name(ctx: typer.Context) -> str:
    """The running command as the user typed it, without the program's name."""
    names: list[str] = []
    context: Any = ctx
    while context is not None and context.parent is not None:
        names.append(context.info_name or "")
        context = context.parent
    return " ".join(reversed(names)) or (ctx.info_name or "ghapp")


class ApiClient:
    """``get`` / ``post`` / ``patch`` / ``delete`` returning the decoded JSON (or None)."""

    def __init__(self, connection: Connection, command: str) -> None:
        self.command = command
        self.url = connection.url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            fail(self.command, BAD_URL.format(url=connection.url), code=2)
        self.has_token = bool(connection.token)
        headers = {"Accept": "application/json", "User-Agent": "ghapp-cli"}
        if connection.token:
            headers["Authorization"] = f"Bearer {connection.token}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_SECONDS)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.request(method, path, params=query, json=body)
        except httpx.ConnectError as exc:
            self._fail(NOT_REACHABLE.format(url=self.url, why=_reason(exc, "connection refused")))
        except httpx.TimeoutException:
            why = f"no answer within {TIMEOUT_SECONDS:g} s"
            self._fail(NOT_REACHABLE.format(url=self.url, why=why))
        except httpx.HTTPError as exc:
            self._fail(NOT_REACHABLE.format(url=self.url, why=_reason(exc, type(exc).__name__)))
        if response.status_code >= 400:
            self._fail(self._refusal(response, path))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            self._fail(f"the server at {self.url} answered {path} with something other than JSON")

    def _refusal(self, response: httpx.Response, path: str) -> str:
        error, detail = _problem(response)
        if response.status_code == 401:
            return BAD_TOKEN.format(error=error) if self.has_token else NO_TOKEN
        if response.status_code in (404, 405) and error in ("Not Found", "Method Not Allowed"):
            return NO_ROUTE.format(url=self.url, path=path)  # Starlette's answer, not the API's
        if detail:
            return "; ".join(_detail_line(item) for item in detail)
        return error

    def _fail(self, message: str) -> NoReturn:
        fail(self.command, one_line(message), code=SERVER_FAILED)


def _problem(response: httpx.Response) -> tuple[str, list[Any]]:
    """The API's ``{"error": ..., "detail": [...]}``, or what else the server said."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        detail = data.get("detail")
        return data["error"], detail if isinstance(detail, list) else []
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return f"the server answered {response.status_code} {response.reason_phrase} {text}".strip(), []


def _detail_line(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    field, reason = item.get("field"), item.get("reason", "invalid")
    return f"{field}: {reason}" if field else str(reason)


def _reason(exc: Exception, fallback: str) -> str:
    text = str(exc).strip()
    if "refused" in text.lower() or not text:
        return fallback
    return one_line(text)


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def dump_json(data: Any) -> None:
    """``--json``: the server's answer as is, for scripts."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
