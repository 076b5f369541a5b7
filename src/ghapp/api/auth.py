"""Who is calling an API route: the bearer token, and the checks routes make with it.

Tokens themselves (hashing, lookup, scope) live in :mod:`ghapp.tokens`; here is the HTTP
side: the ``Authorization`` header, ``401``/``429`` answers, and refusals as API errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghapp.api.errors import ApiError
from ghapp.throttle import Throttled, client_of
from ghapp.tokens import Principal, principal_for_token

if TYPE_CHECKING:
    from starlette.requests import Request

    from ghapp.db import Database
    from ghapp.runtime import AppState

NEEDS_ADMIN = "this needs an admin token"
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="ghapp"'}


async def authenticate(request: Request, state: AppState) -> Principal:
    """The caller of an API request, from its bearer token. A client that keeps sending
    wrong tokens is answered 429 for a while (:mod:`ghapp.throttle`)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "an API token is required (Authorization: Bearer …)", headers=UNAUTHORIZED
        )
    client = client_of(request)
    try:
        state.throttle.check(client)
    except Throttled as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    principal = await principal_for_token(state, token)
    if principal is None:
        state.throttle.failed(client)
        raise ApiError(401, "unknown or revoked API token", headers=UNAUTHORIZED)
    return principal


async def check_repo(
    who: Principal, db: Database, repo_id: int | None, missing: str = "not found"
) -> None:
    """404 unless ``who`` may act on ``repo_id`` (None: installation-wide, admin only): a
    tenant is told exactly what it would be told if the thing did not exist."""
    if not await who.sees(db, repo_id):
        raise ApiError(404, missing)


def require_admin(who: Principal, why: str = "") -> None:
    if not who.is_admin:
        raise ApiError(403, f"{why}: {NEEDS_ADMIN}" if why else NEEDS_ADMIN)
