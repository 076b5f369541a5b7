"""Notifier URLs at rest: Fernet-encrypted with ``GHAPP_SECRET_KEY``; shown masked."""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

MASK = "****"


class SecretKeyError(RuntimeError):
    """No key, or not the key the values were encrypted with."""


class SecretBox:
    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise SecretKeyError(
                "GHAPP_SECRET_KEY is not set: notifier URLs cannot be stored or read"
            )
        return self._fernet

    def encrypt(self, value: str) -> str:
        return self._require().encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._require().decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a notifier URL cannot be decrypted: was GHAPP_SECRET_KEY changed?"
            ) from None


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/****``: enough to recognise, nothing to reuse."""
    parts = urlsplit(url)
    if parts.scheme == "mailto":
        count = len([a for a in parts.path.split(",") if a])
        return f"mailto:{count} recipient{'s' if count != 1 else ''}"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{MASK}"


def mask_address(address: str) -> str:
    """``a***@example.com``: whose inbox, roughly, without the address to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
