"""The Markdown renderer: escaped whatever it is given, and linear in its input.

Linearity is checked by construction, not by timing: every regex of the module is parsed
(``re._parser``, the engine's own parser) and must keep the three rules its docstring
states. The old patterns broke them (``_HEADING``'s ``\\s+(.*?)\\s*#*\\s*$`` took 13 s over
``# x`` + 2,000 spaces + ``x``); ``bench/limits.py`` prints how long 200 KB of each
pathological input takes now.
"""

from __future__ import annotations

import html
import re
import re._constants as sre
import re._parser as sre_parse
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghapp.dashboard import markdown
from ghapp.dashboard.markdown import render_markdown

# -- linear by construction ---------------------------------------------------------------

# Characters to decide class membership and overlap with: ASCII, Latin-1, and some of the
# Unicode spaces, digits and letters that \s, \d and \w match in str patterns.
SAMPLE = [chr(code) for code in range(0x250)] + list(
    "\u2003\u3000\u2028\u2029\u200b\u0660\u0966\uff10ßπЖ中\ufffd\U0001f600"
)
CATEGORY = {
    "CATEGORY_SPACE": re.compile(r"\s"),
    "CATEGORY_NOT_SPACE": re.compile(r"\S"),
    "CATEGORY_DIGIT": re.compile(r"\d"),
    "CATEGORY_NOT_DIGIT": re.compile(r"\D"),
    "CATEGORY_WORD": re.compile(r"\w"),
    "CATEGORY_NOT_WORD": re.compile(r"\W"),
}
ZERO_WIDTH = {sre.AT, sre.ASSERT, sre.ASSERT_NOT}
ONE_CHARACTER = {sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY}
REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


def chars_of(item: tuple[Any, Any]) -> frozenset[str]:
    """The sample characters a one-character item matches."""
    op, arg = item
    if op is sre.LITERAL:
        return frozenset({chr(arg)})
    if op is sre.NOT_LITERAL:
        return frozenset(c for c in SAMPLE if c != chr(arg))
    if op is sre.ANY:
        return frozenset(c for c in SAMPLE if c != "\n")
    assert op is sre.IN, op
    negate = bool(arg) and arg[0][0] is sre.NEGATE
    members: set[str] = set()
    for kind, value in arg[1:] if negate else arg:
        if kind is sre.LITERAL:
            members.add(chr(value))
        elif kind is sre.RANGE:
            members.update(c for c in SAMPLE if value[0] <= ord(c) <= value[1])
        else:
            assert kind is sre.CATEGORY, kind
            members.update(c for c in SAMPLE if CATEGORY[str(value)].match(c))
    return frozenset(c for c in SAMPLE if c not in members) if negate else frozenset(members)


def first(items: list[Any], after: frozenset[str]) -> frozenset[str]:
    """The characters a match of ``items`` (followed by what matches ``after``) can start with."""
    if not items:
        return after
    (op, arg), rest = items[0], list(items[1:])
    if op in ZERO_WIDTH:
        return first(rest, after)
    if op in ONE_CHARACTER:
        return chars_of(items[0])
    if op is sre.GROUPREF:  # whatever the group matched: anything, as far as we know
        return frozenset(SAMPLE)
    if op is sre.SUBPATTERN:
        return first(list(arg[3]) + rest, after)
    if op is sre.ATOMIC_GROUP:
        return first(list(arg) + rest, after)
    if op is sre.BRANCH:
        return frozenset().union(*(first(list(branch) + rest, after) for branch in arg[1]))
    assert op in REPEATS, op
    low, _, body = arg
    starts = first(list(body), frozenset())
    return starts if low > 0 else starts | first(rest, after)


def rule_breaks(pattern: re.Pattern[str]) -> list[str]:
    """How ``pattern`` breaks the module's three rules (none: linear)."""
    top = list(sre_parse.parse(pattern.pattern, pattern.flags))
    anchored = bool(top) and top[0] == (sre.AT, sre.AT_BEGINNING_STRING)
    opener = first(top, frozenset())
    problems: list[str] = []

    def walk(items: list[Any], after: frozenset[str]) -> None:
        for index, (op, arg) in enumerate(items):
            follows = first(list(items[index + 1 :]), after)
            if op is sre.SUBPATTERN:
                walk(list(arg[3]), follows)
            elif op is sre.ATOMIC_GROUP:
                walk(list(arg), follows)
            elif op is sre.BRANCH:
                for branch in arg[1]:
                    walk(list(branch), follows)
            elif op in REPEATS:
                _, high, body = arg
                if high <= 1:  # an optional part: not a repeat, look inside
                    walk(list(body), follows)
                    continue
                if len(body) != 1 or body[0][0] not in ONE_CHARACTER:
                    problems.append(f"rule 1: a repeat of a group at item {index}")
                    continue
                repeated = chars_of(body[0])
                if repeated & follows:
                    problems.append(f"rule 2: repeat at item {index} overlaps what follows it")
                if repeated & opener and follows and not anchored:
                    problems.append(f"rule 3: repeat at item {index} can run over an opener")

    walk(top, frozenset())
    return problems


PATTERNS = {name: value for name, value in vars(markdown).items() if isinstance(value, re.Pattern)}


def test_the_module_has_its_patterns() -> None:
    assert {"_HEADING", "_LINK", "_BOLD", "_ITALIC", "_BARE_URL", "_CODE"} <= set(PATTERNS)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_pattern_is_linear_by_construction(name: str) -> None:
    assert rule_breaks(PATTERNS[name]) == []


@pytest.mark.parametrize(
    ("pattern", "rule"),
    [
        (r"^(#{1,6})\s+(.*?)\s*#*\s*$", "rule 2"),  # the old heading: 13 s for 2,000 spaces
        (r"^\s*([-*_])(\s*\1){2,}\s*$", "rule 1"),  # the old horizontal rule
        (r"\*\*(?=\S)(.+?)(?<=\S)\*\*", "rule 2"),  # the old bold: quadratic over "**a "
        (r"\[([^\]\n]+)\]\(x\)", "rule 3"),  # the old link label: quadratic over "[[[["
        (r"(a+)+b", "rule 1"),
    ],
)
def test_the_rules_catch_backtracking_patterns(pattern: str, rule: str) -> None:
    assert any(problem.startswith(rule) for problem in rule_breaks(re.compile(pattern)))


# -- pathological inputs render as text ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html_out"),
    [
        ("# x" + " " * 2000 + "x", "<h1>x" + " " * 2000 + "x</h1>"),
        (
            "#" + " " * 1000 + "#" * 1000 + " " * 1000 + "x",
            "<h1>" + "#" * 1000 + " " * 1000 + "x</h1>",
        ),
        ("[" * 5000, "<p>" + "[" * 5000 + "</p>"),
        ("[" * 5000 + "]", "<p>" + "[" * 5000 + "]</p>"),
        ("**a " * 3000, "<p>" + ("**a " * 3000).strip() + "</p>"),
        ("[a](" * 3000, "<p>" + "[a](" * 3000 + "</p>"),
        ("a" + "`" * 6000, "<p>a" + "`" * 6000 + "</p>"),
        ("- " * 3000 + "x", "<ul><li>" + "- " * 2999 + "x</li></ul>"),
        ("-" + " " * 20000 + "x", "<ul><li>x</li></ul>"),
        ("http://." * 3000, "<p>" + "http://." * 3000 + "</p>"),
        ("*a " * 3000, "<p>" + ("*a " * 3000).strip() + "</p>"),
    ],
    ids=[
        "heading-spaces",
        "heading-hashes",
        "link-openers",
        "link-openers-closed",
        "bold-openers",
        "link-addresses",
        "backticks",
        "dashes",
        "bullet-spaces",
        "bare-schemes",
        "italic-openers",
    ],
)
def test_pathological_inputs_render_as_plain_text(text: str, html_out: str) -> None:
    assert str(render_markdown(text)) == html_out


def test_a_nul_in_the_text_is_not_taken_for_a_placeholder() -> None:
    # It used to index the list of set-aside pieces: an IndexError, a 500 on the run page.
    assert str(render_markdown("a \x0099\x00 b `c`")) == "<p>a \ufffd99\ufffd b <code>c</code></p>"


def test_headings_close_on_a_run_of_hashes_after_a_space() -> None:
    assert str(render_markdown("# Title ##")) == "<h1>Title</h1>"
    assert str(render_markdown("## C#")) == "<h2>C#</h2>"
    assert str(render_markdown("# #")) == "<h1></h1>"


def test_links_and_bare_addresses() -> None:
    out = str(
        render_markdown(
            'See "https://example.com/a?b=1" and https://en.wikipedia.org/wiki/Foo_(bar), or '
            "[the docs](https://example.com/x_(y)) and [x](javascript:alert(1))."
        )
    )
    rel = 'rel="nofollow noopener noreferrer"'
    assert out == (
        f'<p>See &quot;<a href="https://example.com/a?b=1" {rel}>https://example.com/a?b=1</a>'
        f'&quot; and <a href="https://en.wikipedia.org/wiki/Foo_(bar" {rel}>'
        "https://en.wikipedia.org/wiki/Foo_(bar</a>), or "
        f'<a href="https://example.com/x_(y)" {rel}>the docs</a> and x.</p>'
    )


# -- escaped and faithful, whatever the text ------------------------------------------------

ALLOWED = {"p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "pre", "code"}
ALLOWED |= {"strong", "em", "hr", "a"}
VOID = {"br", "hr"}


class Structure(HTMLParser):
    """Our tags, checked as they come; the text a reader sees, unescaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED:
            self.problems.append(f"tag <{tag}>")
        if tag == "a":
            names = [name for name, _ in attrs]
            values = dict(attrs)
            if names != ["href", "rel"] or values["rel"] != "nofollow noopener noreferrer":
                self.problems.append(f"link attributes {attrs}")
            if not re.match(r"https?://", values.get("href") or "", re.IGNORECASE):
                self.problems.append(f"link to {values.get('href')!r}")
        elif attrs:
            self.problems.append(f"attributes on <{tag}>: {attrs}")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"</{tag}> closes nothing")

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.problems.append(f"raw angle bracket in {data[:40]!r}")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        self.problems.append("a comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("a declaration")

    def handle_pi(self, data: str) -> None:
        self.problems.append("a processing instruction")


def structure(text: str) -> Structure:
    parsed = Structure()
    parsed.feed(str(render_markdown(text)))
    parsed.close()
    assert parsed.problems == [], parsed.problems
    assert parsed.open == [], f"left open: {parsed.open}"
    return parsed


def visible(text: str) -> str:
    return "".join(text.split())


def is_subsequence(small: str, big: str) -> bool:
    remaining = iter(big)
    return all(char in remaining for char in small)


# Markdown's own characters and words, HTML's, schemes, and anything else.
TOKENS = [
    *"#*_-+`~[]()<>&\"'=/:.,;!?\\ \t\n\r\x00",
    "http://",
    "https://",
    "javascript:",
    "**",
    "```",
    "1. ",
    "- ",
    "# ",
    "<script>",
    "</p>",
    "&amp;",
    "&#x27;",
    "a",
    "bc",
    "é",
    "\u2003",
]
markdownish = st.lists(st.sampled_from(TOKENS) | st.characters(), max_size=1500).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=markdownish)
def test_any_text_renders_as_our_tags_around_its_own_characters(text: str) -> None:
    parsed = structure(text)
    # Markup only takes characters away (markers, addresses of links): what a reader sees
    # is the text's own characters, in order, nothing added.
    source = visible(text.replace("\x00", "\ufffd"))
    assert is_subsequence(visible("".join(parsed.text)), source)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("abc XYZ 123\n<>&\"'é\u2003")), max_size=3000))
def test_text_without_markup_is_shown_exactly(text: str) -> None:
    assert visible("".join(structure(text).text)) == visible(text)


# -- _underscore_ italics ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html_out"),
    [
        ("an _italic_ word", "<p>an <em>italic</em> word</p>"),
        ("(_x_), _two words_.", "<p>(<em>x</em>), <em>two words</em>.</p>"),
        ("snake_case_words stay", "<p>snake_case_words stay</p>"),
        ("__init__ and _a_b_", "<p>__init__ and _a_b_</p>"),
        ("_ spaced _", "<p>_ spaced _</p>"),
        ("_<script>_", "<p><em>&lt;script&gt;</em></p>"),
        ("**a _b** c_", "<p><strong>a _b</strong> c_</p>"),
        ("*a _b* c_", "<p><em>a _b</em> c_</p>"),
        (
            "_see https://x.org/a_b_c_ now_",
            '<p><em>see <a href="https://x.org/a_b_c_" rel="nofollow noopener noreferrer">'
            "https://x.org/a_b_c_</a> now</em></p>",
        ),
        ("`_x_`", "<p><code>_x_</code></p>"),
    ],
)
def test_underscore_italics(text: str, html_out: str) -> None:
    assert str(render_markdown(text)) == html_out


def test_underscore_openers_render_as_plain_text() -> None:
    text = "_a " * 3000
    assert str(render_markdown(text)) == "<p>" + text.strip() + "</p>"


identifier = st.from_regex(r"\A[a-z][a-z0-9]{0,5}(_[a-z0-9]{1,5}){1,4}\Z")


@settings(max_examples=200, deadline=None)
@given(names=st.lists(identifier, min_size=1, max_size=8))
def test_snake_case_words_are_never_italic(names: list[str]) -> None:
    text = " ".join(names)
    assert str(render_markdown(text)) == f"<p>{text}</p>"


@settings(max_examples=200, deadline=None)
@given(
    words=st.text(alphabet=st.sampled_from(list("ab_*<>&\"' ")), min_size=1, max_size=40),
)
def test_underscore_and_star_markup_nest_or_stay_text(words: str) -> None:
    structure(f"_{words}_ **{words}** *{words}*")


def test_sub_as_ghapp_comments_end_renders_as_github_does() -> None:
    html = render_markdown(
        "done\n\n<sub>2 turns · $0.02 · [run](https://ghapp.example/runs/2)</sub>"
    )
    assert '<sub>2 turns · $0.02 · <a href="https://ghapp.example/runs/2"' in html
    assert html.endswith("</a></sub></p>")


@pytest.mark.parametrize(
    "text",
    [
        "<sub><script>alert(1)</script></sub>",
        "<sub>x</sub onclick=1>",
        "<sub>unclosed",
        "<sub>a &amp; b</sub>",
        "<SUB>x</SUB>",
    ],
)
def test_only_a_plain_sub_pair_becomes_a_tag(text: str) -> None:
    html = render_markdown(text)
    assert "<script" not in html and "onclick=" not in html.replace("onclick=1&gt;", "")
    assert "<sub>" not in html
