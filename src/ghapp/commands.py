"""Prompt templates: built-in commands, rendered in a sandbox (SPEC §4).

A command is a named prompt template (``issue/triage``, ``pr/security-review``). The item's
context — title, body, labels, author, URL, PR base/head — is given to the template, which
is rendered by Jinja2's sandboxed environment: repository content never executes code in
ghapp. Repository commands from ``.claude/commands/`` join these: see ``repo_commands``.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ghapp.untrusted import clean, fence

_ENV = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True)

_ITEM = """\
{% if item.number %}{{ item.kind | upper }} #{{ item.number }}: {{ item.title }}
URL: {{ item.url }}
Author: {{ item.author }}{% if item.labels %} · Labels: {{ item.labels | join(", ") }}{% endif %}
{% if item.base %}Base: {{ item.base }} · Head: {{ item.head }}
{% endif %}
{{ item.body }}
{% endif %}{% if arguments %}
Requested with: {{ arguments }}
{% endif %}"""

BUILTIN: dict[str, str] = {
    "issue/triage": (
        "Triage this GitHub issue for the repository checked out in the current directory.\n"
        "Decide: is it a bug, a feature request, a question or a duplicate; how severe; which "
        "part of the code it concerns (name files). Propose labels and a next step. Be brief "
        "and concrete; do not change any file.\n\n"
    ),
    "issue/root-cause": (
        "Find the root cause of this GitHub issue in the repository checked out in the "
        "current directory. Read the relevant code, explain the cause with file and line "
        "references, and outline a fix. Do not change any file.\n\n"
    ),
    "pr/review": (
        "Review this pull request (its head is checked out in the current directory; compare "
        "with the base branch using git). Point out bugs, unclear code and missing tests, "
        "each with file and line. Say what is good too. Do not change any file.\n\n"
    ),
    "pr/security-review": (
        "Review this pull request for security problems only: injection, authentication and "
        "authorization mistakes, secrets, unsafe deserialisation, path traversal, SSRF, "
        "dependency risks. For each finding give file, line, impact and a fix. If there is "
        "nothing, say so plainly. Do not change any file.\n\n"
    ),
    "codebase/health-check": (
        "Give a short health report of the repository in the current directory: tests and "
        "how to run them, obvious bugs, risky areas, outdated dependencies, and the three "
        "most valuable improvements. Do not change any file.\n"
    ),
    "context/analyze": (
        "Analyse the CLAUDE.md files of this repository: size, duplicated or stale content, "
        "references to paths that do not exist. Do not change any file.\n"
    ),
    "context/optimize": (
        "Make the CLAUDE.md files of this repository shorter and clearer without losing "
        "instructions that still apply: remove duplication and stale references.\n"
    ),
}


def item_context(item: dict[str, Any] | None) -> dict[str, Any]:
    """What templates see of an issue or PR (from an ItemEvent or a search result): every
    text a stranger could have written is cleaned of what people cannot see."""
    if not item:
        return {}
    pull = item.get("pull") or {}
    labels = item.get("labels") or []
    return {
        "kind": "pr" if item.get("item_kind") == "pr" or "pull_request" in item else "issue",
        "number": item.get("number"),
        "title": clean(item.get("title") or ""),
        "body": clean(item.get("body") or ""),
        "url": item.get("html_url") or item.get("url") or "",
        "author": item.get("author_login") or (item.get("user") or {}).get("login", ""),
        "labels": [
            clean(label if isinstance(label, str) else label.get("name", "")) for label in labels
        ],
        "base": clean(pull.get("base_ref") or "") or None,
        "head": clean(pull.get("head_ref") or "") or None,
    }


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    """Compiling a template costs ~1 ms; the same few prompts are rendered for every session."""
    return _ENV.from_string(source)


def item_block(item: dict[str, Any] | None, arguments: str) -> str:
    """The item's details (and the command's arguments), as every prompt ends: fenced off
    as material to work on, never instructions (see ``ghapp.untrusted``)."""
    details = _compiled(_ITEM).render(item=item_context(item), arguments=clean(arguments))
    return fence(details.strip(), "The issue or pull request") if details.strip() else ""


def render_prompt(
    command_id: str | None, custom_prompt: str | None, item: dict[str, Any] | None, arguments: str
) -> str:
    if command_id and command_id not in BUILTIN:  # a repository's own: read from its checkout
        return f"(the repository command {command_id}, read from the checkout)\n"
    source = BUILTIN[command_id] if command_id else (custom_prompt or "")
    instructions = _compiled(source).render(item=item_context(item), arguments=clean(arguments))
    details = item_block(item, arguments)
    return (instructions.strip() + ("\n\n" + details if details else "")).strip() + "\n"
