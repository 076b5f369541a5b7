"""Starting the server process: database preparation and uvicorn."""

from __future__ import annotations

import uvicorn

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import current_revision, head_revision, upgrade
from ghapp.settings import Settings


async def prepare_database(settings: Settings, *, migrate: bool, revision: str = "head") -> str:
    """Migrate (if asked) and check the schema is current; return the revision.

    ``ghapp serve`` migrates the embedded SQLite itself; on PostgreSQL migrations are a
    release step (``ghapp db upgrade``) and the server refuses to start on an old schema.
    """
    db = Database(settings.database_url)
    try:
        if migrate:
            await upgrade(db, revision)
        current = await current_revision(db)
    finally:
        await db.dispose()
    if revision == "head" and current != head_revision():
        raise RuntimeError(
            f"database schema is at {current or 'nothing'}, this ghapp needs "
            f"{head_revision()}: run `ghapp db upgrade`"
        )
    return current or "base"


def uvicorn_config(settings: Settings, **overrides: object) -> uvicorn.Config:
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,  # keep our JSON logging
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 30,
    }
    options.update(overrides)
    app = create_app(settings, run_scheduler=True)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def run_server(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(settings)).run()
