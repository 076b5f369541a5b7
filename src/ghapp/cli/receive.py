"""``ghapp receive EVENT PAYLOAD.json``: sign a payload and post it like GitHub would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from ghapp.cli.output import fail, out
from ghapp.settings import Settings, load_generated_webhook_secret
from ghapp.signing import delivery_headers


def receive_command(
    event: Annotated[str, typer.Argument(help="GitHub event name, e.g. issues or issue_comment.")],
    payload: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON payload file.")
    ],
    url: Annotated[
        str | None,
        typer.Option(help="Webhook URL [http://GHAPP_HOST:GHAPP_PORT/webhooks/github]."),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="Secret to sign with [the first GHAPP_WEBHOOK_SECRET]."),
    ] = None,
    delivery: Annotated[
        str | None, typer.Option(help="Delivery id to send [a fresh UUID].")
    ] = None,
) -> None:
    """Sign PAYLOAD with the webhook secret and post it as a fresh EVENT delivery."""
    settings = Settings()
    body = payload.read_bytes()
    try:
        json.loads(body)
    except ValueError:
        fail("receive", f"{payload} is not valid JSON")
    if secret is None:
        load_generated_webhook_secret(settings)
        if not settings.webhook_secrets:
            fail("receive", "no secret: pass --secret or set GHAPP_WEBHOOK_SECRET")
        secret = settings.webhook_secrets[0]
    target = url or f"http://{settings.host}:{settings.port}/webhooks/github"
    headers = delivery_headers(event, body, secret, delivery)
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        fail("receive", f"could not reach {target}: {exc}")
    out.print(
        f"{headers['X-GitHub-Delivery']} → {response.status_code} {response.text}",
        markup=False,
        highlight=False,
    )
    if response.status_code >= 400:
        raise typer.Exit(1)
