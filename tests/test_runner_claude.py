"""The claude runner against the stand-in executable: every way a session can end."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from ghapp.runners.claude import SessionOptions, command_line, run_claude, session_environment


@pytest.fixture
def fake_claude(tmp_path: Path) -> str:
    """The stand-in as an executable file, the way GHAPP_CLAUDE_BIN names a binary."""
    path = tmp_path / "claude"
    path.write_text(
        f"#!{sys.executable}\nfrom ghapp.standins.claude import main\nraise SystemExit(main())\n"
    )
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "checkout"
    repo.mkdir()
    (repo / "README.md").write_text("# Hello\n")
    return repo


def env(scenario: str, **extra: str) -> dict[str, str]:
    values = session_environment()
    values["GHAPP_FAKE_CLAUDE_SCENARIO"] = scenario
    values.update(extra)
    return values


async def test_success(fake_claude, checkout) -> None:
    events = []

    async def seen(progress, event) -> None:
        events.append(event["type"])

    outcome = await run_claude(
        fake_claude,
        "Triage issue #1\nMore context",
        checkout,
        SessionOptions(max_turns=5),
        time_limit=60,
        on_event=seen,
        env=env("success"),
    )
    assert outcome.ok and outcome.status == "completed" and outcome.exit_code == 0
    assert "Triage issue #1" in outcome.result_text
    assert outcome.num_turns == 2 and outcome.cost_usd > 0
    assert outcome.agent_session_id and len(outcome.agent_session_id) == 36
    assert events[0] == "system" and events[-1] == "result" and "assistant" in events


@pytest.mark.parametrize(
    ("scenario", "status", "words"),
    [
        ("error_max_turns", "failed", "error_max_turns"),
        ("is_error", "failed", "API Error"),
        ("budget", "failed", "error_max_budget_usd"),
        ("no_result", "failed", "without a result"),
        ("crash", "failed", "TypeError"),  # the stderr tail is the error
    ],
)
async def test_each_failure_is_classified(fake_claude, checkout, scenario, status, words) -> None:
    outcome = await run_claude(
        fake_claude,
        "do it",
        checkout,
        SessionOptions(max_turns=2),
        time_limit=60,
        env=env(scenario),
    )
    assert not outcome.ok and outcome.status == status
    assert words in outcome.error


async def test_timeout_kills_the_whole_process_group(fake_claude, checkout) -> None:
    outcome = await run_claude(
        fake_claude, "wait", checkout, SessionOptions(), time_limit=1.5, env=env("hang")
    )
    assert outcome.status == "timed_out" and "timed out after 1.5 s" in outcome.error
    assert outcome.agent_session_id  # the init event was read before the hang
    assert outcome.exit_code == -9


async def test_cancellation_stops_a_running_session(fake_claude, checkout) -> None:
    cancel = asyncio.Event()

    async def on_event(progress, event) -> None:
        if event["type"] == "system":
            cancel.set()  # cancel as soon as it has started

    outcome = await run_claude(
        fake_claude,
        "wait",
        checkout,
        SessionOptions(),
        time_limit=60,
        cancel=cancel,
        on_event=on_event,
        env=env("hang"),
    )
    assert outcome.status == "cancelled"


async def test_progress_is_visible_while_it_runs(fake_claude, checkout) -> None:
    seen_turns = []

    async def on_event(progress, event) -> None:
        seen_turns.append((event["type"], progress.turns, list(progress.tools)))

    outcome = await run_claude(
        fake_claude,
        "slowly",
        checkout,
        SessionOptions(),
        time_limit=60,
        on_event=on_event,
        env=env("slow", GHAPP_FAKE_CLAUDE_DELAY="0.05"),
    )
    assert outcome.ok
    assert seen_turns[1] == ("assistant", 1, ["Glob"])  # known before the session ended


async def test_missing_binary_is_a_clear_failure_naming_the_setting(checkout) -> None:
    outcome = await run_claude("/nonexistent/claude", "x", checkout, SessionOptions(), time_limit=5)
    assert (outcome.ok, outcome.status) == (False, "failed")
    assert outcome.error == (
        "the Claude Code executable '/nonexistent/claude' was not found (GHAPP_CLAUDE_BIN); "
        "install it (npm install -g @anthropic-ai/claude-code) or set GHAPP_CLAUDE_BIN to its path"
    )


async def test_a_binary_that_is_not_executable_is_named(checkout, tmp_path) -> None:
    plain = tmp_path / "claude"
    plain.write_text("#!/bin/sh\necho hi\n")  # no execute bit
    outcome = await run_claude(str(plain), "x", checkout, SessionOptions(), time_limit=5)
    assert outcome.error == (
        f"GHAPP_CLAUDE_BIN={plain} is not executable (chmod +x, or point it elsewhere)"
    )


async def test_command_line_and_environment(fake_claude, checkout, tmp_path, monkeypatch) -> None:
    options = SessionOptions(
        permission_mode="plan",
        allowed_tools=["Read", "Bash(git:*)"],
        disallowed_tools=["Write"],
        max_turns=7,
        model="sonnet",
        append_system_prompt="Be brief.",
    )
    assert command_line("claude", "P", options) == [
        "claude",
        "-p",
        "P",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "plan",
        "--allowedTools",
        "Read,Bash(git:*)",
        "--disallowedTools",
        "Write",
        "--max-turns",
        "7",
        "--model",
        "sonnet",
        "--append-system-prompt",
        "Be brief.",
    ]
    monkeypatch.setenv("GHAPP_WEBHOOK_SECRET", "hush")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    record = tmp_path / "calls.jsonl"
    values = session_environment()
    values.update(GHAPP_FAKE_CLAUDE_SCENARIO="success", GHAPP_FAKE_CLAUDE_RECORD=str(record))
    outcome = await run_claude(fake_claude, "P", checkout, options, time_limit=60, env=values)
    assert outcome.ok
    call = json.loads(record.read_text().splitlines()[0])
    assert call["cwd"] == str(checkout) and call["prompt"] == "P"
    assert "ANTHROPIC_API_KEY" in call["env"]
    assert "GHAPP_WEBHOOK_SECRET" not in call["env"]  # ghapp's secrets never reach a session
    assert "GHAPP_WEBHOOK_SECRET" not in session_environment(os.environ)
