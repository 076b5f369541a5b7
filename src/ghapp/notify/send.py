"""One delivery attempt to one notifier: POST the formatted JSON, note the answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ghapp.notify.formats import format_for
from ghapp.notify.outbound import DestinationRefused

TIMEOUT_S = 10.0
SIGNATURE_HEADER = "X-Ghapp-Signature-256"
EVENT_HEADER = "X-Ghapp-Event"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    response: str | None
    error: str | None
    duration_ms: int
    retryable: bool = False  # worth another try (network error, 5xx, 429, SMTP 4xx)
    retry_after: float | None = None


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_for(
    notifier_type: str, payload: dict[str, Any], secret: str | None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(format_for(notifier_type, payload), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ghapp-notifier"}
    if notifier_type == "generic":
        headers[EVENT_HEADER] = payload["event"]
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
    return body, headers


async def deliver(
    client: httpx.AsyncClient,
    notifier_type: str,
    url: str,
    payload: dict[str, Any],
    secret: str | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Attempt:
    body, headers = request_for(notifier_type, payload, secret)
    started = time.monotonic()
    try:
        answer = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except DestinationRefused as exc:  # will not change by trying again
        return Attempt(False, None, None, f"not sent: {exc}", _ms(started))
    except (httpx.InvalidURL, UnicodeError):  # a host name that cannot be spelt in DNS
        return Attempt(False, None, None, "not sent: the URL's host is not valid", _ms(started))
    except httpx.TimeoutException:
        error = f"no answer within {timeout_s:g} s"
        return Attempt(False, None, None, error, _ms(started), retryable=True)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        return Attempt(False, None, None, error, _ms(started), retryable=True)
    code = answer.status_code
    ok = 200 <= code < 300
    return Attempt(
        ok=ok,
        status_code=code,
        response=answer.text[:500],
        # The standard phrase, not the receiver's: its status line is its own text.
        error=None if ok else f"HTTP {code} {httpx.codes.get_reason_phrase(code)}".strip(),
        duration_ms=_ms(started),
        # Network errors, 5xx and 429 are worth another try; other 4xx are not.
        retryable=not ok and (code >= 500 or code == 429),
        retry_after=_retry_after(answer),
    )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
