"""Request and response models of both route sets, over one Job / Run model.

The per-repository routes speak snake_case (``cron_expression``); the scheduler routes'
``/api/scheduler`` set speaks camelCase (``cronExpression``, ``taskType``) and accepts
snake_case too. The job fields come from :class:`~ghapp.jobs.spec.JobSpec`, so a field
added there appears in both sets, their validation and ``/openapi.json`` at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from ghapp.jobs.spec import JobSpec

PER_REPO_EXCLUDED = ("repo_id", "installation_id", "repo_selection", "repo_ids")
BOOKKEEPING: dict[str, Any] = {
    "next_run_at": (datetime | None, None),
    "last_run_at": (datetime | None, None),
    "last_run_status": (str | None, None),
    "run_count": (int, 0),
    "source": (Literal["api", "config"], "api"),
    "created_by": (str | None, None),
    "created_at": (datetime, ...),
    "updated_at": (datetime, ...),
}


class Snake(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class Camel(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, from_attributes=True
    )


class Query(BaseModel):
    """Query strings: unknown parameters (``machineId``…) are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _spec_fields(exclude: tuple[str, ...] = (), optional: bool = False) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in JobSpec.model_fields.items():
        if name in exclude:
            continue
        if optional:
            assert info.annotation is not None  # every JobSpec field has one
            fields[name] = (info.annotation | None, None)
        else:
            fields[name] = (info.annotation, info)
    return fields


# -- /api/repos/{repo_id}/schedules -------------------------------------------------------------

ScheduleCreate = create_model("ScheduleCreate", __base__=Snake, **_spec_fields(PER_REPO_EXCLUDED))
ScheduleUpdate = create_model(
    "ScheduleUpdate", __base__=Snake, **_spec_fields(PER_REPO_EXCLUDED, optional=True)
)
ScheduleOut = create_model(
    "ScheduleOut", __base__=Snake, id=(int, ...), **_spec_fields(), **BOOKKEEPING
)


class RunFields(BaseModel):
    """A run as both route sets show it; each spells the names its way (snake or camel) and
    adds its own: the job as ``job_id`` or ``taskId``, the error as ``error_message`` or
    ``error``."""

    id: int
    repo_id: int | None
    status: str
    trigger_type: str
    attempt: int
    retry_of_id: int | None
    scheduled_for: datetime | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    items_found: int
    items_processed: int
    items_skipped: int
    items_failed: int
    cost_usd: float
    session_ids: list[int] = Field(default_factory=list)


class RunOut(Snake, RunFields):
    job_id: int
    error_message: str | None = Field(validation_alias=AliasChoices("error_message", "error"))


class RunsPage(Snake):
    runs: list[RunOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class RunsQuery(Query):
    limit: int = Field(default=20, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=64)
    status: str | None = Field(default=None, max_length=16)


class CommandOut(Snake):
    id: str
    description: str
    targets: list[str] = Field(description="target types it is for; empty: any")
    source: Literal["builtin", "repository"]
    argument_hint: str | None
    path: str | None = Field(description="the file in the repository, for repository commands")


class CommandsPage(Snake):
    commands: list[CommandOut]
    problems: list[str] = Field(description="repository command files that could not be read")


class CommandsQuery(Query):
    target: Literal["issues", "prs", "codebase", "custom"] | None = None


class Queued(Snake):
    run_id: int
    status: Literal["queued"] = "queued"


# -- /api/scheduler/tasks -----------------------------------------------------------------------

METRIC_ALIASES = {
    "optimization_score": "context_score",
    "token_count": "claude_md_tokens",
    "issue_count": "open_issues",
}
TASK_TYPES = ("analyze", "optimize", "health_check", "custom")
ScheduleType = Literal["cron", "interval", "threshold", "manual", "event"]


class _TaskFields(Camel):
    """The task API's own names for what JobSpec spells differently."""

    schedule_type: ScheduleType | None = None
    threshold_metric: str | None = None
    threshold_value: float | None = None
    threshold_operator: Literal["lt", "gt", "eq", "lte", "gte"] | None = None
    threshold_check_minutes: int | None = Field(default=None, ge=1, le=527_040)
    webhook_ids: list[int] | None = None
    enabled: bool | None = None
    repo: str | None = Field(default=None, max_length=255, description="owner/name")


TaskCreate = create_model("TaskCreate", __base__=_TaskFields, **_spec_fields(optional=True))
TaskUpdate = create_model("TaskUpdate", __base__=_TaskFields, **_spec_fields(optional=True))
# Field definitions as (annotation, default), like BOOKKEEPING.
TASK_OUT: dict[str, Any] = {
    "id": (int, ...),
    "enabled": (bool, ...),
    "schedule_type": (ScheduleType, ...),
    "threshold_metric": (str | None, None),
    "threshold_value": (float | None, None),
    "threshold_operator": (str | None, None),
    "webhook_ids": (list[int], ...),
    "repo": (str | None, Field(default=None, description="owner/name of repoId")),
}
TaskOut = create_model("TaskOut", __base__=Camel, **TASK_OUT, **_spec_fields(), **BOOKKEEPING)


class TasksPage(Camel):
    tasks: list[TaskOut]
    total: int = Field(description="how many tasks match, over all pages")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class TasksQuery(Query):
    repo: str | None = Field(default=None, max_length=255, description="owner/name or id")
    enabled: bool | None = None
    task_type: str | None = Field(
        default=None, max_length=32, validation_alias=AliasChoices("taskType", "task_type")
    )
    status: Literal["active", "paused", "disabled"] | None = None
    source: Literal["api", "config"] | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=64)


class SessionOut(Camel):
    id: int
    item_kind: str
    item_number: int | None
    item_title: str | None
    runner: str
    status: str
    agent_session_id: str | None
    result_text: str | None
    error: str | None
    cost_usd: float
    num_turns: int
    duration_ms: int | None
    exit_code: int | None
    comment_url: str | None
    # The command's structured result (checked against its output schema), or why none.
    structured_result: dict[str, Any] | None = None
    structured_error: str | None = None
    # What ghapp did (or, in a dry run, would do) with it: the job's structured actions.
    structured_actions: list[dict[str, Any]] | None = None
    started_at: datetime | None
    completed_at: datetime | None


class ExecutionOut(Camel, RunFields):
    task_id: int
    error: str | None
    # The execution API's names, filled from the same counters.
    projects_processed: int
    issues_found: int
    tokens_saved: int = 0
    result: dict[str, Any] = Field(default_factory=dict)


class ExecutionDetail(ExecutionOut):
    task_name: str | None
    sessions: list[SessionOut]


class ExecutionsPage(Camel):
    executions: list[ExecutionOut]
    next_cursor: str | None


class ExecutionsQuery(Query):
    task_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, validation_alias=AliasChoices("taskId", "task_id")
    )
    status: str | None = Field(default=None, max_length=16)
    trigger_type: str | None = Field(
        default=None, max_length=16, validation_alias=AliasChoices("triggerType", "trigger_type")
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=64)


class RunRequest(Camel):
    trigger_type: Literal["manual", "api"] = "manual"


class ExecutionStarted(Camel):
    execution_id: int
    status: Literal["queued"] = "queued"


class CancelResult(Camel):
    execution_id: int
    status: str


# -- scheduler control, upcoming, audit ---------------------------------------------------------


class UpcomingOut(Camel):
    task_id: int
    name: str
    at: datetime
    kind: Literal["run", "check"]


class UpcomingPage(Camel):
    hours: float
    upcoming: list[UpcomingOut]


class UpcomingQuery(Query):
    hours: float = Field(default=24, gt=0, le=24 * 31)


class Today(Camel):
    runs: int
    successful: int
    failed: int
    cost_usd: float


class SchedulerStatus(Camel):
    running: bool
    state: Literal["running", "stopped"]
    next_wake_at: datetime | None
    active_tasks: int
    paused_tasks: int
    queued_executions: int
    running_executions: int
    today: Today
    next_runs: list[UpcomingOut]


class AuditOut(Camel):
    id: int
    actor: str
    action: str
    object_type: str
    object_id: str | None
    repo_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


class AuditPage(Camel):
    entries: list[AuditOut]
    next_cursor: str | None


class AuditQuery(Query):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=64)
    object_type: str | None = Field(
        default=None, max_length=32, validation_alias=AliasChoices("objectType", "object_type")
    )
    object_id: str | None = Field(
        default=None, max_length=64, validation_alias=AliasChoices("objectId", "object_id")
    )
    action: str | None = Field(default=None, max_length=64)
    actor: str | None = Field(default=None, max_length=255)


# -- notifiers (the API's webhooks) -------------------------------------------------------------

NotifierKind = Literal["slack", "discord", "n8n", "generic", "email"]


class NotifierIn(Camel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    webhook_type: NotifierKind
    webhook_url: str | None = Field(
        default=None, min_length=1, max_length=2048, description="http(s) only; not for email"
    )
    recipients: list[str] | None = Field(default=None, description="email only")
    config: dict[str, Any] = Field(default_factory=dict)
    event_types: list[str] | None = None
    repo_ids: list[int] = Field(default_factory=list)
    enabled: bool = True
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="generic: HMAC key for X-Ghapp-Signature-256 (write-only)",
    )


class NotifierUpdate(Camel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    webhook_type: NotifierKind | None = None
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    recipients: list[str] | None = None
    config: dict[str, Any] | None = None
    event_types: list[str] | None = None
    repo_ids: list[int] | None = None
    enabled: bool | None = None
    secret: str | None = Field(default=None, max_length=200, description="empty: remove it")


class NotifierOut(Camel):
    id: int
    name: str
    description: str | None
    webhook_type: str
    webhook_url: str = Field(description="masked")
    recipients: list[str] = Field(description="email: the addresses, masked")
    config: dict[str, Any]
    event_types: list[str]
    repo_ids: list[int]
    enabled: bool
    has_secret: bool
    last_used_at: datetime | None
    failure_count: int
    created_at: datetime
    updated_at: datetime


class NotifiersPage(Camel):
    webhooks: list[NotifierOut]


class NotifiersQuery(Query):
    webhook_type: str | None = Field(
        default=None, max_length=16, validation_alias=AliasChoices("webhookType", "webhook_type")
    )


class TestResult(Camel):
    ok: bool
    status_code: int | None
    response: str | None
    error: str | None
    duration_ms: int
