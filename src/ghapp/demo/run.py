"""``ghapp demo``: the whole ingress path, offline, on the embedded default.

Starts a real server (uvicorn, SQLite in ``--dir``), sends it signed GitHub deliveries
the way GitHub would (plus a redelivery, a replay under a new id and a forgery), and shows
what was stored.
"""

from __future__ import annotations

import asyncio
import json
import socket
from importlib import resources
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlmodel import select

from ghapp import logs
from ghapp.db import Database
from ghapp.db.models import Delivery, Installation, Repository
from ghapp.server import prepare_database, uvicorn_config
from ghapp.settings import Settings, ensure_generated_secrets
from ghapp.signing import delivery_headers

PAYLOADS = resources.files("ghapp.demo") / "payloads"


async def run_demo(directory: Path, console: Console) -> int:
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    logs.configure("error")  # the tables below say what happened
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'ghapp.db'}",
        data_dir=directory / ".ghapp",
        port=_free_port(),
    )
    for note in ensure_generated_secrets(settings):
        console.print(f"[dim]ghapp demo: {note}[/]")
    await prepare_database(settings, migrate=True)
    server = uvicorn.Server(uvicorn_config(settings, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            return 1
        await asyncio.sleep(0.01)
    url = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]ghapp demo[/]: server on {url}, database {directory / 'ghapp.db'}")
    try:
        failures = await _send_all(url, settings.webhook_secrets[0], console)
        await _show_database(settings, console)
    finally:
        server.should_exit = True
        await serving
    console.print(
        "Next: [bold]ghapp serve[/] runs the server; "
        "[bold]ghapp receive EVENT FILE.json[/] sends it a signed delivery."
    )
    return 1 if failures else 0


async def _send_all(url: str, secret: str, console: Console) -> int:
    table = Table(title="Deliveries sent to POST /webhooks/github")
    for column in ("what", "event", "HTTP", "answer"):
        table.add_column(column)
    failures = 0
    previous_delivery = ""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for what, event, file, expected, tamper in _script():
            body = (PAYLOADS / file).read_bytes()
            headers = delivery_headers(event, body, secret)
            if tamper == "redeliver":
                headers["X-GitHub-Delivery"] = previous_delivery
            elif tamper == "forge":
                headers = delivery_headers(event, body, "not-the-secret")
            response = await client.post("/webhooks/github", content=body, headers=headers)
            previous_delivery = headers["X-GitHub-Delivery"]
            ok = response.status_code == expected
            failures += not ok
            answer = json.loads(response.text)
            table.add_row(
                what,
                event,
                f"[{'green' if ok else 'red'}]{response.status_code}[/]",
                answer.get("status") or answer.get("error", ""),
            )
    console.print(table)
    return failures


def _script() -> list[tuple[str, str, str, int, str | None]]:
    """(what, event, payload file, expected HTTP status, tampering)."""
    return [
        ("app installed", "installation", "installation.created.json", 202, None),
        ("issue opened", "issues", "issues.opened.json", 202, None),
        ("GitHub redelivers it", "issues", "issues.opened.json", 200, "redeliver"),
        ("comment created", "issue_comment", "issue_comment.created.json", 202, None),
        ("captured body replayed", "issue_comment", "issue_comment.created.json", 200, None),
        ("forged signature", "issues", "issues.opened.json", 401, "forge"),
    ]


async def _show_database(settings: Settings, console: Console) -> None:
    db = Database(settings.database_url)
    try:
        async with db.read_session() as session:
            deliveries = (await session.exec(select(Delivery).order_by(Delivery.id))).all()
            installations = (await session.exec(select(Installation))).all()
            repositories = (await session.exec(select(Repository))).all()
    finally:
        await db.dispose()
    table = Table(title="Stored deliveries (each exactly once)")
    for column in ("delivery id", "event", "action", "outcome"):
        table.add_column(column)
    for row in deliveries:
        table.add_row(row.delivery_id, row.event, row.action or "", row.outcome)
    console.print(table)
    for inst in installations:
        console.print(f"installation {inst.id}: {inst.account_login} ({inst.account_type})")
    for repo in repositories:
        console.print(f"repository {repo.full_name}: default branch {repo.default_branch}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
