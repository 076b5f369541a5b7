"""E-mail notifiers: SMTP with STARTTLS or TLS.

One message per notification to the notifier's recipient list, with a plain-text and an
HTML body carrying the same facts as the chat formats. smtplib is blocking, so it runs in a
thread; SMTP 4xx answers and network errors are retried, 5xx are not.
"""

from __future__ import annotations

import asyncio
import html
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from ghapp.notify.formats import facts, title
from ghapp.notify.send import Attempt


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    sender: str = "ghapp@localhost"
    timeout_s: float = 10.0
    # Tests talk to a loopback server with a self-signed certificate.
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpSettings:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            sender=settings.smtp_from,
            timeout_s=settings.notify_timeout_seconds,
        )


def build_message(payload: dict[str, Any], recipients: list[str], sender: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = title(payload)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="ghapp")
    message["X-Ghapp-Event"] = payload["event"]
    lines = [title(payload), ""]
    lines += [f"{name}: {value}" for name, value in facts(payload)]
    if payload.get("message"):
        lines += ["", payload["message"]]
    if payload.get("url"):
        lines += ["", f"Details: {payload['url']}"]
    message.set_content("\n".join(lines) + "\n")
    message.add_alternative(_html(payload), subtype="html")
    return message


def _html(payload: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in facts(payload)
    )
    parts = [f"<h2>{html.escape(title(payload))}</h2>", f"<table>{rows}</table>"]
    if payload.get("message"):
        parts.append(f"<p>{html.escape(payload['message'])}</p>")
    if payload.get("url"):
        url = html.escape(payload["url"], quote=True)
        parts.append(f'<p><a href="{url}">View details</a></p>')
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


async def send_email(smtp: SmtpSettings, recipients: list[str], payload: dict[str, Any]) -> Attempt:
    if not smtp.host:
        return Attempt(False, None, None, "GHAPP_SMTP_HOST is not set", 0, retryable=False)
    message = build_message(payload, recipients, smtp.sender)
    started = time.monotonic()
    try:
        await asyncio.to_thread(_send, smtp, message)
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else (str(exc.smtp_error))
        )
        return Attempt(
            False,
            exc.smtp_code,
            text[:500],
            f"SMTP {exc.smtp_code}",
            _ms(started),
            retryable=400 <= exc.smtp_code < 500,
        )
    except (smtplib.SMTPNotSupportedError, smtplib.SMTPRecipientsRefused) as exc:
        # The server cannot do what we ask (no AUTH, no such mailbox): trying again won't help.
        return Attempt(False, None, None, f"{type(exc).__name__}: {exc}"[:300], _ms(started))
    except (smtplib.SMTPException, OSError) as exc:
        return Attempt(
            False, None, None, f"{type(exc).__name__}: {exc}"[:300], _ms(started), retryable=True
        )
    return Attempt(True, 250, "accepted", None, _ms(started))


def _send(smtp: SmtpSettings, message: EmailMessage) -> None:
    context = smtp.ssl_context or ssl.create_default_context()
    assert smtp.host is not None
    if smtp.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout_s, context=context
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
