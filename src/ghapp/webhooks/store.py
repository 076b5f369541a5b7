"""Storing a verified delivery, and everything it causes, exactly once.

The handlers decide what the delivery changes (installation and repository rows, runs to
queue); the delivery row and those changes are then written in one transaction, the
changes only if the delivery row is new. A second copy of a delivery — same
``X-GitHub-Delivery``, or the same signed body replayed under a new id — changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gidgethub import sansio
from sqlalchemy import select
from sqlmodel import col

from ghapp.db import Database
from ghapp.db.batch import BatchWriter, InsertThen, Statement
from ghapp.db.errors import describe, is_database_trouble
from ghapp.db.models import Delivery, DeliveryOutcome
from ghapp.db.types import utcnow
from ghapp.signals import Signals
from ghapp.triggers.index import JobIndex
from ghapp.webhooks import fields, installations
from ghapp.webhooks.context import DeliveryContext, KnownRows
from ghapp.webhooks.normalize import normalise
from ghapp.webhooks.routing import HANDLED_EVENTS, router

log = logging.getLogger("ghapp.webhooks")

INSERT_DELIVERY = (
    "INSERT INTO deliveries (delivery_id, payload_sha256, event, action, installation_id, "
    "repo_id, sender_login, payload, outcome, received_at) VALUES (:delivery_id, :digest, "
    ":event, :action, :installation_id, :repo_id, :sender_login, :payload, :outcome, "
    ":received_at) ON CONFLICT DO NOTHING RETURNING id"
)


class BadPayload(ValueError):
    """The payload is signed but not shaped as GitHub documents this event."""


class StorageUnavailable(RuntimeError):
    """The database could not take the delivery (nothing was stored)."""


@dataclass(frozen=True)
class Stored:
    delivery_id: str
    runs_queued: int
    duplicate_reason: str | None = None  # set when nothing new was stored


class DeliveryStore:
    def __init__(
        self,
        db: Database,
        jobs: JobIndex | None = None,
        signals: Signals | None = None,
        *,
        app_id: int | None = None,  # whose check runs a re-run may be asked on
    ) -> None:
        self._db = db
        self._app_id = app_id
        self._writer = BatchWriter(db)
        self._known = KnownRows()
        self._jobs = jobs
        self._signals = signals

    async def close(self) -> None:
        await self._writer.close()

    async def save(self, event: sansio.Event, raw_json: str, digest: str) -> Stored:
        received_at = utcnow()
        if self._jobs is not None:
            try:  # the trigger index reads the database: its failure is the database's
                await self._jobs.ensure_fresh()
            except Exception as exc:
                log.warning("trigger index not refreshed", extra={"error": describe(exc)})
                raise StorageUnavailable(describe(exc)) from exc
        try:
            ctx = await decide(event, received_at, self._known, self._jobs, self._app_id)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BadPayload(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a follow-up's lookup reads the database
            if not is_database_trouble(exc):
                raise
            log.warning("delivery not stored", extra={"error": describe(exc)})
            raise StorageUnavailable(describe(exc)) from exc
        row = delivery_row(event, raw_json, digest, ctx, received_at)
        try:
            result = await self._writer.write(InsertThen(row, ctx.statements))
        except Exception as exc:
            log.warning(
                "delivery not stored",
                extra={"delivery_id": event.delivery_id, "error": describe(exc)},
            )
            raise StorageUnavailable(describe(exc)) from exc
        if isinstance(result, BaseException):
            raise BadPayload(f"{type(result).__name__}: {result}") from result
        if result is None:
            try:
                reason = await self._duplicate_reason(event.delivery_id)
            except Exception as exc:  # stored before; only the reason is unknown
                reason = f"already received (reason unknown: {describe(exc)})"
            return Stored(event.delivery_id, 0, reason)
        self._known.remember(ctx.rows_written)
        if (ctx.runs_queued or ctx.config_syncs_queued) and self._signals is not None:
            self._signals.runs_queued()
        if ctx.cancels_requested and self._signals is not None:
            self._signals.run_cancel_requested()  # a new push stops its PR's older runs
        return Stored(event.delivery_id, ctx.runs_queued)

    async def _duplicate_reason(self, delivery_id: str) -> str:
        async with self._db.read() as conn:
            seen = await conn.scalar(
                select(col(Delivery.id)).where(col(Delivery.delivery_id) == delivery_id)
            )
        if seen is not None:
            return "this delivery id was already received"
        return "this payload was already received under another delivery id"


async def decide(
    event: sansio.Event,
    received_at: datetime,
    known: KnownRows | None = None,
    jobs: JobIndex | None = None,
    app_id: int | None = None,
) -> DeliveryContext:
    """Run the handlers: what this delivery changes, as statements (no I/O)."""
    installation = event.data.get("installation")
    ctx = DeliveryContext(
        received_at=received_at,
        item=normalise(event),
        installation_id=_optional_id(installation),
        known=known or KnownRows(),
        jobs=jobs,
        app_id=app_id,
    )
    if event.event in HANDLED_EVENTS:
        installations.refresh_from_event(event, ctx)
        await router.dispatch(event, ctx)
    return ctx


def delivery_row(
    event: sansio.Event, raw_json: str, digest: str, ctx: DeliveryContext, received_at: datetime
) -> Statement:
    data = event.data
    if event.event not in HANDLED_EVENTS:
        outcome = DeliveryOutcome.ignored
    elif ctx.runs_queued:
        outcome = DeliveryOutcome.queued
    else:
        outcome = DeliveryOutcome.stored
    return Statement(
        INSERT_DELIVERY,
        {
            "delivery_id": event.delivery_id,
            "digest": digest,
            "event": event.event,
            "action": _optional_text(data.get("action"), 64),
            "installation_id": _optional_id(data.get("installation")),
            "repo_id": _optional_id(data.get("repository")),
            "sender_login": _optional_text((_dict(data.get("sender"))).get("login"), 255),
            "payload": raw_json,
            "outcome": outcome.value,
            "received_at": received_at,
        },
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _optional_id(value: Any) -> int | None:
    """The ``id`` of an object when it is a valid one (columns that only describe)."""
    try:
        return fields.int_id(_dict(value))
    except ValueError:
        return None


def _optional_text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and "\x00" not in value else None
