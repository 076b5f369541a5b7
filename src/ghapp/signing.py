"""Signing deliveries the way GitHub does (for ``ghapp receive``, the demo and tests)."""

from __future__ import annotations

import hashlib
import hmac
import uuid


def signature(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(
    event: str, body: bytes, secret: str, delivery_id: str | None = None
) -> dict[str, str]:
    """Headers of a fresh GitHub delivery of ``event`` carrying ``body``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/ghapp",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "0",
        "X-Hub-Signature-256": signature(body, secret),
    }
