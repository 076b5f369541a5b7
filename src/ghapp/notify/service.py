"""Creating, changing, testing and deleting notifiers — audited, URLs encrypted at rest.

The URL (and a generic notifier's signing secret) are stored as Fernet ciphertext; every
view of a notifier — API answers, audit entries, logs — carries the masked URL only. A URL
pointing inside (loopback, private network…) is refused when saved unless allowed
(:mod:`ghapp.notify.outbound`), and refused again when sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlmodel import col, select

from ghapp.clock import Clock
from ghapp.db import Database
from ghapp.db.models import AuditEntry, Notification, Notifier, saved_id
from ghapp.notify.crypto import SecretBox, mask_address, mask_url
from ghapp.notify.formats import event_payload
from ghapp.notify.outbound import Outbound
from ghapp.notify.send import Attempt
from ghapp.notify.sender import Sender
from ghapp.notify.spec import NotifierSpec

SECRET_FIELD = "_secret"  # noqa: S105 — in config: the generic signing secret, encrypted
TEST_MESSAGE = "Test notification from ghapp: this notifier works."


class NotifierNotFound(LookupError):
    pass


class NotifierService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        public_url: str = "",
        outbound: Outbound | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.public_url = public_url.rstrip("/")
        self.outbound = outbound or Outbound()

    async def get(self, notifier_id: int) -> Notifier:
        async with self.db.read_session() as session:
            row = await session.get(Notifier, notifier_id)
        if row is None:
            raise NotifierNotFound(notifier_id)
        return row

    async def list(self) -> list[Notifier]:
        async with self.db.read_session() as session:
            return list(await session.exec(select(Notifier).order_by(col(Notifier.id))))

    async def create(
        self, data: Mapping[str, Any], actor: str, secret: str | None = None
    ) -> Notifier:
        spec = NotifierSpec.model_validate(dict(data))
        await self._check_destination(spec.url)
        now = self.clock.now()
        row = Notifier(
            **spec.model_dump(exclude={"url", "type", "recipients"}),
            type=spec.type,
            url_encrypted=self.box.encrypt(spec.target),
            created_at=now,
            updated_at=now,
        )
        if secret:
            row.config = {**row.config, SECRET_FIELD: self.box.encrypt(secret)}
        async with self.db.session() as session:
            session.add(row)
            await session.flush()
            session.add(self._audit(actor, "notifier.create", row, None, self.view(row), now))
        return row

    async def update(
        self, notifier_id: int, changes: Mapping[str, Any], actor: str, secret: str | None = None
    ) -> Notifier:
        now = self.clock.now()
        async with self.db.session() as session:
            row = await session.get(Notifier, notifier_id)
            if row is None:
                raise NotifierNotFound(notifier_id)
            before = self.view(row)
            current = {**self._spec_fields(row), **self.target_of(row)}
            if "type" in changes and changes["type"] != row.type:  # a new kind of target
                current.pop("url", None)
                current.pop("recipients", None)
            spec = NotifierSpec.model_validate({**current, **changes})
            if spec.url != current.get("url"):  # a saved URL was checked when it was saved
                await self._check_destination(spec.url)
            kept_secret = row.config.get(SECRET_FIELD)
            for name, value in spec.model_dump(exclude={"url", "recipients"}).items():
                setattr(row, name, value)
            row.url_encrypted = self.box.encrypt(spec.target)
            if secret is not None:
                kept_secret = self.box.encrypt(secret) if secret else None
            if kept_secret:
                row.config = {**row.config, SECRET_FIELD: kept_secret}
            if changes.get("enabled") is True and not before["enabled"]:
                row.failure_count = 0  # re-enabling starts the failure count afresh
            row.updated_at = now
            session.add(self._audit(actor, "notifier.update", row, before, self.view(row), now))
        return row

    async def delete(self, notifier_id: int, actor: str) -> None:
        now = self.clock.now()
        async with self.db.session() as session:
            row = await session.get(Notifier, notifier_id)
            if row is None:
                raise NotifierNotFound(notifier_id)
            session.add(self._audit(actor, "notifier.delete", row, self.view(row), None, now))
            await session.delete(row)

    async def test(self, notifier_id: int, actor: str, sender: Sender) -> Attempt:
        """Send a test message now and record the attempt; report what the receiver said."""
        row = await self.get(notifier_id)
        now = self.clock.now()
        payload = event_payload(
            "task_completed",
            now,
            message=TEST_MESSAGE,
            task={"id": "test", "name": f"Test of {row.name}", "taskType": "test"},
            url=f"{self.public_url}/" if self.public_url else None,
        )
        attempt = await sender.send(row.type, self.target_of(row), payload, self.secret_of(row))
        async with self.db.session() as session:
            session.add(
                Notification(
                    notifier_id=saved_id(row),
                    event="test",
                    payload=payload,
                    status="sent" if attempt.ok else "failed",
                    http_status=attempt.status_code,
                    attempts=1,
                    error=attempt.error,
                    next_attempt_at=now,
                    created_at=now,
                    sent_at=now if attempt.ok else None,
                )
            )
            stored = await session.get(Notifier, row.id)
            if stored is not None:
                stored.last_used_at = now
                # Counted as deliveries are (ghapp.notify.dispatch): failures in a row, back
                # to 0 on success, so a failed test no longer leaves the notifier looking
                # healthy. A test never disables the notifier, though: someone is watching.
                stored.failure_count = 0 if attempt.ok else stored.failure_count + 1
            session.add(
                self._audit(
                    actor,
                    "notifier.test",
                    row,
                    None,
                    {"ok": attempt.ok, "status_code": attempt.status_code},
                    now,
                )
            )
        return attempt

    def target_of(self, row: Notifier) -> dict[str, Any]:
        """``{"url": …}`` or ``{"recipients": […]}``, decrypted: for sending, never for showing."""
        target = self.box.decrypt(row.url_encrypted)
        if target.startswith("mailto:"):
            return {"recipients": [a for a in target.removeprefix("mailto:").split(",") if a]}
        return {"url": target}

    async def test_now(self, notifier_id: int, actor: str, settings: Any) -> Attempt:
        """:meth:`test` with a sender made from the settings (API and dashboard buttons)."""
        async with self.outbound.client() as client:
            return await self.test(notifier_id, actor, Sender.from_settings(client, settings))

    async def _check_destination(self, url: str | None) -> None:
        """Refuse a URL pointing inside, as a validation error of the url field."""
        reason = await self.outbound.refusal(url) if url is not None else None
        if reason is None:
            return
        error = InitErrorDetails(
            type=PydanticCustomError("url_refused", reason), loc=("url",), input=url
        )
        # Titled after the spec, so the API and the dashboard report it as they report any
        # other problem with the url field (422, naming the field).
        raise ValidationError.from_exception_data(NotifierSpec.__name__, [error])

    def secret_of(self, row: Notifier) -> str | None:
        token = row.config.get(SECRET_FIELD)
        return self.box.decrypt(token) if token else None

    def view(self, row: Notifier) -> dict[str, Any]:
        """The notifier as anyone may see it: URL masked, secrets left out."""
        target = self.box.decrypt(row.url_encrypted)
        recipients = self.target_of(row).get("recipients", [])
        return {
            **self._spec_fields(row),
            "url": mask_url(target),
            "recipients": [mask_address(address) for address in recipients],
            "has_secret": SECRET_FIELD in row.config,
        }

    @staticmethod
    def _spec_fields(row: Notifier) -> dict[str, Any]:
        names = [name for name in NotifierSpec.model_fields if name not in ("url", "recipients")]
        fields = {name: getattr(row, name) for name in names}
        fields["config"] = {k: v for k, v in row.config.items() if not k.startswith("_")}
        return fields

    @staticmethod
    def _audit(
        actor: str, action: str, row: Notifier, before: Any, after: Any, now: Any
    ) -> AuditEntry:
        return AuditEntry(
            actor=actor,
            action=action,
            object_type="notifier",
            object_id=str(row.id),
            before=before,
            after=after,
            created_at=now,
        )
