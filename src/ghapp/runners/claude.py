"""The ``claude`` runner: Claude Code headless, its stream-json read line by line.

``claude -p PROMPT --output-format stream-json --verbose [options]`` prints one JSON event
per line: ``system/init`` first, then ``assistant`` / ``user`` messages, and last a
``result``. Progress (turns, tools used) is reported while it runs; the result event
decides the outcome — ``is_error: true`` is a failure even under subtype ``success`` — and
a missing result, a non-zero exit, a timeout or a crash is a failure whose error is the
tail of stderr. The process runs in its own session, so a timeout or a cancellation kills
its whole process group (tools it started included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghapp import structured
from ghapp.runners import transcript_files
from ghapp.runners.base import Outcome, Progress, ProgressCallback, SessionRequest, refused

if TYPE_CHECKING:
    from ghapp.sandbox import Sandbox
    from ghapp.settings import Settings

log = logging.getLogger("ghapp.runners")

NO_PROJECT = '{"disableAllHooks": true}'  # with --setting-sources user: no hook runs at all
STDERR_TAIL_LINES = 40
# A follow-up whose saved conversation is not a transcript fails before the CLI starts: the
# CLI would skip the lines it cannot read and go on with half a conversation.
TRANSCRIPT_INVALID = (
    "the earlier session's saved conversation is not a Claude Code transcript ({why}), "
    "so it was not resumed"
)
MAX_LINE_BYTES = 8 * 1024 * 1024  # one event (a large file read) can be big
# Environment the session may see; everything else of ghapp's (tokens, secrets) is left out.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM", "USER", "SHELL")
PASSED_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "AWS_", "GOOGLE_", "VERTEX_")


@dataclass(frozen=True)
class SessionOptions:
    permission_mode: str | None = None
    allowed_tools: Sequence[str] = ()
    disallowed_tools: Sequence[str] = ()
    max_turns: int | None = None
    model: str | None = None
    append_system_prompt: str | None = None
    session_id: str | None = None  # chosen by ghapp, stored before the process starts
    max_budget_usd: float | None = None  # the CLI stops the session past this cost
    tools: Sequence[str] | None = None  # the only tools the session even sees (None: all)
    project_settings: bool = True  # False: no .claude/settings.json, hooks or .mcp.json
    json_schema: dict[str, Any] | None = None  # the command's output schema (structured result)
    # An earlier session to continue (its transcript restored in the home): forked into
    # ``session_id``, so every ghapp session keeps an agent session id of its own.
    resume: str | None = None


def command_line(binary: str, prompt: str, options: SessionOptions) -> list[str]:
    argv = [binary, "-p", prompt, "--output-format", "stream-json", "--verbose"]
    if options.permission_mode:
        argv += ["--permission-mode", options.permission_mode]
    if options.allowed_tools:
        argv += ["--allowedTools", ",".join(options.allowed_tools)]
    if options.disallowed_tools:
        argv += ["--disallowedTools", ",".join(options.disallowed_tools)]
    if options.max_turns:
        argv += ["--max-turns", str(options.max_turns)]
    if options.model:
        argv += ["--model", options.model]
    if options.append_system_prompt:
        argv += ["--append-system-prompt", options.append_system_prompt]
    if options.session_id:
        argv += ["--session-id", options.session_id]
    if options.resume:
        # The transcript records the first session's system prompt and the CLI would send
        # that record again; the session could have rewritten it. Rendered afresh, the
        # follow-up's system prompt is ghapp's own.
        argv += ["--resume", options.resume, "--fork-session", "--system-prompt-snapshot", "off"]
    if options.max_budget_usd:
        argv += ["--max-budget-usd", f"{options.max_budget_usd:g}"]
    if options.tools is not None:
        argv += ["--tools", ",".join(options.tools)]
    if options.json_schema is not None:
        argv += ["--json-schema", json.dumps(options.json_schema)]
    if not options.project_settings:
        # Only the session's own (empty) home: nothing of the checkout's configuration.
        argv += ["--setting-sources", "user", "--strict-mcp-config", "--settings", NO_PROJECT]
    return argv


def session_environment(
    base: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
    *,
    scratch: Path | None = None,
) -> dict[str, str]:
    """Only what the CLI needs, and the ``extra`` names an operator chose (a proxy, CA
    certificates): never ghapp's own secrets (tokens, keys, webhook secret).

    With ``scratch`` (a folder removed with the session), the session gets a fresh, empty
    home and temporary folder there: nothing it leaves in ``~/.claude`` reaches the next
    session, and nothing of ghapp's own home reaches it."""
    source = os.environ if base is None else base
    env = {
        key: value
        for key, value in source.items()
        if key in PASSED_ENV or key.startswith(PASSED_PREFIXES) or key in extra
    }
    # A server's sessions never update the CLI under it, and send nothing but model calls
    # (an operator may still say otherwise in ghapp's own environment).
    env.setdefault("DISABLE_AUTOUPDATER", "1")
    env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    if scratch is not None:
        home, tmp = scratch / "home", scratch / "tmp"
        home.mkdir(mode=0o700, exist_ok=True)
        tmp.mkdir(mode=0o700, exist_ok=True)
        env.update(HOME=str(home), TMPDIR=str(tmp), CLAUDE_CODE_TMPDIR=str(tmp))
    return env


def find_executable(binary: str) -> tuple[str | None, str | None]:
    """(absolute path, None) for a ``binary`` that can be started, or (None, why not) naming
    the setting to fix. A relative path means one from ghapp's working directory, not the
    checkout's, so it is made absolute here."""
    found = shutil.which(binary)
    if found is not None:
        return os.path.abspath(found), None
    if os.sep in binary and os.path.exists(binary):
        return (
            None,
            f"GHAPP_CLAUDE_BIN={binary} is not executable (chmod +x, or point it elsewhere)",
        )
    return None, (
        f"the Claude Code executable {binary!r} was not found (GHAPP_CLAUDE_BIN); install it "
        "(npm install -g @anthropic-ai/claude-code) or set GHAPP_CLAUDE_BIN to its path"
    )


class ClaudeRunner:
    """Claude Code in the sandbox, with the tools, permission mode and project settings the
    item's trust allows, and the job's model, turns, budget and time limit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, request: SessionRequest) -> Outcome:
        refusal = sandbox_refusal(request.sandbox)
        if refusal is not None:
            return refusal
        wrap, env = confinement(request, self.settings.session_env_names)
        home = Path(env["HOME"])
        if request.resume is not None:
            problem = resumable(request, home)
            if problem is not None:
                return refused(problem)
        agent_session = str(uuid.uuid4())  # named now: the run page shows it from the start
        await request.log.named(agent_session)
        outcome = await run_claude(
            self.settings.claude_bin,
            request.prompt,
            request.checkout,
            self.options(request, agent_session),
            time_limit=request.job.timeout_seconds,
            cancel=request.cancel,
            on_event=request.log.progress,
            env=env,
            wrap=wrap,
        )
        await request.log.flush()
        outcome = replace(
            outcome,
            agent_session_id=outcome.agent_session_id or agent_session,
            transcript=self.transcript(home, agent_session),
        )
        return checked(outcome, structured.schema_for(request.job, request.command))

    def transcript(self, home: Path, agent_session: str) -> bytes | None:
        """The session's transcript from its home, to be kept for a follow-up; None (and
        why, in the log) when there is none ghapp keeps. Never its content in the log."""
        limit = self.settings.transcript_max_bytes
        try:
            return transcript_files.read_back(home, agent_session, limit) if limit else None
        except transcript_files.TranscriptRefused as exc:
            log.warning(
                "transcript not kept", extra={"agent_session_id": agent_session, "reason": str(exc)}
            )
            return None

    def options(self, request: SessionRequest, agent_session: str) -> SessionOptions:
        job, rules, command = request.job, request.policy, request.command
        return SessionOptions(
            permission_mode=rules.permission_mode,
            allowed_tools=rules.allowed_tools,
            disallowed_tools=rules.disallowed_tools,
            max_turns=job.max_turns,
            model=job.model or (command.model if command else None),
            append_system_prompt=job.append_system_prompt,
            session_id=agent_session,
            max_budget_usd=job.max_budget_usd or self.settings.max_budget_usd or None,
            tools=rules.tools,
            project_settings=rules.project_settings,
            json_schema=structured.schema_for(job, command),
            resume=request.resume.agent_session_id if request.resume else None,
        )


def resumable(request: SessionRequest, home: Path) -> str | None:
    """Restore the earlier session's transcript into this session's fresh home, where the
    CLI run in the new checkout finds it; or why it cannot be resumed."""
    assert request.resume is not None
    why = transcript_files.problem(request.resume.transcript)
    if why is None:
        try:
            agent_session_id, data = request.resume.agent_session_id, request.resume.transcript
            transcript_files.restore(home, request.checkout, agent_session_id, data)
        except transcript_files.TranscriptRefused as exc:
            why = str(exc)
    return None if why is None else TRANSCRIPT_INVALID.format(why=why)


def checked(outcome: Outcome, schema: dict[str, Any] | None) -> Outcome:
    """The outcome with its structured result checked against the command's schema: the
    CLI checked it too, but the model read strangers' text, so ghapp checks again."""
    if schema is None:
        return replace(outcome, structured=None)
    result, error = structured.accept(outcome.structured, schema)
    if not outcome.ok and result is None:
        error = None  # the session failed: its error says why, not the missing object
    return replace(outcome, structured=None, structured_result=result, structured_error=error)


def sandbox_refusal(sandbox: Sandbox) -> Outcome | None:
    """Why a session may not start, when the sandbox is required and cannot run here."""
    if sandbox.mode == "required" and not sandbox.active:
        return refused(f"GHAPP_SANDBOX=required, and {sandbox.problem}")
    return None


def confinement(
    request: SessionRequest, extra_env: Sequence[str]
) -> tuple[Callable[[list[str]], list[str]], dict[str, str]]:
    """How a session's process is started: inside the sandbox, with an environment that
    holds none of ghapp's secrets and a home of its own in the session's scratch folder."""
    scratch = request.checkout.parent
    wrap = partial(request.sandbox.wrap, scratch=scratch, cwd=request.checkout)
    return wrap, session_environment(extra=extra_env, scratch=scratch)


async def run_claude(
    binary: str,
    prompt: str,
    cwd: Path,
    options: SessionOptions,
    *,
    time_limit: float,
    on_event: ProgressCallback | None = None,
    cancel: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
) -> Outcome:
    """Run one session to its end and classify how it ended. ``wrap`` puts the command line
    inside the sandbox (see :mod:`ghapp.sandbox`)."""
    started = time.monotonic()
    executable, problem = find_executable(binary)
    if executable is None:
        return _failed(problem or binary, started, Progress(), None)
    argv = command_line(executable, prompt, options)
    try:
        process = await asyncio.create_subprocess_exec(
            *(wrap(argv) if wrap is not None else argv),
            cwd=cwd,
            env=dict(env) if env is not None else session_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as one
            limit=MAX_LINE_BYTES,
        )
    except OSError as exc:
        return _failed(f"could not start {binary!r}: {exc}", started, Progress(), None)
    progress = Progress()
    stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    reading = asyncio.gather(
        _read_events(process, progress, on_event), _read_stderr(process, stderr_tail)
    )
    stop = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
    try:
        waiters = {reading} | ({stop} if stop else set())
        done, _ = await asyncio.wait(
            waiters, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED
        )
        if reading not in done:
            _kill_group(process)
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            await process.wait()
            status = "cancelled" if stop in done else "timed_out"
            reason = "cancelled" if stop in done else f"timed out after {time_limit:g} s"
            return _ended(status, reason, started, progress, process.returncode, stderr_tail)
        result = reading.result()[0]
        exit_code = await process.wait()
    except BaseException:
        _kill_group(process)
        raise
    finally:
        if stop is not None:
            stop.cancel()
    return _classify(result, exit_code, started, progress, stderr_tail)


async def _read_events(
    process: asyncio.subprocess.Process, progress: Progress, on_event: ProgressCallback | None
) -> dict[str, Any] | None:
    """Every stdout line is one event; returns the ``result`` event, if one came."""
    assert process.stdout is not None
    result: dict[str, Any] | None = None
    async for raw in process.stdout:
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = {"type": "unparsed", "text": line[:2000]}
        if not isinstance(event, dict):
            continue
        _note(progress, event)
        if event.get("type") == "result":
            result = event
        if on_event is not None:
            await on_event(progress, event)
    return result


async def _read_stderr(process: asyncio.subprocess.Process, tail: deque[str]) -> None:
    assert process.stderr is not None
    async for raw in process.stderr:
        tail.append(raw.decode("utf-8", "replace").rstrip())


def _note(progress: Progress, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "init":
        progress.agent_session_id = event.get("session_id")
    elif kind == "assistant":
        message = event.get("message") or {}
        content = message.get("content") or []
        if message.get("id") not in {e.get("message_id") for e in progress.events}:
            progress.turns += 1
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                progress.tools.append(str(block.get("name")))
    progress.events.append(_summary(event))


def _summary(event: dict[str, Any]) -> dict[str, Any]:
    """A small record of the event for the session's log (not the whole payload)."""
    kind = event.get("type")
    summary: dict[str, Any] = {"type": kind}
    if kind == "system":
        summary["subtype"] = event.get("subtype")
    elif kind == "assistant":
        message = event.get("message") or {}
        summary["message_id"] = message.get("id")
        blocks = message.get("content") or []
        summary["blocks"] = [
            {"tool": b.get("name")}
            if b.get("type") == "tool_use"
            else {"text": str(b.get("text", ""))[:500]}
            for b in blocks
            if isinstance(b, dict)
        ]
    elif kind == "result":
        summary.update(
            {k: event.get(k) for k in ("subtype", "is_error", "num_turns", "total_cost_usd")}
        )
    return summary


def _classify(
    result: dict[str, Any] | None,
    exit_code: int,
    started: float,
    progress: Progress,
    stderr_tail: deque[str],
) -> Outcome:
    if result is None:
        reason = "Claude Code ended without a result"
        if exit_code != 0:
            reason = f"Claude Code exited with code {exit_code} without a result"
        return _ended("failed", reason, started, progress, exit_code, stderr_tail)
    subtype = str(result.get("subtype"))
    failed = bool(result.get("is_error")) or subtype != "success" or exit_code != 0
    text = result.get("result")
    error = None
    if failed:
        errors = result.get("errors") or []
        detail = "; ".join(str(e) for e in errors) if errors else (text or "")
        error = f"{subtype}: {detail}".strip().rstrip(":") if subtype != "success" else detail
        error = error or f"Claude Code exited with code {exit_code}"
    return Outcome(
        ok=not failed,
        status="failed" if failed else "completed",
        result_text=text if isinstance(text, str) else None,
        error=error,
        agent_session_id=result.get("session_id") or progress.agent_session_id,
        num_turns=int(result.get("num_turns") or progress.turns),
        cost_usd=float(result.get("total_cost_usd") or 0.0),
        duration_ms=int(result.get("duration_ms") or (time.monotonic() - started) * 1000),
        exit_code=exit_code,
        subtype=subtype,
        usage=result.get("usage") if isinstance(result.get("usage"), dict) else None,
        permission_denials=_list_or_none(result.get("permission_denials")),
        structured=result.get("structured_output"),
    )


def _list_or_none(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _ended(
    status: str,
    reason: str,
    started: float,
    progress: Progress,
    exit_code: int | None,
    stderr_tail: deque[str],
) -> Outcome:
    tail = "\n".join(stderr_tail).strip()
    return Outcome(
        ok=False,
        status=status,
        result_text=None,
        error=f"{reason}\n{tail}".strip() if tail else reason,
        agent_session_id=progress.agent_session_id,
        num_turns=progress.turns,
        cost_usd=0.0,
        duration_ms=int((time.monotonic() - started) * 1000),
        exit_code=exit_code,
    )


def _failed(reason: str, started: float, progress: Progress, exit_code: int | None) -> Outcome:
    return _ended("failed", reason, started, progress, exit_code, deque())


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
