"""Starting the server process: database preparation and uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from ghapp.app import create_app
from ghapp.db import Database
from ghapp.db.migrate import current_revision, head_revision, upgrade
from ghapp.http_protocol import bounded_http_protocol
from ghapp.settings import Settings

if TYPE_CHECKING:
    from ghapp.runtime import AppState

HTTP_DRAIN_S = 3  # on SIGTERM, how long open HTTP requests may take to finish


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


def uvicorn_config(settings: Settings, workers: int = 4, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {  # uvicorn.Config's keyword arguments
        "host": settings.host,
        "port": settings.port,
        "log_config": None,  # keep our logging (ghapp.logs: JSON or human lines)
        "access_log": False,
        "server_header": False,
        # Open HTTP requests get a few seconds; the sessions' grace is the workers' own
        # (GHAPP_SHUTDOWN_GRACE_SECONDS): the whole stop stays under the platform's limit.
        "timeout_graceful_shutdown": HTTP_DRAIN_S,
        # Workers spawn two processes per session (git, claude). uvloop spawns with fork(),
        # which copies the page tables of this large process: 6.4 ms of CPU and 14 ms of wall
        # time per spawn, measured, against 0.4 / 0.9 ms for asyncio's vfork-based spawn.
        # A web-only replica spawns nothing and keeps uvloop.
        "loop": "asyncio" if workers > 0 else "auto",
        # httptools with a bound on each request's head (size and time): uvicorn has none.
        "http": bounded_http_protocol(settings.body_timeout_seconds),
    }
    options.update(overrides)
    # A web-only replica (--no-worker) leaves scheduling and work to `ghapp worker`.
    app = create_app(settings, run_scheduler=workers > 0, workers=workers)
    return uvicorn.Config(app, **options)


def run_server(settings: Settings, workers: int = 4) -> None:
    uvicorn.Server(uvicorn_config(settings, workers=workers)).run()


async def run_worker(settings: Settings, concurrency: int, metrics_port: int | None = None) -> None:
    """``ghapp worker``: the scheduler loop and a worker pool, no web server.

    Stops on SIGTERM or SIGINT: no new claims, running sessions get the grace period,
    then whatever still runs is handed back to the queue.
    """
    import signal

    from ghapp.runtime import Role, Runtime

    runtime = Runtime.build(settings, [Role.scheduler, Role.worker], concurrency=concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics_server = None
    if metrics_port is not None:  # counters of this process: sessions, runs, notifications
        # Bound here, so a taken port fails `ghapp worker` at start, not the first scrape.
        sock = socket.create_server((settings.host, metrics_port))
        metrics_server = await serve_metrics(runtime.state, sock)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        if metrics_server is not None:
            server, task = metrics_server
            server.should_exit = True
            await task


async def serve_metrics(
    state: AppState, sock: socket.socket
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """``GET /metrics`` of a worker process, on its own port, behind the same token check
    as the web server's (``GHAPP_METRICS_TOKEN``)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from ghapp.app import metrics

    app = Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])
    app.state.ghapp = state
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
    )
    server = _SignalFreeServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-server")
    return server, task


class _SignalFreeServer(uvicorn.Server):
    """A server inside `ghapp worker`, which handles SIGTERM itself and stops this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
