"""The real Claude Code CLI against the model stand-in (:mod:`ghapp.standins.model`).

ghapp runs ``claude -p PROMPT --output-format stream-json --verbose`` and believes what it
prints: the result's ``subtype``, ``is_error``, cost, turns and permission denials, and its exit
status. These tests run the *pinned* CLI (``npm ci`` in ``npm/claude-code``, or
``GHAPP_TEST_CLAUDE_BIN``) offline against answers we script, so what ghapp expects of it is
checked against the real thing: tools that really run in a checkout, the CLI's retries, its
turn and budget limits, and what it ends with when the API misbehaves.

Each run gets a fresh ``HOME``, a git checkout and only ``PATH`` of the parent's environment,
plus ``ANTHROPIC_BASE_URL`` (the stand-in), ``ANTHROPIC_API_KEY``,
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``, ``DISABLE_AUTOUPDATER=1`` and a private
``CLAUDE_CODE_TMPDIR`` (else the CLI leaves task files in ``/tmp/claude-UID`` and its sockets in
``/tmp/cc-socks``).

What Claude Code 2.1.332 does (the fault tests pin it down):

* 529, 500 and 429 are retried ``CLAUDE_CODE_MAX_RETRIES`` times (default 10), about 0.5 s,
  1 s, 2 s... apart; a 429's ``retry-after`` is waited out unless it is long (120 s: no retry
  at all). An ``error`` event inside a stream and a connection cut mid-stream are retried the
  same way; a malformed event makes it ask again at once without streaming. Once retries are
  spent it ends with exit status 1 and a result ``subtype: success`` with ``is_error: true``,
  ``terminal_reason: api_error``, ``api_error_status`` 529/500/429 (``null`` for broken
  streams) and ``"API Error: ..."`` as its text.
* A stream that stalls after ``message_start`` is given up after 5 minutes of silence (300 s
  measured; ``API_FORCE_IDLE_TIMEOUT=0`` would wait for ever) and asked again without
  streaming, a request bounded by ``API_TIMEOUT_MS`` (600 s by default). With
  ``CLAUDE_ENABLE_BYTE_WATCHDOG=1`` the silence allowed is ``CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS``
  (10 s at least); ``CLAUDE_STREAM_IDLE_TIMEOUT_MS`` and ``API_TIMEOUT_MS`` alone do not
  shorten it.
* ``--max-turns N`` ends with ``error_max_turns``, ``--max-budget-usd`` with
  ``error_max_budget_usd`` (both ``is_error: true``, exit status 1); a denied tool does not end
  the run: it is listed in the result's ``permission_denials`` and the model is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ghapp.standins.model import (
    Fault,
    ModelRequest,
    ModelStandIn,
    Turn,
    Usage,
    text,
    tool_use,
)

ROOT = Path(__file__).resolve().parents[1]
CLAUDE_BIN_ENV = "GHAPP_TEST_CLAUDE_BIN"
NPM_DIR = ROOT / "npm" / "claude-code"
DEFAULT_CLAUDE_BIN = NPM_DIR / "node_modules" / ".bin" / "claude"
TIMEOUT = 60  # a hard bound on one CLI run; a run takes about a second
SONNET = "claude-sonnet-4-5-20250929"  # a model the CLI knows the prices of
# USD per token for SONNET: input, output, 5-minute cache write, cache read.
SONNET_PRICES = (3e-6, 15e-6, 3.75e-6, 0.3e-6)
SECRET = "The secret word is PAPAYA."
README = f"# Demo project\n\n{SECRET}\n"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "ghapp",
    "GIT_AUTHOR_EMAIL": "ghapp@example.com",
    "GIT_COMMITTER_NAME": "ghapp",
    "GIT_COMMITTER_EMAIL": "ghapp@example.com",
}


def pinned_version() -> str:
    package = json.loads((NPM_DIR / "package.json").read_text(encoding="utf-8"))
    return str(package["dependencies"]["@anthropic-ai/claude-code"])


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    configured = os.environ.get(CLAUDE_BIN_ENV, "").strip()
    path = Path(configured) if configured else DEFAULT_CLAUDE_BIN
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the real Claude Code CLI is missing at {path}: run `npm ci` in {NPM_DIR} "
            f"(it installs the pinned @anthropic-ai/claude-code), or point {CLAUDE_BIN_ENV} "
            "at a claude binary",
            pytrace=False,
        )
    return path


@dataclass
class Run:
    """One finished CLI run: its exit status, stream-json events and stderr."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    seconds: float

    @classmethod
    def of(cls, returncode: int, stdout: str, stderr: str, seconds: float) -> Run:
        events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        return cls(returncode, events, stderr, seconds)

    def of_type(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("type") == kind and (subtype is None or e.get("subtype") == subtype)
        ]

    @property
    def init(self) -> dict[str, Any]:
        (event,) = self.of_type("system", "init")
        return event

    @property
    def result(self) -> dict[str, Any]:
        results = self.of_type("result")
        assert results, f"no result event; stderr: {self.stderr[-2000:]}"
        return results[0]

    @property
    def retries(self) -> list[dict[str, Any]]:
        return self.of_type("system", "api_retry")


class Claude:
    """Runs the real CLI in a fresh checkout with a fresh HOME, against a model stand-in."""

    def __init__(self, binary: Path, root: Path, scratch: Path) -> None:
        self.binary = binary
        self.scratch = scratch
        self.home = root / "home"
        (self.home / ".config").mkdir(parents=True)
        self.checkout = root / "checkout"
        self.checkout.mkdir()
        (self.checkout / "README.md").write_text(README, encoding="utf-8")
        git_env = {"PATH": os.environ["PATH"], "HOME": str(self.home), **GIT_IDENTITY}
        for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "Initial"]):
            subprocess.run(["git", *args], cwd=self.checkout, env=git_env, check=True)

    def env(self, base_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "test-key",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_TMPDIR": str(self.scratch),
            **(extra or {}),
        }

    def argv(self, prompt: str, *args: str) -> list[str]:
        return [
            str(self.binary),
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            *args,
        ]

    def start(
        self, base_url: str, prompt: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(prompt, *args),
            cwd=self.checkout,
            env=self.env(base_url, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self,
        model: ModelStandIn,
        prompt: str,
        *args: str,
        env: Mapping[str, str] | None = None,
    ) -> Run:
        with model.serve_in_thread() as base_url:
            started = time.monotonic()
            proc = subprocess.run(
                self.argv(prompt, *args),
                cwd=self.checkout,
                env=self.env(base_url, env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            seconds = time.monotonic() - started
        return Run.of(proc.returncode, proc.stdout, proc.stderr, seconds)


@pytest.fixture
def claude(claude_bin: Path, tmp_path: Path) -> Iterator[Claude]:
    # Short and private (0700): the CLI keeps Unix sockets there, whose paths are limited to
    # 108 bytes, so not below pytest's long tmp_path.
    scratch = Path(tempfile.mkdtemp(prefix="ghapp-claude-"))
    try:
        yield Claude(claude_bin, tmp_path, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def answered(model: ModelStandIn) -> list[tuple[str, bool]]:
    """What each Messages request got, and whether it asked for a stream."""
    return [(r.answer, r.stream) for r in model.requests]


def sonnet_cost(usage: Usage) -> float:
    p_in, p_out, p_write, p_read = SONNET_PRICES
    return (
        usage.input_tokens * p_in
        + usage.output_tokens * p_out
        + usage.cache_creation_input_tokens * p_write
        + usage.cache_read_input_tokens * p_read
    )


# == the CLI, doing its job =================================================================


def test_the_installed_cli_is_the_pinned_one(claude_bin: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(claude_bin), "--version"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DISABLE_AUTOUPDATER": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert proc.stdout.strip().endswith("(Claude Code)")
    if not os.environ.get(CLAUDE_BIN_ENV):
        assert proc.stdout.split()[0] == pinned_version()


def test_a_plain_answer_reports_and_prices_our_usage(claude: Claude) -> None:
    usage = Usage(
        input_tokens=1000,
        output_tokens=2000,
        cache_creation_input_tokens=3000,
        cache_read_input_tokens=4000,
    )
    model = ModelStandIn([Turn.text("Hello from the stand-in.", usage=usage)])

    run = claude.run(model, "Say hello.", "--model", SONNET)

    assert run.returncode == 0, run.stderr
    result = run.result
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["result"] == "Hello from the stand-in."
    assert result["num_turns"] == 1
    assert {k: result["usage"][k] for k in usage.as_dict()} == usage.as_dict()
    assert result["total_cost_usd"] == pytest.approx(sonnet_cost(usage))
    assert result["modelUsage"][SONNET]["costUSD"] == pytest.approx(sonnet_cost(usage))
    assert run.init["model"] == SONNET
    # One request, the conversation's: nothing else reached the stand-in, no credentials kept.
    (request,) = model.requests
    assert (request.method, request.path, request.query) == (
        "POST",
        "/v1/messages",
        {"beta": "true"},
    )
    assert request.kind == "conversation" and request.stream and request.model == SONNET
    assert "x-api-key" not in request.headers and request.headers["anthropic-version"]
    assert "Read" in request.tools and "Bash" in request.tools
    assert model.prompts() == ["Say hello."]


def test_read_runs_the_real_tool_in_the_checkout(claude: Claude) -> None:
    readme = claude.checkout / "README.md"

    def script(request: ModelRequest) -> Turn:
        """Read the README, then say what the tool result held."""
        if request.step == 0:
            return Turn.tool("Read", {"file_path": str(readme)}, say="Let me look.")
        result = request.last_tool_result
        seen = "PAPAYA" if result is not None and "PAPAYA" in result.content else "nothing"
        return Turn.text(f"I read {seen}.")

    model = ModelStandIn(script)
    run = claude.run(model, "What is the secret word?")

    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "I read PAPAYA."
    assert run.result["num_turns"] == 2
    (read,) = model.tool_results()
    assert read.name == "Read" and read.input == {"file_path": str(readme)}
    assert SECRET in read.content and not read.is_error
    assert [r.step for r in model.conversation()] == [0, 1]
    assert "Read" in model.tools_offered()


def test_an_allowed_bash_call_changes_the_checkout(claude: Claude) -> None:
    command = {"command": "echo made by bash > made.txt && cat made.txt", "description": "Make"}
    model = ModelStandIn([Turn.tool("Bash", command), Turn.text("Made it.")])

    run = claude.run(model, "Make a file.", "--allowedTools", "Bash")

    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "Made it." and run.result["permission_denials"] == []
    assert (claude.checkout / "made.txt").read_text() == "made by bash\n"
    (bash,) = model.tool_results("Bash")
    assert bash.content.startswith("made by bash") and not bash.is_error


def test_a_bash_call_without_permission_is_denied_and_reported(claude: Claude) -> None:
    command = {"command": "echo made by bash > made.txt", "description": "Make"}
    call = tool_use("Bash", command)
    model = ModelStandIn([Turn([call]), Turn.text("I could not.")])

    run = claude.run(model, "Make a file.")

    # The run goes on (the model is told), and the result lists what was refused.
    assert run.returncode == 0, run.stderr
    assert run.result["subtype"] == "success" and run.result["is_error"] is False
    assert run.result["permission_denials"] == [
        {"tool_name": "Bash", "tool_use_id": call["id"], "tool_input": command}
    ]
    assert not (claude.checkout / "made.txt").exists()
    (denied,) = model.tool_results()
    assert denied.tool_use_id == call["id"] and denied.is_error
    assert [e["tool_name"] for e in run.of_type("system", "permission_denied")] == ["Bash"]


def test_max_turns_ends_a_model_that_keeps_calling_tools(claude: Claude) -> None:
    model = ModelStandIn(lambda request: Turn.tool("Bash", {"command": "echo again"}))

    run = claude.run(model, "Loop.", "--max-turns", "1", "--allowedTools", "Bash")

    assert run.returncode == 1
    result = run.result
    assert (result["subtype"], result["is_error"]) == ("error_max_turns", True)
    assert result["errors"] == ["Reached maximum number of turns (1)"]
    assert result["terminal_reason"] == "max_turns"
    assert answered(model) == [("turn", True)]


def test_max_budget_ends_an_expensive_session(claude: Claude) -> None:
    usage = Usage(input_tokens=200_000, output_tokens=50_000)
    model = ModelStandIn(lambda request: Turn.tool("Bash", {"command": "echo again"}, usage=usage))

    run = claude.run(
        model, "Spend.", "--max-budget-usd", "0.5", "--model", SONNET, "--allowedTools", "Bash"
    )

    assert run.returncode == 1
    result = run.result
    assert (result["subtype"], result["is_error"]) == ("error_max_budget_usd", True)
    assert result["errors"] == ["Reached maximum budget ($0.5)"]
    assert result["terminal_reason"] == "budget_exhausted"
    assert result["total_cost_usd"] == pytest.approx(sonnet_cost(usage))
    assert len(model.requests) == 1


def test_the_session_id_is_echoed_and_sent(claude: Claude) -> None:
    session_id = str(uuid.uuid4())
    model = ModelStandIn([Turn.text("Hi.")])

    run = claude.run(model, "Hi.", "--session-id", session_id)

    assert run.returncode == 0, run.stderr
    assert run.init["session_id"] == session_id
    assert run.result["session_id"] == session_id
    assert {r.session_id for r in model.requests} == {session_id}


# == the CLI, when the API misbehaves =======================================================

RETRY_ONCE = {"CLAUDE_CODE_MAX_RETRIES": "1"}
RETRY_TWICE = {"CLAUDE_CODE_MAX_RETRIES": "2"}

# fault -> what the requests got (answer, streamed?) before the scripted turn got through,
# and the api_retry events the CLI printed (error_status, error).
TRANSIENT = {
    "overloaded": (Fault.overloaded(), [("overloaded", True)], [(529, "overloaded")]),
    "api_error": (Fault.api_error(), [("api_error", True)], [(500, "server_error")]),
    "rate_limit": (Fault.rate_limit(retry_after=1), [("rate_limit", True)], [(429, "rate_limit")]),
    "stream_error": (Fault.stream_error(), [("stream_error", True)], []),
    "cut": (Fault.cut(), [("cut", True)], [(None, "unknown")]),
    "malformed": (Fault.malformed(), [("malformed", True)], []),
}


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_a_transient_fault_is_retried(claude: Claude, name: str) -> None:
    fault, failed, retries = TRANSIENT[name]
    model = ModelStandIn([fault, Turn.text("Recovered.")])

    run = claude.run(model, "Hello.", env=RETRY_TWICE)

    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "Recovered." and run.result["is_error"] is False
    # A malformed event makes the CLI ask again at once, without streaming.
    assert answered(model) == [*failed, ("turn", name != "malformed")]
    assert [(e["error_status"], e["error"]) for e in run.retries] == retries
    if name == "rate_limit":  # retry-after: 1 is waited out
        assert run.retries[0]["retry_delay_ms"] >= 1000
        first, second = model.requests
        assert second.received_at - first.received_at >= 1.0


# fault -> the requests the CLI makes with CLAUDE_CODE_MAX_RETRIES=1 (streamed?), and the
# result's api_error_status.
PERSISTENT = {
    "overloaded": (Fault.overloaded(), [True, True], 529),
    "api_error": (Fault.api_error(), [True, True], 500),
    "rate_limit": (Fault.rate_limit(retry_after=0), [True, True], 429),
    "stream_error": (Fault.stream_error(), [True, True, False], 529),
    "cut": (Fault.cut(), [True, True, False], None),
    "malformed": (Fault.malformed(), [True, False], None),
}


@pytest.mark.parametrize("name", list(PERSISTENT))
def test_a_persistent_fault_ends_in_an_api_error(claude: Claude, name: str) -> None:
    fault, streamed, status = PERSISTENT[name]
    model = ModelStandIn(lambda request: fault)

    run = claude.run(model, "Hello.", env=RETRY_ONCE)

    assert run.returncode == 1
    result = run.result
    assert (result["subtype"], result["is_error"]) == ("success", True)
    assert result["terminal_reason"] == "api_error"
    assert result["api_error_status"] == status
    assert result["result"].startswith("API Error")
    assert [r.stream for r in model.requests] == streamed
    assert {r.answer for r in model.requests} == {fault.kind}


def test_no_retries_means_one_request(claude: Claude) -> None:
    model = ModelStandIn(lambda request: Fault.overloaded())

    run = claude.run(model, "Hello.", env={"CLAUDE_CODE_MAX_RETRIES": "0"})

    assert run.returncode == 1 and run.result["api_error_status"] == 529
    assert run.retries == [] and len(model.requests) == 1


def test_a_long_retry_after_is_not_waited_for(claude: Claude) -> None:
    model = ModelStandIn([Fault.rate_limit(retry_after=120), Turn.text("Too late.")])

    run = claude.run(model, "Hello.", env=RETRY_TWICE)

    assert run.returncode == 1 and run.result["api_error_status"] == 429
    assert len(model.requests) == 1 and run.seconds < 30


def test_a_stalled_stream_never_holds_up_the_stand_in(claude: Claude) -> None:
    model = ModelStandIn([Fault.stall()])
    with model.serve_in_thread() as base_url:
        proc = claude.start(base_url, "Hello.", env={"CLAUDE_CODE_MAX_RETRIES": "0"})
        try:
            model.wait_until(lambda: model.stalled == 1, timeout=TIMEOUT)
            assert proc.poll() is None  # the CLI waits on the stalled stream
            stopping = time.monotonic()
        except BaseException:
            proc.kill()
            raise
    # Leaving the block stopped the stand-in: the stall was let go at once (uvicorn would
    # otherwise wait its 2 s grace period), the connection closed, the retry refused.
    assert time.monotonic() - stopping < 1.5
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    run = Run.of(proc.returncode, stdout, stderr, 0.0)
    assert run.returncode == 1
    assert run.result["is_error"] is True and run.result["terminal_reason"] == "api_error"
    assert answered(model) == [("stall", True)]


def test_a_stalled_stream_is_let_go_when_the_cli_is_killed(claude: Claude) -> None:
    model = ModelStandIn([Fault.stall()])
    with model.serve_in_thread() as base_url:
        proc = claude.start(base_url, "Hello.")
        try:
            model.wait_until(lambda: model.stalled == 1, timeout=TIMEOUT)
        finally:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
        model.wait_until(lambda: model.stalled == 0, timeout=5)


@pytest.mark.slow
def test_the_byte_watchdog_gives_up_on_a_stalled_stream(claude: Claude) -> None:
    """10 s: the shortest idle time the CLI accepts (CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS)."""
    model = ModelStandIn([Fault.stall(), Turn.text("Recovered.")])
    env = {
        "CLAUDE_ENABLE_BYTE_WATCHDOG": "1",
        "CLAUDE_BYTE_STREAM_IDLE_TIMEOUT_MS": "10000",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }

    run = claude.run(model, "Hello.", env=env)

    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "Recovered."
    assert answered(model) == [("stall", True), ("turn", False)]
    first, second = model.requests
    assert 9.5 <= second.received_at - first.received_at < 20


# == the stand-in itself, over plain HTTP ===================================================


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def agent_request(prompt: str, *, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": SONNET,
        "max_tokens": 1024,
        "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI."}],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


async def test_a_turn_streams_as_anthropic_documents() -> None:
    usage = Usage(input_tokens=7, output_tokens=9, cache_read_input_tokens=11)
    turn = Turn([text("Reading it now."), tool_use("Read", {"file_path": "/a/b.md"})], usage=usage)
    model = ModelStandIn([turn, turn])
    async with model.serve() as base_url, httpx.AsyncClient(base_url=base_url) as client:
        streamed = await client.post("/v1/messages?beta=true", json=agent_request("Go"))
        whole = await client.post("/v1/messages", json=agent_request("Go", stream=False))

    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert all(name == data["type"] for name, data in events)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 2,
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["content"] == [] and start["model"] == SONNET
    assert start["usage"]["input_tokens"] == 7 and start["usage"]["output_tokens"] == 1
    deltas = [d["delta"] for name, d in events if name == "content_block_delta"]
    said = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    tool_json = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert said == "Reading it now." and json.loads(tool_json) == {"file_path": "/a/b.md"}
    tool_start = events[6][1]["content_block"]
    assert tool_start["id"].startswith("toolu_") and tool_start["input"] == {}
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"] == usage.as_dict()

    message = whole.json()
    assert message["type"] == "message" and message["stop_reason"] == "tool_use"
    assert message["content"] == [dict(block) for block in turn.content]
    assert message["usage"] == usage.as_dict()


async def test_side_requests_and_named_scripts_keep_the_conversation_in_order() -> None:
    model = ModelStandIn(
        [Turn.text("first"), Turn.text("second")],
        scripts={"other": [Turn.text("other first")]},
        final="no more",
        side_answer="a title",
    )
    side = {**agent_request("Write a title"), "system": "Generate a short title.", "tools": []}
    async with model.serve() as base_url, httpx.AsyncClient(base_url=base_url) as client:

        async def say(body: dict[str, Any], session: str = "s1") -> str:
            headers = {"x-claude-code-session-id": session, "x-api-key": "secret"}
            answer = await client.post("/v1/messages", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            return "".join(
                d["delta"].get("text", "")
                for name, d in sse_events(answer.text)
                if name == "content_block_delta"
            )

        assert await say(agent_request("Hi")) == "first"
        assert await say(side) == "a title"  # does not take a step
        assert await say(agent_request("Hi")) == "second"
        assert await say(agent_request("Hi")) == "no more"
        assert await say(agent_request("Hi"), session="s2") == "first"  # a new session
        assert await say(agent_request("[script:other] Hi")) == "other first"
        unknown = await client.post("/v1/messages", json=agent_request("[script:nope] Hi"))

    assert unknown.status_code == 400
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert [r.kind for r in model.requests].count("side") == 1
    assert [r.script for r in model.conversation()] == ["", "", "", "", "other", "nope"]
    assert all("x-api-key" not in r.headers for r in model.requests)
    assert model.prompts() == ["Hi", "[script:other] Hi", "[script:nope] Hi"]


async def test_faults_by_request_number_and_the_error_shapes() -> None:
    model = ModelStandIn([Turn.text("ok")])
    model.fail(Fault.overloaded(), request=2)
    model.fail(Fault.rate_limit(retry_after=3))  # the next conversation request
    async with model.serve() as base_url, httpx.AsyncClient(base_url=base_url) as client:
        limited = await client.post("/v1/messages", json=agent_request("Hi", stream=False))
        overloaded = await client.post("/v1/messages", json=agent_request("Hi", stream=False))
        ok = await client.post("/v1/messages", json=agent_request("Hi", stream=False))
        counted = await client.post("/v1/messages/count_tokens", json=agent_request("Hi"))
        head = await client.head("/api/hello")
        missing = await client.get("/v1/models/nope")

    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert overloaded.status_code == 529
    body = overloaded.json()
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert body["error"]["message"] and body["request_id"].startswith("req_")
    assert ok.json()["content"] == [{"type": "text", "text": "ok"}]
    assert counted.json()["input_tokens"] > 0
    assert head.status_code == 200
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert [r.message_number for r in model.requests] == [1, 2, 3, None, None, None]
    assert [r.kind for r in model.requests][3:] == ["count_tokens", "other", "other"]


async def test_stopping_lets_a_stalled_stream_go_at_once() -> None:
    model = ModelStandIn([Fault.stall()])
    async with httpx.AsyncClient() as client, contextlib.AsyncExitStack() as stack:
        async with model.serve() as base_url:
            url = f"{base_url}/v1/messages"
            stream = client.stream("POST", url, json=agent_request("Hi"))
            response = await stack.enter_async_context(stream)
            lines = response.aiter_lines()
            assert await anext(lines) == "event: message_start"
            await asyncio.to_thread(model.wait_until, lambda: model.stalled == 1)
            stopping = time.monotonic()
        # uvicorn would wait 2 s for the stalled answer; it was let go as the server stopped.
        assert time.monotonic() - stopping < 1.5
        assert model.stalled == 0
        with pytest.raises(httpx.RemoteProtocolError):  # the connection closed mid-stream
            async for _ in lines:
                pass
