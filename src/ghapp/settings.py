"""Settings from the environment (prefix ``GHAPP_``) and a ``.env`` file.

Nothing here is read at import time: callers build a :class:`Settings` and hand it to
:func:`ghapp.app.create_app`, so tests can build as many differently configured apps as
they like.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///ghapp.db"
WEBHOOK_SECRET_FILE = "webhook-secret"  # noqa: S105 (a file name)
SECRET_KEY_FILE = "secret.key"  # noqa: S105 (a file name)


class Settings(BaseSettings):
    """Every ``GHAPP_*`` setting. The README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(
        env_prefix="GHAPP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL. SQLite (aiosqlite) file in the working directory by "
        "default; postgresql+asyncpg://user@host/db for scale-out.",
    )
    data_dir: Path = Field(
        Path(".ghapp"),
        description="Where the embedded default keeps generated secrets (webhook secret, "
        "encryption key).",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Webhook secret(s) GitHub signs deliveries with. A comma-separated list "
        "is accepted so a secret can be rotated without downtime.",
    )
    app_id: int | None = Field(None, description="The GitHub App's id.")
    app_slug: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
        description="The GitHub App's slug (`ghapp setup` writes it; else learnt from GitHub "
        "by the installation sync): what @<slug> mentions and assignments to <slug>[bot] match.",
    )
    private_key: SecretStr | None = Field(
        None, description="The GitHub App's private key (PEM text)."
    )
    private_key_path: Path | None = Field(
        None, description="Path to the GitHub App's private key file (instead of private_key)."
    )
    client_id: str | None = Field(
        None, description="The GitHub App's client id (written by `ghapp setup`)."
    )
    client_secret: SecretStr | None = Field(
        None, description="The GitHub App's client secret (written by `ghapp setup`)."
    )
    github_api_url: str = Field(
        "https://api.github.com",
        description="GitHub REST API base URL (GitHub Enterprise Server: https://HOST/api/v3).",
    )
    github_api_version: str = Field(
        "2022-11-28",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="The REST API version every call asks for (X-GitHub-Api-Version); "
        "GitHub Enterprise Server users pin the one their server documents.",
    )
    git_url: str = Field(
        "https://github.com",
        description="Base URL for clones: {git_url}/{owner}/{repo}.git.",
    )
    claude_bin: str = Field("claude", description="The Claude Code executable.")
    sandbox: Literal["auto", "required", "off"] = Field(
        "auto",
        description="Run every session inside bubblewrap: auto (when it works; a loud warning "
        "at start-up when not), required (refuse sessions without it), off (development only).",
    )
    max_budget_usd: float = Field(
        5.0,
        ge=0,
        description="What one Claude Code session may spend, in USD, unless its job says "
        "otherwise (`--max-budget-usd`; 0: no cap).",
    )
    session_env: str = Field(
        "",
        description="Comma-separated names of further environment variables sessions receive "
        "(HTTPS_PROXY, NO_PROXY, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE…); nothing else of ghapp's "
        "environment reaches a session.",
    )
    transcript_max_bytes: int = Field(
        20_000_000,
        ge=0,
        description="Largest Claude Code transcript kept after a session so a follow-up can "
        "resume it (bytes, before compression); a larger one is not kept, and the log says "
        "so (0: keep none).",
    )
    transcript_retention_days: int = Field(
        30,
        ge=0,
        description="Days a session's transcript is kept for follow-ups (0: for ever); a "
        "follow-up to an older session starts a new one.",
    )
    admin_token: SecretStr | None = Field(
        None, description="Bootstrap API token with admin rights."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key that encrypts notifier URLs at rest. The embedded default "
        "generates one into the data directory on first run.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where people reach this server; used for links in comments and messages.",
    )
    host: str = Field("127.0.0.1", description="Address `ghapp serve` listens on.")
    port: int = Field(8000, description="Port `ghapp serve` listens on.")
    max_body_bytes: int = Field(
        25 * 1024 * 1024, description="Largest webhook body accepted (GitHub caps at 25 MB)."
    )
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=10,
        description="How long a request's head, and then its whole body, may each take to "
        "arrive (webhooks, API, dashboard forms); a slower sender is answered 408 and cut "
        "off. GitHub itself gives up on a delivery after 10 s.",
    )
    webhook_concurrency: int = Field(
        64,
        ge=1,
        description="Most webhook requests read and handled at once, each holding at most "
        "1 MiB of body; one more is answered 503 with Retry-After at once.",
    )
    webhook_large_bodies: int = Field(
        2,
        ge=1,
        description="Most webhook bodies over 1 MiB held at once (each up to "
        "GHAPP_MAX_BODY_BYTES until its signature is checked); one more is answered 503 with "
        "Retry-After as soon as it declares or passes 1 MiB.",
    )
    delivery_recovery: bool = Field(
        True,
        description="A worker asks GitHub to redeliver webhook deliveries that failed (ghapp "
        "answered an error or nothing, e.g. while its database was down) and that ghapp never "
        "stored: GitHub does not retry them by itself. Needs the app's id and private key.",
    )
    delivery_recovery_interval_seconds: int = Field(
        300, ge=10, description="How often the delivery recovery looks for failed deliveries."
    )
    delivery_recovery_lookback_hours: int = Field(
        24,
        ge=1,
        le=72,
        description="How far back the delivery recovery looks (GitHub keeps deliveries for "
        "about three days): at start-up, since the last delivery stored, at most this far.",
    )
    delivery_recovery_per_minute: int = Field(
        30, ge=1, le=600, description="Most redeliveries the delivery recovery asks for a minute."
    )
    installation_sync_interval_seconds: int = Field(
        900,
        ge=0,
        description="How often ghapp asks GitHub which installations and repositories the app "
        "has (also once at start-up), adding what webhooks never told it and marking what is "
        "gone; one replica at a time. 0: never (webhooks alone). Needs the app's id and key.",
    )
    worker_lease_seconds: int = Field(
        60, ge=5, description="How long a claimed run stays a worker's without a heartbeat."
    )
    worker_heartbeat_seconds: int = Field(
        20, ge=1, description="How often a worker renews the leases of its running runs."
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        ge=0,
        description="On SIGTERM, how long running sessions may go on before they are stopped "
        "and handed back to the queue (keep it below the platform's own limit: Kubernetes "
        "kills after 30 s).",
    )
    retry_window_seconds: int = Field(
        900,
        ge=0,
        description="How long a run keeps retrying GitHub or database trouble (with backoff) "
        "before it fails.",
    )
    work_dir: Path | None = Field(
        None,
        description="Where sessions' checkouts are made (default: ghapp-work in the system's "
        "temporary directory). Checkouts left by a process that died are removed at start-up.",
    )
    max_running: int = Field(
        0, ge=0, description="Most runs executing at once across every worker (0: no limit)."
    )
    max_running_per_installation: int = Field(
        4, ge=1, description="Most runs executing at once for one installation."
    )
    daily_session_limit: int = Field(
        0, ge=0, description="Most sessions started per UTC day, all jobs together (0: no limit)."
    )
    daily_budget_usd: float = Field(
        0.0, ge=0, description="Most agent cost per UTC day in USD (0: no limit)."
    )
    notify_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="How long a notifier may take to answer one attempt."
    )
    notify_max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per notification (network errors, 5xx, 429)."
    )
    notify_allow_hosts: str = Field(
        "",
        description="Comma-separated host names and networks (CIDR, or one address) that "
        "notifiers may reach although they are internal: loopback, private, link-local and "
        "other non-public addresses are refused otherwise (e.g. `hooks.corp.internal,"
        "10.20.0.0/16`).",
    )
    smtp_host: str | None = Field(None, description="SMTP server for e-mail notifiers.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (587), tls (implicit, 465) or none."
    )
    smtp_username: str | None = Field(None, description="SMTP user name, if it needs one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field("ghapp@localhost", description="The From address of e-mails.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_format: Literal["auto", "json", "human"] = Field(
        "auto",
        description="Log lines as `json` (one object per line) or `human` (time, level, "
        "logger, message, fields); `auto`: human when stderr is a terminal, else JSON.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, `GET /metrics` needs `Authorization: Bearer <this>` "
        "(Prometheus: `authorization: {credentials: …}` in the scrape config).",
    )
    auth_failure_limit: int = Field(
        10,
        ge=1,
        description="Wrong tokens (API or sign-in) one client may send per window before it "
        "is answered 429.",
    )
    auth_failure_window_seconds: float = Field(
        60, gt=0, description="The window over which wrong tokens are counted, per client."
    )

    @field_validator("github_api_url", "git_url", "public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("notify_allow_hosts")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        from ghapp.notify.outbound import parse_allow

        parse_allow(value)  # a typo in a network must not silently allow nothing
        return value

    # -- derived values ---------------------------------------------------------------

    @property
    def webhook_secrets(self) -> list[str]:
        """Every configured webhook secret, newest first as written."""
        if self.webhook_secret is None:
            return []
        raw = self.webhook_secret.get_secret_value()
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def session_env_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.session_env.split(",") if name.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def work_root(self) -> Path:
        """Where sessions' checkouts go: ``GHAPP_WORK_DIR`` or the temporary folder's."""
        return self.work_dir or Path(tempfile.gettempdir()) / "ghapp-work"

    def github_app_problem(self) -> str | None:
        """Why ghapp cannot act as the GitHub App, naming the settings; None if it can.

        Every run needs the app (an installation token to clone, read and comment), so a run
        on a server without it fails at once with this sentence instead of being retried.
        """
        missing = []
        if self.app_id is None:
            missing.append("GHAPP_APP_ID")
        if self.private_key is None and self.private_key_path is None:
            missing.append("GHAPP_PRIVATE_KEY (or GHAPP_PRIVATE_KEY_PATH)")
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            return (
                f"the GitHub App is not configured: {' and '.join(missing)} {verb} not set "
                "(`ghapp setup` registers an app and writes them)"
            )
        path = self.private_key_path
        if self.private_key is None and path is not None and not os.access(path, os.R_OK):
            return f"the GitHub App is not configured: GHAPP_PRIVATE_KEY_PATH={path} cannot be read"
        return None

    def private_key_pem(self) -> str | None:
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_path is not None:
            return self.private_key_path.read_text()
        return None


def ensure_generated_secrets(settings: Settings) -> list[str]:
    """Fill in secrets the embedded default may generate, returning what was generated.

    Only used by the single-machine default (``ghapp serve`` / ``ghapp demo``): a
    generated value is written to the data directory (mode 600) and reused on the next
    start, so ``ghapp receive`` on the same machine signs with the same secret.
    """
    notes: list[str] = []
    if settings.webhook_secret is None:
        value, created = _read_or_create(settings.data_dir / WEBHOOK_SECRET_FILE, _token)
        settings.webhook_secret = SecretStr(value)
        if created:
            notes.append(f"generated a webhook secret in {settings.data_dir / WEBHOOK_SECRET_FILE}")
    if settings.secret_key is None:
        from cryptography.fernet import Fernet

        def fernet_key() -> str:
            return Fernet.generate_key().decode()

        value, created = _read_or_create(settings.data_dir / SECRET_KEY_FILE, fernet_key)
        settings.secret_key = SecretStr(value)
        if created:
            notes.append(f"generated an encryption key in {settings.data_dir / SECRET_KEY_FILE}")
    return notes


def load_generated_webhook_secret(settings: Settings) -> None:
    """Use the generated webhook secret if one exists and none is configured."""
    path = settings.data_dir / WEBHOOK_SECRET_FILE
    if settings.webhook_secret is None and path.exists():
        settings.webhook_secret = SecretStr(path.read_text().strip())


def _token() -> str:
    return secrets.token_hex(32)


def _read_or_create(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: two processes starting at once must not both write different secrets.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True
