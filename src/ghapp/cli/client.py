"""A small synchronous client of ghapp's REST API for the ``ghapp schedule …`` commands.

Where the server is and the token: :mod:`ghapp.cli.connection`. Whatever goes wrong (a
refusal, an unknown id, a server that is not there) ends as one line on stderr naming the
command, and exit code 1; a mistake in how the command was called is exit code 2. A field
the server refuses is named as the option the user typed (``--cron``, not
``cronExpression``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

from ghapp.cli.connection import Connection
from ghapp.cli.output import fail, one_line

TIMEOUT_SECONDS = 30.0
SERVER_FAILED = 1  # the server refused, or could not be reached
NOT_REACHABLE = "the server at {url} is not reachable ({why}): is `ghapp serve` running there?"
NO_TOKEN = "GHAPP_TOKEN is not set: the API needs a token (`ghapp token create NAME --admin`)"  # noqa: S105
BAD_TOKEN = "GHAPP_TOKEN was refused: {error} (`ghapp token list` shows the live tokens)"  # noqa: S105
BAD_URL = "the server URL {url!r} (--url, GHAPP_URL) is not an http:// or https:// URL"
NO_ROUTE = "the server at {url} has no {path} (is it an older ghapp?)"
# The API's field names, as the options of the commands that send them.
FIELD_OPTIONS = {
    "name": "--name",
    "taskType": "--type",
    "scheduleType": "--cron/--interval/--manual",
    "cronExpression": "--cron",
    "intervalMinutes": "--interval",
    "repo": "--repo",
    "repoId": "--repo",
    "commandId": "--command",
    "customPrompt": "--prompt",
    "targetType": "--target",
    "filterQuery": "--filter",
    "timezone": "--timezone",
    "checks": "--checks",
    "webhookIds": "--notifier",
    "notifierIds": "--notifier",
    "thresholdValue": "--score",
    "webhookType": "--type",
    "webhookUrl": "--url",
    "recipients": "--to",
    "secret": "--secret",
    "eventTypes": "--events",
}


def option_for(field: str, own: dict[str, str] | None = None) -> str:
    """``cronExpression`` → ``--cron``; ``recipients.0`` → ``--to``; others as they are.

    ``own``: a command's own names, before the table's (``edit`` says ``--add-notifier``).
    """
    head, _, rest = field.partition(".")
    option = (own or {}).get(head) or FIELD_OPTIONS.get(head)
    if option is None:
        return field
    return option if not rest or rest.isdigit() else f"{option} ({rest})"


@dataclass(frozen=True)
class Response:
    status_code: int
    reason_phrase: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class ApiClient:
    """``get`` / ``post`` / ``patch`` / ``delete`` returning the decoded JSON (or None).

    On the standard library's ``http.client``: httpx would add a quarter of a second to every
    command's start for a few JSON requests.
    """

    def __init__(
        self, connection: Connection, command: str, options: dict[str, str] | None = None
    ) -> None:
        self.command = command
        self.options = options  # the command's own names for API fields (see option_for)
        self.url = connection.url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            fail(self.command, BAD_URL.format(url=connection.url), code=2)
        self.has_token = bool(connection.token)
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "ghapp-cli"}
        if connection.token:
            self.headers["Authorization"] = f"Bearer {connection.token}"
        self.http = _connection(parts.scheme, parts.hostname, parts.port)

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
        query = urlencode({k: _query_value(v) for k, v in (params or {}).items() if v is not None})
        target = self.prefix + path + (f"?{query}" if query else "")
        response = self._send(method, target, body)
        if response.status_code >= 400:
            self._fail(self._refusal(response, path))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            self._fail(f"the server at {self.url} answered {path} with something other than JSON")

    def _send(self, method: str, target: str, body: Any) -> Response:
        headers = dict(self.headers)
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.http.request(method, target, body=content, headers=headers)
            answer = self.http.getresponse()
            response = Response(answer.status, answer.reason, answer.read())
            # A fresh connection per request: a kept-alive one may be closed by the server
            # between a command's requests (run --wait polls for minutes).
            self.http.close()
            return response
        except TimeoutError:
            why = f"no answer within {TIMEOUT_SECONDS:g} s"
            self._fail(NOT_REACHABLE.format(url=self.url, why=why))
        except ConnectionRefusedError:
            self._fail(NOT_REACHABLE.format(url=self.url, why="connection refused"))
        except (OSError, HTTPException) as exc:
            self.http.close()
            self._fail(NOT_REACHABLE.format(url=self.url, why=_reason(exc, type(exc).__name__)))

    def _refusal(self, response: Response, path: str) -> str:
        error, detail = _problem(response)
        if response.status_code == 401:
            return BAD_TOKEN.format(error=error) if self.has_token else NO_TOKEN
        if response.status_code in (404, 405) and error in ("Not Found", "Method Not Allowed"):
            return NO_ROUTE.format(url=self.url, path=path)  # Starlette's answer, not the API's
        if detail:
            return "; ".join(_detail_line(item, self.options) for item in detail)
        return error

    def _fail(self, message: str) -> NoReturn:
        fail(self.command, one_line(message), code=SERVER_FAILED)


def _connection(scheme: str, host: str, port: int | None) -> HTTPConnection:
    if scheme == "https":
        import ssl

        context = ssl.create_default_context()
        return HTTPSConnection(host, port, timeout=TIMEOUT_SECONDS, context=context)
    return HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)


def _problem(response: Response) -> tuple[str, list[Any]]:
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


def _detail_line(item: Any, options: dict[str, str] | None) -> str:
    if not isinstance(item, dict):
        return str(item)
    field, reason = item.get("field"), item.get("reason", "invalid")
    return f"{option_for(str(field), options)}: {reason}" if field else str(reason)


def _reason(exc: Exception, fallback: str) -> str:
    text = str(exc).strip()
    if "refused" in text.lower() or not text:
        return fallback
    return one_line(text)


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
