"""``ghapp receive EVENT PAYLOAD.json``: sign a payload and post it like GitHub would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ghapp.cli.output import fail, out


def receive_command(
    event: Annotated[
        str,
        typer.Argument(
            metavar="EVENT",
            help="GitHub event name, e.g. issues or issue_comment.",
            show_default=False,
        ),
    ],
    payload: Annotated[
        Path,
        typer.Argument(
            metavar="PAYLOAD",
            exists=True,
            dir_okay=False,
            help="JSON payload file.",
            show_default=False,
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Webhook URL (default: http://$GHAPP_HOST:$GHAPP_PORT/webhooks/github).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            metavar="SECRET", help="Secret to sign with (default: the first $GHAPP_WEBHOOK_SECRET)."
        ),
    ] = None,
    delivery: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Delivery id to send (default: a fresh UUID)."),
    ] = None,
) -> None:
    """Sign PAYLOAD with the webhook secret and post it as a fresh EVENT delivery."""
    import httpx

    from ghapp.settings import Settings, load_generated_webhook_secret
    from ghapp.signing import delivery_headers

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
