"""A tiny Markdown renderer that is safe by construction: HTML is escaped first.

It knows what agent results use — paragraphs, headings, bullet and numbered lists, fenced
code blocks, inline code, bold, italics and links — and nothing else. Every character of
the input is escaped before any markup is added, so ``<script>`` stays text; links are
only made for ``http(s)://`` addresses, anything else (``javascript:``, ``data:``) stays
plain text.
"""

from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,9}[.)]\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# Applied to escaped text: `code`, [text](url), **bold**, *italic*, bare URLs.
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_BARE_URL = re.compile(r"(?<![\"'=\w/])(https?://[^\s<>\"']+[^\s<>\"'.,;:!?)])")
_SAFE_SCHEME = re.compile(r"^https?://", re.IGNORECASE)
_PLACEHOLDER = "\x00{}\x00"


def render_markdown(text: str | None) -> Markup:
    """``text`` as HTML; safe to put into a page as is."""
    if not text:
        return Markup("")
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
        bullet = _BULLET.match(line)
        numbered = _NUMBERED.match(line)
        if not line.strip():
            flush_paragraph()
            flush_list()
        elif heading:
            flush_paragraph()
            flush_list()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif _RULE.match(line):
            flush_paragraph()
            flush_list()
            out.append("<hr>")
        elif bullet or numbered:
            flush_paragraph()
            tag = "ul" if bullet else "ol"
            if list_tag != tag:
                flush_list()
                list_tag = tag
            items.append((bullet or numbered).group(1))  # type: ignore[union-attr]
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


def _inline(text: str) -> str:
    """Escape, then add inline markup. Code spans are set aside first, so nothing inside
    them is touched, and put back at the end."""
    held: list[str] = []

    def hold(html: str) -> str:
        held.append(html)
        return _PLACEHOLDER.format(len(held) - 1)

    text = _CODE.sub(lambda m: hold(f"<code>{escape(m.group(1), quote=False)}</code>"), text)
    text = escape(text, quote=True)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if not _SAFE_SCHEME.match(url):
            return label  # javascript:, data:, relative…: the words, no link
        return hold(f'<a href="{url}" rel="nofollow noopener noreferrer">{label}</a>')

    text = _LINK.sub(link, text)
    text = _BARE_URL.sub(
        lambda m: hold(
            f'<a href="{m.group(1)}" rel="nofollow noopener noreferrer">{m.group(1)}</a>'
        ),
        text,
    )
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: held[int(m.group(1))], text)
