"""Every command's --help says what its source says: no bracketed words eaten as markup, no
Python types (``<list[str]>``) where a placeholder belongs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ghapp.cli.main import app as cli_app

runner = CliRunner()
LIST_TYPE = "<list["
# An option's value shown as a Python type where a placeholder (--repo OWNER/NAME) belongs.
OPTION_TYPE = re.compile(r"^\s+--\S+(, --\S+)* <(str|int|float)>", re.M)


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):  # a group (typer's own click, not click.Group)
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from commands(sub, (*path, name))


ALL = list(commands(typer.main.get_command(cli_app)))


def squeezed(text: str) -> str:
    """Without whitespace: the help wraps lines (and after hyphens) where it likes."""
    return re.sub(r"\s+", "", text)


def written(command: Any) -> list[str]:
    """The texts written for the command: its help and each parameter's."""
    texts = [command.help or ""]
    texts += [getattr(param, "help", None) or "" for param in command.params]
    return [text.replace("\b\n", "") for text in texts if text]


@pytest.mark.parametrize("path", [path for path, _ in ALL], ids=lambda p: " ".join(p) or "ghapp")
def test_help_shows_every_written_word(path: tuple[str, ...]) -> None:
    command = dict(ALL)[path]
    result = runner.invoke(cli_app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    shown = squeezed(result.stdout)
    for text in written(command):
        assert squeezed(text) in shown, (text, result.stdout)
    assert LIST_TYPE not in result.stdout, result.stdout
    assert not OPTION_TYPE.search(result.stdout), result.stdout


def test_the_check_notices_a_lost_bracket() -> None:
    """What the check looks for does happen with Rich markup on: ``[a fresh UUID]`` vanishes."""
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print("Delivery id to send [a fresh UUID].")
    assert squeezed("Delivery id to send [a fresh UUID].") not in squeezed(console.export_text())


def test_the_examples_from_the_users_report() -> None:
    shown = runner.invoke(cli_app, ["receive", "--help"]).stdout
    assert squeezed("Webhook URL (default: http://$GHAPP_HOST:$GHAPP_PORT/webhooks/github).") in (
        squeezed(shown)
    )
    shown = runner.invoke(cli_app, ["token", "create", "--help"]).stdout
    assert "--repo OWNER/NAME" in shown and LIST_TYPE not in shown
    assert OPTION_TYPE.search("  --repo <str>  x")  # the pattern finds what it is for
