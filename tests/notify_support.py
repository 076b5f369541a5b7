"""Real receivers for notification tests: a scripted HTTP endpoint and an SMTP server."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ghapp.standins.serving import in_loop, loopback_config
from tests import secrets_in_logs
from tests.support import live_server


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted reply: a status, ``(status, headers)``, or
    ``"hang"`` (never answers until the test ends). Records every request it got."""

    script: list[Any] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        self.got.append(Received(dict(request.headers), await request.body()))
        self.arrived.set()
        reply = self.script.pop(0) if self.script else 200
        if reply == "hang":
            await self.release.wait()
            reply = 200
        status, headers = reply if isinstance(reply, tuple) else (reply, {})
        return JSONResponse({"status": status}, status_code=status, headers=headers)


@asynccontextmanager
async def receiver(*script: Any) -> AsyncIterator[tuple[str, Receiver]]:
    """Serve a :class:`Receiver` on loopback; yield its URL."""
    state = Receiver(list(script))
    app = Starlette(routes=[Route("/hook", state.endpoint, methods=["POST"])])
    async with live_server(app) as base:
        secrets_in_logs.register(f"{base}/hook")  # a notifier URL, as secret as Slack's
        try:
            yield f"{base}/hook", state
        finally:
            state.release.set()


@asynccontextmanager
async def https_receiver(directory: Path, *script: Any) -> AsyncIterator[tuple[int, Receiver]]:
    """A :class:`Receiver` over TLS on loopback with ``directory``'s cert.pem and key.pem
    (see :func:`self_signed`); yield its port."""
    state = Receiver(list(script))
    config = loopback_config(Starlette(routes=[Route("/hook", state.endpoint, methods=["POST"])]))
    config.ssl_certfile = str(directory / "cert.pem")
    config.ssl_keyfile = str(directory / "key.pem")
    async with in_loop(uvicorn.Server(config), "HTTPS receiver") as server:
        try:
            yield server.servers[0].sockets[0].getsockname()[1], state
        finally:
            state.release.set()


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP -----------------------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.arrived = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        self.loop.call_soon_threadsafe(self.arrived.set)
        return "250 OK"


def self_signed(directory: Path, host: str | None = None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1 (or the name ``host``), and a
    client trusting it; the files are ``cert.pem`` and ``key.pem`` in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host or "127.0.0.1")])
    subject = x509.DNSName(host) if host else x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([subject]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def authenticator(user: str, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    return check


@asynccontextmanager
async def smtp_server(
    mode: str, tls: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None
) -> AsyncIterator[tuple[int, Mailbox]]:
    """aiosmtpd on loopback: ``starttls`` (required), ``tls`` (implicit) or ``plain``."""
    mailbox = Mailbox()
    options: dict[str, Any] = {"hostname": "127.0.0.1", "port": closed_port()}
    if mode == "starttls":
        options.update(tls_context=tls, require_starttls=True)
    elif mode == "tls":
        options.update(ssl_context=tls)
    if auth:
        options.update(authenticator=authenticator(*auth), auth_require_tls=mode == "starttls")
    controller = Controller(mailbox, **options)
    await asyncio.to_thread(controller.start)
    try:
        yield options["port"], mailbox
    finally:
        await asyncio.to_thread(controller.stop)
