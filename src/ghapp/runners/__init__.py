"""Runners: how a session runs (Claude Code, a shell command, a built-in analyzer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghapp.runners.base import Runner
from ghapp.runners.builtin import BuiltinRunner
from ghapp.runners.claude import ClaudeRunner
from ghapp.runners.shell import ShellRunner

if TYPE_CHECKING:
    from ghapp.db import Database
    from ghapp.settings import Settings


def build_runners(settings: Settings, db: Database | None = None) -> dict[str, Runner]:
    """The worker's runners, by the name a job gives in ``runner``."""
    return {
        "claude": ClaudeRunner(settings),
        "shell": ShellRunner(settings),
        "builtin": BuiltinRunner(db),
    }
