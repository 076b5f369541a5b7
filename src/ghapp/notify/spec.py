"""What a notifier is, validated (seed 2's WebhookConfig)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

EVENTS = ("task_started", "task_completed", "task_failed", "threshold_triggered", "health_alert")
DEFAULT_EVENTS = ["task_completed", "task_failed", "threshold_triggered", "health_alert"]
NotifierType = Literal["slack", "discord", "n8n", "generic"]


class NotifierSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    type: NotifierType
    url: str = Field(min_length=1, max_length=2048)
    config: dict[str, Any] = Field(default_factory=dict)
    event_types: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS), max_length=10)
    repo_ids: list[int] = Field(default_factory=list, max_length=1000)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (user:password@)")
        return value

    @field_validator("event_types")
    @classmethod
    def _known_events(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in EVENTS:
                raise ValueError(f"unknown event {value!r} (known: {', '.join(EVENTS)})")
        return list(dict.fromkeys(values))

    @field_validator("config")
    @classmethod
    def _small_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 20 or any(len(str(v)) > 500 for v in value.values()):
            raise ValueError("at most 20 settings of at most 500 characters each")
        return value
