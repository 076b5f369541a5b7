"""Fixtures for sessions with the real Claude Code CLI against the model stand-in.

The CLI is the one ``npm/claude-code`` pins (``.ci/run`` installs it with ``npm ci``), or
``GHAPP_TEST_CLAUDE_BIN``. Sessions get the stand-in through ghapp's own environment, as an
operator would configure a proxy or a gateway: ``ANTHROPIC_BASE_URL`` and
``ANTHROPIC_API_KEY`` pass through to sessions, nothing else of ghapp's does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ghapp.standins.model import ModelRequest, ModelStandIn, Turn

ROOT = Path(__file__).parent.parent
PINNED = ROOT / "npm" / "claude-code" / "node_modules" / ".bin" / "claude"
API_KEY = "sk-ant-test-key-for-the-model-stand-in"


def claude_path() -> str:
    path = os.environ.get("GHAPP_TEST_CLAUDE_BIN") or str(PINNED)
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"the real Claude Code CLI is not installed at {path}: run `npm ci` in npm/claude-code "
            "(.ci/run does), or set GHAPP_TEST_CLAUDE_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def claude_bin() -> str:
    return claude_path()


def echo(request: ModelRequest) -> Turn:
    """The default model: answers at once, quoting the first line of what it was asked."""
    first = next((line for line in request.prompt.splitlines() if line.strip()), "")
    return Turn.text(f"Done. I was asked: {first.strip()}")


@pytest.fixture
async def model(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModelStandIn]:
    """The model stand-in, served on loopback in the test's loop, wired into ghapp's
    environment the way an operator would (sessions inherit ``ANTHROPIC_*``)."""
    standin = ModelStandIn(echo)
    async with standin.serve() as base_url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "1")  # API faults end in seconds
        yield standin
