"""The one sentence every "unknown repository" error ends with: how to make it known.

ghapp knows a repository only once the GitHub App is installed on it (a webhook, or the
installation sync in ``installation_sync``). The app's address on GitHub is learnt by that
sync (``GET /app``'s ``html_url``) and kept in ``scheduler_state``, so the hint can link
straight to the page that installs it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from ghapp.db.models import SchedulerState

APP_URL_KEY = "github_app_url"  # the scheduler_state row the sync writes
UNKNOWN_REPOSITORY = (
    "unknown repository {repo}: ghapp knows the repositories the GitHub App is installed on. "
    "Install the app on it{where}, or run `ghapp doctor` / wait for the next installation sync"
)
INSTALL_AT = " ({url}/installations/new)"


def unknown_repository(repo: object, app_url: str | None = None) -> str:
    """The error for ``repo`` as the user wrote it (``'octo/app'`` quoted, an id bare)."""
    shown = repo if isinstance(repo, int) else repr(str(repo))
    where = INSTALL_AT.format(url=app_url.rstrip("/")) if app_url else ""
    return UNKNOWN_REPOSITORY.format(repo=shown, where=where)


async def known_app_url(conn: AsyncConnection | AsyncSession) -> str | None:
    """The app's address on GitHub, if an installation sync has learnt it."""
    value = await conn.scalar(
        select(col(SchedulerState.value)).where(col(SchedulerState.key) == APP_URL_KEY)
    )
    return str(value) if value and str(value).startswith(("https://", "http://")) else None
