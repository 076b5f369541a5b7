"""GitHub's rate limits and hiccups, handled once, below gidgethub.

An httpx transport that retries what GitHub asks to be retried, so every call site gets
the same behaviour:

* ``429`` and secondary-limit ``403``: wait ``Retry-After`` (or a minute if absent);
* primary-limit ``403`` (``x-ratelimit-remaining: 0``): wait until ``x-ratelimit-reset``,
  if that is within ``max_wait``; otherwise give up and let the caller report it;
* ``5xx`` and network errors: exponential backoff with full jitter;
* mutating calls (``POST``/``PATCH``/``PUT``/``DELETE``) are serialised per client — one
  client per installation — as GitHub recommends to stay clear of secondary limits.

A ``POST`` that creates something (a comment, an issue, a pull request) is not repeated
after an *ambiguous* failure: a ``5xx``, a timeout or a connection lost after the request
was sent. GitHub, or a gateway in front of it, may have applied it and failed to say so, and
repeating it would post a second comment. Such a failure goes back to the caller, which
looks for what it meant to create (by its hidden marker) before trying again. A ``POST``
refused outright (a rate limit, a connection never made) is repeated as usual, and so are
the ``POST`` s that GitHub makes idempotent (reactions, labels, statuses, tokens).

Waiting goes through the injectable clock, so tests exercise every path without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from ghapp.clock import Clock

log = logging.getLogger("ghapp.github")

MUTATING = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# POSTs that may be sent twice with no harm: GitHub answers the second with what exists.
REPEATABLE_POSTS = re.compile(
    r"/app/installations/\d+/access_tokens$"
    r"|/reactions$"
    r"|/repos/[^/]+/[^/]+/issues/\d+/labels$"
    r"|/repos/[^/]+/[^/]+/statuses/[^/]+$"
)
# Failures that prove the request never reached GitHub: safe to send again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    base_delay: float = 0.5  # seconds; doubled per attempt, full jitter
    max_delay: float = 30.0
    max_wait: float = 300.0  # longest rate-limit wait we accept before failing


class RateLimited(httpx.HTTPError):
    """GitHub's limit resets too far in the future to wait for."""


class RetryTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        clock: Clock,
        policy: RetryPolicy | None = None,
        *,
        jitter: Callable[[float], float] | None = None,
        on_response: Callable[[httpx.Response], None] | None = None,
    ) -> None:
        self.inner = inner
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.jitter = jitter or (lambda cap: random.uniform(0, cap))
        self.on_response = on_response
        self._mutations = asyncio.Lock()
        self._never = asyncio.Event()  # sleeping is never cut short

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in MUTATING:
            async with self._mutations:
                return await self._with_retries(request)
        return await self._with_retries(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _with_retries(self, request: httpx.Request) -> httpx.Response:
        repeatable = _repeatable(request)
        for attempt in range(1, self.policy.attempts + 1):
            last = attempt == self.policy.attempts
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                if last or not (repeatable or isinstance(exc, NOT_SENT)):
                    raise
                await self._backoff(request, attempt, f"{type(exc).__name__}")
                continue
            if self.on_response is not None:
                self.on_response(response)
            if response.status_code >= 400:
                await response.aread()  # small error bodies say which limit was hit
            wait = self._wait_for(response, attempt)
            if response.status_code >= 500 and not repeatable:
                wait = None  # maybe applied: the caller looks before it tries again
            if wait is None or last:
                return response
            await response.aclose()
            await self._sleep(request, wait, f"HTTP {response.status_code}")
        raise AssertionError("unreachable")

    def _wait_for(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before retrying this response; None: do not retry."""
        status = response.status_code
        if status == 429 or (status == 403 and _secondary_limit(response)):
            return _retry_after(response) or 60.0
        if status == 403 and response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset")
            if not reset or not (reset.isascii() and reset.isdigit()):
                return None
            until = datetime.fromtimestamp(int(reset), UTC) - self.clock.now()
            wait = max(1.0, until.total_seconds() + 1)
            if wait > self.policy.max_wait:
                raise RateLimited(f"GitHub rate limit resets in {int(wait)} s")
            return wait
        if status >= 500:
            return self._backoff_delay(attempt)
        return None

    def _backoff_delay(self, attempt: int) -> float:
        cap = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
        return self.jitter(cap)

    async def _backoff(self, request: httpx.Request, attempt: int, reason: str) -> None:
        await self._sleep(request, self._backoff_delay(attempt), reason)

    async def _sleep(self, request: httpx.Request, seconds: float, reason: str) -> None:
        log.warning(
            "github retry",
            extra={
                "method": request.method,
                "path": request.url.path,
                "reason": reason,
                "wait_s": round(seconds, 3),
            },
        )
        await self.clock.sleep_until(self.clock.now() + timedelta(seconds=seconds), self._never)


def _repeatable(request: httpx.Request) -> bool:
    return request.method != "POST" or bool(REPEATABLE_POSTS.search(request.url.path))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if (value.isascii() and value.isdigit()) else None


def _secondary_limit(response: httpx.Response) -> bool:
    if "retry-after" in response.headers:
        return True
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        return False
    return "secondary rate limit" in message.lower()
