"""Questions on a terminal, never elsewhere.

A command asks only for what it needs and was not given, and only when a person can answer:
on a terminal. Anywhere else (a script, CI, a pipe) the command stops at once with a usage
error naming the options to give, instead of waiting or reading an answer nobody typed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

from ghapp.cli.connection import command_name
from ghapp.cli.output import fail

NO_TERMINAL = "{missing}: give {them} (there is no terminal to ask on)"
NO_ANSWER = "no answer to {question!r}: give {option} instead"
NOT_CONFIRMED = "not confirmed; nothing was changed"


def on_terminal() -> bool:
    """Whether a person can answer: standard input is a terminal."""
    return sys.stdin.isatty()


def missing_options(ctx: typer.Context, options: Sequence[str]) -> None:
    """Stop with one line naming ``options`` unless they can be asked for."""
    if options and not on_terminal():
        them = "it" if len(options) == 1 else "them"
        missing = f"{_words(options)} {'is' if len(options) == 1 else 'are'} missing"
        fail(command_name(ctx), NO_TERMINAL.format(missing=missing, them=them), code=2)


def ask(ctx: typer.Context, question: str, option: str, **prompt: Any) -> Any:
    """``typer.prompt`` on a terminal; elsewhere, or with no answer, a usage error."""
    missing_options(ctx, [option])
    try:
        return typer.prompt(question, **prompt)
    except typer.Abort:
        fail(command_name(ctx), NO_ANSWER.format(question=question, option=option), code=2)


def confirm(ctx: typer.Context, question: str) -> None:
    """Go on only when confirmed on a terminal (``--yes`` skips this)."""
    missing_options(ctx, ["--yes"])
    try:
        agreed = typer.confirm(question)
    except typer.Abort:
        agreed = False
    if not agreed:
        fail(command_name(ctx), NOT_CONFIRMED, code=1)


def _words(options: Sequence[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} and {options[-1]}"
