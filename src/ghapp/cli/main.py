"""The ``ghapp`` command line: server commands here, API commands in their own modules.

``ghapp --help`` and the API commands start in a fraction of a second because nothing heavy is
imported here or by the modules registered below: the server (Starlette, SQLAlchemy,
uvicorn, alembic) is imported inside the commands that run it, httpx only by the commands
that call the server. ``tests/test_cli_startup.py`` holds this.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ghapp.cli import notifiers, schedule, schedule_runs  # noqa: F401 (they register their commands)
from ghapp.cli.connection import ApiToken, ServerUrl
from ghapp.cli.doctor import doctor_command
from ghapp.cli.groups import schedule_app
from ghapp.cli.output import err, escape, fail
from ghapp.cli.receive import receive_command
from ghapp.cli.setup import setup_command
from ghapp.cli.tokens import token_app

if TYPE_CHECKING:
    from ghapp.settings import Settings

app = typer.Typer(
    help="ghapp: a self-hosted GitHub App that runs Claude Code sessions and automation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help as plain text: Rich markup would eat bracketed words (`[GHAPP_…]`), and Rich's
    # help renderer costs a quarter of a second to import.
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
app.command("receive")(receive_command)
app.command("setup")(setup_command)
app.command("doctor")(doctor_command)
app.add_typer(schedule_app, name="schedule")
app.add_typer(token_app, name="token")


@app.callback()
def global_options(server_url: ServerUrl = None, api_token: ApiToken = None) -> None:
    pass  # for `ghapp schedule …`, here too so that they go anywhere; read back by connection


console = err


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(metavar="HOST", help="Address to listen on (default: $GHAPP_HOST)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port to listen on (default: $GHAPP_PORT).")
    ] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve only; run `ghapp worker` elsewhere.")
    ] = False,
    concurrency: Annotated[int, typer.Option(metavar="N", min=1, max=64, help="Worker slots.")] = 4,
) -> None:
    """Run the web app (webhooks, API, dashboard), the scheduler and a worker pool."""
    from ghapp import logs
    from ghapp.server import run_server
    from ghapp.settings import Settings

    settings = Settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    logs.configure(settings.log_level, fmt=settings.log_format)
    for note in _prepare(settings):
        console.print(f"[bold]ghapp:[/] {note}")
    _say_what_is_missing(settings)
    console.print(
        f"[bold]ghapp:[/] serving on http://{settings.host}:{settings.port} "
        f"(webhooks at /webhooks/github)"
    )
    run_server(settings, workers=0 if no_worker else concurrency)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(metavar="N", min=1, max=64, help="Worker slots.")] = 4,
    metrics_port: Annotated[
        int | None,
        typer.Option(metavar="PORT", help="Serve this process's Prometheus metrics on this port."),
    ] = None,
) -> None:
    """Run the scheduler and a worker pool without the web server (scale-out)."""
    import asyncio

    from ghapp import logs
    from ghapp.server import run_worker
    from ghapp.settings import Settings

    settings = Settings()
    logs.configure(settings.log_level, fmt=settings.log_format)
    for note in _prepare(settings):
        console.print(f"[bold]ghapp:[/] {note}")
    _say_what_is_missing(settings)
    console.print(f"[bold]ghapp:[/] worker with {concurrency} slots")
    asyncio.run(run_worker(settings, concurrency, metrics_port=metrics_port))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(metavar="REVISION", help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (safe to run from several replicas at once)."""
    import asyncio

    from ghapp import logs
    from ghapp.server import prepare_database
    from ghapp.settings import Settings

    settings = Settings()
    logs.configure(settings.log_level, fmt=settings.log_format)
    revision_now = asyncio.run(prepare_database(settings, migrate=True, revision=revision))
    console.print(f"[bold]ghapp:[/] database at revision {revision_now}")


@app.command()
def demo(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", help="Working directory for the demo's database (fresh on every run)."
        ),
    ] = Path("ghapp-demo"),
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the server (and its dashboard) running until Ctrl-C."),
    ] = False,
) -> None:
    """Run the offline demo: a server on SQLite receiving signed GitHub deliveries."""
    import asyncio

    from rich.console import Console

    from ghapp.demo.run import run_demo

    console = Console(soft_wrap=True)
    raise typer.Exit(asyncio.run(run_demo(directory, console, keep=keep)))


def _prepare(settings: Settings, command: str = "serve") -> list[str]:
    """What the embedded default needs (secrets, migrations), or a schema check; the notes.

    The last note is always the database's revision.
    """
    import asyncio

    from ghapp.server import prepare_database
    from ghapp.settings import ensure_generated_secrets

    notes = ensure_generated_secrets(settings) if settings.is_sqlite else []
    try:
        revision = asyncio.run(prepare_database(settings, migrate=settings.is_sqlite))
    except RuntimeError as exc:
        fail(command, str(exc), code=1)
    notes.append(f"database ready at revision {revision}")
    return notes


def _say_what_is_missing(settings: Settings) -> None:
    """What is missing, first, in sentences (the doctor's checks that need no network: a
    server without the app takes deliveries but fails every run), then how to sign in."""
    import asyncio

    from ghapp.db import Database
    from ghapp.doctor import startup_notes

    async def notes() -> list[tuple[str, str]]:
        db = Database(settings.database_url)
        try:
            return list(await startup_notes(settings, db))
        finally:
            await db.dispose()

    styles = {"fail": "bold red", "warn": "bold yellow", "ok": "bold"}
    for status, sentence in asyncio.run(notes()):
        console.print(f"[{styles[status]}]ghapp:[/] {escape(sentence)}", highlight=False)


def main() -> None:
    app()
