"""Signing in to the dashboard: a signed session cookie that names a token, never holds it.

The cookie carries which token signed in (``admin`` or an API token's id), when the session
ends and the session's CSRF token, signed with HMAC-SHA256 under a key derived from the
server's secret key (or its admin token). Each request looks the token up again, so a
revoked token, or a changed admin token, ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlmodel import col

from ghapp.db.core import dialect_insert
from ghapp.db.models import ApiToken, SignedOutSession, table_of
from ghapp.tokens import Principal, hash_token, principal_for_token

if TYPE_CHECKING:
    from ghapp.runtime import AppState
    from ghapp.settings import Settings

SESSION_COOKIE = "ghapp_session"
LOGIN_COOKIE = "ghapp_login"  # the sign-in form's CSRF token, before there is a session
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CONTEXT = b"ghapp dashboard session v1"


@dataclass(frozen=True)
class DashboardSession:
    who: str  # "admin" or "token"
    token_id: int | None
    expires: int  # unix time
    csrf: str
    admin_mark: str | None = None  # which admin token signed in (a digest of its hash)

    def to_dict(self) -> dict[str, Any]:
        return {
            "w": self.who,
            "t": self.token_id,
            "e": self.expires,
            "c": self.csrf,
            "a": self.admin_mark,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DashboardSession | None:
        if not isinstance(data, dict):
            return None
        who, token_id, expires, csrf = data.get("w"), data.get("t"), data.get("e"), data.get("c")
        if who not in ("admin", "token") or not isinstance(expires, int):
            return None
        if not isinstance(csrf, str) or len(csrf) < 16:
            return None
        if who == "token" and not isinstance(token_id, int):
            return None
        mark = data.get("a")
        return cls(who, token_id, expires, csrf, mark if isinstance(mark, str) else None)


class Signer:
    """HMAC-SHA256 over a small JSON document, both base64url-encoded."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_settings(cls, settings: Settings, fallback: bytes) -> Signer:
        material = _key_material(settings)
        key = hmac.new(material or fallback, _CONTEXT, hashlib.sha256).digest()
        return cls(key)

    def dumps(self, data: Any) -> str:
        body = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def loads(self, value: str | None) -> Any:
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            return json.loads(_unb64(body))
        except ValueError:
            return None

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def _key_material(settings: Settings) -> bytes | None:
    for secret in (settings.secret_key, settings.admin_token):
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value().encode()
    if settings.webhook_secrets:
        return settings.webhook_secrets[0].encode()
    return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def admin_mark(settings: Settings) -> str | None:
    """Names the configured admin token without revealing it: a digest of its digest."""
    if settings.admin_token is None:
        return None
    digest = hash_token(settings.admin_token.get_secret_value())
    return hashlib.sha256(b"ghapp admin mark:" + digest.encode()).hexdigest()[:32]


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def sign_in(state: AppState, token: str, now: float | None = None) -> DashboardSession | None:
    """Check ``token`` exactly as the API does; a new session for it, or None."""
    token = token.strip()
    if not token or len(token) > 1000:
        return None
    principal = await principal_for_token(state, token)
    if principal is None:
        return None
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    if principal.token_id is None:  # the bootstrap admin token
        return DashboardSession("admin", None, expires, new_csrf(), admin_mark(state.settings))
    return DashboardSession("token", principal.token_id, expires, new_csrf())


def session_hash(session: DashboardSession) -> str:
    """Names one session: its CSRF token is random per sign-in and never leaves the cookie
    and the pages of that session; only this digest of it is stored."""
    return hashlib.sha256(b"ghapp session:" + session.csrf.encode()).hexdigest()


async def sign_out(state: AppState, session: DashboardSession) -> None:
    """End ``session`` on the server: a copy of its cookie is refused from now on."""
    now = state.clock.now()
    expires = datetime.fromtimestamp(session.expires, UTC)
    table = table_of(SignedOutSession)
    async with state.db.write() as conn:
        # Entries past their expiry are no longer needed.
        await conn.execute(delete(table).where(col(SignedOutSession.expires_at) < now))
        if expires > now:
            row = {"session_hash": session_hash(session), "expires_at": expires}
            await conn.execute(dialect_insert(conn, table).values(**row).on_conflict_do_nothing())


async def signed_out(state: AppState, session: DashboardSession) -> bool:
    async with state.db.read() as conn:
        found = await conn.scalar(
            select(col(SignedOutSession.session_hash)).where(
                col(SignedOutSession.session_hash) == session_hash(session)
            )
        )
    return found is not None


async def principal_of(state: AppState, session: DashboardSession) -> Principal | None:
    """Who the session's token is now; None when it was revoked or changed, or the session
    was signed out."""
    if await signed_out(state, session):
        return None
    if session.who == "admin":
        mark = admin_mark(state.settings)
        if mark is None or session.admin_mark is None:
            return None
        if not hmac.compare_digest(mark, session.admin_mark):
            return None
        return Principal(name="admin", is_admin=True)
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    col(ApiToken.id),
                    col(ApiToken.name),
                    col(ApiToken.is_admin),
                    col(ApiToken.repos),
                ).where(col(ApiToken.id) == session.token_id, col(ApiToken.revoked_at).is_(None))
            )
        ).first()
    if row is None:
        return None
    return Principal(
        name=row.name,
        is_admin=row.is_admin,
        repos=frozenset(name.lower() for name in row.repos),
        token_id=row.id,
    )
