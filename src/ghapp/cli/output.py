"""Console output shared by the commands: tables to stdout, one-line errors to stderr."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A Rich console made when used: ``ghapp --help`` never needs one (importing Rich's console
    is a good part of the start-up), and each use sees the terminal's width (COLUMNS) as it is
    then, not as it was when the module was imported."""

    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(_console(self.stderr), name)


def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


out = LazyConsole(stderr=False)
err = LazyConsole(stderr=True)


def escape(text: str) -> str:
    """Rich's ``escape`` (imported when needed): ``[red]`` in ``text`` prints as it is."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Print one clear line (never a traceback) and exit with ``code``.

    ``message`` is printed as it is: it may quote a job's name or the server's words, and a
    ``[red]`` in those is text, not markup.
    """
    err.print(f"[red]ghapp {escape(command)}:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def dump_json(data: Any) -> None:
    """``--json``: the server's answer as is, for scripts."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
