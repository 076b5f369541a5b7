"""Settings come from GHAPP_* variables and .env; generated secrets are stable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ghapp.settings import Settings, ensure_generated_secrets, load_generated_webhook_secret


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("GHAPP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(clean_env: Path) -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///ghapp.db"  # in the working directory
    assert settings.github_api_url == "https://api.github.com"
    assert settings.git_url == "https://github.com"
    assert settings.claude_bin == "claude"
    assert settings.webhook_secrets == []
    assert settings.max_body_bytes == 25 * 1024 * 1024
    assert settings.is_sqlite


def test_environment_and_comma_separated_secrets(clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("GHAPP_WEBHOOK_SECRET", "new-secret, old-secret ,")
    monkeypatch.setenv("GHAPP_GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    monkeypatch.setenv("GHAPP_APP_ID", "12345")
    settings = Settings()
    assert settings.webhook_secrets == ["new-secret", "old-secret"]
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.app_id == 12345


def test_dotenv_file_is_read(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "GHAPP_DATABASE_URL=postgresql://u@db/ghapp\nGHAPP_CLAUDE_BIN=/opt/claude\n"
    )
    settings = Settings()
    assert settings.database_url == "postgresql://u@db/ghapp"
    assert settings.claude_bin == "/opt/claude"
    assert not settings.is_sqlite


def test_private_key_from_text_or_path(clean_env: Path) -> None:
    assert Settings(private_key="PEM TEXT").private_key_pem() == "PEM TEXT"
    (clean_env / "key.pem").write_text("FROM FILE")
    assert Settings(private_key_path=clean_env / "key.pem").private_key_pem() == "FROM FILE"
    assert Settings().private_key_pem() is None


def test_secrets_never_show_in_repr(clean_env: Path) -> None:
    settings = Settings(webhook_secret="hush-1", admin_token="hush-2", private_key="hush-3")
    assert "hush" not in repr(settings) and "hush" not in str(settings.model_dump())


def test_generated_secrets_are_created_once_with_mode_600(clean_env: Path) -> None:
    first = Settings(data_dir=clean_env / "data")
    notes = ensure_generated_secrets(first)
    assert len(notes) == 2 and all("generated" in note for note in notes)
    secret_file = clean_env / "data" / "webhook-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    second = Settings(data_dir=clean_env / "data")
    assert ensure_generated_secrets(second) == []
    assert second.webhook_secrets == first.webhook_secrets
    assert second.secret_key == first.secret_key
    third = Settings(data_dir=clean_env / "data")
    load_generated_webhook_secret(third)
    assert third.webhook_secrets == first.webhook_secrets


def test_configured_secret_wins_over_generated(clean_env: Path) -> None:
    settings = Settings(data_dir=clean_env / "data", webhook_secret="mine")
    ensure_generated_secrets(settings)
    assert settings.webhook_secrets == ["mine"]
    assert not (clean_env / "data" / "webhook-secret").exists()
