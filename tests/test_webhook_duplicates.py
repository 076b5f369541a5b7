"""The same delivery arriving many times at once is stored once, over real HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx

from ghapp.app import create_app
from tests.support import count_deliveries, live_server, load, send

ISSUE = json.dumps(load("issues/opened.payload.json")).encode()


async def test_ten_concurrent_copies_of_one_delivery_store_one(settings, db) -> None:
    async with live_server(create_app(settings, db=db)) as url:
        # Ten separate connections, so the server really handles them concurrently.
        clients = [httpx.AsyncClient(base_url=url) for _ in range(10)]
        try:
            responses = await asyncio.gather(
                *(send(c, "issues", ISSUE, delivery="same-delivery") for c in clients)
            )
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [202]
    duplicates = [r.json() for r in responses if r.status_code == 200]
    assert all(body["status"] == "duplicate" for body in duplicates)
    assert await count_deliveries(db) == 1


async def test_concurrent_distinct_deliveries_are_all_stored(settings, db) -> None:
    async with live_server(create_app(settings, db=db)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            bodies = [dict(load("issues/opened.payload.json"), n=i) for i in range(40)]
            responses = await asyncio.gather(
                *(send(client, "issues", body, delivery=f"d-{i}") for i, body in enumerate(bodies))
            )
    assert [r.status_code for r in responses] == [202] * 40
    assert await count_deliveries(db) == 40
