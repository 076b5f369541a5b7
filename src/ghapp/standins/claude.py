"""A stand-in for the Claude Code CLI in headless mode, for tests and the offline demo.

It accepts the flags ghapp passes to ``claude -p PROMPT --output-format stream-json --verbose``
and prints the same stream-json events the real CLI prints, one JSON object per stdout line:
a ``system``/``init`` event, ``assistant`` and ``user`` (tool result) messages, and a closing
``result`` event. No model is called; what happens is chosen by a *scenario*:

* the ``GHAPP_FAKE_CLAUDE_SCENARIO`` environment variable, else
* a ``[scenario:NAME]`` directive anywhere in the prompt, else
* ``success``.

Scenarios: ``success``, ``edit`` (also changes ``README.md`` and writes ``ghapp-change.txt`` in
the working directory), ``error_max_turns``, ``is_error`` (an API error: subtype ``success`` with
``is_error: true``), ``error_during_execution``, ``budget`` (``error_max_budget_usd``),
``no_result`` (exits 0 without a result event), ``crash`` (a traceback on stderr, exit 1),
``hang`` (prints the init event, then sleeps until killed) and ``slow`` (five events,
``GHAPP_FAKE_CLAUDE_DELAY`` seconds apart, default 0.2).

Other environment variables: ``GHAPP_FAKE_CLAUDE_SLEEP_BEFORE`` (seconds to wait before the
first event, default 0) and ``GHAPP_FAKE_CLAUDE_RECORD`` (a file to which one JSON line per
invocation is appended: argv, cwd, prompt, scenario, session id and the *names* of the
``ANTHROPIC_*``, ``CLAUDE_*`` and ``GHAPP_*`` environment variables).

Exit status: 0 after a result with ``is_error: false`` (and for ``no_result``), 1 after a result
with ``is_error: true`` or a crash, 2 for usage errors (message on stderr, nothing on stdout).

Run it as ``python -m ghapp.standins.claude`` or through the ``ghapp-fake-claude`` script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

VERSION = "2.0.14 (Claude Code)"
DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
MODEL_ALIASES = {
    "sonnet": DEFAULT_MODEL,
    "opus": "claude-opus-4-1-20250805",
    "haiku": "claude-haiku-4-5-20251001",
}
DEFAULT_TOOLS = [
    "Task",
    "Bash",
    "Glob",
    "Grep",
    "ExitPlanMode",
    "Read",
    "Edit",
    "Write",
    "NotebookEdit",
    "WebFetch",
    "TodoWrite",
    "WebSearch",
    "BashOutput",
    "KillShell",
    "SlashCommand",
]
PERMISSION_MODES = ["acceptEdits", "bypassPermissions", "default", "dontAsk", "plan"]
OUTPUT_FORMATS = ["text", "json", "stream-json"]
SCENARIOS = [
    "success",
    "edit",
    "error_max_turns",
    "is_error",
    "error_during_execution",
    "budget",
    "no_result",
    "crash",
    "hang",
    "slow",
]
USAGE = "claude -p PROMPT --output-format stream-json --verbose [options]"
DEFAULT_MAX_TURNS = 3
DEFAULT_DELAY = 0.2
DEFAULT_BUDGET_USD = 0.01
MAX_BUDGET_TURNS = 20
RECORDED_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "GHAPP_")
SCENARIO_DIRECTIVE = re.compile(r"\[scenario:\s*([A-Za-z_-]+)\s*\]")
CHANGE_FILE = "ghapp-change.txt"

# Sonnet prices in USD per token, for a plausible total_cost_usd.
PRICE_INPUT = 3e-6
PRICE_CACHE_WRITE = 3.75e-6
PRICE_CACHE_READ = 0.3e-6
PRICE_OUTPUT = 15e-6


class UsageError(Exception):
    """A command line the real CLI would refuse."""


class _MaxTurnsReached(Exception):
    """Starting another API turn would exceed --max-turns."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _tool_list(values: list[str] | None) -> list[str]:
    """``--allowedTools a,b`` and ``--allowedTools a b`` both give ``[a, b]``."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="claude",
        description="Stand-in for the Claude Code CLI (headless stream-json mode only).",
        allow_abbrev=False,
    )
    parser.add_argument("prompt", nargs="?", help="the prompt (read from stdin when absent)")
    parser.add_argument("-p", "--print", action="store_true", help="print mode (required)")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--permission-mode", choices=PERMISSION_MODES, default="default")
    parser.add_argument(
        "--allowedTools", "--allowed-tools", dest="allowed_tools", nargs="+", action="extend"
    )
    parser.add_argument(
        "--disallowedTools",
        "--disallowed-tools",
        dest="disallowed_tools",
        nargs="+",
        action="extend",
    )
    parser.add_argument("--max-turns", type=int)
    parser.add_argument("--max-budget-usd", type=float)
    parser.add_argument("--model")
    parser.add_argument("--append-system-prompt")
    parser.add_argument("--system-prompt")
    parser.add_argument("--session-id")
    parser.add_argument("--tools")
    # Accepted as the real CLI accepts it (ghapp passes a command's output schema); this
    # stand-in calls no model, so its result never carries a structured_output.
    parser.add_argument("--json-schema", type=json.loads)
    # A follow-up's flags, accepted as the real CLI accepts them (ghapp.runners.claude); this
    # stand-in keeps no conversations, so a resumed session starts as a new one.
    parser.add_argument("--resume")
    parser.add_argument("--fork-session", action="store_true")
    parser.add_argument("--system-prompt-snapshot", choices=("on", "off"))
    parser.add_argument("--include-partial-messages", action="store_true")
    parser.add_argument("--settings")
    parser.add_argument("--setting-sources")
    parser.add_argument("--strict-mcp-config", action="store_true")
    parser.add_argument("--dangerously-skip-permissions", action="store_true")
    parser.add_argument("-v", "--version", action="store_true")
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    args = _build_parser().parse_args(argv)
    if args.version:
        return args
    if not args.print:
        raise UsageError("this stand-in only supports print mode: pass -p/--print")
    if args.output_format != "stream-json":
        raise UsageError("this stand-in only supports --output-format stream-json")
    if not args.verbose:
        raise UsageError("When using --print, --output-format=stream-json requires --verbose")
    if args.max_turns is not None and args.max_turns < 1:
        raise UsageError("--max-turns must be a positive integer")
    if args.max_budget_usd is not None and args.max_budget_usd <= 0:
        raise UsageError("--max-budget-usd must be a positive number")
    if args.session_id is not None:
        try:
            uuid.UUID(args.session_id)
        except ValueError:
            raise UsageError("Invalid session ID. Must be a valid UUID.") from None
    args.allowed_tools = _tool_list(args.allowed_tools)
    args.disallowed_tools = _tool_list(args.disallowed_tools)
    return args


def _read_prompt(args: argparse.Namespace) -> str:
    if args.prompt is not None:
        return args.prompt
    stdin = sys.stdin
    text = "" if stdin is None or stdin.isatty() else stdin.read()
    if not text.strip():
        raise UsageError(
            "Input must be provided either through stdin or as a prompt argument when using --print"
        )
    return text


def _choose_scenario(prompt: str) -> str:
    name = os.environ.get("GHAPP_FAKE_CLAUDE_SCENARIO", "").strip()
    if not name:
        match = SCENARIO_DIRECTIVE.search(prompt)
        name = match.group(1) if match else "success"
    name = name.lower().replace("-", "_")
    if name not in SCENARIOS:
        raise UsageError(f"unknown scenario {name!r}; expected one of: {', '.join(SCENARIOS)}")
    return name


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, not {raw!r}") from None


def _record(argv: list[str], **fields: Any) -> None:
    path = os.environ.get("GHAPP_FAKE_CLAUDE_RECORD")
    if not path:
        return
    entry = {
        "argv": argv,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "env": sorted(k for k in os.environ if k.startswith(RECORDED_ENV_PREFIXES)),
        **fields,
    }
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)


def _first_line(prompt: str) -> str:
    for line in prompt.splitlines():
        if line.strip():
            return line.strip()
    return ""


class Session:
    """One run: writes the events and keeps the counters the result event reports."""

    def __init__(self, args: argparse.Namespace, prompt: str, scenario: str) -> None:
        self.args = args
        self.prompt = prompt
        self.scenario = scenario
        self.cwd = Path.cwd()
        self.session_id = args.session_id or str(uuid.uuid4())
        self.model = MODEL_ALIASES.get(args.model or "", args.model or DEFAULT_MODEL)
        self.tools = [t for t in DEFAULT_TOOLS if t not in set(args.disallowed_tools)]
        self.started = time.monotonic()
        self.delay = 0.0
        self.events = 0
        self.turns = 0
        self.message_id = ""
        self.message_usage: dict[str, Any] = {}
        self.max_turns: int | None = args.max_turns
        self.usage = {
            "input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 0,
        }

    # -- output -------------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        if self.events and self.delay:
            time.sleep(self.delay)
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        sys.stdout.buffer.write(data.encode("utf-8"))
        sys.stdout.buffer.flush()
        self.events += 1

    def init(self) -> None:
        self.emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": str(self.cwd),
                "session_id": self.session_id,
                "tools": self.tools,
                "mcp_servers": [],
                "model": self.model,
                "permissionMode": self.args.permission_mode,
                "slash_commands": [],
                "apiKeySource": "none",
                "claude_code_version": VERSION.split()[0],
                "output_style": "default",
                "uuid": str(uuid.uuid4()),
            }
        )

    def _start_turn(self, output_tokens: int, *, synthetic: bool = False) -> None:
        """Start a new API turn; its assistant messages share an id and a usage."""
        if self.max_turns is not None and self.turns >= self.max_turns:
            raise _MaxTurnsReached
        self.turns += 1
        self.message_id = "msg_" + uuid.uuid4().hex[:24]
        input_tokens = 4 + len(self.prompt) // 4 if self.turns == 1 else 6
        cache_creation = 2048 if self.turns == 1 else 320
        cache_read = 14_000 + 900 * (self.turns - 1)
        if synthetic:  # a message the CLI makes up itself (an API error): no tokens
            input_tokens = cache_creation = cache_read = output_tokens = 0
        self.usage["input_tokens"] += input_tokens
        self.usage["cache_creation_input_tokens"] += cache_creation
        self.usage["cache_read_input_tokens"] += cache_read
        self.usage["output_tokens"] += output_tokens
        self.message_usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_creation,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def assistant(
        self,
        content: dict[str, Any],
        *,
        new_turn: bool = True,
        synthetic: bool = False,
        output_tokens: int = 60,
    ) -> None:
        """One content block; blocks of the same API turn share the message id, as in the CLI."""
        if new_turn or not self.message_id:
            self._start_turn(output_tokens, synthetic=synthetic)
        self.emit(
            {
                "type": "assistant",
                "message": {
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": "<synthetic>" if synthetic else self.model,
                    "content": [content],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": self.message_usage,
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

    def text(self, text: str, **kwargs: Any) -> None:
        self.assistant({"type": "text", "text": text}, **kwargs)

    def tool(
        self,
        name: str,
        tool_input: dict[str, Any],
        result: str,
        *,
        new_turn: bool = True,
        is_error: bool = False,
    ) -> None:
        """A tool_use block and the user message carrying its result."""
        tool_use_id = "toolu_" + uuid.uuid4().hex[:24]
        self.assistant(
            {"type": "tool_use", "id": tool_use_id, "name": name, "input": tool_input},
            new_turn=new_turn,
        )
        block: dict[str, Any] = {"tool_use_id": tool_use_id, "type": "tool_result"}
        block["content"] = result
        if is_error:
            block["is_error"] = True
        self.emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
            }
        )

    def cost(self) -> float:
        u = self.usage
        return round(
            u["input_tokens"] * PRICE_INPUT
            + u["cache_creation_input_tokens"] * PRICE_CACHE_WRITE
            + u["cache_read_input_tokens"] * PRICE_CACHE_READ
            + u["output_tokens"] * PRICE_OUTPUT,
            6,
        )

    def result(
        self,
        subtype: str,
        *,
        is_error: bool,
        text: str | None = None,
        errors: list[str] | None = None,
    ) -> int:
        # Wall-clock time plus a simulated API latency per turn, so the numbers look real.
        api_ms = 1400 * self.turns
        duration_ms = int((time.monotonic() - self.started) * 1000) + api_ms + 300
        cost = self.cost()
        event: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": duration_ms,
            "duration_api_ms": api_ms,
            "num_turns": self.turns,
        }
        if subtype == "success":
            event["result"] = text or ""
        event |= {
            "session_id": self.session_id,
            "total_cost_usd": cost,
            "usage": {
                **self.usage,
                "server_tool_use": {"web_search_requests": 0},
                "service_tier": "standard",
            },
            "modelUsage": {
                self.model: {
                    "inputTokens": self.usage["input_tokens"],
                    "outputTokens": self.usage["output_tokens"],
                    "cacheReadInputTokens": self.usage["cache_read_input_tokens"],
                    "cacheCreationInputTokens": self.usage["cache_creation_input_tokens"],
                    "webSearchRequests": 0,
                    "costUSD": cost,
                    "contextWindow": 200_000,
                }
            }
            if self.turns
            else {},
            "permission_denials": [],
        }
        if subtype != "success":
            event["errors"] = errors or []
        event["uuid"] = str(uuid.uuid4())
        self.emit(event)
        return 1 if is_error else 0

    # -- helpers for the scenarios ------------------------------------------------------------

    def file_to_read(self) -> Path | None:
        if "Read" not in self.tools:
            return None
        readme = self.cwd / "README.md"
        if readme.is_file():
            return readme
        try:
            candidates = sorted(
                p for p in self.cwd.iterdir() if p.is_file() and not p.name.startswith(".")
            )
        except OSError:
            return None
        return candidates[0] if candidates else None

    def read(self, path: Path, *, new_turn: bool = True) -> str:
        """A Read tool call, with the CLI's numbered-line result format."""
        try:
            content = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            self.tool("Read", {"file_path": str(path)}, f"<tool_use_error>{exc}</tool_use_error>")
            return ""
        lines = content.splitlines()[:200]
        numbered = "\n".join(f"{n:>6}\u2192{line}" for n, line in enumerate(lines, 1))
        self.tool("Read", {"file_path": str(path)}, numbered, new_turn=new_turn)
        return content

    def write(self, path: Path, content: str, *, existed: bool) -> None:
        path.write_text(content, encoding="utf-8")
        message = (
            f"The file {path} has been updated."
            if existed
            else f"File created successfully at: {path}"
        )
        self.tool("Write", {"file_path": str(path), "content": content}, message)

    def answer(self, extra: str = "") -> str:
        first = _first_line(self.prompt)
        lines = [
            "## Summary",
            "",
            f"I worked on the request: **{first}**",
            "",
            f"- Working directory: `{self.cwd}`",
            f"- Permission mode: `{self.args.permission_mode}`",
        ]
        if extra:
            lines.append(extra)
        lines += ["", "_(stand-in Claude Code; no model was called)_"]
        return "\n".join(lines)


# -- scenarios ----------------------------------------------------------------------------------


def _success(s: Session) -> int:
    s.init()
    target = s.file_to_read()
    if target is not None:
        s.text(f"Let me look at `{target.name}` first.")
        s.read(target, new_turn=False)
        extra = f"- Read `{target.name}`"
    else:
        extra = "- The working directory has no files to read"
    answer = s.answer(extra)
    s.text(answer, output_tokens=180)
    return s.result("success", is_error=False, text=answer)


def _edit(s: Session) -> int:
    s.init()
    readme = s.cwd / "README.md"
    existed = readme.is_file()
    s.text("I'll make the requested change.")
    old = s.read(readme, new_turn=False) if existed else ""
    if old and not old.endswith("\n"):
        old += "\n"
    s.write(readme, old + f"\nChanged by ghapp session {s.session_id}.\n", existed=existed)
    change = s.cwd / CHANGE_FILE
    s.write(
        change,
        f"session: {s.session_id}\nrequest: {_first_line(s.prompt)}\n",
        existed=change.exists(),
    )
    verb = "Updated" if existed else "Created"
    answer = s.answer(f"- {verb} `README.md`\n- Wrote `{CHANGE_FILE}`")
    s.text(answer, output_tokens=200)
    return s.result("success", is_error=False, text=answer)


def _error_max_turns(s: Session) -> int:
    """Keeps calling tools; Session raises _MaxTurnsReached when the limit is hit."""
    if s.max_turns is None:
        s.max_turns = DEFAULT_MAX_TURNS
    s.init()
    n = 0
    while True:
        n += 1
        grep = {"pattern": f"TODO-{n}", "output_mode": "files_with_matches"}
        s.tool("Grep", grep, "No files found")


def _is_error(s: Session) -> int:
    s.init()
    message = (
        'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    s.text(message, synthetic=True)
    return s.result("success", is_error=True, text=message)


def _error_during_execution(s: Session) -> int:
    s.init()
    s.text("Let me start on this.")
    return s.result(
        "error_during_execution",
        is_error=True,
        errors=["Error: stand-in failure during execution"],
    )


def _budget(s: Session) -> int:
    s.init()
    budget = s.args.max_budget_usd or DEFAULT_BUDGET_USD
    s.text("Let me look around the repository.")
    s.tool("Glob", {"pattern": "**/*"}, "\n".join(_listing(s.cwd)), new_turn=False)
    for _ in range(MAX_BUDGET_TURNS):
        if s.cost() > budget:
            break
        s.tool("Grep", {"pattern": "TODO"}, "No files found")
    return s.result(
        "error_max_budget_usd", is_error=True, errors=[f"Reached maximum budget (${budget})"]
    )


def _no_result(s: Session) -> int:
    s.init()
    s.text("Starting on it…")
    return 0


def _crash(s: Session) -> int:
    s.init()
    sys.stderr.write(
        "file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1\n"
        "TypeError: Cannot read properties of undefined (reading 'content')\n"
        "    at runHeadless (file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1:1)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"
        "(ghapp stand-in: scenario crash)\n"
    )
    sys.stderr.flush()
    return 1


def _hang(s: Session) -> int:
    s.init()
    while True:  # until a signal ends the process
        time.sleep(3600)


def _slow(s: Session) -> int:
    s.delay = _env_seconds("GHAPP_FAKE_CLAUDE_DELAY", DEFAULT_DELAY)
    s.init()
    s.tool("Glob", {"pattern": "*"}, "\n".join(_listing(s.cwd)) or "No files found")
    answer = s.answer("- Listed the working directory slowly")
    s.text(answer, output_tokens=120)
    return s.result("success", is_error=False, text=answer)


def _listing(cwd: Path) -> list[str]:
    try:
        return sorted(str(p) for p in cwd.iterdir() if not p.name.startswith("."))[:50]
    except OSError:
        return []


RUNNERS = {
    "success": _success,
    "edit": _edit,
    "error_max_turns": _error_max_turns,
    "is_error": _is_error,
    "error_during_execution": _error_during_execution,
    "budget": _budget,
    "no_result": _no_result,
    "crash": _crash,
    "hang": _hang,
    "slow": _slow,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
        if args.version:
            print(VERSION, flush=True)
            return 0
        prompt = _read_prompt(args)
        scenario = _choose_scenario(prompt)
        sleep_before = _env_seconds("GHAPP_FAKE_CLAUDE_SLEEP_BEFORE", 0.0)
    except UsageError as exc:
        _record(argv, prompt=None, scenario=None, session_id=None, error=str(exc))
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.write(f"usage: {USAGE}\n")
        return 2
    session = Session(args, prompt, scenario)
    _record(argv, prompt=prompt, scenario=scenario, session_id=session.session_id, error=None)
    if sleep_before:
        time.sleep(sleep_before)
    try:
        try:
            return RUNNERS[scenario](session)
        except _MaxTurnsReached:
            return session.result(
                "error_max_turns",
                is_error=True,
                errors=[f"Reached maximum number of turns ({session.max_turns})"],
            )
    except BrokenPipeError:
        # The reader went away: stop quietly, like a CLI piped into `head`.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())


def write_executable(directory: Path) -> Path:
    """An executable file running this stand-in, for ``GHAPP_CLAUDE_BIN`` (tests, demo)."""
    path = Path(directory) / "fake-claude"
    script = "from ghapp.standins.claude import main\nraise SystemExit(main())\n"
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(0o755)
    return path


# The stream of a scenario, replayed by bash with builtins only (no fork): what the Python
# stand-in prints, for a fraction of its cost (an interpreter start-up is ~120 ms of CPU
# here), so load tests and benches measure ghapp rather than the stand-in. The session id
# and working directory are filled in per run. With a record file, each invocation appends
# {"issue": N from "ISSUE #N" in its arguments, "ticks": its start time in clock ticks
# since boot (/proc/self/stat, read by bash itself), "started": $EPOCHREALTIME}.
_REPLAY = """#!/bin/bash
{record_lines}sid=$(( $$ * 100000 + RANDOM ))-replay
while IFS= read -r line; do
  {pause}line=${{line//@SID@/$sid}}
  printf '%s\\n' "${{line//@CWD@/$PWD}}"
done < {template}
"""
_PAUSE = "(( ++replay_line == {last} )) && sleep {delay}\n  "  # before the last line (delay_s)
_RECORD = """read -r -a stat < /proc/self/stat
started=$EPOCHREALTIME
issue=null
[[ "$*" =~ ISSUE\\ \\#([0-9]+) ]] && issue=${{BASH_REMATCH[1]}}
printf '{{"issue": %s, "ticks": %s, "started": %s}}\\n' \\
  "$issue" "${{stat[21]}}" "$started" >> {record}
"""


def write_replay_executable(
    directory: Path, scenario: str = "success", record: Path | None = None, delay_s: float = 0
) -> Path:
    """A bash executable replaying this stand-in's ``scenario`` stream (see above).

    ``delay_s`` > 0: it ``sleep``s that long before the stream's last line, a session that
    takes a while (the rest of the stream is printed at once).
    """
    import subprocess

    directory = Path(directory)
    sample = directory / "replay-sample"
    sample.mkdir(exist_ok=True)
    (sample / "README.md").write_text("# Hello\n")
    python = write_executable(directory)
    out = subprocess.run(  # noqa: S603 (our own executable)
        [str(python), "-p", "ISSUE #0", "--output-format", "stream-json", "--verbose"],
        cwd=sample,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GHAPP_FAKE_CLAUDE_SCENARIO": scenario},
    ).stdout
    session_id = json.loads(out.splitlines()[0])["session_id"]
    template = directory / f"replay-{scenario}.jsonl"
    template.write_text(out.replace(session_id, "@SID@").replace(str(sample), "@CWD@"))
    record_lines = _RECORD.format(record=record) if record is not None else ""
    pause = _PAUSE.format(last=len(out.splitlines()), delay=f"{delay_s:f}") if delay_s > 0 else ""
    path = directory / "claude-replay"
    path.write_text(_REPLAY.format(record_lines=record_lines, pause=pause, template=template))
    path.chmod(0o755)
    return path
