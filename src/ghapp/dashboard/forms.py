"""The job form: a job's fields as form values and back, and errors placed by their field.

Form values are strings (lists for check boxes), exactly what the person typed, so a
refused form comes back as it was sent, with each message next to its field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from ghapp.api.errors import details
from ghapp.dashboard.core import Form
from ghapp.jobs.spec import EventTrigger

# Fields sent as they are (text, selects); "" means "not set" for the optional ones.
TEXT_FIELDS = (
    "name",
    "description",
    "status",
    "task_type",
    "cron_expression",
    "timezone",
    "target_type",
    "filter_query",
    "command_id",
    "custom_prompt",
    "runner",
    "shell_command",
    "permission_mode",
    "model",
    "append_system_prompt",
    "report",
    "concurrency_policy",
)
REQUIRED_TEXT = frozenset(
    {
        "name",
        "status",
        "task_type",
        "timezone",
        "target_type",
        "runner",
        "report",
        "concurrency_policy",
    }
)
NUMBER_FIELDS = (
    "interval_minutes",
    "max_items",
    "max_turns",
    "misfire_grace_seconds",
    "timeout_seconds",
    "max_retries",
)
OPTIONAL_NUMBERS = frozenset({"interval_minutes", "max_turns"})
CHECKBOXES = (
    "after_only_on_success",
    "mention_trigger",
    "assignment_trigger",
    "follow_ups",
    "checks",
    "notify_on_success",
    "notify_on_failure",
)
LINE_LISTS = ("command_triggers", "allowed_tools", "disallowed_tools")
THRESHOLD_FIELDS = (
    "metric",
    "operator",
    "value",
    "check_cron",
    "check_interval_minutes",
    "cooldown_minutes",
    "filter_query",
    "stale_days",
)
PRESETS = (
    ("0 9 * * 1-5", "Weekdays at 9am"),
    ("0 * * * *", "Every hour"),
    ("0 0 * * *", "Every day at midnight"),
    ("0 9 * * 1", "Mondays at 9am"),
)
TASK_TYPES = (
    ("custom", "Custom"),
    ("analyze", "Analyze"),
    ("optimize", "Optimize"),
    ("health_check", "Health check"),
)
TARGET_TYPES = (
    ("issues", "Issues"),
    ("prs", "Pull requests"),
    ("codebase", "Codebase"),
    ("custom", "Custom (no items)"),
)
# Every form field, in page order: where a message about the job as a whole is placed.
FORM_FIELDS = (
    "name",
    "description",
    "status",
    "task_type",
    "repo_selection",
    "installation_id",
    "repo_id",
    "repo_ids",
    "cron_expression",
    "timezone",
    "interval_minutes",
    "threshold_metric",
    "threshold_operator",
    "threshold_value",
    "threshold_check_cron",
    "threshold_check_interval_minutes",
    "threshold_cooldown_minutes",
    "threshold_filter_query",
    "threshold_stale_days",
    "event_triggers",
    "command_triggers",
    "after_job_id",
    "after_only_on_success",
    "mention_trigger",
    "assignment_trigger",
    "follow_ups",
    "target_type",
    "filter_query",
    "command_id",
    "custom_prompt",
    "max_items",
    "runner",
    "shell_command",
    "permission_mode",
    "allowed_tools",
    "disallowed_tools",
    "max_turns",
    "model",
    "append_system_prompt",
    "task_config",
    "output_schema",
    "structured_actions",
    "report",
    "checks",
    "notify_on_success",
    "notify_on_failure",
    "notifier_ids",
    "concurrency_policy",
    "misfire_grace_seconds",
    "timeout_seconds",
    "max_retries",
)
# What the form calls each field: error messages and the error summary use these words, never
# the internal names (``cron_expression``, ``cronExpression``). job_form.html labels its
# fields from here too, so the two cannot drift apart.
LABELS = {
    "name": "Name",
    "description": "Description",
    "status": "Status",
    "task_type": "Task type",
    "repo_selection": "Scope",
    "installation_id": "Installation",
    "repo_id": "Repository",
    "repo_ids": "Repositories (for “some”)",
    "cron_expression": "Cron expression",
    "timezone": "Time zone",
    "interval_minutes": "Every … minutes",
    "threshold_metric": "Metric",
    "threshold_operator": "Operator",
    "threshold_value": "Value",
    "threshold_check_cron": "Check on cron",
    "threshold_check_interval_minutes": "or check every … minutes",
    "threshold_cooldown_minutes": "Cooldown (minutes)",
    "threshold_filter_query": "Issues to count (open_issues)",
    "threshold_stale_days": "Stale after … days (stale_prs)",
    "event_triggers": "GitHub events",
    "command_triggers": "Slash commands",
    "after_job_id": "After job",
    "after_only_on_success": "Only when it succeeded",
    "mention_trigger": "When someone mentions the app (@app) in a comment",
    "assignment_trigger": "When an issue is assigned to the app (unassigning stops it)",
    "follow_ups": "Continue a session when a writer replies to it",
    "target_type": "Target",
    "filter_query": "Filter",
    "command_id": "Command",
    "custom_prompt": "Custom prompt",
    "max_items": "Most items per run",
    "runner": "Runner",
    "shell_command": "Shell command",
    "permission_mode": "Permission mode",
    "allowed_tools": "Allowed tools",
    "disallowed_tools": "Disallowed tools",
    "max_turns": "Most turns",
    "model": "Model",
    "append_system_prompt": "Append to the system prompt",
    "task_config": "Task settings (JSON object)",
    "output_schema": "Output schema (JSON Schema of the structured result)",
    "structured_actions": "Structured actions (JSON object)",
    "report": "Report",
    "checks": "Show sessions on pull requests as check runs",
    "notify_on_success": "Notify on success",
    "notify_on_failure": "Notify on failure",
    "notifier_ids": "Notifiers",
    "concurrency_policy": "When the previous run is still going",
    "misfire_grace_seconds": "Late firing allowed for (seconds)",
    "timeout_seconds": "Timeout (seconds)",
    "max_retries": "Retries",
}
# Shown first, always open: what a first job needs. Everything else is under
# "Advanced settings", which opens by itself when one of its fields has an error.
ESSENTIAL_FIELDS = frozenset(
    {
        "name",
        "repo_id",
        "cron_expression",
        "timezone",
        "event_triggers",
        "command_triggers",
        "target_type",
        "command_id",
        "custom_prompt",
        "notifier_ids",
    }
)
ADVANCED_FIELDS = frozenset(FORM_FIELDS) - ESSENTIAL_FIELDS
_DEFAULT_EVENT = EventTrigger(event="issues").model_dump(exclude={"event"})


def blank_values() -> dict[str, Any]:
    """A new job's form: JobSpec's defaults."""
    return {
        "name": "",
        "description": "",
        "status": "active",
        "task_type": "custom",
        "repo_selection": "one",
        "installation_id": "",
        "repo_id": "",
        "repo_ids": [],
        "cron_expression": "",
        "timezone": "UTC",
        "interval_minutes": "",
        **{f"threshold_{name}": "" for name in THRESHOLD_FIELDS},
        "threshold_cooldown_minutes": "0",
        "threshold_stale_days": "14",
        "event_triggers": "",
        "command_triggers": "",
        "after_job_id": "",
        "after_only_on_success": True,
        "mention_trigger": False,
        "assignment_trigger": False,
        "follow_ups": True,
        "target_type": "issues",
        "filter_query": "",
        "command_id": "",
        "custom_prompt": "",
        "max_items": "10",
        "runner": "claude",
        "shell_command": "",
        "permission_mode": "",
        "allowed_tools": "",
        "disallowed_tools": "",
        "max_turns": "",
        "model": "",
        "append_system_prompt": "",
        "task_config": "",
        "output_schema": "",
        "structured_actions": "",
        "report": "comment",
        "checks": True,
        "notify_on_success": False,
        "notify_on_failure": True,
        "notifier_ids": [],
        "concurrency_policy": "skip",
        "misfire_grace_seconds": "3600",
        "timeout_seconds": "900",
        "max_retries": "2",
    }


def job_values(job: Any) -> dict[str, Any]:
    """A saved job as form values."""
    values = blank_values()
    for name in TEXT_FIELDS:
        value = getattr(job, name)
        values[name] = "" if value is None else str(value)
    for name in NUMBER_FIELDS:
        value = getattr(job, name)
        values[name] = "" if value is None else str(value)
    for name in CHECKBOXES:
        values[name] = bool(getattr(job, name))
    for name in LINE_LISTS:
        values[name] = "\n".join(str(item) for item in getattr(job, name) or [])
    values["repo_selection"] = job.repo_selection
    values["installation_id"] = "" if job.installation_id is None else str(job.installation_id)
    values["repo_id"] = "" if job.repo_id is None else str(job.repo_id)
    values["repo_ids"] = [str(repo_id) for repo_id in job.repo_ids or []]
    values["after_job_id"] = "" if job.after_job_id is None else str(job.after_job_id)
    values["notifier_ids"] = [str(notifier_id) for notifier_id in job.notifier_ids or []]
    values["task_config"] = json.dumps(job.task_config, indent=2) if job.task_config else ""
    for name in ("output_schema", "structured_actions"):  # a structured result
        value = getattr(job, name)
        values[name] = json.dumps(value, indent=2) if value else ""
    values["event_triggers"] = _events_text(job.event_triggers or [])
    for name in THRESHOLD_FIELDS:
        value = (job.threshold or {}).get(name)
        values[f"threshold_{name}"] = "" if value is None else _number_text(value)
    return values


def _number_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _events_text(triggers: list[dict[str, Any]]) -> str:
    """One event per line, or JSON when any trigger has conditions."""
    plain = all(
        {key: value for key, value in trigger.items() if key != "event"}.items()
        <= _DEFAULT_EVENT.items()
        for trigger in triggers
    )
    if plain:
        return "\n".join(trigger.get("event", "") for trigger in triggers)
    return json.dumps(triggers, indent=2)


def form_values(form: Form) -> dict[str, Any]:
    """What was sent, kept as typed (to show the form again)."""
    values = blank_values()
    for name in FORM_FIELDS:
        if name in ("repo_ids", "notifier_ids"):
            values[name] = form.all(name)
        elif name in CHECKBOXES:
            values[name] = form.has(name)
        else:
            values[name] = form.get(name)
    return values


def spec_data(values: dict[str, Any], *, admin: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Form values as JobSpec fields, and the problems found before the service sees them."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in TEXT_FIELDS:
        text = values[name].strip() if isinstance(values[name], str) else ""
        if text or name in REQUIRED_TEXT:
            data[name] = text
        else:
            data[name] = None
    for name in NUMBER_FIELDS:
        text = values[name].strip()
        if text:
            data[name] = text  # pydantic parses it, or names the field
        elif name in OPTIONAL_NUMBERS:
            data[name] = None
    for name in CHECKBOXES:
        data[name] = bool(values[name])
    for name in LINE_LISTS:
        data[name] = [line.strip() for line in values[name].splitlines() if line.strip()]
    data["notifier_ids"] = _ids(values["notifier_ids"], "notifier_ids", errors)
    data["after_job_id"] = _id(values["after_job_id"], "after_job_id", errors)

    selection = values["repo_selection"] or "one"
    if not admin and selection != "one":
        errors["repo_selection"] = "this token may only create jobs on one of its repositories"
    data["repo_selection"] = selection
    data["repo_id"] = _id(values["repo_id"], "repo_id", errors) if selection == "one" else None
    if selection == "one" and data["repo_id"] is None and "repo_id" not in errors:
        errors["repo_id"] = "choose a repository"
    if selection != "one":
        data["installation_id"] = _id(values["installation_id"], "installation_id", errors)
        data["repo_ids"] = (
            _ids(values["repo_ids"], "repo_ids", errors) if selection == "list" else []
        )
    else:
        data["repo_ids"] = []

    data["event_triggers"] = _event_triggers(values["event_triggers"], errors)
    data["task_config"] = _json_object(values["task_config"], "task_config", errors)
    for name in ("output_schema", "structured_actions"):  # empty: none
        given = values[name].strip()
        data[name] = _json_object(given, name, errors) if given else None
    data["threshold"] = _threshold(values)
    return data, errors


def _id(text: str, name: str, errors: dict[str, str]) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 2**63:
        errors[name] = f"{text!r} is not an id"
        return None
    return int(text)


def _ids(texts: list[str], name: str, errors: dict[str, str]) -> list[int]:
    out = [_id(text, name, errors) for text in texts]
    return [value for value in out if value is not None]


def _event_triggers(text: str, errors: dict[str, str]) -> list[Any]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            errors["event_triggers"] = f"not valid JSON: {exc}"
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            errors["event_triggers"] = 'a JSON list of objects such as {"event": "issues.opened"}'
            return []
        return value
    return [{"event": line.strip()} for line in re.split(r"[\n,]", text) if line.strip()]


def _json_object(text: str, name: str, errors: dict[str, str]) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        errors[name] = f"not valid JSON: {exc}"
        return {}
    if not isinstance(value, dict):
        errors[name] = 'a JSON object such as {"key": "value"}'
        return {}
    return value


def _threshold(values: dict[str, Any]) -> dict[str, Any] | None:
    given = {name: values[f"threshold_{name}"].strip() for name in THRESHOLD_FIELDS}
    if not given["metric"]:
        return None
    threshold: dict[str, Any] = {
        "metric": given["metric"],
        "operator": given["operator"] or None,
        "value": given["value"] or None,
    }
    for name in (
        "check_cron",
        "check_interval_minutes",
        "cooldown_minutes",
        "filter_query",
        "stale_days",
    ):
        if given[name]:
            threshold[name] = given[name]
    return threshold


def advanced_open(errors: dict[str, str]) -> bool:
    """Whether "Advanced settings" starts open: a problem with one of its fields."""
    return any(name in ADVANCED_FIELDS for name in errors)


def advanced_changed(values: dict[str, Any]) -> int:
    """How many advanced settings differ from a new job's (said on the closed disclosure)."""
    blank = blank_values()
    # A one-repository job keeps its repository's installation: not a setting anyone chose.
    ignored = {"installation_id"} if values.get("repo_selection", "one") == "one" else set()
    if not values.get("threshold_metric"):  # no threshold: its other fields mean nothing
        ignored |= {f"threshold_{name}" for name in THRESHOLD_FIELDS}
    return sum(1 for name in ADVANCED_FIELDS - ignored if values.get(name) != blank.get(name))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Longest first, so ``threshold_filter_query`` is replaced before ``filter_query``.
_INTERNAL = sorted(
    (
        (internal, label)
        for name, label in LABELS.items()
        if "_" in name
        for internal in (name, _camel(name))
    ),
    key=lambda pair: -len(pair[0]),
)
_INTERNAL_NAME = re.compile(
    r"(?<![\w“])(" + "|".join(re.escape(internal) for internal, _ in _INTERNAL) + r")(?![\w”])"
)
_LABEL_OF = dict(_INTERNAL)


def in_labels(reason: str) -> str:
    """``a job needs a command_id or a custom_prompt`` → ``… a “Command” or a “Custom prompt”``."""
    return _INTERNAL_NAME.sub(lambda m: f"“{_LABEL_OF[m.group(1)]}”", reason)


def labelled(errors: dict[str, str]) -> dict[str, str]:
    """Every message with the form's labels in place of internal field names."""
    return {name: in_labels(reason) for name, reason in errors.items()}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors keyed by form field."""
    out: dict[str, str] = {}
    for problem in details(exc, "body"):
        name = form_field(problem["field"], problem["reason"])
        out.setdefault(name, problem["reason"])
    return out


def form_field(location: str, reason: str) -> str:
    """``threshold.check_cron`` → ``threshold_check_cron``; a message about the whole job goes
    to the first field it names (``shell_command is required…`` → ``shell_command``)."""
    parts = location.split(".")
    if parts[0] == "threshold":
        if len(parts) > 1 and f"threshold_{parts[1]}" in FORM_FIELDS:
            return f"threshold_{parts[1]}"
        named = named_field(reason, prefix="threshold_")
        return named or "threshold_metric"
    if parts[0] in FORM_FIELDS:
        return parts[0]
    return named_field(reason) or "form"


def named_field(reason: str, prefix: str = "") -> str | None:
    found: list[tuple[int, str]] = []
    for name in FORM_FIELDS:
        bare = name.removeprefix(prefix) if prefix else name
        if prefix and not name.startswith(prefix):
            continue
        match = re.search(rf"(?<![\w]){re.escape(bare)}(?![\w])", reason)
        if match:
            found.append((match.start(), name))
    return min(found)[1] if found else None
