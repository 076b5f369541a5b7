"""Commands from the repository's ``.claude/commands/**/*.md``, next to the built-ins.

A file ``.claude/commands/issue/label.md`` is the command ``issue/label``; a file directly in
``.claude/commands/`` is ``repo/<name>``. Its optional YAML front matter gives
``description``, ``allowed-tools``, ``model`` and ``argument-hint`` (Claude Code's names),
ghapp's ``output-schema`` (a JSON Schema as a YAML mapping or one line of JSON, checked by
``ghapp.structured.check_schema``: its sessions return a structured result) and ``open-to``
(``writers``, the default, or ``readers``: see ``ghapp.tiers``). A file whose front matter
is wrong (a bad schema, a command open to readers whose tools are not all read-only) is
left out and named in ``problems``. The rest is the prompt, where ``$ARGUMENTS`` is
replaced by what followed the slash command. The first directory says which targets it is
for: ``issue`` → issues, ``pr`` → pull requests, ``codebase`` and ``context`` → the
codebase; any other directory → any target. A repository command with a built-in's id
overrides the built-in for that repository. Repository text is only ever substituted,
never rendered as a template.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import col

from ghapp import structured
from ghapp.commands import BUILTIN, item_block
from ghapp.jobs.spec import BUILTIN_COMMANDS
from ghapp.tiers import BUILTIN_READERS, READER_TOOLS, READERS, WRITERS, tier_problem
from ghapp.untrusted import clean

COMMANDS_DIR = ".claude/commands"
MAX_FILES = 200
MAX_BYTES = 100_000
_SEGMENT = re.compile(r"[^a-z0-9_-]+")
TARGETS_BY_DIR = {
    "issue": frozenset({"issues"}),
    "issues": frozenset({"issues"}),
    "pr": frozenset({"prs"}),
    "prs": frozenset({"prs"}),
    "codebase": frozenset({"codebase"}),
    "context": frozenset({"codebase"}),
}
DESCRIPTIONS = {
    "issue/triage": "Classify an issue, name the code it concerns, propose labels",
    "issue/root-cause": "Find the root cause of an issue and outline a fix",
    "pr/review": "Review a pull request: bugs, unclear code, missing tests",
    "pr/security-review": "Review a pull request for security problems",
    "codebase/health-check": "A short health report of the repository",
    "context/analyze": "Score the CLAUDE.md files (built-in analyzer, no agent)",
    "context/optimize": "Propose a slimmer, clearer CLAUDE.md",
    "code/ask": "Answer a question about the code (open to readers, read-only)",
}


@dataclass(frozen=True)
class Command:
    id: str
    prompt: str
    description: str = ""
    targets: frozenset[str] = frozenset()  # empty: any target
    allowed_tools: tuple[str, ...] = ()
    model: str | None = None
    argument_hint: str | None = None
    source: str = "builtin"  # builtin | repository
    path: str | None = None
    open_to: str = WRITERS  # who may start it by a comment: writers | readers (ghapp.tiers)
    output_schema: dict[str, Any] | None = None  # its structured result (ghapp.structured)

    def for_target(self, target_type: str) -> bool:
        return not self.targets or target_type in self.targets

    def render(self, item: dict[str, Any] | None, arguments: str) -> str:
        """A repository command: ``$ARGUMENTS`` substituted, the item's details appended."""
        text = self.prompt.replace("$ARGUMENTS", clean(arguments))
        details = item_block(item, "" if "$ARGUMENTS" in self.prompt else arguments)
        return (text.rstrip() + ("\n\n" + details if details.strip() else "")).strip() + "\n"


@dataclass
class Catalog:
    """Built-ins overridden by a repository's own commands."""

    commands: dict[str, Command] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # files that could not be read

    def for_target(self, target_type: str | None) -> list[Command]:
        chosen = [c for c in self.commands.values() if not target_type or c.for_target(target_type)]
        return sorted(chosen, key=lambda command: command.id)

    def targets(self) -> dict[str, frozenset[str]]:
        """Command id → target types, as job validation wants it."""
        return {command.id: command.targets for command in self.commands.values()}


def builtin_catalog() -> Catalog:
    return Catalog(
        {
            command_id: Command(
                command_id,
                BUILTIN[command_id],
                DESCRIPTIONS.get(command_id, ""),
                BUILTIN_COMMANDS[command_id],
                **_reader_fields(command_id),
            )
            for command_id in BUILTIN_COMMANDS
        }
    )


def command_id_of(relative: str) -> str | None:
    """``issue/label.md`` → ``issue/label``; ``deploy.md`` → ``repo/deploy``."""
    if not relative.endswith(".md"):
        return None
    parts = [_SEGMENT.sub("-", part.lower()).strip("-") for part in relative[:-3].split("/")]
    if not all(parts):
        return None
    return "/".join(parts if len(parts) > 1 else ["repo", *parts])


def parse_command(relative: str, text: str) -> Command:
    """One command file; raises ValueError naming the problem."""
    command_id = command_id_of(relative)
    if command_id is None:
        raise ValueError(f"{relative}: not a command file name")
    meta: dict[str, Any] = {}
    body = text
    if text.startswith("---"):
        head, sep, rest = text[3:].partition("\n---")
        if not sep:
            raise ValueError(f"{relative}: front matter is not closed with ---")
        loaded = yaml.safe_load(head) if head.strip() else {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{relative}: front matter must be a mapping")
        meta, body = loaded, rest.split("\n", 1)[1] if "\n" in rest else ""
    tools = meta.get("allowed-tools") or ()
    if isinstance(tools, str):
        tools = [tool.strip() for tool in tools.split(",") if tool.strip()]
    open_to = meta.get("open-to", WRITERS)
    problem = tier_problem(open_to, [str(tool) for tool in tools])
    if problem is not None:
        raise ValueError(f"{relative}: {problem}")
    schema = _output_schema(relative, meta.get("output-schema"))
    first = command_id.split("/", 1)[0]
    return Command(
        id=command_id,
        prompt=body.strip() + "\n",
        description=str(meta.get("description") or ""),
        targets=TARGETS_BY_DIR.get(first, frozenset()),
        allowed_tools=tuple(map(str, tools)),
        model=str(meta["model"]) if meta.get("model") else None,
        argument_hint=str(meta["argument-hint"]) if meta.get("argument-hint") else None,
        source="repository",
        path=f"{COMMANDS_DIR}/{relative}",
        open_to=str(open_to),
        output_schema=schema,
    )


def _output_schema(relative: str, declared: Any) -> dict[str, Any] | None:
    """Front matter ``output-schema``: a YAML mapping, or JSON text on one line."""
    if declared is None:
        return None
    if isinstance(declared, str):
        try:
            declared = json.loads(declared)
        except ValueError as exc:
            raise ValueError(f"{relative}: output-schema is not JSON: {exc}") from None
    try:
        structured.check_schema(declared)
    except ValueError as exc:
        raise ValueError(f"{relative}: output-schema: {exc}") from None
    return dict(declared)


def _reader_fields(command_id: str) -> dict[str, Any]:
    """A built-in open to readers is read-only by its own definition too."""
    if command_id not in BUILTIN_READERS:
        return {}
    return {"open_to": READERS, "allowed_tools": READER_TOOLS}


def merge(files: dict[str, str]) -> Catalog:
    """Built-ins, then each readable repository file (relative path → text) over them."""
    catalog = builtin_catalog()
    for relative in sorted(files)[:MAX_FILES]:
        try:
            command = parse_command(relative, files[relative])
        except (ValueError, yaml.YAMLError) as exc:
            catalog.problems.append(str(exc).splitlines()[0])
            continue
        catalog.commands[command.id] = command
    return catalog


def from_checkout(work: Path) -> Catalog:
    """The catalog of a checked-out repository."""
    root = work / COMMANDS_DIR
    files: dict[str, str] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*.md")):
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
                continue  # a link could point outside the checkout
            files[path.relative_to(root).as_posix()] = path.read_text(errors="replace")
    return merge(files)


async def from_github(gh: Any, full_name: str, ref: str | None = None) -> Catalog:
    """The catalog of a repository read through the contents API (no checkout)."""
    files: dict[str, str] = {}
    await _walk(gh, full_name, COMMANDS_DIR, ref, files)
    return merge(files)


async def _walk(gh: Any, full_name: str, path: str, ref: str | None, out: dict[str, str]) -> None:
    from gidgethub import BadRequest

    query = f"?ref={ref}" if ref else ""
    try:
        entries = await gh.getitem(f"/repos/{full_name}/contents/{path}{query}")
    except BadRequest as exc:
        if exc.status_code == 404:
            return  # no such directory: no repository commands
        raise
    for entry in entries if isinstance(entries, list) else []:
        if len(out) >= MAX_FILES:
            return
        if entry["type"] == "dir":
            await _walk(gh, full_name, entry["path"], ref, out)
        elif entry["type"] == "file" and entry["name"].endswith(".md"):
            data = await gh.getitem(f"/repos/{full_name}/contents/{entry['path']}{query}")
            text = base64.b64decode(data.get("content") or "").decode(errors="replace")
            out[entry["path"][len(COMMANDS_DIR) + 1 :]] = text[:MAX_BYTES]


class CommandCatalogs:
    """Each repository's catalog, read through the GitHub API and kept for a minute."""

    TTL_S = 60.0

    def __init__(self, db: Any, github: Any, clock: Any) -> None:
        self.db = db
        self.github = github
        self.clock = clock
        self._cache: dict[int, tuple[float, Catalog]] = {}

    async def of(self, repo_id: int) -> Catalog:
        now = self.clock.now().timestamp()
        cached = self._cache.get(repo_id)
        if cached is not None and now - cached[0] < self.TTL_S:
            return cached[1]
        from sqlalchemy import select

        from ghapp.db.models import Repository

        async with self.db.read() as conn:
            repo = (
                await conn.execute(select(Repository).where(col(Repository.id) == repo_id))
            ).first()
        if repo is None or repo.installation_id is None:
            return builtin_catalog()
        gh = await self.github.for_installation(repo.installation_id)
        catalog = await from_github(gh, repo.full_name)  # the default branch, as GitHub has it
        self._cache[repo_id] = (now, catalog)
        return catalog

    def forget(self, repo_id: int) -> None:
        self._cache.pop(repo_id, None)
