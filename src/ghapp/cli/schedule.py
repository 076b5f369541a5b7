"""``ghapp schedule …``: jobs (list, create, edit, enable, disable, delete, run, quick).

Every command talks to a running server's REST API (``/api/scheduler/…``, where jobs are
"tasks" and notifiers "webhooks"); ``--json`` prints the server's answer as is. Runs and the
scheduler are in :mod:`ghapp.cli.schedule_runs`, notifiers in :mod:`ghapp.cli.notifiers`.
"""

from __future__ import annotations

import functools
from enum import Enum, StrEnum
from typing import Annotated, Any

import typer

from ghapp.cli.asking import ask, confirm, missing_options, on_terminal
from ghapp.cli.connection import api, api_command, command_name
from ghapp.cli.describe import describe_schedule, show_tasks
from ghapp.cli.groups import Json, Repo, Yes, schedule_app
from ghapp.cli.job_options import (
    OPTION_NAMES,
    OptionError,
    job_body,
    scope_conflict,
    with_job_options,
)
from ghapp.cli.output import dump_json, err, fail, one_line
from ghapp.cli.tables import say, when_utc

TASKS = "/api/scheduler/tasks"

# What people read.
ASK_NAME = "Name"
ASK_TYPE = "Job type"
ASK_REPO = "Repository (owner/name)"
ASK_CRON = "Cron expression, e.g. 0 9 * * 1-5 (empty: run only when asked)"
ASK_PROMPT = "Prompt for the session"
ONE_TIMER = "give one of --cron, --interval, --threshold and --manual, not {given}"
NOTHING_TO_CHANGE = "nothing to change: give the options to change (see --help)"
ONLY_REPO = "using repository {repo}, the only one with jobs (--repo to choose another)"
KNOWN_REPOS = "repositories with jobs: {repos}"
DUPLICATE = (
    "job {id} {name!r} already exists for {repo}; "
    "`ghapp schedule edit {id}` changes it, --allow-duplicate makes another"
)
CREATE_OPTIONS = {**OPTION_NAMES, "scheduleType": "--cron/--interval/--manual/--threshold"}
EDIT_OPTIONS = {**CREATE_OPTIONS, "webhookIds": "--add-notifier", "notifierIds": "--add-notifier"}
MANUAL = "manual: runs only when asked (`ghapp schedule run {id}`)"


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
        "thresholdMetric": "context_score",  # the dashboard's name for it
        "thresholdOperator": "lt",
        "taskConfig": {"alertOnly": True},
        "notifyOnSuccess": True,
    },
}

# The options `create` and `edit` share.
TaskId = Annotated[int, typer.Argument(metavar="ID", help="Job id.")]
Name = Annotated[str | None, typer.Option("--name", metavar="TEXT", help="The job's name.")]
Kind = Annotated[TaskType | None, typer.Option("--type", help="What it does.")]
Cron = Annotated[
    str | None,
    typer.Option("--cron", metavar="EXPR", help='Cron expression, e.g. "0 9 * * 1-5".'),
]
Interval = Annotated[
    int | None, typer.Option("--interval", metavar="MINUTES", min=1, help="Every N minutes.")
]
Manual = Annotated[
    bool, typer.Option("--manual", help="No schedule: it runs only when asked (or triggered).")
]
Command = Annotated[
    str | None,
    typer.Option("--command", metavar="ID", help="Command id, e.g. pr/review."),
]
Prompt = Annotated[
    str | None, typer.Option("--prompt", metavar="TEXT", help="Custom prompt for the session.")
]
TargetOpt = Annotated[Target | None, typer.Option("--target", help="What it runs on.")]
Filter = Annotated[
    str | None, typer.Option("--filter", metavar="QUERY", help="Which items, e.g. label:bug.")
]
Timezone = Annotated[
    str | None,
    typer.Option(
        "--timezone", metavar="ZONE", help="IANA time zone of --cron, e.g. Europe/Berlin."
    ),
]
Checks = Annotated[
    bool | None,
    typer.Option(
        "--checks/--no-checks",
        help="Sessions on pull requests as check runs (the server's default: on).",
        show_default=False,
    ),
]


def call(ctx: typer.Context, method: str, path: str, **options: Any) -> Any:
    """One API request with a client of its own."""
    with api(ctx) as client:
        return client.request(method, path, **options)


def compact(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value is not None}


def flatten(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def timer(
    ctx: typer.Context,
    cron: str | None,
    interval: int | None,
    manual: bool,
    options: dict[str, Any],
) -> Any:
    """The schedule fields for ``--cron`` / ``--interval`` / ``--manual``; None: none given
    (``--threshold``, one of the shared ``options``, sends its own).

    ``--cron ""`` still means manual, as it did before ``--manual``.
    """
    given = [o for o, v in (("--cron", cron), ("--interval", interval)) if v is not None]
    given += ["--threshold"] if "threshold" in options else []
    given += ["--manual"] if manual else []
    if len(given) > 1:
        fail(command_name(ctx), ONE_TIMER.format(given=" and ".join(given)), code=2)
    if cron is not None and cron.strip():
        return {"scheduleType": "cron", "cronExpression": cron.strip()}
    if interval is not None:
        return {"scheduleType": "interval", "intervalMinutes": interval}
    if manual or cron is not None:
        return {"scheduleType": "manual"}
    return None


def work_fields(
    command: str | None,
    prompt: str | None,
    target: Target | None,
    filter_query: str | None,
    timezone: str | None,
    checks: bool | None,
) -> dict[str, Any]:
    return {
        "commandId": command,
        "customPrompt": prompt,
        "targetType": flatten(target),
        "filterQuery": filter_query,
        "timezone": timezone,
        "checks": checks,
    }


# -- jobs ---------------------------------------------------------------------------------------


@api_command(schedule_app, "list")
def list_tasks(
    ctx: typer.Context,
    enabled: Annotated[bool, typer.Option("--enabled", help="Only enabled jobs.")] = False,
    repo: Repo = None,
    json_: Json = False,
) -> None:
    """List jobs: their schedule in words, next and last run."""
    params = {"enabled": True if enabled else None, "repo": repo, "limit": 500}
    tasks: list[dict[str, Any]] = []
    with api(ctx) as client:
        while True:  # every page: a listing shows everything
            page = client.get(TASKS, params=params)
            tasks += page["tasks"]
            if not page.get("nextCursor"):
                break
            params["cursor"] = page["nextCursor"]
    if json_:
        dump_json({"tasks": tasks, "total": len(tasks)})
        return
    show_tasks(tasks)


def shared(ctx: typer.Context, options: dict[str, Any], repo: str | None, current: Any) -> Any:
    """The body part of the shared job options; a value they cannot take: exit 2, named."""
    conflict = scope_conflict(repo, options)
    if conflict:
        fail(command_name(ctx), conflict, code=2)
    try:
        return job_body(options, current)
    except OptionError as exc:
        fail(command_name(ctx), str(exc), code=2)


@api_command(schedule_app)
@with_job_options
def create(
    ctx: typer.Context,
    task_type: Kind = None,
    cron: Cron = None,
    interval: Interval = None,
    manual: Manual = False,
    name: Name = None,
    repo: Repo = None,
    command: Command = None,
    prompt: Prompt = None,
    target: TargetOpt = None,
    filter_query: Filter = None,
    timezone: Timezone = None,
    checks: Checks = None,
    notifier: Annotated[
        list[int] | None,
        typer.Option("--notifier", metavar="ID", help="Notify this notifier (repeat for more)."),
    ] = None,
    json_: Json = False,
    *,
    job_options: dict[str, Any],
) -> None:
    """Create a job. Without --cron or --interval it is manual (runs only when asked).

    On a terminal, what is missing (name, type, repository, schedule) is asked for;
    elsewhere the missing options are named and nothing is created.
    """
    schedule = timer(ctx, cron, interval, manual, job_options)
    extra = shared(ctx, job_options, repo, None)
    scoped = bool({"all_repos", "repos"} & job_options.keys())
    work_given = command or prompt or job_options.get("runner") == "shell"
    missing = [o for o, v in (("--name", name), ("--type", task_type)) if not v]
    missing += [] if repo or scoped else ["--repo"]
    if task_type is TaskType.custom and not work_given:
        missing.append("--prompt")
    missing_options(ctx, missing)
    name = name or ask(ctx, ASK_NAME, "--name")
    kind = flatten(task_type or ask(ctx, ASK_TYPE, "--type", type=TaskType, default="analyze"))
    repo = repo if repo or scoped else ask(ctx, ASK_REPO, "--repo")
    if schedule is None and "threshold" not in job_options and missing and on_terminal():
        schedule = ask_cron(ctx)  # asking anyway: the schedule too
    if kind == TaskType.custom.value and not work_given:
        prompt = ask(ctx, ASK_PROMPT, "--prompt")
    body = {
        "name": name,
        "taskType": kind,
        "repo": repo,
        **(schedule or {"scheduleType": "manual"}),
        **work_fields(command, prompt, target, filter_query, timezone, checks),
        "webhookIds": notifier or None,
    }
    with api(ctx, CREATE_OPTIONS) as client:
        task = client.post(TASKS, {**compact(body), **extra})
    if json_:
        dump_json(task)
        return
    say(f"created job {task['id']} {task['name']!r}: {job_summary(task)}")


def job_summary(task: dict[str, Any]) -> str:
    words = describe_schedule(task)
    if words == "manual":
        return MANUAL.format(id=task["id"])
    return f"{words}, next run {when_utc(task.get('nextRunAt'))}"


def ask_cron(ctx: typer.Context) -> dict[str, Any]:
    """Ask until the expression is valid, showing what it means; empty: manual."""
    from ghapp.scheduler.timing import InvalidSchedule, describe_cron

    while True:
        expression = ask(ctx, ASK_CRON, "--cron", default="", show_default=False).strip()
        if not expression:
            return {"scheduleType": "manual"}
        try:
            say(f"  → {describe_cron(expression)}")
            return {"scheduleType": "cron", "cronExpression": str(expression)}
        except InvalidSchedule as exc:
            err.print(f"  {exc}", markup=False, highlight=False)


@api_command(schedule_app)
@with_job_options
def edit(
    ctx: typer.Context,
    task_id: TaskId,
    name: Name = None,
    task_type: Kind = None,
    repo: Repo = None,
    cron: Cron = None,
    interval: Interval = None,
    manual: Manual = False,
    command: Command = None,
    prompt: Prompt = None,
    target: TargetOpt = None,
    filter_query: Filter = None,
    timezone: Timezone = None,
    checks: Checks = None,
    add_notifier: Annotated[
        list[int] | None,
        typer.Option(
            "--add-notifier", metavar="ID", help="Also notify this notifier (repeat for more)."
        ),
    ] = None,
    remove_notifier: Annotated[
        list[int] | None,
        typer.Option(
            "--remove-notifier", metavar="ID", help="Stop notifying this one (repeat for more)."
        ),
    ] = None,
    no_notifiers: Annotated[
        bool,
        typer.Option("--no-notifiers", help="Detach every notifier (then --add-notifier adds)."),
    ] = False,
    json_: Json = False,
    *,
    job_options: dict[str, Any],
) -> None:
    """Change a job: only the options given change, the rest stays as it is.

    --cron, --interval, --threshold or --manual replaces the schedule. Lists add to what the
    job has: --on, --slash-command, --allowed-tool, --disallowed-tool, --config and
    --add-notifier (--remove-notifier ID detaches one); their --no-... flag empties the list
    first. Text options given as "" clear the field; --max-turns, --budget and --after take
    none.
    """
    changes = compact(
        {
            "name": name,
            "taskType": flatten(task_type),
            "repo": repo,
            **(timer(ctx, cron, interval, manual, job_options) or {}),
            **work_fields(command, prompt, target, filter_query, timezone, checks),
        }
    )
    if repo:  # one repository again, whatever the scope was
        changes |= {"repoSelection": "one", "repoIds": []}
    notifiers_change = bool(add_notifier or remove_notifier or no_notifiers)
    if not changes and not job_options and not notifiers_change:
        fail(command_name(ctx), NOTHING_TO_CHANGE, code=2)
    with api(ctx, EDIT_OPTIONS) as client:
        job = functools.cache(lambda: client.get(f"{TASKS}/{task_id}"))
        changes |= shared(ctx, job_options, repo, job)
        if notifiers_change:
            current = [] if no_notifiers else job()["webhookIds"]
            kept = [i for i in current if i not in (remove_notifier or [])]
            changes["webhookIds"] = kept + [i for i in add_notifier or [] if i not in kept]
        task = client.patch(f"{TASKS}/{task_id}", changes)
    if json_:
        dump_json(task)
        return
    notifiers = ", ".join(str(i) for i in task.get("webhookIds") or []) or "none"
    say(f"changed job {task['id']} {task['name']!r}: {job_summary(task)}; notifiers: {notifiers}")


@api_command(schedule_app)
def enable(ctx: typer.Context, task_id: TaskId) -> None:
    """Enable a job: it fires on its schedule again."""
    task = call(ctx, "PATCH", f"{TASKS}/{task_id}", body={"enabled": True})
    say(f"job {task['id']} {task['name']!r} enabled, next run {when_utc(task.get('nextRunAt'))}")


@api_command(schedule_app)
def disable(ctx: typer.Context, task_id: TaskId) -> None:
    """Disable (pause) a job; it can still be run by hand."""
    task = call(ctx, "PATCH", f"{TASKS}/{task_id}", body={"enabled": False})
    say(f"job {task['id']} {task['name']!r} disabled")


@api_command(schedule_app)
def delete(ctx: typer.Context, task_id: TaskId, yes: Yes = False) -> None:
    """Delete a job (its queued runs are cancelled)."""
    with api(ctx) as client:
        task = client.get(f"{TASKS}/{task_id}")
        if not yes:
            confirm(ctx, f"Delete job {task_id} {task['name']!r}?")
        client.delete(f"{TASKS}/{task_id}")
    say(f"job {task_id} deleted")


@api_command(schedule_app)
def run(
    ctx: typer.Context,
    task_id: TaskId,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it until it ends.")] = False,
    poll: Annotated[
        float, typer.Option("--poll", metavar="SECONDS", min=0.05, help="Seconds between looks.")
    ] = 2.0,
) -> None:
    """Run a job now; with --wait, follow it (exit code 0 only when it completes)."""
    from ghapp.cli.client import SERVER_FAILED
    from ghapp.cli.describe import progress
    from ghapp.cli.schedule_runs import follow

    with api(ctx) as client:
        execution_id = client.post(f"{TASKS}/{task_id}/run", {})["executionId"]
        say(f"run {execution_id} queued")
        if not wait:
            return
        final = follow(client, execution_id, poll)
    say(progress(final))
    if final["status"] != "completed":
        reason = one_line(final.get("error") or "no error recorded")
        fail(command_name(ctx), f"run {execution_id} {final['status']}: {reason}", SERVER_FAILED)


# -- quick setup ----------------------------------------------------------------------------------


@api_command(schedule_app)
def quick(
    ctx: typer.Context,
    preset: Annotated[Quick, typer.Argument(help="Which ready-made job.", show_default=False)],
    score: Annotated[
        float,
        typer.Option("--score", metavar="N", help="threshold-alert: alert when context_score < N."),
    ] = 60,
    repo: Repo = None,
    allow_duplicate: Annotated[
        bool,
        typer.Option("--allow-duplicate", help="Create it even if the repository has it already."),
    ] = False,
) -> None:
    """Create a ready-made job (daily analysis, weekly optimization, low context_score alert).

    Refused when the repository already has that job (same name), unless --allow-duplicate.
    """
    with api(ctx) as client:
        repo = repo or choose_repo(ctx, client)
        body = {**QUICK_SETUP_TASKS[preset], "repo": repo}
        if not allow_duplicate:
            for task in client.get(TASKS, params={"repo": repo, "limit": 500})["tasks"]:
                if task["name"] == body["name"]:
                    message = DUPLICATE.format(id=task["id"], name=task["name"], repo=repo)
                    fail(command_name(ctx), message, code=1)
        if preset is Quick.threshold_alert:
            body["thresholdValue"] = score
        task = client.post(TASKS, body)
    say(f"created job {task['id']} {task['name']!r}: {describe_schedule(task)}")


def choose_repo(ctx: typer.Context, client: Any) -> str:
    """The only repository that has jobs, or the one the user names."""
    tasks = client.get(TASKS, params={"limit": 500})["tasks"]
    known = sorted({str(t.get("repo") or t["repoId"]) for t in tasks if t.get("repoId")})
    if len(known) == 1:
        say(ONLY_REPO.format(repo=known[0]))
        return known[0]
    missing_options(ctx, ["--repo"])
    if known:
        say(KNOWN_REPOS.format(repos=", ".join(known)))
    return str(ask(ctx, ASK_REPO, "--repo"))
