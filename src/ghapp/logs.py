"""Log lines: readable on a terminal, one JSON object per line everywhere else.

``log.info("webhook stored", extra={"delivery_id": …})`` becomes, as JSON,
``{"ts": …, "level": "info", "logger": "ghapp.webhooks", "msg": "webhook stored",
"delivery_id": …}`` and, for a person at a terminal,
``21:40:02 INFO  webhooks  webhook stored delivery_id=…``. ``GHAPP_LOG_FORMAT`` picks
``json``, ``human`` or ``auto`` (human when stderr is a terminal, JSON otherwise: a log
collector reads a pipe). Callers never pass secrets or payload bodies in ``extra``.

Nor do the libraries: httpx logs every request's full URL at INFO, and a Slack or Discord
webhook URL *is* its secret. Its loggers are kept at WARNING, and its request lines carry
masked URLs whatever the level and the format (:func:`mask_request_urls`). uvicorn puts a
``color_message`` with ANSI codes on some records; neither format writes it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


# Ids of what is being worked on (delivery, run, session): on every line logged meanwhile,
# including lines from tasks started inside (asyncio copies the context).
_IDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "ghapp_log_ids", default=None
)


@contextlib.contextmanager
def bind(**ids: Any) -> Iterator[None]:
    token = _IDS.set({**(_IDS.get() or {}), **ids})
    try:
        yield
    finally:
        _IDS.reset(token)


Format = Literal["auto", "json", "human"]
FORMATS: tuple[Format, ...] = ("auto", "json", "human")
# Extras no line carries: uvicorn's copy of its message with ANSI colour codes in it.
_DROPPED = frozenset({"color_message"})
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Control characters (C0, DEL, C1): a terminal would obey them, so the human format shows
# them escaped; a repository name or issue title in a log line is a stranger's text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PLAIN = re.compile(r"[^\s\"'=\\\x00-\x1f\x7f-\x9f]+")  # needs no quotes after "key="
_SHORT = {"uvicorn.error": "uvicorn"}  # its server's lines, errors or not
_COLOURS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ids bound meanwhile and the record's ``extra``, in that order."""
    found = dict(_IDS.get() or {})
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
            found[key] = value
    return found


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _ANSI.sub("", record.getMessage()),
        }
        for key, value in fields(record).items():
            line[key] = _ANSI.sub("", value) if isinstance(value, str) else value
        if record.exc_info:
            line["exc"] = _ANSI.sub("", self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class HumanFormatter(logging.Formatter):
    """``21:40:02 INFO  webhooks  webhook stored delivery_id=…``: local time, the level
    (coloured when ``colour``), the logger without ``ghapp.``, the message, the fields."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = f"{record.levelname:<5}"
        if self.colour:
            level = f"\x1b[{_COLOURS.get(record.levelname, '0')}m{level}\x1b[0m"
        name = _SHORT.get(record.name, record.name.removeprefix("ghapp."))
        line = f"{when} {level} {name}  {_shown(record.getMessage())}"
        pairs = " ".join(f"{key}={_value(value)}" for key, value in fields(record).items())
        if pairs:
            line += " " + pairs
        if record.exc_info:
            trace = self.formatException(record.exc_info).splitlines()
            line += "".join("\n    " + _shown(part) for part in trace)
        return line


def _shown(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _value(value: Any) -> str:
    if not isinstance(value, str):
        return _shown(json.dumps(value, default=str))
    if _PLAIN.fullmatch(value):
        return value
    return '"' + _shown(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def formatter(fmt: Format, stream: TextIO) -> logging.Formatter:
    """The formatter ``fmt`` names; ``auto``: human on a terminal, JSON on anything else."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    terminal = _is_terminal(stream)
    if fmt == "human" or (fmt == "auto" and terminal):
        return HumanFormatter(colour=terminal and not os.environ.get("NO_COLOR"))
    return JSONFormatter()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def configure(level: str = "info", stream: TextIO | None = None, fmt: Format = "auto") -> None:
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(fmt, out))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log is one more line per webhook; ours already says what happened.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in QUIET_LIBRARIES:  # request lines with URLs, connection chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    mask_request_urls()


QUIET_LIBRARIES = ("httpx", "httpcore")


class MaskUrls(logging.Filter):
    """Replaces every URL among a record's arguments with its masked form."""

    def filter(self, record: logging.LogRecord) -> bool:
        import httpx

        from ghapp.notify.crypto import mask_url

        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                mask_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


def mask_request_urls() -> None:
    """Mask the URLs in httpx's request lines, once: a notifier's URL is a secret even
    where ghapp did not configure logging (embedded, or a test run at INFO)."""
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, MaskUrls) for f in httpx_log.filters):
        httpx_log.addFilter(MaskUrls())
