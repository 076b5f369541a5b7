"""``POST /webhooks/github``: verify, store once, answer fast.

The request path does no GitHub API call and no slow work: it checks the headers, reads
the body (refusing it while reading once it passes the size limit), verifies the
``X-Hub-Signature-256`` HMAC against every configured secret, then in one transaction
stores the delivery (unique by ``X-GitHub-Delivery`` and by payload digest), updates
installation/repository rows and queues the runs the event maps to (``store.py``).
Every refusal is a ``4xx`` (``503`` when busy) with a one-line JSON reason and stores
nothing.

Anyone can send to this endpoint, and a body must be held until its signature can be
checked, at its end. What an unsigned sender can take is bounded:

* **Memory**: at most ``GHAPP_WEBHOOK_CONCURRENCY`` requests (64) are read and handled at
  once, each holding at most 1 MiB, and at most ``GHAPP_WEBHOOK_LARGE_BODIES`` (2) of them
  a larger body, up to ``GHAPP_MAX_BODY_BYTES`` (25 MiB): under 64 + 2 x 25 MiB, whatever
  arrives. One more request gets ``503`` with ``Retry-After`` at once, not a place in a
  queue: waiting connections would be a queue without bound, and the slots fill up only
  under attack (a delivery is handled in milliseconds, GitHub's are rarely over 1 MiB).
  GitHub does not retry a ``503`` by itself; a worker's delivery recovery asks it to
  redeliver the failed deliveries that were never stored (``recovery.py``).
* **Time**: the whole body must arrive within ``GHAPP_BODY_TIMEOUT_SECONDS`` (10 s, when
  GitHub gives up anyway) or the request gets ``408``, its connection is closed and its
  slot is free again.
* **Work**: each configured secret's HMAC is updated chunk by chunk as the body arrives,
  so no pass over 25 MiB stalls the loop at the end, and the chunks are joined into one
  body only once the signature matches: an unsigned body is never copied.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from gidgethub import sansio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ghapp import logs
from ghapp.bodies import (
    CLIENT_GONE,
    MAX_JSON_DEPTH,
    BodyRefused,
    declared_length,
    nested_deeper_than,
    read_body,
)
from ghapp.webhooks.store import BadPayload, StorageUnavailable

log = logging.getLogger("ghapp.webhooks")

_EVENT_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
_SIGNATURE_PREFIX = "sha256="
LARGE_BODY_BYTES = 1024 * 1024  # a body past this needs one of the few large slots
# Refused before the body was read to its end: the rest of it must not be read as the next
# request, nor keep the connection open.
_CLOSE = {"Connection": "close"}


class Rejected(Exception):
    """A request we refuse: HTTP status, a one-line reason, and headers to send."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    event: str = "-"


@dataclass
class Intake:
    """Webhook requests being read or handled now, and how many of them hold a large body.

    Counters rather than semaphores, as nobody waits for a slot; one event loop, so no lock.
    """

    slots: int
    large_slots: int
    retry_after_s: int
    in_flight: int = 0
    large: int = 0

    @contextmanager
    def admit(self) -> Iterator[Slot]:
        if self.in_flight >= self.slots:
            raise self.busy(f"{self.slots} webhook requests are already being handled")
        self.in_flight += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            self.in_flight -= 1
            if slot.large:
                self.large -= 1

    def busy(self, why: str) -> Rejected:
        headers = {"Retry-After": str(self.retry_after_s), **_CLOSE}
        return Rejected(503, f"busy: {why}; retry later", headers)


@dataclass
class Slot:
    intake: Intake
    large: bool = False

    def need(self, size: int) -> None:
        """Make room for a body of ``size`` bytes (declared, or read so far)."""
        if size <= LARGE_BODY_BYTES or self.large:
            return
        intake = self.intake
        if intake.large >= intake.large_slots:
            raise intake.busy(f"{intake.large_slots} bodies over 1 MiB are already in memory")
        intake.large += 1
        self.large = True


@dataclass
class Signatures:
    """The HMAC of each configured secret, fed chunk by chunk (rotation: any may match)."""

    given: bytes
    macs: list[Any] = field(default_factory=list)

    @classmethod
    def expecting(cls, signature: str, secrets: list[str]) -> Signatures:
        # Latin-1: how the header was decoded; compare_digest refuses non-ASCII str.
        given = signature.removeprefix(_SIGNATURE_PREFIX).encode("latin-1")
        macs = [hmac.new(secret.encode(), digestmod=hashlib.sha256) for secret in secrets]
        return cls(given, macs)

    def update(self, chunk: bytes) -> None:
        for mac in self.macs:
            mac.update(chunk)

    def match(self) -> bool:
        # Every secret is compared, matched or not: no timing tells which one it was.
        found = [hmac.compare_digest(mac.hexdigest().encode(), self.given) for mac in self.macs]
        return any(found)


def intake_for(settings: Any) -> Intake:
    """The webhook's limits, from the settings (one per app: its :class:`AppState` holds it)."""
    return Intake(
        settings.webhook_concurrency,
        settings.webhook_large_bodies,
        retry_after_s=math.ceil(settings.body_timeout_seconds),
    )


async def github_webhook(request: Request) -> Response:
    state = request.app.state.ghapp
    delivery = request.headers.get("x-github-delivery", "-")[:64]
    started = time.perf_counter()
    with logs.bind(delivery_id=delivery):
        try:
            outcome = await receive(request, state)
        except Rejected as refusal:
            if refusal.status == CLIENT_GONE:
                # Not an error of anyone's we can act on, and nobody reads the answer.
                log.debug("webhook sender went away", extra={"reason": refusal.reason})
                _observe(state, started, "-", "disconnected")
                return Response(status_code=CLIENT_GONE)
            log.warning(
                "webhook refused", extra={"status": refusal.status, "reason": refusal.reason}
            )
            # Unverified requests get no event label: a sender must not mint label values.
            _observe(state, started, "-", f"rejected_{refusal.status}")
            return JSONResponse(
                {"error": refusal.reason}, status_code=refusal.status, headers=refusal.headers
            )
    _observe(state, started, outcome.event, str(outcome.body.get("status")))
    return JSONResponse(outcome.body, status_code=outcome.status)


def _observe(state: Any, started: float, event: str, outcome: str) -> None:
    state.metrics.webhook_seconds.observe(time.perf_counter() - started)
    state.metrics.deliveries.labels(event, outcome).inc()


async def receive(request: Request, state: Any) -> Outcome:
    settings = state.settings
    event_name, delivery_id, signature, content_type = check_headers(request)
    check_signature_header(signature, settings.webhook_secrets)
    with state.intake.admit() as slot:
        signatures = Signatures.expecting(signature, settings.webhook_secrets)
        chunks = await read_signed_body(request, settings, slot, signatures)
        if not signatures.match():
            raise Rejected(401, "signature does not match any configured webhook secret")
        body = b"".join(chunks)
        del chunks
        raw_json = payload_text(body, content_type)
        data = parse_payload(raw_json)  # orjson itself stops at 1024 levels, without recursing
        # Measured on the bytes when they are the JSON: no encoded copy of the text.
        if nested_deeper_than(body if content_type == "application/json" else raw_json):
            raise Rejected(400, f"body nests JSON deeper than {MAX_JSON_DEPTH} levels")
        del body  # the text is all that is kept from here on
        event = sansio.Event(data, event=event_name, delivery_id=delivery_id)
        return await store(state, event, raw_json)


def check_headers(request: Request) -> tuple[str, str, str, str]:
    headers = request.headers
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in _CONTENT_TYPES:
        raise Rejected(415, f"unsupported content type {content_type or '(none)'!r}", _CLOSE)
    event_name = headers.get("x-github-event")
    if not event_name:
        raise Rejected(400, "missing X-GitHub-Event header", _CLOSE)
    if not _EVENT_NAME.match(event_name):
        raise Rejected(400, "malformed X-GitHub-Event header", _CLOSE)
    delivery_id = headers.get("x-github-delivery")
    if not delivery_id:
        raise Rejected(400, "missing X-GitHub-Delivery header", _CLOSE)
    if not _DELIVERY_ID.match(delivery_id):
        raise Rejected(400, "malformed X-GitHub-Delivery header", _CLOSE)
    signature = headers.get("x-hub-signature-256")
    if not signature:
        raise Rejected(401, "missing X-Hub-Signature-256 header", _CLOSE)
    return event_name, delivery_id, signature, content_type


def check_signature_header(signature: str, secrets: list[str]) -> None:
    """What can be refused about the signature before reading a byte of the body."""
    if not secrets:
        raise Rejected(401, "no webhook secret is configured on this server", _CLOSE)
    if not signature.startswith(_SIGNATURE_PREFIX):
        raise Rejected(401, "X-Hub-Signature-256 must start with 'sha256='", _CLOSE)


async def read_signed_body(
    request: Request, settings: Any, slot: Slot, signatures: Signatures
) -> list[bytes]:
    """The body's chunks, within the size limit, the deadline and the slot's allowance."""
    limit = settings.max_body_bytes

    def on_chunk(chunk: bytes, total: int) -> None:
        slot.need(total)
        signatures.update(chunk)

    try:
        slot.need(declared_length(request, limit) or 0)
        chunks = await read_body(request, limit, settings.body_timeout_seconds, on_chunk)
    except BodyRefused as refusal:
        raise Rejected(refusal.status, refusal.reason, _CLOSE) from None
    if not chunks:  # (read_body keeps no empty chunk)
        raise Rejected(400, "empty body")
    return chunks


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
    # surrogates, integers within 64 bits, nesting under 1024 levels; receive() then refuses
    # more than MAX_JSON_DEPTH, as what reads the payload recurses in Python).
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
        # Not the sender's fault: say so plainly (a proxy may retry; the delivery recovery,
        # recovery.py, asks GitHub to send it again once the database is back).
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
