"""``ghapp token …``: API tokens, managed on the database directly (like ``ghapp db upgrade``).

A token is shown once, by ``create``; the database keeps only its SHA-256, so ``list``
shows a prefix to recognise it by and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ghapp.cli.client import dump_json, one_line
from ghapp.cli.output import err, fail
from ghapp.cli.tables import say, show_table, when, yes_no
from ghapp.db import Database
from ghapp.settings import Settings
from ghapp.tokens import create_token, list_tokens, revoke_token

T = TypeVar("T")
ACTOR = "cli"
SHOWN_ONCE = (
    "This is the only time the token is shown: store it now (e.g. as GHAPP_TOKEN). "
    "`ghapp token revoke {id}` ends it."
)
NO_DATABASE = "the database {url} is not usable: {reason}"
NO_TOKENS = "no tokens (create one with `ghapp token create NAME --admin`)"

token_app = typer.Typer(
    help="API tokens for the REST API and `ghapp schedule` (stored as hashes).",
    no_args_is_help=True,
)


def on_database(command: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """Prepare the database as ``ghapp serve`` does, then run ``work`` on it."""
    from ghapp.cli.main import _prepare

    settings = Settings()
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        for note in _prepare(settings, command=command)[:-1]:  # the last: the revision
            err.print(f"[bold]ghapp:[/] {note}")
        return asyncio.run(_with_database(settings.database_url, work))
    except (OSError, SQLAlchemyError) as exc:
        fail(command, NO_DATABASE.format(url=url, reason=one_line(str(exc))[:300]), code=1)


async def _with_database(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database(url)
    try:
        return await work(db)
    finally:
        await db.dispose()


@token_app.command()
def create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci or alice.")],
    repo: Annotated[
        list[str] | None,
        typer.Option("--repo", help="owner/name it may act on (repeat for several)."),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May act on everything.")] = False,
) -> None:
    """Create a token and print it (once: only its hash is kept)."""

    async def work(db: Database) -> Any:
        try:
            return await create_token(db, name, list(repo or []), admin, actor=ACTOR)
        except ValueError as exc:
            fail("token create", str(exc), code=2)

    created = on_database("token create", work)
    typer.echo(created.token)
    err.print(SHOWN_ONCE.format(id=created.id), markup=False, highlight=False)


@token_app.command("list")
def list_command(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List tokens: name, prefix, scope, use and revocation (never the token or its hash)."""
    rows = on_database("token list", list_tokens)
    shown = [
        {
            "id": row.id,
            "name": row.name,
            "prefix": row.prefix,
            "admin": row.is_admin,
            "repos": list(row.repos or []),
            "createdAt": _iso(row.created_at),
            "lastUsedAt": _iso(row.last_used_at),
            "revokedAt": _iso(row.revoked_at),
        }
        for row in rows
    ]
    if json_:
        dump_json(shown)
        return
    show_table(
        "API tokens",
        ("ID", "Name", "Prefix", "Admin", "Repos", "Created", "Last used", "Revoked"),
        (
            (
                t["id"],
                t["name"],
                t["prefix"],
                yes_no(t["admin"]),
                ", ".join(t["repos"]),
                when(t["createdAt"]),
                when(t["lastUsedAt"]),
                when(t["revokedAt"]),
            )
            for t in shown
        ),
        NO_TOKENS,
    )


@token_app.command()
def revoke(
    token: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="Token id or name.")],
) -> None:
    """Revoke a token: the API refuses it from now on."""

    async def work(db: Database) -> Any:
        try:
            return await revoke_token(db, token, actor=ACTOR)
        except LookupError as exc:
            fail("token revoke", str(exc), code=1)

    row = on_database("token revoke", work)
    say(f"revoked token {row.id} {row.name!r}")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
