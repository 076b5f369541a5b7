"""Strict reads from payloads: a value of the wrong type is a shape error, not a surprise.

Deliveries are verified before we read them, so a wrong type means a payload GitHub
would not send; the ingress turns these ``ValueError``s into a ``400`` and stores nothing.
"""

from __future__ import annotations

from typing import Any

INT64_MAX = 2**63 - 1


def obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object")
    return value


def int_id(data: dict[str, Any], key: str = "id") -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= INT64_MAX:
        raise ValueError(f"{key!r} must be a positive 64-bit integer")
    return value


def text(data: dict[str, Any], key: str, *, limit: int = 255, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None and default is not None:
        value = default
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise ValueError(f"{key!r} must be a string of at most {limit} characters")
    return value


def optional_text(data: dict[str, Any], key: str, *, limit: int = 65_536) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return text(data, key, limit=limit)
