"""What a job is, validated: a job that cannot run cannot be saved.

:class:`JobSpec` holds every field of a job that people set, in snake_case (the camelCase
scheduler API translates at its edge, in ``ghapp.api.jobs``). Each validator's message names
the field and the problem; the API turns them into ``422`` answers with field and reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ghapp import structured
from ghapp.jobs.filters import FilterError, parse_filter
from ghapp.prompts import PromptError, check
from ghapp.scheduler.timing import InvalidSchedule, parse_timezone, validate_cron
from ghapp.tiers import BUILTIN_READERS, NO_ACTIONS
from ghapp.triggers.commands import CommandTriggerError, parse_command_trigger

# Events (and actions) a job may trigger on. ``issues`` alone means any action.
KNOWN_EVENTS: dict[str, frozenset[str]] = {
    "issues": frozenset(
        {
            "opened",
            "edited",
            "closed",
            "reopened",
            "labeled",
            "unlabeled",
            "assigned",
            "unassigned",
            "transferred",
            "milestoned",
        }
    ),
    "pull_request": frozenset(
        {
            "opened",
            "edited",
            "closed",
            "reopened",
            "synchronize",
            "ready_for_review",
            "converted_to_draft",
            "labeled",
            "unlabeled",
            "review_requested",
            "assigned",
        }
    ),
    "issue_comment": frozenset({"created", "edited"}),
    "pull_request_review": frozenset({"submitted", "edited", "dismissed"}),
    "pull_request_review_comment": frozenset({"created", "edited"}),
}
BUILTIN_COMMANDS: dict[str, frozenset[str]] = {
    "issue/triage": frozenset({"issues"}),
    "issue/root-cause": frozenset({"issues"}),
    "pr/review": frozenset({"prs"}),
    "pr/security-review": frozenset({"prs"}),
    "codebase/health-check": frozenset({"codebase"}),
    "context/analyze": frozenset({"codebase"}),
    "context/optimize": frozenset({"codebase"}),
    "code/ask": frozenset({"issues", "prs"}),
}
BUILTIN_METRICS = frozenset({"context_score", "claude_md_tokens", "open_issues", "stale_prs"})
AUTHOR_ASSOCIATIONS = frozenset(
    {
        "OWNER",
        "MEMBER",
        "COLLABORATOR",
        "CONTRIBUTOR",
        "FIRST_TIME_CONTRIBUTOR",
        "FIRST_TIMER",
        "MANNEQUIN",
        "NONE",
    }
)
PERMISSION_MODES = frozenset({"default", "acceptEdits", "plan", "bypassPermissions"})
_TOOL = re.compile(
    r"^[A-Za-z][A-Za-z0-9_]*(\(.{0,200}\))?$|^mcp__[A-Za-z0-9_-]+(__[A-Za-z0-9_-]+)?$"
)
_COMMAND_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)+$")

Operator = Literal["lt", "gt", "eq", "lte", "gte"]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EventTrigger(_Strict):
    """``issues.opened`` etc., with optional conditions that must all hold."""

    event: str
    labels: list[str] = Field(default_factory=list)  # the item has any of these
    author_association: list[str] = Field(default_factory=list)
    draft: bool | None = None  # PRs only: match drafts (True) or non-drafts (False)
    base_branches: list[str] = Field(default_factory=list)  # PRs only
    paths: list[str] = Field(default_factory=list)  # PRs: a changed file matches a glob
    include_bots: bool = False  # events caused by bots (our own app too) are ignored

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str) -> str:
        name, _, action = value.partition(".")
        if name not in KNOWN_EVENTS:
            raise ValueError(f"unknown event {value!r} (known: {', '.join(sorted(KNOWN_EVENTS))})")
        if action and action not in KNOWN_EVENTS[name]:
            known = ", ".join(sorted(KNOWN_EVENTS[name]))
            raise ValueError(f"unknown action {action!r} for {name} (known: {known})")
        return value

    @field_validator("author_association")
    @classmethod
    def _associations(cls, values: list[str]) -> list[str]:
        upper = [value.upper() for value in values]
        unknown = sorted(set(upper) - AUTHOR_ASSOCIATIONS)
        if unknown:
            raise ValueError(f"unknown author association {unknown[0]!r}")
        return upper

    @property
    def name(self) -> str:
        return self.event.partition(".")[0]

    @property
    def action(self) -> str | None:
        return self.event.partition(".")[2] or None


class Threshold(_Strict):
    """Fire when ``metric operator value`` becomes true, measured on a check schedule."""

    metric: str
    operator: Operator
    value: float
    check_cron: str | None = None
    check_interval_minutes: int | None = Field(default=None, ge=1, le=527_040)
    cooldown_minutes: int = Field(default=0, ge=0, le=527_040)
    filter_query: str | None = None  # for open_issues: which issues to count
    stale_days: int = Field(default=14, ge=1, le=3650)  # for stale_prs

    @field_validator("check_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else _cron_or_error(value)

    @model_validator(mode="after")
    def _one_check_schedule(self) -> Threshold:
        if (self.check_cron is None) == (self.check_interval_minutes is None):
            raise ValueError(
                "a threshold needs exactly one of check_cron or check_interval_minutes"
            )
        if self.filter_query:
            _filter_or_error(self.filter_query)
        return self

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("metrics", BUILTIN_METRICS)
        if value not in known:
            raise ValueError(f"unknown metric {value!r} (known: {', '.join(sorted(known))})")
        return value


class JobSpec(_Strict):
    """Every field of a job that people set. Bookkeeping fields live on the table only."""

    name: Name
    description: str | None = Field(default=None, max_length=10_000)
    status: Literal["active", "paused", "disabled"] = "active"
    task_type: str = Field(default="custom", max_length=32)

    # Scope: one repository, or an installation's repositories (all or a list).
    repo_id: int | None = Field(default=None, gt=0)
    installation_id: int | None = Field(default=None, gt=0)
    repo_selection: Literal["one", "all", "list"] = "one"
    repo_ids: list[int] = Field(default_factory=list)

    # Triggers.
    cron_expression: str | None = None
    timezone: str = "UTC"
    interval_minutes: int | None = Field(default=None, ge=1, le=527_040)
    threshold: Threshold | None = None
    event_triggers: list[EventTrigger] = Field(default_factory=list, max_length=20)
    command_triggers: list[str] = Field(default_factory=list, max_length=20)
    after_job_id: int | None = Field(default=None, gt=0)
    after_only_on_success: bool = True
    # Conversations (issue 21): ``@<app-slug>`` in a person's comment, and an issue assigned
    # to the app's bot user (``ghapp.triggers.mentions``, ``ghapp.app_identity``).
    mention_trigger: bool = False
    assignment_trigger: bool = False
    # A comment addressed to one of its sessions continues it (``ghapp.webhooks.followups``).
    follow_ups: bool = True

    # What to run, on what.
    target_type: Literal["issues", "prs", "codebase", "custom"] = "issues"
    filter_query: str | None = Field(default=None, max_length=1000)
    command_id: str | None = Field(default=None, max_length=100)
    custom_prompt: str | None = Field(default=None, max_length=100_000)
    max_items: int = Field(default=10, ge=1, le=50)
    runner: Literal["claude", "shell", "builtin"] = "claude"
    shell_command: str | None = Field(default=None, max_length=10_000)

    # Session settings.
    permission_mode: str | None = None
    allowed_tools: list[str] = Field(default_factory=list, max_length=100)
    disallowed_tools: list[str] = Field(default_factory=list, max_length=100)
    max_turns: int | None = Field(default=None, ge=1, le=1000)
    max_budget_usd: float | None = Field(default=None, gt=0, le=1000)
    model: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    append_system_prompt: str | None = Field(default=None, max_length=20_000)
    task_config: dict[str, Any] = Field(default_factory=dict)
    # A structured result (ghapp.structured): the job's own output schema (over its command's),
    # and what ghapp does with the result on the issue or PR (labels, duplicate, assign).
    output_schema: dict[str, Any] | None = None
    structured_actions: dict[str, Any] | None = None

    # Reporting and notification.
    report: Literal["comment", "issue", "none"] = "comment"
    checks: bool = True  # sessions on pull requests show as check runs on the PR's head
    notify_on_success: bool = False
    notify_on_failure: bool = True
    notifier_ids: list[int] = Field(default_factory=list, max_length=50)

    # Policies.
    concurrency_policy: Literal["skip", "queue", "cancel", "allow"] = "skip"
    misfire_grace_seconds: int = Field(default=3600, ge=0, le=7 * 86_400)
    timeout_seconds: int = Field(default=900, ge=10, le=86_400)
    max_retries: int = Field(default=2, ge=0, le=10)

    @field_validator("cron_expression")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else _cron_or_error(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            parse_timezone(value)
        except InvalidSchedule as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("filter_query")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        return _filter_or_error(value) if value else None

    @field_validator("custom_prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        """Placeholders only (``ghapp.prompts``): a prompt that cannot render is not saved."""
        if value is None:
            return None
        try:
            return check(value)
        except PromptError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("command_triggers")
    @classmethod
    def _commands(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                parse_command_trigger(value)
            except CommandTriggerError as exc:
                raise ValueError(str(exc)) from None
        return values

    @field_validator("permission_mode")
    @classmethod
    def _permission_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in PERMISSION_MODES:
            known = ", ".join(sorted(PERMISSION_MODES))
            raise ValueError(f"unknown permission mode {value!r} (known: {known})")
        return value

    @field_validator("output_schema")
    @classmethod
    def _output_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            structured.check_schema(value)
        return value

    @field_validator("structured_actions")
    @classmethod
    def _structured_actions(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            structured.check_actions(value, None)
        return value

    @field_validator("allowed_tools", "disallowed_tools")
    @classmethod
    def _tools(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _TOOL.match(value):
                raise ValueError(
                    f"{value!r} is not a Claude Code tool name such as Read or Bash(git:*)"
                )
        return values

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> JobSpec:
        self._check_scope()
        self._check_triggers()
        self._check_work(info)
        self._check_actions(info)
        return self

    def _check_scope(self) -> None:
        if self.repo_selection == "one":
            if self.repo_id is None:
                raise ValueError("repo_id is required for a single-repository job")
            if self.repo_ids:
                raise ValueError("repo_ids is only for repo_selection 'list'")
        else:
            if self.installation_id is None:
                raise ValueError(
                    f"installation_id is required for repo_selection {self.repo_selection!r}"
                )
            if self.repo_selection == "list" and not self.repo_ids:
                raise ValueError("repo_selection 'list' needs at least one id in repo_ids")
            if self.repo_selection == "all" and self.repo_ids:
                raise ValueError("repo_ids is only for repo_selection 'list'")

    def _check_triggers(self) -> None:
        timed = [
            name
            for name, value in (
                ("cron_expression", self.cron_expression),
                ("interval_minutes", self.interval_minutes),
                ("threshold", self.threshold),
            )
            if value is not None
        ]
        if len(timed) > 1:
            raise ValueError(f"a job has at most one time trigger, got {' and '.join(timed)}")
        if self.assignment_trigger and self.target_type != "issues":
            raise ValueError(
                "assignment_trigger: issues are what is assigned to the app; target_type "
                f"must be 'issues', not {self.target_type!r}"
            )

    def _check_work(self, info: ValidationInfo) -> None:
        if self.runner == "shell":
            if not self.shell_command:
                raise ValueError("shell_command is required for the shell runner")
            return
        if self.target_type in ("codebase", "custom") and self.filter_query:
            raise ValueError(f"filter_query does not apply to target_type {self.target_type!r}")
        if self.command_id is None:
            if not self.custom_prompt:
                raise ValueError("a job needs a command_id or a custom_prompt")
            return
        commands = (info.context or {}).get("commands", BUILTIN_COMMANDS)
        if not _COMMAND_ID.match(self.command_id) or self.command_id not in commands:
            known = ", ".join(sorted(commands))
            raise ValueError(f"unknown command_id {self.command_id!r} (known: {known})")
        targets = commands[self.command_id]
        if targets and self.target_type not in targets:
            raise ValueError(
                f"command {self.command_id!r} is for target_type "
                f"{' or '.join(sorted(targets))}, not {self.target_type!r}"
            )

    def _check_actions(self, info: ValidationInfo) -> None:
        """Structured actions need a result to act on, on an issue or PR, from a command
        that is not open to readers (ghapp.tiers)."""
        if self.structured_actions is None:
            return
        if self.command_id in (info.context or {}).get("readers", BUILTIN_READERS):
            raise ValueError(f"structured_actions: {NO_ACTIONS}")
        if self.target_type not in ("issues", "prs"):
            raise ValueError("structured_actions: act on issues and pull requests only")
        schema = self.output_schema or structured.BUILTIN_SCHEMAS.get(self.command_id or "")
        if schema is None and (self.command_id is None or self.runner != "claude"):
            raise ValueError(
                "structured_actions: need an output schema (output_schema, or a command "
                "that declares one such as issue/triage)"
            )
        try:
            structured.check_actions(self.structured_actions, schema)
        except ValueError as exc:
            raise ValueError(f"structured_actions: {exc}") from None


def _cron_or_error(value: str) -> str:
    try:
        return validate_cron(value)
    except InvalidSchedule as exc:
        raise ValueError(str(exc)) from None


def _filter_or_error(value: str) -> str:
    try:
        return str(parse_filter(value))
    except FilterError as exc:
        raise ValueError(str(exc)) from None
