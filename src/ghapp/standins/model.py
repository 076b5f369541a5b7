"""A model stand-in: the Anthropic Messages API on loopback, answering from a test's script.

The Claude Code stand-in (:mod:`ghapp.standins.claude`) replaces the whole CLI; this module
replaces only the *model*, so tests can run the **real** Claude Code CLI offline: point its
``ANTHROPIC_BASE_URL`` here and the CLI runs its real agent loop, its real tools (``Read``,
``Bash``, ``Edit``...) in a real checkout, its permission checks, retries, turn and budget
limits, and prints its real stream-json, while every model answer comes from the test.

What it serves, in Anthropic's shapes (``msg_…``/``toolu_…`` ids, ``usage`` with
``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
``cache_read_input_tokens``):

* ``POST /v1/messages``, streaming (server-sent events: ``message_start``, ``ping``,
  ``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``) /
  ``content_block_stop``, ``message_delta`` with ``stop_reason`` and the final ``usage``,
  ``message_stop``) and non-streaming (one message object). Query parameters are ignored: the
  CLI calls ``/v1/messages?beta=true``.
* ``POST /v1/messages/count_tokens``: a rough count (a quarter of the body's length).
* Anything else is recorded and answered ``200`` for ``HEAD`` (the connectivity check the CLI
  makes without ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``) or Anthropic's ``404``.

**Scripts.** A script is a sequence of :class:`Turn` (content blocks: text and ``tool_use``
with any tool name and input, optional usage and stop reason) and :class:`Fault` steps, or a
callable that receives the parsed :class:`ModelRequest` and returns the next one, or ``None``
for :attr:`ModelStandIn.final` (so a test can answer from the previous ``tool_result``). A
request picks its script by a ``[script:NAME]`` marker in the user's text, else the default
script. Each conversation walks its script from the start: conversations are told apart by
the CLI's session (the ``x-claude-code-session-id`` header) and their first prompt, so a
subagent started with the ``Agent`` tool, which shares the session, has its own place (and may
name its own script in its prompt). Every answered request takes a step, a retry too: a fault
step followed by a turn is "fail once, then answer". Once the script is used up, every further
request gets :attr:`ModelStandIn.final` (a plain text turn).

**Side requests** never consume a script or a fault step. They are the CLI's helper requests
to the model that are not the agent's turn: older versions asked a small model, without
tools, for a session title, a topic check or a Bash command prefix; 2.1.332 keeps helpers for
``WebFetch`` digests, compaction, titles and memory extraction, each with its own system
prompt. Measured on 2.1.332 in ``-p`` mode with ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``:
plain answers, ``Read``/``Bash``/``WebFetch`` calls, denied tools, ``--system-prompt``,
``--model haiku``, ``--tools ""`` and subagents send *no* side request at all. "Has no tools"
cannot be the rule (``--tools ""`` gives the conversation none) and neither can the model
(``--model haiku``); what every conversation request has, subagents and ``--system-prompt``
included, is the agent's system prompt block (``"You are a Claude agent, built on Anthropic's
Claude Agent SDK."``; interactive sessions say ``"You are Claude Code"``). So: a Messages
request whose system prompt contains none of :data:`AGENT_PROMPTS` is a side request and gets
:attr:`ModelStandIn.side_answer`; a test may pass its own rule (``side=``).

**Faults**, to see what the CLI does when the API misbehaves: ``529 overloaded_error``,
``500 api_error``, ``429 rate_limit_error`` (with ``retry-after``), an ``error`` event inside
the stream, a stream that *stalls* after ``message_start`` (until the client goes away or the
server stops: it never holds up shutdown), a stream *cut* in the middle of an event (the
connection is closed), and a *malformed* event (its data is not JSON); on a non-streaming
request (the CLI's fallback) they hold back the headers, cut the body, or send half of the
JSON. A fault is a script step, or set with :meth:`ModelStandIn.fail` on a request number or
on the next conversation requests.

**Records.** Every request is kept as a :class:`ModelRequest` (model, system prompt, messages,
tools offered, the ``tool_result`` blocks the CLI sent back, what was answered), so a test can
check what a tool *really* did: the model asked ``Read`` of ``README.md`` and the README's text
is in the tool result. State is guarded by one lock: read it from the test while
:meth:`ModelStandIn.serve_in_thread` serves from another thread.

    model = ModelStandIn([Turn.tool("Read", {"file_path": str(readme)}), Turn.text("Done.")])
    with model.serve_in_thread() as base_url:  # ANTHROPIC_BASE_URL=base_url for the CLI
        ...
    assert "# Hello" in model.tool_results()[0].content
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ghapp.standins.serving import in_loop, in_thread, loopback_config

__all__ = [
    "Fault",
    "ModelRequest",
    "ModelStandIn",
    "Script",
    "ToolResult",
    "Turn",
    "Usage",
    "text",
    "tool_use",
]

FaultKind = Literal[
    "overloaded", "api_error", "rate_limit", "stream_error", "stall", "cut", "malformed"
]
RequestKind = Literal["conversation", "side", "count_tokens", "other"]
Block = dict[str, Any]

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"  # answered when a request names none
SCRIPT_MARKER = re.compile(r"\[script:\s*([A-Za-z0-9_.-]+)\s*\]")
AGENT_PROMPTS = ("You are Claude Code", "You are a Claude agent", "Claude Agent SDK")
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
_ID_ALPHABET = string.ascii_letters + string.digits
# fault kind -> (HTTP status, Anthropic error type, default message)
_ERRORS = {
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "api_error": (500, "api_error", "Internal server error"),
    "rate_limit": (429, "rate_limit_error", "Number of requests has exceeded your rate limit"),
    "stream_error": (200, "overloaded_error", "Overloaded"),
}


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": _new_id("req_"),
    }


def _new_id(prefix: str) -> str:
    """Anthropic-looking ids: ``msg_01…``, ``toolu_01…``, ``req_01…`` (22 random characters)."""
    return prefix + "01" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def text(value: str) -> Block:
    """A text content block."""
    return {"type": "text", "text": value}


def tool_use(
    name: str, tool_input: Mapping[str, Any] | None = None, *, tool_use_id: str | None = None
) -> Block:
    """A ``tool_use`` content block; the id is made up when not given."""
    return {
        "type": "tool_use",
        "id": tool_use_id or _new_id("toolu_"),
        "name": name,
        "input": dict(tool_input or {}),
    }


@dataclass(frozen=True)
class Usage:
    """Token counts reported for one turn; the CLI adds them up and prices them."""

    input_tokens: int = 12
    output_tokens: int = 6
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class Turn:
    """One model answer: content blocks, a stop reason and the usage to report.

    ``stop_reason`` defaults to ``tool_use`` when a block is a ``tool_use``, else ``end_turn``.
    """

    content: Sequence[Block]
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        blocks = tuple(dict(block) for block in self.content)
        for block in blocks:
            if block.get("type") not in ("text", "tool_use"):
                raise ValueError(f"a turn holds text and tool_use blocks, not {block!r}")
            if block["type"] == "tool_use":
                block.setdefault("id", _new_id("toolu_"))
                block.setdefault("input", {})
        object.__setattr__(self, "content", blocks)

    @classmethod
    def text(
        cls, value: str, *, usage: Usage | None = None, stop_reason: str | None = None
    ) -> Turn:
        """A turn that only says ``value``."""
        return cls([text(value)], stop_reason=stop_reason, usage=usage or Usage())

    @classmethod
    def tool(
        cls,
        name: str,
        tool_input: Mapping[str, Any] | None = None,
        *,
        say: str | None = None,
        usage: Usage | None = None,
        stop_reason: str | None = None,
    ) -> Turn:
        """A turn that calls one tool, optionally saying something first."""
        blocks = ([text(say)] if say else []) + [tool_use(name, tool_input)]
        return cls(blocks, stop_reason=stop_reason, usage=usage or Usage())

    @property
    def final_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        has_tool = any(block["type"] == "tool_use" for block in self.content)
        return "tool_use" if has_tool else "end_turn"

    def message(self, model: str) -> dict[str, Any]:
        """The whole message object, as a non-streaming answer carries it."""
        return {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [dict(block) for block in self.content],
            "stop_reason": self.final_stop_reason,
            "stop_sequence": None,
            "usage": self.usage.as_dict(),
        }


@dataclass(frozen=True)
class Fault:
    """A way for the API to misbehave on one request; build them with the class methods."""

    kind: FaultKind
    message: str | None = None
    retry_after: float | None = None  # seconds, for rate_limit (the retry-after header)

    @classmethod
    def overloaded(cls, message: str | None = None) -> Fault:
        """``529 overloaded_error``, what the API answers when it is busy."""
        return cls("overloaded", message)

    @classmethod
    def api_error(cls, message: str | None = None) -> Fault:
        """``500 api_error``: an internal error on Anthropic's side."""
        return cls("api_error", message)

    @classmethod
    def rate_limit(cls, retry_after: float = 0, message: str | None = None) -> Fault:
        """``429 rate_limit_error`` with a ``retry-after`` header (seconds)."""
        return cls("rate_limit", message, retry_after)

    @classmethod
    def stream_error(cls, message: str | None = None) -> Fault:
        """A ``200`` stream that sends ``message_start`` then an ``error`` event (overloaded)."""
        return cls("stream_error", message)

    @classmethod
    def stall(cls) -> Fault:
        """``message_start``, then nothing until the client leaves or the server stops."""
        return cls("stall")

    @classmethod
    def cut(cls) -> Fault:
        """The first block starts, then the connection is closed in the middle of an event."""
        return cls("cut")

    @classmethod
    def malformed(cls) -> Fault:
        """An event whose ``data`` is not JSON, after ``message_start``."""
        return cls("malformed")

    @property
    def status(self) -> int:
        return _ERRORS[self.kind][0] if self.kind in _ERRORS else 200

    def error_body(self) -> dict[str, Any]:
        """Anthropic's error object for this fault (HTTP faults and ``stream_error``)."""
        _, error_type, default = _ERRORS[self.kind]
        return _error_body(error_type, self.message or default)


Step = Turn | Fault
Script = Sequence[Step] | Callable[["ModelRequest"], Step | None]


@dataclass(frozen=True)
class ToolResult:
    """A ``tool_result`` block the CLI sent back: what a tool really returned."""

    tool_use_id: str
    content: str  # its text (text blocks joined); the CLI may append a <system-reminder>
    is_error: bool
    name: str | None  # the tool the model called with this id, when the request shows it
    input: dict[str, Any] | None


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            item.get("text", "") if isinstance(item, dict) else str(item)
            for item in content
            if not isinstance(item, dict) or item.get("type") in (None, "text")
        ]
        return "\n".join(parts)
    return "" if content is None else str(content)


def _blocks(message: Any) -> list[Block]:
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


@dataclass(frozen=True)
class ModelRequest:
    """One request the stand-in received, parsed, and what it was answered."""

    number: int  # 1-based, over every request received
    message_number: int | None  # 1-based over POST /v1/messages only (what fail() counts)
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names, credentials removed
    body: Any  # the parsed JSON body, None when empty or not JSON
    kind: RequestKind
    script: str | None = None  # the script that answered a conversation request
    step: int | None = None  # 0-based position in that script, for this conversation
    answer: str = ""  # "turn", "final", "side", a fault kind, "error", "count", "ok"
    status: int = 200
    received_at: float = 0.0  # time.monotonic()

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream")) if isinstance(self.body, dict) else False

    @property
    def session_id(self) -> str | None:
        return self.headers.get("x-claude-code-session-id")

    @property
    def system(self) -> str:
        """The system prompt as text (blocks joined), plus any ``system``-role messages."""
        if not isinstance(self.body, dict):
            return ""
        parts = [_block_text(self.body.get("system"))]
        parts += [
            _block_text(message.get("content"))
            for message in self.messages
            if message.get("role") == "system"
        ]
        return "\n".join(part for part in parts if part)

    @property
    def messages(self) -> list[dict[str, Any]]:
        if not isinstance(self.body, dict):
            return []
        return [m for m in self.body.get("messages") or [] if isinstance(m, dict)]

    @property
    def tools(self) -> list[str]:
        """The names of the tools offered to the model."""
        if not isinstance(self.body, dict):
            return []
        return [t.get("name", "") for t in self.body.get("tools") or [] if isinstance(t, dict)]

    @property
    def cwd(self) -> str | None:
        """The session's working directory, as the CLI tells the model (its environment
        section: ``Primary working directory: /path``), so a script can name files in it."""
        text = self.system + "\n" + json.dumps(self.messages)
        match = re.search(r"Primary working directory: ([^\s\\\"]+)", text)
        return match.group(1) if match else None

    @property
    def prompt(self) -> str:
        """The user's prompt: the first user message's text without the CLI's reminders."""
        for message in self.messages:
            if message.get("role") != "user":
                continue
            texts = [
                block.get("text", "")
                for block in _blocks(message)
                if block.get("type") == "text"
                and not block.get("text", "").lstrip().startswith("<system-reminder>")
            ]
            return "\n".join(texts)
        return ""

    def user_texts(self) -> list[str]:
        """Every text block of every user message, reminders included."""
        return [
            block.get("text", "")
            for message in self.messages
            if message.get("role") == "user"
            for block in _blocks(message)
            if block.get("type") == "text"
        ]

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every ``tool_result`` in this request's messages, with the call it answers."""
        calls: dict[str, Block] = {}
        results: list[ToolResult] = []
        for message in self.messages:
            for block in _blocks(message):
                if block.get("type") == "tool_use":
                    calls[str(block.get("id"))] = block
                elif block.get("type") == "tool_result":
                    tool_use_id = str(block.get("tool_use_id"))
                    call = calls.get(tool_use_id, {})
                    results.append(
                        ToolResult(
                            tool_use_id=tool_use_id,
                            content=_block_text(block.get("content")),
                            is_error=bool(block.get("is_error", False)),
                            name=call.get("name"),
                            input=call.get("input"),
                        )
                    )
        return results

    @property
    def last_tool_result(self) -> ToolResult | None:
        """The newest tool result, what a callable script usually answers to."""
        results = self.tool_results
        return results[-1] if results else None


def default_is_side(request: ModelRequest) -> bool:
    """The rule in the module docstring: a request without the agent's system prompt."""
    return not any(marker in request.system for marker in AGENT_PROMPTS)


@dataclass(frozen=True)
class _Decision:
    """The answer chosen for one Messages request, and the fields recorded with it."""

    fields: dict[str, Any]
    turn: Turn | None = None
    fault: Fault | None = None
    error: str | None = None  # a 400 invalid_request_error (an unknown script)

    @property
    def status(self) -> int:
        if self.error is not None:
            return 400
        return self.fault.status if self.fault is not None else 200


class _StreamCut(Exception):
    """Raised inside a response to make uvicorn close the connection mid-stream."""


class _QuietCuts(logging.Filter):
    """Drops uvicorn's traceback for the connections this stand-in cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _StreamCut)


def _sse(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _chunks(value: str, parts: int) -> list[str]:
    """Split a string in up to ``parts`` pieces, so clients really concatenate deltas."""
    if len(value) < parts * 2:
        return [value] if value else []
    size = -(-len(value) // parts)
    return [value[i : i + size] for i in range(0, len(value), size)]


def _turn_events(turn: Turn, model: str, message_id: str) -> list[dict[str, Any]]:
    """The server-sent events of one answer, in the order Anthropic sends them."""
    usage = turn.usage.as_dict()
    start_usage = {**usage, "output_tokens": min(1, turn.usage.output_tokens)}
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
    ]
    for index, block in enumerate(turn.content):
        if block["type"] == "text":
            start: Block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _chunks(block["text"], 2)]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            payload = json.dumps(block["input"], separators=(",", ":"))
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": piece} for piece in _chunks(payload, 3)
            ]
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        if index == 0:
            events.append({"type": "ping"})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    if not turn.content:
        events.append({"type": "ping"})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": turn.final_stop_reason, "stop_sequence": None},
            "usage": usage,
        }
    )
    events.append({"type": "message_stop"})
    return events


class _Answer(Response):
    """An answer under our control, streamed or whole: a turn, or one of the body faults
    (``stream_error``, ``stall``, ``cut``, ``malformed``)."""

    def __init__(
        self,
        standin: ModelStandIn,
        turn: Turn | None,
        fault: Fault | None,
        model: str,
        *,
        stream: bool,
    ) -> None:
        # No Response.__init__: it would announce a Content-Length for an empty body.
        self.status_code = 200
        self.background = None
        self.raw_headers = [(b"request-id", _new_id("req_").encode())]
        self.standin = standin
        self.turn = turn or Turn.text("")
        self.fault = fault
        self.model = model
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.fault.kind if self.fault is not None else None
        if kind == "stall" and not self.stream:  # not even the headers
            await self._stall(receive)
            return
        if self.stream:
            await self._events(kind, receive, send)
        else:
            await self._whole(kind, send)

    async def _stall(self, receive: Receive) -> None:
        if not await self.standin._stall(receive):
            raise _StreamCut("the stand-in stopped while an answer was stalled")

    async def _whole(self, kind: str | None, send: Send) -> None:
        body = json.dumps(self.turn.message(self.model)).encode()
        if kind == "malformed":
            body = body[: len(body) // 2]
        headers = [
            *self.raw_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if kind == "cut":
            await send({"type": "http.response.body", "body": body[:20], "more_body": True})
            raise _StreamCut("answer cut on purpose")
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _events(self, kind: str | None, receive: Receive, send: Send) -> None:
        headers = [
            *self.raw_headers,
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        events = _turn_events(self.turn, self.model, _new_id("msg_"))

        async def body(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        if kind is None:
            for event in events:
                await body(_sse(event))
        else:
            await body(_sse(events[0]))  # message_start
            if kind == "stall":
                await self._stall(receive)
                return
            if kind == "cut":
                await body(_sse(events[1]))  # a content block starts...
                half = _sse(events[-2])  # ...and the connection drops inside an event
                await body(half[: len(half) // 2])
                raise _StreamCut("stream cut on purpose")
            if kind == "malformed":
                await body(_sse(events[1]))
                await body(
                    b'event: content_block_delta\ndata: {"type": "content_block_delta", "in\n\n'
                )
            else:  # stream_error
                assert self.fault is not None
                error = json.dumps(self.fault.error_body(), separators=(",", ":"))
                await body(f"event: error\ndata: {error}\n\n".encode())
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Server(uvicorn.Server):
    """uvicorn, plus a hook once it stops accepting connections: stalled answers are released
    then, so a stop never waits for them and a client's retry finds the port closed."""

    def __init__(self, config: uvicorn.Config, on_closed: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_closed = on_closed

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # what uvicorn does first; closing twice is harmless
        self.on_closed()
        await super().shutdown(sockets)


@dataclass
class _Stalls:
    """Stalled responses waiting, each with the loop it waits in, so a stop can wake them."""

    waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)
    released: bool = False


class ModelStandIn:
    """The Messages API with scripted answers; serve it with :meth:`serve` or
    :meth:`serve_in_thread` and read :attr:`requests`, :meth:`tool_results`...

    ``script`` is the default script (for prompts without a ``[script:NAME]`` marker),
    ``scripts`` the named ones. ``final`` answers a conversation whose script is used up,
    ``side_answer`` every side request; ``side`` replaces the side-request rule.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        scripts: Mapping[str, Script] | None = None,
        final: Turn | str = "Done.",
        side_answer: Turn | str = "OK",
        side: Callable[[ModelRequest], bool] = default_is_side,
    ) -> None:
        self.default_script: Script = script if script is not None else []
        self.final = Turn.text(final) if isinstance(final, str) else final
        self.side_answer = Turn.text(side_answer) if isinstance(side_answer, str) else side_answer
        self.is_side = side
        self.base_url: str | None = None  # set while serving

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._scripts: dict[str, Script] = dict(scripts or {})
        self._cursors: dict[tuple[str, str, str], int] = {}  # (script, session, prompt) -> step
        self._faults: dict[int, Fault] = {}  # message_number -> fault
        self._next_faults: list[Fault] = []  # for the next conversation requests
        self._requests: list[ModelRequest] = []
        self._message_count = 0
        self._stalls = _Stalls()
        self._log_filter = _QuietCuts()
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/", self._other, methods=methods),
                Route("/{path:path}", self._other, methods=methods),
            ]
        )

    # == set-up ============================================================================

    def add_script(self, name: str, script: Script) -> None:
        """A script chosen by ``[script:NAME]`` in the prompt."""
        with self._lock:
            self._scripts[name] = script

    def set_default(self, script: Script) -> None:
        """The script for prompts without a marker; conversations already started keep their
        position (their next request gets the new script's step at that position)."""
        with self._lock:
            self.default_script = script

    def fail(self, fault: Fault, *, request: int | None = None, times: int = 1) -> None:
        """Answer ``fault`` to the ``request``-th Messages request (1-based, side requests
        included, counting from the stand-in's start), or else to the next ``times``
        conversation requests, whichever script they follow. Faults set here are used
        before the script: the script's step is not consumed."""
        with self._lock:
            if request is not None:
                self._faults[request] = fault
            else:
                self._next_faults.extend([fault] * times)

    # == records ===========================================================================

    @property
    def requests(self) -> list[ModelRequest]:
        """Every request received, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def conversation(self) -> list[ModelRequest]:
        """The Messages requests that were part of the conversation (not side requests)."""
        return [r for r in self.requests if r.kind == "conversation"]

    def side_requests(self) -> list[ModelRequest]:
        return [r for r in self.requests if r.kind == "side"]

    def tool_results(self, name: str | None = None) -> list[ToolResult]:
        """Every distinct tool result the CLI sent back, in order (optionally of one tool)."""
        seen: dict[str, ToolResult] = {}
        for request in self.conversation():
            for result in request.tool_results:
                seen.setdefault(result.tool_use_id, result)
        return [r for r in seen.values() if name is None or r.name == name]

    def tools_offered(self, request: int = -1) -> list[str]:
        """The tool names offered in a conversation request (the last one by default)."""
        conversation = self.conversation()
        return conversation[request].tools if conversation else []

    def prompts(self) -> list[str]:
        """The distinct user prompts of the conversation requests, in order."""
        prompts: list[str] = []
        for request in self.conversation():
            if request.prompt not in prompts:
                prompts.append(request.prompt)
        return prompts

    @property
    def stalled(self) -> int:
        """How many answers are stalled right now (waiting for their client or a stop)."""
        with self._lock:
            return len(self._stalls.waiting)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Block until ``condition()`` holds, checked whenever a request arrives or a stall
        starts or ends (a test's synchronisation point, e.g. "the stalled request has
        arrived", ``lambda: model.stalled == 0``); raise ``TimeoutError`` after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise TimeoutError(f"the model stand-in waited {timeout} s in vain")

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[ModelRequest]:
        """Block until at least ``count`` requests were received; return them all."""
        self.wait_until(lambda: len(self._requests) >= count, timeout)
        return self.requests

    def release_stalls(self) -> None:
        """End every stalled stream (closing its connection); later stalls end at once."""
        with self._lock:
            self._stalls.released = True
            waiting = list(self._stalls.waiting)
        for loop, event in waiting:
            with contextlib.suppress(RuntimeError):  # that loop is already closed
                loop.call_soon_threadsafe(event.set)

    # == serving ===========================================================================

    def _server(self) -> uvicorn.Server:
        config = loopback_config(self.app)
        return _Server(config, on_closed=self.release_stalls)

    def _started(self, server: uvicorn.Server) -> str:
        port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        with self._lock:
            self._stalls.released = False
        logging.getLogger("uvicorn.error").addFilter(self._log_filter)
        return self.base_url

    def _stopped(self) -> None:
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        self.base_url = None

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve on a free loopback port in the running loop; yield the base URL."""
        async with in_loop(self._server(), "model stand-in") as server:
            try:
                yield self._started(server)
            finally:
                self._stopped()

    @contextmanager
    def serve_in_thread(self, startup_timeout: float = 10.0) -> Iterator[str]:
        """Serve from a background thread with its own event loop, for synchronous tests that
        run the CLI as a subprocess; yield the base URL, stop cleanly on exit."""
        server = self._server()
        with in_thread(server, "model stand-in", startup_timeout):
            try:
                yield self._started(server)
            finally:
                self._stopped()

    # == answering =========================================================================

    async def _read(self, request: Request) -> tuple[Any, dict[str, str]]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k: v for k, v in request.headers.items() if k not in SECRET_HEADERS}
        return body, headers

    def _record(
        self, request: Request, body: Any, headers: dict[str, str], **fields: Any
    ) -> ModelRequest:
        with self._changed:
            record = ModelRequest(
                number=len(self._requests) + 1,
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers=headers,
                body=body,
                received_at=time.monotonic(),
                **fields,
            )
            self._requests.append(record)
            self._changed.notify_all()
            return record

    async def _other(self, request: Request) -> Response:
        body, headers = await self._read(request)
        status = 200 if request.method in ("HEAD", "OPTIONS") else 404
        self._record(
            request,
            body,
            headers,
            message_number=None,
            kind="other",
            status=status,
            answer="ok" if status == 200 else "error",
        )
        if status == 200:
            return Response(status_code=200)
        return JSONResponse(
            {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}},
            status_code=404,
        )

    async def _count_tokens(self, request: Request) -> Response:
        body, headers = await self._read(request)
        count = max(1, len(json.dumps(body)) // 4) if body is not None else 1
        self._record(
            request, body, headers, message_number=None, kind="count_tokens", answer="count"
        )
        return JSONResponse({"input_tokens": count})

    def _script_for(self, probe: ModelRequest) -> tuple[str, Script | None]:
        """The script named in the user's text, else the default; None if the name is unknown."""
        for value in probe.user_texts():
            match = SCRIPT_MARKER.search(value)
            if match:
                return match.group(1), self._scripts.get(match.group(1))
        return "", self.default_script

    def _decide(self, probe: ModelRequest) -> _Decision:
        """What to answer a Messages request (called under the lock)."""
        fault = self._faults.pop(probe.message_number or 0, None)
        if self.is_side(probe):
            if fault is not None:
                return _Decision({"kind": "side", "answer": fault.kind}, fault=fault)
            return _Decision({"kind": "side", "answer": "side"}, turn=self.side_answer)
        name, script = self._script_for(probe)
        fields: dict[str, Any] = {"kind": "conversation", "script": name}
        if fault is None and self._next_faults:
            fault = self._next_faults.pop(0)
        if fault is not None:
            return _Decision({**fields, "answer": fault.kind}, fault=fault)
        if script is None:
            return _Decision(
                {**fields, "answer": "error"},
                error=f"the model stand-in has no script named {name!r}",
            )
        key = (name, probe.session_id or "", probe.prompt)
        step = self._cursors.get(key, 0)
        self._cursors[key] = step + 1
        fields["step"] = step
        answer: Step | None
        if callable(script):
            answer = script(dataclasses.replace(probe, **fields))
        else:
            answer = script[step] if step < len(script) else None
        if answer is None:
            return _Decision({**fields, "answer": "final"}, turn=self.final)
        if isinstance(answer, Fault):
            return _Decision({**fields, "answer": answer.kind}, fault=answer)
        return _Decision({**fields, "answer": "turn"}, turn=answer)

    async def _messages(self, request: Request) -> Response:
        body, headers = await self._read(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._record(
                request,
                body,
                headers,
                message_number=None,
                kind="other",
                answer="error",
                status=400,
            )
            error = _error_body("invalid_request_error", "messages: Field required")
            return JSONResponse(error, status_code=400)
        with self._lock:
            self._message_count += 1
            probe = ModelRequest(
                number=len(self._requests) + 1,
                message_number=self._message_count,
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers=headers,
                body=body,
                kind="conversation",
            )
            decision = self._decide(probe)
            status = decision.status
            if decision.fault is not None and decision.fault.kind == "stream_error":
                status = 200 if probe.stream else 529
            self._record(
                request,
                body,
                headers,
                message_number=self._message_count,
                status=status,
                **decision.fields,
            )
        model = str(body.get("model") or DEFAULT_MODEL)
        turn, fault = decision.turn, decision.fault
        if decision.error is not None:
            return JSONResponse(
                _error_body("invalid_request_error", decision.error), status_code=400
            )
        if fault is not None and fault.kind in ("overloaded", "api_error", "rate_limit"):
            extra = {"request-id": _new_id("req_")}
            if fault.retry_after is not None:
                extra["retry-after"] = f"{fault.retry_after:g}"
            return JSONResponse(fault.error_body(), status_code=fault.status, headers=extra)
        if fault is not None and fault.kind == "stream_error" and not body.get("stream"):
            return JSONResponse(fault.error_body(), status_code=529)  # what it is without SSE
        return _Answer(self, turn, fault, model, stream=bool(body.get("stream")))

    async def _stall(self, receive: Receive) -> bool:
        """Wait until the client disconnects (True) or the stand-in stops (False)."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._changed:
            if self._stalls.released:
                return False
            self._stalls.waiting.add(entry)
            self._changed.notify_all()
        released = asyncio.create_task(event.wait())

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        gone = asyncio.create_task(disconnected())
        try:
            await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
            return gone.done() and not released.done()
        finally:
            released.cancel()
            gone.cancel()
            with self._changed:
                self._stalls.waiting.discard(entry)
                self._changed.notify_all()
