"""Helpers the tests share: payload fixtures and signed deliveries."""

from __future__ import annotations

import asyncio
import json
import re
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


async def add_repository(
    db: Database,
    repo_id: int = 186853002,
    full_name: str = "Codertocat/Hello-World",
    installation_id: int = 957387,
    account: str = "Codertocat",
) -> None:
    """An installation and one of its repositories, as the installation events leave them."""
    from ghapp.db.core import upsert_row
    from ghapp.db.models import Installation, Repository
    from ghapp.db.types import utcnow

    async with db.write() as conn:
        await upsert_row(
            conn,
            Installation.__table__,
            {
                "id": installation_id,
                "account_login": account,
                "permissions": {},
                "events": [],
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        )
        await upsert_row(
            conn,
            Repository.__table__,
            {
                "id": repo_id,
                "full_name": full_name,
                "installation_id": installation_id,
                "default_branch": "main",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        )


async def runs_of(db: Database, job_id: int | None = None) -> list[Any]:
    from ghapp.db.models import Run

    query = select(Run).order_by(Run.id)
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


# -- the dashboard ----------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, token: str) -> str:
    """Sign in with ``token``; the session's CSRF token."""
    form = await http.get("/login")
    assert form.status_code == 200
    answer = await http.post(
        "/login", data={"csrf_token": csrf_of(form.text), "token": token, "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    page = await http.get("/")
    assert page.status_code == 200
    return csrf_of(page.text)
