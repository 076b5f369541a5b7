"""Where the server is and which token to use, for every command that calls the API.

``--url`` (alias ``--server``) and ``--token`` are accepted before or after the command:
``ghapp --url X schedule list``, ``ghapp schedule --url X list`` and ``ghapp schedule list
--url X`` mean the same. The one nearest the command wins, then ``GHAPP_URL`` /
``GHAPP_TOKEN``, then the default URL. This module is imported by ``ghapp --help``, so it
imports nothing heavy (the HTTP client comes in :func:`api`).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from ghapp.cli.client import ApiClient

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "GHAPP_URL"
TOKEN_ENV = "GHAPP_TOKEN"  # noqa: S105 (a variable's name)
PANEL = "Server"
URL_HELP = f"The ghapp server (default: ${URL_ENV}, else {DEFAULT_URL})."
SERVER_HELP = f"The ghapp server (default: ${URL_ENV}, else {DEFAULT_URL}); alias of --url."
TOKEN_HELP = f"An API token (default: ${TOKEN_ENV})."
# The names the options' values are kept under in each click context's params.
URL_PARAM = "server_url"
TOKEN_PARAM = "api_token"  # noqa: S105 (a parameter's name)

F = TypeVar("F", bound=Callable[..., Any])

ServerUrl = Annotated[
    str | None,
    typer.Option(
        "--url",
        "--server",
        metavar="URL",
        help=URL_HELP,
        show_default=False,
        rich_help_panel=PANEL,
    ),
]
ServerOnly = Annotated[  # for a command whose own --url means something else
    str | None,
    typer.Option(
        "--server", metavar="URL", help=SERVER_HELP, show_default=False, rich_help_panel=PANEL
    ),
]
ApiToken = Annotated[
    str | None,
    typer.Option(
        "--token", metavar="TOKEN", help=TOKEN_HELP, show_default=False, rich_help_panel=PANEL
    ),
]


@dataclass(frozen=True)
class Connection:
    """Where the API is and how to authenticate."""

    url: str = DEFAULT_URL
    token: str | None = None


def command_name(ctx: typer.Context) -> str:
    """The running command as the user typed it, without the program's name."""
    names: list[str] = []
    context: Any = ctx
    while context is not None and context.parent is not None:
        names.append(context.info_name or "")
        context = context.parent
    return " ".join(reversed(names)) or (ctx.info_name or "ghapp")


def connection(ctx: typer.Context) -> Connection:
    """The options nearest the command first, then the environment, then the default."""
    url = _nearest(ctx, URL_PARAM) or os.environ.get(URL_ENV) or DEFAULT_URL
    token = _nearest(ctx, TOKEN_PARAM) or os.environ.get(TOKEN_ENV) or None
    return Connection(url=url, token=token)


def _nearest(ctx: typer.Context, name: str) -> str | None:
    context: Any = ctx
    while context is not None:
        value = (context.params or {}).get(name)
        if value:
            return str(value)
        context = context.parent
    return None


def api(ctx: typer.Context, options: dict[str, str] | None = None) -> ApiClient:
    """A client of the server's API, for this command (``options``: its own names for API
    fields, for error messages; see :func:`ghapp.cli.client.option_for`)."""
    from ghapp.cli.client import ApiClient  # only for commands that call the server

    return ApiClient(connection(ctx), command_name(ctx), options)


def api_command(
    app: typer.Typer, name: str | None = None, *, url_option: bool = True, **options: Any
) -> Callable[[F], F]:
    """``app.command(name)`` that also takes ``--url``/``--server`` and ``--token``.

    ``url_option=False``: only ``--server`` (the command has a ``--url`` of its own).
    The options are read back from the click context by :func:`connection`.
    """

    def register(function: F) -> F:
        @functools.wraps(function)
        def command(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop(URL_PARAM, None)
            kwargs.pop(TOKEN_PARAM, None)
            return function(*args, **kwargs)

        extra = [
            inspect.Parameter(
                URL_PARAM,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=ServerUrl if url_option else ServerOnly,
            ),
            inspect.Parameter(
                TOKEN_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ApiToken
            ),
        ]
        signature = inspect.signature(function, eval_str=True)  # typer reads it as it is
        own = list(signature.parameters.values())
        setattr(command, "__signature__", signature.replace(parameters=[*own, *extra]))  # noqa: B010
        app.command(name, **options)(command)
        return function

    return register
