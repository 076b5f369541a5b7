"""Structured logs: one JSON object per line, with whatever ids the caller attached.

``log.info("webhook stored", extra={"delivery_id": …})`` becomes
``{"ts": …, "level": "info", "logger": "ghapp.webhooks", "msg": "webhook stored",
"delivery_id": …}``. Callers never pass secrets or payload bodies in ``extra``.

Nor do the libraries: httpx logs every request's full URL at INFO, and a Slack or Discord
webhook URL *is* its secret. Its loggers are kept at WARNING, and its request lines carry
masked URLs whatever the level (:func:`mask_request_urls`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

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


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **(_IDS.get() or {}),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter())
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
