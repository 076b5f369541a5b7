"""``ghapp schedule …``: jobs, their runs, notifiers and the scheduler.

Every command talks to a running server's REST API (``/api/scheduler/…``) through
:mod:`ghapp.cli.client`; ``--json`` prints the server's answer as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum, StrEnum
from typing import Annotated, Any

import typer

from ghapp.cli.client import (
    DEFAULT_URL,
    SERVER_FAILED,
    ApiClient,
    Connection,
    command_name,
    dump_json,
    one_line,
)
from ghapp.cli.output import err, fail
from ghapp.cli.tables import NONE, duration, plural, say, show_table, when, when_utc
from ghapp.scheduler.timing import InvalidSchedule, describe_cron

TASKS = "/api/scheduler/tasks"
EXECUTIONS = "/api/scheduler/executions"
WEBHOOKS = "/api/scheduler/webhooks"
FINISHED = frozenset({"completed", "failed", "skipped", "cancelled", "timed_out"})
EVENT_TYPES = (
    "task_started",
    "task_completed",
    "task_failed",
    "threshold_triggered",
    "health_alert",
)
OPERATORS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "eq": "="}

# What people read.
ASK_NAME = "Name"
ASK_TYPE = "Task type"
ASK_REPO = "Repository (owner/name)"
ASK_CRON = "Cron expression, e.g. 0 9 * * 1-5 (empty: run only when asked)"
ASK_PROMPT = "Prompt for the session"
ASK_WEBHOOK_TYPE = "Webhook type"
ASK_WEBHOOK_URL = "Webhook URL"
ASK_RECIPIENTS = "E-mail addresses (comma-separated)"
ASK_EVENTS = "Events, comma-separated (empty: the server's default)"
NO_ANSWER = "no answer to {question!r}: give it as an option"
CRON_OR_INTERVAL = "give --cron or --interval, not both"
UNKNOWN_EVENT = "unknown event {event!r} (known: {known})"
ONLY_REPO = "using repository {repo}, the only one with tasks (--repo to choose another)"
KNOWN_REPOS = "repositories with tasks (ids): {repos}"
NO_TASKS = "no tasks"
NO_EXECUTIONS = "no executions"
NO_WEBHOOKS = "no webhooks"
NOTHING_UPCOMING = "nothing fires in the next {hours:g} hours"
NO_AUDIT = "no audit entries"

schedule_app = typer.Typer(
    help="Scheduled jobs, their runs and notifications, through a running server's API "
    "(GHAPP_URL, GHAPP_TOKEN).",
    no_args_is_help=True,
)
webhooks_app = typer.Typer(
    help="Where notifications go: Slack, Discord, n8n or any webhook.", no_args_is_help=True
)
schedule_app.add_typer(webhooks_app, name="webhooks")


class TaskType(StrEnum):
    analyze = "analyze"
    optimize = "optimize"
    health_check = "health_check"
    custom = "custom"


class Target(StrEnum):
    issues = "issues"
    prs = "prs"
    codebase = "codebase"
    custom = "custom"


class WebhookType(StrEnum):
    slack = "slack"
    discord = "discord"
    n8n = "n8n"
    generic = "generic"
    email = "email"


class Quick(StrEnum):
    daily_analysis = "daily-analysis"
    weekly_optimize = "weekly-optimize"
    threshold_alert = "threshold-alert"


# Ready-made jobs for `ghapp schedule quick`.
QUICK_SETUP_TASKS: dict[Quick, dict[str, Any]] = {
    Quick.daily_analysis: {
        "name": "Daily Context Analysis",
        "taskType": "analyze",
        "scheduleType": "cron",
        "cronExpression": "0 9 * * *",
        "taskConfig": {"includeHealthScore": True},
        "notifyOnFailure": True,
    },
    Quick.weekly_optimize: {
        "name": "Weekly Optimization",
        "taskType": "optimize",
        "scheduleType": "cron",
        "cronExpression": "0 8 * * 1",
        "taskConfig": {"strategy": "moderate", "dryRun": False},
        "notifyOnSuccess": True,
        "notifyOnFailure": True,
    },
    Quick.threshold_alert: {
        "name": "Low Score Alert",
        "taskType": "analyze",
        "scheduleType": "threshold",
        "thresholdMetric": "optimization_score",
        "thresholdOperator": "lt",
        "taskConfig": {"alertOnly": True},
        "notifyOnSuccess": True,
    },
}

Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer as is.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Repo = Annotated[str | None, typer.Option("--repo", help="Repository owner/name (or its id).")]


@schedule_app.callback()
def connect(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="GHAPP_URL", help="The ghapp server.")
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="GHAPP_TOKEN", show_default=False, help="An API token."),
    ] = None,
) -> None:
    """Where the server is and the token to use; kept for the command that follows."""
    ctx.obj = Connection(url=url, token=token)


# -- plumbing ---------------------------------------------------------------------------------


def api(ctx: typer.Context) -> ApiClient:
    return ApiClient(ctx.find_object(Connection) or Connection(), command_name(ctx))


def call(ctx: typer.Context, method: str, path: str, **options: Any) -> Any:
    """One API request with a client of its own."""
    with api(ctx) as client:
        return client.request(method, path, **options)


def ask(ctx: typer.Context, question: str, **options: Any) -> Any:
    """``typer.prompt``; an answer that never comes is a usage error, not "Aborted!"."""
    try:
        return typer.prompt(question, **options)
    except typer.Abort:
        fail(command_name(ctx), NO_ANSWER.format(question=question), code=2)


def compact(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value is not None}


def flatten(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


# -- describing tasks and executions ------------------------------------------------------------


def describe_schedule(task: dict[str, Any]) -> str:
    """A task's trigger in words: cron, interval, threshold, events and commands, or manual."""
    kind = task.get("scheduleType")
    if kind == "cron" and task.get("cronExpression"):
        try:
            words = describe_cron(task["cronExpression"])
        except InvalidSchedule:
            words = task["cronExpression"]
        zone = task.get("timezone") or "UTC"
        return words if zone == "UTC" else f"{words} ({zone})"
    if kind == "interval" and task.get("intervalMinutes"):
        minutes = task["intervalMinutes"]
        return "every minute" if minutes == 1 else f"every {minutes} minutes"
    if kind == "threshold":
        operator = OPERATORS.get(task.get("thresholdOperator") or "", task.get("thresholdOperator"))
        value = task.get("thresholdValue")
        shown = f"{value:g}" if isinstance(value, int | float) else value
        return f"when {task.get('thresholdMetric')} {operator} {shown}"
    if kind == "event":
        events = [trigger.get("event", "?") for trigger in task.get("eventTriggers") or []]
        return "on " + ", ".join(events + list(task.get("commandTriggers") or []))
    if task.get("afterJobId"):
        return f"after task {task['afterJobId']}"
    return "manual"


def repo_label(task: dict[str, Any]) -> str:
    if task.get("repoId"):
        return str(task.get("repo") or task["repoId"])
    if task.get("installationId"):
        return f"installation {task['installationId']}"
    return NONE


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
        f"execution {execution['id']}: {execution['status']} · "
        f"{execution.get('itemsProcessed', 0)} of {execution.get('itemsFound', 0)} items "
        f"processed · {plural(sessions, 'session')}"
    )


def show_tasks(tasks: list[dict[str, Any]]) -> None:
    show_table(
        "Tasks",
        ("ID", "Name", "Repo", "Status", "Schedule", "Next run", "Last run"),
        (
            (
                t["id"],
                t["name"],
                repo_label(t),
                t.get("status"),
                describe_schedule(t),
                when(t.get("nextRunAt")),
                last_run(t),
            )
            for t in tasks
        ),
        NO_TASKS,
    )


def show_executions(executions: list[dict[str, Any]]) -> None:
    show_table(
        "Executions",
        ("ID", "Task", "Status", "Trigger", "Queued", "Took", "Items", "Error"),
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


# -- tasks --------------------------------------------------------------------------------------


@schedule_app.command("list")
def list_tasks(
    ctx: typer.Context,
    enabled: Annotated[bool, typer.Option("--enabled", help="Only enabled tasks.")] = False,
    repo: Repo = None,
    json_: Json = False,
) -> None:
    """List tasks: their schedule in words, next and last run."""
    params = {"enabled": True if enabled else None, "repo": repo, "limit": 500}
    tasks: list[dict[str, Any]] = []
    while True:  # every page: a listing shows everything
        page = call(ctx, "GET", TASKS, params=params)
        tasks += page["tasks"]
        if not page.get("nextCursor"):
            break
        params["cursor"] = page["nextCursor"]
    if json_:
        dump_json({"tasks": tasks, "total": len(tasks)})
        return
    show_tasks(tasks)


@schedule_app.command()
def create(
    ctx: typer.Context,
    task_type: Annotated[TaskType | None, typer.Option("--type", help="What it does.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Cron expression.")] = None,
    interval: Annotated[
        int | None, typer.Option("--interval", min=1, help="Every N minutes.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    repo: Repo = None,
    command: Annotated[str | None, typer.Option("--command", help="Command id.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Custom prompt.")] = None,
    target: Annotated[Target | None, typer.Option("--target", help="What it runs on.")] = None,
    filter_query: Annotated[str | None, typer.Option("--filter", help="Filter query.")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone.")] = None,
    checks: Annotated[
        bool | None,
        typer.Option(
            "--checks/--no-checks",
            help="Sessions on pull requests as check runs (the server's default: on).",
        ),
    ] = None,
    json_: Json = False,
) -> None:
    """Create a task; asks for name, type, repository and schedule when not given."""
    if cron is not None and interval is not None:
        fail(command_name(ctx), CRON_OR_INTERVAL, code=2)
    name = name or ask(ctx, ASK_NAME)
    kind = flatten(task_type or ask(ctx, ASK_TYPE, type=TaskType, default=TaskType.analyze))
    repo = repo or ask(ctx, ASK_REPO)
    if cron is None and interval is None:
        cron = ask_cron(ctx)
    if kind == TaskType.custom.value and not (command or prompt):
        prompt = ask(ctx, ASK_PROMPT)
    schedule = "cron" if cron else "interval" if interval else "manual"
    body = {
        "name": name,
        "taskType": kind,
        "scheduleType": schedule,
        "cronExpression": cron,
        "intervalMinutes": interval,
        "repo": repo,
        "commandId": command,
        "customPrompt": prompt,
        "targetType": flatten(target),
        "filterQuery": filter_query,
        "timezone": timezone,
        "checks": checks,
    }
    task = call(ctx, "POST", TASKS, body=compact(body))
    if json_:
        dump_json(task)
        return
    say(
        f"created task {task['id']} {task['name']!r}: {describe_schedule(task)}, "
        f"next run {when_utc(task.get('nextRunAt'))}"
    )


def ask_cron(ctx: typer.Context) -> str | None:
    """Ask until the expression is valid, showing what it means; empty: no schedule."""
    while True:
        expression = ask(ctx, ASK_CRON, default="", show_default=False).strip()
        if not expression:
            return None
        try:
            say(f"  → {describe_cron(expression)}")
            return str(expression)
        except InvalidSchedule as exc:
            err.print(f"  {exc}", markup=False, highlight=False)


@schedule_app.command()
def enable(ctx: typer.Context, task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Enable a task: it fires on its schedule again."""
    task = call(ctx, "PATCH", f"{TASKS}/{task_id}", body={"enabled": True})
    say(f"task {task['id']} {task['name']!r} enabled, next run {when_utc(task.get('nextRunAt'))}")


@schedule_app.command()
def disable(ctx: typer.Context, task_id: Annotated[int, typer.Argument(help="Task id.")]) -> None:
    """Disable (pause) a task; it can still be run by hand."""
    task = call(ctx, "PATCH", f"{TASKS}/{task_id}", body={"enabled": False})
    say(f"task {task['id']} {task['name']!r} disabled")


@schedule_app.command()
def delete(
    ctx: typer.Context, task_id: Annotated[int, typer.Argument(help="Task id.")], yes: Yes = False
) -> None:
    """Delete a task (its queued runs are cancelled)."""
    with api(ctx) as client:
        task = client.get(f"{TASKS}/{task_id}")
        if not yes:
            typer.confirm(f"Delete task {task_id} {task['name']!r}?", abort=True)
        client.delete(f"{TASKS}/{task_id}")
    say(f"task {task_id} deleted")


@schedule_app.command()
def run(
    ctx: typer.Context,
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow it until it ends.")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between looks.")] = 2.0,
) -> None:
    """Run a task now; with --wait, follow it (exit code 0 only when it completes)."""
    with api(ctx) as client:
        execution_id = client.post(f"{TASKS}/{task_id}/run", {})["executionId"]
        say(f"execution {execution_id} queued")
        if not wait:
            return
        final = follow(client, execution_id, poll)
    say(progress(final))
    if final["status"] != "completed":
        reason = one_line(final.get("error") or "no error recorded")
        fail(
            command_name(ctx),
            f"execution {execution_id} {final['status']}: {reason}",
            code=SERVER_FAILED,
        )


def follow(
    client: ApiClient, execution_id: int, poll: float, within: float | None = None
) -> dict[str, Any]:
    """Look at the execution every ``poll`` seconds until it has ended (or ``within``
    seconds have passed: then the last look is returned, unfinished)."""
    give_up = None if within is None else time.monotonic() + within
    with status_line() as show:
        while True:
            execution: dict[str, Any] = client.get(f"{EXECUTIONS}/{execution_id}")
            show(progress(execution))
            if execution["status"] in FINISHED:
                return execution
            if give_up is not None and time.monotonic() >= give_up:
                return execution
            time.sleep(poll)


@contextmanager
def status_line() -> Iterator[Callable[[str], None]]:
    """A Rich status line on a terminal; elsewhere a line on stderr whenever it changes."""
    if err.is_terminal:
        with err.status("") as status:
            yield lambda text: status.update(text)
        return
    shown: list[str] = []

    def show(text: str) -> None:
        if not shown or shown[-1] != text:
            shown.append(text)
            err.print(text, markup=False, highlight=False)

    yield show


# -- executions ---------------------------------------------------------------------------------


@schedule_app.command()
def history(
    ctx: typer.Context,
    task: Annotated[int | None, typer.Option("--task", help="Only this task's runs.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="e.g. failed")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    json_: Json = False,
) -> None:
    """Past and current executions, newest first."""
    page = call(ctx, "GET", EXECUTIONS, params={"taskId": task, "status": status, "limit": limit})
    if json_:
        dump_json(page)
        return
    show_executions(page["executions"])


@schedule_app.command()
def retry(
    ctx: typer.Context, execution_id: Annotated[int, typer.Argument(help="Execution id.")]
) -> None:
    """Run again what a finished execution did."""
    started = call(ctx, "POST", f"{EXECUTIONS}/{execution_id}/retry")
    say(f"execution {started['executionId']} queued (retry of {execution_id})")


@schedule_app.command()
def cancel(
    ctx: typer.Context,
    execution_id: Annotated[int, typer.Argument(help="Execution id.")],
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds to wait for a running one to end (0: don't)."),
    ] = 90.0,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between looks.")] = 1.0,
) -> None:
    """Cancel a queued or running execution, and wait until it has ended.

    A queued execution ends at once. A running one stops within moments when its worker is
    alive, or once its lease lapses (a minute by default) when its worker is gone.
    """
    with api(ctx) as client:
        result = client.post(f"{EXECUTIONS}/{execution_id}/cancel", {})
        final = result
        if result["status"] not in FINISHED and wait > 0:
            say(f"execution {execution_id} asked to stop; waiting for it to end")
            final = follow(client, execution_id, poll, within=wait)
    if final["status"] not in FINISHED:
        fail(
            command_name(ctx),
            f"execution {execution_id} is still {final['status']} after {wait:g} s; "
            "it is ended when its worker stops it or its lease lapses",
            code=SERVER_FAILED,
        )
    say(f"execution {execution_id} {final['status']}")


# -- the scheduler --------------------------------------------------------------------------------


@schedule_app.command()
def status(ctx: typer.Context, json_: Json = False) -> None:
    """Is the scheduler firing; counts of tasks and executions; what runs next."""
    state = call(ctx, "GET", "/api/scheduler/status")
    if json_:
        dump_json(state)
        return
    show_status(state)


def show_status(state: dict[str, Any]) -> None:
    today = state["today"]
    say(f"scheduler {state['state']}, next wake {when_utc(state.get('nextWakeAt'))}")
    say(f"tasks: {state['activeTasks']} active, {state['pausedTasks']} paused")
    say(f"executions: {state['queuedExecutions']} queued, {state['runningExecutions']} running")
    say(
        f"today: {plural(today['runs'], 'run')}, {today['successful']} successful, "
        f"{today['failed']} failed, ${today['costUsd']:.2f}"
    )
    show_upcoming(state.get("nextRuns") or [], "Next runs", "nothing scheduled")


@schedule_app.command()
def start(
    ctx: typer.Context,
) -> None:
    """Start firing schedules (on every replica)."""
    say(f"scheduler {call(ctx, 'POST', '/api/scheduler/start')['state']}")


@schedule_app.command()
def stop(
    ctx: typer.Context,
) -> None:
    """Stop firing schedules (on every replica); runs can still be started by hand."""
    say(f"scheduler {call(ctx, 'POST', '/api/scheduler/stop')['state']}")


@schedule_app.command()
def upcoming(
    ctx: typer.Context,
    hours: Annotated[float, typer.Option("--hours", min=0.01, max=744)] = 24,
    json_: Json = False,
) -> None:
    """What fires in the next hours."""
    page = call(ctx, "GET", "/api/scheduler/upcoming", params={"hours": hours})
    if json_:
        dump_json(page)
        return
    show_upcoming(page["upcoming"], "Upcoming", NOTHING_UPCOMING.format(hours=hours))


def show_upcoming(entries: list[dict[str, Any]], title: str, empty: str) -> None:
    show_table(
        title,
        ("At", "Task", "Name", "Kind"),
        ((when(u["at"]), u["taskId"], u["name"], u["kind"]) for u in entries),
        empty,
    )


@schedule_app.command()
def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    json_: Json = False,
) -> None:
    """Who changed or ran what, newest first."""
    page = call(ctx, "GET", "/api/scheduler/audit", params={"limit": limit})
    if json_:
        dump_json(page)
        return
    show_table(
        "Audit",
        ("ID", "When", "Actor", "Action", "Object"),
        (
            (
                a["id"],
                when(a["createdAt"]),
                a["actor"],
                a["action"],
                f"{a['objectType']} {a.get('objectId') or ''}".strip(),
            )
            for a in page["entries"]
        ),
        NO_AUDIT,
    )


# -- quick setup ----------------------------------------------------------------------------------


@schedule_app.command()
def quick(
    ctx: typer.Context,
    preset: Annotated[Quick, typer.Argument(help="Which ready-made task.")],
    score: Annotated[
        float, typer.Option("--score", help="threshold-alert: alert below this score.")
    ] = 60,
    repo: Repo = None,
) -> None:
    """Create one of the ready-made tasks (daily analysis, weekly optimization, score alert)."""
    with api(ctx) as client:
        repo = repo or choose_repo(ctx, client)
        body = {**QUICK_SETUP_TASKS[preset], "repo": repo}
        if preset is Quick.threshold_alert:
            body["thresholdValue"] = score
        task = client.post(TASKS, body)
    say(f"created task {task['id']} {task['name']!r}: {describe_schedule(task)}")


def choose_repo(ctx: typer.Context, client: ApiClient) -> str:
    """The only repository that has tasks, or the one the user names."""
    tasks = client.get(TASKS)["tasks"]
    known = sorted({str(t.get("repo") or t["repoId"]) for t in tasks if t.get("repoId")})
    if len(known) == 1:
        say(ONLY_REPO.format(repo=known[0]))
        return known[0]
    if known:
        say(KNOWN_REPOS.format(repos=", ".join(known)))
    return str(ask(ctx, ASK_REPO))


# -- webhooks -------------------------------------------------------------------------------------


@webhooks_app.command("list")
def list_webhooks(ctx: typer.Context, json_: Json = False) -> None:
    """List notification targets (URLs are masked by the server)."""
    page = call(ctx, "GET", WEBHOOKS)
    if json_:
        dump_json(page)
        return
    show_table(
        "Webhooks",
        ("ID", "Name", "Type", "URL", "Events", "Enabled", "Failures", "Last used"),
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
        NO_WEBHOOKS,
    )


@webhooks_app.command("add")
def add_webhook(
    ctx: typer.Context,
    webhook_type: Annotated[WebhookType | None, typer.Option("--type")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Where to post.")] = None,
    recipients: Annotated[
        str | None, typer.Option("--to", help="email: comma-separated addresses.")
    ] = None,
    secret: Annotated[
        str | None, typer.Option("--secret", help="generic: HMAC key for the signature.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    events: Annotated[
        str | None, typer.Option("--events", help="Comma-separated, e.g. task_failed.")
    ] = None,
) -> None:
    """Add a notification target; asks for what is not given."""
    kind = flatten(webhook_type or ask(ctx, ASK_WEBHOOK_TYPE, type=WebhookType, default="slack"))
    target: dict[str, Any]
    if kind == WebhookType.email:
        addresses = recipients or ask(ctx, ASK_RECIPIENTS)
        target = {"recipients": [a.strip() for a in addresses.split(",") if a.strip()]}
    else:
        target = {"webhookUrl": url or ask(ctx, ASK_WEBHOOK_URL), "secret": secret}
    name = name or ask(ctx, ASK_NAME)
    if events is None:
        events = ask(ctx, ASK_EVENTS, default="", show_default=False)
    body = {"name": name, "webhookType": kind, **target, "eventTypes": event_list(ctx, events)}
    hook = call(ctx, "POST", WEBHOOKS, body=compact(body))
    say(
        f"added webhook {hook['id']} {hook['name']!r} ({hook.get('webhookType')}, "
        f"{hook.get('webhookUrl')}): {', '.join(hook.get('eventTypes') or [])}"
    )


def event_list(ctx: typer.Context, text: str) -> list[str] | None:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    for event in chosen:
        if event not in EVENT_TYPES:
            known = ", ".join(EVENT_TYPES)
            fail(command_name(ctx), UNKNOWN_EVENT.format(event=event, known=known), code=2)
    return chosen or None


@webhooks_app.command("test")
def test_webhook(
    ctx: typer.Context, webhook_id: Annotated[int, typer.Argument(help="Webhook id.")]
) -> None:
    """Send a test message and show the answer (exit code 1 when it failed)."""
    result = call(ctx, "POST", f"{WEBHOOKS}/{webhook_id}/test")
    took = f"{result.get('durationMs', 0)} ms"
    answer = one_line(result.get("response") or "")[:200]
    if result.get("ok"):
        say(f"delivered: {result.get('statusCode')} in {took} {answer}".strip())
        return
    code = result.get("statusCode")
    reason = one_line(result.get("error") or (f"answered {code}" if code else "no answer"))
    fail(command_name(ctx), f"not delivered ({took}): {reason} {answer}".strip(), SERVER_FAILED)


@webhooks_app.command("delete")
def delete_webhook(
    ctx: typer.Context,
    webhook_id: Annotated[int, typer.Argument(help="Webhook id.")],
    yes: Yes = False,
) -> None:
    """Delete a notification target."""
    with api(ctx) as client:
        hook = client.get(f"{WEBHOOKS}/{webhook_id}")
        if not yes:
            typer.confirm(f"Delete webhook {webhook_id} {hook['name']!r}?", abort=True)
        client.delete(f"{WEBHOOKS}/{webhook_id}")
    say(f"webhook {webhook_id} deleted")


@webhooks_app.command("enable")
def enable_webhook(
    ctx: typer.Context, webhook_id: Annotated[int, typer.Argument(help="Webhook id.")]
) -> None:
    """Send notifications to this target again."""
    hook = call(ctx, "PATCH", f"{WEBHOOKS}/{webhook_id}", body={"enabled": True})
    say(f"webhook {hook['id']} {hook['name']!r} enabled")


@webhooks_app.command("disable")
def disable_webhook(
    ctx: typer.Context, webhook_id: Annotated[int, typer.Argument(help="Webhook id.")]
) -> None:
    """Stop sending notifications to this target."""
    hook = call(ctx, "PATCH", f"{WEBHOOKS}/{webhook_id}", body={"enabled": False})
    say(f"webhook {hook['id']} {hook['name']!r} disabled")
