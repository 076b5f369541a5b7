"""API errors: one JSON shape for every refusal, ``{"error": reason, "detail": [...]}``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from starlette.responses import JSONResponse


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        detail: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers


def problem(exc: ApiError) -> JSONResponse:
    content: dict[str, Any] = {"error": exc.message}
    if exc.detail is not None:
        content["detail"] = exc.detail
    return JSONResponse(content, status_code=exc.status, headers=exc.headers)


def details(exc: ValidationError, where: str) -> list[dict[str, str]]:
    """Pydantic's errors as ``field`` (dotted, as the client named it) and ``reason``."""
    out = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        out.append({"field": location or where, "reason": message, "in": where})
    return out


def invalid(field: str, reason: str, where: str = "body") -> ApiError:
    """A ``422`` for one field."""
    return ApiError(422, "invalid input", [{"field": field, "reason": reason, "in": where}])


def camel_field(path: str, renamed: dict[str, str] | None = None) -> str:
    """``threshold.check_cron`` → ``threshold.checkCron``: a field as the camelCase API's
    clients name it."""
    parts = [(renamed or {}).get(part, part) for part in path.split(".")]
    return ".".join(to_camel(part) for part in parts)
