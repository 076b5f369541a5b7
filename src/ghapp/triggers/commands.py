"""Slash commands in issue and PR comments (as Prow reads them), and job triggers on them.

A command is a line that starts, in its first column, with ``/`` and a name matching
``[a-zA-Z][a-zA-Z0-9_-]*``, followed by the end of the line or by spaces/tabs and its
arguments: ``/triage``, ``/review security please``. Lines end at ``\\n``, ``\\r\\n`` or
``\\r``. Not commands: ``/``, ``//x``, ``/123``, ``/foo/bar`` (a path), ``/foo.`` and
``  /indented``.

Ignored, because the reader does not see them as commands:

* fenced code blocks (```` ``` ```` or ``~~~``, up to three spaces of indentation,
  optional info string, closed by a fence of the same character at least as long;
  an unterminated fence runs to the end of the body);
* blockquote lines (``> /triage`` quotes someone else);
* HTML comments (``<!-- ... -->``, as Prow strips them): an HTML block opened by a line
  starting with ``<!--`` runs to the line holding ``-->`` (or the end); a comment
  opened mid-line hides the following lines only when it is closed before the next
  blank line, as Markdown renders it.

A job's trigger (:func:`parse_command_trigger`) is a command name plus up to three
required leading argument words: ``/review security``. :func:`best_matches` picks
the most specific triggers a command satisfies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "MAX_TRIGGER_WORDS",
    "CommandTrigger",
    "CommandTriggerError",
    "SlashCommand",
    "best_matches",
    "match_trigger",
    "parse_command_trigger",
    "parse_commands",
    "split_lines",
    "visible_lines",
]

K = TypeVar("K")

MAX_TRIGGER_WORDS = 3

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_COMMAND = re.compile(r"/([a-zA-Z][a-zA-Z0-9_-]*)(?:[ \t]+(.*))?[ \t]*")
_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")
_FENCE_OPEN = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_BLOCKQUOTE = re.compile(r" {0,3}>")
_HTML_BLOCK = re.compile(r" {0,3}<!--")
_WORDS = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class SlashCommand:
    """``name`` is lower-cased and has no slash; ``args`` is stripped; ``line`` is 1-based."""

    name: str
    args: str
    line: int


@dataclass(frozen=True)
class CommandTrigger:
    """A job's trigger: the command name and the leading argument words it requires."""

    name: str
    words: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " ".join((f"/{self.name}", *self.words))


class CommandTriggerError(ValueError):
    """A job's configured command trigger is not valid; the message names it."""


def split_lines(body: str) -> list[str]:
    """The body's lines as GitHub sees them (``\\n``, ``\\r\\n`` and ``\\r`` end a line)."""
    return _LINE_BREAK.split(body)


def parse_commands(body: str | None) -> list[SlashCommand]:
    """Every slash command in a comment body, in order; never raises on a string."""
    if not body:
        return []
    commands: list[SlashCommand] = []
    for index, line in visible_lines(split_lines(body)):
        command = _COMMAND.fullmatch(line)
        if command:
            commands.append(SlashCommand(command[1].lower(), (command[2] or "").strip(), index + 1))
    return commands


def visible_lines(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(0-based index, line) of each line a reader sees as text: not in fenced code, not
    a blockquote, not hidden by an HTML comment. A line that opens a comment mid-line is
    given (its start is text); the line that closes one is not. Commands and mentions
    (``ghapp.triggers.mentions``) are read from these lines only."""
    closes_later = _closes_before_blank(lines)
    fence: str | None = None  # the opening fence while inside fenced code
    in_comment = False
    for index, line in enumerate(lines):
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
            continue
        if in_comment:
            end = line.find("-->")
            if end != -1:
                in_comment = _inline_comment_open(line, end + 3, closes_later[index])
            continue
        if _BLOCKQUOTE.match(line):
            continue
        opening = _FENCE_OPEN.fullmatch(line)
        if opening and not (opening["fence"][0] == "`" and "`" in opening["info"]):
            fence = opening["fence"]
            continue
        yield index, line
        in_comment = _opens_comment(line, closes_later[index])


def _closes_fence(line: str, fence: str) -> bool:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    marker = stripped.rstrip(" \t")
    return len(marker) >= len(fence) and marker == fence[0] * len(marker)


def _closes_before_blank(lines: list[str]) -> list[bool]:
    """For each line: does a line holding ``-->`` follow it before a blank line?"""
    result = [False] * len(lines)
    for index in range(len(lines) - 2, -1, -1):
        following = lines[index + 1]
        if following.strip():
            result[index] = "-->" in following or result[index + 1]
    return result


def _opens_comment(line: str, closes_later: bool) -> bool:
    """Whether the line leaves an HTML comment open that hides the next lines."""
    if _HTML_BLOCK.match(line):  # an HTML block: ends with the line holding '-->'
        return line.find("-->", line.index("<!--") + 4) == -1
    return _inline_comment_open(line, 0, closes_later)


def _inline_comment_open(line: str, position: int, closes_later: bool) -> bool:
    """Whether an inline ``<!--`` in the line (from ``position``) stays open.

    Inline HTML can't cross a blank line: an unclosed ``<!--`` hides the next lines
    only when a ``-->`` follows before one (``closes_later``); else it renders as text.
    """
    while (start := line.find("<!--", position)) != -1:
        end = line.find("-->", start + 4)
        if end == -1:
            break
        position = end + 3
    else:
        return False
    return closes_later


def parse_command_trigger(text: str) -> CommandTrigger:
    """Parse a job's trigger such as ``/triage`` or ``/review security``.

    Name and words are lower-cased (matching is case-insensitive). At most
    :data:`MAX_TRIGGER_WORDS` words may follow the name.
    """
    if not isinstance(text, str):
        raise CommandTriggerError(f"command trigger {text!r}: not a string")
    stripped = text.strip(" \t")
    if not stripped:
        raise CommandTriggerError(f"command trigger {text!r}: empty")
    if any(not c.isprintable() and c not in " \t" for c in stripped):
        raise CommandTriggerError(
            f"command trigger {text!r}: must be one line without control characters"
        )
    if not stripped.startswith("/"):
        raise CommandTriggerError(
            f"command trigger {text!r}: must start with '/', e.g. /triage or /review security"
        )
    head, *words = _WORDS.split(stripped)
    name = head[1:]
    if not _NAME.fullmatch(name):
        raise CommandTriggerError(
            f"command trigger {text!r}: '{head}' is not a command name "
            "(a letter, then letters, digits, '_' or '-')"
        )
    if len(words) > MAX_TRIGGER_WORDS:
        raise CommandTriggerError(
            f"command trigger {text!r}: at most {MAX_TRIGGER_WORDS} words may follow "
            f"/{name}, got {len(words)}"
        )
    return CommandTrigger(name.lower(), tuple(word.lower() for word in words))


def match_trigger(trigger: CommandTrigger, command: SlashCommand) -> str | None:
    """The command's arguments after the trigger's words, or None if it doesn't match.

    Names and words compare case-insensitively; the remainder keeps its own spacing
    and case, stripped (``''`` when nothing follows).
    """
    if command.name.lower() != trigger.name.lower():
        return None
    rest = command.args
    for word in trigger.words:
        parts = rest.lstrip().split(maxsplit=1)
        if not parts or parts[0].casefold() != word.casefold():
            return None
        rest = parts[1] if len(parts) > 1 else ""
    return rest.strip()


def best_matches(
    triggers: Sequence[tuple[K, CommandTrigger]], command: SlashCommand
) -> list[tuple[K, str]]:
    """The matching triggers with the most words (in input order) and their remainders.

    ``/review security x`` selects a ``/review security`` job over a ``/review`` job;
    two jobs on the same trigger both match.
    """
    found = [
        (len(trigger.words), key, rest)
        for key, trigger in triggers
        if (rest := match_trigger(trigger, command)) is not None
    ]
    if not found:
        return []
    most = max(size for size, _, _ in found)
    return [(key, rest) for size, key, rest in found if size == most]
