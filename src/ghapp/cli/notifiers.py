"""``ghapp schedule notifiers …``: where a job's news goes (the API calls them "webhooks";
``ghapp schedule webhooks …`` still works, hidden, for scripts written for that name)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from ghapp.cli.asking import ask, confirm, missing_options
from ghapp.cli.connection import api, api_command, command_name
from ghapp.cli.groups import Json, Yes, notifiers_app
from ghapp.cli.output import dump_json, fail, one_line
from ghapp.cli.tables import Col, say, show_table, when

WEBHOOKS = "/api/scheduler/webhooks"
SERVER_FAILED = 1
EVENT_TYPES = (
    "task_started",
    "task_completed",
    "task_failed",
    "threshold_triggered",
    "health_alert",
)
ASK_NAME = "Name"
ASK_TYPE = "Notifier type"
ASK_URL = "Notifier URL (where to post)"
ASK_RECIPIENTS = "E-mail addresses (comma-separated)"
ASK_EVENTS = "Events, comma-separated (empty: the server's default)"
UNKNOWN_EVENT = "unknown event {event!r} for --events (known: {known})"
NO_NOTIFIERS = "no notifiers (`ghapp schedule notifiers add` makes one)"

NotifierId = Annotated[int, typer.Argument(metavar="ID", help="Notifier id.")]


class NotifierType(StrEnum):
    slack = "slack"
    discord = "discord"
    n8n = "n8n"
    generic = "generic"
    email = "email"


@api_command(notifiers_app, "list")
def list_notifiers(ctx: typer.Context, json_: Json = False) -> None:
    """List notifiers (URLs are masked by the server)."""
    with api(ctx) as client:
        page = client.get(WEBHOOKS)
    if json_:
        dump_json(page)
        return
    show_table(
        "Notifiers",
        (
            Col("ID", key=True),
            Col("Name", min_width=10),
            Col("Type", key=True),
            Col("URL", min_width=12),
            Col("Events", min_width=12),
            Col("Enabled", key=True),
            Col("Failures", key=True, wide=True),
            Col("Last used", key=True, wide=True),
        ),
        (
            (
                w["id"],
                w["name"],
                w.get("webhookType"),
                w.get("webhookUrl"),
                ", ".join(w.get("eventTypes") or []),
                "yes" if w.get("enabled") else "no",
                w.get("failureCount", 0),
                when(w.get("lastUsedAt")),
            )
            for w in page["webhooks"]
        ),
        NO_NOTIFIERS,
    )


@api_command(notifiers_app, "add", url_option=False)
def add_notifier(
    ctx: typer.Context,
    kind: Annotated[NotifierType | None, typer.Option("--type", help="What it posts to.")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", metavar="URL", help="Where to post (the server: --server on this command)."
        ),
    ] = None,
    recipients: Annotated[
        str | None,
        typer.Option("--to", metavar="ADDRESSES", help="email: comma-separated addresses."),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option("--secret", metavar="KEY", help="generic: HMAC key for the signature."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="TEXT")] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="EVENTS",
            help=f"Comma-separated, of {', '.join(EVENT_TYPES)} (default: the server's).",
        ),
    ] = None,
) -> None:
    """Add a notifier. On a terminal, what is missing is asked for; elsewhere it is named."""
    kind_value = kind.value if kind else None
    missing = [o for o, v in (("--type", kind), ("--name", name)) if v is None]
    if kind_value == "email" and not recipients:
        missing.append("--to")
    elif kind_value is not None and kind_value != "email" and not url:
        missing.append("--url")
    missing_options(ctx, missing)
    event_list(ctx, events or "")  # a wrong event is named before anything is asked
    if kind_value is None:
        kind_value = ask(ctx, ASK_TYPE, "--type", type=NotifierType, default="slack").value
    target: dict[str, Any]
    if kind_value == NotifierType.email:
        addresses = recipients or ask(ctx, ASK_RECIPIENTS, "--to")
        target = {"recipients": [a.strip() for a in addresses.split(",") if a.strip()]}
    else:
        target = {"webhookUrl": url or ask(ctx, ASK_URL, "--url"), "secret": secret}
    name = name or ask(ctx, ASK_NAME, "--name")
    if events is None and missing:  # asking anyway (on a terminal): the events too
        events = ask(ctx, ASK_EVENTS, "--events", default="", show_default=False)
    chosen = event_list(ctx, events or "")
    body = {"name": name, "webhookType": kind_value, **target, "eventTypes": chosen}
    with api(ctx) as client:
        hook = client.post(WEBHOOKS, {k: v for k, v in body.items() if v is not None})
    say(
        f"added notifier {hook['id']} {hook['name']!r} ({hook.get('webhookType')}, "
        f"{hook.get('webhookUrl')}): {', '.join(hook.get('eventTypes') or [])}"
    )


def event_list(ctx: typer.Context, text: str) -> list[str] | None:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    for event in chosen:
        if event not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            fail(command_name(ctx), UNKNOWN_EVENT.format(event=event, known=known), code=2)
    return chosen or None


@api_command(notifiers_app, "test")
def test_notifier(ctx: typer.Context, notifier_id: NotifierId) -> None:
    """Send a test message and show the answer (exit code 1 when it failed)."""
    with api(ctx) as client:
        result = client.post(f"{WEBHOOKS}/{notifier_id}/test")
    took = f"{result.get('durationMs', 0)} ms"
    answer = one_line(result.get("response") or "")[:200]
    if result.get("ok"):
        say(f"delivered: {result.get('statusCode')} in {took} {answer}".strip())
        return
    code = result.get("statusCode")
    reason = one_line(result.get("error") or (f"answered {code}" if code else "no answer"))
    fail(command_name(ctx), f"not delivered ({took}): {reason} {answer}".strip(), SERVER_FAILED)


@api_command(notifiers_app, "delete")
def delete_notifier(ctx: typer.Context, notifier_id: NotifierId, yes: Yes = False) -> None:
    """Delete a notifier (jobs that used it no longer notify it)."""
    with api(ctx) as client:
        hook = client.get(f"{WEBHOOKS}/{notifier_id}")
        if not yes:
            confirm(ctx, f"Delete notifier {notifier_id} {hook['name']!r}?")
        client.delete(f"{WEBHOOKS}/{notifier_id}")
    say(f"notifier {notifier_id} deleted")


@api_command(notifiers_app, "enable")
def enable_notifier(ctx: typer.Context, notifier_id: NotifierId) -> None:
    """Send notifications to this notifier again."""
    with api(ctx) as client:
        hook = client.patch(f"{WEBHOOKS}/{notifier_id}", {"enabled": True})
    say(f"notifier {hook['id']} {hook['name']!r} enabled")


@api_command(notifiers_app, "disable")
def disable_notifier(ctx: typer.Context, notifier_id: NotifierId) -> None:
    """Stop sending notifications to this notifier."""
    with api(ctx) as client:
        hook = client.patch(f"{WEBHOOKS}/{notifier_id}", {"enabled": False})
    say(f"notifier {hook['id']} {hook['name']!r} disabled")
