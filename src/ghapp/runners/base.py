"""What every runner is: given one session's request, run it and say how it ended.

The worker keeps one runner per name (``claude``, ``shell``, ``builtin``; a job's
``runner``) and hands each session a :class:`SessionRequest`. Whatever ran, the session
ends as one :class:`Outcome`, so reporting, counters and notifications do not care which
runner it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ghapp.repo_commands import Command
    from ghapp.sandbox import Sandbox
    from ghapp.worker.rows import JobRow
    from ghapp.worker.transcripts import Resume
    from ghapp.worker.trust import Policy


@dataclass
class Progress:
    """What is known while the session runs (stored as the session's event log)."""

    agent_session_id: str | None = None
    turns: int = 0
    tools: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


ProgressCallback = Callable[[Progress, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: str  # completed | failed | timed_out | cancelled
    result_text: str | None
    error: str | None
    agent_session_id: str | None
    num_turns: int
    cost_usd: float
    duration_ms: int
    exit_code: int | None
    subtype: str | None = None
    usage: dict[str, Any] | None = None  # tokens, as the CLI's result reported them
    permission_denials: list[Any] | None = None  # tool calls the CLI refused
    structured: Any = None  # the CLI's structured_output, as it came (see ghapp.structured)
    structured_result: dict[str, Any] | None = None  # that object, once checked by ghapp
    structured_error: str | None = None  # why there is none, when the command wanted one
    # The CLI's transcript (.jsonl) read back after the session, to be kept for a follow-up
    # (ghapp.worker.transcripts); None for other runners or when none was written or kept.
    transcript: bytes | None = field(default=None, repr=False)


def refused(reason: str) -> Outcome:
    """A session that was not started, and why."""
    return Outcome(False, "failed", None, reason, None, 0, 0.0, 0, None)


class SessionLog(Protocol):
    """Where a runner tells how its session goes while it runs (the run page shows it)."""

    async def named(self, agent_session_id: str) -> None:
        """The agent's session id, chosen before the agent starts."""

    async def progress(self, progress: Progress, event: dict[str, Any]) -> None:
        """One more event of the session."""

    async def flush(self) -> None:
        """The session is over: store whatever is not stored yet."""


@dataclass(frozen=True)
class SessionRequest:
    """One session: where it runs, what it is told, and what it may do."""

    checkout: Path  # the fresh checkout; its parent folder is the session's scratch space
    prompt: str
    job: JobRow  # the runner's own settings: shell command, model, turns, budget, time limit
    policy: Policy  # tools, permission mode and project settings, from the item's trust
    command: Command | None  # the repository's own command the prompt came from, if any
    sandbox: Sandbox
    cancel: asyncio.Event
    log: SessionLog
    resume: Resume | None = None  # an earlier session's transcript: continue that conversation


class Runner(Protocol):
    async def run(self, request: SessionRequest) -> Outcome:
        """Run the session to its end: how it ended (failed, timed out, cancelled…) is the
        outcome."""
        ...
