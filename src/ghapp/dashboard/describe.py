"""Jobs, times and runs in words, for the pages."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from ghapp.scheduler.timing import (
    InvalidSchedule,
    Schedule,
    cron_schedule,
    describe_cron,
    interval_schedule,
)

OPERATORS = {"lt": "<", "gt": ">", "eq": "=", "lte": "≤", "gte": "≥"}
FAILED = frozenset({"failed", "timed_out"})
UNFINISHED = frozenset({"queued", "running"})


@lru_cache(maxsize=4096)
def cron_words(expression: str) -> str:
    """:func:`describe_cron`, remembered: cron-descriptor takes most of a millisecond and an
    overview of a thousand jobs asks for the same few expressions again and again."""
    try:
        return describe_cron(expression)
    except InvalidSchedule:
        return expression


def describe_trigger(job: Any) -> str:
    """A job's triggers in words: "At 09:00, Monday through Friday · on issues.opened"."""
    parts: list[str] = []
    if job.cron_expression:
        words = cron_words(job.cron_expression)
        parts.append(words if job.timezone in ("UTC", "", None) else f"{words} ({job.timezone})")
    elif job.interval_minutes:
        parts.append(every(job.interval_minutes))
    elif job.threshold:
        parts.append(describe_threshold(job.threshold))
    events = [trigger.get("event", "?") for trigger in job.event_triggers or []]
    if events:
        parts.append("on " + ", ".join(events))
    commands = [str(command) for command in job.command_triggers or []]
    if commands:
        parts.append(", ".join(commands))
    if job.mention_trigger:
        parts.append("on @mention")
    if job.assignment_trigger:
        parts.append("when assigned")
    if job.after_job_id:
        success = " succeeds" if job.after_only_on_success else " ends"
        parts.append(f"after job {job.after_job_id}{success}")
    return " · ".join(parts) if parts else "manual"


def describe_threshold(threshold: dict[str, Any]) -> str:
    operator = OPERATORS.get(threshold.get("operator", ""), threshold.get("operator", "?"))
    value = threshold.get("value")
    shown = f"{value:g}" if isinstance(value, int | float) else value
    text = f"when {threshold.get('metric', '?')} {operator} {shown}"
    if threshold.get("check_interval_minutes"):
        text += f", checked {every(threshold['check_interval_minutes'])}"
    elif threshold.get("check_cron"):
        text += f", checked {lower_first(cron_words(threshold['check_cron']))}"
    return text


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def every(minutes: int) -> str:
    if minutes == 1:
        return "every minute"
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "every day" if days == 1 else f"every {days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "every hour" if hours == 1 else f"every {hours} hours"
    return f"every {minutes} minutes"


def describe_target(job: Any) -> str:
    """What the job runs, on what."""
    if job.runner == "shell":
        work = f"shell: {job.shell_command or ''}".strip()
    elif job.command_id:
        work = job.command_id
    else:  # a job without a command has a custom prompt (JobSpec sees to it)
        work = "custom prompt" if job.runner == "claude" else f"custom prompt ({job.runner})"
    target = {
        "issues": "issues",
        "prs": "pull requests",
        "codebase": "the codebase",
        "custom": "custom",
    }.get(job.target_type, job.target_type)
    text = f"{work} on {target}" if job.target_type != "custom" else work
    if job.filter_query:
        text += f" matching {job.filter_query}"
    return text


def relative(moment: datetime | None, now: datetime) -> str:
    """ "in 5 minutes", "3 hours ago", "just now"."""
    if moment is None:
        return "—"
    seconds = (moment - now).total_seconds()
    future = seconds > 0
    span = abs(seconds)
    if span < 45:
        return "in a few seconds" if future and span >= 5 else "just now"
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if span >= size * 0.95 or unit == "minute":
            count = max(1, round(span / size))
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return "—"  # not reached


def absolute(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else ""


def duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def span(seconds: int) -> str:
    """A setting's length of time in words: "15 minutes", "1 hour", "1 h 30 min"."""
    if seconds % 3600 == 0 and seconds:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0 and 0 < seconds < 7200:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return duration(seconds * 1000)


def money(value: float | None) -> str:
    return f"${(value or 0):.2f}" if (value or 0) >= 0.01 or not value else f"${value:.4f}"


def status_class(status: str | None) -> str:
    """The CSS class of a status badge."""
    if status in ("completed", "active", "sent", "enabled"):
        return "ok"
    if status in FAILED or status in ("disabled",):
        return "bad"
    if status in UNFINISHED:
        return "busy"
    return "muted"


def event_line(event: Any) -> str:
    """One entry of a session's event log in a line."""
    if not isinstance(event, dict):
        return str(event)[:500]
    kind = event.get("type") or event.get("kind") or event.get("event") or "event"
    at = event.get("at") or event.get("time") or event.get("timestamp") or ""
    text = next(
        (
            event[key]
            for key in ("text", "message", "summary", "tool", "name", "subtype")
            if isinstance(event.get(key), str) and event[key]
        ),
        None,
    )
    if text is None:
        rest = {
            key: value
            for key, value in event.items()
            if key not in ("type", "kind", "event", "at", "time", "timestamp")
        }
        text = json.dumps(rest, default=str, ensure_ascii=False) if rest else ""
    line = f"{at} {kind}".strip() + (f": {text}" if text else "")
    return line if len(line) <= 500 else line[:499] + "…"


def moment(value: datetime | None, now: datetime) -> dict[str, str] | None:
    """What a ``<time>`` element shows: ISO value, absolute title, relative text."""
    if value is None:
        return None
    return {"iso": value.isoformat(), "title": absolute(value), "text": relative(value, now)}


def code_spans(text: str) -> Markup:
    """Escaped text with its `backticked` parts as <code> (settings' messages name commands)."""
    parts = str(text).split("`")
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )


def is_manual(job: Any) -> bool:
    """Only "Run now" starts it: pausing would change nothing."""
    return not (
        job.cron_expression
        or job.interval_minutes
        or job.threshold
        or job.event_triggers
        or job.command_triggers
        or job.mention_trigger
        or job.assignment_trigger
        or job.after_job_id
    )


def zoned(value: datetime, zone: str) -> str:
    """An instant on the job's wall clock: "Fri 2026-11-27 09:00 CET"."""
    try:
        local = value.astimezone(ZoneInfo(zone or "UTC"))  # ZoneInfo keeps its own cache
    except (ZoneInfoNotFoundError, ValueError):
        local = value
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or zone)


def next_times(job: Any, now: datetime, count: int = 5) -> list[dict[str, str]]:
    """The next ``count`` times a cron or interval job fires (none while it is paused)."""
    schedule: Schedule
    try:
        if job.cron_expression:
            schedule = cron_schedule(job.cron_expression, job.timezone or "UTC")
        elif job.interval_minutes:
            anchor = job.schedule_anchor or job.next_run_at or now
            schedule = interval_schedule(job.interval_minutes, anchor)
        else:
            return []
    except (InvalidSchedule, ValueError):
        return []
    out = []
    moment_at = now
    for _ in range(count):
        moment_at = schedule.next_after(moment_at)
        out.append(
            {
                "iso": moment_at.isoformat(),
                "local": zoned(moment_at, job.timezone),
                "title": absolute(moment_at),
                "text": relative(moment_at, now),
            }
        )
    return out


REPORTS = {
    "comment": "comments its result on the issue or pull request",
    "issue": "opens an issue with its result",
    "none": "posts nothing on GitHub",
}


def describe_job(job: Any, where: str) -> str:
    """The job in one plain sentence, for its page."""
    trigger = describe_trigger(job)
    when_words = (
        "only when someone presses “Run now”"
        if trigger == "manual"
        else lower_first(trigger).replace(" · ", "; ")
    )
    text = f"Runs {describe_target(job)} in {where}, {when_words}."
    text += f" It {REPORTS.get(job.report, job.report)}"
    told = [
        w for w, on in (("fails", job.notify_on_failure), ("succeeds", job.notify_on_success)) if on
    ]
    if not job.notifier_ids:  # the flags alone send nothing (notify/outbox.py)
        told = []
    text += f" and notifies when a run {' or '.join(told)}." if told else "."
    if job.status != "active":
        text += f" It is {job.status}: nothing starts it until it is resumed."
    return text
