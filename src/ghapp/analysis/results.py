"""Analysis results per repository: store one after each analysis, read the trend."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import col

from ghapp.analysis.claude_md import Analysis, git_output
from ghapp.analysis.models import AnalysisResult
from ghapp.db import Database
from ghapp.db.core import inserted_id
from ghapp.db.models import Repository, table_of

TREND_LIMIT = 30


async def store_result(
    db: Database,
    analysis: Analysis,
    *,
    repo_id: int,
    job_id: int | None = None,
    run_id: int | None = None,
    commit_sha: str | None = None,
    created_at: datetime | None = None,
) -> int:
    """Insert one ``analysis_results`` row; return its id."""
    values: dict[str, Any] = {
        "repo_id": repo_id,
        "job_id": job_id,
        "run_id": run_id,
        "commit_sha": commit_sha,
        "score": analysis.score,
        "total_tokens": analysis.total_tokens,
        "files": len(analysis.files),
        "issues": [i.as_dict() for i in analysis.issues],
    }
    if created_at is not None:
        values["created_at"] = created_at
    table = table_of(AnalysisResult)
    async with db.write() as conn:
        result = await conn.execute(insert(table).values(**values))
        return inserted_id(result)


async def trend(db: Database, repo_id: int, limit: int = TREND_LIMIT) -> list[Any]:
    """The repository's latest results, newest first (rows of ``analysis_results``)."""
    query = (
        select(AnalysisResult)
        .where(col(AnalysisResult.repo_id) == repo_id)
        .order_by(col(AnalysisResult.created_at).desc(), col(AnalysisResult.id).desc())
        .limit(limit)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def repository_of_checkout(db: Database, work: Path) -> int | None:
    """The known repository a checkout was cloned from (its ``origin`` URL ends in
    ``OWNER/NAME.git``), for jobs that span several repositories; None if unknown."""
    url = await git_output(work, "remote", "get-url", "origin")
    if not url:
        return None
    parts = url.rstrip("/").removesuffix(".git").replace(":", "/").split("/")
    if len(parts) < 2:
        return None
    full_name = f"{parts[-2]}/{parts[-1]}".lower()
    async with db.read() as conn:
        return await conn.scalar(
            select(col(Repository.id))
            .where(func.lower(col(Repository.full_name)) == full_name)
            .limit(1)
        )
