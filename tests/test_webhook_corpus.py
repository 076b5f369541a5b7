"""Every payload of the octokit example corpus, signed, is accepted and stored once."""

from __future__ import annotations

import json

from sqlalchemy import select

from ghapp.db import Database
from ghapp.db.models import Delivery
from tests.support import count_deliveries, event_of, payload_files, send


async def test_corpus_has_every_event_folder() -> None:
    files = payload_files()
    assert len(files) == 273
    assert len({event_of(path) for path in files}) == 60


async def test_every_payload_is_accepted_and_stored_once(client, db: Database) -> None:
    files = payload_files()
    deliveries: dict[str, str] = {}
    for index, path in enumerate(files):
        delivery = f"corpus-{index}"
        response = await send(client, event_of(path), path.read_bytes(), delivery=delivery)
        expected = 200 if event_of(path) == "ping" else 202
        assert response.status_code == expected, (path, response.text)
        deliveries[delivery] = event_of(path)

    # Sent again (GitHub redelivering every one of them): all duplicates, nothing new.
    for index, path in enumerate(files):
        response = await send(client, event_of(path), path.read_bytes(), delivery=f"corpus-{index}")
        assert response.status_code == 200
        assert response.json()["status"] == "duplicate"

    assert await count_deliveries(db) == len(files)
    async with db.read() as conn:
        rows = (await conn.execute(select(Delivery.delivery_id, Delivery.event))).all()
    assert dict(rows) == deliveries


async def test_stored_payload_is_the_signed_text(client, db: Database) -> None:
    path = payload_files()[0]
    await send(client, event_of(path), path.read_bytes(), delivery="exact-text")
    async with db.read() as conn:
        stored = await conn.scalar(select(Delivery.payload))
    assert stored == path.read_text()
    assert json.loads(stored) == json.loads(path.read_bytes())
