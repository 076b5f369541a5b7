"""Helpers for tests of the dashboard: the job form as the browser sends it."""

from __future__ import annotations

from typing import Any

from tests.api_support import REPO_A


def job_form(**changes: Any) -> dict[str, Any]:
    """The job form as the browser sends it for a new job (JobSpec's defaults)."""
    form = {
        "name": "Weekday triage",
        "description": "",
        "status": "active",
        "task_type": "custom",
        "repo_selection": "one",
        "repo_id": str(REPO_A),
        "cron_expression": "0 9 * * 1-5",
        "timezone": "UTC",
        "interval_minutes": "",
        "threshold_metric": "",
        "event_triggers": "",
        "command_triggers": "",
        "after_job_id": "",
        "after_only_on_success": "1",
        "target_type": "issues",
        "filter_query": "",
        "command_id": "issue/triage",
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
        "report": "comment",
        "checks": "1",
        "notify_on_failure": "1",
        "concurrency_policy": "skip",
        "misfire_grace_seconds": "3600",
        "timeout_seconds": "900",
        "max_retries": "2",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}
