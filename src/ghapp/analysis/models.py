"""The ``analysis_results`` table: one row per CLAUDE.md analysis, kept per repository.

A row is written whenever ``context/analyze`` runs, as a ``runner: builtin`` job or as
the ``context_score`` / ``claude_md_tokens`` metric of a threshold check, so a
repository's score and size can be followed over time (:func:`ghapp.analysis.results.trend`).

Imported at the end of :mod:`ghapp.db.models` so the table is on ``SQLModel.metadata``
wherever the schema is assembled; it must therefore not import :mod:`ghapp.db.models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from ghapp.db.types import JSONType, UTCDateTime, utcnow


class AnalysisResult(SQLModel, table=True):
    __tablename__ = "analysis_results"
    __table_args__ = (
        # A repository's trend: its latest results first.
        Index("ix_analysis_results_repo_id_created_at", "repo_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    repo_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
        )
    )
    job_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
    )
    run_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    )
    commit_sha: str | None = Field(default=None, max_length=64)  # SHA-1 or SHA-256
    score: int  # 0-100
    total_tokens: int  # estimated (see ghapp.analysis.claude_md)
    files: int  # CLAUDE.md files analysed
    issues: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False, default=list)
    )  # [{kind, file, line, message}]
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, default=utcnow)
    )
