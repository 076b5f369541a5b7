"""The run, its job, its repository and its sessions as a run's work reads them: plain
values taken from the database rows, so nothing later reads a column that is not there or
changes one by mistake."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Row = TypeVar("Row", bound="DataclassInstance")


def _taken(cls: type[Row], row: Any, **values: Any) -> Row:
    """An instance of ``cls`` from ``row``'s attributes of the same names (``values`` win)."""
    names = [field.name for field in dataclasses.fields(cls)]
    return cls(**{name: getattr(row, name) for name in names if name not in values}, **values)


@dataclass(frozen=True)
class RunRow:
    id: int
    job_id: int
    repo_id: int | None
    installation_id: int | None
    trigger_type: str
    trigger_detail: dict[str, Any]  # the comment and who asked, for a slash command
    item: dict[str, Any] | None  # the event's issue or PR, when an event made the run

    @classmethod
    def of(cls, row: Any) -> RunRow:
        return _taken(cls, row)

    @property
    def arguments(self) -> str:
        """What followed a slash command (``/ghapp fix this part``), or a mention's request
        (``@app fix this part``)."""
        detail = self.trigger_detail or {}
        return str(detail.get("args", detail.get("request", "")))


@dataclass(frozen=True)
class JobRow:
    id: int
    name: str
    runner: str  # claude | shell | builtin
    # What the run works on.
    repo_id: int | None
    repo_selection: str  # one | all | list
    target_type: str  # issues | prs | codebase | custom
    filter_query: str | None
    max_items: int
    # What a session is told and may do.
    command_id: str | None
    custom_prompt: str | None
    shell_command: str | None
    permission_mode: str | None
    allowed_tools: tuple[str, ...]
    disallowed_tools: tuple[str, ...]
    max_turns: int | None
    max_budget_usd: float | None
    model: str | None
    append_system_prompt: str | None
    timeout_seconds: int
    task_config: dict[str, Any]  # publishing, writes on forks …
    report: str  # comment | issue | none
    checks: bool  # its sessions on pull requests show as check runs
    output_schema: dict[str, Any] | None  # its own, over its command's (ghapp.structured)
    structured_actions: dict[str, Any] | None  # what is done with the result (worker.actions)

    @classmethod
    def of(cls, row: Any) -> JobRow:
        return _taken(
            cls,
            row,
            allowed_tools=tuple(row.allowed_tools or ()),
            disallowed_tools=tuple(row.disallowed_tools or ()),
            task_config=dict(row.task_config or {}),
        )


@dataclass(frozen=True)
class RepoRow:
    id: int
    installation_id: int | None
    full_name: str
    default_branch: str

    @classmethod
    def of(cls, row: Any) -> RepoRow:
        return _taken(cls, row)


@dataclass(frozen=True)
class SessionRow:
    """A session that ended in an earlier attempt of its run, with its stored report."""

    id: int
    status: str
    result_text: str | None
    error: str | None
    agent_session_id: str | None
    num_turns: int
    cost_usd: float
    duration_ms: int | None
    exit_code: int | None
    comment_id: int | None  # its tracking comment, once posted
    check_run_id: int | None  # its check run on the pull request's head, once made
    head_sha: str | None  # that head
    report_text: str | None  # what is to be said on GitHub
    reported_at: datetime | None  # when GitHub took it

    @classmethod
    def of(cls, row: Any) -> SessionRow:
        return _taken(cls, row)
