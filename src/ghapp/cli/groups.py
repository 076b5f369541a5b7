"""The command groups the API commands register on (kept apart so each module stays small)."""

from __future__ import annotations

from typing import Annotated

import typer

from ghapp.cli.connection import ApiToken, ServerUrl

schedule_app = typer.Typer(
    help="Jobs, their runs and notifiers, through a running server's API "
    "(--url or $GHAPP_URL, --token or $GHAPP_TOKEN; before or after the command).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
notifiers_app = typer.Typer(
    help="Notifiers: where a job's news goes (Slack, Discord, n8n, e-mail or any webhook).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
schedule_app.add_typer(notifiers_app, name="notifiers")
# The old name, kept so scripts written for it still work; not shown in --help.
schedule_app.add_typer(notifiers_app, name="webhooks", hidden=True)

Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer as is.")]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed off a terminal).")
]
Repo = Annotated[
    str | None,
    typer.Option("--repo", metavar="OWNER/NAME", help="Repository owner/name (or its id)."),
]


@schedule_app.callback()
def schedule_options(server_url: ServerUrl = None, api_token: ApiToken = None) -> None:
    pass  # kept in the context; ghapp.cli.connection reads them back


@notifiers_app.callback()
def notifiers_options(server_url: ServerUrl = None, api_token: ApiToken = None) -> None:
    pass  # kept in the context; ghapp.cli.connection reads them back
