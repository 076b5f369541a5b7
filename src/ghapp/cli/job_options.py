"""The job options ``schedule create`` and ``schedule edit`` share, defined once.

:data:`JOB_OPTIONS` is one table: each row is an option as a person types it (``--timeout
15m``), the JobSpec fields it sets (snake_case, for the coverage test) and how its value
becomes the API's camelCase body. :func:`with_job_options` adds the rows to a command's
signature and hands the command what was given; :data:`OPTION_NAMES` tells the API client
which option to name when the server refuses a field (``--timeout``, not ``timeoutSeconds``).

Lists (``--on``, ``--slash-command``, ``--allowed-tool``, ``--disallowed-tool``, ``--config``)
add to what the job has in ``edit``; their ``--no-…`` twin clears first, like
``--no-notifiers``. A text option given as ``""`` clears the field; ``none`` clears a number.
Nothing heavy is imported here: ``--help`` reads this module.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar, cast

import typer

F = TypeVar("F", bound=Callable[..., Any])
Body = dict[str, Any]

BAD_DURATION = "{value!r} is not a duration (e.g. 900, 90s, 15m, 1h30m, 2d)"
BAD_NUMBER = "{value!r} is not a number (or none to clear it)"
BAD_THRESHOLD = (
    '{value!r} is not a threshold such as "context_score < 60" (metric, one of '
    "< <= > >= =, a number)"
)
BAD_CONDITION = "{value!r}: unknown condition (known: {known})"
BAD_BOOL = "{value!r}: say true or false"
BAD_CONFIG = "{value!r} is not KEY=VALUE"
BAD_JSON = "{value!r} is not a JSON object: {why}"
BAD_JSON_FILE = "{value!r} is neither a JSON object nor a file that can be read ({why})"
ONE_SCOPE = "give one of --repo, --all-repos and --repos, not {given}"
SCOPE_NEEDS_INSTALLATION = "{option} needs --installation ID (the installation's id)"
THRESHOLD_OPERATORS = {"<": "lt", "<=": "lte", "≤": "lte", ">": "gt", ">=": "gte", "≥": "gte"}
THRESHOLD_OPERATORS |= {"=": "eq", "==": "eq"}
_THRESHOLD = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(<=|>=|==|<|>|=|≤|≥)\s*(-?[0-9.]+)\s*$")
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# ``--on "pull_request.opened labels=bug draft=false"``: a condition's word → EventTrigger field.
CONDITIONS = {
    "labels": "labels",
    "label": "labels",
    "author": "author_association",
    "author_association": "author_association",
    "draft": "draft",
    "branches": "base_branches",
    "branch": "base_branches",
    "base_branches": "base_branches",
    "paths": "paths",
    "path": "paths",
    "bots": "include_bots",
    "include_bots": "include_bots",
}
LIST_CONDITIONS = {"labels", "author_association", "base_branches", "paths"}


class OptionError(ValueError):
    """A value the option cannot take; the command names the option and exits 2."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")


class Runner(StrEnum):
    claude = "claude"
    shell = "shell"
    builtin = "builtin"


class Report(StrEnum):
    comment = "comment"
    issue = "issue"
    none = "none"


class NotifyOn(StrEnum):
    success = "success"
    failure = "failure"
    both = "both"
    none = "none"


class Concurrency(StrEnum):
    skip = "skip"
    queue = "queue"
    cancel = "cancel"
    allow = "allow"


class PermissionMode(StrEnum):
    default = "default"
    acceptEdits = "acceptEdits"  # Claude Code's own spelling
    plan = "plan"
    bypassPermissions = "bypassPermissions"


# -- converters: a typed value → part of the API body --------------------------------------------


def seconds(option: str, value: str) -> int:
    """``900``, ``90s``, ``15m``, ``1h30m``, ``2d`` → seconds."""
    text = value.strip().lower()
    if text.isascii() and text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise OptionError(option, BAD_DURATION.format(value=value))
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)


def minutes(option: str, value: str) -> int:
    return max(1, seconds(option, value) // 60)


def number(option: str, value: str, kind: type[int] | type[float]) -> int | float | None:
    if value.strip().lower() in ("", "none"):
        return None
    try:
        return kind(value)
    except ValueError:
        raise OptionError(option, BAD_NUMBER.format(value=value)) from None


def threshold(option: str, value: str) -> Body:
    """``context_score < 60`` → a threshold trigger (measured hourly unless --check-every)."""
    found = _THRESHOLD.match(value)
    if not found:
        raise OptionError(option, BAD_THRESHOLD.format(value=value))
    metric, operator, amount = found.groups()
    try:
        parsed = float(amount)
    except ValueError:
        raise OptionError(option, BAD_THRESHOLD.format(value=value)) from None
    operator_name = THRESHOLD_OPERATORS[operator]
    return {
        "scheduleType": "threshold",
        "threshold": {"metric": metric, "operator": operator_name, "value": parsed},
    }


def event_trigger(option: str, value: str) -> Body:
    """``issues.opened labels=bug,urgent author=MEMBER draft=false bots=true``."""
    import shlex  # only when a trigger is given

    try:
        event, *conditions = shlex.split(value)
    except ValueError as exc:
        raise OptionError(option, f"{value!r}: {exc}") from None
    trigger: Body = {"event": event}
    for condition in conditions:
        word, _, text = condition.partition("=")
        field = CONDITIONS.get(word.lower())
        if field is None or not text:
            known = ", ".join(sorted({w for w in CONDITIONS if "_" not in w}))
            raise OptionError(option, BAD_CONDITION.format(value=condition, known=known))
        if field in LIST_CONDITIONS:
            trigger.setdefault(field, []).extend(t for t in text.split(",") if t)
        else:
            trigger[field] = truth(option, text)
    return trigger


def truth(option: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise OptionError(option, BAD_BOOL.format(value=text))


def config_entry(option: str, value: str) -> Body:
    """``KEY=VALUE``; VALUE as JSON when it is JSON (``dryRun=true``, ``n=3``), else text."""
    key, sep, text = value.partition("=")
    if not sep or not key.strip():
        raise OptionError(option, BAD_CONFIG.format(value=value))
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return {key.strip(): parsed}


def text_or_clear(value: str) -> str | None:
    return value if value.strip() else None


def json_object(option: str, value: str) -> Body | None:
    """A JSON object given inline (``{...}``) or as a file's path; ``""`` or ``none`` clears."""
    text = value.strip()
    if text.lower() in ("", "none"):
        return None
    if not text.startswith("{"):
        try:
            with open(text, encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise OptionError(option, BAD_JSON_FILE.format(value=value, why=exc.strerror)) from None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise OptionError(option, BAD_JSON.format(value=value[:80], why=exc)) from None
    if not isinstance(parsed, dict):
        raise OptionError(option, BAD_JSON.format(value=value[:80], why="not a JSON object"))
    return parsed


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOption:
    """One option: its parameter, the API fields (camelCase) it sends, and how."""

    param: str
    option: str  # as typed, e.g. --timeout
    annotation: Any
    api_fields: tuple[str, ...]
    spec_fields: tuple[str, ...]  # the JobSpec fields it sets
    to_body: Callable[[str, Any], Body] | None = None  # None: {api_fields[0]: value}
    list_of: str | None = None  # a list (or dict) field that edit adds to
    clears: str | None = None  # the list field this --no-… flag empties
    default: Any = None

    def body(self, value: Any) -> Body:
        if self.to_body is not None:
            return self.to_body(self.option, value)
        plain = value.value if isinstance(value, StrEnum) else value
        return {self.api_fields[0]: plain}


def _opt(option: str, metavar: str | None, help: str, type_: Any = str | None) -> Any:
    if metavar is None:
        return Annotated[type_, typer.Option(option, help=help, show_default=False)]
    return Annotated[type_, typer.Option(option, metavar=metavar, help=help, show_default=False)]


def _one(field: str, convert: Callable[[str, Any], Any]) -> Callable[[str, Any], Body]:
    return lambda option, value: {field: convert(option, value)}


def _notify(_option: str, value: NotifyOn) -> Body:
    return {
        "notifyOnSuccess": value in (NotifyOn.success, NotifyOn.both),
        "notifyOnFailure": value in (NotifyOn.failure, NotifyOn.both),
    }


def _each(convert: Callable[[str, str], Any]) -> Callable[[str, Any], Any]:
    return lambda option, values: [convert(option, v) for v in values]


def _config(option: str, values: list[str]) -> Body:
    merged: Body = {}
    for value in values:
        merged |= config_entry(option, value)
    return merged


def _list(
    param: str, option: str, metavar: str, help: str, field: str, spec: str, convert: Any = None
) -> JobOption:
    items = convert or (lambda _o, values: list(values))
    return JobOption(
        param,
        option,
        _opt(option, metavar, help, list[str] | None),
        (field,),
        (spec,),
        to_body=lambda o, values: {field: items(o, values)},
        list_of=field,
    )


def _clear(param: str, option: str, help: str, field: str) -> JobOption:
    flag = Annotated[bool, typer.Option(option, help=help)]
    return JobOption(param, option, flag, (field,), (), clears=field, default=False)


JOB_OPTIONS: tuple[JobOption, ...] = (
    JobOption(
        "description",
        "--description",
        _opt("--description", "TEXT", 'What the job is for ("" clears it).'),
        ("description",),
        ("description",),
        _one("description", lambda _o, v: text_or_clear(v)),
    ),
    JobOption(
        "installation",
        "--installation",
        _opt("--installation", "ID", "Installation id, for --all-repos and --repos.", int | None),
        ("installationId",),
        ("installation_id",),
    ),
    JobOption(
        "all_repos",
        "--all-repos",
        Annotated[
            bool,
            typer.Option("--all-repos", help="Every repository of --installation, not one."),
        ],
        ("repoSelection",),
        ("repo_selection",),
        lambda _o, v: {"repoSelection": "all", "repoIds": []} if v else {},
        default=False,
    ),
    JobOption(
        "repos",
        "--repos",
        _opt(
            "--repos",
            "REPO_ID",
            "These repositories of --installation, by id (repeat for more).",
            list[int] | None,
        ),
        ("repoIds",),
        ("repo_ids",),
        lambda _o, v: {"repoSelection": "list", "repoIds": list(v)},
    ),
    JobOption(
        "threshold",
        "--threshold",
        _opt("--threshold", "CONDITION", 'Run when it holds, e.g. "context_score < 60".'),
        ("thresholdMetric", "thresholdOperator", "thresholdValue", "threshold"),
        ("threshold",),
        threshold,
        list_of="threshold",  # edit keeps the check schedule and cooldown
    ),
    JobOption(
        "check_every",
        "--check-every",
        _opt("--check-every", "DURATION", "How often --threshold is measured (default 1h)."),
        ("threshold",),
        (),
        lambda o, v: {"threshold": {"check_interval_minutes": minutes(o, v), "check_cron": None}},
        list_of="threshold",
    ),
    JobOption(
        "cooldown",
        "--cooldown",
        _opt("--cooldown", "DURATION", "After --threshold fires, quiet for this long, e.g. 1d."),
        ("threshold",),
        (),
        lambda o, v: {"threshold": {"cooldown_minutes": seconds(o, v) // 60}},
        list_of="threshold",
    ),
    _list(
        "on",
        "--on",
        "EVENT",
        "Run on a GitHub event, e.g. issues.opened or "
        '"pull_request.opened labels=bug,ui author=MEMBER draft=false branches=main '
        'paths=src/** bots=true" (repeat for more).',
        "eventTriggers",
        "event_triggers",
        _each(event_trigger),
    ),
    _clear(
        "no_on", "--no-on", "Edit: remove every event trigger (then --on adds).", "eventTriggers"
    ),
    _list(
        "slash_command",
        "--slash-command",
        "/NAME",
        "Run on a comment such as /review (repeat for more).",
        "commandTriggers",
        "command_triggers",
    ),
    _clear(
        "no_slash_commands",
        "--no-slash-commands",
        "Edit: remove every slash command (then --slash-command adds).",
        "commandTriggers",
    ),
    JobOption(
        "after",
        "--after",
        _opt("--after", "JOB_ID", "Run after that job's runs (none: not after a job)."),
        ("afterJobId",),
        ("after_job_id",),
        _one("afterJobId", lambda o, v: number(o, v, int)),
    ),
    JobOption(
        "after_any",
        "--after-any/--after-success",
        Annotated[
            bool | None,
            typer.Option(
                "--after-any/--after-success",
                help="With --after: after any run, or only successful ones (the default).",
                show_default=False,
            ),
        ],
        ("afterOnlyOnSuccess",),
        ("after_only_on_success",),
        lambda _o, v: {"afterOnlyOnSuccess": not v},
    ),
    JobOption(
        "on_mention",
        "--on-mention/--no-on-mention",
        Annotated[
            bool | None,
            typer.Option(
                "--on-mention/--no-on-mention",
                help="Run when a person mentions the app (@<app-slug>) in a comment.",
                show_default=False,
            ),
        ],
        ("mentionTrigger",),
        ("mention_trigger",),
    ),
    JobOption(
        "on_assign",
        "--on-assign/--no-on-assign",
        Annotated[
            bool | None,
            typer.Option(
                "--on-assign/--no-on-assign",
                help="Run when an issue is assigned to the app's bot user (unassigning stops it).",
                show_default=False,
            ),
        ],
        ("assignmentTrigger",),
        ("assignment_trigger",),
    ),
    JobOption(
        "follow_ups",
        "--follow-ups/--no-follow-ups",
        Annotated[
            bool | None,
            typer.Option(
                "--follow-ups/--no-follow-ups",
                help="Continue a session when a writer replies to it (on by default).",
                show_default=False,
            ),
        ],
        ("followUps",),
        ("follow_ups",),
    ),
    JobOption(
        "max_items",
        "--max-items",
        _opt("--max-items", "N", "At most N issues or PRs per run (1-50).", int | None),
        ("maxItems",),
        ("max_items",),
    ),
    JobOption(
        "runner",
        "--runner",
        _opt("--runner", None, "Who does the work.", Runner | None),
        ("runner",),
        ("runner",),
    ),
    JobOption(
        "shell",
        "--shell",
        _opt("--shell", "COMMAND", "The command for --runner shell."),
        ("shellCommand",),
        ("shell_command",),
        _one("shellCommand", lambda _o, v: text_or_clear(v)),
    ),
    JobOption(
        "permission_mode",
        "--permission-mode",
        _opt("--permission-mode", None, "Claude Code's permission mode.", PermissionMode | None),
        ("permissionMode",),
        ("permission_mode",),
    ),
    _list(
        "allowed_tool",
        "--allowed-tool",
        "TOOL",
        "A tool the session may use, e.g. Read or Bash(git:*) (repeat for more).",
        "allowedTools",
        "allowed_tools",
    ),
    _clear(
        "no_allowed_tools",
        "--no-allowed-tools",
        "Edit: empty the allowed tools (then --allowed-tool adds).",
        "allowedTools",
    ),
    _list(
        "disallowed_tool",
        "--disallowed-tool",
        "TOOL",
        "A tool the session may not use (repeat for more).",
        "disallowedTools",
        "disallowed_tools",
    ),
    _clear(
        "no_disallowed_tools",
        "--no-disallowed-tools",
        "Edit: empty the disallowed tools (then --disallowed-tool adds).",
        "disallowedTools",
    ),
    JobOption(
        "max_turns",
        "--max-turns",
        _opt("--max-turns", "N", "At most N turns per session (none: no limit)."),
        ("maxTurns",),
        ("max_turns",),
        _one("maxTurns", lambda o, v: number(o, v, int)),
    ),
    JobOption(
        "budget",
        "--budget",
        _opt("--budget", "USD", "At most this many dollars per session (none: no limit)."),
        ("maxBudgetUsd",),
        ("max_budget_usd",),
        _one("maxBudgetUsd", lambda o, v: number(o, v, float)),
    ),
    JobOption(
        "model",
        "--model",
        _opt("--model", "NAME", 'Claude model, e.g. sonnet ("" for the default).'),
        ("model",),
        ("model",),
        _one("model", lambda _o, v: text_or_clear(v)),
    ),
    JobOption(
        "system_prompt_append",
        "--system-prompt-append",
        _opt("--system-prompt-append", "TEXT", 'Added to the system prompt ("" clears it).'),
        ("appendSystemPrompt",),
        ("append_system_prompt",),
        _one("appendSystemPrompt", lambda _o, v: text_or_clear(v)),
    ),
    JobOption(
        "output_schema",
        "--output-schema",
        _opt(
            "--output-schema",
            "FILE|JSON",
            'The structured result\'s JSON Schema, inline or a file ("" clears it).',
        ),
        ("outputSchema",),
        ("output_schema",),
        _one("outputSchema", json_object),
    ),
    JobOption(
        "structured_actions",
        "--structured-actions",
        _opt(
            "--structured-actions",
            "FILE|JSON",
            'What to do with the structured result, e.g. {"labels": {"allowed": ["bug"]}}.',
        ),
        ("structuredActions",),
        ("structured_actions",),
        _one("structuredActions", json_object),
    ),
    _list(
        "config",
        "--config",
        "KEY=VALUE",
        "A task setting; VALUE is JSON when it parses, else text (repeat for more).",
        "taskConfig",
        "task_config",
        _config,
    ),
    _clear(
        "no_config",
        "--no-config",
        "Edit: empty the task settings (then --config adds).",
        "taskConfig",
    ),
    JobOption(
        "report",
        "--report",
        _opt("--report", None, "Where the result goes.", Report | None),
        ("report",),
        ("report",),
    ),
    JobOption(
        "notify_on",
        "--notify-on",
        _opt("--notify-on", None, "When its notifiers hear of a run.", NotifyOn | None),
        ("notifyOnSuccess", "notifyOnFailure"),
        ("notify_on_success", "notify_on_failure"),
        _notify,
    ),
    JobOption(
        "concurrency",
        "--concurrency",
        _opt("--concurrency", None, "When it fires while a run is going.", Concurrency | None),
        ("concurrencyPolicy",),
        ("concurrency_policy",),
    ),
    JobOption(
        "misfire_grace",
        "--misfire-grace",
        _opt("--misfire-grace", "DURATION", "How late a missed run may still start, e.g. 1h."),
        ("misfireGraceSeconds",),
        ("misfire_grace_seconds",),
        _one("misfireGraceSeconds", seconds),
    ),
    JobOption(
        "timeout",
        "--timeout",
        _opt("--timeout", "DURATION", "Longest a run may take: seconds or e.g. 15m, 1h30m."),
        ("timeoutSeconds",),
        ("timeout_seconds",),
        _one("timeoutSeconds", seconds),
    ),
    JobOption(
        "retries",
        "--retries",
        _opt("--retries", "N", "Retries of a failed run (0-10).", int | None),
        ("maxRetries",),
        ("max_retries",),
    ),
)


def _option_names() -> dict[str, str]:
    """The API's field names as these options (for the server's refusals); the first row
    that sends a field names it (threshold: --threshold, not --cooldown)."""
    names = {"repoSelection": "--repo/--all-repos/--repos"}
    for row in JOB_OPTIONS:
        for field in () if row.clears else row.api_fields:
            names.setdefault(field, row.option)
    return names


OPTION_NAMES = _option_names()


def with_job_options(function: F) -> F:
    """Add every :data:`JOB_OPTIONS` row to ``function``'s options; it gets them as
    ``job_options``: the rows given, with their values."""

    @functools.wraps(function)
    def command(*args: Any, **kwargs: Any) -> Any:
        given = {}
        for row in JOB_OPTIONS:
            value = kwargs.pop(row.param, row.default)
            if value != row.default and value != []:  # False counts for --after-success
                given[row.param] = value
        return function(*args, job_options=given, **kwargs)

    signature = inspect.signature(function, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "job_options"]
    extra = [
        inspect.Parameter(
            row.param,
            inspect.Parameter.KEYWORD_ONLY,
            default=row.default,
            annotation=row.annotation,
        )
        for row in JOB_OPTIONS
    ]
    keyword = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
    positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    parameters = [*positional, *[p.replace(kind=p.KEYWORD_ONLY) for p in extra], *keyword]
    setattr(command, "__signature__", signature.replace(parameters=parameters))  # noqa: B010
    return cast(F, command)


ROWS = {row.param: row for row in JOB_OPTIONS}


def job_body(given: dict[str, Any], current: Callable[[], Body] | None = None) -> Body:
    """The API body for the options given. ``current``: edit's job, fetched only when a list
    option adds to what it has (None: creating)."""
    if current is None:
        _check_scope(given)
    else:
        current = functools.cache(current)
    body: Body = {}
    for param in given:
        if field := ROWS[param].clears:
            body[field] = {} if field == "taskConfig" else []
    for param, value in given.items():
        row = ROWS[param]
        if row.clears:
            continue
        part = row.body(value)
        if row.list_of:  # added to what this command already set, else to what the job has
            have = body[row.list_of] if row.list_of in body else _had(row.list_of, current)
            part[row.list_of] = _added(have, part[row.list_of])
        body.update(part)
    threshold = body.get("threshold")
    if threshold and not (threshold.get("check_cron") or threshold.get("check_interval_minutes")):
        threshold["check_interval_minutes"] = 60  # no check schedule anywhere: hourly
    return body


def _had(field: str, current: Callable[[], Body] | None) -> Any:
    """What the job has in ``field`` (nothing when creating)."""
    had = current()[field] if current is not None else None
    if had is None:  # a job without a threshold
        return {} if field in ("taskConfig", "threshold") else []
    return had


def _added(have: Any, new: Any) -> Any:
    if isinstance(new, dict):
        return {**have, **new}
    return [*have, *(item for item in new if item not in have)]


def scope_conflict(repo: str | None, given: dict[str, Any]) -> str | None:
    """Why the scope options cannot go together, or None."""
    named = [o for o, v in (("--repo", repo), ("--all-repos", "all_repos" in given)) if v]
    named += ["--repos"] if "repos" in given else []
    return ONE_SCOPE.format(given=" and ".join(named)) if len(named) > 1 else None


def _check_scope(given: dict[str, Any]) -> None:
    for param in ("all_repos", "repos"):
        if param in given and "installation" not in given:
            raise OptionError(
                ROWS[param].option, SCOPE_NEEDS_INSTALLATION.format(option=ROWS[param].option)
            )
