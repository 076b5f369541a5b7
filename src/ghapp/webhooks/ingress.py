"""``POST /webhooks/github``: verify, store once, answer fast.

The request path does no GitHub API call and no slow work: it checks the headers, reads
the body (refusing it while reading once it passes the size limit), verifies the
``X-Hub-Signature-256`` HMAC against every configured secret, then in one transaction
stores the delivery (unique by ``X-GitHub-Delivery`` and by payload digest), updates
installation/repository rows and queues the runs the event maps to (``store.py``).
Every refusal is a ``4xx`` with a one-line JSON reason and stores nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson
from gidgethub import ValidationFailure, sansio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from ghapp import logs
from ghapp.webhooks.store import BadPayload, StorageUnavailable

log = logging.getLogger("ghapp.webhooks")

_EVENT_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")


class Rejected(Exception):
    """A request we refuse: HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    event: str = "-"


async def github_webhook(request: Request) -> JSONResponse:
    state = request.app.state.ghapp
    delivery = request.headers.get("x-github-delivery", "-")[:64]
    started = time.perf_counter()
    with logs.bind(delivery_id=delivery):
        try:
            outcome = await receive(request, state)
        except Rejected as refusal:
            log.warning(
                "webhook refused", extra={"status": refusal.status, "reason": refusal.reason}
            )
            # Unverified requests get no event label: a sender must not mint label values.
            _observe(state, started, "-", f"rejected_{refusal.status}")
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
    _observe(state, started, outcome.event, str(outcome.body.get("status")))
    return JSONResponse(outcome.body, status_code=outcome.status)


def _observe(state: Any, started: float, event: str, outcome: str) -> None:
    state.metrics.webhook_seconds.observe(time.perf_counter() - started)
    state.metrics.deliveries.labels(event, outcome).inc()


async def receive(request: Request, state: Any) -> Outcome:
    event_name, delivery_id, signature, content_type = check_headers(request)
    body = await read_body(request, state.settings.max_body_bytes)
    verify_signature(body, signature, state.settings.webhook_secrets)
    raw_json = payload_text(body, content_type)
    data = parse_payload(raw_json)
    event = sansio.Event(data, event=event_name, delivery_id=delivery_id)
    return await store(state, event, raw_json)


def check_headers(request: Request) -> tuple[str, str, str, str]:
    headers = request.headers
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in _CONTENT_TYPES:
        raise Rejected(415, f"unsupported content type {content_type or '(none)'!r}")
    event_name = headers.get("x-github-event")
    if not event_name:
        raise Rejected(400, "missing X-GitHub-Event header")
    if not _EVENT_NAME.match(event_name):
        raise Rejected(400, "malformed X-GitHub-Event header")
    delivery_id = headers.get("x-github-delivery")
    if not delivery_id:
        raise Rejected(400, "missing X-GitHub-Delivery header")
    if not _DELIVERY_ID.match(delivery_id):
        raise Rejected(400, "malformed X-GitHub-Delivery header")
    signature = headers.get("x-hub-signature-256")
    if not signature:
        raise Rejected(401, "missing X-Hub-Signature-256 header")
    return event_name, delivery_id, signature, content_type


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejected(400, "malformed Content-Length header")
        if int(declared) > limit:
            raise Rejected(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Rejected(400, "client disconnected before sending the whole body") from None
    if size == 0:
        raise Rejected(400, "empty body")
    return b"".join(chunks)


def verify_signature(body: bytes, signature: str, secrets: list[str]) -> None:
    """Accept the body if any configured secret produced ``signature`` (rotation)."""
    if not secrets:
        raise Rejected(401, "no webhook secret is configured on this server")
    if not signature.startswith("sha256="):
        raise Rejected(401, "X-Hub-Signature-256 must start with 'sha256='")
    for secret in secrets:
        try:
            sansio.validate_event(body, signature=signature, secret=secret)
        except ValidationFailure:
            continue
        return
    raise Rejected(401, "signature does not match any configured webhook secret")


def payload_text(body: bytes, content_type: str) -> str:
    """The JSON text of the payload (GitHub can also send it form-encoded)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "body is not valid UTF-8") from None
    if content_type == "application/json":
        return text
    fields = urllib.parse.parse_qs(text)
    if len(fields.get("payload", [])) != 1:
        raise Rejected(400, "form body must have exactly one 'payload' field")
    return fields["payload"][0]


def parse_payload(text: str) -> dict[str, Any]:
    # orjson: twice as fast as json on GitHub's payloads, and strict (no NaN, no lone
    # surrogates, integers within 64 bits, nesting under 1024 levels).
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Rejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Rejected(400, "payload must be a JSON object")
    return data


async def store(state: Any, event: sansio.Event, raw_json: str) -> Outcome:
    """Record the delivery and everything it causes in one transaction."""
    digest = hashlib.sha256(raw_json.encode()).hexdigest()
    try:
        stored = await state.store.save(event, raw_json, digest)
    except StorageUnavailable:
        # Not the sender's fault: say so plainly (a proxy may retry; GitHub's
        # "Redeliver" button can send it again once the database is back).
        raise Rejected(503, "the database is unavailable; delivery not stored") from None
    except BadPayload as exc:
        # Signed, but not shaped as GitHub documents this event: refuse it whole (nothing
        # was written) rather than act on half of it.
        log.warning(
            "webhook payload not understood",
            extra={"delivery_id": event.delivery_id, "error": str(exc)[:300]},
        )
        raise Rejected(400, f"payload is not a well-formed {event.event!r} event") from None
    if stored.duplicate_reason:
        log.info(
            "webhook duplicate",
            extra={"delivery_id": event.delivery_id, "reason": stored.duplicate_reason},
        )
        body = {"status": "duplicate", "delivery": event.delivery_id}
        return Outcome(200, {**body, "reason": stored.duplicate_reason}, event.event)
    log.info(
        "webhook stored",
        extra={
            "delivery_id": event.delivery_id,
            "event": event.event,
            "action": event.data.get("action"),
            "runs": stored.runs_queued,
        },
    )
    if event.event == "ping":
        return Outcome(200, {"status": "pong", "delivery": event.delivery_id}, event.event)
    body = {"status": "accepted", "delivery": event.delivery_id, "runs": stored.runs_queued}
    return Outcome(202, body, event.event)
