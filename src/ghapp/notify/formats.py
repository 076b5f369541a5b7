"""The message of an event, and its shape for each notifier type.

:func:`event_payload` builds the generic ``WebhookPayload`` (event, timestamp, task, execution,
metrics, message); the formatters turn it into Slack Block Kit, a Discord embed, or the plain
JSON that n8n and generic receivers get.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

TITLES = {
    "task_started": ("🚀", "Task started"),
    "task_completed": ("✅", "Task completed"),
    "task_failed": ("❌", "Task failed"),
    "threshold_triggered": ("⚠️", "Threshold crossed"),
    "health_alert": ("🩺", "Health alert"),
}
DISCORD_COLOURS = {  # Discord's own palette: green, red, yellow, blurple
    "task_completed": 5763719,
    "task_failed": 15548997,
    "threshold_triggered": 16705372,
    "health_alert": 16705372,
    "task_started": 5793266,
}


def event_payload(
    event: str,
    at: datetime,
    *,
    task: dict[str, Any] | None = None,
    execution: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    message: str = "",
    url: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"event": event, "timestamp": _iso(at)}
    if task is not None:
        payload["task"] = task
    if execution is not None:
        payload["execution"] = execution
    if metrics is not None:
        payload["metrics"] = metrics
    payload["message"] = message
    if url:
        payload["url"] = url
    return payload


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def title(payload: dict[str, Any]) -> str:
    emoji, text = TITLES.get(payload["event"], ("ℹ️", payload["event"]))  # noqa: RUF001
    task = payload.get("task", {}).get("name")
    return f"{emoji} {text}: {task}" if task else f"{emoji} {text}"


def facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The facts every format shows: task, duration, items, cost."""
    out = []
    if task := payload.get("task"):
        out.append(("Task", str(task.get("name"))))
    execution = payload.get("execution") or {}
    if execution.get("durationMs") is not None:
        out.append(("Duration", f"{execution['durationMs'] / 1000:.1f} seconds"))
    metrics = payload.get("metrics") or {}
    if metrics.get("itemsProcessed") is not None:
        out.append(("Items", f"{metrics['itemsProcessed']} of {metrics.get('itemsFound', 0)}"))
    if metrics.get("costUsd") is not None:
        out.append(("Cost", f"${metrics['costUsd']:.2f}"))
    if execution.get("status"):
        out.append(("Status", str(execution["status"])))
    return out


def slack(payload: dict[str, Any]) -> dict[str, Any]:
    context = payload.get("message") or ""
    if payload.get("url"):
        context = (
            f"{context} | <{payload['url']}|View details>"
            if context
            else (f"<{payload['url']}|View details>")
        )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(payload)[:150]}},
    ]
    fields = [{"type": "mrkdwn", "text": f"*{name}:*\n{value}"} for name, value in facts(payload)]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context[:3000]}]})
    return {"text": title(payload), "blocks": blocks}


def discord(payload: dict[str, Any]) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": title(payload)[:256],
        "color": DISCORD_COLOURS.get(payload["event"], 5793266),
        "fields": [{"name": n, "value": v[:1024], "inline": True} for n, v in facts(payload)],
        "timestamp": payload["timestamp"],
    }
    if payload.get("message"):
        embed["footer"] = {"text": payload["message"][:2048]}
    if payload.get("url"):
        embed["url"] = payload["url"]
    return {"embeds": [embed]}


def plain(payload: dict[str, Any]) -> dict[str, Any]:
    """Generic receivers get the event JSON itself."""
    return payload


def n8n(payload: dict[str, Any]) -> dict[str, Any]:
    """The event JSON; the task also under the name n8n flows read, ``type``."""
    if "task" not in payload:
        return payload
    return {**payload, "task": {**payload["task"], "type": payload["task"].get("taskType")}}


FORMATTERS = {"slack": slack, "discord": discord, "n8n": n8n, "generic": plain}


def format_for(notifier_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return FORMATTERS[notifier_type](payload)
