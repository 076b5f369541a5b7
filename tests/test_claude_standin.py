"""The Claude Code stand-in, run as a real subprocess the way ghapp runs ``claude``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ghapp.standins import claude

FLAGS = ["--output-format", "stream-json", "--verbose"]
TIMEOUT = 30


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAPP_FAKE_CLAUDE_")}
    env.update(extra)
    return env


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode("utf-8")
        self.stderr = proc.stderr.decode("utf-8")
        self.events: list[dict[str, Any]] = [json.loads(line) for line in self.stdout.splitlines()]

    @property
    def kinds(self) -> list[str]:
        """``type`` or ``type/subtype`` per event, and the content block type for messages."""
        out = []
        for event in self.events:
            if event["type"] in ("assistant", "user"):
                blocks = event["message"]["content"]
                assert len(blocks) == 1
                out.append(f"{event['type']}:{blocks[0]['type']}")
            else:
                out.append(f"{event['type']}/{event['subtype']}")
        return out

    @property
    def result(self) -> dict[str, Any]:
        assert self.events[-1]["type"] == "result"
        return self.events[-1]

    def tool_uses(self) -> list[dict[str, Any]]:
        return [
            block
            for event in self.events
            if event["type"] == "assistant"
            for block in event["message"]["content"]
            if block["type"] == "tool_use"
        ]


def run(
    *args: str,
    prompt: str | None = "Fix the flaky test\nMore details here.",
    cwd: Path,
    env: dict[str, str] | None = None,
    flags: list[str] | None = None,
    stdin: bytes | None = None,
) -> Run:
    argv = [sys.executable, "-m", "ghapp.standins.claude"]
    if prompt is not None:
        argv += ["-p", prompt]
    argv += FLAGS if flags is None else flags
    argv += list(args)
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=clean_env() if env is None else env,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(proc)


def assert_well_formed(r: Run) -> None:
    """One JSON object per line, one session id, unique event uuids, init first."""
    assert r.events, r.stderr
    assert r.events[0]["type"] == "system" and r.events[0]["subtype"] == "init"
    session_ids = {event["session_id"] for event in r.events}
    assert len(session_ids) == 1
    uuid.UUID(session_ids.pop(), version=4)
    uuids = [event["uuid"] for event in r.events]
    assert len(set(uuids)) == len(uuids)
    for event in r.events:
        if event["type"] in ("assistant", "user"):
            assert event["parent_tool_use_id"] is None
        if event["type"] == "assistant":
            message = event["message"]
            assert message["id"].startswith("msg_")
            assert message["type"] == "message" and message["role"] == "assistant"
            assert message["stop_reason"] is None
            assert "usage" in message


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "README.md").write_text("# Demo project\n\nSome text.\n")
    return checkout


def test_success_reads_a_file_and_answers(repo: Path) -> None:
    r = run("--permission-mode", "acceptEdits", "--model", "opus", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert_well_formed(r)
    assert r.kinds == [
        "system/init",
        "assistant:text",
        "assistant:tool_use",
        "user:tool_result",
        "assistant:text",
        "result/success",
    ]
    init = r.events[0]
    assert init["cwd"] == str(repo)
    assert init["permissionMode"] == "acceptEdits"
    assert init["model"] == "claude-opus-4-1-20250805"
    assert "Read" in init["tools"] and init["mcp_servers"] == []
    assert init["apiKeySource"] == "none" and init["output_style"] == "default"

    (tool_use,) = r.tool_uses()
    assert tool_use["name"] == "Read" and tool_use["id"].startswith("toolu_")
    assert tool_use["input"] == {"file_path": str(repo / "README.md")}
    tool_result = r.events[3]["message"]["content"][0]
    assert r.events[3]["message"]["role"] == "user"
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert "# Demo project" in tool_result["content"]

    result = r.result
    assert result["is_error"] is False
    assert "Fix the flaky test" in result["result"]
    assert result["result"] == r.events[4]["message"]["content"][0]["text"]
    message_ids = {e["message"]["id"] for e in r.events if e["type"] == "assistant"}
    assert result["num_turns"] == len(message_ids) == 2
    assert 0 < result["total_cost_usd"] < 1
    assert result["duration_ms"] > 0 and result["duration_api_ms"] > 0
    assert result["permission_denials"] == []
    assert set(result["usage"]) >= {
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
        "server_tool_use",
        "service_tier",
    }
    assert "errors" not in result


def test_success_in_an_empty_directory_uses_no_tool(tmp_path: Path) -> None:
    r = run(cwd=tmp_path)
    assert r.returncode == 0
    assert_well_formed(r)
    assert r.kinds == ["system/init", "assistant:text", "result/success"]
    assert r.result["num_turns"] == 1


@pytest.mark.parametrize(
    ("scenario", "kinds", "returncode"),
    [
        (
            "is_error",
            ["system/init", "assistant:text", "result/success"],
            1,
        ),
        (
            "error_during_execution",
            ["system/init", "assistant:text", "result/error_during_execution"],
            1,
        ),
        (
            "budget",
            [
                "system/init",
                "assistant:text",
                "assistant:tool_use",
                "user:tool_result",
                "result/error_max_budget_usd",
            ],
            1,
        ),
        ("no_result", ["system/init", "assistant:text"], 0),
        ("crash", ["system/init"], 1),
        (
            "slow",
            [
                "system/init",
                "assistant:tool_use",
                "user:tool_result",
                "assistant:text",
                "result/success",
            ],
            0,
        ),
    ],
)
def test_scenarios(repo: Path, scenario: str, kinds: list[str], returncode: int) -> None:
    env = clean_env(GHAPP_FAKE_CLAUDE_SCENARIO=scenario, GHAPP_FAKE_CLAUDE_DELAY="0.01")
    r = run(cwd=repo, env=env)
    assert r.returncode == returncode, r.stderr
    assert_well_formed(r)
    assert r.kinds == kinds
    if kinds[-1].startswith("result/"):
        result = r.result
        assert result["is_error"] is (returncode == 1)
        if result["subtype"] == "success":
            assert isinstance(result["result"], str) and result["result"]
        else:
            assert "result" not in result
            assert result["errors"]


def test_is_error_reports_an_api_error(repo: Path) -> None:
    r = run(cwd=repo, env=clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="is_error"))
    assert r.events[1]["message"]["model"] == "<synthetic>"
    assert r.result["subtype"] == "success" and r.result["is_error"] is True
    assert r.result["result"].startswith("API Error:")


def test_crash_writes_a_traceback_to_stderr(repo: Path) -> None:
    r = run(cwd=repo, env=clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="crash"))
    assert r.returncode == 1
    assert "TypeError" in r.stderr and "at " in r.stderr


@pytest.mark.parametrize("max_turns", [None, 1, 2, 5])
def test_error_max_turns_honours_max_turns(repo: Path, max_turns: int | None) -> None:
    args = [] if max_turns is None else ["--max-turns", str(max_turns)]
    env = clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="error_max_turns")
    r = run(*args, cwd=repo, env=env)
    expected = max_turns or 3
    assert r.returncode == 1
    assert_well_formed(r)
    assert r.kinds == [
        "system/init",
        *["assistant:tool_use", "user:tool_result"] * expected,
        "result/error_max_turns",
    ]
    result = r.result
    assert result["is_error"] is True
    assert result["num_turns"] == expected
    assert "result" not in result
    assert result["errors"] == [f"Reached maximum number of turns ({expected})"]


def test_max_turns_also_limits_other_scenarios(repo: Path) -> None:
    r = run("--max-turns", "1", cwd=repo)
    assert r.returncode == 1
    assert r.kinds[-1] == "result/error_max_turns"
    assert r.result["num_turns"] == 1


def test_budget_honours_max_budget_usd(repo: Path) -> None:
    env = clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="budget")
    r = run("--max-budget-usd", "0.02", cwd=repo, env=env)
    assert r.result["subtype"] == "error_max_budget_usd"
    assert r.result["total_cost_usd"] > 0.02
    assert r.result["num_turns"] > 1


def test_scenario_from_the_prompt_directive(repo: Path) -> None:
    r = run(prompt="Please do it [scenario:is_error]", cwd=repo)
    assert r.result["is_error"] is True


def test_scenario_env_var_wins_over_the_directive(repo: Path) -> None:
    env = clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="no_result")
    r = run(prompt="[scenario:is_error] go", cwd=repo, env=env)
    assert r.returncode == 0
    assert r.kinds == ["system/init", "assistant:text"]


def test_unknown_scenario_is_a_usage_error(repo: Path) -> None:
    r = run(cwd=repo, env=clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="nope"))
    assert r.returncode == 2
    assert r.stdout == ""
    assert "unknown scenario" in r.stderr


def test_the_prompt_can_come_from_stdin(repo: Path) -> None:
    r = run("-p", prompt=None, cwd=repo, stdin=b"Review the stdin prompt\n")
    assert r.returncode == 0, r.stderr
    assert "Review the stdin prompt" in r.result["result"]


def test_output_is_utf8_whatever_the_locale(repo: Path) -> None:
    env = clean_env(PYTHONIOENCODING="ascii", LC_ALL="C", LANG="C")
    r = run(prompt="Réparer le bug ✓ 🚀", cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    assert "Réparer le bug ✓ 🚀" in r.result["result"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output-format", "stream-json", "--verbose", "hello"], "-p/--print"),
        (
            ["-p", "hello", "--output-format", "stream-json"],
            "When using --print, --output-format=stream-json requires --verbose",
        ),
        (["-p", "hello", "--verbose"], "stream-json"),
        (["-p", "hello", "--output-format", "json", "--verbose"], "stream-json"),
        (["-p", "hello", "--output-format", "xml", "--verbose"], "invalid choice"),
        (["-p", "hello", *FLAGS, "--bogus"], "unrecognized arguments: --bogus"),
        (["-p", "hello", *FLAGS, "--permission-mode", "yolo"], "invalid choice"),
        (["-p", "hello", *FLAGS, "--max-turns", "many"], "invalid int value"),
        (["-p", "hello", *FLAGS, "--max-turns", "0"], "--max-turns"),
        (["-p", "hello", *FLAGS, "--model"], "expected one argument"),
        (["-p", *FLAGS], "Input must be provided"),
    ],
)
def test_flag_validation(repo: Path, argv: list[str], message: str) -> None:
    r = run(*argv, prompt=None, flags=[], cwd=repo)
    assert r.returncode == 2
    assert r.stdout == ""
    assert message in r.stderr
    assert "usage:" in r.stderr


def test_all_the_flags_ghapp_passes_are_accepted(repo: Path, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    args = [
        *("--permission-mode", "plan"),
        *("--allowedTools", "Read,Grep", "Bash(git:*)"),
        *("--disallowedTools", "Read"),
        *("--max-turns", "7"),
        *("--model", "claude-haiku-4-5-20251001"),
        *("--append-system-prompt", "Be brief."),
    ]
    r = run(*args, cwd=repo, env=clean_env(GHAPP_FAKE_CLAUDE_RECORD=str(record)))
    assert r.returncode == 0, r.stderr
    init = r.events[0]
    assert init["permissionMode"] == "plan"
    assert init["model"] == "claude-haiku-4-5-20251001"
    assert "Read" not in init["tools"]  # disallowed tools leave the tool list...
    assert r.tool_uses() == []  # ...and are not used
    (entry,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert entry["argv"][entry["argv"].index("--allowedTools") + 1 :][:2] == [
        "Read,Grep",
        "Bash(git:*)",
    ]


def test_record_file(repo: Path, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    env = clean_env(
        GHAPP_FAKE_CLAUDE_RECORD=str(record),
        ANTHROPIC_API_KEY="sk-ant-secret-value",
        GHAPP_SOMETHING="other-secret-value",
    )
    first = run("--max-turns", "4", prompt="First prompt\nsecond line", cwd=repo, env=env)
    run("--no-such-flag", prompt="Second prompt", cwd=repo, env=env)

    text = record.read_text()
    assert "secret-value" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 2

    ok, bad = entries
    assert ok["argv"] == ["-p", "First prompt\nsecond line", *FLAGS, "--max-turns", "4"]
    assert ok["cwd"] == str(repo)
    assert ok["prompt"] == "First prompt\nsecond line"
    assert ok["scenario"] == "success"
    assert ok["session_id"] == first.events[0]["session_id"]
    assert ok["error"] is None
    assert {"ANTHROPIC_API_KEY", "GHAPP_SOMETHING", "GHAPP_FAKE_CLAUDE_RECORD"} <= set(ok["env"])
    assert all(name.startswith(("ANTHROPIC_", "CLAUDE_", "GHAPP_")) for name in ok["env"])

    assert bad["argv"][-1] == "--no-such-flag"
    assert bad["prompt"] is None and bad["session_id"] is None
    assert "--no-such-flag" in bad["error"]


def test_each_run_has_a_fresh_session_id(repo: Path) -> None:
    a = run(cwd=repo)
    b = run(cwd=repo)
    assert a.events[0]["session_id"] != b.events[0]["session_id"]


def test_edit_changes_an_existing_readme(repo: Path) -> None:
    r = run(prompt="Add a note", cwd=repo, env=clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="edit"))
    assert r.returncode == 0, r.stderr
    assert_well_formed(r)
    session_id = r.events[0]["session_id"]
    readme = (repo / "README.md").read_text()
    assert readme.startswith("# Demo project\n\nSome text.\n")
    assert readme.rstrip().endswith(f"Changed by ghapp session {session_id}.")
    change = (repo / "ghapp-change.txt").read_text()
    assert session_id in change and "Add a note" in change
    assert [t["name"] for t in r.tool_uses()] == ["Read", "Write", "Write"]
    assert r.result["subtype"] == "success" and r.result["is_error"] is False
    assert r.result["num_turns"] == 4


def test_edit_creates_a_missing_readme(tmp_path: Path) -> None:
    r = run(cwd=tmp_path, env=clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="edit"))
    assert r.returncode == 0, r.stderr
    assert "Changed by ghapp session" in (tmp_path / "README.md").read_text()
    assert (tmp_path / "ghapp-change.txt").is_file()
    assert [t["name"] for t in r.tool_uses()] == ["Write", "Write"]


def test_success_leaves_files_alone(repo: Path) -> None:
    before = {p.name: p.read_bytes() for p in repo.iterdir()}
    run(cwd=repo)
    assert {p.name: p.read_bytes() for p in repo.iterdir()} == before


def _start(repo: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ghapp.standins.claude", "-p", "hang around", *FLAGS],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_hang_can_be_killed(repo: Path, sig: signal.Signals) -> None:
    proc = _start(repo, clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="hang"))
    try:
        assert proc.stdout is not None
        init = json.loads(proc.stdout.readline())
        assert init["type"] == "system" and init["subtype"] == "init"
        assert proc.poll() is None
        os.killpg(proc.pid, sig)
        assert proc.wait(timeout=TIMEOUT) == -sig
        assert proc.stdout.read() == b""  # nothing after init
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_events_are_flushed_as_they_happen(repo: Path) -> None:
    """With a long delay, the init line arrives while the process is still running."""
    env = clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="slow", GHAPP_FAKE_CLAUDE_DELAY="600")
    proc = _start(repo, env)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["subtype"] == "init"
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_slow_spaces_events_out(repo: Path) -> None:
    env = clean_env(GHAPP_FAKE_CLAUDE_SCENARIO="slow", GHAPP_FAKE_CLAUDE_DELAY="0.1")
    started = time.monotonic()
    r = run(cwd=repo, env=env)
    assert len(r.events) == 5
    assert time.monotonic() - started >= 0.4


def test_sleep_before_delays_the_first_event(repo: Path) -> None:
    env = clean_env(GHAPP_FAKE_CLAUDE_SLEEP_BEFORE="0.3")
    started = time.monotonic()
    r = run(cwd=repo, env=env)
    assert r.returncode == 0
    assert time.monotonic() - started >= 0.3


def test_main_in_process(capfd: pytest.CaptureFixture[str]) -> None:
    assert claude.main(["--version"]) == 0
    assert "Claude Code" in capfd.readouterr().out
    assert claude.main(["--bogus"]) == 2
    assert "unrecognized arguments" in capfd.readouterr().err


def test_the_bash_replay_prints_the_same_stream_with_its_own_session_and_directory(tmp_path):
    import json as _json
    import subprocess as _subprocess

    from ghapp.standins.claude import write_replay_executable

    record = tmp_path / "record.jsonl"
    replay = write_replay_executable(tmp_path, record=record)
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    for number in (7, 8):
        done = _subprocess.run(
            [
                str(replay),
                "-p",
                f"Triage ISSUE #{number}",
                "--output-format",
                "stream-json",
                "--verbose",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append([_json.loads(line) for line in done.stdout.splitlines()])
    first, second = outputs
    assert [e["type"] for e in first] == [e["type"] for e in second]
    assert first[0]["subtype"] == "init" and first[-1]["type"] == "result"
    assert first[-1]["is_error"] is False and first[0]["cwd"] == str(work)
    assert first[0]["session_id"] != second[0]["session_id"]
    assert {e["session_id"] for e in first} == {first[0]["session_id"]}
    lines = [_json.loads(line) for line in record.read_text().splitlines()]
    assert [line["issue"] for line in lines] == [7, 8] and all(line["ticks"] > 0 for line in lines)


def test_the_bash_replay_can_take_a_while_before_its_last_line(tmp_path: Path) -> None:
    from ghapp.standins.claude import write_replay_executable

    plain, slow = tmp_path / "plain", tmp_path / "slow"
    plain.mkdir()
    slow.mkdir()
    assert "sleep" not in write_replay_executable(plain).read_text()  # at once, as before
    replay = write_replay_executable(slow, delay_s=0.5)
    started = time.monotonic()
    with subprocess.Popen(
        [str(replay), "-p", "ISSUE #1", *FLAGS], cwd=slow, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        lines = [(json.loads(line), time.monotonic()) for line in proc.stdout]
        assert proc.wait(timeout=TIMEOUT) == 0
    assert lines[0][0]["subtype"] == "init" and lines[-1][0]["type"] == "result"
    assert lines[-1][1] - started >= 0.5
    assert lines[-1][1] - lines[-2][1] >= 0.25  # the pause comes before the last line only
