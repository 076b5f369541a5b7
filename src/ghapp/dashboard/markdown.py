"""A tiny Markdown renderer that is safe by construction: HTML is escaped first.

It knows what agent results use — paragraphs, headings, bullet and numbered lists, fenced
code blocks, inline code, bold, italics, links and ``<sub>`` — and nothing else. Every
character of the input is escaped before any markup is added, so ``<script>`` stays text;
links are only made for ``http(s)://`` addresses, anything else (``javascript:``,
``data:``) stays plain text.

It is linear in its input, whatever the input: a session's result is written by a model
that read strangers' issues, and the page renders it on the server's one event loop (a
heading regex that backtracked took 13 s over ``# x`` + 2,000 spaces + ``x``). So the
block-level decisions are string methods, and every regex keeps to three rules, which
``tests/test_markdown.py`` checks on the compiled patterns:

1. a repeat repeats one character (a class), never a group: no nested quantifiers;
2. a repeat's class cannot match what comes right after it, so the engine has exactly one
   way to split a text between them and never backtracks into a repeat to try another;
3. a repeat's class cannot match the character that opens a match (``[``, ````` ``, ``*``),
   so a failed attempt stops before the next attempt's start and no stretch of text is
   scanned by two attempts; or the repeat ends the pattern (an attempt that reaches it
   succeeds); or the pattern is anchored (one attempt per line).
"""

from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

_HEADING = re.compile(r"\A(#{1,6})\s")
_BULLET = re.compile(r"\A\s*[-*+]\s")
_NUMBERED = re.compile(r"\A\s*\d{1,9}[.)]\s")
_FENCE = re.compile(r"\A\s*(```|~~~)")
# Inline: `code`, [text](url) and bare URLs are found in the text as written (and set
# aside, escaped); **bold** and *italic* in the escaped rest.
_CODE = re.compile(r"`([^`\n]+)`")
# A link's address may hold one pair of parentheses (Wikipedia's "Name_(thing)").
_LINK = re.compile(
    r"\[([^\[\]\n]+)\]\(([^\s()\[\]\x00]+(?:\([^\s()\[\]\x00]*\)[^\s()\[\]\x00]*)?)\)"
)
# The whole run up to a space or a quote; bare_url gives its trailing punctuation back.
_BARE_URL = re.compile(r"(?<![=\w/])https?://[^\s<>\"'\x00]+")
_BOLD = re.compile(r"\*\*(?=[^\s*])([^*\n]+)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
# _italic_ only between non-word characters (``_`` is one of \w), so snake_case_words and
# __dunder__ names stay as written; addresses are set aside before this runs. No ``<`` inside:
# in escaped text every ``<`` opens one of our tags, and an <em> must not cross a <strong>.
_UNDERSCORE_ITALIC = re.compile(r"(?<!\w)_(?=[^\s_<])([^_\n<]+)(?<=\S)_(?!\w)")
# GitHub renders <sub>…</sub>, and ghapp's own comments end with one (turns, cost, the run's
# link): the one HTML tag let through, matched in the escaped text with nothing but text
# inside (no ``&``: no other tag or entity), so nothing else of the input becomes markup.
_SUB = re.compile(r"&lt;sub&gt;([^&\n]+)&lt;/sub&gt;")
_SAFE_SCHEME = re.compile(r"\Ahttps?://", re.IGNORECASE)
_HELD = re.compile("\x00(\\d+)\x00")
_PLACEHOLDER = "\x00{}\x00"
_TRAILING_PUNCTUATION = ".,;:!?)"
_RULE_MARKS = "-*_"


def render_markdown(text: str | None) -> Markup:
    """``text`` as HTML; safe to put into a page as is."""
    if not text:
        return Markup("")
    # NUL marks the placeholders of _inline: a NUL of the text's own must not look like one.
    text = text.replace("\x00", "\ufffd")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush_paragraph() -> None:
        if paragraph:
            out.append("<p>" + "<br>\n".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_tag
        if items:
            body = "".join(f"<li>{_inline(item)}</li>" for item in items)
            out.append(f"<{list_tag}>{body}</{list_tag}>")
            items.clear()
        list_tag = ""

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            flush_paragraph()
            flush_list()
            marker = fence.group(1)
            code: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                code.append(lines[index])
                index += 1
            out.append("<pre><code>" + escape("\n".join(code), quote=False) + "</code></pre>")
            index += 1  # the closing fence (or the end)
            continue
        heading = _HEADING.match(line)
        item = _BULLET.match(line) or _NUMBERED.match(line)
        if not line.strip():
            flush_paragraph()
            flush_list()
        elif heading:
            flush_paragraph()
            flush_list()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(_heading_text(line[level:]))}</h{level}>")
        elif _is_rule(line):
            flush_paragraph()
            flush_list()
            out.append("<hr>")
        elif item:
            flush_paragraph()
            tag = "ul" if item.re is _BULLET else "ol"
            if list_tag != tag:
                flush_list()
                list_tag = tag
            items.append(line[item.end() :].strip())
        elif items and line.startswith(("  ", "\t")):
            items[-1] += " " + line.strip()  # a wrapped list item
        else:
            flush_list()
            paragraph.append(line.strip())
        index += 1
    flush_paragraph()
    flush_list()
    # Every piece of ``out`` was escaped above; only our own tags are unescaped.
    return Markup("\n".join(out))  # noqa: S704


def _heading_text(rest: str) -> str:
    """A heading's text: spaces around it and a closing run of ``#`` taken off. The run
    closes the heading only after a space (CommonMark), so ``# C#`` keeps its ``#``."""
    text = rest.strip()
    unclosed = text.rstrip("#")
    if not unclosed or unclosed[-1].isspace():
        return unclosed.rstrip()
    return text


def _is_rule(line: str) -> bool:
    """Three or more of one of ``-*_``, spaces allowed between: ``---``, ``* * *``."""
    marks = "".join(line.split())
    return len(marks) >= 3 and marks[0] in _RULE_MARKS and marks.count(marks[0]) == len(marks)


def _inline(text: str) -> str:
    """Escape, then add inline markup. Code spans, links and addresses are set aside
    first (escaped), so nothing inside them is touched, and put back at the end."""
    held: list[str] = []

    def hold(html: str) -> str:
        # A link's label may hold a code span set aside before it: put that back now, as
        # the last step replaces each placeholder once.
        held.append(_HELD.sub(lambda m: held[int(m.group(1))], html))
        return _PLACEHOLDER.format(len(held) - 1)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if not _SAFE_SCHEME.match(url):
            return label  # javascript:, data:, relative…: the words, no link
        return hold(_anchor(url, escape(label, quote=False)))

    def bare_url(match: re.Match[str]) -> str:
        run = match.group(0)
        url = run.rstrip(_TRAILING_PUNCTUATION)  # "see https://x.org." ends the sentence
        if url.endswith("://"):
            return run
        return hold(_anchor(url, escape(url, quote=False))) + run[len(url) :]

    text = _CODE.sub(lambda m: hold(f"<code>{escape(m.group(1), quote=False)}</code>"), text)
    text = _LINK.sub(link, text)
    text = _BARE_URL.sub(bare_url, text)
    text = escape(text, quote=True)
    text = _SUB.sub(r"<sub>\1</sub>", text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    text = _UNDERSCORE_ITALIC.sub(r"<em>\1</em>", text)
    return _HELD.sub(lambda m: held[int(m.group(1))], text)


def _anchor(url: str, label_html: str) -> str:
    return (
        f'<a href="{escape(url, quote=True)}" rel="nofollow noopener noreferrer">{label_html}</a>'
    )
