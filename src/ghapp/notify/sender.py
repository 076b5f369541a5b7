"""One way to send to any notifier type: HTTP for chat and webhook types, SMTP for e-mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ghapp.notify.email import SmtpSettings, send_email
from ghapp.notify.send import TIMEOUT_S, Attempt, deliver


@dataclass
class Sender:
    client: httpx.AsyncClient
    smtp: SmtpSettings
    timeout_s: float = TIMEOUT_S

    @classmethod
    def from_settings(cls, client: httpx.AsyncClient, settings: Any) -> Sender:
        return cls(client, SmtpSettings.from_settings(settings), settings.notify_timeout_seconds)

    async def send(
        self,
        notifier_type: str,
        target: dict[str, Any],
        payload: dict[str, Any],
        secret: str | None = None,
    ) -> Attempt:
        if notifier_type == "email":
            return await send_email(self.smtp, target["recipients"], payload)
        return await deliver(
            self.client, notifier_type, target["url"], payload, secret, timeout_s=self.timeout_s
        )
