"""Built-in analyzers: work ghapp does itself, in the checkout, without an agent.

An analyzer is registered under a command id (``context/analyze`` in a later issue) and is
run for jobs with ``runner: builtin``. It gets the checkout and the job, and returns the
same :class:`~ghapp.runners.base.Outcome` as every runner, so reporting, counters and
notifications do not care which runner ran.

What else an analyzer may need (the database, to store its results) is available
during the call as :func:`current`, so the ``function(work, job)`` interface stays as it
is. Analyzers shipped with ghapp live in :data:`BUILTIN_MODULES`, imported on first use.
"""

from __future__ import annotations

import contextvars
import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghapp.runners.base import Outcome, SessionRequest

Analyzer = Callable[[Path, Any], Awaitable[str]]  # returns the result text (markdown)

REGISTRY: dict[str, Analyzer] = {}
BUILTIN_MODULES = ("ghapp.analysis.claude_md",)  # each registers its analyzers on import


@dataclass(frozen=True)
class BuiltinContext:
    """What the worker hands analyzers besides the checkout and the job."""

    db: Any = None  # ghapp.db.Database, to store results; None when not given
    run_id: int | None = None


_CONTEXT: contextvars.ContextVar[BuiltinContext | None] = contextvars.ContextVar(
    "ghapp_builtin_context", default=None
)


def current() -> BuiltinContext:
    """The context of the analyzer call in progress (empty outside one)."""
    return _CONTEXT.get() or BuiltinContext()


def load_builtins() -> None:
    for name in BUILTIN_MODULES:
        importlib.import_module(name)


def analyzer(command_id: str) -> Callable[[Analyzer], Analyzer]:
    """Register a built-in analyzer for a command id."""

    def register(function: Analyzer) -> Analyzer:
        REGISTRY[command_id] = function
        return function

    return register


class BuiltinRunner:
    """ghapp's own code, reading the checkout: nothing of the repository runs, so no
    sandbox is needed."""

    def __init__(self, db: Any = None) -> None:
        self.db = db  # ghapp.db.Database, where analyzers store their results

    async def run(self, request: SessionRequest) -> Outcome:
        return await run_builtin(request.job.command_id, request.checkout, request.job, db=self.db)


async def run_builtin(
    command_id: str | None, work: Path, job: Any, *, db: Any = None, run_id: int | None = None
) -> Outcome:
    started = time.monotonic()
    load_builtins()
    function = REGISTRY.get(command_id or "")
    if function is None:
        return _outcome(False, None, f"no built-in analyzer for {command_id!r}", started)
    token = _CONTEXT.set(BuiltinContext(db=db, run_id=run_id))
    try:
        text = await function(work, job)
    except Exception as exc:  # an analyzer's bug is this session's failure, not the worker's
        return _outcome(False, None, f"{type(exc).__name__}: {exc}", started)
    finally:
        _CONTEXT.reset(token)
    return _outcome(True, text, None, started)


def _outcome(ok: bool, text: str | None, error: str | None, started: float) -> Outcome:
    return Outcome(
        ok=ok,
        status="completed" if ok else "failed",
        result_text=text,
        error=error,
        agent_session_id=None,
        num_turns=0,
        cost_usd=0.0,
        duration_ms=int((time.monotonic() - started) * 1000),
        exit_code=None,
    )
