"""The ``config_syncs`` table: requests to read a repository's ``.github/ghapp.yml``.

The webhook path only records a row (in the delivery's transaction); a worker's
:class:`~ghapp.config.sync.ConfigSyncer` claims it, reads the file through the GitHub API
and brings the repository's ``source="config"`` jobs in line with it.

* ``sha`` is the pushed commit (``after``), or NULL for "the default branch's head" (on
  installation, when no commit is known). ``(repo_id, sha)`` is unique, so the same push
  delivered twice queues one sync; a later push of an already synced commit (a force push
  back to it) queues that row again.
* ``status``: ``pending`` → ``running`` (under a lease, so a sync whose worker died is
  taken over) → ``done`` or ``failed`` (the file is invalid, or GitHub kept failing).
  At most one sync per repository runs at a time (a partial unique index), and a
  repository's syncs run in the order they were queued.

Imported at the end of :mod:`ghapp.db.models` so the table is on ``SQLModel.metadata``
wherever the schema is assembled; it must therefore not import :mod:`ghapp.db.models`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ghapp.db.types import UTCDateTime, utcnow

RUNNING = text("status = 'running'")


class ConfigSync(SQLModel, table=True):
    __tablename__ = "config_syncs"
    __table_args__ = (
        UniqueConstraint("repo_id", "sha", name="uq_config_syncs_repo_id_sha"),
        # The claim: the next due row, oldest first.
        Index("ix_config_syncs_status_run_after", "status", "run_after"),
        # One running sync per repository, whatever the number of workers.
        Index(
            "uq_config_syncs_running_repo_id",
            "repo_id",
            unique=True,
            sqlite_where=RUNNING,
            postgresql_where=RUNNING,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key: the repository row may be written later in the same delivery.
    repo_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    installation_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    sha: str | None = Field(default=None, max_length=64)  # None: the default branch's head
    reason: str = Field(max_length=32)  # installation | repositories_added | push
    delivery_id: str | None = Field(default=None, max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending|running|done|failed
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    summary: str | None = Field(default=None, sa_column=Column(Text))  # what the sync did
    lease_owner: str | None = Field(default=None, sa_column=Column(String(255)))
    lease_expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    run_after: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, default=utcnow)
    )
    queued_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, default=utcnow)
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
