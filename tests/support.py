"""Helpers the tests share: payload fixtures and signed deliveries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
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


@asynccontextmanager
async def live_server(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what went wrong
            raise RuntimeError("server stopped before starting")
        await asyncio.sleep(0.005)  # polling a flag uvicorn sets; not a timing assumption
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
