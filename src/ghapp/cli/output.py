"""Console output shared by the commands: tables to stdout, one-line errors to stderr."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Print one clear line (never a traceback) and exit with ``code``."""
    err.print(f"[red]ghapp {command}:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)
