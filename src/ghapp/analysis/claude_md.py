"""``context/analyze``: measure a checkout's CLAUDE.md files and score them 0-100.

**Files.** Every ``CLAUDE.md`` (and ``CLAUDE.local.md``) in the checkout: the root one,
nested ones (``packages/api/CLAUDE.md``) and ``.claude/CLAUDE.md``. Directories in
:data:`SKIP_DIRS` (``.git``, ``node_modules``, virtualenvs, build output) are not entered
and symbolic links to directories are not followed; a CLAUDE.md that is a link to a
file outside the checkout is not read (``unreadable_file``). At most
:data:`MAX_FILE_BYTES` of a file are read. Files are reported root first, then by path.

**Tokens** are an estimate (no tokenizer is shipped with ghapp), the mean of two common
approximations, rounded up::

    tokens(text) = ceil((ceil(chars / 4) + pieces) / 2)

where ``chars`` is the number of characters and ``pieces`` the number of matches of
``\\w+|[^\\w\\s]`` (words and single punctuation marks). The character rule alone
undercounts punctuation-heavy text (code, tables) and the piece rule alone undercounts
long words; for English prose and markdown the mean stays within about 10-15 % of
Claude's tokenizer. Example: ``"Hello, world!"`` has 13 characters (4) and 4 pieces:
4 tokens.

**Sections** are ATX headings (``#`` to ``######``) outside fenced code blocks. A
section's tokens are those of its heading line and the lines up to the next heading.
A section with no content and no subsections is an ``empty_section``; one whose
content is shorter than :data:`SHORT_SECTION_TOKENS` tokens is a ``short_section``.

**Duplicated lines**: a non-trivial line (at least :data:`DUPLICATE_MIN_CHARS`
characters and three words after collapsing whitespace and dropping a list bullet;
headings, fence markers and table rules never count) that repeats an earlier line of
the same file or of an earlier file, compared case-insensitively. Each repetition is
one ``duplicate_line`` issue at the repeating line, naming the first occurrence.

**Paths**: references in inline code spans, markdown links and Claude Code imports
(``@docs/style.md``) outside fenced code are checked against the checkout, relative to
the file's directory and to the repository root. Ignored as not obviously a path: URLs
and anything with a scheme, absolute and home paths (``/usr``, ``~/.claude``), globs
and placeholders (``*?[]{}<>$``), anything with spaces, ``path/to/…``, domains
(``github.com/x``), build and dependency directories (:data:`SKIP_DIRS`), and bare
names without a known file extension (``Node.js`` and friends are names, not files).
A slash-free file name (``conftest.py``) exists if a file of that name exists anywhere
in the checkout; an extensionless ``a/b`` is only checked when ``a`` exists (so
``owner/repo`` and ``text/plain`` are not flagged). A ``:12`` line suffix, a link's
``#anchor`` and a ``#L12`` are dropped. Each missing path is one ``missing_path`` issue
per file, at its first mention. A path that leaves the checkout (``../../x``) is missing too.

**Oversized files**: more than :data:`OVERSIZED_TOKENS` tokens is ``oversized_file``,
more than :data:`VERY_OVERSIZED_TOKENS` is ``very_oversized_file`` (instead).

**Score**: 100 minus, per issue kind, points per issue up to a cap for the kind
(:data:`DEDUCTIONS`), never below 0. No CLAUDE.md at all scores 0 (``no_claude_md``):
the agent gets no project context.

================================  ==========  =============
kind                              per issue   at most
================================  ==========  =============
``very_oversized_file``           30          60
``oversized_file``                15          30
``missing_path``                  5           30
``duplicate_line``                2           20
``empty_section``                 3           15
``short_section``                 1           5
``unreadable_file``               10          20
================================  ==========  =============
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ghapp.runners.builtin import analyzer, current

CLAUDE_MD_NAMES = frozenset({"CLAUDE.md", "CLAUDE.local.md"})
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "bower_components",
        "vendor",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "dist",
        "build",
        "target",
        "out",
        ".next",
        ".nuxt",
        ".gradle",
        ".idea",
        ".terraform",
        "site-packages",
        "coverage",
        ".cache",
    }
)
MAX_FILE_BYTES = 2_000_000  # a CLAUDE.md this large is far past any useful size anyway
MAX_FILES = 500  # CLAUDE.md files analysed per checkout

OVERSIZED_TOKENS = 5_000  # warning: a large share of every session's context
VERY_OVERSIZED_TOKENS = 10_000  # severe
SHORT_SECTION_TOKENS = 4  # a section body below this says next to nothing
DUPLICATE_MIN_CHARS = 20  # shorter lines ("```", "- Done") repeat harmlessly

# kind -> (points per issue, most points for the kind)
DEDUCTIONS: dict[str, tuple[int, int]] = {
    "very_oversized_file": (30, 60),
    "oversized_file": (15, 30),
    "missing_path": (5, 30),
    "duplicate_line": (2, 20),
    "empty_section": (3, 15),
    "short_section": (1, 5),
    "unreadable_file": (10, 20),
}
ESTIMATE_METHOD = "ceil((ceil(characters / 4) + words and punctuation marks) / 2)"

# File extensions a slash-free name must have to be taken for a file.
KNOWN_EXTENSIONS = frozenset(
    {
        "md",
        "mdx",
        "txt",
        "rst",
        "adoc",
        "py",
        "pyi",
        "ipynb",
        "js",
        "mjs",
        "cjs",
        "ts",
        "tsx",
        "jsx",
        "json",
        "jsonc",
        "yml",
        "yaml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "env",
        "lock",
        "sh",
        "bash",
        "zsh",
        "ps1",
        "rs",
        "go",
        "java",
        "kt",
        "kts",
        "scala",
        "rb",
        "php",
        "cs",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "m",
        "swift",
        "dart",
        "lua",
        "sql",
        "graphql",
        "proto",
        "html",
        "css",
        "scss",
        "sass",
        "less",
        "vue",
        "svelte",
        "xml",
        "gradle",
        "tf",
        "ex",
        "exs",
        "erl",
        "hs",
        "ml",
        "r",
        "jl",
        "mk",
        "cmake",
        "dockerfile",
        "csv",
        "svg",
        "png",
    }
)
# "Node.js" is a runtime, not a file: .js names whose stem is one of these are names.
JS_NAMES = frozenset(
    {
        "node",
        "vue",
        "next",
        "nuxt",
        "nest",
        "express",
        "three",
        "d3",
        "chart",
        "ember",
        "backbone",
        "react",
        "angular",
        "deno",
        "solid",
        "alpine",
        "p5",
        "moment",
        "socket",
        "pixi",
        "babylon",
        "anime",
        "video",
        "paper",
        "fabric",
        "handlebars",
        "knockout",
    }
)

_PIECE = re.compile(r"\w+|[^\w\s]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_WORD = re.compile(r"\w+")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^()\s<>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_IMPORT = re.compile(r"(?:^|(?<=\s))@([^\s`]+)")
_SCHEME = re.compile(r"^[A-Za-z][\w+.-]*:")
_LINE_SUFFIX = re.compile(r":\d+(?::\d+)?(?:-\d+)?$")
_NOT_A_PATH = set("*?[]{}<>()$%=!'\"|\\,;&^`@")
_EXTENSION = re.compile(r"(?<=[^./])\.([A-Za-z][A-Za-z0-9]{0,9})$")


def count_tokens(text: str) -> int:
    """The token estimate of the module docstring."""
    if not text:
        return 0
    return math.ceil((math.ceil(len(text) / 4) + len(_PIECE.findall(text))) / 2)


@dataclass(frozen=True)
class Section:
    title: str
    level: int
    line: int
    tokens: int


@dataclass(frozen=True)
class Issue:
    kind: str
    file: str | None
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FileReport:
    path: str  # relative to the checkout, with forward slashes
    tokens: int
    lines: int
    chars: int
    sections: list[Section] = field(default_factory=list)


@dataclass
class Analysis:
    files: list[FileReport]
    issues: list[Issue]
    score: int
    deductions: dict[str, int]  # kind -> points taken off

    @property
    def total_tokens(self) -> int:
        return sum(f.tokens for f in self.files)


def score(issues: list[Issue], files: int) -> tuple[int, dict[str, int]]:
    """100 minus the capped deductions per kind (0 without any CLAUDE.md)."""
    if files == 0:
        return 0, {"no_claude_md": 100}
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.kind] = counts.get(issue.kind, 0) + 1
    taken = {}
    for kind, count in counts.items():
        each, most = DEDUCTIONS.get(kind, (0, 0))
        if each:
            taken[kind] = min(each * count, most)
    return max(0, 100 - sum(taken.values())), taken


# == finding and reading ===============================================================


def analyze(root: Path) -> Analysis:
    """Analyse the CLAUDE.md files of the checkout at ``root`` (blocking: file I/O)."""
    return _Analyzer(Path(root).resolve()).run()


class _Analyzer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: set[str] = set()  # every file and directory name in the checkout
        self.issues: list[Issue] = []

    def run(self) -> Analysis:
        found = self._walk()
        files: list[FileReport] = []
        texts: list[tuple[str, Path, list[str]]] = []
        for path in found:
            rel = path.relative_to(self.root).as_posix()
            text = self._read(path, rel)
            if text is None:
                continue
            lines = text.splitlines()
            report = FileReport(rel, count_tokens(text), len(lines), len(text))
            report.sections = self._sections(rel, lines)
            self._size(report)
            files.append(report)
            texts.append((rel, path.parent, lines))
        self._duplicates(texts)
        for rel, directory, lines in texts:
            self._paths(rel, directory, lines)
        if not files:
            self.issues.append(
                Issue(
                    "no_claude_md",
                    None,
                    None,
                    "no CLAUDE.md in the repository: sessions start without project context",
                )
            )
        order = {report.path: index for index, report in enumerate(files)}
        self.issues.sort(key=lambda i: (order.get(i.file or "", -1), i.line or 0))
        points, taken = score(self.issues, len(files))
        return Analysis(files, self.issues, points, taken)

    def _walk(self) -> list[Path]:
        found: list[Path] = []
        for directory, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            self.names.update(dirnames)
            self.names.update(filenames)
            found += [Path(directory, name) for name in filenames if name in CLAUDE_MD_NAMES]
        found.sort(key=lambda p: (len(p.relative_to(self.root).parts), p.as_posix()))
        return found[:MAX_FILES]

    def _read(self, path: Path, rel: str) -> str | None:
        real = Path(os.path.realpath(path))
        if not _within(real, self.root) or not real.is_file():
            self.issues.append(
                Issue(
                    "unreadable_file",
                    rel,
                    None,
                    "links outside the repository or is not a regular file; not read",
                )
            )
            return None
        with real.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES)
        return data.decode("utf-8", "replace").removeprefix("\ufeff")

    # == per-file checks =============================================================

    def _size(self, report: FileReport) -> None:
        if report.tokens > VERY_OVERSIZED_TOKENS:
            self.issues.append(
                Issue(
                    "very_oversized_file",
                    report.path,
                    None,
                    f"{report.tokens:,} tokens (more than "
                    f"{VERY_OVERSIZED_TOKENS:,}) are loaded into every "
                    "session",
                )
            )
        elif report.tokens > OVERSIZED_TOKENS:
            self.issues.append(
                Issue(
                    "oversized_file",
                    report.path,
                    None,
                    f"{report.tokens:,} tokens (more than "
                    f"{OVERSIZED_TOKENS:,}) are loaded into every "
                    "session",
                )
            )

    def _sections(self, rel: str, lines: list[str]) -> list[Section]:
        headings = list(_headings(lines))
        sections = []
        for index, (number, level, title) in enumerate(headings):
            end = headings[index + 1][0] if index + 1 < len(headings) else len(lines) + 1
            body = "\n".join(lines[number : end - 1])  # after the heading line
            tokens = count_tokens("\n".join(lines[number - 1 : end - 1]))
            sections.append(Section(title, level, number, tokens))
            has_children = index + 1 < len(headings) and headings[index + 1][1] > level
            if has_children:
                continue
            body_tokens = count_tokens(body.strip())
            if body_tokens == 0:
                self.issues.append(
                    Issue("empty_section", rel, number, f"section {_code(title)} is empty")
                )
            elif body_tokens < SHORT_SECTION_TOKENS:
                self.issues.append(
                    Issue(
                        "short_section",
                        rel,
                        number,
                        f"section {_code(title)} has only {body_tokens} tokens of content",
                    )
                )
        return sections

    def _duplicates(self, texts: list[tuple[str, Path, list[str]]]) -> None:
        first: dict[str, tuple[str, int]] = {}
        for rel, _directory, lines in texts:
            for number, line, in_fence in _lines(lines):
                key = _duplicate_key(line, in_fence)
                if key is None:
                    continue
                if key not in first:
                    first[key] = (rel, number)
                    continue
                where, at = first[key]
                origin = f"line {at}" if where == rel else _code(f"{where}:{at}")
                self.issues.append(Issue("duplicate_line", rel, number, f"repeats {origin}"))

    def _paths(self, rel: str, directory: Path, lines: list[str]) -> None:
        seen: set[str] = set()
        for number, line, in_fence in _lines(lines):
            if in_fence:
                continue
            for token in _references(line):
                if token in seen:
                    continue
                seen.add(token)
                state = self._check(token, directory)
                if state == "missing":
                    message = f"{_code(token)} does not exist in the checkout"
                elif state == "outside":
                    message = f"{_code(token)} points outside the repository"
                else:
                    continue
                self.issues.append(Issue("missing_path", rel, number, message))

    def _check(self, token: str, directory: Path) -> str:
        """``exists``, ``missing``, ``outside`` or ``ignored`` (not obviously a path)."""
        parts = [p for p in token.split("/") if p not in ("", ".")]
        named = [p for p in parts if p != ".."]
        if not named or named[0] in SKIP_DIRS or "path/to/" in token.lower():
            return "ignored"
        extension = _EXTENSION.search(parts[-1])
        directory_ref = token.endswith("/")
        if len(parts) == 1:  # a bare name: a directory (``src/``) or a known kind of file
            if not directory_ref:
                kind = extension.group(1).lower() if extension else ""
                stem = parts[0][: extension.start()] if extension else ""
                if kind not in KNOWN_EXTENSIONS or (kind == "js" and stem.lower() in JS_NAMES):
                    return "ignored"
            if parts[0] in self.names:
                return "exists"
            return self._exists(token, directory) or "missing"
        first = named[0]
        if len(named) > 1 and "." in first and not first.startswith("."):
            return "ignored"  # a domain: github.com/owner/repo, example.org/x
        if extension is None and not directory_ref:
            # owner/repo, text/plain, feature/x: a path only when its first part is one
            prefix = "/".join(parts[: parts.index(first) + 1])
            if self._exists(prefix, directory) != "exists":
                return "ignored"
        return self._exists(token, directory) or "missing"

    def _exists(self, token: str, directory: Path) -> str:
        """``exists`` relative to the file's directory or the root; else ``outside`` if
        every reading leaves the checkout, else empty."""
        outside = True
        for base in (directory, self.root):
            joined = Path(os.path.normpath(os.path.join(base, token)))
            if not _within(joined, self.root):
                continue
            outside = False
            real = Path(os.path.realpath(joined))
            if _within(real, self.root) and real.exists():
                return "exists"
        return "outside" if outside else ""


# == markdown scanning =================================================================


def _lines(lines: list[str]) -> Iterator[tuple[int, str, bool]]:
    """(1-based number, line, inside a fenced code block); fence lines count as inside."""
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            yield number, line, True
        elif fence is not None:
            closing = line.strip()
            if closing and set(closing) == {fence[0]} and len(closing) >= len(fence):
                fence = None
            yield number, line, True
        else:
            yield number, line, False


def _headings(lines: list[str]) -> Iterator[tuple[int, int, str]]:
    for number, line, in_fence in _lines(lines):
        if in_fence:
            continue
        match = _HEADING.match(line)
        if match and match.group(2).strip():
            yield number, len(match.group(1)), match.group(2).strip()


def _duplicate_key(line: str, in_fence: bool) -> str | None:
    text = " ".join(line.split())
    if not text or _FENCE.match(text) or _TABLE_RULE.match(text):
        return None
    if not in_fence and _HEADING.match(text):
        return None
    text = _BULLET.sub("", text)
    if len(text) < DUPLICATE_MIN_CHARS or len(_WORD.findall(text)) < 3:
        return None
    return text.casefold()


def _references(line: str) -> Iterator[str]:
    """Path-like tokens from code spans, link targets and @imports on one line."""
    for match in _CODE_SPAN.finditer(line):
        token = _clean(match.group(2).strip())
        if token:
            yield token
    rest = _CODE_SPAN.sub(" ", line)
    for match in _LINK.finditer(rest):
        token = _clean(urllib.parse.unquote(match.group(1)), link=True)
        if token:
            yield token
    rest = _LINK.sub(" ", rest)
    for match in _IMPORT.finditer(rest):
        raw = match.group(1).rstrip(".,;:!?)")
        if "/" in raw or _EXTENSION.search(raw):
            token = _clean(raw)
            if token:
                yield token


def _clean(token: str, link: bool = False) -> str | None:
    """The token as a relative path, or None when it is not obviously one."""
    if not token or len(token) > 200 or any(c.isspace() for c in token):
        return None
    if token.startswith(("/", "~", "#", "-", "+")):
        return None
    if link or "#L" in token:
        token = token.split("#", 1)[0].split("?", 1)[0]
    token = _LINE_SUFFIX.sub("", token)
    if not token or _SCHEME.match(token) or any(c in _NOT_A_PATH for c in token):
        return None
    if token.startswith("./"):
        token = token[2:]
    return token or None


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# == the built-in analyzer =============================================================


@analyzer("context/analyze")
async def analyze_context(work: Path, job: Any) -> str:
    """The ``runner: builtin`` job: analyse, store the result (when the worker handed a
    database), return the markdown report."""
    from ghapp.analysis.results import repository_of_checkout, store_result

    analysis = await asyncio.to_thread(analyze, work)
    commit = await head_commit(work)
    context = current()
    if context.db is not None:
        repo_id = getattr(job, "repo_id", None) or await repository_of_checkout(context.db, work)
        if repo_id is not None:
            await store_result(
                context.db,
                analysis,
                repo_id=repo_id,
                job_id=getattr(job, "id", None),
                run_id=context.run_id,
                commit_sha=commit,
            )
    return render_report(analysis, commit=commit)


async def head_commit(work: Path) -> str | None:
    return await git_output(work, "rev-parse", "HEAD")


async def git_output(work: Path, *args: str) -> str | None:
    """One line of ``git`` output in the checkout, None if git fails."""
    process = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(work),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    text = out.decode("utf-8", "replace").strip()
    return text if process.returncode == 0 and text else None


# == the report ========================================================================

MAX_REPORTED_ISSUES = 200  # the rest is counted, so the report fits a GitHub comment


def render_report(analysis: Analysis, *, commit: str | None = None) -> str:
    """Markdown: score, per-file table, issues, sections, scoring. Repository text only
    appears inside code spans (no @mentions, no markdown injection)."""
    at = f" at `{commit[:12]}`" if commit else ""
    out = [
        f"## CLAUDE.md analysis: {analysis.score}/100",
        "",
        f"{len(analysis.files)} file{'s' if len(analysis.files) != 1 else ''}, "
        f"{analysis.total_tokens:,} tokens{at} (estimated: {ESTIMATE_METHOD}).",
        "",
    ]
    if analysis.files:
        per_file: dict[str, int] = {}
        for issue in analysis.issues:
            per_file[issue.file or ""] = per_file.get(issue.file or "", 0) + 1
        out += ["| file | tokens | lines | sections | issues |", "|---|---:|---:|---:|---:|"]
        for report in analysis.files:
            name = _code(report.path, table=True)
            out.append(
                f"| {name} | {report.tokens:,} | {report.lines:,} | "
                f"{len(report.sections)} | {per_file.get(report.path, 0)} |"
            )
        out.append("")
    out.append(f"### Issues ({len(analysis.issues)})")
    out.append("")
    if not analysis.issues:
        out.append("None found.")
    for issue in analysis.issues[:MAX_REPORTED_ISSUES]:
        where = issue.file or "repository"
        if issue.line:
            where += f":{issue.line}"
        out.append(f"- **{issue.kind}** {_code(where)}: {issue.message}")
    if len(analysis.issues) > MAX_REPORTED_ISSUES:
        out.append(f"- … and {len(analysis.issues) - MAX_REPORTED_ISSUES} more")
    out.append("")
    if any(report.sections for report in analysis.files):
        out += ["<details><summary>Sections</summary>", ""]
        for report in analysis.files:
            if not report.sections:
                continue
            out += [f"{_code(report.path)}", "", "| line | section | tokens |", "|---:|---|---:|"]
            for section in report.sections:
                title = "#" * section.level + " " + section.title
                out.append(f"| {section.line} | {_code(title, table=True)} | {section.tokens:,} |")
            out.append("")
        out += ["</details>", ""]
    if analysis.deductions:
        taken = ", ".join(f"{points} for {kind}" for kind, points in analysis.deductions.items())
        out.append(f"<sub>Score: 100 minus {taken}.</sub>")
    else:
        out.append("<sub>Score: 100, nothing to deduct.</sub>")
    return "\n".join(out)


def _code(text: str, table: bool = False) -> str:
    """``text`` as an inline code span: safe for backticks, @mentions and (in a table
    cell) pipes. Issue messages carry repository text this way only."""
    text = " ".join(text.split())[:120]
    if table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
