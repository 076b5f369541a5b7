"""Helpers the tests share: payload fixtures and signed deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from ghapp.db import Database
from ghapp.db.models import Delivery
from ghapp.signing import delivery_headers

SECRET = "current-secret"
PAYLOADS = Path(__file__).parent / "fixtures" / "github-payloads"


def payload_files() -> list[Path]:
    """Every example payload in the octokit corpus, one folder per event."""
    return sorted(PAYLOADS.glob("*/*.json"))


def load(relative: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / relative).read_text())


def event_of(path: Path) -> str:
    return path.parent.name


async def send(
    client: httpx.AsyncClient,
    event: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    delivery: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = delivery_headers(event, body, secret, delivery)
    sent.update(headers or {})
    return await client.post("/webhooks/github", content=body, headers=sent)


async def count_deliveries(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(Delivery)) or 0)
