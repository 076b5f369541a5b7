"""Mentions of the app (``@<app-slug>``) in issue and PR comments, and the app's bot login.

A mention is ``@slug`` (any case) where a reader sees it as one: not inside fenced code, a
blockquote or an HTML comment (the lines :func:`ghapp.triggers.commands.visible_lines`
gives, as for slash commands), and not inside an inline code span. It stands at a word
boundary: not preceded by a word character (``me@slug.com`` is an address), not followed by
a word character or ``-`` (``@slug-other`` is someone else). ``@slug[bot]``, the bot user's
own login, counts.

The request is what follows the first mention, to the end of the comment (its code blocks
too: "@app this fails:" and a stack trace), with HTML comments left out; ``""`` for a bare
mention. Hiding counts more than showing: text GitHub might render is treated as hidden
when in doubt (an unclosed ``<!--`` hides the rest of its line), so a doubtful mention
starts nothing.
"""

from __future__ import annotations

import re

from ghapp.triggers.commands import split_lines, visible_lines

__all__ = ["BOT_SUFFIX", "bot_login", "find_mention", "is_app_login", "is_slug"]

BOT_SUFFIX = "[bot]"
# A slug as GitHub makes them: lower-case letters, digits and '-'.
_SLUG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# An HTML comment, or an unclosed one (to the end of the text: hidden when in doubt).
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# An inline code span: a run of backticks closed by a run of the same length, not across
# a blank line (CommonMark's paragraphs end there).
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
_LEADING = " \t\r\n,.:;!?"  # "@app, please…" asks for "please…"


def is_slug(text: str) -> bool:
    """Whether ``text`` is a slug as GitHub makes them (letters, digits, inner ``-``)."""
    return bool(_SLUG.fullmatch(text))


def bot_login(slug: str) -> str:
    """The app's bot user: ``<slug>[bot]`` (who it is assigned to, who writes its comments)."""
    return f"{slug}{BOT_SUFFIX}"


def is_app_login(login: str | None, slug: str | None) -> bool:
    """Whether ``login`` is the app's own bot user (case-insensitive, as GitHub logins are)."""
    return bool(login and slug) and str(login).lower() == bot_login(str(slug)).lower()


def find_mention(body: str | None, slug: str) -> str | None:
    """The request after the first ``@slug`` mention in ``body`` (``""`` for a bare one), or
    None when the app is not mentioned. Never raises on a string."""
    if not body or not slug or not is_slug(slug):
        return None
    lines = split_lines(body)
    # Hidden lines are blanked (same length, so offsets hold): they end a paragraph, as a
    # fence or a quote does, so no code span reaches across them.
    shown = [" " * len(line) for line in lines]
    for index, line in visible_lines(lines):
        shown[index] = line
    text = "\n".join(lines)
    masked = _mask("\n".join(shown), _COMMENT, _CODE_SPAN)
    mention = re.compile(rf"(?<!\w)@{_ascii_any_case(slug)}(?![\w-])")
    found = mention.search(masked)
    if found is None:
        return None
    rest = text[found.end() :]
    if rest[: len(BOT_SUFFIX)].lower() == BOT_SUFFIX:
        rest = rest[len(BOT_SUFFIX) :]
    return _COMMENT.sub("", rest).lstrip(_LEADING).strip()


def _ascii_any_case(slug: str) -> str:
    """The slug in either case, ASCII only: ``re.IGNORECASE`` would also take the Kelvin
    sign for ``k`` and a long s for ``s``, which GitHub does not."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in slug)


def _mask(text: str, *patterns: re.Pattern[str]) -> str:
    """``text`` with every match of the patterns (each found in the text as given, so one
    cannot hide another's start) blanked out, keeping line breaks and every offset."""
    spans = [m.span() for pattern in patterns for m in pattern.finditer(text)]
    chars = list(text)
    for start, end in spans:
        for at in range(start, end):
            if chars[at] != "\n":
                chars[at] = " "
    return "".join(chars)
