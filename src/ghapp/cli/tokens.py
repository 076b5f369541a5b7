"""``ghapp token …``: API tokens, managed on the database directly (like ``ghapp db upgrade``).

A token is shown once, by ``create``; the database keeps only its SHA-256, so ``list``
shows a prefix to recognise it by and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ghapp.cli.output import dump_json, err, fail, one_line
from ghapp.cli.tables import Col, say, show_table, when, yes_no

if TYPE_CHECKING:
    from ghapp.db import Database

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
    rich_markup_mode=None,
)


def on_database(command: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """Prepare the database as ``ghapp serve`` does, then run ``work`` on it."""
    import asyncio

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from ghapp.cli.main import _prepare
    from ghapp.settings import Settings

    settings = Settings()
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        for note in _prepare(settings, command=command)[:-1]:  # the last: the revision
            err.print(f"[bold]ghapp:[/] {note}")
        return asyncio.run(_with_database(settings.database_url, work))
    except (OSError, SQLAlchemyError) as exc:
        fail(command, NO_DATABASE.format(url=url, reason=one_line(str(exc))[:300]), code=1)


async def _with_database(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    from ghapp.db import Database

    db = Database(url)
    try:
        return await work(db)
    finally:
        await db.dispose()


@token_app.command()
def create(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="What the token is for, e.g. ci or alice.", show_default=False
        ),
    ],
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo", metavar="OWNER/NAME", help="owner/name it may act on (repeat for several)."
        ),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May act on everything.")] = False,
) -> None:
    """Create a token and print it (once: only its hash is kept)."""

    from ghapp.tokens import create_token

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
    from ghapp.tokens import list_tokens

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
        (
            Col("ID", key=True),
            Col("Name", min_width=10),
            Col("Prefix", key=True),
            Col("Admin", key=True),
            Col("Repos", min_width=12),
            Col("Created", key=True, wide=True),
            Col("Last used", key=True, wide=True),
            Col("Revoked", key=True),
        ),
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

    from ghapp.tokens import revoke_token

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
