"""What a notifier is, validated."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EVENTS = ("task_started", "task_completed", "task_failed", "threshold_triggered", "health_alert")
DEFAULT_EVENTS = ["task_completed", "task_failed", "threshold_triggered", "health_alert"]
NotifierType = Literal["slack", "discord", "n8n", "generic", "email"]
_ADDRESS = re.compile(r"^[^@\s,<>]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class NotifierSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    type: NotifierType
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    recipients: list[str] = Field(default_factory=list, max_length=50)  # e-mail only
    config: dict[str, Any] = Field(default_factory=dict)
    event_types: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS), max_length=10)
    repo_ids: list[int] = Field(default_factory=list, max_length=1000)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (user:password@)")
        return value

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ADDRESS.match(value):
                raise ValueError(f"{value!r} is not an e-mail address")
        return values

    @model_validator(mode="after")
    def _target(self) -> NotifierSpec:
        if self.type == "email":
            if not self.recipients:
                raise ValueError("an email notifier needs at least one address in recipients")
            if self.url is not None:
                raise ValueError("an email notifier has recipients, not a url")
        else:
            if self.url is None:
                raise ValueError(f"a {self.type} notifier needs a url")
            if self.recipients:
                raise ValueError("recipients are for email notifiers only")
        return self

    @property
    def target(self) -> str:
        """What is stored encrypted: the URL, or ``mailto:`` and the addresses."""
        return self.url if self.url is not None else "mailto:" + ",".join(self.recipients)

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
