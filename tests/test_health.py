"""Liveness and readiness probes."""

from __future__ import annotations

import httpx

from ghapp.app import create_app
from ghapp.db import Database
from tests.conftest import make_settings


async def test_healthz_and_readyz(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


async def test_readyz_reports_an_unreachable_database(tmp_path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    settings = make_settings(url, tmp_path)
    db = Database(url)
    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    await db.dispose()
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["reason"]) == (
        "unavailable",
        "database: ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 1)",
    )


async def test_unknown_path_is_a_json_404(client) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}
