"""Bad deliveries get a 4xx with a one-line JSON reason, and nothing is stored."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.signing import delivery_headers, signature
from tests.conftest import make_settings
from tests.support import SECRET, count_deliveries, load, send

ISSUE = load("issues/opened.payload.json")
BODY = json.dumps(ISSUE).encode()


def good_headers(**changes: str | None) -> dict[str, str]:
    headers = delivery_headers("issues", BODY, SECRET)
    for name, value in changes.items():
        key = name.replace("_", "-")
        headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
        if value is not None:
            headers[key] = value
    return headers


async def refused(client: httpx.AsyncClient, db: Database, response: httpx.Response) -> str:
    """Assert a clean refusal and return its reason."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    assert await count_deliveries(db) == 0
    return body["error"]


async def test_unsigned_delivery_is_refused(client, db) -> None:
    response = await client.post(
        "/webhooks/github", content=BODY, headers=good_headers(x_hub_signature_256=None)
    )
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in await refused(client, db, response)


async def test_wrong_signature_is_refused(client, db) -> None:
    response = await send(client, "issues", BODY, secret="an attacker's guess")
    assert response.status_code == 401
    assert "does not match" in await refused(client, db, response)


async def test_sha1_only_signature_is_refused(client, db) -> None:
    headers = good_headers(x_hub_signature_256=None)
    headers["X-Hub-Signature"] = "sha1=" + "0" * 40
    response = await client.post("/webhooks/github", content=BODY, headers=headers)
    assert response.status_code == 401
    await refused(client, db, response)


async def test_signature_of_other_body_is_refused(client, db) -> None:
    headers = good_headers(x_hub_signature_256=signature(b"{}", SECRET))
    response = await client.post("/webhooks/github", content=BODY, headers=headers)
    assert response.status_code == 401
    await refused(client, db, response)


async def test_both_rotation_secrets_are_accepted(client, db) -> None:
    assert (await send(client, "issues", BODY, secret=SECRET)).status_code == 202
    other = dict(ISSUE, marker="second")
    assert (await send(client, "issues", other, secret="previous-secret")).status_code == 202
    assert await count_deliveries(db) == 2


async def test_rotated_out_secret_is_refused(db_url, db, tmp_path) -> None:
    # The old secret was dropped from GHAPP_WEBHOOK_SECRET once the rotation finished.
    settings = make_settings(db_url, tmp_path, webhook_secret="brand-new-secret")
    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await send(client, "issues", BODY, secret=SECRET)
        assert response.status_code == 401
        await refused(client, db, response)
        assert (await send(client, "issues", BODY, secret="brand-new-secret")).status_code == 202


async def test_server_without_secret_refuses_everything(db_url, db, tmp_path) -> None:
    settings = make_settings(db_url, tmp_path, webhook_secret=None)
    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await send(client, "issues", BODY)
        assert response.status_code == 401
        assert "no webhook secret" in await refused(client, db, response)


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"x_github_event": None}, 400, "missing X-GitHub-Event"),
        ({"x_github_event": "Issues; DROP TABLE"}, 400, "malformed X-GitHub-Event"),
        ({"x_github_delivery": None}, 400, "missing X-GitHub-Delivery"),
        ({"x_github_delivery": "x" * 65}, 400, "malformed X-GitHub-Delivery"),
        ({"x_github_delivery": "a b"}, 400, "malformed X-GitHub-Delivery"),
        ({"content_type": None}, 415, "unsupported content type"),
        ({"content_type": "text/plain"}, 415, "unsupported content type"),
        ({"content_type": "application/xml"}, 415, "unsupported content type"),
        ({"x_hub_signature_256": "md5=abc"}, 401, "must start with 'sha256='"),
    ],
)
async def test_bad_headers_are_refused(client, db, change, status, reason) -> None:
    response = await client.post("/webhooks/github", content=BODY, headers=good_headers(**change))
    assert response.status_code == status
    assert reason in await refused(client, db, response)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
async def test_signed_invalid_json_is_refused(client, db, body, reason) -> None:
    response = await send(client, "issues", body)
    assert response.status_code == 400
    assert reason in await refused(client, db, response)


async def test_empty_body_is_refused(client, db) -> None:
    response = await send(client, "issues", b"")
    assert response.status_code == 400
    assert "empty body" in await refused(client, db, response)


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("installation", {"action": "created", "installation": "not an object"}),
        ("installation", {"action": "deleted", "installation": {"id": 2**70}}),
        ("installation_repositories", {"action": "added", "installation": {}}),
        ("issues", {"action": "opened", "repository": {"id": "7", "full_name": 5}}),
        ("issues", {"action": "opened", "repository": {"id": 1, "full_name": "a/b\x00"}}),
    ],
)
async def test_signed_but_malformed_payload_is_refused(client, db, event, payload) -> None:
    response = await send(client, event, payload)
    assert response.status_code == 400
    assert "not a well-formed" in await refused(client, db, response)


async def test_declared_oversized_body_is_refused_before_reading(client, db) -> None:
    """A Content-Length over 25 MB is refused without reading a byte of the body."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(30):
            pulled += 1
            yield b"x" * (1024 * 1024)

    headers = good_headers(content_length=str(30 * 1024 * 1024))
    response = await client.post("/webhooks/github", content=body(), headers=headers)
    assert response.status_code == 413
    assert "larger than 26214400 bytes" in await refused(client, db, response)
    assert pulled <= 1  # the transport may pre-fetch one chunk


async def test_streamed_oversized_body_is_refused_while_reading(db_url, db, tmp_path) -> None:
    """Without a Content-Length, reading stops as soon as the limit is passed."""
    limit = 1024 * 1024
    settings = make_settings(db_url, tmp_path, max_body_bytes=limit)
    chunk = 64 * 1024
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(200):  # 12.5 MB offered
            pulled += 1
            yield b"x" * chunk

    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = good_headers()
        response = await client.post("/webhooks/github", content=body(), headers=headers)
        assert response.status_code == 413
        await refused(client, db, response)
    assert pulled * chunk <= limit + 2 * chunk


async def test_form_encoded_delivery_is_accepted(client, db) -> None:
    """GitHub's other content type: ``payload=<json>``, signed as sent."""
    body = urllib.parse.urlencode({"payload": json.dumps(ISSUE)}).encode()
    headers = delivery_headers("issues", body, SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 202
    assert await count_deliveries(db) == 1


async def test_form_without_payload_field_is_refused(client, db) -> None:
    body = b"other=1"
    headers = delivery_headers("issues", body, SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = await client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 400
    assert "payload" in await refused(client, db, response)


async def test_only_post_is_allowed(client, db) -> None:
    response = await client.get("/webhooks/github")
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed"}


async def test_ping_is_answered_200_and_recorded(client, db) -> None:
    response = await send(client, "ping", load("ping/payload.json"))
    assert response.status_code == 200
    assert response.json()["status"] == "pong"
    assert await count_deliveries(db) == 1


async def test_unknown_event_is_recorded_and_ignored(client, db) -> None:
    response = await send(client, "some_future_event", {"action": "happened"})
    assert response.status_code == 202
    assert response.json()["runs"] == 0
    async with db.read() as conn:
        from sqlalchemy import text

        outcome = await conn.scalar(text("SELECT outcome FROM deliveries"))
    assert outcome == "ignored"


async def test_replayed_body_under_new_delivery_id_is_a_duplicate(client, db) -> None:
    first = await send(client, "issues", BODY, delivery="original")
    replay = await send(client, "issues", BODY, delivery="forged-new-id")
    assert first.status_code == 202
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert "another delivery id" in replay.json()["reason"]
    assert await count_deliveries(db) == 1
