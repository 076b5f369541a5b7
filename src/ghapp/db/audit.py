"""The audit log's one way in: who did what to which object, when, with before and after.

Every change a person makes through the API, the dashboard, the CLI or a config file is
written here in the same transaction as the change itself, so the log never says something
happened that did not, or misses something that did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert

from ghapp.db.models import AuditEntry, table_of


def audit_insert(
    actor: str,
    action: str,
    object_type: str,
    object_id: int | str | None,
    now: datetime,
    *,
    repo_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Insert:
    """The INSERT of one audit entry, for a Core connection."""
    return (
        table_of(AuditEntry)
        .insert()
        .values(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            repo_id=repo_id,
            before=before,
            after=after,
            created_at=now,
        )
    )
