"""Who the app is on GitHub: its slug, which mentions (``@<slug>``) and assignments (to its
bot user ``<slug>[bot]``) are matched against on the webhook path.

``GHAPP_APP_SLUG`` says it (``ghapp setup`` writes it); else the installation sync learns it
from ``GET /app`` and keeps it in ``scheduler_state`` beside the app's address, and the job
index (``ghapp.triggers.index``) reads it from there with the jobs. Without a slug no
comment mentions the app and no assignment is to it: those triggers do not fire.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from ghapp.db.models import SchedulerState
from ghapp.triggers.mentions import is_slug

APP_SLUG_KEY = "github_app_slug"  # the scheduler_state row the installation sync writes


async def known_app_slug(conn: AsyncConnection | AsyncSession) -> str | None:
    """The app's slug, if an installation sync has learnt one."""
    value = await conn.scalar(
        select(col(SchedulerState.value)).where(col(SchedulerState.key) == APP_SLUG_KEY)
    )
    return str(value) if value and is_slug(str(value)) else None
