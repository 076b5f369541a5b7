"""Structured logs: one JSON object per line, with whatever ids the caller attached.

``log.info("webhook stored", extra={"delivery_id": …})`` becomes
``{"ts": …, "level": "info", "logger": "ghapp.webhooks", "msg": "webhook stored",
"delivery_id": …}``. Callers never pass secrets or payload bodies in ``extra``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

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


def configure(level: str = "info", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log is one more line per webhook; ours already says what happened.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
