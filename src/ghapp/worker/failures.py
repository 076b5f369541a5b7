"""What a run or a session records when something goes wrong, and whether trying again
later could help."""

from __future__ import annotations

import logging

import httpx
from gidgethub import BadRequest, GitHubBroken, RateLimitExceeded

from ghapp.db.errors import describe, is_database_trouble
from ghapp.github.transport import RateLimited
from ghapp.worker.checkout import CheckoutError

log = logging.getLogger("ghapp.worker")

GITHUB_TROUBLE = (GitHubBroken, RateLimitExceeded, RateLimited, httpx.TransportError)


def transient(exc: BaseException) -> bool:
    """GitHub or database trouble: another try, later, may not meet it."""
    return isinstance(exc, GITHUB_TROUBLE) or is_database_trouble(exc)


def failure_reason(exc: Exception) -> str:
    """What a run or session records when ``exc`` ended it: readable, one line. Errors
    nobody expected are logged with their traceback (they are bugs to fix)."""
    if not isinstance(exc, BadRequest | CheckoutError | LookupError | OSError):
        log.exception("unexpected error", extra={"error": describe(exc)})
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:1000]
