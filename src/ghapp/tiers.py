"""Trust tiers: who may start a command with a slash command in a comment.

``writers`` (the default): people GitHub reports ``write``, ``maintain`` or ``admin``.
``readers``: anyone GitHub reports at least ``read`` — on a public repository that is every
GitHub user, so such a command must be harmless: it may only read the checkout. A command
is open to readers only if its ``allowed-tools`` are all in :data:`READER_TOOLS` (no write
or exec tools, no network); checked when the command is defined, and the session a reader
starts is read-only again whatever the command or its job says (a repository's own command
files may be written by an attacker).

A readers command also changes nothing on GitHub through its result: a job whose command is
open to readers may declare an output schema (the result is shown in the comment) but no
``structured_actions`` (refused when the job is saved, and never acted on at run time), and
its report always goes to the tracking comment whatever the job's ``report`` says (a report
issue would let a reader create issues).
"""

from __future__ import annotations

from collections.abc import Sequence

WRITERS, READERS = "writers", "readers"
TIERS = (WRITERS, READERS)
READER_TOOLS = (
    "Read",
    "Glob",
    "Grep",
)  # reading the checkout; nothing that writes, runs or fetches
READER_PERMISSIONS = frozenset({"read", "triage", "write", "maintain", "admin"})
BUILTIN_READERS = frozenset({"code/ask"})  # built-in commands open to readers
NO_ACTIONS = "the command is open to readers: its result is shown, never acted on"
READERS_NEVER_ACT = "a session of a command open to readers never acts on its result"


def tier_problem(open_to: object, tools: Sequence[str]) -> str | None:
    """Why a command with these tools may not be open to ``open_to``, or None."""
    if open_to not in TIERS:
        return f"open-to must be {' or '.join(TIERS)}, not {open_to!r}"
    if open_to == WRITERS:
        return None
    if not tools:
        return "open-to: readers needs allowed-tools naming only " + ", ".join(READER_TOOLS)
    wider = [tool for tool in tools if tool.strip() not in READER_TOOLS]
    if wider:
        return (
            f"open-to: readers allows only the read-only tools {', '.join(READER_TOOLS)}; "
            f"not {', '.join(wider)}"
        )
    return None
