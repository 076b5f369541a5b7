"""Jobs and runs in words and tables, as the dashboard names them.

Everything here prints what the server answered; names typed by strangers (job names,
repositories, errors) reach the terminal as plain text (see :mod:`ghapp.cli.tables`).
"""

from __future__ import annotations

from typing import Any

from ghapp.cli.output import one_line
from ghapp.cli.tables import NONE, Col, duration, plural, show_table, when

OPERATORS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "eq": "="}
NO_TASKS = "no jobs"
NO_EXECUTIONS = "no runs"


def describe_schedule(task: dict[str, Any]) -> str:
    """A job's trigger in words: cron, interval, threshold, events and commands, or manual."""
    kind = task.get("scheduleType")
    if kind == "cron" and task.get("cronExpression"):
        return _cron_words(task["cronExpression"], task.get("timezone") or "UTC")
    if kind == "interval" and task.get("intervalMinutes"):
        minutes = task["intervalMinutes"]
        return "every minute" if minutes == 1 else f"every {minutes} minutes"
    if kind == "threshold":
        return _threshold_words(task)
    if kind == "event":
        events = [trigger.get("event", "?") for trigger in task.get("eventTriggers") or []]
        return "on " + ", ".join(events + list(task.get("commandTriggers") or []))
    if task.get("afterJobId"):
        return f"after job {task['afterJobId']}"
    return "manual"


def _cron_words(expression: str, zone: str) -> str:
    # croniter and cron-descriptor cost a tenth of a second: only for listings that need them.
    from ghapp.scheduler.timing import InvalidSchedule, describe_cron

    try:
        words = describe_cron(expression)
    except InvalidSchedule:
        words = expression
    return words if zone == "UTC" else f"{words} ({zone})"


def _threshold_words(task: dict[str, Any]) -> str:
    """``when context_score < 45``: the metric as the dashboard names it, not the task API's
    compatibility alias (``optimization_score``)."""
    threshold = task.get("threshold") or {}
    metric = threshold.get("metric") or task.get("thresholdMetric")
    operator = threshold.get("operator") or task.get("thresholdOperator") or ""
    value = threshold.get("value", task.get("thresholdValue"))
    shown = f"{value:g}" if isinstance(value, int | float) else value
    return f"when {metric} {OPERATORS.get(operator, operator)} {shown}"


def repo_label(task: dict[str, Any]) -> str:
    if task.get("repoId"):
        return str(task.get("repo") or task["repoId"])
    if task.get("installationId"):
        return f"installation {task['installationId']}"
    return NONE


def next_run(task: dict[str, Any]) -> str:
    """When it runs next, or why it does not."""
    if not task.get("enabled", True):
        return str(task.get("status") or "paused")
    return when(task.get("nextRunAt")) if task.get("nextRunAt") else NONE


def last_run(task: dict[str, Any]) -> str:
    if not task.get("lastRunAt"):
        return "never"
    return f"{when(task['lastRunAt'])} {task.get('lastRunStatus') or ''}".strip()


def items(execution: dict[str, Any]) -> str:
    text = f"{execution.get('itemsProcessed', 0)}/{execution.get('itemsFound', 0)}"
    failed = execution.get("itemsFailed") or 0
    return f"{text} ({failed} failed)" if failed else text


def progress(execution: dict[str, Any]) -> str:
    sessions = len(execution.get("sessionIds") or execution.get("sessions") or [])
    return (
        f"run {execution['id']}: {execution['status']} · "
        f"{execution.get('itemsProcessed', 0)} of {execution.get('itemsFound', 0)} items "
        f"processed · {plural(sessions, 'session')}"
    )


def show_tasks(tasks: list[dict[str, Any]]) -> None:
    show_table(
        "Jobs",
        (
            Col("ID", key=True),
            Col("Name", min_width=12),
            Col("Repo", min_width=12),
            Col("Schedule", min_width=14),
            Col("Next run", key=True),
            Col("Last run", key=True, wide=True),
        ),
        (
            (
                t["id"],
                t["name"],
                repo_label(t),
                describe_schedule(t),
                next_run(t),
                last_run(t),
            )
            for t in tasks
        ),
        NO_TASKS,
    )


def show_executions(executions: list[dict[str, Any]]) -> None:
    show_table(
        "Runs",
        (
            Col("ID", key=True),
            Col("Job", key=True),
            Col("Status", key=True),
            Col("Trigger", key=True),
            Col("Queued", key=True),
            Col("Took", key=True),
            Col("Items", key=True, wide=True),
            Col("Error", min_width=10),
        ),
        (
            (
                e["id"],
                e.get("taskId"),
                e["status"],
                e.get("triggerType"),
                when(e.get("queuedAt")),
                duration(e.get("durationMs")),
                items(e),
                one_line(e.get("error") or "")[:80],
            )
            for e in executions
        ),
        NO_EXECUTIONS,
    )


def show_upcoming(entries: list[dict[str, Any]], title: str, empty: str) -> None:
    show_table(
        title,
        (Col("At", key=True), Col("Job", key=True), Col("Name", min_width=12), Col("Kind")),
        ((when(u["at"]), u["taskId"], u["name"], u["kind"]) for u in entries),
        empty,
    )
