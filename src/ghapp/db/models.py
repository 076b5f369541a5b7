"""The tables.

Ids that come from GitHub (installations, repositories, comments) are GitHub's own ids
and therefore ``BIGINT``; ids we mint are autoincrement integers. Every timestamp is an
aware UTC datetime (:class:`UTCDateTime`). Later issues fill in behaviour; the schema
grows through Alembic migrations in ``ghapp/db/migrations``.

Querying: a model's class attribute is typed as its Python value (``Job.id`` is
``int | None``) although it is a column at run time, so every column in a statement goes
through SQLModel's ``col()``: ``select(col(Job.id), col(Job.name))``,
``.where(col(Run.status) == status, col(Run.id).in_(ids))``,
``.order_by(col(Job.next_run_at).desc())``, ``col(Session.completed_at).is_(None)``,
``func.count(col(Run.id))``, ``.values(run_count=col(Job.run_count) + 1)``. Whole models
stay as they are (``select(Job)``, ``update(Run)``), and Core statements that need the table
itself (an insert of many rows, an upsert, a delete) take ``table_of(Model)``, never
``Model.__table__`` (SQLModel does not declare it). A stored row's ``id`` is ``int`` once
inserted: ``saved_id(row)`` says so where an ``int`` is needed. mypy checks all of this (see
``[tool.mypy]`` in pyproject.toml); no ``# type: ignore`` for a column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    inspect,
    true,
)
from sqlmodel import Field, SQLModel

from ghapp.db.types import JSONType, UTCDateTime, utcnow


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for statements on the whole table."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class _Stored(Protocol):
    @property
    def id(self) -> int | None: ...


def saved_id(row: _Stored) -> int:
    """The id of a row that has been inserted (``None`` only on a model not yet saved)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never saved")
    return row.id


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _created() -> Any:
    # Defaults on the column too, so Core inserts get them as ORM ones do.
    return Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, default=utcnow)
    )


def _json(default: Callable[[], Any]) -> Any:
    return Field(
        default_factory=default,
        sa_column=Column(JSONType, nullable=False, default=lambda: default()),
    )


def _github_id(primary_key: bool = False, fk: str | None = None, index: bool = False) -> Any:
    args: list[Any] = [BigInteger]
    if fk:
        args.append(ForeignKey(fk, ondelete="SET NULL"))
    return Field(
        default=None,
        sa_column=Column(
            *args,
            primary_key=primary_key,
            autoincrement=False,
            nullable=not primary_key,
            index=index,
        ),
    )


class JobStatus(StrEnum):
    active = "active"
    paused = "paused"
    disabled = "disabled"


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"
    timed_out = "timed_out"


class SessionStatus(StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"
    timed_out = "timed_out"


class TriggerType(StrEnum):
    scheduled = "scheduled"
    event = "event"
    command = "command"
    threshold = "threshold"
    manual = "manual"
    api = "api"
    retry = "retry"
    dependency = "dependency"
    mention = "mention"  # @<app-slug> in a comment
    assignment = "assignment"  # the issue was assigned to the app's bot user
    follow_up = "follow_up"  # a reply to a session's work: resumes that session


class DeliveryOutcome(StrEnum):
    stored = "stored"  # verified and recorded; nothing matched (yet)
    queued = "queued"  # runs were queued for it
    ignored = "ignored"  # an event or action ghapp does not act on


class Installation(SQLModel, table=True):
    __tablename__ = "installations"

    id: int = _github_id(primary_key=True)
    account_login: str = Field(sa_column=Column(String(255), nullable=False, index=True))
    account_type: str = Field(
        default="User", sa_column=Column(String(32), nullable=False, default="User")
    )
    repository_selection: str | None = Field(default=None, max_length=16)
    permissions: dict[str, Any] = _json(dict)
    events: list[str] = _json(list)
    suspended_at: datetime | None = _ts()
    deleted_at: datetime | None = _ts()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Repository(SQLModel, table=True):
    __tablename__ = "repositories"

    id: int = _github_id(primary_key=True)
    installation_id: int | None = _github_id(fk="installations.id", index=True)
    full_name: str = Field(sa_column=Column(String(255), nullable=False, index=True))
    default_branch: str = Field(
        default="main", sa_column=Column(String(255), nullable=False, default="main")
    )
    private: bool = Field(default=False)
    active: bool = Field(default=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Job(SQLModel, table=True):
    """One automation: what to run, on what, and when."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_next_run_at", "status", "next_run_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # Scope: one repository, or an installation's repositories (all, or repo_ids).
    repo_id: int | None = _github_id(fk="repositories.id", index=True)
    installation_id: int | None = _github_id(fk="installations.id", index=True)
    repo_selection: str = Field(default="one", max_length=8)  # one | all | list
    repo_ids: list[int] = _json(list)

    name: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(default=JobStatus.active.value, max_length=16)
    task_type: str = Field(default="custom", max_length=32)  # the API's taskType

    # Time trigger: at most one of cron / interval / threshold.
    cron_expression: str | None = Field(default=None, max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    interval_minutes: int | None = None
    threshold: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    # Event / command / after triggers.
    event_triggers: list[dict[str, Any]] = _json(list)
    command_triggers: list[dict[str, Any]] = _json(list)
    # Conversations (issue 21): ``@<app-slug>`` in a comment, the issue assigned to the app's
    # bot user, and follow-ups that resume a session this job ran.
    mention_trigger: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    assignment_trigger: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    follow_ups: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    after_job_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
    )
    after_only_on_success: bool = True

    # Target and what to run.
    target_type: str = Field(default="issues", max_length=16)  # issues|prs|codebase|custom
    filter_query: str | None = Field(default=None, sa_column=Column(Text))
    command_id: str | None = Field(default=None, max_length=100)
    custom_prompt: str | None = Field(default=None, sa_column=Column(Text))
    max_items: int = 10
    runner: str = Field(default="claude", max_length=16)  # claude | shell | builtin
    shell_command: str | None = Field(default=None, sa_column=Column(Text))

    # Session settings.
    permission_mode: str | None = Field(default=None, max_length=32)
    allowed_tools: list[str] = _json(list)
    disallowed_tools: list[str] = _json(list)
    max_turns: int | None = None
    max_budget_usd: float | None = None  # a session's cost cap (--max-budget-usd)
    model: str | None = Field(default=None, max_length=64)
    append_system_prompt: str | None = Field(default=None, sa_column=Column(Text))
    task_config: dict[str, Any] = _json(dict)
    # The session's final answer as a JSON object (--json-schema), and what ghapp may do
    # with it (labels from an allow-list, duplicate, assign; or only say what it would do).
    output_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    structured_actions: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))

    # Reporting and notification.
    report: str = Field(default="comment", max_length=16)  # comment | issue | none
    # Its sessions on pull requests show as check runs on the PR's head.
    checks: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    notify_on_success: bool = False
    notify_on_failure: bool = True
    notifier_ids: list[int] = _json(list)

    # Policies.
    concurrency_policy: str = Field(default="skip", max_length=16)  # skip|queue|cancel|allow
    misfire_grace_seconds: int = 3600
    timeout_seconds: int = 900
    max_retries: int = 2

    # Bookkeeping.
    schedule_anchor: datetime | None = _ts()  # intervals count from here (no drift)
    next_run_at: datetime | None = _ts()
    last_run_at: datetime | None = _ts()
    last_run_status: str | None = Field(default=None, max_length=16)
    run_count: int = 0
    source: str = Field(default="api", max_length=16)  # api | config
    created_by: str | None = Field(default=None, max_length=255)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Run(SQLModel, table=True):
    """One firing of a job (an execution, in the scheduler API); also the work queue."""

    __tablename__ = "runs"
    __table_args__ = (
        # Any number of schedulers fire an occurrence exactly once.
        UniqueConstraint("job_id", "scheduled_for", name="uq_runs_job_scheduled_for"),
        Index("ix_runs_status_run_after", "status", "run_after"),
        # History filtered by status, newest first (SQLite would sort every match otherwise).
        Index("ix_runs_status_id", "status", "id"),
        # Today's counts (dashboard overview, scheduler status) without a scan of all runs.
        Index("ix_runs_queued_at", "queued_at"),
        Index("ix_runs_job_id_id", "job_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    )
    repo_id: int | None = _github_id(index=True)
    installation_id: int | None = _github_id()
    trigger_type: str = Field(max_length=16)
    trigger_detail: dict[str, Any] = _json(dict)  # delivery id, comment id, requested_by …
    delivery_id: str | None = Field(default=None, max_length=64, index=True)
    scheduled_for: datetime | None = _ts()
    item: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    status: str = Field(default=RunStatus.queued.value, max_length=16)
    items_found: int = 0
    items_processed: int = 0
    items_skipped: int = 0
    items_failed: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempt: int = 1
    retry_of_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    )
    cost_usd: float = 0.0
    run_after: datetime = _created()  # not claimable before (retry backoff)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = _ts()
    cancel_requested_at: datetime | None = _ts()  # the worker stops the run when it sees it
    retrying_since: datetime | None = _ts()  # GitHub or database trouble began; retried until
    queued_at: datetime = _created()
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    duration_ms: int | None = None


class Session(SQLModel, table=True):
    """One agent or command session on one item of a run."""

    __tablename__ = "sessions"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    item_kind: str = Field(max_length=16)  # issue | pr | codebase | custom
    item_number: int | None = Field(default=None, index=True)  # a mention's follow-up looks
    item_title: str | None = Field(default=None, sa_column=Column(Text))
    prompt: str | None = Field(default=None, sa_column=Column(Text))
    runner: str = Field(default="claude", max_length=16)
    status: str = Field(default=SessionStatus.queued.value, max_length=16)
    agent_session_id: str | None = Field(default=None, max_length=128)
    result_text: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    cost_usd: float = 0.0
    num_turns: int = 0
    duration_ms: int | None = None
    exit_code: int | None = None
    event_log: list[dict[str, Any]] = _json(list)
    comment_id: int | None = _github_id()
    comment_url: str | None = Field(default=None, max_length=512)
    check_run_id: int | None = _github_id()  # its check run on a pull request's head
    head_sha: str | None = Field(default=None, max_length=64, index=True)  # that head
    usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))  # tokens
    permission_denials: list[Any] | None = Field(default=None, sa_column=Column(JSONType))
    result_subtype: str | None = Field(default=None, max_length=64)  # success, error_max_turns…
    # The command's structured result, checked against its schema; or why there is none.
    structured_result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    structured_error: str | None = Field(default=None, sa_column=Column(Text))
    structured_actions: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONType)
    )  # what ghapp did (or, in a dry run, would do) with the structured result
    parent_session_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )  # a follow-up continues this session's conversation
    pr_number: int | None = Field(default=None, index=True)  # the pull request it opened
    branch: str | None = Field(default=None, max_length=255)  # the branch it pushed to
    report_text: str | None = Field(default=None, sa_column=Column(Text))  # the final comment
    reported_at: datetime | None = _ts()  # when the final comment reached GitHub
    started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    created_at: datetime = _created()


class Delivery(SQLModel, table=True):
    """One received GitHub webhook delivery, unique by ``X-GitHub-Delivery``."""

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # A replay of a captured body under a fresh delivery id is caught by this digest.
    payload_sha256: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # Few indexes on purpose: every insert pays for each, on the webhook hot path.
    event: str = Field(max_length=64)
    action: str | None = Field(default=None, max_length=64)
    installation_id: int | None = _github_id()
    repo_id: int | None = _github_id()
    sender_login: str | None = Field(default=None, max_length=255)
    # The exact JSON text GitHub signed, kept for reprocessing and audit.
    payload: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str = Field(default=DeliveryOutcome.stored.value, max_length=16)
    received_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(UTCDateTime(), nullable=False, index=True, default=utcnow),
    )


class Notifier(SQLModel, table=True):
    """A notification target. ``url_encrypted`` is Fernet ciphertext."""

    __tablename__ = "notifiers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_column=Column(Text))
    type: str = Field(max_length=16)  # slack | discord | n8n | generic | email
    url_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    config: dict[str, Any] = _json(dict)
    event_types: list[str] = _json(list)
    repo_ids: list[int] = _json(list)  # empty: every repository
    enabled: bool = True
    last_used_at: datetime | None = _ts()
    failure_count: int = 0
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Notification(SQLModel, table=True):
    """One message to one notifier, with its delivery attempts."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notifier_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notifiers.id", ondelete="CASCADE"), nullable=False)
    )
    run_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    )
    event: str = Field(max_length=32)
    payload: dict[str, Any] = _json(dict)
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    http_status: int | None = None
    attempts: int = 0
    # One entry per attempt: {"at", "status_code", "error", "duration_ms"}.
    attempt_log: list[dict[str, Any]] = _json(list)
    error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime = _created()
    created_at: datetime = _created()
    sent_at: datetime | None = _ts()


class ApiToken(SQLModel, table=True):
    """A credential for the API, CLI and dashboard. Only a hash of the token is kept."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(sa_column=Column(String(128), nullable=False, unique=True))
    prefix: str = Field(max_length=16)  # first characters, to recognise a token in lists
    is_admin: bool = False
    repos: list[str] = _json(list)  # full names; empty with is_admin False: no repository
    last_used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()
    created_at: datetime = _created()


class SignedOutSession(SQLModel, table=True):
    """A dashboard session ended by signing out: its cookie is refused until it would have
    expired anyway. Kept as a digest of the session's own random id, never the cookie."""

    __tablename__ = "signed_out_sessions"

    session_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    expires_at: datetime = _ts(nullable=False, index=True)


class AuditEntry(SQLModel, table=True):
    """One change or manual action: who, what, when, before/after (secrets masked)."""

    __tablename__ = "audit_entries"

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=255)  # token:NAME | github:LOGIN | config:REPO | cli
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    repo_id: int | None = _github_id()
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(UTCDateTime(), nullable=False, index=True, default=utcnow),
    )


class ThresholdCheck(SQLModel, table=True):
    """One measurement of a threshold job's metric (a threshold trigger)."""

    __tablename__ = "threshold_checks"
    __table_args__ = (
        # One check per occurrence of the check schedule, however many schedulers run.
        UniqueConstraint("job_id", "scheduled_for", name="uq_threshold_checks_job_scheduled_for"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(
        sa_column=Column(Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    )
    scheduled_for: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | done | failed
    value: float | None = None
    condition_met: bool | None = None
    fired: bool = False
    run_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    )
    error: str | None = Field(default=None, sa_column=Column(Text))
    checked_at: datetime | None = _ts()


class SchedulerState(SQLModel, table=True):
    """Small shared facts: global stop/start, the jobs version for trigger caches."""

    __tablename__ = "scheduler_state"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = _created()


class Redelivery(SQLModel, table=True):
    """A failed webhook delivery ghapp asked GitHub to send again (``webhooks/recovery.py``):
    at most one per GUID ever, so a delivery that fails again is not asked for in a loop."""

    __tablename__ = "redeliveries"

    id: int | None = Field(default=None, primary_key=True)
    # The X-GitHub-Delivery header, the same on every attempt at one event's delivery.
    guid: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    github_delivery_id: int = Field(sa_column=Column(BigInteger, nullable=False))  # the attempt
    event: str = Field(max_length=64)
    action: str | None = Field(default=None, max_length=64)
    failed_status_code: int  # what the failed attempt was answered (0: no answer)
    delivered_at: datetime = _ts(nullable=False)  # when GitHub made the failed attempt
    requested_at: datetime = _ts(nullable=False, index=True)
    requested_by: str = Field(max_length=255)  # the worker process
    result: str = Field(default="requesting", max_length=16)  # requesting | requested | failed
    http_status: int | None = None  # GitHub's answer to POST .../attempts
    error: str | None = Field(default=None, sa_column=Column(Text))


class LoopLease(SQLModel, table=True):
    """A loop that must run in one process at a time across replicas holds its row while it
    works (``db/loop_lease.py``); ``covered_until`` is how far its work has reached."""

    __tablename__ = "loop_leases"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    owner: str = Field(max_length=255)
    expires_at: datetime = _ts(nullable=False)
    covered_until: datetime | None = _ts()


class SessionTranscript(SQLModel, table=True):
    """A Claude Code session's transcript (the CLI's ``.jsonl`` under its home), gzipped,
    saved after the session so a follow-up can ``--resume`` it in a fresh home. Kept apart
    from ``sessions`` so listing sessions never reads it; removed with its session."""

    __tablename__ = "session_transcripts"

    session_id: int = Field(
        sa_column=Column(Integer, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    )
    agent_session_id: str = Field(max_length=128)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size_bytes: int = 0  # before compression
    created_at: datetime = _created()


# Tables defined next to their feature, registered on SQLModel.metadata with the rest.
from ghapp.analysis.models import AnalysisResult  # noqa: E402, F401
from ghapp.config.models import ConfigSync  # noqa: E402, F401
