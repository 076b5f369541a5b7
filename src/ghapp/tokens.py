"""API tokens: who a caller is, made, listed and revoked here; used by the API, the dashboard
and the CLI alike.

Tokens are random (256 bits), so a plain SHA-256 of the token is a safe thing to store and to
look up by; the token itself exists only in the answer to ``ghapp token create``. The
bootstrap ``GHAPP_ADMIN_TOKEN`` is compared in constant time. A token limited to some
repositories sees and changes only their jobs, runs, notifiers and audit entries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlmodel import col

from ghapp.access import ADMIN, Scope
from ghapp.db.audit import audit_insert
from ghapp.db.core import inserted_id
from ghapp.db.models import ApiToken, Repository, table_of
from ghapp.db.types import utcnow

if TYPE_CHECKING:
    from ghapp.db import Database
    from ghapp.runtime import AppState

TOKEN_PREFIX = "ghapp_"  # noqa: S105 (a prefix, not a secret)
LAST_USED_EVERY = timedelta(minutes=1)  # a write per request would cost more than the read


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass
class Principal:
    """An authenticated caller."""

    name: str
    is_admin: bool
    repos: frozenset[str] = frozenset()  # lower-case full names, for non-admin tokens
    token_id: int | None = None
    _repo_ids: frozenset[int] | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        return f"token:{self.name}"

    async def repo_ids(self, db: Database) -> frozenset[int]:
        """Ids of the repositories this token may see (resolved once per request)."""
        if self._repo_ids is None:
            if not self.repos:
                self._repo_ids = frozenset()
            else:
                async with db.read() as conn:
                    rows = await conn.execute(
                        select(col(Repository.id)).where(
                            func.lower(col(Repository.full_name)).in_(sorted(self.repos))
                        )
                    )
                    self._repo_ids = frozenset(row[0] for row in rows)
        return self._repo_ids

    async def scope(self, db: Database) -> Scope:
        return ADMIN if self.is_admin else Scope(await self.repo_ids(db))

    async def sees(self, db: Database, repo_id: int | None) -> bool:
        return (await self.scope(db)).sees(repo_id)


async def principal_for_token(state: AppState, token: str) -> Principal | None:
    """Who ``token`` is (the admin token, or a live API token), or None."""
    digest = hash_token(token)
    admin = state.settings.admin_token
    if admin is not None and hmac.compare_digest(digest, hash_token(admin.get_secret_value())):
        return Principal(name="admin", is_admin=True)
    async with state.db.read() as conn:
        row = (
            await conn.execute(
                select(ApiToken).where(
                    col(ApiToken.token_hash) == digest, col(ApiToken.revoked_at).is_(None)
                )
            )
        ).first()
    if row is None:
        return None
    await _note_use(state.db, row)
    return Principal(
        name=row.name,
        is_admin=row.is_admin,
        repos=frozenset(name.lower() for name in row.repos),
        token_id=row.id,
    )


async def _note_use(db: Database, row: Any) -> None:
    now = utcnow()
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_EVERY:
        return
    async with db.write() as conn:
        await conn.execute(
            update(ApiToken).where(col(ApiToken.id) == row.id).values(last_used_at=now)
        )


# -- managing tokens (``ghapp token …``) ---------------------------------------------------


@dataclass(frozen=True)
class CreatedToken:
    id: int
    name: str
    token: str  # shown once


async def create_token(
    db: Database, name: str, repos: list[str], is_admin: bool, actor: str
) -> CreatedToken:
    if not name.strip() or len(name) > 200:
        raise ValueError("a token needs a name of 1 to 200 characters")
    for repo in repos:
        owner, _, rest = repo.partition("/")
        if not owner or not rest or "/" in rest:
            raise ValueError(f"{repo!r} is not a repository name like owner/name")
    if not repos and not is_admin:
        raise ValueError("give at least one --repo, or --admin for a token that sees everything")
    token = new_token()
    now = utcnow()
    async with db.write() as conn:
        result = await conn.execute(
            table_of(ApiToken)
            .insert()
            .values(
                name=name.strip(),
                token_hash=hash_token(token),
                prefix=token[:10],
                is_admin=is_admin,
                repos=repos,
                created_at=now,
            )
        )
        token_id = inserted_id(result)
        after = {"name": name, "repos": repos, "is_admin": is_admin, "prefix": token[:10]}
        await conn.execute(audit_insert(actor, "token.create", "token", token_id, now, after=after))
    return CreatedToken(token_id, name, token)


async def list_tokens(db: Database) -> list[Any]:
    async with db.read() as conn:
        return list((await conn.execute(select(ApiToken).order_by(col(ApiToken.id)))).all())


async def revoke_token(db: Database, ident: str, actor: str) -> Any:
    """Revoke by id or by name; raises LookupError when no live token matches."""
    now = utcnow()
    async with db.write() as conn:
        query = select(ApiToken).where(col(ApiToken.revoked_at).is_(None))
        query = (
            query.where(col(ApiToken.id) == int(ident))
            if (ident.isascii() and ident.isdigit())
            else query.where(col(ApiToken.name) == ident)
        )
        rows = (await conn.execute(query)).all()
        if not rows:
            raise LookupError(f"no active token {ident!r}")
        if len(rows) > 1:
            raise LookupError(f"{len(rows)} active tokens are named {ident!r}: revoke by id")
        row = rows[0]
        await conn.execute(
            update(ApiToken).where(col(ApiToken.id) == row.id).values(revoked_at=now)
        )
        before = {"name": row.name, "revoked_at": None}
        after = {"name": row.name, "revoked_at": now.isoformat()}
        await conn.execute(
            audit_insert(actor, "token.revoke", "token", row.id, now, before=before, after=after)
        )
    return row
