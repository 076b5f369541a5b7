"""Prompts people write are data: ``{{ item.title }}`` placeholders and nothing else.

A job's ``custom_prompt`` (a config file's ``prompt``) is text with placeholders that name
values of the run's item and repository. It is never a program: there are no loops,
conditions, filters or expressions, so rendering is one pass over the text, linear in its
length, and a prompt cannot stall the server or raise at run time in ways a save did not
show. The rules:

* ``{{ name }}`` is replaced by the value of ``name``, one of :data:`PLACEHOLDERS`
  (spaces inside the braces are optional);
* a known name with no value for this item is replaced by nothing (``{{ item.base }}`` on
  an issue, any ``item.…`` on a codebase job);
* ``{{ "text" }}`` (or ``'text'``) is replaced by ``text`` as written: ``{{ "{{" }}`` is how
  a prompt says a literal ``{{``;
* any other ``{{`` — an unknown name, a filter, an expression, one never closed — is an
  error naming its line: the prompt is refused when it is saved, and a run of a job saved
  before these rules fails with that reason instead of guessing;
* ``{%`` (a template statement: a loop, a condition) is refused when a prompt is saved,
  since whoever wrote it expects it to do something; a job saved before these rules has it
  sent as plain text. ``}}`` and ``{#`` are plain text;
* the result is at most :data:`MAX_CHARS` characters (placeholders can repeat a long body);
  a longer one is an error for that item.

Repository commands (``.claude/commands/*.md``) are Claude Code's files and keep Claude
Code's ``$ARGUMENTS``; they are not read for placeholders (see ``ghapp.repo_commands``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

MAX_CHARS = 100_000  # as long as a saved custom_prompt may be

PLACEHOLDERS: dict[str, str] = {
    "item.kind": "issue or pr",
    "item.number": "the issue's or pull request's number",
    "item.title": "its title",
    "item.body": "its body",
    "item.url": "its address on GitHub",
    "item.author": "who opened it",
    "item.labels": "its labels, comma-separated",
    "item.base": "a pull request's base branch",
    "item.head": "a pull request's head branch",
    "repo.full_name": "owner/name",
    "repo.owner": "the repository's owner",
    "repo.name": "the repository's name",
    "repo.default_branch": "its default branch",
    "arguments": "what followed the slash command",
}

# Each part is bounded or cannot contain "{": a match tried at one "{{" never runs past the
# next one, so checking a prompt full of openers stays linear in its length.
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}"
_PLACEHOLDER = re.compile(
    r"\{\{[ \t]{0,32}"
    rf"(?:(?P<name>{_NAME})|\"(?P<double>[^\"\n]{{0,100}})\"|'(?P<single>[^'\n]{{0,100}})')"
    r"[ \t]{0,32}\}\}"
)
_EXCERPT = 60


class PromptError(ValueError):
    """A prompt that cannot be rendered; the message names the line and the problem."""


Piece = tuple[str, bool]  # (literal text, False) or (placeholder name, True)


@functools.lru_cache(maxsize=64)
def parse(template: str) -> tuple[Piece, ...]:
    """The prompt as literal text and placeholder names; raises PromptError."""
    pieces: list[Piece] = []
    position = 0
    while (start := template.find("{{", position)) != -1:
        match = _PLACEHOLDER.match(template, start)
        if match is None:
            raise PromptError(
                f"line {_line(template, start)}: {_excerpt(template, start, '}}')} is not a "
                "placeholder: write a name such as {{ item.title }} (no filters, loops or "
                'expressions), or {{ "{{" }} for a literal {{'
            )
        pieces.append((template[position:start], False))
        name = match["name"]
        if name is None:
            pieces.append((match["double"] or match["single"] or "", False))
        elif name in PLACEHOLDERS:
            pieces.append((name, True))
        else:
            raise PromptError(
                f"line {_line(template, start)}: unknown placeholder {{{{ {name} }}}} "
                f"(known: {', '.join(PLACEHOLDERS)})"
            )
        position = match.end()
    pieces.append((template[position:], False))
    return tuple(piece for piece in pieces if piece[0])


def check(template: str) -> str:
    """``template`` if it may be saved; raises PromptError naming the first problem."""
    parse(template)
    # Placeholders blanked out (same length: lines stay where they are), so a "{%" written
    # as {{ "{%" }} is not mistaken for a statement.
    outside = _PLACEHOLDER.sub(lambda match: " " * len(match.group()), template)
    statement = outside.find("{%")
    if statement != -1:
        raise PromptError(
            f"line {_line(template, statement)}: {_excerpt(template, statement, '%}')} is a "
            "template statement; prompts have no loops or conditions, only placeholders "
            'such as {{ item.title }} (write {{ "{%" }} for a literal {%)'
        )
    return template


def render(template: str, values: Mapping[str, str], limit: int = MAX_CHARS) -> str:
    """``template`` with its placeholders replaced by ``values`` (missing ones: nothing)."""
    out: list[str] = []
    size = 0
    for text, is_name in parse(template):
        piece = (values.get(text) or "") if is_name else text
        size += len(piece)
        if size > limit:  # stop before building it: repeated placeholders multiply a body
            raise PromptError(
                f"the prompt would be longer than {limit:,} characters with this item's values"
            )
        out.append(piece)
    return "".join(out)


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _excerpt(text: str, index: int, closer: str) -> str:
    """The text from ``index`` to ``closer`` on that line, or a short part of it."""
    line_end = text.find("\n", index)
    line = text[index : line_end if line_end != -1 else len(text)]
    closing = line.find(closer, 2)
    if closing != -1 and closing + len(closer) <= _EXCERPT:
        return repr(line[: closing + len(closer)])
    return repr(line[:_EXCERPT] + ("…" if len(line) > _EXCERPT else ""))
